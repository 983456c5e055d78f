/* swim_test.c - membership on an in-memory network with short timings: join
 * through a seed, failure detection, refutation, leave, partition healing,
 * restart, broadcasts, push-pull state, seeds that come up late. */
#include "cluster/memnet.h"
#include "cluster/swim.h"
#include "common/err.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MAXN 6

struct node {
    struct cl_swim *s;
    struct cl_memnet_ep *ep;
    char name[16], addr[32];
    int got[4]; /* broadcasts received per payload id */
    int merged; /* push-pull states merged */
    bool merged_join;
    int dead_seen; /* members this node declared dead */
};

struct cluster {
    uv_loop_t loop;
    struct cl_memnet *net;
    struct node nodes[MAXN];
    int n;
    int closing;
};

static struct cluster C;

static void on_member(void *arg, struct cl_swim *s, const struct cl_member_info *m,
                      enum cl_member_state old, bool first)
{
    struct node *n = arg;
    if (m->state == CL_STATE_DEAD && old != CL_STATE_DEAD)
        n->dead_seen++;
}

static bool quiet_gossip; /* probes, gossip and periodic push-pull every 10 min */

static void timing(struct cl_timing *t)
{
    cl_timing_lan(t);
    cl_timing_scale(t, 0.05); /* probe 50 ms, timeout 25 ms, gossip 10 ms */
    if (quiet_gossip) {
        t->probe_interval_ms = t->gossip_interval_ms = t->push_pull_interval_ms = 600000;
        t->push_pull_early_ms = 100;
    }
}

static int start_node(int i, const char *seed, uint64_t incarnation)
{
    struct node *n = &C.nodes[i];
    snprintf(n->name, sizeof(n->name), "n%d", i);
    snprintf(n->addr, sizeof(n->addr), "10.0.0.%d:7946", i + 1);
    if (n->ep == NULL && cl_memnet_attach(C.net, n->addr, &n->ep) < 0)
        return -1;
    struct cl_swim_config cfg;
    cl_swim_config_init(&cfg);
    timing(&cfg.timing);
    cfg.name = n->name;
    cfg.advertise = n->addr;
    const char *seeds[1] = {seed};
    cfg.seeds = seeds;
    cfg.n_seeds = seed ? 1 : 0;
    cfg.on_member = on_member;
    cfg.on_member_arg = n;
    cfg.incarnation = incarnation;
    int rc = cl_swim_new(&C.loop, &cfg, cl_memnet_transport(n->ep), &n->s);
    if (rc < 0)
        return rc;
    cl_memnet_set_receiver(n->ep, cl_swim_on_receive, n->s);
    cl_memnet_set_down(n->ep, false);
    return cl_swim_start(n->s);
}

static void setup(int n)
{
    memset(&C, 0, sizeof(C));
    uv_loop_init(&C.loop);
    cl_memnet_new(&C.loop, 42, &C.net);
    C.n = n;
    for (int i = 0; i < n; i++)
        CHECK_INT(start_node(i, i ? "10.0.0.1:7946" : NULL, 0), 0);
}

static void on_tick(uv_timer_t *t)
{
}

/* Runs the loop until pred holds or timeout_ms of loop time pass. */
static bool run_until(bool (*pred)(void *), void *arg, uint64_t timeout_ms)
{
    uv_timer_t tick;
    uv_timer_init(&C.loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    uv_update_time(&C.loop);
    uint64_t end = uv_now(&C.loop) + timeout_ms;
    bool ok;
    while (!(ok = pred(arg)) && uv_now(&C.loop) < end)
        uv_run(&C.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&C.loop, UV_RUN_NOWAIT);
    return ok;
}

static bool never(void *arg)
{
    return false;
}

static void run_for(uint64_t ms)
{
    run_until(never, NULL, ms);
}

static void on_closed(void *arg)
{
    C.closing--;
}

static void stop_node(int i)
{
    struct node *n = &C.nodes[i];
    if (n->s == NULL)
        return;
    cl_memnet_set_receiver(n->ep, NULL, NULL);
    C.closing++;
    cl_swim_stop(n->s, on_closed, NULL);
    n->s = NULL;
}

static bool all_closed(void *arg)
{
    return C.closing == 0;
}

static void teardown(void)
{
    for (int i = 0; i < C.n; i++)
        stop_node(i);
    C.closing++;
    cl_memnet_close(C.net, on_closed, NULL);
    CHECK(run_until(all_closed, NULL, 2000));
    uv_run(&C.loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&C.loop), 0);
}

