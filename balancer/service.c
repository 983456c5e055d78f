/* service.c - service specs (defaults, free, copy) and the shared run-time
 * state of targets: availability, passive ejection, latency, the registry. */
#include "balancer/service.h"
#include "common/err.h"
#include "common/schema.h"
#include "common/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Latency samples above this are clamped so the EWMA arithmetic cannot
 * overflow (one hour in microseconds). */
#define LB_EWMA_MAX_SAMPLE_US (3600ULL * 1000 * 1000)

int lb_service_spec_defaults(struct lb_service_spec *s)
{
    memset(s, 0, sizeof(*s));
    return gv_schema_defaults(&lb_service_schema, s);
}

void lb_service_spec_free(struct lb_service_spec *s)
{
    gv_schema_free(&lb_service_schema, s);
}

/* strdup that maps NULL to NULL; sets *failed on allocation failure. */
static char *dup_or_null(const char *s, bool *failed)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *failed = true;
    return d;
}

int lb_service_spec_copy(struct lb_service_spec *dst, const struct lb_service_spec *src)
{
    struct lb_service_spec tmp = *src;
    bool failed = false;

    tmp.name = NULL;
    tmp.targets = NULL;
    tmp.ntargets = 0;
    tmp.hash_key = NULL;
    tmp.health.path = NULL;
    tmp.sticky.cookie = NULL;
    tmp.tls.ca_file = NULL;
    tmp.tls.server_name = NULL;

    if (src->ntargets > 0) {
        tmp.targets = calloc(src->ntargets, sizeof(*tmp.targets));
        if (tmp.targets == NULL)
            goto fail;
        tmp.ntargets = src->ntargets;
        for (size_t i = 0; i < src->ntargets; i++) {
            tmp.targets[i] = src->targets[i];
            tmp.targets[i].address = dup_or_null(src->targets[i].address, &failed);
        }
    }
    tmp.name = dup_or_null(src->name, &failed);
    tmp.hash_key = dup_or_null(src->hash_key, &failed);
    tmp.health.path = dup_or_null(src->health.path, &failed);
    tmp.sticky.cookie = dup_or_null(src->sticky.cookie, &failed);
    tmp.tls.ca_file = dup_or_null(src->tls.ca_file, &failed);
    tmp.tls.server_name = dup_or_null(src->tls.server_name, &failed);
    if (failed)
        goto fail;
    *dst = tmp;
    return 0;

fail:
    lb_service_spec_free(&tmp);
    return GV_ENOMEM;
}

static const char *const reason_names[] = {
    [LB_REASON_NONE] = "",
    [LB_REASON_HEALTH_CHECK] = "health_check",
    [LB_REASON_PASSIVE] = "passive",
    [LB_REASON_UNCHECKED] = "unchecked",
};

const char *lb_reason_name(enum lb_reason r)
{
    if ((unsigned)r >= GV_ARRAY_LEN(reason_names))
        return "";
    return reason_names[r];
}

bool lb_target_available(const struct lb_target_state *st, uint64_t now_ms)
{
    return atomic_load_explicit(&st->active_healthy, memory_order_relaxed) &&
           now_ms >= atomic_load_explicit(&st->ejected_until_ms, memory_order_relaxed);
}

enum lb_reason lb_target_reason(const struct lb_target_state *st, uint64_t now_ms)
{
    if (!atomic_load(&st->active_healthy))
        return LB_REASON_HEALTH_CHECK;
    if (now_ms < atomic_load(&st->ejected_until_ms))
        return LB_REASON_PASSIVE;
    if (atomic_load(&st->reason) == LB_REASON_UNCHECKED)
        return LB_REASON_UNCHECKED;
    return LB_REASON_NONE;
}

