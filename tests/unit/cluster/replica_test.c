/* replica_test.c - the replicated store over swims on the in-memory network
 * with short timings: a write reaches everyone once, large values go by notice
 * and fetch, concurrent writes converge on one winner, a partitioned node
 * catches up by anti-entropy, a late joiner gets a store larger than one
 * message, and damaged channel messages are counted and change nothing. */
#include "cluster/memnet.h"
#include "cluster/replica.h"
#include "cluster/swim.h"
#include "common/err.h"
#include "common/kinds.h"
#include "test.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>

#define MAXN    5
#define CHANNEL 3
#define WATCH   "watched" /* on_change calls for this name are counted */

struct node {
    struct cl_swim *s;
    struct cl_memnet_ep *ep;
    struct cl_store *store;
    struct cl_hlc clock;
    struct cl_replica *r;
    char name[16], addr[32];
    int changes; /* on_change calls */
    int watched; /* ... for objects named WATCH */
    char last_from[CL_WIRE_MAX_NAME + 1];
};

/* Per-test knobs for the nodes started by setup() and start_node(). */
struct opts {
    uint32_t tick_ms;      /* replica anti-entropy tick */
    uint32_t push_pull_ms; /* 0: the scaled default (1.5 s) */
    bool no_direct;        /* local writes go by gossip only */
    bool no_gossip;        /* gossip and probes every 10 minutes: direct paths only */
};

struct cluster {
    uv_loop_t loop;
    struct cl_memnet *net;
    struct node nodes[MAXN];
    int n;
    int closing;
    struct opts o;
};

static struct cluster C;

/* A fixed-seed PRNG for the test's own choices. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void on_change(void *arg, const struct cl_entry *e, const char *from)
{
    struct node *n = arg;
    CHECK(e != NULL && cl_entry_check(e) == 0);
    CHECK(from != NULL && strcmp(from, n->name) != 0);
    n->changes++;
    if (strcmp(e->name, WATCH) == 0)
        n->watched++;
    snprintf(n->last_from, sizeof(n->last_from), "%s", from);
}

static int start_node(int i, const char *seed)
{
    struct node *n = &C.nodes[i];
    snprintf(n->name, sizeof(n->name), "n%d", i);
    snprintf(n->addr, sizeof(n->addr), "10.0.0.%d:7946", i + 1);
    /* a store already there is the node's state from before a restart */
    if (cl_memnet_attach(C.net, n->addr, &n->ep) < 0 ||
        (n->store == NULL && cl_store_new(&n->store) < 0))
        return -1;
    struct cl_swim_config cfg;
    cl_swim_config_init(&cfg);
    cl_timing_lan(&cfg.timing);
    cl_timing_scale(&cfg.timing, 0.05); /* probe 50 ms, gossip 10 ms, push-pull 1.5 s */
    if (C.o.push_pull_ms) {
        cfg.timing.push_pull_interval_ms = C.o.push_pull_ms;
        cfg.timing.push_pull_early_ms = 0;
    }
    if (C.o.no_gossip)
        cfg.timing.gossip_interval_ms = cfg.timing.probe_interval_ms = 600000;
    cfg.name = n->name;
    cfg.advertise = n->addr;
    const char *seeds[1] = {seed};
    cfg.seeds = seeds;
    cfg.n_seeds = seed ? 1 : 0;
    int rc = cl_swim_new(&C.loop, &cfg, cl_memnet_transport(n->ep), &n->s);
    if (rc < 0)
        return rc;
    cl_memnet_set_receiver(n->ep, cl_swim_on_receive, n->s);
    struct cl_replica_config rc_cfg;
    cl_replica_config_init(&rc_cfg);
    rc_cfg.channel = CHANNEL;
    rc_cfg.tick_ms = C.o.tick_ms;
    rc_cfg.direct = !C.o.no_direct;
    rc_cfg.on_change = on_change;
    rc_cfg.arg = n;
    if ((rc = cl_replica_new(&C.loop, n->s, n->store, &n->clock, &rc_cfg, &n->r)) < 0)
        return rc;
    return cl_swim_start(n->s);
}

static bool all_alive(void *arg);
static bool seed_sees(void *arg);
static bool run_until(bool (*pred)(void *), void *arg, uint64_t timeout_ms);

/* Starts n nodes joined through n0 and waits until they all see each other. */
static void setup(int n, int started, struct opts o)
{
    memset(&C, 0, sizeof(C));
    C.o = o;
    uv_loop_init(&C.loop);
    cl_memnet_new(&C.loop, 42, &C.net);
    cl_memnet_set_latency(C.net, 1, 1);
    C.n = n;
    for (int i = 0; i < started; i++)
        CHECK_INT(start_node(i, i ? "10.0.0.1:7946" : NULL), 0);
    CHECK(run_until(o.no_gossip ? seed_sees : all_alive, (void *)(intptr_t)started, 5000));
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

static uint64_t now_ms(void)
{
    uv_update_time(&C.loop);
    return uv_now(&C.loop);
}

static void on_closed(void *arg)
{
    C.closing--;
}

static bool all_closed(void *arg)
{
    return C.closing == 0;
}

static void teardown(void)
{
    for (int i = 0; i < C.n; i++) {
        struct node *n = &C.nodes[i];
        if (n->s == NULL)
            continue;
        C.closing++;
        cl_replica_close(n->r, on_closed, NULL);
        cl_memnet_set_receiver(n->ep, NULL, NULL);
        C.closing++;
        cl_swim_stop(n->s, on_closed, NULL);
    }
    C.closing++;
    cl_memnet_close(C.net, on_closed, NULL);
    CHECK(run_until(all_closed, NULL, 2000));
    uv_run(&C.loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&C.loop), 0);
    for (int i = 0; i < C.n; i++)
        cl_store_free(C.nodes[i].store);
}

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

