/* rl_table.c - see rl_table.h. */
#include "gateway/ratelimit/rl_table.h"
#include "common/err.h"

#include <stdatomic.h>
#include <pthread.h>
#include <stdlib.h>

struct gw_rl_slot {
    _Atomic uint64_t key;       /* 0 = never used */
    _Atomic uint64_t tat;       /* theoretical arrival time, ns; <= now: bucket full */
    _Atomic uint32_t attempts;  /* scope cluster: requests since the last gossip tick */
    _Atomic uint32_t share_ppm; /* scope cluster: this node's share; 0 = not known */
};

struct gw_rl_table {
    size_t mask;
    _Atomic uint64_t evictions;
    struct gw_rl_slot *slots;
};

static _Atomic unsigned members = 1;

void gw_rl_set_members(unsigned n)
{
    atomic_store_explicit(&members, n ? n : 1, memory_order_relaxed);
}

unsigned gw_rl_members(void)
{
    return atomic_load_explicit(&members, memory_order_relaxed);
}

int gw_rl_table_new(size_t capacity, struct gw_rl_table **out)
{
    size_t cap = GW_RL_PROBES;
    while (cap < capacity)
        cap <<= 1;
    struct gw_rl_table *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return GV_ENOMEM;
    t->slots = calloc(cap, sizeof(*t->slots));
    if (t->slots == NULL) {
        free(t);
        return GV_ENOMEM;
    }
    t->mask = cap - 1;
    *out = t;
    return 0;
}

void gw_rl_table_free(struct gw_rl_table *t)
{
    if (t == NULL)
        return;
    free(t->slots);
    free(t);
}

size_t gw_rl_table_capacity(const struct gw_rl_table *t)
{
    return t->mask + 1;
}

size_t gw_rl_table_bytes(const struct gw_rl_table *t)
{
    return sizeof(*t) + (t->mask + 1) * sizeof(*t->slots);
}

size_t gw_rl_table_active(const struct gw_rl_table *t, uint64_t now_us)
{
    size_t n = 0;
    for (size_t i = 0; i <= t->mask; i++)
        if (atomic_load_explicit(&t->slots[i].key, memory_order_relaxed) != 0 &&
            atomic_load_explicit(&t->slots[i].tat, memory_order_relaxed) > now_us * 1000)
            n++;
    return n;
}

uint64_t gw_rl_evictions(const struct gw_rl_table *t)
{
    return atomic_load_explicit(&t->evictions, memory_order_relaxed);
}

uint64_t gw_rl_hash(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ULL ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h ? h : 1; /* 0 marks a free slot */
}

/* The slot for key: its own, else a free or full-bucket one, else the probed
 * slot with the lowest tat (evicted). */
static struct gw_rl_slot *slot_for(struct gw_rl_table *t, uint64_t key, uint64_t now_ns)
{
    struct gw_rl_slot *spare = NULL, *victim = NULL;
    uint64_t spare_key = 0, victim_key = 0, victim_tat = UINT64_MAX;
    for (size_t i = 0; i < GW_RL_PROBES; i++) {
        struct gw_rl_slot *s = &t->slots[(key + i) & t->mask];
        uint64_t k = atomic_load_explicit(&s->key, memory_order_acquire);
        if (k == key)
            return s;
        uint64_t tat = atomic_load_explicit(&s->tat, memory_order_relaxed);
        if (spare == NULL && (k == 0 || tat <= now_ns)) {
            spare = s;
            spare_key = k;
        } else if (tat < victim_tat) {
            victim = s;
            victim_key = k;
            victim_tat = tat;
        }
    }
    bool evict = spare == NULL;
    if (evict) {
        spare = victim;
        spare_key = victim_key;
    }
    /* Claim it; on a lost race another thread took it: use it anyway (the
     * two keys share a bucket until one moves on, a bounded inaccuracy). */
    if (atomic_compare_exchange_strong(&spare->key, &spare_key, key)) {
        atomic_store_explicit(&spare->tat, 0, memory_order_relaxed);
        atomic_store_explicit(&spare->attempts, 0, memory_order_relaxed);
        atomic_store_explicit(&spare->share_ppm, 0, memory_order_relaxed);
        if (evict)
            atomic_fetch_add_explicit(&t->evictions, 1, memory_order_relaxed);
    }
    return spare;
}