static enum cl_member_state state_of(int viewer, int subject)
{
    struct cl_member_info mi;
    if (cl_swim_member(C.nodes[viewer].s, C.nodes[subject].name, &mi) < 0)
        return (enum cl_member_state) - 1;
    return mi.state;
}

struct want {
    int subject;
    enum cl_member_state state;
    int skip; /* a viewer not asked (-1 for none) */
};

/* Every running node (but skip) sees subject in state. */
static bool all_see(void *arg)
{
    struct want *w = arg;
    for (int i = 0; i < C.n; i++)
        if (C.nodes[i].s && i != w->skip && i != w->subject && state_of(i, w->subject) != w->state)
            return false;
    return true;
}

/* Every running node counts n alive members. */
static bool all_alive(void *arg)
{
    size_t want = (size_t)(intptr_t)arg;
    for (int i = 0; i < C.n; i++) {
        size_t counts[CL_STATE_COUNT];
        if (C.nodes[i].s == NULL)
            continue;
        cl_swim_counts(C.nodes[i].s, counts);
        if (counts[CL_STATE_ALIVE] != want)
            return false;
    }
    return true;
}

static void test_join_and_detect(void)
{
    setup(5);
    CHECK(run_until(all_alive, (void *)(intptr_t)5, 3000));
    CHECK(cl_swim_joined(C.nodes[3].s));
    /* kill n4: it neither sends nor receives */
    cl_memnet_set_down(C.nodes[4].ep, true);
    uint64_t max = cl_swim_suspicion_max_ms(C.nodes[0].s);
    uint64_t min = cl_swim_suspicion_min_ms(C.nodes[0].s);
    CHECK_INT(min, 200); /* 4 * max(1, log10(5)) * 50 ms */
    CHECK_INT(max, 1200);
    uv_update_time(&C.loop);
    uint64_t t0 = uv_now(&C.loop);
    struct want w = {4, CL_STATE_DEAD, -1};
    /* first probe of n4 within a round (5 x 50 ms), the probe itself (50 ms),
     * the suspicion timeout, gossip: allow max + 1 s */
    CHECK(run_until(all_see, &w, max + 1000));
    printf("  n4 dead everywhere after %llu ms (suspicion min %llu, max %llu)\n",
           (unsigned long long)(uv_now(&C.loop) - t0), (unsigned long long)min,
           (unsigned long long)max);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            if (i != j)
                CHECK_INT(state_of(i, j), CL_STATE_ALIVE);
    C.nodes[4].s = (stop_node(4), NULL);
    teardown();
}

/* Whether every running node's transport keeps a connection to every other
 * running node (arg: the node none may keep, or -1). */
static bool all_kept(void *arg)
{
    int gone = (int)(intptr_t)arg;
    for (int i = 0; i < C.n; i++)
        for (int j = 0; C.nodes[i].s != NULL && j < C.n; j++) {
            bool want = j != i && j != gone && C.nodes[j].s != NULL;
            if (cl_memnet_keeps(C.nodes[i].ep, C.nodes[j].addr) != want)
                return false;
        }
    return true;
}

/* A node asks its transport to connect ahead to each live member (a config
 * change goes to all at once), forgets a dead one, and keeps it again when
 * it comes back. */
static void test_connects_ahead_to_members(void)
{
    setup(5);
    CHECK(run_until(all_alive, (void *)(intptr_t)5, 3000));
    CHECK(run_until(all_kept, (void *)(intptr_t)-1, 3000));
    cl_memnet_set_down(C.nodes[4].ep, true);
    struct want w = {4, CL_STATE_DEAD, -1};
    CHECK(run_until(all_see, &w, 3000));
    stop_node(4);
    CHECK(all_kept((void *)(intptr_t)4)); /* forgotten with its death */
    CHECK_INT(start_node(4, "10.0.0.1:7946", 100), 0);
    CHECK(run_until(all_alive, (void *)(intptr_t)5, 3000));
    CHECK(run_until(all_kept, (void *)(intptr_t)-1, 3000));
    teardown();
}