/* n0 (everyone's seed) sees arg members alive: with gossip off the others
 * may know only the seed. */
static bool seed_sees(void *arg)
{
    size_t counts[CL_STATE_COUNT];
    cl_swim_counts(C.nodes[0].s, counts);
    return counts[CL_STATE_ALIVE] == (size_t)(intptr_t)arg;
}

/* A local write on node i: stamped, merged, published. value NULL deletes. */
static struct cl_entry write_at(int i, uint8_t kind, const char *name, const uint8_t *value,
                                size_t len)
{
    struct node *n = &C.nodes[i];
    struct cl_entry e;
    memset(&e, 0, sizeof(e));
    e.kind = kind;
    e.rank = CL_RANK_NONE;
    e.stamp = cl_hlc_now(&n->clock, cl_hlc_wall_ms());
    snprintf(e.name, sizeof(e.name), "%s", name);
    snprintf(e.origin, sizeof(e.origin), "%s", n->name);
    e.deleted = value == NULL;
    e.value = value;
    e.value_len = value ? len : 0;
    CHECK_INT(cl_store_merge(n->store, &e), 1);
    CHECK_INT(cl_replica_publish(n->r, &e), 0);
    return e;
}

static struct cl_entry write_str(int i, uint8_t kind, const char *name, const char *value)
{
    return write_at(i, kind, name, (const uint8_t *)value, value ? strlen(value) : 0);
}

/* Does node i hold exactly the version (stamp, origin) of e? */
static bool holds(int i, const struct cl_entry *e)
{
    const struct cl_entry *h = cl_store_get(C.nodes[i].store, e->kind, e->name);
    return h != NULL && h->stamp == e->stamp && strcmp(h->origin, e->origin) == 0 &&
           h->deleted == e->deleted;
}

static int skip_node = -1; /* a node not asked by the predicates */

static bool all_hold(void *arg)
{
    const struct cl_entry *e = arg;
    for (int i = 0; i < C.n; i++)
        if (C.nodes[i].s && i != skip_node && !holds(i, e))
            return false;
    return true;
}

/* Every running node holds the same store (and at least min entries). */
static bool roots_equal(void *arg)
{
    size_t min = (size_t)(intptr_t)arg;
    uint64_t root = 0;
    bool first = true;
    for (int i = 0; i < C.n; i++) {
        struct node *n = &C.nodes[i];
        if (n->s == NULL || i == skip_node)
            continue;
        if (cl_store_count(n->store) < min)
            return false;
        if (first)
            root = cl_store_root(n->store);
        else if (cl_store_root(n->store) != root)
            return false;
        first = false;
    }
    return true;
}

/* Every running node has sent at least min root probes. */
static bool all_probed(void *arg)
{
    uint64_t min = (uint64_t)(intptr_t)arg;
    for (int i = 0; i < C.n; i++)
        if (C.nodes[i].s && cl_replica_stats(C.nodes[i].r)->roots_sent < min)
            return false;
    return true;
}

static void test_write_spreads_once(void)
{
    setup(5, 5, (struct opts){.tick_ms = 100});
    uint64_t t0 = now_ms();
    struct cl_entry e = write_str(0, GV_KIND_SERVICES, WATCH, "{\"targets\":[\"a:1\"]}");
    CHECK(run_until(all_hold, &e, 10000));
    printf("  write on n0 everywhere after %llu ms\n", (unsigned long long)(now_ms() - t0));
    for (int i = 1; i < 5; i++) {
        struct node *n = &C.nodes[i];
        CHECK_INT(n->watched, 1);
        CHECK_STR(n->last_from, "n0");
        const struct cl_entry *h = cl_store_get(n->store, GV_KIND_SERVICES, WATCH);
        CHECK(h && h->value_len == e.value_len && memcmp(h->value, e.value, e.value_len) == 0);
        /* the clock moved past what it saw */
        CHECK(n->clock.last >= e.stamp);
    }
    CHECK_INT(C.nodes[0].watched, 0); /* not for its own write */
    CHECK_INT(cl_replica_stats(C.nodes[0].r)->published, 1);
    /* anti-entropy rounds and push-pulls later: still once, nothing more */
    run_for(2000);
    for (int i = 0; i < 5; i++)
        CHECK_INT(C.nodes[i].watched, i ? 1 : 0);
    CHECK(roots_equal((void *)(intptr_t)1));
    /* every node keeps probing a peer's root each tick, in sync or not */
    CHECK(run_until(all_probed, (void *)(intptr_t)10, 10000));
    /* a newer write elsewhere replaces it everywhere, a delete removes it */
    struct cl_entry e2 = write_str(3, GV_KIND_SERVICES, WATCH, "{\"targets\":[]}");
    CHECK(run_until(all_hold, &e2, 10000));
    CHECK(e2.stamp > e.stamp);
    struct cl_entry d = write_str(2, GV_KIND_SERVICES, WATCH, NULL);
    CHECK(run_until(all_hold, &d, 10000));
    run_for(300);
    for (int i = 0; i < 5; i++)
        CHECK_INT(C.nodes[i].watched, (i != 0) + (i != 3) + (i != 2));
    const struct cl_entry **live;
    CHECK_INT(cl_store_list(C.nodes[4].store, GV_KIND_SERVICES, &live), 0);
    free(live);
    /* API edges */
    CHECK_INT(cl_replica_sync_with(C.nodes[0].r, "nobody"), GV_ENOENT);
    CHECK_INT(cl_replica_sync_with(C.nodes[0].r, "n0"), GV_ENOENT);
    CHECK_INT(cl_replica_sync_with(C.nodes[0].r, "n1"), 0);
    struct cl_replica *dup = NULL;
    struct cl_replica_config cfg;
    cl_replica_config_init(&cfg);
    cfg.channel = CHANNEL;
    CHECK_INT(
        cl_replica_new(&C.loop, C.nodes[0].s, C.nodes[0].store, &C.nodes[0].clock, &cfg, &dup),
        GV_EEXIST);
    CHECK(dup == NULL);
    teardown();
}

