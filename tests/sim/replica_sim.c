/* replica_sim.c - the replicated store on many swim members in one process on
 * one uv loop over the in-memory network, with message loss: how long a
 * change takes to reach every member's store, and how long a member that was
 * cut off takes to catch up once the network heals. Prints a table next to
 * the target of issue 4 (a change reaches all 100 members: p99 < 1 s).
 *
 * Full run (N = 10, 50, 100 at the default LAN timings and a 1 s replica
 * tick, real timers, about a minute):
 *   build/tests/sim/replica_sim
 * CTest runs only the quick mode (timings x 0.2, N = 10 and 50, < 60 s):
 *   build/tests/sim/replica_sim --quick
 * Other knobs: --scale F --sizes 10,50,100 --loss 0.05 --changes 50 --seed N.
 * --scale F multiplies every protocol duration (and the spacing of the
 * changes) by F; times are reported in protocol time (measured / F), so a
 * scaled run predicts the unscaled one as long as the loop keeps up. */
#include "cluster/memnet.h"
#include "cluster/replica.h"
#include "cluster/swim.h"
#include "common/err.h"
#include "common/kinds.h"
#include "common/util.h"
#include "tests/sim/sim_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIM_CHANNEL 5
#define MAX_CHANGES 1024
#define CUT_CHANGES 20

struct sim_node {
    struct cl_swim *s;
    struct cl_memnet_ep *ep;
    struct cl_store *store;
    struct cl_hlc clock;
    struct cl_replica *r;
    char name[16], addr[32];
    int idx;
};

/* One change: written at origin at loop time sent; done once the n - 1 other
 * members have taken it (on_change fires once per member per change). */
struct change {
    int origin;
    uint64_t sent, done;
    int got;
};

struct sim {
    uv_loop_t loop;
    struct cl_memnet *net;
    struct sim_node *nodes;
    int n;
    double scale;
    struct change ch[MAX_CHANGES];
    int n_changes; /* written so far */
    int closing;
};

static struct sim S;

/* Change ids are in the object names: "chg-0042". */
static void on_change(void *arg, const struct cl_entry *e, const char *from)
{
    (void)arg;
    if (strncmp(e->name, "chg-", 4) != 0)
        return;
    int id = atoi(e->name + 4);
    if (id < 0 || id >= S.n_changes)
        return;
    struct change *c = &S.ch[id];
    if (++c->got == S.n - 1)
        c->done = uv_now(&S.loop);
}

static bool run_until(bool (*pred)(void *), void *arg, uint64_t timeout_ms)
{
    return sim_run_until(&S.loop, pred, arg, timeout_ms);
}

static uint64_t now_ms(void)
{
    uv_update_time(&S.loop);
    return uv_now(&S.loop);
}

static bool converged(void *arg)
{
    for (int i = 0; i < S.n; i++) {
        size_t c[CL_STATE_COUNT];
        cl_swim_counts(S.nodes[i].s, c);
        if (c[CL_STATE_ALIVE] != (size_t)S.n)
            return false;
    }
    return true;
}

/* Changes [from, to) reached everyone. */
struct range {
    int from, to;
};

static bool changes_done(void *arg)
{
    struct range *r = arg;
    for (int i = r->from; i < r->to; i++)
        if (S.ch[i].done == 0)
            return false;
    return true;
}

/* Member i holds changes [from, to). */
struct holds {
    int node;
    struct range r;
    int skip;
};

static bool node_holds(int i, struct range r)
{
    char name[32];
    for (int k = r.from; k < r.to; k++) {
        snprintf(name, sizeof(name), "chg-%04d", k);
        if (cl_store_get(S.nodes[i].store, GV_KIND_SERVICES, name) == NULL)
            return false;
    }
    return true;
}

static bool member_holds(void *arg)
{
    struct holds *h = arg;
    return node_holds(h->node, h->r);
}

/* Everyone but skip holds the range. */
static bool others_hold(void *arg)
{
    struct holds *h = arg;
    for (int i = 0; i < S.n; i++)
        if (i != h->skip && !node_holds(i, h->r))
            return false;
    return true;
}

