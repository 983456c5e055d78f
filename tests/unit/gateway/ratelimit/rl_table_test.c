/* rl_table_test.c - token bucket (GCRA) math, the bounded key table under a
 * flood of 1,000,000 distinct keys. */
#include "gateway/ratelimit/rl_table.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_bucket(void)
{
    struct gw_rl_table *t;
    struct gw_rl_result r;
    CHECK_INT(gw_rl_table_new(1024, &t), 0);
    uint64_t now = 1000000000; /* µs */
    for (int i = 0; i < 10; i++) {
        gw_rl_take(t, 42, 10, 1000000, 0, now, &r);
        CHECK(r.allowed);
        CHECK_INT((int)r.remaining, 9 - i);
        CHECK_INT((int)r.limit, 10);
    }
    gw_rl_take(t, 42, 10, 1000000, 0, now, &r);
    CHECK(!r.allowed);
    CHECK_INT((int)r.remaining, 0);
    CHECK_INT((int)r.retry_ms, 100);
    CHECK_INT((int)r.reset_ms, 1000);
    /* One token back every 100 ms. */
    gw_rl_take(t, 42, 10, 1000000, 0, now + 100000, &r);
    CHECK(r.allowed);
    gw_rl_take(t, 42, 10, 1000000, 0, now + 100000, &r);
    CHECK(!r.allowed);
    /* Another key is independent; burst 3 caps the bucket. */
    int ok = 0;
    for (int i = 0; i < 10; i++) {
        gw_rl_take(t, 7, 10, 1000000, 3, now, &r);
        ok += r.allowed;
    }
    CHECK_INT(ok, 3);
    /* Over a long run the rate is the limit: 10/s for 5 s (+ the burst). */
    ok = 0;
    for (uint64_t us = 0; us < 5000000; us += 1000) {
        gw_rl_take(t, 99, 10, 1000000, 0, now + us, &r);
        ok += r.allowed;
    }
    CHECK(ok >= 59 && ok <= 61);
    gw_rl_table_free(t);
}

static long rss_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void test_bounded_keys(void)
{
    struct gw_rl_table *t;
    struct gw_rl_result r;
    CHECK_INT(gw_rl_table_new(1u << 17, &t), 0);
    size_t bytes = gw_rl_table_bytes(t);
    long before = rss_kib();
    uint64_t now = 5000000000ULL;
    /* A hot key, drained. */
    for (int i = 0; i < 10; i++)
        gw_rl_take(t, gw_rl_hash("hot", 3, 0), 10, 1000000, 0, now, &r);
    char key[32];
    for (int i = 0; i < 1000000; i++) {
        int n = snprintf(key, sizeof(key), "client-%d", i);
        gw_rl_take(t, gw_rl_hash(key, (size_t)n, 0), 10, 1000000, 0, now, &r);
        CHECK(r.allowed);
    }
    long after = rss_kib();
    printf("1,000,000 keys: table %zu KiB fixed, RSS %ld -> %ld KiB, %zu active, %llu evicted\n",
           bytes / 1024, before, after, gw_rl_table_active(t, now),
           (unsigned long long)gw_rl_evictions(t));
    CHECK(gw_rl_table_bytes(t) == bytes);
    CHECK(after - before <= (long)(bytes / 1024) + 1024);
    CHECK(gw_rl_table_active(t, now) <= gw_rl_table_capacity(t));
    CHECK(gw_rl_evictions(t) > 0);
    /* The drained hot key was not the one evicted: still limited. */
    gw_rl_take(t, gw_rl_hash("hot", 3, 0), 10, 1000000, 0, now, &r);
    CHECK(!r.allowed);
    gw_rl_table_free(t);
}

/* The table lists the slots keys took, each once, so the cluster tick reads
 * those and not the whole table: a new key adds its slot, the same key again
 * or a key handed an idle slot adds nothing, and the listed slots are the
 * ones that hold keys. */
static void test_claimed(void)
{
    struct gw_rl_table *t;
    struct gw_rl_result r;
    CHECK_INT(gw_rl_table_new(64, &t), 0);
    CHECK_INT(gw_rl_table_claimed(t), 0);
    gw_rl_take(t, 42, 10, 1000000, 0, 1000000, &r);
    CHECK_INT(gw_rl_table_claimed(t), 1);
    CHECK_INT(gw_rl_table_claimed_at(t, 0), gw_rl_find(t, 42));
    gw_rl_take(t, 42, 10, 1000000, 0, 1000000, &r);
    CHECK_INT(gw_rl_table_claimed(t), 1);
    CHECK_INT(gw_rl_table_claimed_at(t, 1), -1);
    /* a peer's charge takes a slot too */
    CHECK(gw_rl_charge(t, 7, 3, 1000000) >= 0);
    CHECK_INT(gw_rl_table_claimed(t), 2);
    CHECK_INT(gw_rl_table_claimed_at(t, 1), gw_rl_find(t, 7));
    /* many keys: never more entries than slots, every entry a distinct
     * slot holding a key */
    for (uint64_t k = 100; k < 1100; k++)
        gw_rl_take(t, k * 0x9e3779b97f4a7c15ULL, 10, 1000000, 0, 1000000, &r);
    size_t n = gw_rl_table_claimed(t);
    CHECK(n <= gw_rl_table_capacity(t));
    CHECK(n > 2);
    unsigned char seen[64] = {0};
    for (size_t j = 0; j < n; j++) {
        long i = gw_rl_table_claimed_at(t, j);
        CHECK(i >= 0 && i < 64);
        CHECK_INT(seen[i], 0);
        seen[i] = 1;
        struct gw_rl_slot_state st;
        gw_rl_slot_peek(t, (size_t)i, 1000000, &st);
        CHECK(st.key != 0);
    }
    gw_rl_table_free(t);
}

TEST_MAIN(TEST(test_claimed), TEST(test_bucket), TEST(test_bounded_keys))