static void take(struct gw_rl_slot *s, uint64_t limit, uint64_t window_us, uint64_t burst,
                 uint64_t ppm, uint64_t now_us, struct gw_rl_result *out)
{
    if (limit == 0)
        limit = 1;
    if (burst == 0)
        burst = limit;
    uint64_t now = now_us * 1000;
    /* ns per token at ppm millionths of the limit */
    unsigned __int128 iv =
        (unsigned __int128)window_us * 1000 * 1000000 / ((unsigned __int128)limit * ppm);
    uint64_t interval = iv > UINT64_MAX / 4 ? UINT64_MAX / 4 : (uint64_t)iv;
    if (interval == 0)
        interval = 1;
    uint64_t sburst = (uint64_t)((unsigned __int128)burst * ppm / 1000000);
    if (sburst == 0)
        sburst = 1;
    uint64_t tau = interval * sburst; /* a full bucket, in time */
    if (tau / sburst != interval)
        tau = UINT64_MAX / 4;
    uint64_t tat = atomic_load_explicit(&s->tat, memory_order_relaxed);
    out->limit = burst;
    for (;;) {
        uint64_t base = tat > now ? tat : now;
        uint64_t next = base + interval;
        if (next - now > tau) {
            out->allowed = false;
            out->remaining = 0;
            out->retry_ms = (next - now - tau + 999999) / 1000000;
            out->reset_ms = (base - now + 999999) / 1000000;
            return;
        }
        if (atomic_compare_exchange_weak_explicit(&s->tat, &tat, next, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            out->allowed = true;
            out->remaining = (tau - (next - now)) / interval;
            out->retry_ms = 0;
            out->reset_ms = (next - now + 999999) / 1000000;
            return;
        }
    }
}

void gw_rl_take(struct gw_rl_table *t, uint64_t key, uint64_t limit, uint64_t window_us,
                uint64_t burst, uint64_t now_us, struct gw_rl_result *out)
{
    struct gw_rl_slot *s = slot_for(t, key ? key : 1, now_us * 1000);
    take(s, limit, window_us, burst, 1000000, now_us, out);
}

uint32_t gw_rl_take_shared(struct gw_rl_table *t, uint64_t key, uint64_t limit, uint64_t window_us,
                           uint64_t burst, uint64_t now_us, struct gw_rl_result *out)
{
    struct gw_rl_slot *s = slot_for(t, key ? key : 1, now_us * 1000);
    atomic_fetch_add_explicit(&s->attempts, 1, memory_order_relaxed);
    uint32_t ppm = atomic_load_explicit(&s->share_ppm, memory_order_relaxed);
    if (ppm == 0)
        ppm = 1000000 / gw_rl_members();
    take(s, limit, window_us, burst, ppm, now_us, out);
    return ppm;
}

uint64_t gw_rl_slot_collect(struct gw_rl_table *t, size_t i, uint32_t *attempts)
{
    struct gw_rl_slot *s = &t->slots[i & t->mask];
    *attempts = atomic_exchange_explicit(&s->attempts, 0, memory_order_relaxed);
    return atomic_load_explicit(&s->key, memory_order_relaxed);
}

void gw_rl_slot_set_share(struct gw_rl_table *t, size_t i, uint64_t key, uint32_t ppm)
{
    struct gw_rl_slot *s = &t->slots[i & t->mask];
    if (atomic_load_explicit(&s->key, memory_order_relaxed) == key)
        atomic_store_explicit(&s->share_ppm, ppm, memory_order_relaxed);
}

long gw_rl_find(const struct gw_rl_table *t, uint64_t key)
{
    for (size_t i = 0; i < GW_RL_PROBES; i++) {
        size_t at = (key + i) & t->mask;
        if (atomic_load_explicit(&t->slots[at].key, memory_order_relaxed) == key)
            return (long)at;
    }
    return -1;
}

static struct gw_rl_table *shared;
static pthread_once_t shared_once = PTHREAD_ONCE_INIT;

static void shared_init(void)
{
    if (gw_rl_table_new(GW_RL_CAPACITY, &shared) != 0)
        shared = NULL;
}

struct gw_rl_table *gw_rl_table_shared(void)
{
    pthread_once(&shared_once, shared_init);
    return shared;
}
