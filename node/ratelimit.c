/* ratelimit.c - node glue for cluster-scope rate limits (see ratelimit.h and
 * docs/rate-limiting.md): every 100 ms on the control loop it
 *   1. collects each key's request count from the gateway's table and keeps
 *      an EWMA of it (this node's demand for the key);
 *   2. sends its demand for active keys to every live member (channel 3);
 *   3. sets each key's share of the limit to own / (own + peers' demand),
 *      with peers silent for more than 1 s (dead, or across a partition)
 *      left out, and at least 2 % so a node whose demand starts can admit.
 * The workers only read the share (an atomic): nothing on the request path
 * waits for the network. */
#include "node/ratelimit.h"
#include "gateway/ratelimit/rl_table.h"
#include "cluster/broadcast.h"
#include "cluster/rlgossip.h"
#include "cluster/wire.h"
#include "common/log.h"
#include "common/util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS     100
#define PEER_MAX    64
#define SILENT_MS   1000
#define SHARE_FLOOR 20000 /* ppm */

struct peer {
    char name[128];
    uint64_t last_ms;
    uint32_t tick;
    struct cl_rlg_entry *v; /* the entries of its latest tick */
    size_t n, cap;
};

static struct {
    uv_timer_t timer;
    uv_loop_t *loop;
    struct cl_swim *swim;
    bool running;
    uint32_t tick;
    size_t cap;
    uint64_t *ckey;   /* per slot: the key the demand below belongs to */
    uint32_t *demand; /* per slot: EWMA of attempts per tick, in thousandths */
    uint64_t *remote; /* per slot: peers' demand summed this tick */
    struct cl_rlg_entry *out;
    size_t nout;
    struct peer peers[PEER_MAX];
    size_t npeers;
} g;

static struct peer *peer_get(const char *name, bool create)
{
    for (size_t i = 0; i < g.npeers; i++)
        if (strcmp(g.peers[i].name, name) == 0)
            return &g.peers[i];
    if (!create)
        return NULL;
    struct peer *p = NULL;
    if (g.npeers < PEER_MAX) {
        p = &g.peers[g.npeers++];
    } else { /* replace the longest silent */
        p = &g.peers[0];
        for (size_t i = 1; i < g.npeers; i++)
            if (g.peers[i].last_ms < p->last_ms)
                p = &g.peers[i];
        p->n = 0;
    }
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->tick = 0;
    p->n = 0;
    return p;
}

static void on_message(void *arg, uint8_t channel, const uint8_t *payload, size_t len,
                       const char *origin)
{
    (void)arg;
    (void)channel;
    uint32_t tick;
    int n = cl_rlg_decode(payload, len, &tick);
    if (n < 0 || origin == NULL) {
        gv_debug("rate limits: dropped a malformed message from %s", origin ? origin : "?");
        return;
    }
    struct peer *p = peer_get(origin, true);
    if (p->tick != tick || p->last_ms == 0) {
        p->tick = tick;
        p->n = 0;
    }
    p->last_ms = uv_now(g.loop);
    if (p->n + (size_t)n > g.cap)
        return; /* bounded like the table */
    if (p->n + (size_t)n > p->cap) {
        size_t cap = p->cap ? p->cap : 256;
        while (cap < p->n + (size_t)n)
            cap *= 2;
        struct cl_rlg_entry *v = realloc(p->v, cap * sizeof(*v));
        if (v == NULL)
            return;
        p->v = v;
        p->cap = cap;
    }
    for (int i = 0; i < n; i++)
        p->v[p->n++] = cl_rlg_entry_at(payload, (size_t)i);
}

static const struct cl_channel_ops ops = {.on_message = on_message};

struct send_ctx {
    const uint8_t *msg;
    size_t len;
    size_t live;
};

