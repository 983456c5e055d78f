/* random_test.c - weighted random: shares and exclusion. */
#include "lb_fixture.h"

static void test_distribution(void)
{
    static const int w[] = {1, 2, 3};
    long counts[3] = {0};
    struct fx f;
    fx_init(&f, "random", w, 3);
    struct lb_pick_ctx c = fx_ctx(1);
    for (int k = 0; k < 100000; k++) {
        int i = lb_pick(f.b, &c);
        CHECK(i >= 0 && i < 3);
        if (i >= 0)
            counts[i]++;
    }
    /* Sampling noise at 100k picks is ~0.7% (1 sigma) for the lightest
     * target; 5% relative keeps this test from ever flaking while still
     * catching a wrong weighting (which is off by tens of percent). */
    double err = fx_shares("random {1,2,3}", counts, w, 3);
    CHECK(err < 0.05);
    fx_free(&f);
}

static void test_exclusion(void)
{
    fx_check_exclusion("random");
}

TEST_MAIN(TEST(test_distribution), TEST(test_exclusion))
