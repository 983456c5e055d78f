/* least_connections.c - least connections, weighted: the candidate with the fewest
 * requests in flight per unit of weight (across all workers, from the shared
 * atomic counters). Ties go round robin, starting after the last pick, so an
 * idle service still spreads its requests instead of piling on target 0. */
#include "balancer/lb.h"
#include "common/err.h"

#include <stdlib.h>

struct leastconn {
    int next; /* where the tie-breaking scan starts */
};

static int lc_init(struct lb_balancer *b)
{
    struct leastconn *lc = calloc(1, sizeof(*lc));
    if (lc == NULL)
        return GV_ENOMEM;
    b->priv = lc;
    return 0;
}

static void lc_destroy(struct lb_balancer *b)
{
    free(b->priv);
}

static int64_t inflight(const struct lb_balancer *b, int i)
{
    int64_t v = atomic_load_explicit(&b->states[i]->inflight, memory_order_relaxed);
    return v < 0 ? 0 : v;
}

static int lc_pick(struct lb_balancer *b, const struct lb_pick_ctx *ctx)
{
    struct leastconn *lc = b->priv;
    int n = (int)b->spec->ntargets;
    int best = -1;
    int64_t best_load = 0, best_w = 1;

    if (n == 0)
        return -1;
    if (lc->next >= n)
        lc->next = 0;
    for (int k = 0; k < n; k++) {
        int i = lc->next + k < n ? lc->next + k : lc->next + k - n;
        if (!lb_candidate(b, i, ctx))
            continue;
        int64_t load = inflight(b, i), w = lb_weight(b, i);
        /* load/w < best_load/best_w without division; the first of equals
         * in scan order wins, which is what rotates ties. Products stay far
         * below 2^63: in-flight counts and weights are both small. */
        if (best < 0 || load * best_w < best_load * w) {
            best = i;
            best_load = load;
            best_w = w;
        }
    }
    if (best >= 0)
        lc->next = best + 1;
    return best;
}

const struct lb_ops lb_least_connections_ops = {
    .name = "least_connections",
    .doc = "the target with the fewest requests in flight (all workers) per unit of weight",
    .init = lc_init,
    .destroy = lc_destroy,
    .pick = lc_pick,
};
