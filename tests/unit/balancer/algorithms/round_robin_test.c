/* round_robin_test.c - smooth weighted round robin: exact shares, interleaving,
 * exclusion of non-candidates. */
#include "lb_fixture.h"

static void test_distribution(void)
{
    static const int w[] = {1, 2, 3};
    long counts[3] = {0};
    struct fx f;
    fx_init(&f, "round_robin", w, 3);
    struct lb_pick_ctx c = fx_ctx(1);
    for (int k = 0; k < 100000; k++) {
        int i = lb_pick(f.b, &c);
        CHECK(i >= 0 && i < 3);
        if (i >= 0)
            counts[i]++;
    }
    /* Deterministic: every 6 picks are exactly 1+2+3. */
    CHECK(fx_shares("round_robin {1,2,3}", counts, w, 3) < 0.001);
    fx_free(&f);
}

static void test_smooth(void)
{
    static const int w[] = {5, 1, 1};
    struct fx f;
    fx_init(&f, "round_robin", w, 3);
    struct lb_pick_ctx c = fx_ctx(1);
    char seq[8] = {0};
    for (int k = 0; k < 7; k++)
        seq[k] = (char)('a' + lb_pick(f.b, &c));
    CHECK_STR(seq, "aabacaa");
    fx_free(&f);
}

static void test_equal_weights_rotate(void)
{
    static const int w[] = {1, 1, 1, 1};
    struct fx f;
    fx_init(&f, "round_robin", w, 4);
    struct lb_pick_ctx c = fx_ctx(1);
    for (int k = 0; k < 12; k++)
        CHECK_INT(lb_pick(f.b, &c), k % 4);
    fx_free(&f);
}

static void test_exclusion(void)
{
    fx_check_exclusion("round_robin");
}

/* A target that comes back joins the rotation without a burst. */
static void test_recovery_no_burst(void)
{
    static const int w[] = {1, 1};
    struct fx f;
    fx_init(&f, "round_robin", w, 2);
    struct lb_pick_ctx c = fx_ctx(1);
    atomic_store(&f.st[1].active_healthy, 0);
    for (int k = 0; k < 1000; k++)
        CHECK_INT(lb_pick(f.b, &c), 0);
    atomic_store(&f.st[1].active_healthy, 1);
    int run = 0, longest = 0, prev = -1;
    for (int k = 0; k < 100; k++) {
        int i = lb_pick(f.b, &c);
        run = i == prev ? run + 1 : 1;
        longest = GV_MAX(longest, run);
        prev = i;
    }
    CHECK(longest <= 2);
    fx_free(&f);
}

TEST_MAIN(TEST(test_distribution), TEST(test_smooth), TEST(test_equal_weights_rotate),
          TEST(test_exclusion), TEST(test_recovery_no_burst))
