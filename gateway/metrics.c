/* metrics.c - lock-free per-worker request metrics and their Prometheus text. */
#include "gateway/metrics.h"
#include "gateway/plugins/chain.h"
#include "common/err.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

const double gw_hist_bounds[GW_HIST_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                0.05,   0.1,   0.25,   0.5,   1.0,  5.0};

int gw_metrics_new(struct gw_metrics **out)
{
    struct gw_metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return GV_ENOMEM;
    *out = m;
    return 0;
}

void gw_metrics_free(struct gw_metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < GW_METRICS_SLOTS; i++) {
        struct gw_metric_entry *e = atomic_load(&m->slots[i]);
        if (e != NULL) {
            free(e->route);
            free(e->service);
            free(e);
        }
    }
    free(m);
}

static uint64_t key_hash(const char *route, const char *service, int code)
{
    uint64_t h = gv_hash64(route, strlen(route), (uint64_t)code);
    return gv_hash64(service, strlen(service), h);
}

void gw_metrics_observe(struct gw_metrics *m, const char *route, const char *service, int code,
                        uint64_t duration_us)
{
    uint64_t h = key_hash(route, service, code);
    for (size_t probe = 0; probe < GW_METRICS_SLOTS; probe++) {
        size_t i = (h + probe) & (GW_METRICS_SLOTS - 1);
        struct gw_metric_entry *e = atomic_load_explicit(&m->slots[i], memory_order_relaxed);
        if (e == NULL) {
            e = calloc(1, sizeof(*e));
            if (e == NULL)
                break;
            e->hash = h;
            e->code = code;
            e->route = strdup(route);
            e->service = strdup(service);
            if (e->route == NULL || e->service == NULL) {
                free(e->route);
                free(e->service);
                free(e);
                break;
            }
            atomic_store_explicit(&e->count, 1, memory_order_relaxed);
            atomic_store_explicit(&m->slots[i], e, memory_order_release);
            goto histogram;
        }
        if (e->hash == h && e->code == code && strcmp(e->route, route) == 0 &&
            strcmp(e->service, service) == 0) {
            atomic_fetch_add_explicit(&e->count, 1, memory_order_relaxed);
            goto histogram;
        }
    }
    atomic_fetch_add_explicit(&m->dropped, 1, memory_order_relaxed);
histogram:;
    double secs = (double)duration_us / 1e6;
    size_t b = 0;
    while (b < GW_HIST_BUCKETS && secs > gw_hist_bounds[b])
        b++;
    atomic_fetch_add_explicit(&m->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->sum_us, duration_us, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
}

/* Escapes a label value per the Prometheus text format. */
static int put_label(struct gv_buf *out, const char *s)
{
    for (; *s; s++) {
        int rv;
        if (*s == '\\' || *s == '"')
            rv = gv_buf_printf(out, "\\%c", *s);
        else if (*s == '\n')
            rv = gv_buf_puts(out, "\\n");
        else
            rv = gv_buf_append(out, s, 1);
        if (rv != 0)
            return rv;
    }
    return 0;
}

static bool same_key(const struct gw_metric_entry *a, const struct gw_metric_entry *b)
{
    return a->hash == b->hash && a->code == b->code && strcmp(a->route, b->route) == 0 &&
           strcmp(a->service, b->service) == 0;
}

/* Sums the count of e's key over the workers from w on, into *total; false
 * when a worker before w has the key, so it was printed with that one. */
static bool sum_from_first(struct gw_metrics *const *ms, size_t n, size_t w,
                           const struct gw_metric_entry *e, uint64_t *total)
{
    *total = 0;
    for (size_t v = 0; v < n; v++) {
        for (size_t j = 0; j < GW_METRICS_SLOTS; j++) {
            struct gw_metric_entry *f =
                atomic_load_explicit(&ms[v]->slots[j], memory_order_acquire);
            if (f == NULL || !same_key(f, e))
                continue;
            if (v < w)
                return false;
            *total += atomic_load_explicit(&f->count, memory_order_relaxed);
            break;
        }
    }
    return true;
}

static int render_count(struct gv_buf *out, const struct gw_metric_entry *e, uint64_t total)
{
    int rv = gv_buf_puts(out, "grapevine_http_requests_total{route=\"");
    rv = rv ? rv : put_label(out, e->route);
    rv = rv ? rv : gv_buf_puts(out, "\",service=\"");
    rv = rv ? rv : put_label(out, e->service);
    rv = rv ? rv : gv_buf_printf(out, "\",code=\"%d\"} %llu\n", e->code, (unsigned long long)total);
    return rv;
}

/* The request counter, one line per route, service and code. Equal keys are
 * summed across workers: each worker's table is visited once and every
 * entry is merged into the first worker's entry with that key. */
static int render_requests(struct gw_metrics *const *ms, size_t n, struct gv_buf *out)
{
    int rv = gv_buf_puts(out, "# HELP grapevine_http_requests_total Proxied HTTP requests.\n"
                              "# TYPE grapevine_http_requests_total counter\n");
    for (size_t w = 0; w < n && rv == 0; w++) {
        for (size_t i = 0; i < GW_METRICS_SLOTS && rv == 0; i++) {
            struct gw_metric_entry *e =
                atomic_load_explicit(&ms[w]->slots[i], memory_order_acquire);
            uint64_t total;
            if (e != NULL && sum_from_first(ms, n, w, e, &total))
                rv = render_count(out, e, total);
        }
    }
    return rv;
}

/* The duration histogram, its buckets cumulative as Prometheus wants them,
 * summed over the workers. */
static int render_durations(struct gw_metrics *const *ms, size_t n, struct gv_buf *out)
{
    int rv = gv_buf_puts(out, "# HELP grapevine_http_request_duration_seconds Time from request "
                              "start to the last response byte.\n"
                              "# TYPE grapevine_http_request_duration_seconds histogram\n");
    uint64_t cum = 0, sum_us = 0, count = 0;
    for (size_t b = 0; b <= GW_HIST_BUCKETS && rv == 0; b++) {
        for (size_t w = 0; w < n; w++)
            cum += atomic_load_explicit(&ms[w]->bucket[b], memory_order_relaxed);
        if (b < GW_HIST_BUCKETS)
            rv = gv_buf_printf(out,
                               "grapevine_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                               gw_hist_bounds[b], (unsigned long long)cum);
        else
            rv = gv_buf_printf(out,
                               "grapevine_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                               (unsigned long long)cum);
    }
    for (size_t w = 0; w < n; w++) {
        sum_us += atomic_load_explicit(&ms[w]->sum_us, memory_order_relaxed);
        count += atomic_load_explicit(&ms[w]->count, memory_order_relaxed);
    }
    return rv ? rv
              : gv_buf_printf(out,
                              "grapevine_http_request_duration_seconds_sum %.6f\n"
                              "grapevine_http_request_duration_seconds_count %llu\n",
                              (double)sum_us / 1e6, (unsigned long long)count);
}

int gw_metrics_render(struct gw_metrics *const *ms, size_t n, struct gv_buf *out)
{
    int rv = render_requests(ms, n, out);
    rv = rv ? rv : render_durations(ms, n, out);
    return rv ? rv : gw_plugins_metrics(out);
}

void gw_metrics_totals(struct gw_metrics *const *ms, size_t n, struct gw_metrics_totals *t)
{
    memset(t, 0, sizeof(*t));
    for (size_t w = 0; w < n; w++) {
        for (size_t i = 0; i < GW_METRICS_SLOTS; i++) {
            struct gw_metric_entry *e =
                atomic_load_explicit(&ms[w]->slots[i], memory_order_acquire);
            if (e != NULL && e->code >= 500)
                t->errors += atomic_load_explicit(&e->count, memory_order_relaxed);
        }
        for (size_t b = 0; b <= GW_HIST_BUCKETS; b++)
            t->bucket[b] += atomic_load_explicit(&ms[w]->bucket[b], memory_order_relaxed);
        t->sum_us += atomic_load_explicit(&ms[w]->sum_us, memory_order_relaxed);
        t->requests += atomic_load_explicit(&ms[w]->count, memory_order_relaxed);
    }
}
