/* lb.c - balancer instances of a spec's algorithm, and what every algorithm
 * shares: the candidate test and the weighted random choice. */
#include "balancer/lb.h"
#include "common/err.h"
#include "common/util.h"

#include <stdlib.h>

int lb_balancer_new(const struct lb_service_spec *spec, struct lb_target_state **states,
                    struct lb_balancer **out)
{
    const struct lb_ops *ops = spec->algo;
    if (ops == NULL)
        return GV_EINVAL;
    if (spec->ntargets > 0 && states == NULL)
        return GV_EINVAL;
    if (spec->ntargets > (size_t)INT32_MAX)
        return GV_ERANGE;
    struct lb_balancer *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return GV_ENOMEM;
    b->ops = ops;
    b->spec = spec;
    b->states = states;
    int rc = ops->init != NULL ? ops->init(b) : 0;
    if (rc < 0)
        goto fail;
    *out = b;
    return 0;

fail:
    free(b);
    return rc;
}

void lb_balancer_free(struct lb_balancer *b)
{
    if (b == NULL)
        return;
    if (b->ops->destroy != NULL)
        b->ops->destroy(b);
    free(b);
}

bool lb_candidate(const struct lb_balancer *b, int i, const struct lb_pick_ctx *ctx)
{
    if (i < 0 || (size_t)i >= b->spec->ntargets)
        return false;
    if (!lb_target_available(b->states[i], ctx->now_ms))
        return false;
    for (int j = 0; j < ctx->ntried; j++) {
        if (ctx->tried[j] == i)
            return false;
    }
    return true;
}

int lb_pick_weighted_random(struct lb_balancer *b, const struct lb_pick_ctx *ctx)
{
    int n = (int)b->spec->ntargets;
    uint64_t total = 0;

    for (int i = 0; i < n; i++) {
        if (lb_candidate(b, i, ctx))
            total += (uint64_t)lb_weight(b, i);
    }
    if (total == 0)
        return -1;
    /* The modulo bias of a 64-bit draw over a total this small is far below
     * anything measurable. */
    uint64_t r = gv_rand64() % total;
    int last = -1;
    for (int i = 0; i < n; i++) {
        if (!lb_candidate(b, i, ctx))
            continue;
        uint64_t w = (uint64_t)lb_weight(b, i);
        if (r < w)
            return i;
        r -= w;
        last = i;
    }
    /* Only reachable when a target's health changed between the two scans. */
    return last;
}