static void ewma_update(struct lb_target_state *st, uint64_t sample, bool ok)
{
    if (sample > LB_EWMA_MAX_SAMPLE_US)
        sample = LB_EWMA_MAX_SAMPLE_US;
    uint64_t old = atomic_load_explicit(&st->ewma_us, memory_order_relaxed);
    uint64_t next;
    do {
        if (!ok && sample <= old)
            return;
        if (old == 0)
            next = sample;
        else
            next = (7 * old + 3 * sample + 5) / 10;
        if (next == 0)
            next = 1; /* 0 means "no sample yet" */
    } while (!atomic_compare_exchange_weak_explicit(&st->ewma_us, &old, next, memory_order_relaxed,
                                                    memory_order_relaxed));
}

bool lb_target_report(struct lb_target_state *st, const struct lb_passive_spec *passive, bool ok,
                      uint64_t latency_us, uint64_t now_ms)
{
    if (latency_us > 0)
        ewma_update(st, latency_us, ok);

    if (ok) {
        if (atomic_load_explicit(&st->consecutive_failures, memory_order_relaxed) != 0)
            atomic_store_explicit(&st->consecutive_failures, 0, memory_order_relaxed);
        /* An ejection that has run out no longer explains anything. */
        int r = LB_REASON_PASSIVE;
        if (atomic_load(&st->reason) == r && now_ms >= atomic_load(&st->ejected_until_ms))
            atomic_compare_exchange_strong(&st->reason, &r, LB_REASON_NONE);
        return false;
    }
    if (passive == NULL || passive->failures <= 0)
        return false;
    int n = atomic_fetch_add(&st->consecutive_failures, 1) + 1;
    if (n < passive->failures)
        return false;
    /* Only the thread whose count is still current ejects, so concurrent
     * failures eject once and the count restarts from zero. */
    if (!atomic_compare_exchange_strong(&st->consecutive_failures, &n, 0))
        return false;
    atomic_store(&st->ejected_until_ms, now_ms + passive->eject_for_ms);
    /* Keep health_check/unchecked: they are the more useful explanation and
     * the active checker owns them. */
    int r = LB_REASON_NONE;
    atomic_compare_exchange_strong(&st->reason, &r, LB_REASON_PASSIVE);
    return true;
}

void lb_target_connect_failed(struct lb_target_state *st, uint64_t now_ms)
{
    atomic_store_explicit(&st->connect_failed_ms, now_ms, memory_order_relaxed);
}

/* The registry: a chained hash map from "service\0address" to states. Entries
 * are never moved, so handed-out pointers stay valid across rehashing; an
 * entry is freed with its last hold (lb_registry_put) or lb_registry_free. */
struct lb_reg_entry {
    struct lb_reg_entry *next;
    uint64_t hash;
    size_t service_len;
    size_t holds; /* lb_registry_get calls not yet put */
    struct lb_target_state st;
    char key[]; /* service '\0' address '\0' */
};

struct lb_registry {
    pthread_mutex_t mu;
    struct lb_reg_entry **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
};

int lb_registry_new(struct lb_registry **out)
{
    struct lb_registry *r = calloc(1, sizeof(*r));
    if (r == NULL)
        goto fail;
    r->nbuckets = 16;
    r->buckets = calloc(r->nbuckets, sizeof(*r->buckets));
    if (r->buckets == NULL)
        goto fail;
    if (pthread_mutex_init(&r->mu, NULL) != 0)
        goto fail;
    *out = r;
    return 0;

fail:
    if (r != NULL)
        free(r->buckets);
    free(r);
    return GV_ENOMEM;
}