static int send_one(void *arg, const struct cl_member_info *m)
{
    struct send_ctx *c = arg;
    if (m->state != CL_STATE_ALIVE && m->state != CL_STATE_SUSPECT)
        return 0;
    c->live++;
    if (!m->is_self && c->msg != NULL)
        cl_swim_send_to(g.swim, m->name, CL_RLG_CHANNEL, c->msg, c->len);
    return 0;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
    struct gw_rl_table *tab = gw_rl_table_shared();
    if (tab == NULL)
        return;
    uint64_t now = uv_now(g.loop);
    g.tick++;
    g.nout = 0;
    /* 1. own demand */
    for (size_t i = 0; i < g.cap; i++) {
        uint32_t a;
        uint64_t k = gw_rl_slot_collect(tab, i, &a);
        if (k != g.ckey[i]) {
            g.ckey[i] = k;
            g.demand[i] = 0;
        }
        g.remote[i] = 0;
        if (k == 0 || (a == 0 && g.demand[i] == 0))
            continue;
        uint64_t d = ((uint64_t)g.demand[i] * 7 + (uint64_t)a * 1000 * 3) / 10;
        g.demand[i] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
        if (g.demand[i] > 0 && g.nout < g.cap)
            g.out[g.nout++] = (struct cl_rlg_entry){k, g.demand[i]};
    }
    /* 2. peers' demand, where this node has the key too */
    for (size_t p = 0; p < g.npeers; p++) {
        struct peer *pe = &g.peers[p];
        if (now - pe->last_ms > SILENT_MS)
            continue;
        for (size_t i = 0; i < pe->n; i++) {
            long at = gw_rl_find(tab, pe->v[i].key);
            if (at >= 0)
                g.remote[at] += pe->v[i].demand_milli;
        }
    }
    /* 3. shares */
    for (size_t i = 0; i < g.cap; i++) {
        if (g.ckey[i] == 0 || (g.demand[i] == 0 && g.remote[i] == 0))
            continue;
        uint64_t total = (uint64_t)g.demand[i] + g.remote[i];
        uint64_t ppm = total ? (uint64_t)g.demand[i] * 1000000 / total : 1000000;
        if (ppm < SHARE_FLOOR)
            ppm = SHARE_FLOOR;
        gw_rl_slot_set_share(tab, i, g.ckey[i], (uint32_t)ppm);
    }
    /* 4. send (also counts live members for the fallback share) */
    static uint8_t buf[CL_RLG_HEADER + CL_RLG_MAX * CL_RLG_ENTRY];
    struct send_ctx c = {0};
    size_t off = 0;
    do {
        size_t n = g.nout - off > CL_RLG_MAX ? CL_RLG_MAX : g.nout - off;
        c.msg = n ? buf : NULL;
        c.len = n ? cl_rlg_encode(g.tick, g.out + off, n, buf) : 0;
        c.live = 0;
        cl_swim_members(g.swim, send_one, &c);
        off += n;
    } while (off < g.nout);
    gw_rl_set_members(c.live ? (unsigned)c.live : 1);
}

int node_ratelimit_start(uv_loop_t *loop, struct cl_swim *swim)
{
    struct gw_rl_table *tab = gw_rl_table_shared();
    if (g.running || swim == NULL || tab == NULL)
        return 0;
    g.cap = gw_rl_table_capacity(tab);
    g.ckey = calloc(g.cap, sizeof(*g.ckey));
    g.demand = calloc(g.cap, sizeof(*g.demand));
    g.remote = calloc(g.cap, sizeof(*g.remote));
    g.out = calloc(g.cap, sizeof(*g.out));
    if (g.ckey == NULL || g.demand == NULL || g.remote == NULL || g.out == NULL)
        goto nomem;
    g.loop = loop;
    g.swim = swim;
    int rv = cl_swim_register_channel(swim, CL_RLG_CHANNEL, &ops, NULL);
    if (rv != 0)
        goto fail;
    if ((rv = uv_timer_init(loop, &g.timer)) != 0) {
        cl_swim_unregister_channel(swim, CL_RLG_CHANNEL);
        goto fail;
    }
    g.running = true;
    return uv_timer_start(&g.timer, on_tick, TICK_MS, TICK_MS);
nomem:
    rv = -12;
fail:
    free(g.ckey);
    free(g.demand);
    free(g.remote);
    free(g.out);
    memset(&g, 0, sizeof(g));
    return rv;
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
    free(g.ckey);
    free(g.demand);
    free(g.remote);
    free(g.out);
    for (size_t i = 0; i < g.npeers; i++)
        free(g.peers[i].v);
    memset(&g, 0, sizeof(g));
}

void node_ratelimit_stop(void)
{
    if (!g.running)
        return;
    g.running = false;
    uv_timer_stop(&g.timer);
    cl_swim_unregister_channel(g.swim, CL_RLG_CHANNEL);
    uv_close((uv_handle_t *)&g.timer, on_closed);
    gw_rl_set_members(1);
}

/* ---- the admin view --------------------------------------------------------- */

static uint64_t slot_weight(size_t i)
{
    return (uint64_t)g.demand[i] + g.remote[i];
}

json_t *node_ratelimit_json(size_t max)
{
    size_t top[NODE_RL_SHOWN], n = 0;
    json_t *arr = json_array();
    if (max > NODE_RL_SHOWN)
        max = NODE_RL_SHOWN;
    for (size_t i = 0; g.running && arr != NULL && max > 0 && i < g.cap; i++) {
        uint64_t w = slot_weight(i);
        if (g.ckey[i] == 0 || w == 0 || (n == max && slot_weight(top[n - 1]) >= w))
            continue;
        size_t at = n < max ? n++ : n - 1; /* insertion, heaviest first */
        for (; at > 0 && slot_weight(top[at - 1]) < w; at--)
            top[at] = top[at - 1];
        top[at] = i;
    }
    for (size_t j = 0; j < n; j++) {
        size_t i = top[j];
        char key[17];
        uint64_t total = slot_weight(i);
        double share = total ? (double)g.demand[i] / (double)total : 1.0;
        gv_hex64(g.ckey[i], key);
        key[16] = '\0';
        /* demand is attempts per tick in thousandths: per second is x 1000 / TICK_MS / 1000 */
        json_array_append_new(
            arr, json_pack("{s:s,s:f,s:f,s:f}", "key", key, "demand", (double)g.demand[i] / TICK_MS,
                           "peer_demand", (double)g.remote[i] / TICK_MS, "share",
                           share < SHARE_FLOOR / 1e6 ? SHARE_FLOOR / 1e6 : share));
    }
    return arr;
}
