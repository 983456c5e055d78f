/* access_log.c - what a finished request leaves behind: its latency in the
 * metrics and, when node.access_log is on, one JSON line on stdout (time,
 * node, client, host, method, url, user agent, status, route, consumer,
 * service, target, attempts, bytes, duration, upstream time, request id,
 * trace, span and parent span ids), gathered per worker and written in
 * batches. */
#include "gateway/pipeline.h"
#include "gateway/request.h"
#include "gateway/snapshot.h"
#include "common/util.h"

#include <time.h>

#include <arpa/inet.h>
#include <llhttp.h>
#include <stdio.h>
#include <string.h>

static void json_str(struct gv_buf *b, const char *s, size_t n)
{
    gv_buf_puts(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            gv_buf_printf(b, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            gv_buf_printf(b, "\\u%04x", ch);
        else
            gv_buf_append(b, s + i, 1);
    }
    gv_buf_puts(b, "\"");
}

static void peer_text(const struct gw_peer *p, char *out, size_t len)
{
    if (p == NULL ||
        inet_ntop(p->family == AF_INET6 ? AF_INET6 : AF_INET, p->addr, out, (socklen_t)len) == NULL)
        snprintf(out, len, "-");
}

/* "name":"value" of a request header, "" when absent. */
static void header_field(struct gv_buf *b, const struct gw_request *r, const char *key,
                         const char *header)
{
    size_t n = 0;
    const char *v = gw_request_header(r, header, &n);
    gv_buf_printf(b, ",\"%s\":", key);
    json_str(b, v ? v : "", v ? n : 0);
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Where the upstream part went: the target, attempts, and the time from
 * the first attempt to the response head (-1: no upstream answer). */
static void upstream_fields(struct gv_buf *b, const struct gw_request *r,
                            const struct gw_snapshot *s)
{
    const char *addr = (s && r->service >= 0 && r->target >= 0)
                           ? s->services[r->service].targets[r->target].address
                           : "";
    gv_buf_puts(b, ",\"target\":");
    json_str(b, addr, strlen(addr));
    double up_ms = r->up_first_us && r->up_head_us >= r->up_first_us
                       ? (double)(r->up_head_us - r->up_first_us) / 1000.0
                       : -1.0;
    gv_buf_printf(b, ",\"attempts\":%d,\"upstream_ms\":%.3f", r->ntried, up_ms);
}

void gw_access_log(struct gw_request *r, uint64_t dur_us)
{
    struct gw_worker *w = r->worker;
    const struct gw_snapshot *s = r->view ? r->view->snap : NULL;
    const char *route = (s && r->route >= 0) ? s->routes[r->route].name : "";
    const char *service = (s && r->service >= 0) ? s->services[r->service].name : "";
    int64_t up_us = r->up_first_us && r->up_head_us >= r->up_first_us
                        ? (int64_t)(r->up_head_us - r->up_first_us)
                        : -1;
    gw_metrics_observe(w->cfg.metrics, route, service, r->status, dur_us, up_us);
    gw_metrics_attempts(w->cfg.metrics, r->ntried);
    if (!w->cfg.access_log)
        return;
    struct gv_buf b;
    char peer[INET6_ADDRSTRLEN];
    size_t tlen;
    const char *target = gw_request_target(r, &tlen);
    peer_text(r->peer, peer, sizeof(peer));
    char when[GV_RFC3339_LEN];
    gv_buf_init(&b);
    gv_buf_printf(&b, "{\"time\":\"%s\",\"node\":", gv_rfc3339_ms(wall_ms(), when, sizeof(when)));
    json_str(&b, w->cfg.node_name, strlen(w->cfg.node_name));
    gv_buf_printf(&b, ",\"client\":\"%s\"", peer);
    header_field(&b, r, "host", "host");
    gv_buf_printf(&b,
                  ",\"method\":\"%s\",\"url\":", llhttp_method_name((llhttp_method_t)r->method));
    json_str(&b, target, tlen);
    header_field(&b, r, "user_agent", "user-agent");
    gv_buf_printf(&b, ",\"status\":%d,\"route\":", r->status);
    json_str(&b, route, strlen(route));
    if (r->consumer != NULL) {
        gv_buf_puts(&b, ",\"consumer\":");
        json_str(&b, r->consumer, strlen(r->consumer));
    }
    gv_buf_puts(&b, ",\"service\":");
    json_str(&b, service, strlen(service));
    upstream_fields(&b, r, s);
    gv_buf_printf(&b, ",\"bytes_in\":%llu,\"bytes_out\":%llu,\"duration_ms\":%.3f,\"request_id\":",
                  (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out,
                  (double)dur_us / 1000.0);
    json_str(&b, r->request_id, strlen(r->request_id));
    gv_buf_printf(&b, ",\"trace_id\":\"%s\",\"span_id\":\"%s\",\"parent_span_id\":\"%s\"}\n",
                  r->trace.trace_id, r->trace.span_id, r->trace.parent_id);
    if (b.data != NULL)
        gw_worker_log(w, b.data, b.len);
    gv_buf_free(&b);
}