void lb_registry_free(struct lb_registry *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nbuckets; i++) {
        struct lb_reg_entry *e = r->buckets[i];
        while (e != NULL) {
            struct lb_reg_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(r->buckets);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static uint64_t reg_hash(const char *service, size_t slen, const char *address, size_t alen)
{
    return gv_hash64(address, alen, gv_hash64(service, slen, 0));
}

/* Doubles the table; on allocation failure keeps the old one (still correct,
 * just longer chains). */
static void reg_grow(struct lb_registry *r)
{
    size_t n = r->nbuckets * 2;
    struct lb_reg_entry **b = calloc(n, sizeof(*b));
    if (b == NULL)
        return;
    for (size_t i = 0; i < r->nbuckets; i++) {
        struct lb_reg_entry *e = r->buckets[i];
        while (e != NULL) {
            struct lb_reg_entry *next = e->next;
            size_t j = e->hash & (n - 1);
            e->next = b[j];
            b[j] = e;
            e = next;
        }
    }
    free(r->buckets);
    r->buckets = b;
    r->nbuckets = n;
}

/* Adjusts an existing state to whether its service now has active checks. */
static void reg_reconcile(struct lb_target_state *st, bool checked)
{
    if (checked) {
        int r = LB_REASON_NONE;
        if (atomic_load(&st->last_check_ms) == 0 && atomic_load(&st->active_healthy))
            atomic_compare_exchange_strong(&st->reason, &r, LB_REASON_UNCHECKED);
        return;
    }
    atomic_store(&st->active_healthy, 1);
    st->own_down = false;
    atomic_store(&st->last_check_ms, 0);
    int r = LB_REASON_HEALTH_CHECK;
    if (!atomic_compare_exchange_strong(&st->reason, &r, LB_REASON_NONE)) {
        r = LB_REASON_UNCHECKED;
        atomic_compare_exchange_strong(&st->reason, &r, LB_REASON_NONE);
    }
}

struct lb_target_state *lb_registry_get(struct lb_registry *r, const char *service,
                                        const char *address, bool initially_unchecked)
{
    size_t slen = strlen(service), alen = strlen(address);
    uint64_t h = reg_hash(service, slen, address, alen);
    struct lb_target_state *st = NULL;

    pthread_mutex_lock(&r->mu);
    for (struct lb_reg_entry *e = r->buckets[h & (r->nbuckets - 1)]; e != NULL; e = e->next) {
        if (e->hash == h && e->service_len == slen && memcmp(e->key, service, slen + 1) == 0 &&
            strcmp(e->key + slen + 1, address) == 0) {
            st = &e->st;
            e->holds++;
            reg_reconcile(st, initially_unchecked);
            goto out;
        }
    }
    struct lb_reg_entry *e = calloc(1, sizeof(*e) + slen + alen + 2);
    if (e == NULL)
        goto out;
    e->hash = h;
    e->service_len = slen;
    e->holds = 1;
    memcpy(e->key, service, slen + 1);
    memcpy(e->key + slen + 1, address, alen + 1);
    atomic_init(&e->st.active_healthy, 1);
    atomic_init(&e->st.reason, initially_unchecked ? LB_REASON_UNCHECKED : LB_REASON_NONE);
    atomic_init(&e->st.ejected_until_ms, 0);
    atomic_init(&e->st.consecutive_failures, 0);
    atomic_init(&e->st.inflight, 0);
    atomic_init(&e->st.ewma_us, 0);
    atomic_init(&e->st.last_check_ms, 0);
    atomic_init(&e->st.connect_failed_ms, 0);
    if (r->count >= r->nbuckets)
        reg_grow(r);
    size_t j = h & (r->nbuckets - 1);
    e->next = r->buckets[j];
    r->buckets[j] = e;
    r->count++;
    st = &e->st;

out:
    pthread_mutex_unlock(&r->mu);
    return st;
}

void lb_registry_put(struct lb_registry *r, struct lb_target_state *st)
{
    if (st == NULL)
        return;
    struct lb_reg_entry *e = GV_CONTAINER_OF(st, struct lb_reg_entry, st);
    pthread_mutex_lock(&r->mu);
    if (--e->holds == 0) {
        struct lb_reg_entry **pp = &r->buckets[e->hash & (r->nbuckets - 1)];
        while (*pp != e)
            pp = &(*pp)->next;
        *pp = e->next;
        r->count--;
        free(e);
    }
    pthread_mutex_unlock(&r->mu);
}
