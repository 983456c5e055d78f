/* rl_cluster.h - the control-loop half of scope cluster rate limits: no
 * network and no clock of its own, so the node glue (node/ratelimit.c) and
 * the simulation test drive the same code. Design and error bound:
 * docs/rate-limiting.md.
 *
 * Every tick (GW_RLC_TICK_MS) it reads each key's attempts and admissions
 * from the table, keeps this node's demand (an EWMA of attempts) and the
 * admissions of its last GW_RLC_TICKS ticks, and sets each key's allowance:
 * this node's part, by demand, of the tokens its view of the cluster bucket
 * holds. Peers' messages carry their demand and their per-tick admission
 * counts (a G-counter by tick number: a repeated or overlapping message never
 * counts twice); the counts are charged into the view. A peer's demand
 * counts in the shares until it sends another, leaves the membership or has
 * been silent for GW_RLC_KEEP_MS.
 *
 * One instance per node; all calls on one thread (the control loop). */
#ifndef GV_GATEWAY_RL_CLUSTER_H
#define GV_GATEWAY_RL_CLUSTER_H

#include "gateway/ratelimit/rl_table.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_RLC_TICK_MS       100
#define GW_RLC_TICKS         4 /* per-tick admission counts a message carries */
#define GW_RLC_SILENT_MS     1000
#define GW_RLC_PEERS         64
#define GW_RLC_MOVED         4     /* demand moved by more than 1/4 since last sent: send it */
#define GW_RLC_REFRESH_TICKS 300   /* demand unchanged: sent again after 30 s (repairs a loss) */
#define GW_RLC_KEEP_MS       95000 /* a peer's demand is kept this long after its last message */

struct gw_rlc_entry {
    uint64_t key;
    uint32_t demand_milli;         /* attempts per tick (EWMA), thousandths */
    uint32_t counts[GW_RLC_TICKS]; /* admissions in the sender's tick t, t-1, ... */
    uint32_t fast_milli;           /* the previous version's demand (0.7 d + 0.3 attempts), sent on
                                    * channel 3 for its nodes; not in the counts message */
};

struct gw_rlc;

int gw_rlc_new(struct gw_rl_table *t, const char *self, struct gw_rlc **out);
void gw_rlc_free(struct gw_rlc *c);

/* A peer's message: part `part` (< 64) of its tick; each (tick, part) is
 * applied once. */
void gw_rlc_on_peer(struct gw_rlc *c, const char *peer, uint32_t tick, unsigned part,
                    const struct gw_rlc_entry *e, size_t n, uint64_t now_us);

/* A peer that sends demand only (a node of the previous version, channel
 * 3): its demand takes part in the shares, so this node keeps to its part
 * while the old node keeps to its own share; it has no counts to charge.
 * Ignored from a peer whose counts were heard within GW_RLC_SILENT_MS (a
 * node of this version sends both). */
void gw_rlc_on_peer_demand(struct gw_rlc *c, const char *peer, uint32_t tick,
                           const struct gw_rlc_entry *e, size_t n, uint64_t now_us);

/* One tick at now_us (the workers' clock): sets allowances and returns the
 * entries to send to every peer (valid until the next call) and the tick. */
size_t gw_rlc_tick(struct gw_rlc *c, uint64_t now_us, const struct gw_rlc_entry **out,
                   uint32_t *tick);

/* Whether the last tick's entries are worth sending to the peers: when
 * they carry admissions, when a key's demand moved by more than
 * 1/GW_RLC_MOVED since it was last due (a new key too), else every
 * GW_RLC_REFRESH_TICKS while there is any demand; one empty message when
 * the last demand is gone. Peers keep what a node said until it says
 * otherwise: a node whose traffic stopped soon goes quiet, and a node that
 * never had any is silent. The membership (gw_rlc_set_members,
 * gw_rlc_forget), not these messages, says who is there. */
bool gw_rlc_due(const struct gw_rlc *c);

/* peer left the membership (dead or left): its demand no longer counts. */
void gw_rlc_forget(struct gw_rlc *c, const char *peer);

/* The live members (this node included) in the membership view, when the
 * glue has one: an idle key is split between at least that many nodes. */
void gw_rlc_set_members(struct gw_rlc *c, unsigned members);

/* Peers heard from within GW_RLC_SILENT_MS at the last tick: those with
 * rate-limited traffic of their own (an idle node sends nothing). */
unsigned gw_rlc_live_peers(const struct gw_rlc *c);

/* One key as the admin API shows it: this node's demand, the live peers'
 * (attempts per tick, thousandths) and this node's part of the bucket as
 * the last tick set it (ppm). */
struct gw_rlc_view {
    uint64_t key;
    uint32_t demand_milli;
    uint64_t peer_demand_milli;
    uint32_t share_ppm;
};
/* The busiest keys (demand here plus at peers), at most max, busiest
 * first, into out; returns how many. One pass over the slots keys took. */
size_t gw_rlc_top(const struct gw_rlc *c, struct gw_rlc_view *out, size_t max);

#endif
