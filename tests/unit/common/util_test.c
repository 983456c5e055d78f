/* util_test.c - durations, host:port splitting, hashing. */
#include "common/err.h"
#include "common/util.h"
#include "test.h"

static void test_duration(void)
{
    uint64_t ms = 7;
    CHECK_INT(gv_parse_duration("250ms", &ms), 0);
    CHECK_INT(ms, 250);
    CHECK_INT(gv_parse_duration("2s", &ms), 0);
    CHECK_INT(ms, 2000);
    CHECK_INT(gv_parse_duration("1m", &ms), 0);
    CHECK_INT(ms, 60000);
    CHECK_INT(gv_parse_duration("1h", &ms), 0);
    CHECK_INT(ms, 3600000);
    CHECK_INT(gv_parse_duration("3", &ms), 0);
    CHECK_INT(ms, 3000);
    ms = 7;
    CHECK_INT(gv_parse_duration("2x", &ms), GV_EINVAL);
    CHECK_INT(gv_parse_duration("-1s", &ms), GV_EINVAL);
    CHECK_INT(gv_parse_duration("", &ms), GV_EINVAL);
    CHECK_INT(gv_parse_duration("99999999999999999999s", &ms), GV_EINVAL);
    CHECK_INT(ms, 7);
}

static void test_hostport(void)
{
    char host[64];
    uint16_t port = 0;
    CHECK_INT(gv_split_hostport("10.0.0.5:9001", host, sizeof(host), &port), 0);
    CHECK_STR(host, "10.0.0.5");
    CHECK_INT(port, 9001);
    CHECK_INT(gv_split_hostport("users-2:80", host, sizeof(host), &port), 0);
    CHECK_STR(host, "users-2");
    CHECK_INT(gv_split_hostport("[::1]:8080", host, sizeof(host), &port), 0);
    CHECK_STR(host, "::1");
    CHECK_INT(port, 8080);
    CHECK_INT(gv_split_hostport("nohost", host, sizeof(host), &port), GV_EINVAL);
    CHECK_INT(gv_split_hostport(":80", host, sizeof(host), &port), GV_EINVAL);
    CHECK_INT(gv_split_hostport("a:0", host, sizeof(host), &port), GV_EINVAL);
    CHECK_INT(gv_split_hostport("a:65536", host, sizeof(host), &port), GV_EINVAL);
    CHECK_INT(gv_split_hostport("a:8x", host, sizeof(host), &port), GV_EINVAL);
    CHECK_INT(gv_split_hostport("::1:80", host, sizeof(host), &port), GV_EINVAL);
}

static void test_hash(void)
{
    CHECK(gv_hash64("abc", 3, 0) == gv_hash64("abc", 3, 0));
    CHECK(gv_hash64("abc", 3, 0) != gv_hash64("abd", 3, 0));
    CHECK(gv_hash64("abc", 3, 0) != gv_hash64("abc", 3, 1));
}

TEST_MAIN(TEST(test_duration), TEST(test_hostport), TEST(test_hash))
