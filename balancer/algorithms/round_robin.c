/* round_robin.c - smooth weighted round robin (nginx's): every pick adds each
 * candidate's weight to its running score, takes the highest score and
 * subtracts the round's total from it. Weights {5,1,1} give a a b a c a a,
 * interleaved rather than in bursts. Targets that are not candidates sit the
 * round out with their score unchanged. */
#include "balancer/lb.h"
#include "common/err.h"

#include <stdlib.h>

struct rr {
    int64_t *current; /* per target running score */
};

static int rr_init(struct lb_balancer *b)
{
    struct rr *rr = calloc(1, sizeof(*rr));
    if (rr == NULL)
        return GV_ENOMEM;
    if (b->spec->ntargets > 0) {
        rr->current = calloc(b->spec->ntargets, sizeof(*rr->current));
        if (rr->current == NULL) {
            free(rr);
            return GV_ENOMEM;
        }
    }
    b->priv = rr;
    return 0;
}

static void rr_destroy(struct lb_balancer *b)
{
    struct rr *rr = b->priv;
    free(rr->current);
    free(rr);
}

static int rr_pick(struct lb_balancer *b, const struct lb_pick_ctx *ctx)
{
    struct rr *rr = b->priv;
    int n = (int)b->spec->ntargets;
    int best = -1;
    int64_t total = 0;

    for (int i = 0; i < n; i++) {
        if (!lb_candidate(b, i, ctx))
            continue;
        int w = lb_weight(b, i);
        rr->current[i] += w;
        total += w;
        if (best < 0 || rr->current[i] > rr->current[best])
            best = i;
    }
    if (best >= 0)
        rr->current[best] -= total;
    return best;
}

const struct lb_ops lb_round_robin_ops = {
    .name = "round_robin",
    .doc = "each target in turn, as often as its weight says, interleaved (nginx's smooth "
           "weighted round robin)",
    .init = rr_init,
    .destroy = rr_destroy,
    .pick = rr_pick,
};
