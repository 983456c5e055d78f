/* ratelimit.c - node glue for cluster-scope rate limits (see ratelimit.h and
 * docs/rate-limiting.md). The algorithm is gateway/ratelimit/rl_cluster.c;
 * this file gives it a clock and the mesh: every GW_RLC_TICK_MS on the
 * control loop it runs a tick and, when gw_rlc_due says so (admissions to
 * report, a demand that moved; a quiet node sends nothing but a refresh
 * every 30 s, a node that never had traffic nothing at all), the result to
 * every live member, point to point:
 *   - channel 4, the admission counts and demand (cluster/rlgossip.h "RC");
 *   - channel 3, the demand alone ("RL" 1), which nodes of earlier versions
 *     read during a rolling upgrade; from them this version reads it too (a
 *     peer that sends no counts still has its demand in the shares).
 * The workers only read atomics the tick sets: nothing on the request path
 * waits for the network. */
#include "node/ratelimit.h"
#include "gateway/ratelimit/rl_cluster.h"
#include "gateway/ratelimit/rl_table.h"
#include "cluster/broadcast.h"
#include "cluster/rlgossip.h"
#include "common/log.h"
#include "common/util.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define RX_MAX CL_RLC_MAX

static struct {
    uv_timer_t timer;
    struct cl_swim *swim;
    struct gw_rlc *rlc;
    bool running;
    unsigned members; /* alive and suspect members at the last tick, self included */
    struct gw_rlc_entry rx[RX_MAX];
} g;

static void on_message(void *arg, uint8_t channel, const uint8_t *payload, size_t len,
                       const char *origin)
{
    (void)arg;
    (void)channel;
    struct cl_rlc_head h;
    int n = cl_rlc_decode(payload, len, &h);
    if (n < 0 || origin == NULL) {
        gv_debug("rate limits: dropped a malformed message from %s", origin ? origin : "?");
        return;
    }
    for (int i = 0; i < n; i++) {
        struct cl_rlc_entry e = cl_rlc_entry_at(payload, h.entry_len, (size_t)i);
        g.rx[i].key = e.key;
        g.rx[i].demand_milli = e.demand_milli;
        memcpy(g.rx[i].counts, e.admitted, sizeof(g.rx[i].counts));
    }
    gw_rlc_on_peer(g.rlc, origin, h.tick, h.part, g.rx, (size_t)n, gv_now_us());
}

/* Channel 3, the demand message: from nodes of the previous version. */
static void on_demand(void *arg, uint8_t channel, const uint8_t *payload, size_t len,
                      const char *origin)
{
    (void)arg;
    (void)channel;
    uint32_t tick;
    int n = cl_rlg_decode(payload, len, &tick);
    if (n < 0 || origin == NULL || n > RX_MAX) {
        gv_debug("rate limits: dropped a malformed message from %s", origin ? origin : "?");
        return;
    }
    for (int i = 0; i < n; i++) {
        struct cl_rlg_entry e = cl_rlg_entry_at(payload, (size_t)i);
        g.rx[i] = (struct gw_rlc_entry){.key = e.key, .demand_milli = e.demand_milli};
    }
    gw_rlc_on_peer_demand(g.rlc, origin, tick, g.rx, (size_t)n, gv_now_us());
}

static const struct cl_channel_ops ops = {.on_message = on_message};
static const struct cl_channel_ops demand_ops = {.on_message = on_demand};

struct send_ctx {
    const uint8_t *msg;
    size_t len;
    uint8_t channel;
};

static bool member_live(const struct cl_member_info *m)
{
    return m->state == CL_STATE_ALIVE || m->state == CL_STATE_SUSPECT;
}

/* Counts the live members; a member gone (dead or left) takes its demand
 * with it. */
static int count_one(void *arg, const struct cl_member_info *m)
{
    unsigned *n = arg;
    if (member_live(m))
        (*n)++;
    else
        gw_rlc_forget(g.rlc, m->name);
    return 0;
}

static int send_one(void *arg, const struct cl_member_info *m)
{
    struct send_ctx *c = arg;
    if (member_live(m) && !m->is_self)
        cl_swim_send_to(g.swim, m->name, c->channel, c->msg, c->len);
    return 0;
}

