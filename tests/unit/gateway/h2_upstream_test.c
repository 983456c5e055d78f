/* h2_upstream_test.c - grpc-timeout values as the call deadline (the
 * sessions themselves are exercised by tests/scenario/test_grpc.py and
 * test_http2.py). */
#include "gateway/h2_upstream.h"
#include "test.h"

#include <string.h>

static int64_t ms(const char *v)
{
    return gw_grpc_timeout_ms(v, strlen(v));
}

static void test_units(void)
{
    CHECK(ms("1H") == 3600000);
    CHECK(ms("2M") == 120000);
    CHECK(ms("5S") == 5000);
    CHECK(ms("300m") == 300);
    CHECK(ms("1500u") == 2); /* rounded up: a deadline never comes early */
    CHECK(ms("1n") == 1);
    CHECK(ms("0m") == 0);
    CHECK(ms("99999999S") == 99999999000LL); /* 8 digits, the most allowed */
}

static void test_refused(void)
{
    CHECK(ms("") == -1);
    CHECK(ms("S") == -1);
    CHECK(ms("10") == -1);         /* no unit */
    CHECK(ms("10s") == -1);        /* units are case-sensitive */
    CHECK(ms("123456789S") == -1); /* 9 digits */
    CHECK(ms("-1S") == -1);
    CHECK(ms("1 S") == -1);
    CHECK(gw_grpc_timeout_ms("5S", 1) == -1); /* the length is honoured */
}

TEST_MAIN(TEST(test_units), TEST(test_refused))