static int holders(const struct cl_entry *e)
{
    int n = 0;
    for (int i = 0; i < C.n; i++)
        n += holds(i, e);
    return n;
}

static void test_direct_spread(void)
{
    /* gossip rounds, probes (which carry gossip too), push-pull and
     * anti-entropy every 10 minutes: only the direct path carries a write */
    struct opts slow = {.tick_ms = 600000, .push_pull_ms = 600000, .no_gossip = true};
    setup(5, 5, slow);
    struct cl_entry e = write_str(0, GV_KIND_ROUTES, WATCH, "{\"paths\":[\"/a\"]}");
    CHECK(run_until(all_hold, &e, 10000));
    CHECK_INT(cl_replica_stats(C.nodes[0].r)->direct_sent, 4);
    for (int i = 1; i < 5; i++) {
        CHECK_INT(C.nodes[i].watched, 1);
        CHECK_STR(C.nodes[i].last_from, "n0");
    }
    /* writes made in one loop turn share one message per member; a write
     * of the same object twice goes once, as its newest version */
    write_str(0, GV_KIND_ROUTES, "b", "{}");
    struct cl_entry e2 = write_str(0, GV_KIND_ROUTES, WATCH, "{\"paths\":[\"/b\"]}");
    struct cl_entry b = write_str(0, GV_KIND_ROUTES, "b", "{\"v\":2}");
    CHECK(run_until(all_hold, &e2, 10000));
    CHECK(run_until(all_hold, &b, 10000));
    CHECK_INT(cl_replica_stats(C.nodes[0].r)->direct_sent, 8);
    for (int i = 1; i < 5; i++)
        CHECK_INT(C.nodes[i].watched, 2);
    /* the same write arriving again (a gossip copy, a replay) changes nothing */
    CHECK_INT(cl_replica_publish(C.nodes[0].r, &e2), 0);
    run_for(100);
    for (int i = 1; i < 5; i++)
        CHECK_INT(C.nodes[i].watched, 2);
    teardown();

    /* the control: the same cluster without the direct path keeps the
     * write on its writer while the slow rounds have not come */
    slow.no_direct = true;
    setup(5, 5, slow);
    struct cl_entry c = write_str(0, GV_KIND_ROUTES, WATCH, "{}");
    run_for(300);
    CHECK(holders(&c) < 5);
    CHECK_INT(cl_replica_stats(C.nodes[0].r)->direct_sent, 0);
    teardown();
}

static void test_large_value_by_fetch(void)
{
    /* anti-entropy, periodic push-pull and direct spread off: only notice +
     * fetch can carry it */
    setup(4, 4, (struct opts){.tick_ms = 600000, .push_pull_ms = 600000, .no_direct = true});
    static uint8_t big[20 * 1024];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)('a' + i % 26);
    uint64_t t0 = now_ms();
    struct cl_entry e = write_at(1, GV_KIND_PLUGINS, WATCH, big, sizeof(big));
    CHECK(run_until(all_hold, &e, 5000));
    printf("  20 KiB value everywhere after %llu ms\n", (unsigned long long)(now_ms() - t0));
    for (int i = 0; i < 4; i++) {
        const struct cl_entry *h = cl_store_get(C.nodes[i].store, GV_KIND_PLUGINS, WATCH);
        CHECK(h && h->value_len == sizeof(big) && memcmp(h->value, big, sizeof(big)) == 0);
        if (i != 1) {
            CHECK_INT(cl_replica_stats(C.nodes[i].r)->fetches, 1);
            CHECK_INT(C.nodes[i].watched, 1);
            CHECK_STR(C.nodes[i].last_from, "n1");
        }
    }
    CHECK_INT(cl_replica_stats(C.nodes[1].r)->entries_pushed, 3);
    /* the largest value the store takes goes the same way */
    static uint8_t max[CL_STORE_MAX_VALUE];
    memset(max, 'm', sizeof(max));
    struct cl_entry m = write_at(2, GV_KIND_PLUGINS, "max", max, sizeof(max));
    CHECK(run_until(all_hold, &m, 5000));
    /* a small value still rides the broadcast itself: no fetch */
    struct cl_entry s = write_str(3, GV_KIND_PLUGINS, "small", "{}");
    CHECK(run_until(all_hold, &s, 5000));
    CHECK_INT(cl_replica_stats(C.nodes[0].r)->fetches, 2);
    teardown();
}