static bool roots_equal(void *arg)
{
    uint64_t root = cl_store_root(S.nodes[0].store);
    for (int i = 1; i < S.n; i++)
        if (cl_store_root(S.nodes[i].store) != root)
            return false;
    return true;
}

static void on_closed(void *arg)
{
    S.closing--;
}

static bool closed(void *arg)
{
    return S.closing == 0;
}

/* A write of change id at member o: stamped, merged, published. */
static void write_change(int id, int o)
{
    struct sim_node *d = &S.nodes[o];
    char value[128];
    struct cl_entry e;
    memset(&e, 0, sizeof(e));
    e.kind = GV_KIND_SERVICES;
    e.rank = CL_RANK_NONE;
    e.stamp = cl_hlc_now(&d->clock, cl_hlc_wall_ms());
    snprintf(e.name, sizeof(e.name), "chg-%04d", id);
    snprintf(e.origin, sizeof(e.origin), "%s", d->name);
    int len = snprintf(value, sizeof(value),
                       "{\"name\":\"chg-%04d\",\"targets\":[{\"address\":\"10.2.0.%d:8080\"}]}", id,
                       id % 250);
    e.value = (const uint8_t *)value;
    e.value_len = (size_t)len;
    S.ch[id].origin = o;
    S.ch[id].sent = now_ms();
    S.ch[id].got = 0;
    S.ch[id].done = 0;
    S.n_changes = id + 1;
    cl_store_merge(d->store, &e);
    cl_replica_publish(d->r, &e);
}

struct result {
    int n;
    double join_s;
    int changes;
    double p50, p99, max;
    int missed;
    double cut_catchup; /* protocol ms from the heal; INFINITY if never */
    bool cut_done;
    bool roots_equal;
    uint64_t roots, summaries, pushed, fetches, malformed;
    uint64_t msgs_sent, msgs_lost;
};

