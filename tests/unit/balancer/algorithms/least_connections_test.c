/* least_connections_test.c - weighted least connections: shares under load, ties
 * spread round robin, exclusion of non-candidates. */
#include "lb_fixture.h"

static void test_distribution(void)
{
    static const int w[] = {1, 2, 3};
    long counts[3] = {0};
    struct fx f;
    fx_init(&f, "least_connections", w, 3);
    fx_simulate(&f, 100000, 600, counts);
    CHECK(fx_shares("least_connections {1,2,3}", counts, w, 3) < 0.02);
    fx_free(&f);
}

static void test_picks_least_loaded(void)
{
    static const int w[] = {1, 1, 2};
    struct fx f;
    fx_init(&f, "least_connections", w, 3);
    struct lb_pick_ctx c = fx_ctx(1);
    atomic_store(&f.st[0].inflight, 5);
    atomic_store(&f.st[1].inflight, 3);
    atomic_store(&f.st[2].inflight, 8); /* 8/2 = 4 per weight */
    CHECK_INT(lb_pick(f.b, &c), 1);
    atomic_store(&f.st[2].inflight, 5); /* 2.5 per weight */
    CHECK_INT(lb_pick(f.b, &c), 2);
    fx_free(&f);
}

static void test_ties_rotate(void)
{
    static const int w[] = {1, 1, 1};
    long counts[3] = {0};
    struct fx f;
    fx_init(&f, "least_connections", w, 3);
    struct lb_pick_ctx c = fx_ctx(1);
    /* Requests that finish before the next arrives: every pick is a tie. */
    for (int k = 0; k < 300; k++) {
        int i = lb_pick(f.b, &c);
        CHECK(i >= 0);
        if (i >= 0)
            counts[i]++;
    }
    CHECK_INT(counts[0], 100);
    CHECK_INT(counts[1], 100);
    CHECK_INT(counts[2], 100);
    fx_free(&f);
}

static void test_exclusion(void)
{
    fx_check_exclusion("least_connections");
}

TEST_MAIN(TEST(test_distribution), TEST(test_picks_least_loaded), TEST(test_ties_rotate),
          TEST(test_exclusion))