/* One batch of entries, both messages. */
static void send_batch(uint32_t tick, unsigned part, const struct gw_rlc_entry *e, size_t n)
{
    static uint8_t buf[CL_RLC_HEADER + CL_RLC_MAX * CL_RLC_ENTRY];
    static struct cl_rlc_entry rc[CL_RLC_MAX];
    static struct cl_rlg_entry rl[CL_RLC_MAX];
    size_t nl = 0;
    for (size_t i = 0; i < n; i++) {
        rc[i].key = e[i].key;
        rc[i].demand_milli = e[i].demand_milli;
        memcpy(rc[i].admitted, e[i].counts, sizeof(rc[i].admitted));
        if (e[i].fast_milli)
            rl[nl++] = (struct cl_rlg_entry){e[i].key, e[i].fast_milli};
    }
    struct send_ctx c = {buf, cl_rlc_encode(tick, part, rc, n, buf), CL_RLC_CHANNEL};
    cl_swim_members(g.swim, send_one, &c);
    if (nl == 0)
        return;
    c = (struct send_ctx){buf, cl_rlg_encode(tick, rl, nl, buf), CL_RLG_CHANNEL};
    cl_swim_members(g.swim, send_one, &c);
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
    const struct gw_rlc_entry *e;
    uint32_t tick;
    /* Who is there comes from the membership: an idle node is silent (an
     * empty message every tick to every member cost 10 (N-1) messages a
     * second per node, 990 at 100 nodes, and melted a 100-node cluster on
     * two cores). */
    g.members = 0;
    cl_swim_members(g.swim, count_one, &g.members);
    gw_rlc_set_members(g.rlc, g.members);
    size_t n = gw_rlc_tick(g.rlc, gv_now_us(), &e, &tick), off = 0;
    if (!gw_rlc_due(g.rlc))
        return;
    do { /* an empty message too: it says this node is there */
        size_t k = n - off > CL_RLC_MAX ? CL_RLC_MAX : n - off;
        send_batch(tick, (unsigned)(off / CL_RLC_MAX), e + off, k);
        off += k;
    } while (off < n);
}

int node_ratelimit_start(uv_loop_t *loop, struct cl_swim *swim)
{
    struct gw_rl_table *tab = gw_rl_table_shared();
    if (g.running || swim == NULL || tab == NULL)
        return 0;
    int rv = gw_rlc_new(tab, cl_swim_name(swim), &g.rlc);
    if (rv != 0)
        return rv;
    g.swim = swim;
    if ((rv = cl_swim_register_channel(swim, CL_RLC_CHANNEL, &ops, NULL)) != 0)
        goto fail;
    if ((rv = cl_swim_register_channel(swim, CL_RLG_CHANNEL, &demand_ops, NULL)) != 0)
        goto fail_rlc;
    if ((rv = uv_timer_init(loop, &g.timer)) != 0) {
        cl_swim_unregister_channel(swim, CL_RLG_CHANNEL);
        goto fail_rlc;
    }
    g.running = true;
    return uv_timer_start(&g.timer, on_tick, GW_RLC_TICK_MS, GW_RLC_TICK_MS);
fail_rlc:
    cl_swim_unregister_channel(swim, CL_RLC_CHANNEL);
fail:
    gw_rlc_free(g.rlc);
    g.rlc = NULL;
    return rv;
}

int node_ratelimit_metrics(struct gv_buf *out)
{
    if (!g.running)
        return 0;
    return gv_buf_printf(out,
                         "# HELP grapevine_ratelimit_cluster_peers Live members a cluster rate "
                         "limit is shared with (alive or suspect, this node not counted).\n"
                         "# TYPE grapevine_ratelimit_cluster_peers gauge\n"
                         "grapevine_ratelimit_cluster_peers %u\n"
                         "# HELP grapevine_ratelimit_cluster_active_peers Peers whose rate-limit "
                         "counts or demand this node heard within the last second (an idle node "
                         "sends none).\n"
                         "# TYPE grapevine_ratelimit_cluster_active_peers gauge\n"
                         "grapevine_ratelimit_cluster_active_peers %u\n",
                         g.members > 0 ? g.members - 1 : 0, gw_rlc_live_peers(g.rlc));
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
    gw_rlc_free(g.rlc);
    g.rlc = NULL;
    g.swim = NULL;
}

void node_ratelimit_stop(void)
{
    if (!g.running)
        return;
    g.running = false;
    g.members = 0;
    uv_timer_stop(&g.timer);
    cl_swim_unregister_channel(g.swim, CL_RLC_CHANNEL);
    cl_swim_unregister_channel(g.swim, CL_RLG_CHANNEL);
    uv_close((uv_handle_t *)&g.timer, on_closed);
    struct gw_rl_table *tab = gw_rl_table_shared();
    if (tab != NULL)
        gw_rl_set_members(tab, 1);
}

/* ---- the admin view --------------------------------------------------------- */

json_t *node_ratelimit_json(size_t max)
{
    struct gw_rlc_view v[NODE_RL_SHOWN];
    json_t *arr = json_array();
    size_t n = g.running && g.rlc != NULL
                   ? gw_rlc_top(g.rlc, v, max < NODE_RL_SHOWN ? max : NODE_RL_SHOWN)
                   : 0;
    for (size_t i = 0; arr != NULL && i < n; i++) {
        char key[17];
        gv_hex64(v[i].key, key);
        key[16] = '\0';
        /* demand is attempts per tick in thousandths: per second, / GW_RLC_TICK_MS */
        json_array_append_new(arr,
                              json_pack("{s:s,s:f,s:f,s:f}", "key", key, "demand",
                                        (double)v[i].demand_milli / GW_RLC_TICK_MS, "peer_demand",
                                        (double)v[i].peer_demand_milli / GW_RLC_TICK_MS, "share",
                                        (double)v[i].share_ppm / 1e6));
    }
    return arr;
}
