/* metrics.c - lock-free per-worker request metrics and their Prometheus text. */
#include "gateway/metrics.h"
#include "gateway/plugins/chain.h"
#include "common/err.h"
#include "common/util.h"

#include <stdio.h>
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

static size_t bucket_of(uint64_t us)
{
    double secs = (double)us / 1e6;
    size_t b = 0;
    while (b < GW_HIST_BUCKETS && secs > gw_hist_bounds[b])
        b++;
    return b;
}

void gw_metrics_observe(struct gw_metrics *m, const char *route, const char *service, int code,
                        uint64_t duration_us, int64_t upstream_us)
{
    uint64_t h = key_hash(route, service, code);
    struct gw_metric_entry *e = NULL;
    for (size_t probe = 0; probe < GW_METRICS_SLOTS; probe++) {
        size_t i = (h + probe) & (GW_METRICS_SLOTS - 1);
        e = atomic_load_explicit(&m->slots[i], memory_order_relaxed);
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
            atomic_store_explicit(&m->slots[i], e, memory_order_release);
            goto found;
        }
        if (e->hash == h && e->code == code && strcmp(e->route, route) == 0 &&
            strcmp(e->service, service) == 0)
            goto found;
    }
    atomic_fetch_add_explicit(&m->dropped, 1, memory_order_relaxed);
    e = NULL;
found:;
    size_t b = bucket_of(duration_us);
    if (e != NULL) {
        atomic_fetch_add_explicit(&e->count, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&e->bucket[b], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&e->sum_us, duration_us, memory_order_relaxed);
    }
    if (e != NULL && upstream_us >= 0) {
        atomic_fetch_add_explicit(&e->up_bucket[bucket_of((uint64_t)upstream_us)], 1,
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&e->up_sum_us, (uint64_t)upstream_us, memory_order_relaxed);
    }
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

#define DURATION "grapevine_http_request_duration_seconds"
#define UPSTREAM "grapevine_upstream_response_seconds"

/* One histogram series being summed for rendering: a (route, service,
 * status class) over every worker's entries. */
struct hist_group {
    const char *route, *service; /* NULL: a free slot */
    int cls;                     /* 1..5 ("1xx".."5xx"), 0: other */
    uint64_t bucket[GW_HIST_BUCKETS + 1], sum_us;
};

struct hist_groups {
    struct hist_group *g;
    size_t cap; /* a power of two */
};

static int code_class(int code)
{
    return code >= 100 && code < 600 ? code / 100 : 0;
}

/* The group of (route, service, cls), added when new; NULL when full. */
static struct hist_group *group_of(struct hist_groups *gs, const char *route, const char *service,
                                   int cls)
{
    uint64_t h = gv_hash64(service, strlen(service), key_hash(route, "", cls));
    for (size_t probe = 0; probe < gs->cap; probe++) {
        struct hist_group *g = &gs->g[(h + probe) & (gs->cap - 1)];
        if (g->route == NULL) {
            g->route = route;
            g->service = service;
            g->cls = cls;
            return g;
        }
        if (g->cls == cls && strcmp(g->route, route) == 0 && strcmp(g->service, service) == 0)
            return g;
    }
    return NULL;
}

/* Adds e's histogram to g and to acc (buckets, then the sum). */
static void group_add(struct hist_group *g, struct gw_metric_entry *e, uint64_t *acc)
{
    for (size_t b = 0; b <= GW_HIST_BUCKETS; b++) {
        uint64_t v = atomic_load_explicit(&e->bucket[b], memory_order_relaxed);
        g->bucket[b] += v;
        acc[b] += v;
    }
    uint64_t sum = atomic_load_explicit(&e->sum_us, memory_order_relaxed);
    g->sum_us += sum;
    acc[GW_HIST_BUCKETS + 1] += sum;
}

