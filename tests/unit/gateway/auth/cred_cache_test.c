/* cred_cache_test.c - the per-thread verified-credential cache: exact-match
 * hits, generations kept apart, expiry with skew, size limits. (jwt_test.c
 * also drives it with real tokens.) */
#include "gateway/auth/cred_cache.h"
#include "test.h"

#include <stdint.h>
#include <string.h>

static void test_generations_and_expiry(void)
{
    uint64_t a = gw_cred_cache_gen(), b = gw_cred_cache_gen();
    size_t idx = 99;
    CHECK(a != 0 && b != 0 && a != b);
    CHECK(!gw_cred_cache_get(a, "Basic abc", 9, 0, 0, &idx)); /* nothing put yet */
    gw_cred_cache_put(a, "Basic abc", 9, INT64_MAX, 3);
    CHECK(gw_cred_cache_get(a, "Basic abc", 9, INT64_MAX - 1, 30, &idx) && idx == 3);
    CHECK(!gw_cred_cache_get(b, "Basic abc", 9, 0, 0, &idx)); /* another credential set */
    CHECK(!gw_cred_cache_get(a, "Basic abd", 9, 0, 0, &idx)); /* same length, other bytes */
    CHECK(!gw_cred_cache_get(a, "Basic ab", 8, 0, 0, &idx));  /* a prefix */
    gw_cred_cache_put(b, "tok", 3, 1000, 1);
    CHECK(gw_cred_cache_get(b, "tok", 3, 1029, 30, &idx) && idx == 1); /* inside the skew */
    CHECK(!gw_cred_cache_get(b, "tok", 3, 1030, 30, &idx));            /* expired: dropped */
    CHECK(!gw_cred_cache_get(b, "tok", 3, 0, 0, &idx));
    gw_cred_cache_reset();
}

static void test_sizes(void)
{
    static char big[GW_CRED_CACHE_MAX_LEN + 1];
    uint64_t g = gw_cred_cache_gen();
    size_t idx;
    memset(big, 'x', sizeof(big));
    gw_cred_cache_put(g, big, GW_CRED_CACHE_MAX_LEN, INT64_MAX, 7);
    CHECK(gw_cred_cache_get(g, big, GW_CRED_CACHE_MAX_LEN, 0, 0, &idx) && idx == 7);
    gw_cred_cache_put(g, big, sizeof(big), INT64_MAX, 8);
    CHECK(!gw_cred_cache_get(g, big, sizeof(big), 0, 0, &idx));
    gw_cred_cache_put(g, "", 0, INT64_MAX, 9);
    CHECK(!gw_cred_cache_get(g, "", 0, 0, 0, &idx));
    gw_cred_cache_reset();
    CHECK(!gw_cred_cache_get(g, big, GW_CRED_CACHE_MAX_LEN, 0, 0, &idx)); /* reset empties */
}

TEST_MAIN(TEST(test_generations_and_expiry), TEST(test_sizes))