/* n1 tells n0 that n2 (at incarnation inc) is suspect: a false suspicion. */
static void suspect_n2_at_n0(uint64_t inc)
{
    struct cl_wire_update u = {.kind = CL_UPD_SUSPECT,
                               .name = cl_bytes_str("n2"),
                               .incarnation = inc,
                               .from = cl_bytes_str("n1")};
    struct cl_wire_msg m = {
        .type = CL_MSG_GOSSIP, .from = cl_bytes_str("n1"), .updates = &u, .n_updates = 1};
    uint8_t buf[512];
    size_t len;
    CHECK_INT(cl_wire_encode(&m, NULL, 0, 0, buf, sizeof(buf), &len), 0);
    cl_swim_receive(C.nodes[0].s, buf, len);
    CHECK_INT(state_of(0, 2), CL_STATE_SUSPECT);
}

static void test_refute(void)
{
    setup(3);
    CHECK(run_until(all_alive, (void *)(intptr_t)3, 3000));
    uint64_t inc = cl_swim_incarnation(C.nodes[2].s);
    suspect_n2_at_n0(inc);
    struct want w = {2, CL_STATE_ALIVE, -1};
    CHECK(run_until(all_see, &w, 1000));
    CHECK(cl_swim_incarnation(C.nodes[2].s) > inc);
    CHECK(cl_swim_stats(C.nodes[2].s)->refutes >= 1);
    struct cl_member_info mi;
    CHECK_INT(cl_swim_member(C.nodes[0].s, "n2", &mi), 0);
    CHECK(mi.incarnation > inc);
    /* no one ever saw a death */
    run_for(1500);
    for (int i = 0; i < 3; i++)
        CHECK_INT(C.nodes[i].dead_seen, 0);
    /* an alive about n2 with a higher incarnation than its own (its state
     * from before a restart): n2 jumps above it */
    struct cl_wire_update a = {.kind = CL_UPD_ALIVE,
                               .name = cl_bytes_str("n2"),
                               .addr = cl_bytes_str("10.0.0.3:7946"),
                               .incarnation = inc + 1000};
    struct cl_wire_msg m = {
        .type = CL_MSG_GOSSIP, .from = cl_bytes_str("n1"), .updates = &a, .n_updates = 1};
    uint8_t buf[512];
    size_t len;
    CHECK_INT(cl_wire_encode(&m, NULL, 0, 0, buf, sizeof(buf), &len), 0);
    cl_swim_receive(C.nodes[2].s, buf, len);
    CHECK(cl_swim_incarnation(C.nodes[2].s) > inc + 1000);
    teardown();
}

static int left_done;

static void on_left(void *arg)
{
    left_done++;
}

static void test_leave(void)
{
    setup(3);
    CHECK(run_until(all_alive, (void *)(intptr_t)3, 3000));
    left_done = 0;
    CHECK_INT(cl_swim_leave(C.nodes[2].s, on_left, NULL), 0);
    CHECK_INT(cl_swim_leave(C.nodes[2].s, on_left, NULL), GV_EINVAL);
    struct want w = {2, CL_STATE_LEFT, -1};
    CHECK(run_until(all_see, &w, 1000));
    run_for(200);
    CHECK_INT(left_done, 1);
    stop_node(2);
    cl_memnet_set_down(C.nodes[2].ep, true);
    run_for(2000); /* still left, never dead */
    CHECK_INT(state_of(0, 2), CL_STATE_LEFT);
    CHECK_INT(C.nodes[0].dead_seen + C.nodes[1].dead_seen, 0);
    teardown();
}

static void test_partition_heals(void)
{
    setup(3);
    CHECK(run_until(all_alive, (void *)(intptr_t)3, 3000));
    cl_memnet_set_group(C.nodes[2].ep, 1);
    struct want w = {2, CL_STATE_DEAD, -1};
    CHECK(run_until(all_see, &w, 3000));
    struct want w0 = {0, CL_STATE_DEAD, 1};
    CHECK(run_until(all_see, &w0, 3000));
    /* stay apart long enough for the dead to be reaped (3 s here) */
    run_for(3500);
    cl_memnet_heal(C.net);
    uv_update_time(&C.loop);
    uint64_t t0 = uv_now(&C.loop);
    CHECK(run_until(all_alive, (void *)(intptr_t)3, 5000));
    printf("  partition healed %llu ms after the network did\n",
           (unsigned long long)(uv_now(&C.loop) - t0));
    teardown();
}

