/* timing_test.c - memberlist's formulas: suspicion timeouts, retransmit
 * limit, push-pull scaling, profiles. */
#include "cluster/timing.h"
#include "common/err.h"
#include "test.h"

static void test_suspicion(void)
{
    /* memberlist: 4 * max(1, log10(N)) * 1 s */
    CHECK_INT(cl_suspicion_min_ms(4, 1, 1000), 4000);
    CHECK_INT(cl_suspicion_min_ms(4, 3, 1000), 4000);
    CHECK_INT(cl_suspicion_min_ms(4, 10, 1000), 4000);
    CHECK_INT(cl_suspicion_min_ms(4, 50, 1000), 6792); /* scale truncated to 1.698 */
    CHECK_INT(cl_suspicion_min_ms(4, 100, 1000), 8000);
    CHECK_INT(cl_suspicion_min_ms(4, 1000, 1000), 12000);
    /* Lifeguard: starts at max, reaches min after k confirmations */
    CHECK_INT(cl_suspicion_timeout_ms(4000, 24000, 2, 0), 24000);
    uint64_t one = cl_suspicion_timeout_ms(4000, 24000, 2, 1);
    CHECK(one > 4000 && one < 24000);
    CHECK_INT(one, 11381); /* 24000 - log(2)/log(3) * 20000 */
    CHECK_INT(cl_suspicion_timeout_ms(4000, 24000, 2, 2), 4000);
    CHECK_INT(cl_suspicion_timeout_ms(4000, 24000, 2, 5), 4000);
    CHECK_INT(cl_suspicion_timeout_ms(4000, 24000, 0, 0), 4000);
}

static void test_retransmit_and_push_pull(void)
{
    CHECK_INT(cl_retransmit_limit(4, 1), 4);
    CHECK_INT(cl_retransmit_limit(4, 9), 4);
    CHECK_INT(cl_retransmit_limit(4, 10), 8);
    CHECK_INT(cl_retransmit_limit(4, 100), 12);
    CHECK_INT(cl_push_pull_scale(30000, 10), 30000);
    CHECK_INT(cl_push_pull_scale(30000, 32), 30000);
    CHECK_INT(cl_push_pull_scale(30000, 33), 60000);
    CHECK_INT(cl_push_pull_scale(30000, 64), 60000);
    CHECK_INT(cl_push_pull_scale(30000, 65), 90000);
}

static void test_profiles(void)
{
    struct cl_timing t;
    CHECK_INT(cl_timing_profile("lan", &t), 0);
    CHECK_INT(t.probe_interval_ms, 1000);
    CHECK_INT(t.probe_timeout_ms, 500);
    CHECK_INT(t.suspicion_mult, 4);
    CHECK_INT(t.suspicion_max_timeout_mult, 6);
    CHECK_INT(t.gossip_interval_ms, 200);
    CHECK_INT(t.gossip_nodes, 3);
    CHECK_INT(t.retransmit_mult, 4);
    CHECK_INT(t.push_pull_interval_ms, 30000);
    CHECK_INT(t.push_pull_early_ms, 2000);
    CHECK_INT(t.indirect_checks, 3);
    /* scaling keeps an early push-pull that is off, off */
    t.push_pull_early_ms = 0;
    cl_timing_scale(&t, 0.5);
    CHECK_INT(t.push_pull_early_ms, 0);
    CHECK_INT(t.push_pull_interval_ms, 15000);
    CHECK_INT(cl_timing_profile("wan", &t), 0);
    CHECK_INT(t.probe_interval_ms, 5000);
    CHECK_INT(t.probe_timeout_ms, 3000);
    CHECK_INT(t.suspicion_mult, 6);
    CHECK_INT(t.gossip_nodes, 4);
    CHECK_INT(cl_timing_profile("local", &t), 0);
    CHECK_INT(t.probe_timeout_ms, 200);
    CHECK_INT(t.indirect_checks, 1);
    CHECK_INT(t.suspicion_mult, 3);
    CHECK_INT(cl_timing_profile("moon", &t), GV_EINVAL);
    CHECK_INT(t.suspicion_mult, 3);
    cl_timing_lan(&t);
    cl_timing_scale(&t, 0.05);
    CHECK_INT(t.probe_interval_ms, 50);
    CHECK_INT(t.gossip_interval_ms, 10);
    CHECK_INT(t.suspicion_mult, 4);
}

TEST_MAIN(TEST(test_suspicion), TEST(test_retransmit_and_push_pull), TEST(test_profiles))
