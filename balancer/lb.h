/* lb.h - the balancing algorithms behind one ops table.
 *
 * Each algorithm is a file under algorithms/
 * exporting one `const struct lb_ops`. A balancer instance belongs to one
 * worker thread and one config snapshot, so pick() needs no lock; the shared
 * per-target state it reads (health, in-flight counts, latency) is atomic.
 */
#ifndef GV_BALANCER_LB_H
#define GV_BALANCER_LB_H

#include "balancer/service.h"

#include <stddef.h>
#include <stdint.h>

/* What a request offers to the algorithm. Hash inputs are resolved by the
 * caller according to spec->hash_on, so algorithms never parse HTTP. */
struct lb_pick_ctx {
    uint64_t hash;    /* hash of the hash_on input (consistent_hash only) */
    bool has_hash;    /* false: no input (header/cookie absent) -> fall back */
    const int *tried; /* target indices already tried by this request */
    int ntried;
    uint64_t now_ms;
};

struct lb_balancer;

struct lb_ops {
    const char *name;
    /* Builds private state from b->spec; returns 0 or a negative error. */
    int (*init)(struct lb_balancer *b);
    void (*destroy)(struct lb_balancer *b);
    /* Returns a target index that is available and not tried, or -1. */
    int (*pick)(struct lb_balancer *b, const struct lb_pick_ctx *ctx);
};

extern const struct lb_ops lb_round_robin_ops;
extern const struct lb_ops lb_least_connections_ops;
extern const struct lb_ops lb_p2c_ewma_ops;
extern const struct lb_ops lb_consistent_hash_ops;
extern const struct lb_ops lb_random_ops;

struct lb_balancer {
    const struct lb_ops *ops;
    const struct lb_service_spec *spec; /* borrowed; outlives the balancer */
    struct lb_target_state **states;    /* borrowed; states[i] for spec->targets[i] */
    void *priv;                         /* the algorithm's */
};

/* Creates a balancer for spec with the algorithm spec->algo. states has
 * spec->ntargets entries. Returns 0 or a negative error (*out untouched). */
int lb_balancer_new(const struct lb_service_spec *spec, struct lb_target_state **states,
                    struct lb_balancer **out);
void lb_balancer_free(struct lb_balancer *b);

/* Picks a target (see lb_ops.pick). */
static inline int lb_pick(struct lb_balancer *b, const struct lb_pick_ctx *ctx)
{
    return b->ops->pick(b, ctx);
}

/* For algorithms: true when target i is available and not in ctx->tried. */
bool lb_candidate(const struct lb_balancer *b, int i, const struct lb_pick_ctx *ctx);

/* For algorithms: the weight of target i, at least 1. */
static inline int lb_weight(const struct lb_balancer *b, int i)
{
    int w = b->spec->targets[i].weight;
    return w < 1 ? 1 : w;
}

/* Weighted random choice among the candidates (random.c); consistent_hash
 * falls back to it when a request has no hash input. -1 when none. */
int lb_pick_weighted_random(struct lb_balancer *b, const struct lb_pick_ctx *ctx);

#endif
