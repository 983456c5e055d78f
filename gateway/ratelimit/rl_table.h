/* rl_table.h - bounded, lock-free per-key rate-limit state (GCRA, the
 * "generic cell rate algorithm", which is a token bucket kept as one
 * timestamp per key).
 *
 * The table has a fixed number of slots chosen at creation, so a flood of
 * distinct keys can never grow memory: a new key takes a free or idle slot
 * among a few probed ones, else evicts the probed slot whose bucket is the
 * fullest (the least recently limited key). Every slot is two 64-bit atomics
 * updated with compare-and-swap, so any number of threads (the workers) use
 * one table without locks. Keys are 64-bit hashes; no request types here, so a cluster gossip
 * layer (node glue) can feed it.
 * See docs/rate-limiting.md.
 */
#ifndef GV_GATEWAY_RL_TABLE_H
#define GV_GATEWAY_RL_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_RL_PROBES 8 /* slots probed per key */

struct gw_rl_table;

struct gw_rl_result {
    bool allowed;
    uint64_t limit;     /* bucket size (burst) */
    uint64_t remaining; /* tokens left after this decision */
    uint64_t reset_ms;  /* until the bucket is full again */
    uint64_t retry_ms;  /* when denied: until one token is back */
};

/* capacity is rounded up to a power of two (at least GW_RL_PROBES). */
int gw_rl_table_new(size_t capacity, struct gw_rl_table **out);
/* The process-wide table the rate-limit plugin and the cluster-share glue
 * (node/ratelimit.c) use: GW_RL_CAPACITY slots, created on first use (any
 * thread). NULL only when that allocation failed. */
#define GW_RL_CAPACITY (1u << 17)
struct gw_rl_table *gw_rl_table_shared(void);
void gw_rl_table_free(struct gw_rl_table *t);
size_t gw_rl_table_capacity(const struct gw_rl_table *t);
/* Bytes the table holds: fixed for its whole life. */
size_t gw_rl_table_bytes(const struct gw_rl_table *t);
/* Slots holding a key whose bucket is not full at now_us. */
size_t gw_rl_table_active(const struct gw_rl_table *t, uint64_t now_us);
uint64_t gw_rl_evictions(const struct gw_rl_table *t);

/* 64-bit hash (FNV-1a then a finalizer) of len bytes, chained on seed. */
uint64_t gw_rl_hash(const void *data, size_t len, uint64_t seed);

/* Takes one token for key from a bucket refilled at limit per window_us,
 * holding at most burst tokens (0 = limit). now_us is monotonic. */
void gw_rl_take(struct gw_rl_table *t, uint64_t key, uint64_t limit, uint64_t window_us,
                uint64_t burst, uint64_t now_us, struct gw_rl_result *out);

/* scope cluster: the same take at this node's share of the limit (its
 * share_ppm as last set by the control loop, else 1 / live members), counting
 * the attempt for the next gossip tick. Returns the share used, in ppm. */
uint32_t gw_rl_take_shared(struct gw_rl_table *t, uint64_t key, uint64_t limit, uint64_t window_us,
                           uint64_t burst, uint64_t now_us, struct gw_rl_result *out);

/* Control loop only (node glue): slot i's key (0 = free) with its attempts
 * since the last call (reset to 0); setting slot i's share if it still holds
 * key; the slot holding key, or -1. */
uint64_t gw_rl_slot_collect(struct gw_rl_table *t, size_t i, uint32_t *attempts);
void gw_rl_slot_set_share(struct gw_rl_table *t, size_t i, uint64_t key, uint32_t ppm);
long gw_rl_find(const struct gw_rl_table *t, uint64_t key);

/* The number of live cluster members (at least 1) that scope cluster shares
 * its limit between. Set by the node from its membership view. */
void gw_rl_set_members(unsigned n);
unsigned gw_rl_members(void);

#endif
