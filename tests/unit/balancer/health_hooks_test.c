/* health_hooks_test.c - the shared health plane's hooks into the active
 * checker: a target this node does not probe gets no probe and no verdict;
 * once it is ours, its transitions are reported. The target is a closed
 * local port (connection refused), so no server is needed. No sleeps: the
 * loop runs until a condition holds or a deadline passes. */
#include "balancer/health.h"
#include "common/err.h"
#include "common/util.h"
#include "test.h"

#include <stdlib.h>
#include <uv.h>

#define DEADLINE_MS 10000

struct plane {
    bool ours;
    int asked;
    int transitions;
    bool last_healthy;
    char last_why[160];
    char last_target[300];
    uint64_t until_ms;
};

static bool should_probe(void *arg, const char *service, const char *address)
{
    struct plane *p = arg;
    p->asked++;
    return p->ours;
}

static void on_transition(void *arg, const char *service, const char *address, bool healthy,
                          const char *why)
{
    struct plane *p = arg;
    p->transitions++;
    p->last_healthy = healthy;
    snprintf(p->last_why, sizeof(p->last_why), "%s", why);
    snprintf(p->last_target, sizeof(p->last_target), "%s/%s", service, address);
}

static void poke_cb(uv_timer_t *t)
{
}

static bool run_until(uv_loop_t *loop, bool (*cond)(void *), void *arg)
{
    uv_timer_t poke;
    uv_timer_init(loop, &poke);
    uv_timer_start(&poke, poke_cb, 5, 5);
    uint64_t end = gv_now_ms() + DEADLINE_MS;
    bool ok;
    while (!(ok = cond(arg)) && gv_now_ms() < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&poke, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static bool asked_often(void *arg)
{
    struct plane *p = arg;
    return p->asked >= 4 && gv_now_ms() >= p->until_ms;
}

static bool got_transition(void *arg)
{
    return ((struct plane *)arg)->transitions > 0;
}

static void stopped(void *arg)
{
    *(bool *)arg = true;
}

static bool is_true(void *arg)
{
    return *(bool *)arg;
}

/* A local port that refuses connections: bound by a socket that closed. */
static uint16_t closed_port(uv_loop_t *loop)
{
    uv_tcp_t s;
    struct sockaddr_in sa;
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_init(loop, &s);
    CHECK_INT(uv_tcp_bind(&s, (const struct sockaddr *)&sa, 0), 0);
    CHECK_INT(uv_tcp_getsockname(&s, (struct sockaddr *)&bound, &len), 0);
    uv_close((uv_handle_t *)&s, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void test_probe_switch_and_transitions(void)
{
    uv_loop_t loop;
    struct lb_registry *reg;
    struct lb_health *h;
    struct lb_service_spec spec;
    char addr[64];

    uv_loop_init(&loop);
    uint16_t port = closed_port(&loop);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)port);
    lb_service_spec_defaults(&spec);
    spec.name = strdup("users");
    spec.targets = calloc(1, sizeof(*spec.targets));
    spec.ntargets = 1;
    spec.targets[0].address = strdup(addr);
    snprintf(spec.targets[0].host, sizeof(spec.targets[0].host), "127.0.0.1");
    spec.targets[0].port = port;
    spec.targets[0].weight = 1;
    spec.health.enabled = true;
    spec.health.interval_ms = 20;
    spec.health.timeout_ms = 500;
    spec.health.healthy = 2;
    spec.health.unhealthy = 3;

    CHECK_INT(lb_registry_new(&reg), 0);
    struct lb_target_state *st = lb_registry_get(reg, "users", addr, true);
    struct lb_target_state *row[] = {st};
    struct lb_target_state **states[] = {row};
    struct plane p = {.ours = false};
    const struct lb_health_hooks hooks = {.should_probe = should_probe,
                                          .on_transition = on_transition};

    CHECK_INT(lb_health_start(&loop, &h), 0);
    lb_health_set_hooks(h, &hooks, &p);
    CHECK_INT(lb_health_set(h, &spec, 1, states), 0);

    /* Not ours: asked every interval, never probed, no verdict. */
    p.until_ms = gv_now_ms() + 100;
    CHECK(run_until(&loop, asked_often, &p));
    CHECK_INT(p.transitions, 0);
    CHECK_INT(atomic_load(&st->reason), LB_REASON_UNCHECKED);
    CHECK_INT(atomic_load(&st->active_healthy), 1);
    CHECK_INT(atomic_load(&st->last_check_ms), 0);

    /* Verdicts from elsewhere set the state of a target we do not probe. */
    CHECK_INT(lb_health_apply(h, "users", addr, false), 0);
    CHECK_INT(atomic_load(&st->active_healthy), 0);
    CHECK_INT(atomic_load(&st->reason), LB_REASON_HEALTH_CHECK);
    CHECK(!lb_target_available(st, gv_now_ms()));
    CHECK_INT(lb_health_apply(h, "users", addr, true), 0);
    CHECK_INT(atomic_load(&st->active_healthy), 1);
    CHECK_INT(atomic_load(&st->reason), LB_REASON_NONE);
    CHECK_INT(lb_health_apply(h, "users", "127.0.0.1:1", false), GV_ENOENT);
    CHECK_INT(lb_health_apply(h, "orders", addr, false), GV_ENOENT);
    CHECK_INT(atomic_load(&st->active_healthy), 1);
    CHECK_INT(p.transitions, 0);

    /* Ours now: it goes on from the shared verdict (healthy, so `unhealthy`
     * failures are needed) and the transition is reported. */
    p.ours = true;
    CHECK(run_until(&loop, got_transition, &p));
    CHECK_INT(p.transitions, 1);
    CHECK(atomic_load(&st->last_check_ms) > 0);
    CHECK(!p.last_healthy);
    CHECK(p.last_why[0] != '\0');
    char want[300];
    snprintf(want, sizeof(want), "users/%s", addr);
    CHECK_STR(p.last_target, want);
    CHECK_INT(atomic_load(&st->active_healthy), 0);
    CHECK_INT(atomic_load(&st->reason), LB_REASON_HEALTH_CHECK);

    /* Hooks removed: probing goes on as before, without questions. */
    lb_health_set_hooks(h, NULL, NULL);
    int asked = p.asked;
    bool done = false;
    lb_health_stop(h, stopped, &done);
    CHECK(run_until(&loop, is_true, &done));
    CHECK_INT(p.asked, asked);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
    lb_service_spec_free(&spec);
    lb_registry_free(reg);
}

TEST_MAIN({"probe_switch_and_transitions", test_probe_switch_and_transitions})
