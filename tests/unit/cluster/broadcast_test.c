/* broadcast_test.c - the transmit-limited queue (replacement by key, fewest
 * transmissions first, limit, bound) and the duplicate filter. */
#include "cluster/broadcast.h"
#include "common/err.h"
#include "test.h"

static void test_queue_order_and_limit(void)
{
    struct cl_bqueue q;
    uint8_t out[256];
    size_t len = 0;
    cl_bq_init(&q, 16);
    CHECK_INT(cl_bq_push(&q, "a", (const uint8_t *)"AAAA", 4, 3), 0);
    CHECK_INT(cl_bq_push(&q, "b", (const uint8_t *)"BB", 2, 3), 0);
    /* newest first among never-sent */
    CHECK_INT(cl_bq_fill(&q, 100, out, sizeof(out), &len), 2);
    CHECK_INT(len, 6);
    CHECK(memcmp(out, "BBAAAA", 6) == 0);
    /* a fresh item goes before ones already sent */
    CHECK_INT(cl_bq_push(&q, "c", (const uint8_t *)"C", 1, 3), 0);
    len = 0;
    CHECK_INT(cl_bq_fill(&q, 1, out, sizeof(out), &len), 1);
    CHECK(len == 1 && out[0] == 'C');
    /* limit 3: two more rounds send each item its third time, then all go */
    len = 0;
    CHECK_INT(cl_bq_fill(&q, 100, out, sizeof(out), &len), 3);
    CHECK_INT(cl_bq_len(&q), 3);
    len = 0;
    CHECK_INT(cl_bq_fill(&q, 100, out, sizeof(out), &len), 3);
    CHECK_INT(cl_bq_len(&q), 0);
    cl_bq_free(&q);
}

static void test_queue_replace_bound_oversize(void)
{
    struct cl_bqueue q;
    uint8_t out[64];
    size_t len = 0;
    cl_bq_init(&q, 2);
    CHECK_INT(cl_bq_push(&q, "m:n1", (const uint8_t *)"old", 3, 10), 0);
    CHECK_INT(cl_bq_push(&q, "m:n1", (const uint8_t *)"new", 3, 10), 0);
    CHECK_INT(cl_bq_len(&q), 1);
    CHECK_INT(q.replaced, 1);
    CHECK_INT(cl_bq_fill(&q, 100, out, sizeof(out), &len), 1);
    CHECK(memcmp(out, "new", 3) == 0);
    CHECK_INT(cl_bq_push(&q, "x", (const uint8_t *)"x", 1, 10), 0);
    CHECK_INT(cl_bq_push(&q, "y", (const uint8_t *)"y", 1, 10), 0);
    CHECK_INT(cl_bq_len(&q), 2);
    CHECK_INT(q.dropped, 1); /* the most sent one, m:n1, went */
    cl_bq_clear(&q);
    /* an item over the budget goes alone, and only if it fits the buffer */
    uint8_t big[40];
    memset(big, 'Z', sizeof(big));
    CHECK_INT(cl_bq_push(&q, "big", big, sizeof(big), 10), 0);
    len = 0;
    CHECK_INT(cl_bq_fill(&q, 10, out, 20, &len), 0);
    CHECK_INT(cl_bq_fill(&q, 10, out, sizeof(out), &len), 1);
    CHECK_INT(len, 40);
    cl_bq_free(&q);
}

static void test_seen(void)
{
    struct cl_seen s;
    CHECK_INT(cl_seen_init(&s, 4), 0);
    CHECK(cl_seen_add(&s, 10));
    CHECK(!cl_seen_add(&s, 10));
    CHECK(cl_seen_add(&s, 0));
    CHECK(!cl_seen_add(&s, 0));
    for (uint64_t i = 100; i < 103; i++)
        CHECK(cl_seen_add(&s, i));
    /* 10 is in the previous generation now: still remembered */
    CHECK(!cl_seen_add(&s, 10));
    for (uint64_t i = 200; i < 210; i++)
        CHECK(cl_seen_add(&s, i));
    /* two generations later it is forgotten */
    CHECK(cl_seen_add(&s, 10));
    cl_seen_free(&s);
}

TEST_MAIN(TEST(test_queue_order_and_limit), TEST(test_queue_replace_bound_oversize),
          TEST(test_seen))
