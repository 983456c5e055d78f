/* rl_table.c - see rl_table.h. */
#include "gateway/ratelimit/rl_table.h"
#include "common/err.h"

#include <stdatomic.h>
#include <pthread.h>
#include <stdlib.h>

/* The scope cluster fields are written by the workers (tat, attempts,
 * admitted, interval, tau, pending drained) and the control loop (ceiling,
 * synced, share, pending): each an atomic; a reader may see a new ceiling
 * with an old time or the other way round for one decision (bounded). */
struct gw_rl_slot {
    _Atomic uint64_t key;       /* 0 = never used */
    _Atomic uint64_t tat;       /* theoretical arrival time, ns; <= now: bucket full */
    _Atomic uint64_t interval;  /* cluster: ns per token at the full limit */
    _Atomic uint64_t tau;       /* cluster: ns of a full bucket */
    _Atomic uint64_t admitted;  /* cluster: this node's admissions */
    _Atomic uint64_t ceiling;   /* cluster: admitted may reach this at synced */
    _Atomic uint64_t synced;    /* cluster: ns when ceiling was set (or the key taken) */
    _Atomic uint64_t quiet;     /* cluster: admitted at the last tick if none lately, else ~0 */
    _Atomic uint32_t attempts;  /* cluster: requests since the last tick */
    _Atomic uint32_t share_ppm; /* cluster: this node's share of the refill; 0 = no tick yet */
    _Atomic uint32_t pending;   /* cluster: peers' admissions not yet charged into tat */
};

struct gw_rl_table {
    size_t mask;
    _Atomic uint64_t evictions;
    _Atomic unsigned members;
    /* The slots a key ever took (a slot never becomes free again), in the
     * order they were taken: the control loop reads these, not the whole
     * table. A worker reserves an index in claimed_n, then publishes the
     * slot's number plus one there; 0 is an entry still being written. */
    _Atomic size_t claimed_n;
    _Atomic uint32_t *claimed;
    struct gw_rl_slot *slots;
};

size_t gw_rl_table_claimed(const struct gw_rl_table *t)
{
    size_t n = atomic_load_explicit(&t->claimed_n, memory_order_acquire);
    return n <= t->mask ? n : t->mask + 1;
}

long gw_rl_table_claimed_at(const struct gw_rl_table *t, size_t j)
{
    if (j > t->mask)
        return -1;
    uint32_t v = atomic_load_explicit(&t->claimed[j], memory_order_acquire);
    return v == 0 ? -1 : (long)(v - 1);
}

static void claim(struct gw_rl_table *t, const struct gw_rl_slot *s)
{
    size_t j = atomic_fetch_add_explicit(&t->claimed_n, 1, memory_order_acq_rel);
    if (j <= t->mask) /* every slot is claimed once: never beyond */
        atomic_store_explicit(&t->claimed[j], (uint32_t)(s - t->slots) + 1, memory_order_release);
}

void gw_rl_set_members(struct gw_rl_table *t, unsigned members)
{
    atomic_store_explicit(&t->members, members ? members : 1, memory_order_relaxed);
}

unsigned gw_rl_members(const struct gw_rl_table *t)
{
    unsigned n = atomic_load_explicit(&t->members, memory_order_relaxed);
    return n ? n : 1;
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
    t->claimed = calloc(cap, sizeof(*t->claimed));
    if (t->slots == NULL || t->claimed == NULL) {
        gw_rl_table_free(t);
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
    free(t->claimed);
    free(t->slots);
    free(t);
}

size_t gw_rl_table_capacity(const struct gw_rl_table *t)
{
    return t->mask + 1;
}

size_t gw_rl_table_bytes(const struct gw_rl_table *t)
{
    return sizeof(*t) + (t->mask + 1) * (sizeof(*t->slots) + sizeof(*t->claimed));
}

size_t gw_rl_table_active(const struct gw_rl_table *t, uint64_t now_us)
{
    size_t n = 0, used = gw_rl_table_claimed(t);
    for (size_t j = 0; j < used; j++) {
        long i = gw_rl_table_claimed_at(t, j);
        if (i >= 0 && atomic_load_explicit(&t->slots[i].tat, memory_order_relaxed) > now_us * 1000)
            n++;
    }
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
        atomic_store_explicit(&spare->pending, 0, memory_order_relaxed);
        atomic_store_explicit(&spare->admitted, 0, memory_order_relaxed);
        atomic_store_explicit(&spare->ceiling, 0, memory_order_relaxed);
        atomic_store_explicit(&spare->synced, now_ns, memory_order_relaxed);
        atomic_store_explicit(&spare->quiet, 0, memory_order_relaxed);
        if (evict)
            atomic_fetch_add_explicit(&t->evictions, 1, memory_order_relaxed);
        if (spare_key == 0)
            claim(t, spare);
    }
    return spare;
}

