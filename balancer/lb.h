/* lb.h - the balancing algorithms behind one ops table.
 *
 * Each algorithm is one file under algorithms/ exporting one
 * `const struct lb_ops`, listed once in algorithms/registry.c; nothing else
 * names it. What the rest of the gateway must know about an algorithm (does
 * it want a hash of the request?) is in its ops, not in a test of its name.
 *
 * A balancer instance belongs to one worker thread and one config snapshot,
 * so pick() needs no lock; the shared per-target state it reads (health,
 * in-flight counts, latency) is atomic. The registry is constant data, read
 * from any thread.
 */
#ifndef GV_BALANCER_LB_H
#define GV_BALANCER_LB_H

#include "balancer/service.h"

#include <stddef.h>
#include <stdint.h>

/* What a request offers to the algorithm. Hash inputs are resolved by the
 * caller according to spec->hash_on, so algorithms never parse HTTP. */
struct lb_pick_ctx {
    uint64_t hash;    /* hash of the hash_on input (only with LB_NEEDS_HASH) */
    bool has_hash;    /* false: no input (header/cookie absent) -> fall back */
    const int *tried; /* target indices already tried by this request */
    int ntried;
    uint64_t now_ms;
};

struct lb_balancer;

enum {
    /* pick() reads ctx->hash: the caller hashes the spec's hash_on input
     * (client address, path, header or cookie) for this algorithm only. */
    LB_NEEDS_HASH = 1 << 0,
};

struct lb_ops {
    const char *name; /* the config's `balancer:` value */
    const char *doc;  /* one line for the config reference */
    unsigned flags;   /* LB_NEEDS_HASH */
    /* Builds private state from b->spec; returns 0 or a negative error. */
    int (*init)(struct lb_balancer *b);
    void (*destroy)(struct lb_balancer *b);
    /* Returns a target index that is available and not tried, or -1. */
    int (*pick)(struct lb_balancer *b, const struct lb_pick_ctx *ctx);
};

/* The registry (algorithms/registry.c): every algorithm a service may name,
 * in a fixed order whose first entry is the default. */
const struct lb_ops *lb_algo_default(void);
/* The algorithm called name, or NULL (name NULL or not registered). */
const struct lb_ops *lb_algo_find(const char *name);
/* Entry i, or NULL once i reaches lb_algo_count(). */
size_t lb_algo_count(void);
const struct lb_ops *lb_algo_at(size_t i);
/* Every name, as "a, b, c or d", cut short to fit n bytes; for messages
 * that say what the config may pick. */
void lb_algo_choices(char *buf, size_t n);

struct lb_balancer {
    const struct lb_ops *ops;
    const struct lb_service_spec *spec; /* borrowed; outlives the balancer */
    struct lb_target_state **states;    /* borrowed; states[i] for spec->targets[i] */
    void *priv;                         /* the algorithm's */
};

/* Creates a balancer for spec with the algorithm spec->algo (GV_EINVAL when
 * NULL). states has spec->ntargets entries. Returns 0 or a negative error
 * (*out untouched). */
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

/* For algorithms: a weighted random choice among the candidates (each with
 * probability weight / total), or -1 when there is none. A hashing
 * algorithm falls back to it when a request has no hash input. */
int lb_pick_weighted_random(struct lb_balancer *b, const struct lb_pick_ctx *ctx);

#endif
