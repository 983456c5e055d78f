/* random.c - weighted random: each candidate with probability weight/total.
 * Stateless, so it also serves as consistent_hash's fallback. */
#include "balancer/lb.h"
#include "common/util.h"

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

const struct lb_ops lb_random_ops = {
    .name = "random",
    .pick = lb_pick_weighted_random,
};