static int run_one(int n, double scale, double loss, int k, uint64_t seed, struct result *r)
{
    memset(&S, 0, sizeof(S));
    memset(r, 0, sizeof(*r));
    r->n = n;
    S.n = n;
    S.scale = scale;
    uv_loop_init(&S.loop);
    cl_memnet_new(&S.loop, seed, &S.net);
    cl_memnet_set_latency(S.net, 1, 2);
    S.nodes = calloc((size_t)n, sizeof(*S.nodes));
    const char *seed_addr = "10.1.0.1:7946";
    for (int i = 0; i < n; i++) {
        struct sim_node *d = &S.nodes[i];
        d->idx = i;
        snprintf(d->name, sizeof(d->name), "node%03d", i);
        snprintf(d->addr, sizeof(d->addr), "10.1.%d.%d:7946", i / 250, i % 250 + 1);
        if (cl_memnet_attach(S.net, d->addr, &d->ep) < 0 || cl_store_new(&d->store) < 0)
            return -1;
        struct cl_swim_config cfg;
        cl_swim_config_init(&cfg);
        cl_timing_scale(&cfg.timing, scale);
        cfg.name = d->name;
        cfg.advertise = d->addr;
        cfg.seeds = &seed_addr;
        cfg.n_seeds = i ? 1 : 0;
        if (cl_swim_new(&S.loop, &cfg, cl_memnet_transport(d->ep), &d->s) < 0)
            return -1;
        cl_memnet_set_receiver(d->ep, cl_swim_on_receive, d->s);
        struct cl_replica_config rc;
        cl_replica_config_init(&rc);
        rc.channel = SIM_CHANNEL;
        rc.tick_ms = (uint32_t)fmax(1, 1000 * scale);
        rc.on_change = on_change;
        rc.arg = d;
        if (cl_replica_new(&S.loop, d->s, d->store, &d->clock, &rc, &d->r) < 0)
            return -1;
        cl_swim_start(d->s);
    }
    uint64_t t0 = now_ms();
    if (!run_until(converged, NULL, (uint64_t)(60000 * scale) + 5000))
        fprintf(stderr, "N=%d: membership did not converge\n", n);
    r->join_s = (double)(now_ms() - t0) / scale / 1000.0;
    cl_memnet_set_loss(S.net, loss);

    /* k changes, one every 200 ms, each at a random member */
    uint64_t spacing = (uint64_t)(200 * scale) + 1;
    for (int c = 0; c < k; c++) {
        write_change(c, (int)(gv_rand64() % (uint64_t)n));
        run_until(NULL, NULL, spacing);
    }
    struct range all = {0, k};
    run_until(changes_done, &all, (uint64_t)(30000 * scale));
    uint64_t *lat = calloc((size_t)k, sizeof(*lat));
    int nl = 0;
    for (int c = 0; c < k; c++) {
        if (S.ch[c].done)
            lat[nl++] = S.ch[c].done - S.ch[c].sent;
        else
            r->missed++;
    }
    r->changes = k;
    r->p50 = sim_pct(lat, nl, 0.50) / scale;
    r->p99 = sim_pct(lat, nl, 0.99) / scale;
    r->max = sim_pct(lat, nl, 1.0) / scale;
    free(lat);

    /* one member cut off (nothing to or from it) while CUT_CHANGES more
     * changes are made elsewhere; then the network heals */
    int cut = 1 + (int)(gv_rand64() % (uint64_t)(n - 1));
    cl_memnet_set_group(S.nodes[cut].ep, 1);
    struct holds h = {.node = cut, .r = {k, k + CUT_CHANGES}, .skip = cut};
    for (int c = k; c < k + CUT_CHANGES; c++) {
        int o;
        do
            o = (int)(gv_rand64() % (uint64_t)n);
        while (o == cut);
        write_change(c, o);
        run_until(NULL, NULL, spacing);
    }
    run_until(others_hold, &h, (uint64_t)(30000 * scale));
    /* until the broadcasts have run out of retransmissions */
    run_until(NULL, NULL, (uint64_t)(2000 * scale));
    if (node_holds(cut, (struct range){k, k + 1}))
        fprintf(stderr, "N=%d: the cut-off member got a change while cut off\n", n);
    cl_memnet_heal(S.net);
    uint64_t healed = now_ms();
    r->cut_done = run_until(member_holds, &h, (uint64_t)(60000 * scale));
    r->cut_catchup = r->cut_done ? (double)(now_ms() - healed) / scale : INFINITY;
    r->roots_equal = run_until(roots_equal, NULL, (uint64_t)(10000 * scale));

    for (int i = 0; i < n; i++) {
        const struct cl_replica_stats *st = cl_replica_stats(S.nodes[i].r);
        r->roots += st->roots_sent;
        r->summaries += st->summaries_sent;
        r->pushed += st->entries_pushed;
        r->fetches += st->fetches;
        r->malformed += st->malformed;
    }
    r->msgs_sent = cl_memnet_stats(S.net)->sent;
    r->msgs_lost = cl_memnet_stats(S.net)->lost;

    for (int i = 0; i < n; i++) {
        S.closing++;
        cl_replica_close(S.nodes[i].r, on_closed, NULL);
        cl_memnet_set_receiver(S.nodes[i].ep, NULL, NULL);
        S.closing++;
        cl_swim_stop(S.nodes[i].s, on_closed, NULL);
    }
    S.closing++;
    cl_memnet_close(S.net, on_closed, NULL);
    run_until(closed, NULL, 5000);
    uv_run(&S.loop, UV_RUN_DEFAULT);
    uv_loop_close(&S.loop);
    for (int i = 0; i < n; i++)
        cl_store_free(S.nodes[i].store);
    free(S.nodes);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: replica_sim [--quick] [--scale F] [--sizes 10,50,100] [--loss 0.05]\n"
                    "                   [--changes K] [--seed N]\n");
}

