/* health_share_test.c - the node side of the shared health plane, between a
 * node under test ("a", with its checker, snapshot and swim) and a raw peer
 * swim ("b") on an in-memory network: a's verdicts and passive ejections
 * reach b as channel 2 reports; b's reports change a's target states when
 * they are newer, and malformed, stale, future-stamped or unknown-target
 * reports change nothing. */
#include "node/health_share.h"
#include "node/node.h"
#include "node/state.h"
#include "cluster/healthplane.h"
#include "cluster/hlc.h"
#include "cluster/memnet.h"
#include "cluster/swim.h"
#include "common/err.h"
#include "common/util.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

#define T1 "127.0.0.1:1"
#define T2 "127.0.0.1:2"

static const char config[] =
    "{\"services\":[{\"name\":\"s\",\"targets\":[{\"address\":\"" T1 "\"},{\"address\":\"" T2
    "\"}],\"health_check\":{\"path\":\"/healthz\",\"interval\":\"1h\",\"timeout\":\"200ms\","
    "\"healthy\":1,\"unhealthy\":1},\"passive\":{\"failures\":3,\"eject_for\":\"10s\"}}],"
    "\"routes\":[{\"name\":\"r\",\"match\":{\"paths\":[\"/\"]},\"service\":\"s\"}]}";

static struct {
    struct node n; /* "a" */
    struct cl_memnet *net;
    struct cl_memnet_ep *ea, *eb;
    struct cl_swim *sa, *sb;
    struct cl_hlc hlc_b;
    int got; /* reports b received from a */
    int got_passive;
    struct cl_hp_report last;
    int closing;
} C;

static void b_on_message(void *arg, uint8_t channel, const uint8_t *payload, size_t len,
                         const char *origin)
{
    struct cl_hp_report r;
    CHECK_INT(cl_hp_decode(payload, len, &r), 0);
    CHECK_STR(origin, "a");
    C.got++;
    if (cl_hp_is_passive(&r))
        C.got_passive++;
    C.last = r;
}

static const struct cl_channel_ops b_ops = {.on_message = b_on_message};

static void on_tick(uv_timer_t *t)
{
}

