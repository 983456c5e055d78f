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

/* scope cluster (docs/rate-limiting.md): this node's view of the one cluster
 * bucket (full limit; charged with this node's admissions at once and with
 * the peers' as they are heard), and an allowance: this node admits only
 * while its admissions stay under the ceiling the control loop set at the
 * last tick plus its share of the refill since then. Before the first tick
 * for a key the allowance is this node's equal part of the bucket, rounded
 * up. Counts the attempt and the admission. */
void gw_rl_take_cluster(struct gw_rl_table *t, uint64_t key, uint64_t limit, uint64_t window_us,
                        uint64_t burst, uint64_t now_us, struct gw_rl_result *out);

/* A node's part of an integer pool: ceil(pool * part / total), 0 when part
 * is 0. Rounding up, the parts of all nodes add up to at most pool + nodes - 1
 * (the price of never refusing a request the single bucket would admit
 * because its token was given to another node). total > 0. */
uint64_t gw_rl_part(uint64_t pool, uint64_t part, uint64_t total);

/* Control loop only (cluster glue, gateway/ratelimit/rl_cluster.h). */
struct gw_rl_slot_state {
    uint64_t key;        /* 0 = free */
    uint32_t attempts;   /* since the last collect (reset to 0) */
    uint64_t admitted;   /* this node's admissions since the slot took the key */
    uint64_t interval;   /* ns per token at the full limit; 0 = never taken here */
    uint64_t tau;        /* ns of a full bucket */
    int64_t avail_milli; /* tokens in the view at now, thousandths (< 0: debt) */
};
/* Slot i's state at now_us; attempts are reset to 0. */
void gw_rl_slot_collect(struct gw_rl_table *t, size_t i, uint64_t now_us,
                        struct gw_rl_slot_state *st);
/* The same without resetting attempts. */
void gw_rl_slot_peek(struct gw_rl_table *t, size_t i, uint64_t now_us, struct gw_rl_slot_state *st);
/* Sets slot i's allowance if it still holds key. quiet: this node admitted
 * nothing for key lately, so a request that finds the view's bucket full may
 * be admitted beyond the allowance (first come; see the docs' bound). */
void gw_rl_slot_allow(struct gw_rl_table *t, size_t i, uint64_t key, uint64_t ceiling,
                      uint32_t share_ppm, bool quiet, uint64_t now_us);
/* Peers' admissions for key: charged into its view (the slot is taken for
 * key when absent, so traffic moving here finds the bucket already used).
 * Returns the slot's index (-1 when n is 0). */
long gw_rl_charge(struct gw_rl_table *t, uint64_t key, uint64_t n, uint64_t now_us);
long gw_rl_find(const struct gw_rl_table *t, uint64_t key);

/* The slots keys have taken, so a reader (the cluster tick, every 100 ms)
 * visits O(keys) slots, not GW_RL_CAPACITY: claimed() of them so far, and
 * the j-th one's index (-1 while a worker is still writing it; it is there
 * at a later call). A slot once taken stays listed (it is never free again,
 * only handed to another key). */
size_t gw_rl_table_claimed(const struct gw_rl_table *t);
long gw_rl_table_claimed_at(const struct gw_rl_table *t, size_t j);

/* The members (at least 1) the cluster bucket is shared between (set by
 * the cluster glue every tick). */
void gw_rl_set_members(struct gw_rl_table *t, unsigned members);
unsigned gw_rl_members(const struct gw_rl_table *t);

#endif