static void test_restart(void)
{
    setup(3);
    CHECK(run_until(all_alive, (void *)(intptr_t)3, 3000));
    uint64_t inc = cl_swim_incarnation(C.nodes[2].s);
    cl_memnet_set_down(C.nodes[2].ep, true);
    struct want w = {2, CL_STATE_DEAD, -1};
    CHECK(run_until(all_see, &w, 3000));
    stop_node(2);
    run_for(20);
    /* restarted with an incarnation below its old one: it must refute its
     * old death and come back alive everywhere */
    CHECK_INT(start_node(2, "10.0.0.1:7946", inc > 5 ? inc - 5 : 1), 0);
    struct want a = {2, CL_STATE_ALIVE, -1};
    CHECK(run_until(all_see, &a, 2000));
    CHECK(cl_swim_incarnation(C.nodes[2].s) > inc);
    CHECK(run_until(all_alive, (void *)(intptr_t)3, 2000));
    teardown();
}

static void on_message(void *arg, uint8_t channel, const uint8_t *payload, size_t len,
                       const char *origin)
{
    struct node *n = arg;
    if (len == 1 && payload[0] < 4)
        n->got[payload[0]]++;
}

static int local_state(void *arg, uint8_t channel, struct gv_buf *out)
{
    struct node *n = arg;
    return gv_buf_puts(out, n->name);
}

static void merge_state(void *arg, uint8_t channel, const uint8_t *state, size_t len,
                        const char *from, bool join)
{
    struct node *n = arg;
    if (len == strlen(from) && memcmp(state, from, len) == 0)
        n->merged++;
    if (join)
        n->merged_join = true;
}

static const struct cl_channel_ops ops = {
    .on_message = on_message, .local_state = local_state, .merge_remote_state = merge_state};

static int origin;

static bool all_got(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < C.n; i++)
        if (i != origin && C.nodes[i].got[id] == 0)
            return false;
    return true;
}

static bool all_merged(void *arg)
{
    for (int i = 0; i < C.n; i++)
        if (C.nodes[i].merged == 0)
            return false;
    return true;
}

static void test_broadcast_and_push_pull(void)
{
    setup(4);
    for (int i = 0; i < 4; i++) {
        CHECK_INT(cl_swim_register_channel(C.nodes[i].s, 7, &ops, &C.nodes[i]), 0);
        CHECK_INT(cl_swim_register_channel(C.nodes[i].s, 7, &ops, &C.nodes[i]), GV_EEXIST);
    }
    CHECK(run_until(all_alive, (void *)(intptr_t)4, 3000));
    /* the join exchanged state with the seed */
    CHECK(C.nodes[0].merged_join && C.nodes[1].merged_join);
    uint8_t one = 1, two = 2;
    CHECK_INT(cl_swim_broadcast(C.nodes[0].s, 7, "k", &one, 1), 0);
    CHECK(run_until(all_got, (void *)(intptr_t)1, 1000));
    CHECK_INT(cl_swim_broadcast(C.nodes[0].s, 7, "", &two, 1), 0);
    CHECK(run_until(all_got, (void *)(intptr_t)2, 1000));
    run_for(500);
    for (int i = 1; i < 4; i++) {
        CHECK_INT(C.nodes[i].got[1], 1); /* exactly once */
        CHECK_INT(C.nodes[i].got[2], 1);
    }
    CHECK_INT(C.nodes[0].got[1], 0); /* not to the origin */
    /* a newer broadcast with the same key replaces a queued one */
    uint8_t three = 3, zero = 0;
    origin = 1;
    CHECK_INT(cl_swim_broadcast(C.nodes[1].s, 7, "same", &zero, 1), 0);
    CHECK_INT(cl_swim_broadcast(C.nodes[1].s, 7, "same", &three, 1), 0);
    CHECK(run_until(all_got, (void *)(intptr_t)3, 1000));
    CHECK_INT(C.nodes[2].got[0], 0);
    /* a direct message */
    CHECK_INT(cl_swim_send_to(C.nodes[0].s, "n3", 7, &zero, 1), 0);
    CHECK_INT(cl_swim_send_to(C.nodes[0].s, "nobody", 7, &zero, 1), GV_ENOENT);
    run_for(50);
    CHECK_INT(C.nodes[3].got[0], 1);
    static uint8_t big[CL_SWIM_MAX_PAYLOAD + 1];
    CHECK_INT(cl_swim_broadcast(C.nodes[0].s, 7, "b", big, sizeof(big)), GV_ERANGE);
    /* periodic push-pull (1.5 s here) reaches everyone */
    for (int i = 0; i < 4; i++)
        C.nodes[i].merged = 0;
    CHECK(run_until(all_merged, NULL, 4000));
    /* a large broadcast goes alone */
    CHECK_INT(cl_swim_broadcast(C.nodes[2].s, 9, "big", big, 40000), 0);
    run_for(300);
    CHECK(cl_swim_stats(C.nodes[0].s)->received[CL_MSG_GOSSIP] > 0);
    teardown();
}

