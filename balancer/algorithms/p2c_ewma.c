/* p2c_ewma.c - power of two choices over a latency-weighted load: draw two
 * distinct candidates at random and take the one with the lower
 * ewma_us * (inflight + 1) / weight (Finagle's and Linkerd's peak-EWMA idea,
 * with the EWMA kept by lb_target_report). Two random draws avoid the herd
 * that "always the best" causes when many workers see the same stale numbers.
 *
 * A target with no latency sample yet borrows the other's EWMA, so the two
 * compare on in-flight load alone; neither a zero (always wins) nor a guess
 * (may never win) would be fair to a newcomer. */
#include "balancer/lb.h"
#include "common/err.h"
#include "common/util.h"

#include <stdlib.h>

struct p2c {
    int *cand; /* scratch: candidate indices of the current pick */
};

static int p2c_init(struct lb_balancer *b)
{
    struct p2c *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return GV_ENOMEM;
    if (b->spec->ntargets > 0) {
        p->cand = calloc(b->spec->ntargets, sizeof(*p->cand));
        if (p->cand == NULL) {
            free(p);
            return GV_ENOMEM;
        }
    }
    b->priv = p;
    return 0;
}

static void p2c_destroy(struct lb_balancer *b)
{
    struct p2c *p = b->priv;
    free(p->cand);
    free(p);
}

/* True when target a costs less than target b. */
static bool cheaper(const struct lb_balancer *bal, int a, int b)
{
    const struct lb_target_state *sa = bal->states[a], *sb = bal->states[b];
    uint64_t ea = atomic_load_explicit(&sa->ewma_us, memory_order_relaxed);
    uint64_t eb = atomic_load_explicit(&sb->ewma_us, memory_order_relaxed);
    int64_t ia = atomic_load_explicit(&sa->inflight, memory_order_relaxed);
    int64_t ib = atomic_load_explicit(&sb->inflight, memory_order_relaxed);

    if (ea == 0 && eb == 0)
        ea = eb = 1;
    else if (ea == 0)
        ea = eb;
    else if (eb == 0)
        eb = ea;
    /* ea*(ia+1)/wa < eb*(ib+1)/wb, cross-multiplied in 128 bits: the EWMA is
     * clamped to an hour in microseconds, so 64 bits could overflow. */
    unsigned __int128 ca =
        (unsigned __int128)ea * (uint64_t)((ia < 0 ? 0 : ia) + 1) * (uint64_t)lb_weight(bal, b);
    unsigned __int128 cb =
        (unsigned __int128)eb * (uint64_t)((ib < 0 ? 0 : ib) + 1) * (uint64_t)lb_weight(bal, a);
    return ca < cb;
}

static int p2c_pick(struct lb_balancer *b, const struct lb_pick_ctx *ctx)
{
    struct p2c *p = b->priv;
    int n = (int)b->spec->ntargets;
    int k = 0;

    for (int i = 0; i < n; i++) {
        if (lb_candidate(b, i, ctx))
            p->cand[k++] = i;
    }
    if (k == 0)
        return -1;
    if (k == 1)
        return p->cand[0];
    uint64_t r = gv_rand64();
    int x = (int)(r % (uint64_t)k);
    int y = (int)((r >> 32) % (uint64_t)(k - 1));
    if (y >= x)
        y++;
    int a = p->cand[x], c = p->cand[y];
    if (cheaper(b, a, c))
        return a;
    if (cheaper(b, c, a))
        return c;
    return (gv_rand64() & 1) ? a : c; /* equal cost: either, at random */
}

const struct lb_ops lb_p2c_ewma_ops = {
    .name = "p2c_ewma",
    .doc = "the better of two random targets, by latency (EWMA) times requests in flight "
           "over weight",
    .init = p2c_init,
    .destroy = p2c_destroy,
    .pick = p2c_pick,
};