/* Entries in use over all workers. */
static size_t count_entries(struct gw_metrics *const *ms, size_t n)
{
    size_t k = 0;
    for (size_t w = 0; w < n; w++)
        for (size_t i = 0; i < GW_METRICS_SLOTS; i++)
            k += atomic_load_explicit(&ms[w]->slots[i], memory_order_acquire) != NULL;
    return k;
}

/* One histogram series of metric name: labels route, service and
 * code_class, or (route NULL) service alone. */
static int render_group(struct gv_buf *out, const char *name, const struct hist_group *g)
{
    static const char *const cls[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    struct gv_buf labels;
    uint64_t cum = 0;
    gv_buf_init(&labels);
    int rv = 0;
    if (g->route != NULL) {
        rv = gv_buf_puts(&labels, "route=\"");
        rv = rv ? rv : put_label(&labels, g->route);
        rv = rv ? rv : gv_buf_puts(&labels, "\",");
    }
    rv = rv ? rv : gv_buf_puts(&labels, "service=\"");
    rv = rv ? rv : put_label(&labels, g->service);
    rv = rv ? rv : gv_buf_puts(&labels, "\"");
    if (g->route != NULL)
        rv = rv ? rv : gv_buf_printf(&labels, ",code_class=\"%s\"", cls[g->cls]);
    for (size_t b = 0; b <= GW_HIST_BUCKETS && rv == 0; b++) {
        char le[32];
        cum += g->bucket[b];
        if (b < GW_HIST_BUCKETS)
            snprintf(le, sizeof(le), "%g", gw_hist_bounds[b]);
        else
            snprintf(le, sizeof(le), "+Inf");
        rv = gv_buf_printf(out, "%s_bucket{%s,le=\"%s\"} %llu\n", name, labels.data, le,
                           (unsigned long long)cum);
    }
    rv = rv ? rv
            : gv_buf_printf(out, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, labels.data,
                            (double)g->sum_us / 1e6, name, labels.data, (unsigned long long)cum);
    gv_buf_free(&labels);
    return rv;
}

/* Adds to other what worker m observed beyond the entries' histograms
 * (in_entries: their buckets, then their sum). */
static void other_rest(struct gw_metrics *m, const uint64_t *in_entries, struct hist_group *other)
{
    for (size_t b = 0; b <= GW_HIST_BUCKETS; b++) {
        uint64_t all = atomic_load_explicit(&m->bucket[b], memory_order_relaxed);
        other->bucket[b] += all > in_entries[b] ? all - in_entries[b] : 0;
    }
    uint64_t sum = atomic_load_explicit(&m->sum_us, memory_order_relaxed);
    other->sum_us +=
        sum > in_entries[GW_HIST_BUCKETS + 1] ? sum - in_entries[GW_HIST_BUCKETS + 1] : 0;
}

/* The duration histograms by route, service and status class, their
 * buckets cumulative as Prometheus wants them, summed over the workers.
 * Observations that found no entry (table full) go under "other". */
static int render_durations(struct gw_metrics *const *ms, size_t n, struct gv_buf *out)
{
    struct hist_groups gs = {.cap = 1};
    size_t entries = count_entries(ms, n); /* more may come: group_of then says full */
    while (gs.cap < 2 * entries + 16)
        gs.cap *= 2;
    gs.g = calloc(gs.cap, sizeof(*gs.g));
    if (gs.g == NULL)
        return GV_ENOMEM;
    int rv = gv_buf_puts(out, "# HELP grapevine_http_request_duration_seconds Time from request "
                              "start to the last response byte, by route, service and status "
                              "class.\n"
                              "# TYPE grapevine_http_request_duration_seconds histogram\n");
    struct hist_group other = {.route = "", .service = "", .cls = 0};
    bool any_other = false;
    for (size_t w = 0; w < n; w++) {
        uint64_t in_entries[GW_HIST_BUCKETS + 2] = {0}; /* buckets, then sum_us */
        for (size_t i = 0; i < GW_METRICS_SLOTS; i++) {
            struct gw_metric_entry *e =
                atomic_load_explicit(&ms[w]->slots[i], memory_order_acquire);
            struct hist_group *g =
                e ? group_of(&gs, e->route, e->service, code_class(e->code)) : NULL;
            if (g != NULL)
                group_add(g, e, in_entries);
        }
        /* what the worker counted beyond its entries (a full table) */
        if (atomic_load_explicit(&ms[w]->dropped, memory_order_relaxed) > 0) {
            any_other = true;
            other_rest(ms[w], in_entries, &other);
        }
    }
    for (size_t i = 0; i < gs.cap && rv == 0; i++)
        if (gs.g[i].route != NULL)
            rv = render_group(out, DURATION, &gs.g[i]);
    if (rv == 0 && any_other)
        rv = render_group(out, DURATION, &other);
    free(gs.g);
    return rv;
}

/* The upstream response time by service: every worker's entries of the
 * service summed (routes and codes together). */
static int render_upstream(struct gw_metrics *const *ms, size_t n, struct gv_buf *out)
{
    struct hist_groups gs = {.cap = 1};
    size_t entries = count_entries(ms, n);
    while (gs.cap < 2 * entries + 16)
        gs.cap *= 2;
    if ((gs.g = calloc(gs.cap, sizeof(*gs.g))) == NULL)
        return GV_ENOMEM;
    int rv = gv_buf_puts(out, "# HELP " UPSTREAM " Time from a request's first upstream attempt "
                              "to the upstream's response head, by service.\n# TYPE " UPSTREAM
                              " histogram\n");
    for (size_t w = 0; w < n; w++) {
        for (size_t i = 0; i < GW_METRICS_SLOTS; i++) {
            struct gw_metric_entry *e =
                atomic_load_explicit(&ms[w]->slots[i], memory_order_acquire);
            struct hist_group *g = e && e->service[0] ? group_of(&gs, "", e->service, 0) : NULL;
            for (size_t b = 0; g != NULL && b <= GW_HIST_BUCKETS; b++)
                g->bucket[b] += atomic_load_explicit(&e->up_bucket[b], memory_order_relaxed);
            if (g != NULL)
                g->sum_us += atomic_load_explicit(&e->up_sum_us, memory_order_relaxed);
        }
    }
    for (size_t i = 0; i < gs.cap && rv == 0; i++) {
        struct hist_group g = gs.g[i];
        g.route = NULL; /* labelled by service alone */
        if (gs.g[i].route != NULL)
            rv = render_group(out, UPSTREAM, &g);
    }
    free(gs.g);
    return rv;
}

void gw_metrics_attempts(struct gw_metrics *m, int n)
{
    if (n > 1)
        atomic_fetch_add_explicit(&m->retries, (uint64_t)(n - 1), memory_order_relaxed);
}

static int render_retries(struct gw_metrics *const *ms, size_t n, struct gv_buf *out)
{
    uint64_t total = 0;
    for (size_t w = 0; w < n; w++)
        total += atomic_load_explicit(&ms[w]->retries, memory_order_relaxed);
    int64_t conns = 0;
    for (size_t w = 0; w < n; w++)
        conns += atomic_load_explicit(&ms[w]->conns, memory_order_relaxed);
    return gv_buf_printf(out,
                         "# HELP grapevine_upstream_retries_total Upstream attempts after a "
                         "request's first (another target after a failure).\n"
                         "# TYPE grapevine_upstream_retries_total counter\n"
                         "grapevine_upstream_retries_total %llu\n"
                         "# HELP grapevine_http_connections Client connections open.\n"
                         "# TYPE grapevine_http_connections gauge\n"
                         "grapevine_http_connections %lld\n",
                         (unsigned long long)total, (long long)(conns > 0 ? conns : 0));
}

int gw_metrics_render(struct gw_metrics *const *ms, size_t n, struct gv_buf *out)
{
    int rv = render_requests(ms, n, out);
    rv = rv ? rv : render_durations(ms, n, out);
    rv = rv ? rv : render_upstream(ms, n, out);
    rv = rv ? rv : render_retries(ms, n, out);
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
