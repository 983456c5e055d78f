/* lb.c - balancer instances: choosing the algorithm's ops table for a spec,
 * and the candidate test every algorithm shares. */
#include "balancer/lb.h"
#include "common/err.h"

#include <stdlib.h>

static const struct lb_ops *ops_for(enum lb_algo algo)
{
    switch (algo) {
    case LB_ROUND_ROBIN:
        return &lb_round_robin_ops;
    case LB_LEAST_CONNECTIONS:
        return &lb_least_connections_ops;
    case LB_P2C_EWMA:
        return &lb_p2c_ewma_ops;
    case LB_CONSISTENT_HASH:
        return &lb_consistent_hash_ops;
    case LB_RANDOM:
        return &lb_random_ops;
    }
    return NULL;
}

int lb_balancer_new(const struct lb_service_spec *spec, struct lb_target_state **states,
                    struct lb_balancer **out)
{
    const struct lb_ops *ops = ops_for(spec->algo);
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