static void test_concurrent_writes_converge(void)
{
    setup(5, 5, (struct opts){.tick_ms = 100});
    /* n0 and n2 write the same object with the same stamp before either
     * hears of the other: the larger origin (n2) wins everywhere */
    uint64_t stamp = cl_hlc_now(&C.nodes[0].clock, cl_hlc_wall_ms()) + 10;
    struct cl_entry a, b;
    for (int k = 0; k < 2; k++) {
        int i = k ? 2 : 0;
        struct cl_entry *e = k ? &b : &a;
        memset(e, 0, sizeof(*e));
        e->kind = GV_KIND_ROUTES;
        e->rank = CL_RANK_NONE;
        e->stamp = stamp;
        snprintf(e->name, sizeof(e->name), WATCH);
        snprintf(e->origin, sizeof(e->origin), "%s", C.nodes[i].name);
        e->value = (const uint8_t *)(k ? "{\"by\":\"n2\"}" : "{\"by\":\"n0\"}");
        e->value_len = 11;
        CHECK_INT(cl_store_merge(C.nodes[i].store, e), 1);
        CHECK_INT(cl_replica_publish(C.nodes[i].r, e), 0);
    }
    /* and n1 and n4 race on another object: the larger stamp wins even
     * though its origin is smaller */
    struct cl_entry c = write_str(4, GV_KIND_ROUTES, "other", "{\"by\":\"n4\"}");
    struct cl_entry d = write_str(1, GV_KIND_ROUTES, "other", "{\"by\":\"n1\"}");
    if (d.stamp <= c.stamp) { /* same millisecond: make n1's the later one */
        d.stamp = c.stamp + 1;
        CHECK_INT(cl_store_merge(C.nodes[1].store, &d), 1);
        CHECK_INT(cl_replica_publish(C.nodes[1].r, &d), 0);
    }
    CHECK(run_until(all_hold, &b, 10000));
    CHECK(run_until(all_hold, &d, 10000));
    CHECK(run_until(roots_equal, (void *)(intptr_t)2, 10000));
    for (int i = 0; i < 5; i++) {
        const struct cl_entry *h = cl_store_get(C.nodes[i].store, GV_KIND_ROUTES, WATCH);
        CHECK(h && memcmp(h->value, "{\"by\":\"n2\"}", 11) == 0);
    }
    /* the winner's writer never saw a change for it; the loser's saw one */
    CHECK_INT(C.nodes[2].watched, 0);
    CHECK_INT(C.nodes[0].watched, 1);
    teardown();
}

static int count_missing(int i, struct cl_entry *es, int n)
{
    int missing = 0;
    for (int k = 0; k < n; k++)
        missing += !holds(i, &es[k]);
    return missing;
}

struct batch {
    struct cl_entry *es;
    int n;
    int node;
};

static bool node_has_all(void *arg)
{
    struct batch *b = arg;
    return count_missing(b->node, b->es, b->n) == 0;
}

static bool others_have_all(void *arg)
{
    struct batch *b = arg;
    for (int i = 0; i < C.n; i++)
        if (i != b->node && count_missing(i, b->es, b->n) != 0)
            return false;
    return true;
}

static void test_partitioned_node_catches_up(void)
{
    setup(4, 4, (struct opts){.tick_ms = 100});
    /* n3 is cut off from everyone */
    cl_memnet_set_group(C.nodes[3].ep, 1);
    static struct cl_entry es[20];
    static char names[20][16], vals[20][32];
    for (int k = 0; k < 20; k++) {
        snprintf(names[k], sizeof(names[k]), "svc-%02d", k);
        snprintf(vals[k], sizeof(vals[k]), "{\"k\":%d}", k);
        es[k] = write_str(k % 3, GV_KIND_SERVICES, names[k], vals[k]);
        run_for(10);
    }
    struct batch b = {es, 20, 3};
    CHECK(run_until(others_have_all, &b, 5000));
    /* let the broadcasts run out of retransmissions while still apart */
    run_for(500);
    CHECK_INT(count_missing(3, es, 20), 20);
    CHECK_INT(cl_store_count(C.nodes[3].store), 0);
    uint64_t received = cl_replica_stats(C.nodes[3].r)->received;
    cl_memnet_heal(C.net);
    uint64_t t0 = now_ms();
    CHECK(run_until(node_has_all, &b, 10000));
    printf("  partitioned node caught up %llu ms after the heal\n",
           (unsigned long long)(now_ms() - t0));
    CHECK(run_until(roots_equal, (void *)(intptr_t)20, 5000));
    CHECK(cl_replica_stats(C.nodes[3].r)->received >= received + 20);
    CHECK_INT(C.nodes[3].changes, 20);
    uint64_t pushed = 0, summaries = 0;
    for (int i = 0; i < 3; i++) {
        pushed += cl_replica_stats(C.nodes[i].r)->entries_pushed;
        summaries += cl_replica_stats(C.nodes[i].r)->summaries_sent;
    }
    CHECK(pushed >= 20);
    CHECK(summaries > 0);
    /* n3 was not shut down: a write it makes now reaches the others */
    struct cl_entry back = write_str(3, GV_KIND_SERVICES, "from-n3", "{}");
    CHECK(run_until(all_hold, &back, 10000));
    teardown();
}

