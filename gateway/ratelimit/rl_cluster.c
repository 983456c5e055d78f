/* rl_cluster.c - see rl_cluster.h. */
#include "gateway/ratelimit/rl_cluster.h"
#include "common/err.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rlc_demand {
    uint64_t key;
    uint32_t demand;
};

struct rlc_peer {
    char name[128];
    uint64_t last_us, counts_us; /* heard at all; heard with counts (channel 4) */
    uint32_t cur, prev;          /* latest tick heard; the one before it */
    uint64_t parts;              /* parts of tick cur applied */
    struct rlc_demand *v;        /* the demand entries of tick cur */
    size_t n, cap;
};

struct rlc_slot {
    uint64_t key, admitted;
    uint32_t ring[GW_RLC_TICKS];  /* own admissions per tick, newest first */
    uint32_t pring[GW_RLC_TICKS]; /* peers' admissions heard, by their age in ticks */
    uint32_t demand, sent;        /* EWMA now; its value peers last heard (this tick) */
    uint32_t told;                /* its value in the last message due */
    uint32_t fast;                /* the previous version's EWMA (channel 3) */
    uint64_t rtotal, rbefore;     /* live peers' demand: all; ordered before this node */
};

struct gw_rlc {
    struct gw_rl_table *t;
    size_t cap;
    char self[128];
    uint32_t tick;
    unsigned live, members; /* peers heard lately; members the glue counts (0: none) */
    unsigned quiet;         /* ticks since the last message due */
    bool busy, due;         /* the last tick had entries; they are to be sent */
    struct rlc_slot *s;
    struct gw_rlc_entry *out;
    struct rlc_peer peers[GW_RLC_PEERS];
    size_t npeers;
};

int gw_rlc_new(struct gw_rl_table *t, const char *self, struct gw_rlc **out)
{
    struct gw_rlc *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return GV_ENOMEM;
    c->t = t;
    c->cap = gw_rl_table_capacity(t);
    c->s = calloc(c->cap, sizeof(*c->s));
    c->out = calloc(c->cap, sizeof(*c->out));
    if (c->s == NULL || c->out == NULL) {
        gw_rlc_free(c);
        return GV_ENOMEM;
    }
    snprintf(c->self, sizeof(c->self), "%s", self);
    *out = c;
    return 0;
}

void gw_rlc_free(struct gw_rlc *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->npeers; i++)
        free(c->peers[i].v);
    free(c->s);
    free(c->out);
    free(c);
}

unsigned gw_rlc_live_peers(const struct gw_rlc *c)
{
    return c->live;
}

bool gw_rlc_due(const struct gw_rlc *c)
{
    return c->due;
}

void gw_rlc_forget(struct gw_rlc *c, const char *peer)
{
    for (size_t i = 0; i < c->npeers; i++)
        if (strcmp(c->peers[i].name, peer) == 0) {
            c->peers[i].last_us = c->peers[i].counts_us = 0;
            c->peers[i].n = 0;
        }
}

void gw_rlc_set_members(struct gw_rlc *c, unsigned members)
{
    c->members = members;
}

/* The nodes an idle key's pool is split between: this one and its live
 * peers, or the membership's count when larger (nodes of the previous
 * version are members but send nothing while idle). */
static unsigned nodes(const struct gw_rlc *c)
{
    return c->members > c->live + 1 ? c->members : c->live + 1;
}

/* ---- peers -------------------------------------------------------------- */

static struct rlc_peer *peer_get(struct gw_rlc *c, const char *name)
{
    for (size_t i = 0; i < c->npeers; i++)
        if (strcmp(c->peers[i].name, name) == 0)
            return &c->peers[i];
    struct rlc_peer *p;
    if (c->npeers < GW_RLC_PEERS) {
        p = &c->peers[c->npeers++];
    } else { /* replace the longest silent */
        p = &c->peers[0];
        for (size_t i = 1; i < c->npeers; i++)
            if (c->peers[i].last_us < p->last_us)
                p = &c->peers[i];
    }
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->last_us = p->counts_us = 0;
    p->n = 0;
    return p;
}