static bool meta_seen(void *arg)
{
    for (int i = 0; i < C.n; i++) {
        struct cl_member_info mi;
        if (cl_swim_member(C.nodes[i].s, "n1", &mi) < 0 || mi.meta_len != 3 ||
            memcmp(mi.meta, "v42", 3) != 0)
            return false;
    }
    return true;
}

static void test_meta_and_garbage(void)
{
    setup(3);
    CHECK(run_until(all_alive, (void *)(intptr_t)3, 3000));
    CHECK_INT(cl_swim_set_meta(C.nodes[1].s, (const uint8_t *)"v42", 3), 0);
    CHECK(run_until(meta_seen, NULL, 1000));
    uint8_t junk[64];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 37);
    junk[0] = 'G';
    junk[1] = 'V';
    junk[2] = 1;
    junk[3] = CL_MSG_GOSSIP;
    uint64_t before = cl_swim_stats(C.nodes[0].s)->malformed;
    cl_swim_receive(C.nodes[0].s, junk, sizeof(junk));
    cl_swim_receive(C.nodes[0].s, junk, 3);
    CHECK_INT(cl_swim_stats(C.nodes[0].s)->malformed, before + 2);
    size_t counts[CL_STATE_COUNT];
    cl_swim_counts(C.nodes[0].s, counts);
    CHECK_INT(counts[CL_STATE_ALIVE], 3);
    teardown();
}

static void test_seed_late_and_by_name(void)
{
    memset(&C, 0, sizeof(C));
    uv_loop_init(&C.loop);
    cl_memnet_new(&C.loop, 7, &C.net);
    C.n = 2;
    /* n1 starts first; its seed (n0) is not up yet */
    CHECK_INT(cl_memnet_attach(C.net, "127.0.0.1:7001", &C.nodes[0].ep), 0);
    cl_memnet_set_down(C.nodes[0].ep, true);
    CHECK_INT(start_node(1, "localhost:7001", 0), 0);
    run_for(300);
    size_t counts[CL_STATE_COUNT];
    cl_swim_counts(C.nodes[1].s, counts);
    CHECK_INT(counts[CL_STATE_ALIVE], 1); /* alone, still running */
    /* now n0 comes up at the address localhost resolves to */
    struct node *n = &C.nodes[0];
    snprintf(n->name, sizeof(n->name), "n0");
    struct cl_swim_config cfg;
    cl_swim_config_init(&cfg);
    timing(&cfg.timing);
    cfg.name = "n0";
    cfg.advertise = "127.0.0.1:7001";
    CHECK_INT(cl_swim_new(&C.loop, &cfg, cl_memnet_transport(n->ep), &n->s), 0);
    cl_memnet_set_receiver(n->ep, cl_swim_on_receive, n->s);
    cl_memnet_set_down(n->ep, false);
    CHECK_INT(cl_swim_start(n->s), 0);
    CHECK(run_until(all_alive, (void *)(intptr_t)2, 3000));
    teardown();
}