static void test_late_joiner_gets_everything(void)
{
    /* three nodes up; n3 joins once they hold 300 entries of 1 KiB (about
     * 300 KiB: five or more entries messages), bringing 5 entries of its own
     * from its saved state that nobody else has */
    setup(4, 3, (struct opts){.tick_ms = 100});
    static uint8_t val[1024];
    memset(val, '.', sizeof(val));
    char name[32];
    for (int k = 0; k < 300; k++) {
        snprintf(name, sizeof(name), "consumer-%03d", k);
        val[0] = (uint8_t)k;
        write_at(0, GV_KIND_CONSUMERS, name, val, sizeof(val));
        if (k % 50 == 49)
            run_for(20);
    }
    CHECK(run_until(roots_equal, (void *)(intptr_t)300, 10000));
    run_for(300);
    uint64_t pushed_before = 0;
    for (int i = 0; i < 3; i++)
        pushed_before += cl_replica_stats(C.nodes[i].r)->entries_pushed;
    int changes_before = C.nodes[0].changes;

    /* n3's state from a previous life, through its file image */
    struct cl_store *old;
    struct cl_hlc old_clock = {0};
    struct gv_buf img;
    gv_buf_init(&img);
    CHECK_INT(cl_store_new(&old), 0);
    for (int k = 0; k < 5; k++) {
        struct cl_entry e;
        memset(&e, 0, sizeof(e));
        e.kind = GV_KIND_ROUTES;
        e.rank = CL_RANK_NONE;
        e.stamp = cl_hlc_now(&old_clock, cl_hlc_wall_ms() - 60000);
        snprintf(e.name, sizeof(e.name), "offline-%d", k);
        snprintf(e.origin, sizeof(e.origin), "n3");
        e.value = (const uint8_t *)"{}";
        e.value_len = 2;
        CHECK_INT(cl_store_merge(old, &e), 1);
    }
    CHECK_INT(cl_store_save(old, old_clock.last, &img), 0);
    cl_store_free(old);
    CHECK_INT(cl_store_new(&C.nodes[3].store), 0);
    CHECK_INT(
        cl_store_load(C.nodes[3].store, (const uint8_t *)img.data, img.len, &C.nodes[3].clock.last),
        0);
    gv_buf_free(&img);

    uint64_t t0 = now_ms();
    CHECK_INT(start_node(3, "10.0.0.2:7946"), 0);
    CHECK(run_until(roots_equal, (void *)(intptr_t)305, 10000));
    printf("  late joiner has all 300 entries %llu ms after starting\n",
           (unsigned long long)(now_ms() - t0));
    CHECK_INT(cl_store_count(C.nodes[3].store), 305);
    CHECK_INT(C.nodes[3].changes, 300);
    CHECK_INT(C.nodes[0].changes, changes_before + 5);
    uint64_t pushed = 0;
    for (int i = 0; i < 3; i++)
        pushed += cl_replica_stats(C.nodes[i].r)->entries_pushed;
    CHECK(pushed - pushed_before >= 300);
    CHECK(cl_replica_stats(C.nodes[3].r)->entries_pushed >= 5);
    const struct cl_entry *e = cl_store_get(C.nodes[3].store, GV_KIND_CONSUMERS, "consumer-299");
    CHECK(e && e->value_len == sizeof(val) && e->value[0] == (uint8_t)299);
    CHECK(run_until(all_alive, (void *)(intptr_t)4, 3000));
    teardown();
}

static void test_streamed_join(void)
{
    /* n0 alone holds 3,000 objects (about 12 messages' worth, more than
     * one window); n1 joins with anti-entropy rounds off: the join's
     * summary exchange alone must bring all of it, streamed in windows */
    setup(2, 1, (struct opts){.tick_ms = 600000, .push_pull_ms = 600000});
    static uint8_t val[200];
    memset(val, 'v', sizeof(val));
    char name[32];
    for (int k = 0; k < 3000; k++) {
        snprintf(name, sizeof(name), "route-%04d", k);
        val[0] = (uint8_t)k;
        struct cl_entry e = {.kind = GV_KIND_ROUTES, .rank = CL_RANK_NONE, .value = val};
        e.stamp = cl_hlc_now(&C.nodes[0].clock, cl_hlc_wall_ms());
        e.value_len = sizeof(val);
        snprintf(e.name, sizeof(e.name), "%s", name);
        snprintf(e.origin, sizeof(e.origin), "n0");
        CHECK_INT(cl_store_merge(C.nodes[0].store, &e), 1); /* loaded, not broadcast */
    }
    uint64_t t0 = now_ms();
    CHECK_INT(start_node(1, "10.0.0.1:7946"), 0);
    CHECK(run_until(roots_equal, (void *)(intptr_t)3000, 20000));
    printf("  joiner has all 3,000 entries %llu ms after starting\n",
           (unsigned long long)(now_ms() - t0));
    const struct cl_replica_stats *st = cl_replica_stats(C.nodes[0].r);
    CHECK_INT(st->streams, 1);
    CHECK_INT(st->streams_done, 1);
    CHECK_INT(st->streams_lost, 0);
    CHECK(st->entries_pushed >= 3000);
    CHECK_INT(C.nodes[1].changes, 3000);
    teardown();
}

/* ---- damaged messages ---- */

static int buf_write(void *data, const char *p, size_t len)
{
    return gv_buf_append(data, p, len) == 0 ? 0 : -1;
}

static struct cl_entry garbage_entry(const char *name, uint64_t stamp, bool deleted)
{
    struct cl_entry e;
    memset(&e, 0, sizeof(e));
    e.kind = GV_KIND_SERVICES;
    e.stamp = stamp;
    snprintf(e.name, sizeof(e.name), "%s", name);
    snprintf(e.origin, sizeof(e.origin), "n0");
    e.deleted = deleted;
    e.value = deleted ? NULL : (const uint8_t *)"{\"injected\":1}";
    e.value_len = deleted ? 0 : 14;
    return e;
}

/* [1, entry] */
static void pack_change(struct gv_buf *b, const struct cl_entry *e)
{
    msgpack_packer pk;
    gv_buf_reset(b);
    msgpack_packer_init(&pk, b, buf_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, 1);
    CHECK_INT(cl_entry_pack(&pk, e), 0);
}

struct malformed_want {
    int node;
    uint64_t count;
};

static bool malformed_reached(void *arg)
{
    struct malformed_want *w = arg;
    return cl_replica_stats(C.nodes[w->node].r)->malformed >= w->count;
}

static int sent_bad;

static void send_bad(const void *p, size_t len)
{
    CHECK_INT(cl_swim_send_to(C.nodes[0].s, "n1", CHANNEL, p, len), 0);
    sent_bad++;
}