/* Which of the message's per-tick counts are new: the ticks after p->prev. */
static size_t peer_advance(struct rlc_peer *p, uint32_t tick, uint64_t now_us)
{
    /* Only a tick number says what was heard: a next tick that comes late
     * (this loop or the peer's held up) still carries ticks already
     * charged. Silence matters only when the tick went back: a restart. */
    bool silent = p->last_us != 0 && now_us - p->last_us > GW_RLC_SILENT_MS * 1000ULL;
    if (p->last_us == 0 ||
        (tick < p->cur && (p->cur - tick > 16 || silent))) { /* new or restarted */
        p->cur = tick;
        p->prev = tick - GW_RLC_TICKS;
        p->n = 0;
        p->parts = 0;
    } else if (tick > p->cur) {
        p->prev = p->cur;
        p->cur = tick;
        p->n = 0;
        p->parts = 0;
    } else if (tick < p->cur) {
        return 0; /* a late part of an older tick: its counts came again since */
    }
    p->last_us = now_us;
    uint32_t gap = p->cur - p->prev;
    return gap > GW_RLC_TICKS ? GW_RLC_TICKS : gap;
}

static void peer_keep(struct gw_rlc *c, struct rlc_peer *p, const struct gw_rlc_entry *e)
{
    if (e->demand_milli == 0 || p->n >= c->cap)
        return;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        struct rlc_demand *v = realloc(p->v, cap * sizeof(*v));
        if (v == NULL)
            return;
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n++] = (struct rlc_demand){e->key, e->demand_milli};
}

/* Remembers the peer's recent admissions by age (see slot_allow). */
static void peer_recent(struct gw_rlc *c, size_t at, const struct gw_rlc_entry *e, size_t fresh)
{
    struct rlc_slot *s = &c->s[at];
    if (s->key != e->key) { /* taken for this key since the last tick */
        memset(s, 0, sizeof(*s));
        s->key = e->key;
    }
    for (size_t j = 0; j < fresh; j++) {
        uint64_t v = (uint64_t)s->pring[j] + e->counts[j];
        s->pring[j] = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    }
}

void gw_rlc_on_peer(struct gw_rlc *c, const char *peer, uint32_t tick, unsigned part,
                    const struct gw_rlc_entry *e, size_t n, uint64_t now_us)
{
    if (peer == NULL || strcmp(peer, c->self) == 0)
        return;
    struct rlc_peer *p = peer_get(c, peer);
    size_t fresh = peer_advance(p, tick, now_us);
    uint64_t bit = 1ULL << (part % 64);
    if (tick != p->cur || (p->parts & bit))
        return; /* late, or heard already */
    p->parts |= bit;
    p->counts_us = now_us;
    for (size_t i = 0; i < n; i++) {
        uint64_t got = 0;
        for (size_t j = 0; j < fresh; j++)
            got += e[i].counts[j];
        long at = gw_rl_charge(c->t, e[i].key, got, now_us);
        if (at >= 0 && got > 0)
            peer_recent(c, (size_t)at, &e[i], fresh);
        peer_keep(c, p, &e[i]);
    }
}

void gw_rlc_on_peer_demand(struct gw_rlc *c, const char *peer, uint32_t tick,
                           const struct gw_rlc_entry *e, size_t n, uint64_t now_us)
{
    if (peer == NULL || strcmp(peer, c->self) == 0)
        return;
    struct rlc_peer *p = peer_get(c, peer);
    if (p->counts_us != 0 && now_us - p->counts_us <= GW_RLC_SILENT_MS * 1000ULL)
        return;
    size_t fresh = peer_advance(p, tick, now_us);
    for (size_t i = 0; i < n; i++)
        if (fresh || tick == p->cur)
            peer_keep(c, p, &e[i]);
}

/* The peers' demand per local key: what each said last, until it says
 * otherwise, leaves the membership (gw_rlc_forget) or has been silent for
 * GW_RLC_KEEP_MS; and the peers heard lately. */
