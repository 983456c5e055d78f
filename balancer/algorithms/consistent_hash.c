/* consistent_hash.c - consistent hashing with a Maglev lookup table (Eisenbud et al.,
 * "Maglev: A Fast and Reliable Software Network Load Balancer", NSDI 2016).
 * A key goes to table[hash % M]; the table depends only on the targets'
 * addresses and weights, so every node and worker maps a key to the same
 * target, the shares follow the weights within a few entries in M, and
 * removing one of N targets moves about 1/N of the keys. Requests without a
 * hash input are spread by weighted random.
 *
 * Building the table. Each target has its own permutation of the M slots,
 * slot(j) = (offset + j * skip) % M, with offset and skip taken from two
 * hashes of its address (M is prime, so any skip in 1..M-1 visits every
 * slot). Targets take turns; at its turn a target claims the next slot of its
 * permutation that nobody holds yet, until the table is full. With weights,
 * turns are handed out by stride scheduling: target i's k-th turn falls at
 * virtual time k / weight_i, so a target ends with weight_i / total of the
 * slots (within one). Ties go to the heavier target, then to the smaller
 * address: the table depends on the set of targets, not on the order in
 * which the config lists them.
 *
 * Targets that cannot take the request. Envoy rebuilds its table over the
 * healthy hosts. Here health and ejection change under a live table (they
 * are atomics shared by all workers), and a table rebuild costs far more
 * than a request, so the table always covers every configured target and
 * pick() works around the ones that are not candidates (down, ejected or
 * already tried): it rehashes the key with seeds 1, 2, ... into the same
 * table, up to CHASH_REHASHES times, then scans the targets in rank order
 * (heaviest, then by address) from a point set by the key. A key whose
 * target is a candidate never looks further, so marking a target down moves
 * only that target's keys, spread over the others by weight, and they come
 * back when it does. A retry (the first choice in ctx->tried) follows the
 * same sequence on every worker.
 *
 * Memory: M 16-bit target indices (M = 65537: 128 KiB) plus one int per
 * target, per service per worker, since each worker owns its balancers.
 * Building the table takes about M ln M probes (~2 ms at M = 65537) when a
 * worker builds the balancers of a new config snapshot. */
#include "balancer/lb.h"
#include "common/err.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

/* A prime. The table's own error is at most one slot per target, so the
 * shares are exact to ~1/M; M far above the number of targets keeps the
 * keys that move between surviving targets on a change rare (the paper
 * asks for M > 100 N). 16411 holds the shares as well, in a quarter of the
 * memory and build time, but moves about twice as many keys between
 * survivors (1.3% instead of 0.5% of keys when one of 100 targets leaves). */
#define CHASH_TABLE_SIZE 65537u
/* Table entries are uint16_t target indices; this one marks a free slot
 * while building, so a service may have at most 65535 targets. */
#define CHASH_EMPTY       UINT16_MAX
#define CHASH_MAX_TARGETS UINT16_MAX
/* Seeds of the two address hashes; fixed, as every node must agree. */
#define CHASH_SEED_OFFSET 0x6d61676c65763031ULL
#define CHASH_SEED_SKIP   0x6d61676c65763032ULL
/* Rehashes before the scan. The scan is reached with probability p^32 when
 * targets holding a share p of the table are unavailable: never in
 * practice below p = 0.5, 3% of keys at p = 0.9. */
#define CHASH_REHASHES 32

struct chash {
    uint16_t *table; /* CHASH_TABLE_SIZE entries; NULL without targets */
    int *order;      /* target indices by rank: the fill and scan order */
    int ntargets;
};

/* Ranks: heaviest first, then by address, so that the order depends on the
 * targets and not on the config's list. */
struct ranked {
    const char *address;
    int weight;
    int index;
};