/* A bucket of limit per window_us holding burst tokens, at ppm millionths of
 * the limit: ns per token and ns of a full bucket. */
struct gcra {
    uint64_t interval, tau, burst;
};

static struct gcra gcra_of(uint64_t limit, uint64_t window_us, uint64_t burst, uint64_t ppm)
{
    struct gcra g;
    if (limit == 0)
        limit = 1;
    g.burst = burst ? burst : limit;
    unsigned __int128 iv =
        (unsigned __int128)window_us * 1000 * 1000000 / ((unsigned __int128)limit * ppm);
    g.interval = iv > UINT64_MAX / 4 ? UINT64_MAX / 4 : (uint64_t)iv;
    if (g.interval == 0)
        g.interval = 1;
    uint64_t sburst = (uint64_t)((unsigned __int128)g.burst * ppm / 1000000);
    if (sburst == 0)
        sburst = 1;
    g.tau = g.interval * sburst;
    if (g.tau / sburst != g.interval)
        g.tau = UINT64_MAX / 4;
    return g;
}

static void take(struct gw_rl_slot *s, struct gcra g, uint64_t now_us, struct gw_rl_result *out)
{
    uint64_t now = now_us * 1000, interval = g.interval, tau = g.tau;
    uint64_t tat = atomic_load_explicit(&s->tat, memory_order_relaxed);
    out->limit = g.burst;
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
    take(s, gcra_of(limit, window_us, burst, 1000000), now_us, out);
}

uint64_t gw_rl_part(uint64_t pool, uint64_t part, uint64_t total)
{
    if (part == 0 || total == 0)
        return 0;
    unsigned __int128 v = ((unsigned __int128)pool * part + total - 1) / total;
    return v > UINT64_MAX / 2 ? UINT64_MAX / 2 : (uint64_t)v;
}

/* Moves tat on by n tokens (admissions elsewhere), without a limit check. */
static void charge(struct gw_rl_slot *s, uint64_t n, uint64_t interval, uint64_t now)
{
    uint64_t add = n > UINT64_MAX / 8 / interval ? UINT64_MAX / 8 : n * interval;
    uint64_t tat = atomic_load_explicit(&s->tat, memory_order_relaxed), next;
    do {
        uint64_t base = tat > now ? tat : now;
        next = base + add < base ? UINT64_MAX / 4 : base + add;
    } while (!atomic_compare_exchange_weak_explicit(&s->tat, &tat, next, memory_order_relaxed,
                                                    memory_order_relaxed));
}

static void charge_pending(struct gw_rl_slot *s, uint64_t interval, uint64_t now)
{
    uint32_t p = atomic_exchange_explicit(&s->pending, 0, memory_order_relaxed);
    if (p != 0)
        charge(s, p, interval, now);
}

/* How many admissions this node may have made by now (see the header). */
static uint64_t allowance(const struct gw_rl_table *t, struct gw_rl_slot *s, uint64_t key,
                          struct gcra g, uint64_t now)
{
    uint64_t since = atomic_load_explicit(&s->synced, memory_order_relaxed);
    uint32_t ppm = atomic_load_explicit(&s->share_ppm, memory_order_relaxed);
    uint64_t base;
    if (ppm == 0) { /* no tick yet: this node's equal part */
        unsigned n = gw_rl_members(t);
        base = gw_rl_part(g.burst, 1, n);
        ppm = 1000000 / n;
    } else {
        base = atomic_load_explicit(&s->ceiling, memory_order_relaxed);
    }
    uint64_t el = now > since ? now - since : 0;
    return base + (uint64_t)((unsigned __int128)el * ppm / 1000000 / g.interval);
}