static void peers_fold(struct gw_rlc *c, uint64_t now_us)
{
    c->live = 0;
    for (size_t i = 0; i < c->npeers; i++) {
        struct rlc_peer *p = &c->peers[i];
        if (p->last_us == 0 || now_us - p->last_us > GW_RLC_KEEP_MS * 1000ULL)
            continue;
        c->live += now_us - p->last_us <= GW_RLC_SILENT_MS * 1000ULL;
        for (size_t j = 0; j < p->n; j++) {
            long at = gw_rl_find(c->t, p->v[j].key);
            if (at < 0 || c->s[at].key != p->v[j].key)
                continue;
            c->s[at].rtotal += p->v[j].demand;
        }
    }
    gw_rl_set_members(c->t, nodes(c));
}

/* ---- own slots ---------------------------------------------------------- */

/* The EWMA's time constant: about ten tokens' time, within [1 s, the bucket]
 * and at most a minute (one attempt must still move a demand kept in
 * thousandths): a sparse key remembers where its traffic comes from. */
static uint64_t ewma_ticks(const struct gw_rl_slot_state *st)
{
    uint64_t tc = st->interval / 1000000 * 10; /* ms */
    uint64_t full = st->tau / 1000000;
    if (tc > full)
        tc = full;
    if (tc > 60000)
        tc = 60000;
    if (tc < 1000)
        tc = 1000;
    return tc / GW_RLC_TICK_MS;
}