/* Packs and sends one message built by the caller's packing calls. */
#define SEND_PACKED(...)                                                                           \
    do {                                                                                           \
        msgpack_packer pk_;                                                                        \
        gv_buf_reset(&b);                                                                          \
        msgpack_packer_init(&pk_, &b, buf_write);                                                  \
        msgpack_packer *pk = &pk_;                                                                 \
        __VA_ARGS__;                                                                               \
        send_bad(b.data, b.len);                                                                   \
    } while (0)

static void test_damaged_messages(void)
{
    setup(3, 3, (struct opts){.tick_ms = 100});
    struct cl_entry seeded = write_str(2, GV_KIND_SERVICES, "present", "{}");
    CHECK(run_until(all_hold, &seeded, 5000));
    CHECK(run_until(roots_equal, (void *)(intptr_t)1, 5000));
    struct node *n1 = &C.nodes[1];
    uint64_t root = cl_store_root(n1->store);
    int changes = n1->changes;
    uint64_t before = cl_replica_stats(n1->r)->malformed;
    struct gv_buf b;
    gv_buf_init(&b);
    sent_bad = 0;

    /* noise */
    for (int k = 0; k < 200; k++) {
        uint8_t junk[256];
        size_t len = 1 + (size_t)(next_rand() % sizeof(junk));
        for (size_t i = 0; i < len; i++)
            junk[i] = (uint8_t)next_rand();
        send_bad(junk, len);
    }
    send_bad("", 0);
    /* every truncation of a valid change, and the change with a byte more */
    struct cl_entry valid =
        garbage_entry("injected", cl_hlc_now(&C.nodes[0].clock, cl_hlc_wall_ms()), false);
    pack_change(&b, &valid);
    struct gv_buf whole;
    gv_buf_init(&whole);
    gv_buf_append(&whole, b.data, b.len);
    for (size_t len = 1; len < whole.len; len++)
        send_bad(whole.data, len);
    gv_buf_append(&whole, "\xc0", 1);
    send_bad(whole.data, whole.len);
    whole.len--;
    /* well-formed msgpack, wrong shapes */
    SEND_PACKED(msgpack_pack_array(pk, 2); msgpack_pack_uint8(pk, 99); msgpack_pack_nil(pk));
    SEND_PACKED(msgpack_pack_array(pk, 1); msgpack_pack_uint8(pk, 1));
    SEND_PACKED(msgpack_pack_map(pk, 0));
    SEND_PACKED(msgpack_pack_uint8(pk, 4));
    SEND_PACKED(msgpack_pack_array(pk, 2); msgpack_pack_int8(pk, -1); msgpack_pack_nil(pk));
    /* a change whose entry is out of shape, a kind past one byte (packed by
     * hand: cl_entry_pack cannot) */
    SEND_PACKED(msgpack_pack_array(pk, 2); msgpack_pack_uint8(pk, 1); msgpack_pack_array(pk, 7);
                msgpack_pack_uint16(pk, 256); msgpack_pack_str_with_body(pk, "injected", 8);
                msgpack_pack_uint64(pk, valid.stamp); msgpack_pack_str_with_body(pk, "n0", 2);
                msgpack_pack_uint32(pk, 0); msgpack_pack_false(pk);
                msgpack_pack_bin_with_body(pk, "{}", 2));
    /* an entries batch with one bad entry: the good one must not be taken */
    SEND_PACKED(msgpack_pack_array(pk, 2); msgpack_pack_uint8(pk, 6); msgpack_pack_array(pk, 2);
                cl_entry_pack(pk, &valid); msgpack_pack_array(pk, 7); msgpack_pack_uint8(pk, 0);
                msgpack_pack_str_with_body(pk, "", 0); msgpack_pack_uint64(pk, 5);
                msgpack_pack_str_with_body(pk, "n0", 2); msgpack_pack_uint32(pk, 0);
                msgpack_pack_false(pk); msgpack_pack_bin_with_body(pk, "{}", 2));
    SEND_PACKED(msgpack_pack_array(pk, 2); msgpack_pack_uint8(pk, 6); msgpack_pack_nil(pk));
    /* notice: bad kind, empty name, no origin */
    SEND_PACKED(msgpack_pack_array(pk, 5); msgpack_pack_uint8(pk, 2); msgpack_pack_uint16(pk, 256);
                msgpack_pack_str_with_body(pk, "x", 1); msgpack_pack_uint64(pk, 5);
                msgpack_pack_str_with_body(pk, "n0", 2));
    SEND_PACKED(msgpack_pack_array(pk, 5); msgpack_pack_uint8(pk, 2); msgpack_pack_uint8(pk, 0);
                msgpack_pack_str_with_body(pk, "", 0); msgpack_pack_uint64(pk, 5);
                msgpack_pack_str_with_body(pk, "n0", 2));
    SEND_PACKED(msgpack_pack_array(pk, 5); msgpack_pack_uint8(pk, 2); msgpack_pack_uint8(pk, 0);
                msgpack_pack_str_with_body(pk, "x", 1); msgpack_pack_uint64(pk, 5);
                msgpack_pack_str_with_body(pk, "", 0));
    /* fetch: not a list, a bad key */
    SEND_PACKED(msgpack_pack_array(pk, 2); msgpack_pack_uint8(pk, 3); msgpack_pack_uint8(pk, 3));
    SEND_PACKED(msgpack_pack_array(pk, 2); msgpack_pack_uint8(pk, 3); msgpack_pack_array(pk, 1);
                msgpack_pack_array(pk, 2); msgpack_pack_uint16(pk, 256);
                msgpack_pack_str_with_body(pk, "present", 7));
    /* root: not a number */
    SEND_PACKED(msgpack_pack_array(pk, 2); msgpack_pack_uint8(pk, 4);
                msgpack_pack_str_with_body(pk, "root", 4));
    /* summary: short, not bin, no flag */
    SEND_PACKED(msgpack_pack_array(pk, 3); msgpack_pack_uint8(pk, 5); msgpack_pack_true(pk);
                msgpack_pack_bin_with_body(pk, "12345678", 8));
    SEND_PACKED(msgpack_pack_array(pk, 3); msgpack_pack_uint8(pk, 5); msgpack_pack_true(pk);
                msgpack_pack_str_with_body(pk, "12345678", 8));
    SEND_PACKED(msgpack_pack_array(pk, 2); msgpack_pack_uint8(pk, 5); msgpack_pack_true(pk));
    /* stream mark and ack: not numbers, short */
    SEND_PACKED(msgpack_pack_array(pk, 3); msgpack_pack_uint8(pk, 7); msgpack_pack_nil(pk);
                msgpack_pack_uint8(pk, 0));
    SEND_PACKED(msgpack_pack_array(pk, 3); msgpack_pack_uint8(pk, 8); msgpack_pack_uint8(pk, 1);
                msgpack_pack_int8(pk, -1));
    SEND_PACKED(msgpack_pack_array(pk, 2); msgpack_pack_uint8(pk, 8); msgpack_pack_uint8(pk, 1));
    /* a container count the bytes cannot hold (array32 of 2^32-1) */
    send_bad("\xdd\xff\xff\xff\xff\x01", 6);
    /* deep nesting */
    uint8_t deep[2000];
    memset(deep, 0x91, sizeof(deep));
    deep[sizeof(deep) - 1] = 0x01;
    send_bad(deep, sizeof(deep));

    struct malformed_want w = {1, before + (uint64_t)sent_bad};
    CHECK(run_until(malformed_reached, &w, 5000));
    run_for(200);
    CHECK_INT(cl_replica_stats(n1->r)->malformed, before + (uint64_t)sent_bad);
    CHECK_INT(n1->changes, changes);
    CHECK(cl_store_get(n1->store, GV_KIND_SERVICES, "injected") == NULL);
    CHECK(cl_store_root(n1->store) == root);
    size_t counts[CL_STATE_COUNT];
    cl_swim_counts(n1->s, counts);
    CHECK_INT(counts[CL_STATE_ALIVE], 3);

    /* well-formed messages the replica drops without complaint: a tombstone
     * older than the TTL (40 days), a change that loses */
    uint64_t old_ms = cl_hlc_wall_ms() - 40ULL * 24 * 3600 * 1000;
    struct cl_entry ancient = garbage_entry("ancient", (old_ms - CL_HLC_EPOCH_MS) << 12, true);
    pack_change(&b, &ancient);
    CHECK_INT(cl_swim_send_to(C.nodes[0].s, "n1", CHANNEL, (const uint8_t *)b.data, b.len), 0);
    struct cl_entry stale = seeded;
    stale.stamp--;
    snprintf(stale.origin, sizeof(stale.origin), "n0");
    pack_change(&b, &stale);
    CHECK_INT(cl_swim_send_to(C.nodes[0].s, "n1", CHANNEL, (const uint8_t *)b.data, b.len), 0);
    /* an ack of no stream, a mark (n1 acks it; n0 has no such stream):
     * well-formed, ignored */
    uint64_t n0_malformed = cl_replica_stats(C.nodes[0].r)->malformed;
    for (uint8_t type = 8; type >= 7; type--) {
        msgpack_packer pk;
        gv_buf_reset(&b);
        msgpack_packer_init(&pk, &b, buf_write);
        msgpack_pack_array(&pk, 3);
        msgpack_pack_uint8(&pk, type);
        msgpack_pack_uint64(&pk, 12345);
        msgpack_pack_uint64(&pk, 0);
        CHECK_INT(cl_swim_send_to(C.nodes[0].s, "n1", CHANNEL, (const uint8_t *)b.data, b.len), 0);
    }
    CHECK_INT(cl_replica_stats(C.nodes[0].r)->streams, 0);
    /* and the valid change itself, last: it is taken, so the channel works */
    uint64_t received = cl_replica_stats(n1->r)->received;
    CHECK_INT(cl_swim_send_to(C.nodes[0].s, "n1", CHANNEL, (const uint8_t *)whole.data, whole.len),
              0);
    CHECK(run_until(all_hold, &valid, 5000)); /* n1 directly, the rest by anti-entropy */
    CHECK(cl_replica_stats(n1->r)->received >= received + 3);
    CHECK_INT(cl_replica_stats(n1->r)->malformed, before + (uint64_t)sent_bad);
    CHECK(cl_store_get(n1->store, GV_KIND_SERVICES, "ancient") == NULL);
    CHECK_INT(cl_replica_stats(C.nodes[0].r)->malformed, n0_malformed);
    CHECK(holds(1, &seeded));
    CHECK_INT(n1->changes, changes + 1);
    CHECK_STR(n1->last_from, "n0");
    gv_buf_free(&whole);
    gv_buf_free(&b);
    teardown();
}