int main(int argc, char **argv)
{
    double scale = 1.0, loss = 0.05;
    int sizes[8] = {10, 50, 100}, n_sizes = 3, k = 50;
    uint64_t seed = 4242;
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = true;
            scale = 0.2;
            sizes[0] = 10;
            sizes[1] = 50;
            n_sizes = 2;
        } else if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
            scale = atof(argv[++i]);
        } else if (strcmp(argv[i], "--loss") == 0 && i + 1 < argc) {
            loss = atof(argv[++i]);
        } else if (strcmp(argv[i], "--changes") == 0 && i + 1 < argc) {
            k = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc) {
            n_sizes = 0;
            for (char *p = strtok(argv[++i], ","); p && n_sizes < 8; p = strtok(NULL, ","))
                sizes[n_sizes++] = atoi(p);
        } else {
            usage();
            return 2;
        }
    }
    if (scale <= 0 || loss < 0 || loss >= 1 || k < 1 || k + CUT_CHANGES > MAX_CHANGES ||
        n_sizes == 0) {
        usage();
        return 2;
    }
    struct cl_timing t;
    cl_timing_lan(&t);
    printf("replica_sim: memberlist LAN timings (gossip %u ms x %u, push-pull %u s), replica tick "
           "1000 ms%s\n",
           t.gossip_interval_ms, t.gossip_nodes, t.push_pull_interval_ms / 1000,
           quick ? " [--quick]" : "");
    if (scale != 1.0)
        printf("  SCALED: every duration x %.3g on real timers; times below are protocol time "
               "(measured / %.3g)\n",
               scale, scale);
    else
        printf("  unscaled: real timers at the default timings\n");
    printf("  in-memory network: latency 1-3 ms, loss %.0f%% after the join; %d changes, one "
           "every 200 ms at a random member;\n  then one member cut off during %d changes\n\n",
           loss * 100, k, CUT_CHANGES);

    struct result res[8];
    for (int i = 0; i < n_sizes; i++) {
        if (sizes[i] < 3 || run_one(sizes[i], scale, loss, k, seed + (uint64_t)i, &res[i]) < 0) {
            fprintf(stderr, "N=%d: setup failed\n", sizes[i]);
            return 1;
        }
        fprintf(stderr, "N=%d done\n", sizes[i]);
    }
    printf("%5s %7s %8s %9s %9s %9s %7s %12s %6s %9s %9s %9s %8s %10s\n", "N", "join_s", "changes",
           "p50", "p99", "max", "missed", "cut_catchup", "equal", "probes", "summaries", "pushed",
           "fetches", "malformed");
    for (int i = 0; i < n_sizes; i++) {
        struct result *r = &res[i];
        printf("%5d %7.2f %8d %7.0fms %7.0fms %7.0fms %7d %10.0fms %6s %9llu %9llu %9llu %8llu "
               "%10llu\n",
               r->n, r->join_s, r->changes, r->p50, r->p99, r->max, r->missed, r->cut_catchup,
               r->roots_equal ? "yes" : "NO", (unsigned long long)r->roots,
               (unsigned long long)r->summaries, (unsigned long long)r->pushed,
               (unsigned long long)r->fetches, (unsigned long long)r->malformed);
    }
    printf("(p50/p99/max: from the write until every member's store holds it; missed: changes\n"
           " that did not reach everyone within 30 s; cut_catchup: from the heal until the\n"
           " cut-off member holds all %d changes it missed; equal: every store's root hash equal\n"
           " at the end; probes..fetches: replica messages summed over all members)\n",
           CUT_CHANGES);
    int failed = 0;
    printf("\ntargets:\n");
    for (int i = 0; i < n_sizes; i++) {
        struct result *r = &res[i];
        bool p_ok = r->n < 100 || (r->p99 < 1000 && r->missed == 0);
        bool c_ok = r->missed == 0 && r->cut_done && r->roots_equal && r->malformed == 0;
        if (r->n >= 100)
            printf("  N=%-3d change reaches all %d members: p99 < 1 s: %.0f ms %s\n", r->n, r->n,
                   r->p99, p_ok ? "PASS" : "FAIL");
        printf("  N=%-3d every change everywhere, cut-off member caught up (%.0f ms), stores "
               "equal: %s\n",
               r->n, r->cut_catchup, c_ok ? "PASS" : "FAIL");
        failed += !p_ok + !c_ok;
    }
    return failed ? 1 : 0;
}