static void slot_collect(struct gw_rlc *c, size_t i, const struct gw_rl_slot_state *st)
{
    struct rlc_slot *s = &c->s[i];
    if (st->key == 0 && s->key == 0)
        return; /* never used: left untouched */
    if (st->key != s->key) {
        memset(s, 0, sizeof(*s));
        s->key = st->key;
    }
    uint64_t delta = st->admitted > s->admitted ? st->admitted - s->admitted : 0;
    s->admitted = st->admitted;
    memmove(s->ring + 1, s->ring, sizeof(s->ring) - sizeof(s->ring[0]));
    s->ring[0] = delta > UINT32_MAX ? UINT32_MAX : (uint32_t)delta;
    memmove(s->pring + 1, s->pring, sizeof(s->pring) - sizeof(s->pring[0]));
    s->pring[0] = 0;
    s->sent = s->told; /* what peers weigh this node with */
    s->rtotal = 0;
    if (st->key == 0 || st->interval == 0)
        return;
    uint64_t f = ((uint64_t)s->fast * 7 + (uint64_t)st->attempts * 3000) / 10;
    s->fast = f > UINT32_MAX ? UINT32_MAX : (uint32_t)f;
    uint64_t n = ewma_ticks(st);
    uint64_t d = ((uint64_t)s->demand * (n - 1) + (uint64_t)st->attempts * 1000 + n / 2) / n;
    s->demand = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

static uint64_t ring_sum(const uint32_t *ring)
{
    uint64_t u = 0;
    for (size_t j = 0; j < GW_RLC_TICKS; j++)
        u += ring[j];
    return u;
}

/* This node's part of the tokens its view holds. The pool counts back the
 * admissions of the last GW_RLC_TICKS ticks, this node's and the peers'
 * heard: every node then shares (about) the same pool, whatever it has
 * heard yet, and its allowance is its part of the pool less what it used of
 * it. The parts are rounded up (gw_rl_part): a node is never refused a
 * request because the bucket's last tokens were given to another node, at
 * the price of up to one token per node beyond the pool (docs). */
static void slot_allow(struct gw_rlc *c, size_t i, const struct gw_rl_slot_state *st,
                       uint64_t now_us)
{
    struct rlc_slot *s = &c->s[i];
    uint64_t u = ring_sum(s->ring), heard = ring_sum(s->pring);
    int64_t pm = st->avail_milli + (int64_t)((u + heard) * 1000);
    uint64_t pool = pm > 0 ? (uint64_t)(pm / 1000) : 0;
    uint64_t total = s->sent + s->rtotal, alloc;
    uint32_t ppm;
    if (total == 0) { /* nobody asks: equal parts */
        alloc = gw_rl_part(pool, 1, nodes(c));
        ppm = 1000000 / nodes(c);
    } else { /* by demand, every node with a floor of 1 % of it: rounded up, a
              * node whose traffic just started still has a token to admit */
        uint64_t f = total / 100 + 1, own = s->sent + f, all = total + nodes(c) * f;
        alloc = gw_rl_part(pool, own, all);
        ppm = (uint32_t)(own * 1000000 / all);
    }
    gw_rl_slot_allow(c->t, i, st->key, s->admitted - u + alloc, ppm, u == 0, now_us);
}

size_t gw_rlc_tick(struct gw_rlc *c, uint64_t now_us, const struct gw_rlc_entry **out,
                   uint32_t *tick)
{
    size_t nout = 0;
    bool news = false; /* admissions, or a demand peers do not know yet */
    /* only the slots keys have taken: an idle node reads none, a busy one
     * O(keys), never all GW_RL_CAPACITY (that scan was most of a node's CPU) */
    size_t used = gw_rl_table_claimed(c->t);
    c->tick++;
    for (size_t j = 0; j < used; j++) {
        long i = gw_rl_table_claimed_at(c->t, j);
        if (i < 0)
            continue; /* being claimed: read at the next tick */
        struct gw_rl_slot_state one;
        gw_rl_slot_collect(c->t, (size_t)i, now_us, &one);
        slot_collect(c, (size_t)i, &one);
    }
    peers_fold(c, now_us);
    for (size_t j = 0; j < used; j++) {
        long i = gw_rl_table_claimed_at(c->t, j);
        if (i < 0 || c->s[i].key == 0)
            continue;
        struct rlc_slot *s = &c->s[i];
        struct gw_rl_slot_state st;
        gw_rl_slot_peek(c->t, (size_t)i, now_us, &st);
        if (st.key != s->key || st.interval == 0)
            continue;
        slot_allow(c, (size_t)i, &st, now_us);
        if (s->demand == 0 && ring_sum(s->ring) == 0)
            continue;
        struct gw_rlc_entry *e = &c->out[nout++];
        e->key = s->key;
        e->demand_milli = s->demand;
        e->fast_milli = s->fast;
        memcpy(e->counts, s->ring, sizeof(e->counts));
        uint32_t moved = s->demand > s->told ? s->demand - s->told : s->told - s->demand;
        news = news || ring_sum(s->ring) > 0 || (uint64_t)moved * GW_RLC_MOVED > s->told;
    }
    c->due = news || (nout > 0 && ++c->quiet >= GW_RLC_REFRESH_TICKS) || (nout == 0 && c->busy);
    c->busy = nout > 0;
    if (c->due) {
        c->quiet = 0;
        for (size_t j = 0; j < used; j++) {
            long i = gw_rl_table_claimed_at(c->t, j);
            if (i >= 0)
                c->s[i].told = c->s[i].demand;
        }
    }
    *out = c->out;
    *tick = c->tick;
    return nout;
}

/* ---- the admin view ------------------------------------------------------- */

static uint64_t weight(const struct rlc_slot *s)
{
    return (uint64_t)s->demand + s->rtotal;
}

/* This node's part, as slot_allow sets it (ppm). */
static uint32_t share_ppm(const struct gw_rlc *c, const struct rlc_slot *s)
{
    uint64_t total = s->sent + s->rtotal;
    if (total == 0)
        return 1000000 / nodes(c);
    uint64_t f = total / 100 + 1;
    return (uint32_t)((s->sent + f) * 1000000 / (total + nodes(c) * f));
}

size_t gw_rlc_top(const struct gw_rlc *c, struct gw_rlc_view *out, size_t max)
{
    size_t n = 0, used = gw_rl_table_claimed(c->t);
    for (size_t j = 0; max > 0 && j < used; j++) {
        long i = gw_rl_table_claimed_at(c->t, j);
        if (i < 0)
            continue;
        const struct rlc_slot *s = &c->s[i];
        uint64_t w = weight(s);
        if (s->key == 0 || w == 0 ||
            (n == max && out[n - 1].demand_milli + out[n - 1].peer_demand_milli >= w))
            continue;
        size_t at = n < max ? n++ : n - 1; /* insertion, busiest first */
        for (; at > 0 && out[at - 1].demand_milli + out[at - 1].peer_demand_milli < w; at--)
            out[at] = out[at - 1];
        out[at] = (struct gw_rlc_view){s->key, s->demand, s->rtotal, share_ppm(c, s)};
    }
    return n;
}