/* The broadcast key is unique per object (kind and a hash of the whole
 * name), so two objects whose names share a long prefix do not replace each
 * other in the gossip queues; anti-entropy is off here, so only the
 * broadcast can carry them. */
static void test_long_names_keep_apart(void)
{
    setup(3, 3, (struct opts){.tick_ms = 600000, .push_pull_ms = 600000});
    char a[CL_STORE_MAX_NAME + 1], b[CL_STORE_MAX_NAME + 1];
    memset(a, 'x', CL_STORE_MAX_NAME);
    a[CL_STORE_MAX_NAME] = '\0';
    memcpy(b, a, sizeof(a));
    a[CL_STORE_MAX_NAME - 1] = 'a';
    b[CL_STORE_MAX_NAME - 1] = 'b';
    struct cl_entry ea = write_str(0, GV_KIND_ROUTES, a, "{\"a\":1}");
    struct cl_entry eb = write_str(0, GV_KIND_ROUTES, b, "{\"b\":1}");
    CHECK(run_until(all_hold, &eb, 2000));
    CHECK(run_until(all_hold, &ea, 1000));
    /* names that differ early are two keys: both spread */
    struct cl_entry ec = write_str(1, GV_KIND_ROUTES, "short-a", "{}");
    struct cl_entry ed = write_str(1, GV_KIND_ROUTES, "short-b", "{}");
    CHECK(run_until(all_hold, &ec, 2000));
    CHECK(run_until(all_hold, &ed, 2000));
    teardown();
}