static bool run_until(bool (*pred)(void), uint64_t timeout_ms)
{
    uv_timer_t tick;
    uv_timer_init(&C.n.loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    uv_update_time(&C.n.loop);
    uint64_t end = uv_now(&C.n.loop) + timeout_ms;
    bool ok;
    while (!(ok = pred()) && uv_now(&C.n.loop) < end)
        uv_run(&C.n.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&C.n.loop, UV_RUN_NOWAIT);
    return ok;
}

static int new_swim(const char *name, const char *addr, const char *seed, struct cl_memnet_ep **ep,
                    struct cl_swim **out)
{
    struct cl_swim_config cfg;
    cl_swim_config_init(&cfg);
    cl_timing_lan(&cfg.timing);
    cl_timing_scale(&cfg.timing, 0.05);
    cfg.name = name;
    cfg.advertise = addr;
    const char *seeds[1] = {seed};
    cfg.seeds = seeds;
    cfg.n_seeds = seed ? 1 : 0;
    int rc = cl_memnet_attach(C.net, addr, ep);
    if (rc == 0)
        rc = cl_swim_new(&C.n.loop, &cfg, cl_memnet_transport(*ep), out);
    if (rc == 0)
        cl_memnet_set_receiver(*ep, cl_swim_on_receive, *out);
    return rc == 0 ? cl_swim_start(*out) : rc;
}

static struct lb_target_state *state(const char *addr)
{
    return lb_registry_get(C.n.registry, "s", addr, true);
}

static int count_alive(void *arg, const struct cl_member_info *m)
{
    *(int *)arg += m->state == CL_STATE_ALIVE;
    return 0;
}

static bool joined(void)
{
    int a = 0, b = 0;
    cl_swim_members(C.sa, count_alive, &a);
    cl_swim_members(C.sb, count_alive, &b);
    return a == 2 && b == 2;
}

static void setup(void)
{
    memset(&C, 0, sizeof(C));
    CHECK_INT(uv_loop_init(&C.n.loop), 0);
    gw_snapshot_slot_init(&C.n.slot);
    CHECK_INT(lb_registry_new(&C.n.registry), 0);
    CHECK_INT(lb_health_start(&C.n.loop, &C.n.health), 0);
    CHECK_INT(cl_memnet_new(&C.n.loop, 7, &C.net), 0);
    cl_memnet_set_latency(C.net, 1, 1);
    CHECK_INT(new_swim("a", "10.0.0.1:7946", NULL, &C.ea, &C.sa), 0);
    CHECK_INT(new_swim("b", "10.0.0.2:7946", "10.0.0.1:7946", &C.eb, &C.sb), 0);
    CHECK_INT(cl_swim_register_channel(C.sb, CL_HP_CHANNEL, &b_ops, NULL), 0);
    CHECK(run_until(joined, 5000));
    CHECK_INT(node_health_share_start(&C.n, C.sa), 0);
    /* the config last, so the first probes run with the hooks in place */
    json_error_t je;
    json_t *j = json_loads(config, 0, &je);
    struct node_state st;
    struct node_state_error err;
    CHECK(j != NULL);
    CHECK_INT(node_state_from_json(j, &st, &err), 0);
    json_decref(j);
    CHECK_INT(node_publish(&C.n, &st, 1, NULL), 0);
}

static void on_closed(void *arg)
{
    C.closing--;
}

static bool all_closed(void)
{
    return C.closing == 0;
}

static void teardown(void)
{
    node_health_share_stop();
    C.closing = 4;
    lb_health_stop(C.n.health, on_closed, NULL);
    cl_memnet_set_receiver(C.ea, NULL, NULL);
    cl_memnet_set_receiver(C.eb, NULL, NULL);
    cl_swim_stop(C.sa, on_closed, NULL);
    cl_swim_stop(C.sb, on_closed, NULL);
    cl_memnet_close(C.net, on_closed, NULL);
    CHECK(run_until(all_closed, 3000));
    uv_run(&C.n.loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&C.n.loop), 0);
    gw_snapshot_slot_fini(&C.n.slot);
    lb_registry_free(C.n.registry);
}

/* b sends one report (or raw bytes) on channel 2 */
static void b_send(const uint8_t *p, size_t len)
{
    CHECK_INT(cl_swim_broadcast(C.sb, CL_HP_CHANNEL, "", p, len), 0);
}

static void report_as(const char *checker, const char *addr, bool healthy, const char *reason,
                      uint64_t stamp)
{
    struct cl_hp_report r;
    memset(&r, 0, sizeof(r));
    snprintf(r.service, sizeof(r.service), "s");
    snprintf(r.address, sizeof(r.address), "%s", addr);
    snprintf(r.reason, sizeof(r.reason), "%s", reason);
    snprintf(r.checker, sizeof(r.checker), "%s", checker);
    r.healthy = healthy;
    r.stamp = stamp;
    struct gv_buf b;
    gv_buf_init(&b);
    CHECK_INT(cl_hp_encode(&r, &b), 0);
    b_send((const uint8_t *)b.data, b.len);
    gv_buf_free(&b);
}

static void b_report(const char *addr, bool healthy, const char *reason, uint64_t stamp)
{
    report_as("b", addr, healthy, reason, stamp);
}

static struct node_health_share_stats stats(void)
{
    struct node_health_share_stats s;
    node_health_share_stats(&s);
    return s;
}

static bool both_reported(void)
{
    return C.got >= 2 && !atomic_load(&state(T1)->active_healthy) &&
           !atomic_load(&state(T2)->active_healthy);
}

static bool t1_healthy(void)
{
    return atomic_load(&state(T1)->active_healthy) == 1;
}

static uint64_t want_malformed, want_ignored;

static bool malformed_counted(void)
{
    return stats().malformed >= want_malformed;
}

static bool ignored_counted(void)
{
    return stats().ignored >= want_ignored;
}

static uint64_t applied_before;

static bool applied_more(void)
{
    return stats().applied > applied_before;
}

static bool t1_down(void)
{
    return atomic_load(&state(T1)->active_healthy) == 0;
}

