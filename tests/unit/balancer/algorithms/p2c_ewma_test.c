/* p2c_ewma_test.c - power of two choices on latency x load: shares under
 * load with equal latency, preference for the faster target, newcomers. */
#include "lb_fixture.h"

static void test_distribution(void)
{
    static const int w[] = {1, 2, 3};
    long counts[3] = {0};
    struct fx f;
    fx_init(&f, "p2c_ewma", w, 3);
    for (int i = 0; i < 3; i++)
        atomic_store(&f.st[i].ewma_us, 1000);
    fx_simulate(&f, 100000, 600, counts);
    CHECK(fx_shares("p2c_ewma {1,2,3}", counts, w, 3) < 0.02);
    fx_free(&f);
}

static void test_prefers_fast(void)
{
    static const int w[] = {1, 1};
    struct fx f;
    fx_init(&f, "p2c_ewma", w, 2);
    struct lb_pick_ctx c = fx_ctx(1);
    atomic_store(&f.st[0].ewma_us, 10000);
    atomic_store(&f.st[1].ewma_us, 1000);
    for (int k = 0; k < 100; k++)
        CHECK_INT(lb_pick(f.b, &c), 1);
    /* Load counts too: 1000us x 11 in flight costs more than 10000us x 1. */
    atomic_store(&f.st[1].inflight, 10);
    for (int k = 0; k < 100; k++)
        CHECK_INT(lb_pick(f.b, &c), 0);
    fx_free(&f);
}

static void test_unsampled_compares_on_load(void)
{
    static const int w[] = {1, 1};
    struct fx f;
    fx_init(&f, "p2c_ewma", w, 2);
    struct lb_pick_ctx c = fx_ctx(1);
    atomic_store(&f.st[0].ewma_us, 0); /* new target, no sample yet */
    atomic_store(&f.st[1].ewma_us, 5000);
    atomic_store(&f.st[0].inflight, 3);
    for (int k = 0; k < 100; k++)
        CHECK_INT(lb_pick(f.b, &c), 1);
    atomic_store(&f.st[0].inflight, 0);
    atomic_store(&f.st[1].inflight, 3);
    for (int k = 0; k < 100; k++)
        CHECK_INT(lb_pick(f.b, &c), 0);
    fx_free(&f);
}

static void test_exclusion(void)
{
    fx_check_exclusion("p2c_ewma");
}

TEST_MAIN(TEST(test_distribution), TEST(test_prefers_fast), TEST(test_unsampled_compares_on_load),
          TEST(test_exclusion))