/* An entry stamped far ahead of the local clock is refused, so one message
 * from a buggy or hostile member cannot move every clock past 2^53 or win
 * over every later write of its object. */
static void test_far_future_stamp(void)
{
    setup(3, 3, (struct opts){.tick_ms = 100});
    struct cl_entry e;
    memset(&e, 0, sizeof(e));
    e.kind = GV_KIND_SERVICES;
    e.stamp = 1ULL << 60;
    snprintf(e.name, sizeof(e.name), "future");
    snprintf(e.origin, sizeof(e.origin), "n0");
    e.value = (const uint8_t *)"{}";
    e.value_len = 2;
    struct gv_buf b;
    msgpack_packer pk;
    gv_buf_init(&b);
    msgpack_packer_init(&pk, &b, buf_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, 1);
    CHECK_INT(cl_entry_pack(&pk, &e), 0);
    CHECK_INT(cl_swim_send_to(C.nodes[0].s, "n1", CHANNEL, (const uint8_t *)b.data, b.len), 0);
    run_for(300);
    CHECK(cl_store_get(C.nodes[1].store, GV_KIND_SERVICES, "future") == NULL);
    CHECK(cl_hlc_now(&C.nodes[1].clock, cl_hlc_wall_ms()) < (1ULL << 53));
    gv_buf_free(&b);
    teardown();
}

/* msgpack-c hands an empty string over as (NULL, 0): a fetch of an empty
 * name is refused as malformed (and never reaches memcpy). */
static void test_fetch_empty_name(void)
{
    setup(3, 3, (struct opts){.tick_ms = 100});
    struct cl_entry e = write_str(0, GV_KIND_SERVICES, "present", "{}");
    CHECK(run_until(all_hold, &e, 5000));
    uint64_t root = cl_store_root(C.nodes[1].store);
    struct gv_buf b;
    msgpack_packer pk;
    gv_buf_init(&b);
    msgpack_packer_init(&pk, &b, buf_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, 3);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_str_with_body(&pk, "", 0);
    CHECK_INT(cl_swim_send_to(C.nodes[0].s, "n1", CHANNEL, (const uint8_t *)b.data, b.len), 0);
    run_for(200);
    CHECK(cl_store_root(C.nodes[1].store) == root);
    CHECK(all_alive((void *)(intptr_t)3));
    gv_buf_free(&b);
    teardown();
}

/* Entries of kinds this version does not know (a newer node's) spread like
 * any other: by broadcast, and by anti-entropy to a node that joins later,
 * in both directions. */
static void test_unknown_kinds_spread(void)
{
    setup(3, 2, (struct opts){.tick_ms = 100});
    struct cl_entry e = write_str(0, 200, WATCH, "{\"from\":\"the future\"}");
    struct cl_entry d = write_str(1, 255, "gone", NULL);
    skip_node = 2;
    CHECK(run_until(all_hold, &e, 10000));
    CHECK(run_until(all_hold, &d, 10000));
    CHECK_INT(C.nodes[1].watched, 1);
    /* n2 held one of its own before it joins: it reaches the others, and
     * what they hold reaches it */
    CHECK_INT(cl_store_new(&C.nodes[2].store), 0);
    struct cl_entry own = {.kind = 77, .stamp = e.stamp + 1, .rank = CL_RANK_NONE};
    snprintf(own.name, sizeof(own.name), "own");
    snprintf(own.origin, sizeof(own.origin), "n2");
    own.value = (const uint8_t *)"{}";
    own.value_len = 2;
    CHECK_INT(cl_store_merge(C.nodes[2].store, &own), 1);
    CHECK_INT(start_node(2, "10.0.0.1:7946"), 0);
    skip_node = -1;
    CHECK(run_until(all_hold, &e, 10000));
    CHECK(run_until(all_hold, &d, 10000));
    CHECK(run_until(all_hold, &own, 10000));
    CHECK(run_until(roots_equal, (void *)(intptr_t)3, 5000));
    for (int i = 0; i < 3; i++)
        CHECK_INT(cl_replica_stats(C.nodes[i].r)->malformed, 0);
    teardown();
}

TEST_MAIN(TEST(test_write_spreads_once), TEST(test_direct_spread), TEST(test_large_value_by_fetch),
          TEST(test_concurrent_writes_converge), TEST(test_partitioned_node_catches_up),
          TEST(test_late_joiner_gets_everything), TEST(test_streamed_join),
          TEST(test_damaged_messages), TEST(test_long_names_keep_apart),
          TEST(test_far_future_stamp), TEST(test_fetch_empty_name), TEST(test_unknown_kinds_spread))
