/* metrics.h - per-worker request counters and latency histogram.
 *
 * Threads: each gw_metrics belongs to one worker, which is the only writer;
 * the admin thread reads all of them when rendering /metrics. Entries are
 * published with release stores and never removed or moved, counters are
 * relaxed atomics: no lock on the request path.
 */
#ifndef GV_GATEWAY_METRICS_H
#define GV_GATEWAY_METRICS_H

#include "common/buf.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define GW_METRICS_SLOTS 1024 /* distinct (route, service, code) per worker */
#define GW_HIST_BUCKETS  12

struct gw_metric_entry {
    uint64_t hash;
    int code;
    char *route;
    char *service;
    _Atomic uint64_t count;
    _Atomic uint64_t bucket[GW_HIST_BUCKETS + 1]; /* its latency histogram */
    _Atomic uint64_t sum_us;
    /* upstream response time: first attempt to the response head */
    _Atomic uint64_t up_bucket[GW_HIST_BUCKETS + 1];
    _Atomic uint64_t up_sum_us;
};

struct gw_metrics {
    _Atomic(struct gw_metric_entry *) slots[GW_METRICS_SLOTS];
    _Atomic uint64_t dropped;                     /* observations that found the table full */
    _Atomic uint64_t bucket[GW_HIST_BUCKETS + 1]; /* last = +Inf */
    _Atomic uint64_t sum_us;
    _Atomic uint64_t count;
    _Atomic uint64_t retries; /* upstream attempts after a request's first */
    _Atomic int64_t conns;    /* client connections open (the worker's nconns, readable) */
};

/* Upper bounds of the histogram buckets, in seconds. */
extern const double gw_hist_bounds[GW_HIST_BUCKETS];

int gw_metrics_new(struct gw_metrics **out);
/* Only once no thread uses it any more. */
void gw_metrics_free(struct gw_metrics *m);
/* Worker thread only. route/service may be "" (no route, no service);
 * upstream_us < 0 when no upstream answered. */
void gw_metrics_observe(struct gw_metrics *m, const char *route, const char *service, int code,
                        uint64_t duration_us, int64_t upstream_us);
/* Worker thread only: a request that took n upstream attempts. */
void gw_metrics_attempts(struct gw_metrics *m, int n);
/* Every worker's counters summed, for the dashboard: requests, those
 * answered 5xx, and the latency histogram (bucket[GW_HIST_BUCKETS] = +Inf). */
struct gw_metrics_totals {
    uint64_t requests, errors, sum_us;
    uint64_t bucket[GW_HIST_BUCKETS + 1];
};
void gw_metrics_totals(struct gw_metrics *const *ms, size_t n, struct gw_metrics_totals *t);
/* Appends the Prometheus text of grapevine_http_requests_total{route,
 * service,code} and grapevine_http_request_duration_seconds{route,service,
 * code_class} ("2xx"...) and grapevine_upstream_response_seconds{service}
 * summed over n workers. Observations that found the
 * table full are counted in the histogram with route="",service="",
 * code_class="other". */
int gw_metrics_render(struct gw_metrics *const *ms, size_t n, struct gv_buf *out);

#endif