static int ranked_cmp(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    if (x->weight != y->weight)
        return x->weight > y->weight ? -1 : 1;
    int c = strcmp(x->address, y->address);
    /* Equal addresses are refused by the config loader; keep the sort total
     * anyway. */
    return c != 0 ? c : (x->index > y->index) - (x->index < y->index);
}

/* Where one target (by rank) is in its permutation. */
struct cursor {
    uint32_t pos;  /* next slot to try */
    uint32_t skip; /* 1..M-1 */
};

/* The targets of one weight share their turn times, so they take their turns
 * together, in rank order: a heap over the distinct weights (usually one to
 * three) rather than over the targets keeps the build at the cost of the
 * probes themselves. */
struct group {
    uint64_t weight;
    uint64_t turns; /* turns taken by each member */
    int first;      /* rank of the first member */
    int count;
};

/* True when group a's next turn comes before group b's: (turns_a + 1) /
 * weight_a < (turns_b + 1) / weight_b, ties to the heavier (the smaller
 * index). Turns stay below 2^17 and weights below 2^31, so the products
 * cannot overflow. */
static bool turn_before(const struct group *g, int a, int b)
{
    uint64_t ta = (g[a].turns + 1) * g[b].weight, tb = (g[b].turns + 1) * g[a].weight;
    return ta != tb ? ta < tb : a < b;
}

/* Restores the min-heap of groups (ordered by turn_before) below position i. */
static void heap_down(int *heap, int n, const struct group *g, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && turn_before(g, heap[l], heap[m]))
            m = l;
        if (r < n && turn_before(g, heap[r], heap[m]))
            m = r;
        if (m == i)
            return;
        int t = heap[i];
        heap[i] = heap[m];
        heap[m] = t;
        i = m;
    }
}

/* Sets each ranked target at the start of its permutation and gathers the
 * targets into weight groups, heaviest first. Returns the number of groups;
 * heap[] then lists them in that order, which is already a heap since no
 * group has taken a turn. */
static int start_cursors(const struct ranked *rk, size_t n, struct cursor *cur, struct group *g,
                         int *heap)
{
    const uint32_t m = CHASH_TABLE_SIZE;
    int ngroups = 0;
    for (size_t r = 0; r < n; r++) {
        size_t len = strlen(rk[r].address);
        cur[r].pos = (uint32_t)(gv_hash64(rk[r].address, len, CHASH_SEED_OFFSET) % m);
        cur[r].skip = (uint32_t)(gv_hash64(rk[r].address, len, CHASH_SEED_SKIP) % (m - 1)) + 1;
        if (ngroups == 0 || g[ngroups - 1].weight != (uint64_t)rk[r].weight) {
            g[ngroups] = (struct group){.weight = (uint64_t)rk[r].weight, .first = (int)r};
            heap[ngroups] = ngroups;
            ngroups++;
        }
        g[ngroups - 1].count++;
    }
    return ngroups;
}

/* One turn of a weight group: each member, in rank order, claims the next
 * free slot of its permutation while the table has one. Returns the slots
 * filled. */
static uint32_t take_turn(struct chash *ch, const struct group *turn, struct cursor *cur,
                          uint32_t filled)
{
    const uint32_t m = CHASH_TABLE_SIZE;
    uint32_t taken = 0;
    for (int r = turn->first; r < turn->first + turn->count && filled + taken < m; r++) {
        struct cursor *c = &cur[r];
        /* Terminates: the permutation visits every slot and one is free. */
        while (ch->table[c->pos] != CHASH_EMPTY) {
            c->pos += c->skip;
            if (c->pos >= m)
                c->pos -= m;
        }
        ch->table[c->pos] = (uint16_t)ch->order[r];
        taken++;
    }
    return taken;
}

/* Fills ch->table from the ranked targets (ch->order follows rk). Returns 0
 * or GV_ENOMEM (the table is then left unfilled). */