void gw_rl_take_cluster(struct gw_rl_table *t, uint64_t key, uint64_t limit, uint64_t window_us,
                        uint64_t burst, uint64_t now_us, struct gw_rl_result *out)
{
    key = key ? key : 1;
    uint64_t now = now_us * 1000;
    struct gw_rl_slot *s = slot_for(t, key, now);
    struct gcra g = gcra_of(limit, window_us, burst, 1000000);
    atomic_fetch_add_explicit(&s->attempts, 1, memory_order_relaxed);
    atomic_store_explicit(&s->interval, g.interval, memory_order_relaxed);
    atomic_store_explicit(&s->tau, g.tau, memory_order_relaxed);
    charge_pending(s, g.interval, now);
    uint64_t cap = allowance(t, s, key, g, now);
    uint64_t was = atomic_fetch_add_explicit(&s->admitted, 1, memory_order_relaxed);
    /* beyond the allowance only the first request of a quiet node that
     * finds the bucket full: nothing to share then, and waiting for the
     * allowance to move here would lose the refill */
    bool first = was == atomic_load_explicit(&s->quiet, memory_order_relaxed) &&
                 atomic_load_explicit(&s->tat, memory_order_relaxed) <= now;
    if (was >= cap && !first) {
        atomic_fetch_sub_explicit(&s->admitted, 1, memory_order_relaxed);
        uint64_t tat = atomic_load_explicit(&s->tat, memory_order_relaxed);
        uint64_t base = tat > now ? tat : now, next = base + g.interval;
        out->allowed = false;
        out->limit = g.burst;
        out->remaining = 0;
        /* until the view has a token again, else the next tick's allowance */
        out->retry_ms = next - now > g.tau ? (next - now - g.tau + 999999) / 1000000 : 100;
        out->reset_ms = (base - now + 999999) / 1000000;
        return;
    }
    take(s, g, now_us, out);
    if (!out->allowed)
        atomic_fetch_sub_explicit(&s->admitted, 1, memory_order_relaxed);
}

static void slot_read(struct gw_rl_table *t, size_t i, uint64_t now_us, bool reset,
                      struct gw_rl_slot_state *st)
{
    struct gw_rl_slot *s = &t->slots[i & t->mask];
    uint64_t now = now_us * 1000;
    st->key = atomic_load_explicit(&s->key, memory_order_relaxed);
    if (st->key == 0) { /* never used: not even a write, the page stays untouched */
        *st = (struct gw_rl_slot_state){0};
        return;
    }
    st->attempts = reset ? atomic_exchange_explicit(&s->attempts, 0, memory_order_relaxed)
                         : atomic_load_explicit(&s->attempts, memory_order_relaxed);
    st->admitted = atomic_load_explicit(&s->admitted, memory_order_relaxed);
    st->interval = atomic_load_explicit(&s->interval, memory_order_relaxed);
    st->tau = atomic_load_explicit(&s->tau, memory_order_relaxed);
    st->avail_milli = 0;
    if (st->key == 0 || st->interval == 0)
        return;
    charge_pending(s, st->interval, now);
    uint64_t tat = atomic_load_explicit(&s->tat, memory_order_relaxed);
    uint64_t used = tat > now ? tat - now : 0;
    __int128 left = (__int128)st->tau - (__int128)used;
    __int128 milli = left * 1000 / (__int128)st->interval;
    st->avail_milli = milli > INT64_MAX / 2      ? INT64_MAX / 2
                      : milli < -(INT64_MAX / 2) ? -(INT64_MAX / 2)
                                                 : (int64_t)milli;
}

void gw_rl_slot_collect(struct gw_rl_table *t, size_t i, uint64_t now_us,
                        struct gw_rl_slot_state *st)
{
    slot_read(t, i, now_us, true, st);
}

void gw_rl_slot_peek(struct gw_rl_table *t, size_t i, uint64_t now_us, struct gw_rl_slot_state *st)
{
    slot_read(t, i, now_us, false, st);
}

void gw_rl_slot_allow(struct gw_rl_table *t, size_t i, uint64_t key, uint64_t ceiling,
                      uint32_t share_ppm, bool quiet, uint64_t now_us)
{
    struct gw_rl_slot *s = &t->slots[i & t->mask];
    if (atomic_load_explicit(&s->key, memory_order_relaxed) != key)
        return;
    /* the time first: a worker seeing the new time with the old ceiling
     * allows less, never more */
    atomic_store_explicit(&s->synced, now_us * 1000, memory_order_relaxed);
    atomic_store_explicit(&s->ceiling, ceiling, memory_order_relaxed);
    atomic_store_explicit(
        &s->quiet, quiet ? atomic_load_explicit(&s->admitted, memory_order_relaxed) : UINT64_MAX,
        memory_order_relaxed);
    atomic_store_explicit(&s->share_ppm, share_ppm ? share_ppm : 1, memory_order_relaxed);
}

long gw_rl_charge(struct gw_rl_table *t, uint64_t key, uint64_t n, uint64_t now_us)
{
    if (n == 0)
        return -1;
    struct gw_rl_slot *s = slot_for(t, key ? key : 1, now_us * 1000);
    uint32_t cur = atomic_load_explicit(&s->pending, memory_order_relaxed), next;
    do
        next = cur + n > UINT32_MAX ? UINT32_MAX : (uint32_t)(cur + n);
    while (!atomic_compare_exchange_weak_explicit(&s->pending, &cur, next, memory_order_relaxed,
                                                  memory_order_relaxed));
    return (long)(s - t->slots);
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
