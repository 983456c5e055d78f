/* chash.c - consistent hashing on a ketama-style ring: each target owns 160
 * points per unit of weight at gv_hash64("address#i"), and a request goes to
 * the first point at or after its hash, walking on past targets that are not
 * candidates. Points depend only on addresses, so every node and worker maps
 * a key to the same target, and removing one of N targets moves only the
 * keys it owned (about 1/N). Requests without a hash input are spread by
 * weighted random. */
#include "balancer/lb.h"
#include "common/err.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHASH_POINTS_PER_WEIGHT 160
/* Bound on the ring (16 bytes a point): very large weights get fewer points
 * per unit rather than hundreds of megabytes. */
#define CHASH_MAX_POINTS (1u << 22)

struct chash_point {
    uint64_t hash;
    int target;
};

struct chash {
    struct chash_point *ring;
    size_t npoints;
    uint32_t *seen; /* per target: the walk that last rejected it */
    uint32_t walk;
};

static int point_cmp(const void *a, const void *b)
{
    const struct chash_point *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    /* Equal hashes (rare) are ordered by target so the ring is the same
     * whatever order qsort visits them in. */
    return (x->target > y->target) - (x->target < y->target);
}

static int chash_init(struct lb_balancer *b)
{
    const struct lb_service_spec *spec = b->spec;
    struct chash *ch = calloc(1, sizeof(*ch));
    char label[600];
    uint64_t total_weight = 0;

    if (ch == NULL)
        return GV_ENOMEM;
    for (size_t i = 0; i < spec->ntargets; i++)
        total_weight += (uint64_t)lb_weight(b, (int)i);
    uint64_t per = CHASH_POINTS_PER_WEIGHT;
    if (total_weight > 0 && total_weight * per > CHASH_MAX_POINTS)
        per = GV_MAX(1, CHASH_MAX_POINTS / total_weight);
    if (total_weight > 0) {
        ch->ring = malloc(total_weight * per * sizeof(*ch->ring));
        ch->seen = calloc(spec->ntargets, sizeof(*ch->seen));
        if (ch->ring == NULL || ch->seen == NULL)
            goto fail;
    }
    for (size_t i = 0; i < spec->ntargets; i++) {
        const char *addr = spec->targets[i].address ? spec->targets[i].address : "";
        uint64_t n = (uint64_t)lb_weight(b, (int)i) * per;
        for (uint64_t j = 0; j < n; j++) {
            int len = snprintf(label, sizeof(label), "%s#%llu", addr, (unsigned long long)j);
            if (len < 0)
                goto fail;
            if ((size_t)len >= sizeof(label))
                len = (int)sizeof(label) - 1;
            ch->ring[ch->npoints].hash = gv_hash64(label, (size_t)len, 0);
            ch->ring[ch->npoints].target = (int)i;
            ch->npoints++;
        }
    }
    if (ch->npoints > 0)
        qsort(ch->ring, ch->npoints, sizeof(*ch->ring), point_cmp);
    b->priv = ch;
    return 0;

fail:
    free(ch->ring);
    free(ch->seen);
    free(ch);
    return GV_ENOMEM;
}

static void chash_destroy(struct lb_balancer *b)
{
    struct chash *ch = b->priv;
    free(ch->ring);
    free(ch->seen);
    free(ch);
}

/* Index of the first point with hash >= h, wrapping to 0 past the end. */
static size_t ring_find(const struct chash *ch, uint64_t h)
{
    size_t lo = 0, hi = ch->npoints;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ch->ring[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == ch->npoints ? 0 : lo;
}

static int chash_pick(struct lb_balancer *b, const struct lb_pick_ctx *ctx)
{
    struct chash *ch = b->priv;

    if (!ctx->has_hash)
        return lb_pick_weighted_random(b, ctx);
    if (ch->npoints == 0)
        return -1;
    size_t start = ring_find(ch, ctx->hash);
    size_t ntargets = b->spec->ntargets, rejected = 0;
    /* The walk usually stops at its first point. Each target is tested at
     * most once per walk, and the walk ends as soon as every target has been
     * rejected, so a mostly-down ring stays cheap. */
    if (++ch->walk == 0) {
        memset(ch->seen, 0, ntargets * sizeof(*ch->seen));
        ch->walk = 1;
    }
    for (size_t k = 0; k < ch->npoints && rejected < ntargets; k++) {
        size_t p = start + k;
        if (p >= ch->npoints)
            p -= ch->npoints;
        int t = ch->ring[p].target;
        if (ch->seen[t] == ch->walk)
            continue;
        if (lb_candidate(b, t, ctx))
            return t;
        ch->seen[t] = ch->walk;
        rejected++;
    }
    return -1;
}

const struct lb_ops lb_consistent_hash_ops = {
    .name = "consistent_hash",
    .init = chash_init,
    .destroy = chash_destroy,
    .pick = chash_pick,
};