static bool t2_ejected(void)
{
    return atomic_load(&state(T2)->ejected_until_ms) > gv_now_ms() + 5000;
}

static bool never(void)
{
    return false;
}

static bool passive_reported(void)
{
    return C.got_passive > 0;
}

static void test_share(void)
{
    setup();
    /* a probes both (two members, two checkers each): connection refused on
     * the first probe takes them out, and a tells b */
    json_t *by = node_health_share_checkers("a", "s", T1);
    CHECK_INT(json_array_size(by), 2);
    json_decref(by);
    CHECK(run_until(both_reported, 5000));
    CHECK(!C.last.healthy && C.last.stamp > 0);
    CHECK_STR(C.last.checker, "a");
    CHECK(strncmp(C.last.reason, "health_check: ", 14) == 0);

    /* garbage and a report from the future change nothing */
    static const uint8_t junk[] = {0x93, 0xc4, 0x04, 'G', 'V', 'H', 'P', 0x01, 0xc0};
    b_send(junk, sizeof(junk));
    uint64_t future = (cl_hlc_wall_ms() + 2 * CL_HLC_MAX_AHEAD_MS - CL_HLC_EPOCH_MS)
                      << CL_HLC_LOGICAL_BITS;
    b_report(T1, true, "", future);
    want_malformed = 2;
    CHECK(run_until(malformed_counted, 5000));
    CHECK(!t1_healthy());

    /* a newer verdict from b is applied... */
    b_report(T1, true, "", cl_hlc_now(&C.hlc_b, cl_hlc_wall_ms()));
    CHECK(run_until(t1_healthy, 5000));
    CHECK_INT(atomic_load(&state(T1)->reason), LB_REASON_NONE);
    /* ...an older one and one for an unknown target are not */
    want_ignored = stats().ignored + 2;
    b_report(T1, false, "health_check: status 503", 1);
    b_report("10.9.9.9:80", false, "health_check: status 503",
             cl_hlc_now(&C.hlc_b, cl_hlc_wall_ms()));
    CHECK(run_until(ignored_counted, 5000));
    CHECK(t1_healthy());

    /* a newer "unhealthy" from a node that is not a checker of t1 (the far
     * side of a healed partition) does not take it out while a current
     * checker (b) says healthy, though a's own probes fail */
    applied_before = stats().applied;
    report_as("gone", T1, false, "health_check: connect: timeout",
              cl_hlc_now(&C.hlc_b, cl_hlc_wall_ms()));
    want_ignored = 0;
    CHECK(run_until(applied_more, 5000));
    CHECK(t1_healthy());
    CHECK(state(T1)->own_down); /* a's own verdict stays its own */
    /* when b says unhealthy too, no current checker says healthy */
    b_report(T1, false, "health_check: status 503", cl_hlc_now(&C.hlc_b, cl_hlc_wall_ms()));
    CHECK(run_until(t1_down, 5000));
    b_report(T1, true, "", cl_hlc_now(&C.hlc_b, cl_hlc_wall_ms()));
    CHECK(run_until(t1_healthy, 5000));

    /* b's passive ejection ejects t2 here for what is left of its 10 s */
    b_report(T2, false, CL_HP_REASON_PASSIVE, cl_hlc_now(&C.hlc_b, cl_hlc_wall_ms()));
    CHECK(run_until(t2_ejected, 5000));
    CHECK(atomic_load(&state(T2)->ejected_until_ms) <= gv_now_ms() + 10000);
    run_until(never, 300);
    CHECK_INT(C.got_passive, 0); /* not reported back */

    /* a's own ejection (as a worker makes it) is reported to b */
    atomic_store(&state(T1)->ejected_until_ms, gv_now_ms() + 10000);
    CHECK(run_until(passive_reported, 5000));
    CHECK_STR(C.last.address, T1);
    CHECK_STR(C.last.reason, CL_HP_REASON_PASSIVE);
    struct node_health_share_stats s = stats();
    CHECK(s.sent >= 3);
    CHECK_INT(s.malformed, 2);
    teardown();
}

TEST_MAIN({"share", test_share})