static int build_table(struct chash *ch, const struct ranked *rk, size_t n)
{
    struct cursor *cur = calloc(n, sizeof(*cur));
    struct group *g = calloc(n, sizeof(*g));
    int *heap = calloc(n, sizeof(*heap));
    int rc = GV_ENOMEM;
    if (cur == NULL || g == NULL || heap == NULL)
        goto fail;
    int ngroups = start_cursors(rk, n, cur, g, heap);
    memset(ch->table, 0xff, CHASH_TABLE_SIZE * sizeof(*ch->table));
    for (uint32_t filled = 0; filled < CHASH_TABLE_SIZE;) {
        struct group *turn = &g[heap[0]];
        filled += take_turn(ch, turn, cur, filled);
        turn->turns++;
        heap_down(heap, ngroups, g, 0);
    }
    rc = 0;
fail:
    free(cur);
    free(g);
    free(heap);
    return rc;
}

static int chash_init(struct lb_balancer *b)
{
    const struct lb_service_spec *spec = b->spec;
    struct ranked *rk = NULL;
    struct chash *ch;
    int rc = GV_ENOMEM;

    if (spec->ntargets > CHASH_MAX_TARGETS)
        return GV_ERANGE;
    if ((ch = calloc(1, sizeof(*ch))) == NULL)
        return GV_ENOMEM;
    ch->ntargets = (int)spec->ntargets;
    if (ch->ntargets > 0) {
        ch->table = malloc(CHASH_TABLE_SIZE * sizeof(*ch->table));
        ch->order = malloc(spec->ntargets * sizeof(*ch->order));
        rk = malloc(spec->ntargets * sizeof(*rk));
        if (ch->table == NULL || ch->order == NULL || rk == NULL)
            goto fail;
        for (int i = 0; i < ch->ntargets; i++) {
            const char *addr = spec->targets[i].address;
            rk[i] = (struct ranked){addr != NULL ? addr : "", lb_weight(b, i), i};
        }
        qsort(rk, spec->ntargets, sizeof(*rk), ranked_cmp);
        for (int r = 0; r < ch->ntargets; r++)
            ch->order[r] = rk[r].index;
        if ((rc = build_table(ch, rk, spec->ntargets)) != 0)
            goto fail;
    }
    free(rk);
    b->priv = ch;
    return 0;

fail:
    free(rk);
    free(ch->table);
    free(ch->order);
    free(ch);
    return rc;
}

static void chash_destroy(struct lb_balancer *b)
{
    struct chash *ch = b->priv;
    free(ch->table);
    free(ch->order);
    free(ch);
}

static int chash_pick(struct lb_balancer *b, const struct lb_pick_ctx *ctx)
{
    const struct chash *ch = b->priv;

    if (!ctx->has_hash)
        return lb_pick_weighted_random(b, ctx);
    if (ch->ntargets == 0)
        return -1;
    uint64_t h = ctx->hash;
    int t = ch->table[h % CHASH_TABLE_SIZE];
    if (lb_candidate(b, t, ctx))
        return t;
    /* Each rehash lands on a target with probability its share of the
     * table, so the keys of an unavailable target spread by weight. */
    for (uint64_t seed = 1; seed <= CHASH_REHASHES; seed++) {
        t = ch->table[gv_mix64(h + seed * 0x9e3779b97f4a7c15ULL) % CHASH_TABLE_SIZE];
        if (lb_candidate(b, t, ctx))
            return t;
    }
    for (int k = 0, start = (int)(h % (uint64_t)ch->ntargets); k < ch->ntargets; k++) {
        int r = start + k < ch->ntargets ? start + k : start + k - ch->ntargets;
        if (lb_candidate(b, ch->order[r], ctx))
            return ch->order[r];
    }
    return -1;
}

const struct lb_ops lb_consistent_hash_ops = {
    .name = "consistent_hash",
    .doc = "the same hash_on input goes to the same target on every node (Maglev table); "
           "requests without one go by weighted random",
    .flags = LB_NEEDS_HASH,
    .init = chash_init,
    .destroy = chash_destroy,
    .pick = chash_pick,
};
