/* lb_test.c - balancer construction per algorithm and the candidate test. */
#include "balancer/lb.h"
#include "common/err.h"
#include "test.h"

#include <stdlib.h>

static void test_new_per_algo(void)
{
    struct lb_target_state st[2];
    struct lb_target_state *states[2] = {&st[0], &st[1]};
    struct lb_service_spec s;
    memset(st, 0, sizeof(st));
    lb_service_spec_defaults(&s);
    s.targets = calloc(2, sizeof(*s.targets));
    s.ntargets = 2;
    s.targets[0].address = strdup("a:1");
    s.targets[0].weight = 1;
    s.targets[1].address = strdup("b:1");
    s.targets[1].weight = 1;
    atomic_store(&st[0].active_healthy, 1);
    atomic_store(&st[1].active_healthy, 1);
    for (size_t a = 0; a < lb_algo_count(); a++) {
        struct lb_balancer *b = NULL;
        s.algo = lb_algo_at(a);
        CHECK_INT(lb_balancer_new(&s, states, &b), 0);
        if (b == NULL)
            continue;
        CHECK(b->ops == s.algo);
        CHECK(b->spec == &s && b->states == states);
        struct lb_pick_ctx c = {.now_ms = 1, .has_hash = true, .hash = 12345};
        int i = lb_pick(b, &c);
        CHECK(i == 0 || i == 1);
        lb_balancer_free(b);
    }
    struct lb_balancer *b = (struct lb_balancer *)&s; /* must stay untouched */
    s.algo = NULL;                                    /* no algorithm */
    CHECK_INT(lb_balancer_new(&s, states, &b), GV_EINVAL);
    CHECK(b == (struct lb_balancer *)&s);
    s.algo = lb_algo_default();
    CHECK_INT(lb_balancer_new(&s, NULL, &b), GV_EINVAL);
    lb_balancer_free(NULL);
    lb_service_spec_free(&s);
}

static void test_candidate(void)
{
    struct lb_target_state st[3];
    struct lb_target_state *states[3] = {&st[0], &st[1], &st[2]};
    struct lb_service_spec s;
    struct lb_balancer *b = NULL;
    memset(st, 0, sizeof(st));
    lb_service_spec_defaults(&s);
    s.targets = calloc(3, sizeof(*s.targets));
    s.ntargets = 3;
    for (int i = 0; i < 3; i++) {
        s.targets[i].address = strdup("t:1");
        s.targets[i].weight = 0; /* treated as 1 */
        atomic_store(&st[i].active_healthy, 1);
    }
    CHECK_INT(lb_balancer_new(&s, states, &b), 0);
    if (b == NULL)
        return;
    CHECK_INT(lb_weight(b, 0), 1);
    int tried[] = {2};
    struct lb_pick_ctx c = {.now_ms = 10, .tried = tried, .ntried = 1};
    CHECK(lb_candidate(b, 0, &c));
    CHECK(!lb_candidate(b, 2, &c));
    CHECK(!lb_candidate(b, -1, &c));
    CHECK(!lb_candidate(b, 3, &c));
    atomic_store(&st[0].ejected_until_ms, 11);
    CHECK(!lb_candidate(b, 0, &c));
    c.now_ms = 11;
    CHECK(lb_candidate(b, 0, &c));
    atomic_store(&st[1].active_healthy, 0);
    CHECK(!lb_candidate(b, 1, &c));
    lb_balancer_free(b);
    lb_service_spec_free(&s);
}

TEST_MAIN(TEST(test_new_per_algo), TEST(test_candidate))