static void test_config_errors(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct cl_memnet *net;
    struct cl_memnet_ep *ep;
    cl_memnet_new(&loop, 1, &net);
    cl_memnet_attach(net, "a:1", &ep);
    struct cl_swim_config cfg;
    struct cl_swim *s = NULL;
    cl_swim_config_init(&cfg);
    cfg.name = "x";
    cfg.advertise = "nohostport";
    CHECK_INT(cl_swim_new(&loop, &cfg, cl_memnet_transport(ep), &s), GV_EINVAL);
    cfg.advertise = "a:1";
    const char *bad[] = {"bad"};
    cfg.seeds = bad;
    cfg.n_seeds = 1;
    CHECK_INT(cl_swim_new(&loop, &cfg, cl_memnet_transport(ep), &s), GV_EINVAL);
    cfg.n_seeds = 0;
    cfg.meta_len = CL_WIRE_MAX_META + 1;
    CHECK_INT(cl_swim_new(&loop, &cfg, cl_memnet_transport(ep), &s), GV_EINVAL);
    cfg.meta_len = 0;
    CHECK_INT(cl_swim_new(&loop, &cfg, cl_memnet_transport(ep), &s), 0);
    CHECK_INT(cl_swim_set_meta(s, NULL, CL_WIRE_MAX_META + 1), GV_EINVAL);
    cl_swim_stop(s, NULL, NULL); /* never started */
    cl_memnet_close(net, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
}

static bool sees(void *arg)
{
    const char *const *pair = arg; /* viewer index as text, member name */
    struct cl_member_info mi;
    return cl_swim_member(C.nodes[atoi(pair[0])].s, pair[1], &mi) == 0 &&
           mi.state == CL_STATE_ALIVE;
}

static void test_early_push_pull(void)
{
    /* no gossip, no probes, the regular push-pull 10 minutes away: n1
     * joined before n2 and only a push-pull can tell it about n2; the early
     * ones (100 ms after start, then 200, 400...) do */
    quiet_gossip = true;
    setup(2);
    const char *n0_sees_n1[2] = {"0", "n1"};
    CHECK(run_until(sees, n0_sees_n1, 5000));
    CHECK_INT(start_node(2, "10.0.0.1:7946", 0), 0);
    C.n = 3;
    const char *n1_sees_n2[2] = {"1", "n2"};
    CHECK(run_until(sees, n1_sees_n2, 20000));
    teardown();
    quiet_gossip = false;
}

/* A node whose loop is held up (a large state applied on a busy machine)
 * runs its late timers before it reads what arrived meanwhile (memnet's
 * inbox mode, as the nng transport does): it must not turn its own stall
 * into verdicts. n0 holds a (false) suspicion of n2 when the loop stops for
 * longer than the suspicion's whole timeout: on waking, the suspicion is
 * put off until n0 has read its inbox and n2 has refuted, so n2 never dies.
 * Then stalls at points all over the probe cycle (a 5-10 ms network, so
 * probes are often in flight): every round caught by one is void, and no
 * member is ever suspected dead. */
static void test_held_up_is_not_a_verdict(void)
{
    setup(3);
    cl_memnet_set_inbox(C.net, true);
    CHECK(run_until(all_alive, (void *)(intptr_t)3, 3000));
    suspect_n2_at_n0(cl_swim_incarnation(C.nodes[2].s));
    usleep((cl_swim_suspicion_max_ms(C.nodes[0].s) + 100) * 1000); /* held up past it */
    struct want w = {2, CL_STATE_ALIVE, -1};
    CHECK(run_until(all_see, &w, 2000));
    CHECK(cl_swim_stats(C.nodes[0].s)->held_up >= 1);
    CHECK(cl_swim_stats(C.nodes[2].s)->refutes >= 1);

    cl_memnet_set_latency(C.net, 5, 5);
    uint64_t held = 0;
    for (int round = 0; round < 12; round++) {
        run_for(20 + (uint64_t)round * 7); /* a different phase of the probe cycle each time */
        usleep(300 * 1000);                /* the loop held up: nothing runs */
        run_for(150);
    }
    run_for(1500);
    for (int i = 0; i < 3; i++) {
        held += cl_swim_stats(C.nodes[i].s)->held_up;
        CHECK_INT(C.nodes[i].dead_seen, 0);
        CHECK_INT(cl_swim_stats(C.nodes[i].s)->deaths, 0);
    }
    CHECK(held > 1);
    CHECK(all_alive((void *)(intptr_t)3));
    printf("  a suspicion outlasted by a stall, then 12 stalls of 300 ms: %llu verdicts put off, "
           "no death\n",
           (unsigned long long)held);
    teardown();
}

TEST_MAIN(TEST(test_join_and_detect), TEST(test_connects_ahead_to_members),
          TEST(test_held_up_is_not_a_verdict), TEST(test_refute), TEST(test_leave),
          TEST(test_partition_heals), TEST(test_restart), TEST(test_broadcast_and_push_pull),
          TEST(test_meta_and_garbage), TEST(test_seed_late_and_by_name), TEST(test_config_errors),
          TEST(test_early_push_pull))
