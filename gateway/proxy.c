/* proxy.c - the upstream side of the pipeline: picking a target, the per-worker
 * keep-alive pool, connecting with timeouts, rewriting and streaming the request,
 * relaying the response with backpressure, retries and WebSocket tunnels. */
#include "balancer/sticky.h"
#include "gateway/h2.h"
#include "gateway/h2_upstream.h"
#include "gateway/http.h"
#include "gateway/pipeline.h"
#include "gateway/plugins/chain.h"
#include "gateway/tls.h"
#include "gateway/tls_upstream.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct up_write {
    uv_write_t req;
    struct gw_upstream *up;
    size_t len;
    char data[];
};

static llhttp_settings_t resp_settings;
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;

static void attempt(struct gw_request *r);
static void up_close(struct gw_upstream *up);
static void attempt_failed(struct gw_request *r, int status, const char *why, bool blame);

/* The upstream is not taking the request body fast enough: the client's
 * side stops (HTTP/1.1 stops reading; HTTP/2 stops returning window). */
void gw_proxy_client_pause(struct gw_request *r)
{
    struct gw_conn *c = r->conn;
    if (r->stream != NULL) {
        gw_h2_hold_body(r);
    } else if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

void gw_proxy_client_resume(struct gw_request *r)
{
    if (r->stream != NULL)
        gw_h2_resume_body(r);
    else
        gw_conn_resume_body(r->conn);
}

/* ---- helpers ------------------------------------------------------------ */

static const struct lb_service_spec *req_service(const struct gw_request *r)
{
    return &r->view->snap->services[r->service];
}

static bool idempotent(uint8_t method)
{
    switch (method) {
    case HTTP_GET:
    case HTTP_HEAD:
    case HTTP_OPTIONS:
    case HTTP_PUT:
    case HTTP_DELETE:
    case HTTP_TRACE:
        return true;
    default:
        return false;
    }
}

/* True when snap has a target at address reached over tls_ctx (the pool's
 * key). */
static bool snap_wants(const struct gw_snapshot *snap, const char *address,
                       const struct gw_up_tls *tls_ctx)
{
    for (size_t s = 0; s < snap->nservices; s++) {
        const struct lb_service_spec *svc = &snap->services[s];
        if ((snap->up_tls != NULL ? snap->up_tls[s] : NULL) != tls_ctx)
            continue;
        for (size_t t = 0; t < svc->ntargets; t++) {
            if (strcmp(svc->targets[t].address, address) == 0)
                return true;
        }
    }
    return false;
}

void gw_proxy_report(struct gw_request *r, int service, int target, bool ok, uint64_t latency_us)
{
    struct lb_target_state *st = r->view->snap->states[service][target];
    const struct lb_service_spec *svc = &r->view->snap->services[service];
    if (lb_target_report(st, &svc->passive, ok, latency_us, gv_now_ms()))
        gv_warn("service %s target %s ejected for %llu ms after %d failed requests in a row "
                "(passive health)",
                svc->name, svc->targets[target].address,
                (unsigned long long)svc->passive.eject_for_ms, svc->passive.failures);
}

/* Releases the attempt's in-flight count and records its outcome. */
static void up_account(struct gw_upstream *up, bool ok)
{
    struct gw_request *r = up->req;
    if (!up->counted || r == NULL)
        return;
    up->counted = false;
    struct lb_target_state *st = r->view->snap->states[up->service][up->target];
    atomic_fetch_sub_explicit(&st->inflight, 1, memory_order_relaxed);
    gw_proxy_report(r, up->service, up->target, ok, gv_now_us() - up->attempt_us);
}

/* ---- writes upstream ----------------------------------------------------- */

static void on_up_write(uv_write_t *req, int status)
{
    struct up_write *uw = (struct up_write *)req;
    struct gw_upstream *up = uw->up;
    up->out_bytes -= uw->len;
    free(uw);
    if (up->state == GW_UP_CLOSING || up->req == NULL)
        return;
    if (status < 0) {
        /* The read side reports the failure (EOF/reset) with its context. */
        return;
    }
    if (up->out_bytes < GW_LOW_WATER)
        gw_proxy_client_resume(up->req);
}

/* Writes bytes as they go on the wire (ciphertext on a TLS connection). */
static int up_write_raw(struct gw_upstream *up, const void *data, size_t len)
{
    if (len == 0 || up->state == GW_UP_CLOSING)
        return 0;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    if (up->out_bytes == 0) {
        int n = uv_try_write((uv_stream_t *)&up->tcp, &b, 1);
        if (n > 0) {
            if ((size_t)n == len)
                return 0;
            data = (const char *)data + n;
            len -= (size_t)n;
        } else if (n != UV_EAGAIN) {
            return n;
        }
    }
    struct up_write *uw = malloc(sizeof(*uw) + len);
    if (uw == NULL)
        return GV_ENOMEM;
    uw->up = up;
    uw->len = len;
    memcpy(uw->data, data, len);
    b = uv_buf_init(uw->data, (unsigned)len);
    int rv = uv_write(&uw->req, (uv_stream_t *)&up->tcp, &b, 1, on_up_write);
    if (rv != 0) {
        free(uw);
        return rv;
    }
    up->out_bytes += len;
    if (up->out_bytes > GW_HIGH_WATER && up->req != NULL)
        gw_proxy_client_pause(up->req);
    return 0;
}

/* Sends what the TLS engine has to send (records, alerts). */
static int up_tls_flush(struct gw_upstream *up)
{
    char buf[16 * 1024];
    size_t n;
    int rv = 0;
    while (rv == 0 && (n = gw_tls_take_output(up->tls, buf, sizeof buf)) > 0)
        rv = up_write_raw(up, buf, n);
    return rv;
}

static int up_write(struct gw_upstream *up, const void *data, size_t len)
{
    if (up->tls == NULL)
        return up_write_raw(up, data, len);
    if (len == 0 || up->state == GW_UP_CLOSING)
        return 0;
    if (gw_tls_write(up->tls, data, len) != 0)
        return UV_EPROTO;
    return up_tls_flush(up);
}

/* Sends body bytes with the framing the upstream request announced. */
static int send_body(struct gw_request *r, const char *data, size_t len)
{
    struct gw_upstream *up = r->up;
    int rv = 0;
    if (len == 0)
        return 0;
    if (r->body_chunked) {
        char line[32];
        int n = snprintf(line, sizeof(line), "%zx\r\n", len);
        rv = up_write(up, line, (size_t)n);
        rv = rv ? rv : up_write(up, data, len);
        rv = rv ? rv : up_write(up, "\r\n", 2);
    } else {
        rv = up_write(up, data, len);
    }
    r->body_sent += len;
    return rv;
}

/* ---- request head ------------------------------------------------------- */

/* True when some Connection header of the message (headers hs over bytes
 * base) lists name: such a header is hop-by-hop too (RFC 9110 7.6.1). */
static bool listed_in_connection(const struct gw_headers *hs, const char *base, const char *name,
                                 size_t len)
{
    char tok[64];
    if (len >= sizeof(tok))
        return false;
    memcpy(tok, name, len);
    tok[len] = '\0';
    for (uint32_t i = 0; i < hs->n; i++) {
        const struct gw_header *h = &hs->v[i];
        if (gw_name_eq(base + h->name_off, h->name_len, "connection") &&
            gw_token_list_has(base + h->value_off, h->value_len, tok))
            return true;
    }
    return false;
}

/* Whether the message has a Connection header at all: checked once, so the
 * common message pays nothing per header for the rule above. */
static bool has_connection_header(const struct gw_headers *hs, const char *base)
{
    for (uint32_t i = 0; i < hs->n; i++)
        if (gw_name_eq(base + hs->v[i].name_off, hs->v[i].name_len, "connection"))
            return true;
    return false;
}

/* The query ("?a=1&b=2", qlen bytes) without the parameters a plugin took
 * out (an auth plugin's credential, r->hide_query); every other byte as the
 * client sent it. */
static int append_query(const struct gw_request *r, struct gv_buf *b, const char *q, size_t qlen)
{
    const char *end = q + qlen;
    if (r->nhide_query == 0)
        return gv_buf_append(b, q, qlen);
    bool first = true;
    int rv = 0;
    for (const char *p = q + 1; p <= end && rv == 0;) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *pe = amp ? amp : end;
        bool drop = false;
        for (uint8_t i = 0; i < r->nhide_query && !drop; i++) {
            size_t nl = strlen(r->hide_query[i]);
            drop = (size_t)(pe - p) >= nl && memcmp(p, r->hide_query[i], nl) == 0 &&
                   (p + nl == pe || p[nl] == '=');
        }
        if (!drop && pe > p) {
            rv = gv_buf_append(b, first ? "?" : "&", 1);
            rv = rv ? rv : gv_buf_append(b, p, (size_t)(pe - p));
            first = false;
        }
        p = pe + 1;
    }
    return rv;
}

/* Adds "name: a<sep>b" (X-Forwarded-For and Via extend the client's value). */
static int hdr_add_joined(struct gw_hdr_out *out, const char *name, const char *a, size_t al,
                          const char *sep, const char *b)
{
    struct gv_buf v;
    gv_buf_init(&v);
    int rv = gv_buf_put2(&v, a, al, sep, strlen(sep));
    rv = rv ? rv : gv_buf_puts(&v, b);
    rv = rv ? rv : gw_hdr_add(out, name, strlen(name), v.data, v.len);
    gv_buf_free(&v);
    return rv;
}

static int hdr_add_str(struct gw_hdr_out *out, const char *name, const char *value)
{
    return gw_hdr_add(out, name, strlen(name), value, strlen(value));
}

/* Forwarding headers the client sent, which the gateway extends. */
struct fwd_seen {
    bool xff, via, xfh;
};

/* True when a client header does not go upstream as it is: hop-by-hop ones,
 * those the framing or the gateway decide, X-Consumer (the gateway's to
 * say) and those plugins drop (a credential, a header they replace). */
static bool up_skips(const struct gw_request *r, bool conn_listed, const char *name, size_t nl)
{
    return gw_is_hop_by_hop(name, nl) || gw_name_eq(name, nl, "content-length") ||
           gw_name_eq(name, nl, "expect") || gw_name_eq(name, nl, "x-forwarded-proto") ||
           gw_name_eq(name, nl, "http2-settings") ||
           (r->authority_len > 0 && gw_name_eq(name, nl, "host")) ||
           (conn_listed && listed_in_connection(&r->hdrs, r->head.data, name, nl)) ||
           gw_name_eq(name, nl, "x-consumer") || gw_name_eq(name, nl, "traceparent") ||
           (!r->trace.continued && gw_name_eq(name, nl, "tracestate")) ||
           gw_chain_upstream_drop(r, name, nl);
}

/* The client's headers as they go upstream. */
static int up_client_headers(struct gw_request *r, const char *peer, struct gw_hdr_out *out,
                             struct fwd_seen *seen)
{
    const char *h = r->head.data, *node = r->worker->cfg.node_name;
    bool conn_listed = has_connection_header(&r->hdrs, h);
    int rv = 0;
    for (uint32_t i = 0; i < r->hdrs.n && rv == 0; i++) {
        const struct gw_header *x = &r->hdrs.v[i];
        const char *name = h + x->name_off, *val = h + x->value_off;
        size_t nl = x->name_len, vl = x->value_len;
        if (up_skips(r, conn_listed, name, nl))
            continue;
        if (gw_name_eq(name, nl, "x-forwarded-for")) {
            seen->xff = true;
            rv = hdr_add_joined(out, "X-Forwarded-For", val, vl, ", ", peer);
        } else if (gw_name_eq(name, nl, "via")) {
            seen->via = true;
            rv = hdr_add_joined(out, "Via", val, vl, ", 1.1 ", node);
        } else {
            seen->xfh |= gw_name_eq(name, nl, "x-forwarded-host");
            rv = gw_hdr_add(out, name, nl, val, vl);
        }
    }
    return rv;
}

/* The headers the gateway adds upstream: forwarding, the plugins', the
 * consumer. */
static int up_gateway_headers(struct gw_request *r, const char *peer, const struct fwd_seen *seen,
                              struct gw_hdr_out *out)
{
    size_t hostlen = r->authority_len;
    const char *host = r->head.data + r->authority_off;
    int rv = 0;
    if (hostlen > 0) /* an absolute-form target names the host the upstream sees */
        rv = gw_hdr_add(out, "Host", 4, host, hostlen);
    else
        host = gw_request_header(r, "host", &hostlen);
    if (!seen->xff)
        rv = rv ? rv : hdr_add_str(out, "X-Forwarded-For", peer);
    if (!seen->via)
        rv = rv ? rv : hdr_add_joined(out, "Via", "1.1", 3, " ", r->worker->cfg.node_name);
    rv = rv ? rv : hdr_add_str(out, "X-Forwarded-Proto", r->tls ? "https" : "http");
    if (!seen->xfh && host != NULL)
        rv = rv ? rv : gw_hdr_add(out, "X-Forwarded-Host", 16, host, hostlen);
    rv = rv ? rv : gw_chain_upstream_add(r, out);
    if (r->consumer != NULL)
        rv = rv ? rv : hdr_add_str(out, "X-Consumer", r->consumer);
    char tp[GW_TRACEPARENT_LEN + 1];
    gw_trace_header(&r->trace, tp);
    return rv ? rv : gw_hdr_add(out, "traceparent", 11, tp, GW_TRACEPARENT_LEN);
}

/* The target sent upstream: the normalised path (or the client's spelling,
 * when the route says forward_path: original) with the route's prefix
 * stripped, then the query without the parameters plugins took out. */
static int up_target(struct gw_request *r, struct gv_buf *b)
{
    size_t tlen, plen;
    const char *target = gw_request_target(r, &tlen);
    const char *q = memchr(target, '?', tlen);
    bool original = r->view->snap->routes[r->route].forward_path == GW_FORWARD_ORIGINAL;
    const char *path = original ? gw_request_raw_path(r, &plen) : gw_request_path(r, &plen);
    int rv = 0;
    if (r->strip_len > 0 && r->strip_len <= plen && (!original || !r->path_norm)) {
        path += r->strip_len;
        plen -= r->strip_len;
    }
    if (plen == 0 || path[0] != '/')
        rv = rv ? rv : gv_buf_puts(b, "/");
    rv = rv ? rv : gv_buf_append(b, path, plen);
    if (q != NULL)
        rv = rv ? rv : append_query(r, b, q, (size_t)(target + tlen - q));
    return rv;
}

/* "METHOD TARGET HTTP/1.1". */
static int up_request_line(struct gw_request *r, struct gv_buf *b)
{
    const char *mname = llhttp_method_name((llhttp_method_t)r->method);
    int rv = gv_buf_put2(b, mname, strlen(mname), " ", 1);
    rv = rv ? rv : up_target(r, b);
    return rv ? rv : gv_buf_puts(b, " HTTP/1.1\r\n");
}

/* Upgrade and body framing, as HTTP/1.1 says them. */
static int up_framing(struct gw_request *r, struct gv_buf *b)
{
    int rv = 0;
    if (r->upgrade) {
        size_t ul;
        const char *u = gw_request_header(r, "upgrade", &ul);
        if (u != NULL)
            rv = gv_buf_printf(b, "Upgrade: %.*s\r\nConnection: upgrade\r\n", (int)ul, u);
    }
    if (r->body_chunked)
        rv = rv ? rv : gv_buf_puts(b, "Transfer-Encoding: chunked\r\n");
    else if (r->has_length) {
        rv = rv ? rv : gv_buf_append(b, "Content-Length: ", 16);
        rv = rv ? rv : gv_buf_put_u64(b, (unsigned long long)r->content_length);
        rv = rv ? rv : gv_buf_append(b, "\r\n", 2);
    }
    return rv ? rv : gv_buf_puts(b, "\r\n");
}

static void peer_text(const struct gw_request *r, char *peer, size_t n)
{
    if (inet_ntop(r->peer->family == AF_INET6 ? AF_INET6 : AF_INET, r->peer->addr, peer,
                  (socklen_t)n) == NULL)
        snprintf(peer, n, "unknown");
}

int gw_proxy_up_h2_head(struct gw_request *r, struct gw_hdr_out *out, struct gv_buf *target)
{
    struct fwd_seen seen = {0};
    char peer[INET6_ADDRSTRLEN];
    peer_text(r, peer, sizeof peer);
    int rv = up_target(r, target);
    rv = rv ? rv : up_client_headers(r, peer, out, &seen);
    return rv ? rv : up_gateway_headers(r, peer, &seen, out);
}

static int build_up_head(struct gw_request *r)
{
    struct gv_buf *b = &r->up_head;
    struct gw_hdr_out out;
    struct fwd_seen seen = {0};
    char peer[INET6_ADDRSTRLEN];
    if (inet_ntop(r->peer->family == AF_INET6 ? AF_INET6 : AF_INET, r->peer->addr, peer,
                  sizeof(peer)) == NULL)
        strcpy(peer, "unknown");
    gv_buf_reset(b);
    gw_hdr_out_h1(&out, b);
    int rv = up_request_line(r, b);
    rv = rv ? rv : up_client_headers(r, peer, &out, &seen);
    rv = rv ? rv : up_gateway_headers(r, peer, &seen, &out);
    return rv ? rv : up_framing(r, b);
}

/* ---- response relay ------------------------------------------------------ */

#define UP(p) ((struct gw_upstream *)(p)->data)

static int resp_append(struct gw_request *r, const char *at, size_t len)
{
    if (r->resp.len + len > 64 * 1024)
        return -1; /* an upstream head this large is treated as invalid */
    return gv_buf_append(&r->resp, at, len) == 0 ? 0 : -1;
}

static int on_resp_begin(llhttp_t *p)
{
    struct gw_request *r = UP(p)->req;
    if (r == NULL)
        return -1;
    gv_buf_reset(&r->resp);
    gw_headers_reset(&r->rhdrs);
    r->status = 0;
    return 0;
}

static int on_resp_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct gw_request *r = UP(p)->req;
    if (gw_headers_on_field(&r->rhdrs, (uint32_t)r->resp.len, len, 256) != 0)
        return -1;
    return resp_append(r, at, len);
}

static int on_resp_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct gw_request *r = UP(p)->req;
    gw_headers_on_value(&r->rhdrs, (uint32_t)r->resp.len, len);
    return resp_append(r, at, len);
}

/* The first response header called name, or NULL. */
static const char *resp_header(const struct gw_request *r, const char *name, size_t *len)
{
    for (uint32_t i = 0; i < r->rhdrs.n; i++) {
        const struct gw_header *x = &r->rhdrs.v[i];
        if (gw_name_eq(r->resp.data + x->name_off, x->name_len, name)) {
            *len = x->value_len;
            return r->resp.data + x->value_off;
        }
    }
    return NULL;
}

/* Set-Cookie pinning the client to the target (signed, never its address). */
static int sticky_cookie(struct gw_request *r, struct gw_hdr_out *out)
{
    if (!r->sticky_set)
        return 0;
    const struct lb_service_spec *svc = req_service(r);
    char cookie[256], line[512];
    uint64_t expires = (uint64_t)time(NULL) + svc->sticky.ttl_ms / 1000;
    if (lb_sticky_encode(r->worker->cfg.sticky_key, svc->targets[r->target].address, expires,
                         cookie, sizeof(cookie)) != 0)
        return 0;
    int n = snprintf(line, sizeof(line), "%s=%s; Path=/; Max-Age=%llu; HttpOnly",
                     svc->sticky.cookie, cookie, (unsigned long long)(svc->sticky.ttl_ms / 1000));
    return n > 0 && (size_t)n < sizeof(line) ? gw_hdr_add(out, "Set-Cookie", 10, line, (size_t)n)
                                             : 0;
}

/* The upstream's response headers as they go to the client: hop-by-hop
 * ones, the length (re-framed) and those plugins drop left out, Via
 * extended; then the gateway's own (Via, a sticky cookie, the plugins'). */
static int down_headers(struct gw_request *r, struct gw_hdr_out *out)
{
    const char *d = r->resp.data, *node = r->worker->cfg.node_name;
    bool conn_listed = has_connection_header(&r->rhdrs, d), have_via = false;
    int rv = 0;
    for (uint32_t i = 0; i < r->rhdrs.n && rv == 0; i++) {
        const struct gw_header *x = &r->rhdrs.v[i];
        const char *name = d + x->name_off, *val = d + x->value_off;
        size_t nl = x->name_len, vl = x->value_len;
        if (gw_is_hop_by_hop(name, nl) ||
            (conn_listed && listed_in_connection(&r->rhdrs, d, name, nl)) ||
            gw_chain_response_drop(r, name, nl) ||
            (gw_name_eq(name, nl, "content-length") && r->method != HTTP_HEAD))
            continue;
        if (gw_name_eq(name, nl, "via")) {
            have_via = true;
            rv = hdr_add_joined(out, "Via", val, vl, ", 1.1 ", node);
        } else {
            rv = gw_hdr_add(out, name, nl, val, vl);
        }
    }
    if (!have_via)
        rv = rv ? rv : hdr_add_joined(out, "Via", "1.1", 3, " ", node);
    rv = rv ? rv : sticky_cookie(r, out);
    return rv ? rv : gw_chain_response_add(r, out);
}

/* HTTP/1.1 framing of the response: how the body is delimited and whether
 * the connection stays. Sets r->framing. */
static int down_framing(struct gw_request *r, int64_t length, struct gv_buf *b)
{
    struct gw_conn *c = r->conn;
    int status = r->status, rv = 0;
    bool bodyless = r->method == HTTP_HEAD || status == 204 || status == 304;
    bool close = !r->keep_alive || c->w->draining || c->close_after_write;
    if (status == 101) {
        r->framing = GW_FRAME_NONE;
        return gv_buf_puts(b, "Connection: upgrade\r\n\r\n");
    }
    if (bodyless) {
        r->framing = GW_FRAME_NONE;
    } else if (length >= 0) {
        r->framing = GW_FRAME_LENGTH;
        rv = gv_buf_append(b, "Content-Length: ", 16);
        rv = rv ? rv : gv_buf_put_u64(b, (unsigned long long)length);
        rv = rv ? rv : gv_buf_append(b, "\r\n", 2);
    } else if (r->http_major == 1 && r->http_minor >= 1) {
        r->framing = GW_FRAME_CHUNKED;
        rv = gv_buf_puts(b, "Transfer-Encoding: chunked\r\n");
    } else {
        r->framing = GW_FRAME_CLOSE;
        close = true;
    }
    if (close) {
        c->close_after_write = true;
        rv = rv ? rv : gv_buf_puts(b, "Connection: close\r\n");
    } else if (r->http_minor == 0) {
        rv = rv ? rv : gv_buf_puts(b, "Connection: keep-alive\r\n");
    }
    return rv ? rv : gv_buf_puts(b, "\r\n");
}

/* The response head as HTTP/2 sends it: the same headers, no framing but
 * the upstream's length. */
static int write_client_head_h2(struct gw_request *r, int64_t length, bool end)
{
    struct gw_hdr_out out;
    bool bodyless = end || r->method == HTTP_HEAD || r->status == 204 || r->status == 304;
    gw_h2_hdr_out(r, &out);
    int rv = down_headers(r, &out);
    if (rv == 0 && !bodyless && length >= 0) {
        char n[24];
        int len = snprintf(n, sizeof n, "%lld", (long long)length);
        rv = gw_hdr_add(&out, "content-length", 14, n, (size_t)len);
    }
    return rv ? rv : gw_h2_respond(r, r->status, !bodyless);
}

int gw_proxy_relay_head(struct gw_request *r, int64_t length, bool end)
{
    struct gv_buf b;
    struct gw_hdr_out out;
    size_t ul;
    r->up_head_us = gv_now_us(); /* the upstream's time ends here (access log, metrics) */
    if (r->stream != NULL)
        return write_client_head_h2(r, length, end);
    gv_buf_init(&b);
    gw_hdr_out_h1(&out, &b);
    const char *reason = gw_reason(r->status);
    int rv = gv_buf_append(&b, "HTTP/1.1 ", 9);
    rv = rv ? rv : gv_buf_put_u64(&b, (unsigned long long)r->status);
    rv = rv ? rv : gv_buf_put2(&b, " ", 1, reason, strlen(reason));
    rv = rv ? rv : gv_buf_append(&b, "\r\n", 2);
    if (r->status == 101) { /* the tunnel's protocol, which Upgrade (hop-by-hop) names */
        const char *u = resp_header(r, "upgrade", &ul);
        if (u != NULL)
            rv = rv ? rv : gw_hdr_add(&out, "Upgrade", 7, u, ul);
    }
    rv = rv ? rv : down_headers(r, &out);
    rv = rv ? rv : down_framing(r, end ? 0 : length, &b);
    if (rv == 0) {
        r->response_started = true;
        r->bytes_out += b.len;
        gw_conn_write(r->conn, b.data, b.len);
    }
    gv_buf_free(&b);
    return rv;
}

static int on_resp_headers_complete(llhttp_t *p)
{
    struct gw_upstream *up = UP(p);
    struct gw_request *r = up->req;
    gw_headers_done(&r->rhdrs);
    r->status = llhttp_get_status_code(p);
    if (r->status >= 100 && r->status < 200 && !(r->status == 101 && r->upgrade)) {
        up->skip_1xx = true; /* we answered 100 Continue ourselves */
        return 1;
    }
    if (gw_proxy_relay_head(r, (p->flags & F_CONTENT_LENGTH) ? (int64_t)p->content_length : -1,
                            false) != 0)
        return -1;
    if (r->status == 101) {
        up->tunnel = true;
        return 2;
    }
    return r->method == HTTP_HEAD ? 1 : 0;
}

bool gw_proxy_relay_body(struct gw_request *r, const char *at, size_t len)
{
    struct gw_conn *c = r->conn;
    if (r->stream != NULL) {
        gw_h2_body(r, at, len);
        return gw_h2_backlogged(r);
    }
    if (r->framing == GW_FRAME_CHUNKED) {
        char line[32];
        int n = snprintf(line, sizeof(line), "%zx\r\n", len);
        gw_conn_write(c, line, (size_t)n);
        gw_conn_write(c, at, len);
        gw_conn_write(c, "\r\n", 2);
    } else {
        gw_conn_write(c, at, len);
    }
    r->bytes_out += len;
    return c->out_bytes > GW_HIGH_WATER;
}

void gw_proxy_relay_end(struct gw_request *r)
{
    if (r->stream == NULL && r->framing == GW_FRAME_CHUNKED)
        gw_conn_write(r->conn, "0\r\n\r\n", 5);
}

static int on_resp_body(llhttp_t *p, const char *at, size_t len)
{
    struct gw_upstream *up = UP(p);
    if (gw_proxy_relay_body(up->req, at, len) && up->reading) {
        uv_read_stop((uv_stream_t *)&up->tcp);
        up->reading = false;
    }
    return 0;
}

static int on_resp_complete(llhttp_t *p)
{
    struct gw_upstream *up = UP(p);
    if (up->skip_1xx) {
        up->skip_1xx = false;
        return 0;
    }
    if (up->tunnel)
        return 0; /* llhttp_execute returns HPE_PAUSED_UPGRADE */
    up->done = true;
    return HPE_PAUSED;
}

static void settings_init(void)
{
    llhttp_settings_init(&resp_settings);
    resp_settings.on_message_begin = on_resp_begin;
    resp_settings.on_header_field = on_resp_header_field;
    resp_settings.on_header_value = on_resp_header_value;
    resp_settings.on_headers_complete = on_resp_headers_complete;
    resp_settings.on_body = on_resp_body;
    resp_settings.on_message_complete = on_resp_complete;
}

/* ---- upstream connection life -------------------------------------------- */

static void on_up_handle_closed(uv_handle_t *h)
{
    struct gw_upstream *up = h->data;
    if (--up->handles == 0) {
        gw_tls_free(up->tls);
        gw_up_tls_unref(up->tls_ctx);
        free(up);
    }
}

static void up_close(struct gw_upstream *up)
{
    if (up->state == GW_UP_CLOSING)
        return;
    up->state = GW_UP_CLOSING;
    gw_link_remove(&up->link);
    up_account(up, false);
    if (up->req != NULL && up->req->up == up)
        up->req->up = NULL;
    up->req = NULL;
    uv_close((uv_handle_t *)&up->tcp, on_up_handle_closed);
    uv_close((uv_handle_t *)&up->timer, on_up_handle_closed);
}

static void up_stop_reading(struct gw_upstream *up)
{
    if (up->reading) {
        uv_read_stop((uv_stream_t *)&up->tcp);
        up->reading = false;
    }
}

static void on_up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct gw_upstream *up = h->data;
    (void)suggested;
    buf->base = up->w->read_buf;
    buf->len = sizeof(up->w->read_buf);
}

static void up_start_reading(struct gw_upstream *up)
{
    if (!up->reading && up->state != GW_UP_CLOSING) {
        up->reading = true;
        uv_read_start((uv_stream_t *)&up->tcp, on_up_alloc, on_up_read);
    }
}

/* Drops the attempt's in-flight count without judging the target. */
static void up_release(struct gw_upstream *up)
{
    struct gw_request *r = up->req;
    if (!up->counted || r == NULL)
        return;
    up->counted = false;
    atomic_fetch_sub_explicit(&r->view->snap->states[up->service][up->target]->inflight, 1,
                              memory_order_relaxed);
}

void gw_proxy_failed(struct gw_request *r, int status, const char *why)
{
    attempt_failed(r, status, why, true);
}

/* An attempt failed before a response started: retry elsewhere or answer. */
static void attempt_failed(struct gw_request *r, int status, const char *why, bool blame)
{
    struct gw_upstream *up = r->up;
    bool stale = up != NULL && up->reused && !up->got_bytes;
    if (up != NULL) {
        if (!blame || stale)
            up_release(up);
        up_close(up); /* counts a failure if still counted */
    }
    r->up = NULL;
    const struct lb_service_spec *svc = req_service(r);
    bool can_retry = !r->response_started && r->body_sent == 0 && !r->upgrade &&
                     (idempotent(r->method) || stale);
    if (can_retry && stale) {
        /* A pooled connection the upstream had already closed: not the
         * target's fault, and not a try. */
        r->ntried--;
        attempt(r);
        return;
    }
    gv_debug("upstream %s: %s", svc->targets[r->target].address, why);
    if (can_retry && r->ntried <= svc->retries && r->ntried < GW_MAX_TRIES) {
        attempt(r);
        return;
    }
    gw_request_fail(r, status, why);
}

static void response_done(struct gw_upstream *up, const char *rest, size_t rest_len)
{
    struct gw_request *r = up->req;
    struct gw_conn *c = r->conn;
    bool reusable = llhttp_should_keep_alive(&up->parser) && r->body_done && rest_len == 0;
    /* The worker took up a newer snapshot meanwhile: pool only what it uses. */
    struct gw_view *now = c->w->view;
    if (reusable && now != NULL && now != r->view)
        reusable = snap_wants(now->snap, up->address, up->tls_ctx);
    up->done = false;
    up_account(up, r->status < 500 || r->status > 504);
    gw_proxy_relay_end(r);
    r->up = NULL;
    up->req = NULL;
    if (reusable && !c->w->draining) {
        uv_timer_stop(&up->timer);
        up->state = GW_UP_IDLE;
        up->reused = false;
        up->idle_since_ms = gv_now_ms();
        gw_link_append(&c->w->pool, &up->link);
        up_start_reading(up); /* to notice the upstream closing it */
    } else {
        up_close(up);
    }
    gw_request_finish(r, true);
}

static void start_tunnel(struct gw_upstream *up, const char *rest, size_t rest_len)
{
    struct gw_request *r = up->req;
    struct gw_conn *c = r->conn;
    uv_timer_stop(&up->timer);
    c->tunnel = true;
    up_account(up, true);
    if (rest_len > 0)
        gw_conn_write(c, rest, rest_len);
    if (c->pending != NULL) {
        up_write(up, c->pending, c->pending_len);
        free(c->pending);
        c->pending = NULL;
        c->pending_len = 0;
    }
    gw_conn_resume_body(c);
}

/* A failed connect also tells whoever follows the target's host name that
 * the name may have moved. */
static void connect_failed(struct gw_upstream *up)
{
    const struct gw_snapshot *snap = up->req->view->snap;
    lb_target_connect_failed(snap->states[up->service][up->target], gv_now_ms());
}

static void on_up_timeout(uv_timer_t *t)
{
    struct gw_upstream *up = t->data;
    struct gw_request *r = up->req;
    if (r == NULL)
        return;
    if (up->state == GW_UP_CONNECTING)
        connect_failed(up);
    if (r->response_started) {
        gw_request_fail(r, 504, "upstream timed out");
        return;
    }
    attempt_failed(
        r, 504, up->state == GW_UP_CONNECTING ? "upstream connect timed out" : "upstream timed out",
        true);
}

static void up_feed_parse(struct gw_upstream *up, const char *data, size_t len)
{
    struct gw_request *r = up->req;
    if (up->tunnel) {
        gw_conn_write(r->conn, data, len);
        r->bytes_out += len;
        if (r->conn->out_bytes > GW_HIGH_WATER)
            up_stop_reading(up);
        return;
    }
    up->in_parse = true;
    llhttp_errno_t err = llhttp_execute(&up->parser, data, len);
    up->in_parse = false;
    if (up->req == NULL) /* the client went away meanwhile */
        return;
    const char *pos = llhttp_get_error_pos(&up->parser);
    size_t rest =
        (pos != NULL && pos >= data && pos <= data + len) ? (size_t)(data + len - pos) : 0;
    if (err == HPE_PAUSED_UPGRADE || (err == HPE_OK && up->tunnel)) {
        start_tunnel(up, err == HPE_OK ? NULL : pos, err == HPE_OK ? 0 : rest);
        return;
    }
    if (err == HPE_PAUSED && up->done) {
        response_done(up, pos, rest);
        return;
    }
    if (err != HPE_OK) {
        gv_debug("upstream parse error: %s", llhttp_get_error_reason(&up->parser));
        if (r->response_started)
            gw_request_fail(r, 502, "invalid response from upstream");
        else
            attempt_failed(r, 502, "invalid response from upstream", true);
        return;
    }
    /* Progress: the read timeout starts again. */
    uv_timer_start(&up->timer, on_up_timeout, req_service(r)->timeouts.read_ms, 0);
}

static void up_feed(struct gw_upstream *up, const char *data, size_t len)
{
    struct gw_conn *c = up->req->conn;
    gw_conn_cork(c);
    up_feed_parse(up, data, len);
    gw_conn_uncork(c);
}

/* Response bytes (plaintext) or the end of the connection (nread < 0). */
static void up_input(struct gw_upstream *up, ssize_t nread, const char *data)
{
    struct gw_request *r = up->req;
    if (up->state == GW_UP_IDLE || r == NULL) {
        up_close(up); /* closed (or spoke out of turn) while pooled */
        return;
    }
    if (nread > 0) {
        up->got_bytes = true;
        up_feed(up, data, (size_t)nread);
        return;
    }
    /* EOF or error. */
    if (up->tunnel) {
        r->up = NULL;
        up->req = NULL;
        up_close(up);
        gw_request_finish(r, false);
        return;
    }
    if (nread == UV_EOF && up->got_bytes && llhttp_message_needs_eof(&up->parser)) {
        up->in_parse = true;
        llhttp_finish(&up->parser);
        up->in_parse = false;
        if (up->done) {
            response_done(up, NULL, 0);
            return;
        }
    }
    if (r->response_started)
        gw_request_fail(r, 502, "upstream closed mid-response");
    else
        attempt_failed(
            r, 502,
            nread == UV_EOF ? "upstream closed the connection" : "upstream connection reset", true);
}

static void up_send_request(struct gw_upstream *up);

/* Plaintext of one socket read of a TLS upstream; like the client side's
 * buffer it holds every complete record of one 64 KiB read. */
static _Thread_local char up_plain[96 * 1024];

/* A TLS handshake that failed is a failed connect: 502 after retries, and a
 * passive failure of the target. */
static void up_tls_failed(struct gw_upstream *up, const char *why)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "upstream TLS handshake failed: %s", why);
    gv_warn("upstream %s: %s", up->address, msg);
    attempt_failed(up->req, 502, msg, true);
}

/* Ciphertext from a TLS upstream: drives the handshake, then hands the
 * plaintext (and close_notify or a record error as the connection's end) to
 * up_input(). */
static void up_tls_input(struct gw_upstream *up, const char *data, size_t len)
{
    if (len > 0 && gw_tls_feed(up->tls, data, len) != 0) {
        up_input(up, UV_ENOMEM, NULL);
        return;
    }
    for (;;) {
        size_t got = 0;
        int st = GW_TLS_WANT;
        while (got < sizeof up_plain) {
            st = gw_tls_read(up->tls, up_plain + got, sizeof up_plain - got);
            if (st <= 0)
                break;
            got += (size_t)st;
        }
        int frv = up_tls_flush(up);
        if (up->state == GW_UP_CLOSING)
            return;
        if (up->state == GW_UP_CONNECTING) {
            if (up->req == NULL)
                return;
            if (st == GW_TLS_ERROR || st == GW_TLS_CLOSED || frv != 0) {
                up_tls_failed(up, st == GW_TLS_CLOSED ? "closed by the upstream"
                                                      : gw_tls_failure(up->tls));
                return;
            }
            if (!gw_tls_handshake_done(up->tls))
                return;
            uv_timer_stop(&up->timer);
            up_send_request(up);
            if (up->state != GW_UP_ACTIVE)
                return;
        }
        if (got > 0) {
            up_input(up, (ssize_t)got, up_plain);
            if (up->state == GW_UP_CLOSING)
                return;
        }
        if (st == GW_TLS_CLOSED || st == GW_TLS_ERROR) {
            up_input(up, st == GW_TLS_CLOSED ? UV_EOF : UV_EPROTO, NULL);
            return;
        }
        if (got < sizeof up_plain)
            return;
    }
}

static void on_up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct gw_upstream *up = s->data;
    if (nread == 0)
        return;
    if (up->tls != NULL && nread > 0) {
        up_tls_input(up, buf->base, (size_t)nread);
        return;
    }
    if (up->tls != NULL && up->state == GW_UP_CONNECTING && up->req != NULL) {
        up_tls_failed(up, nread == UV_EOF ? "connection closed by the upstream"
                                          : uv_strerror((int)nread));
        return;
    }
    up_input(up, nread, buf->base);
}

/* Starts the TLS handshake on a fresh connection; the request goes out once
 * it is done (up_tls_input). The connect timeout covers the handshake. */
static void up_tls_start(struct gw_upstream *up)
{
    const struct lb_target_spec *t = &req_service(up->req)->targets[up->target];
    up->tls = gw_up_tls_client(up->tls_ctx, t->host, up->address);
    if (up->tls == NULL) {
        attempt_failed(up->req, 502, "out of memory", true);
        return;
    }
    up_start_reading(up);
    up_tls_input(up, NULL, 0); /* the ClientHello */
}

/* The connection is ready: send the head and whatever body is queued. */
static void up_send_request(struct gw_upstream *up)
{
    struct gw_request *r = up->req;
    up->state = GW_UP_ACTIVE;
    llhttp_init(&up->parser, HTTP_RESPONSE, &resp_settings);
    up->parser.data = up;
    up_start_reading(up);
    uv_timer_start(&up->timer, on_up_timeout, req_service(r)->timeouts.read_ms, 0);
    int rv = up_write(up, r->up_head.data, r->up_head.len);
    if (rv == 0 && r->body_q.len > 0) {
        rv = send_body(r, r->body_q.data, r->body_q.len);
        gv_buf_free(&r->body_q);
    }
    if (rv == 0 && r->body_done && r->body_chunked)
        rv = up_write(up, "0\r\n\r\n", 5);
    if (rv != 0) {
        attempt_failed(r, 502, "upstream write failed", true);
        return;
    }
    /* The queued body may have gone out without a write callback to come:
     * take the client's body again from here. */
    gw_proxy_client_resume(r);
}

static void on_up_connect(uv_connect_t *req, int status)
{
    struct gw_upstream *up = req->data;
    if (up->state == GW_UP_CLOSING)
        return;
    struct gw_request *r = up->req;
    if (status < 0) {
        char why[96];
        snprintf(why, sizeof(why), "upstream connect failed: %s", uv_strerror(status));
        connect_failed(up);
        attempt_failed(r, 502, status == UV_ETIMEDOUT ? "upstream connect timed out" : why, true);
        return;
    }
    uv_tcp_nodelay(&up->tcp, 1);
    if (up->tls_ctx != NULL) {
        up_tls_start(up);
        return;
    }
    up_send_request(up);
}

/* A pooled connection to address over the same transport: plain, or TLS
 * with the same context (so the same verification and names). */
static struct gw_upstream *pool_take(struct gw_worker *w, const char *address,
                                     const struct gw_up_tls *tls_ctx)
{
    for (struct gw_link *l = w->pool.prev; l != &w->pool; l = l->prev) {
        struct gw_upstream *up = GV_CONTAINER_OF(l, struct gw_upstream, link);
        if (up->tls_ctx == tls_ctx && strcmp(up->address, address) == 0) {
            gw_link_remove(&up->link);
            return up;
        }
    }
    return NULL;
}

/* A connection to address (over tls_ctx, NULL for plain TCP) about to
 * connect; NULL when out of memory. */
static struct gw_upstream *up_new(struct gw_worker *w, const char *address,
                                  struct gw_up_tls *tls_ctx)
{
    struct gw_upstream *up = calloc(1, sizeof(*up));
    if (up == NULL)
        return NULL;
    up->w = w;
    snprintf(up->address, sizeof(up->address), "%s", address);
    gw_link_init(&up->link);
    uv_tcp_init(&w->loop, &up->tcp);
    uv_timer_init(&w->loop, &up->timer);
    up->tcp.data = up->timer.data = up->connect_req.data = up;
    up->handles = 2;
    up->state = GW_UP_CONNECTING;
    if ((up->tls_ctx = tls_ctx) != NULL)
        gw_up_tls_ref(tls_ctx);
    return up;
}

/* Picks a target (sticky cookie first) that this request has not tried. */
static int pick_target(struct gw_request *r)
{
    const struct lb_service_spec *svc = req_service(r);
    struct lb_balancer *bal = r->view->balancers[r->service];
    struct lb_pick_ctx ctx = {
        .tried = r->tried,
        .ntried = r->ntried,
        .now_ms = gv_now_ms(),
    };
    if (svc->sticky.enabled && r->ntried == 0) {
        size_t n, vl;
        const char *ck = gw_request_header(r, "cookie", &n);
        const char *v = ck ? gw_cookie_find(ck, n, svc->sticky.cookie, &vl) : NULL;
        if (v != NULL && vl < 256) {
            char val[256];
            int idx;
            memcpy(val, v, vl);
            val[vl] = '\0';
            if (lb_sticky_decode(r->conn->w->cfg.sticky_key, val, (uint64_t)time(NULL), svc,
                                 &idx) == 0 &&
                lb_candidate(bal, idx, &ctx))
                return idx;
        }
        r->sticky_set = true;
    }
    if (svc->algo->flags & LB_NEEDS_HASH) {
        const char *key = NULL;
        size_t kl = 0, n;
        switch (svc->hash_on) {
        case LB_HASH_IP:
            key = (const char *)r->peer->addr;
            kl = r->peer->family == AF_INET6 ? 16 : 4;
            break;
        case LB_HASH_PATH: {
            const char *url = r->head.data + r->url_off;
            const char *q = memchr(url, '?', r->url_len);
            key = url;
            kl = q ? (size_t)(q - url) : r->url_len;
            break;
        }
        case LB_HASH_HEADER:
            key = gw_request_header(r, svc->hash_key, &kl);
            break;
        case LB_HASH_COOKIE: {
            const char *ck = gw_request_header(r, "cookie", &n);
            key = ck ? gw_cookie_find(ck, n, svc->hash_key, &kl) : NULL;
            break;
        }
        }
        if (key != NULL) {
            ctx.hash = gv_hash64(key, kl, 0);
            ctx.has_hash = true;
        }
    }
    return lb_pick(bal, &ctx);
}

static void attempt(struct gw_request *r)
{
    struct gw_worker *w = r->conn->w;
    const struct gw_snapshot *snap = r->view->snap;
    const struct lb_service_spec *svc = req_service(r);
    int t = pick_target(r);
    if (t < 0) {
        if (r->ntried == 0)
            gw_request_fail(r, 503, "no healthy target");
        else
            gw_request_fail(r, 502, "upstream failed and no other target is available");
        return;
    }
    struct gw_up_tls *tls_ctx = snap->up_tls != NULL ? snap->up_tls[r->service] : NULL;
    if (svc->tls.enabled && tls_ctx == NULL) {
        gw_request_fail(r, 502, "upstream TLS is not available (see the node's log)");
        return;
    }
    r->target = t;
    r->tried[r->ntried++] = t;
    if (svc->protocol != LB_PROTO_HTTP1) {
        if (gw_h2up_attempt(r) != 0)
            attempt_failed(r, 502, "upstream connect failed", true);
        return;
    }
    struct lb_target_state *st = snap->states[r->service][t];
    const char *address = svc->targets[t].address;
    struct gw_upstream *up = pool_take(w, address, tls_ctx);
    if (up != NULL) {
        up->reused = true;
    } else if ((up = up_new(w, address, tls_ctx)) == NULL) {
        gw_request_fail(r, 502, "out of memory");
        return;
    }
    pthread_once(&settings_once, settings_init);
    up->req = r;
    up->service = r->service;
    up->target = t;
    up->got_bytes = false;
    up->done = false;
    up->tunnel = false;
    up->skip_1xx = false;
    up->attempt_us = gv_now_us();
    if (r->up_first_us == 0)
        r->up_first_us = up->attempt_us;
    up->counted = true;
    atomic_fetch_add_explicit(&st->inflight, 1, memory_order_relaxed);
    r->up = up;
    if (up->reused) {
        up_send_request(up);
        return;
    }
    const struct sockaddr_storage *sa = &snap->addrs[r->service][t];
    int rv = sa->ss_family == AF_UNSPEC
                 ? UV_EAI_NONAME
                 : uv_tcp_connect(&up->connect_req, &up->tcp, (const struct sockaddr *)sa,
                                  on_up_connect);
    if (rv != 0) {
        char why[96];
        snprintf(why, sizeof(why), "upstream connect failed: %s", uv_strerror(rv));
        connect_failed(up);
        attempt_failed(r, 502, why, true);
        return;
    }
    uv_timer_start(&up->timer, on_up_timeout, svc->timeouts.connect_ms, 0);
}

/* ---- entry points from conn.c ---------------------------------------------- */

void gw_proxy_start(struct gw_request *r)
{
    if (build_up_head(r) != 0) {
        gw_request_fail(r, 500, "out of memory");
        return;
    }
    if (r->expect_continue)
        gw_conn_write(r->conn, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    attempt(r);
}

void gw_proxy_body(struct gw_request *r, const char *data, size_t len)
{
    struct gw_upstream *up = r->up;
    if (r->up2 != NULL) {
        gw_h2up_body(r, data, len);
        return;
    }
    if (up != NULL && up->state == GW_UP_ACTIVE) {
        if (send_body(r, data, len) != 0)
            attempt_failed(r, 502, "upstream write failed", true);
        return;
    }
    if (r->finished)
        return;
    /* Not connected yet: queue, and stop reading above the high-water mark. */
    if (gv_buf_append(&r->body_q, data, len) != 0) {
        gw_request_fail(r, 500, "out of memory");
        return;
    }
    if (r->body_q.len > GW_HIGH_WATER)
        gw_proxy_client_pause(r);
}

void gw_proxy_body_done(struct gw_request *r)
{
    struct gw_upstream *up = r->up;
    if (r->up2 != NULL) {
        gw_h2up_body_done(r);
        return;
    }
    if (up != NULL && up->state == GW_UP_ACTIVE && r->body_chunked)
        up_write(up, "0\r\n\r\n", 5);
}

void gw_proxy_abort(struct gw_request *r)
{
    if (r->up2 != NULL)
        gw_h2up_abort(r);
    if (r->up != NULL) {
        struct gw_upstream *up = r->up;
        /* The client went away (or the gateway answered): not the target's
         * fault, so passive health does not count it. */
        up_release(up);
        r->up = NULL;
        up_close(up);
    }
}

void gw_proxy_resume(struct gw_request *r)
{
    if (r->up2 != NULL)
        gw_h2up_resume(r);
    else if (r->up != NULL && r->up->state == GW_UP_ACTIVE)
        up_start_reading(r->up);
}

void gw_proxy_tunnel_write(struct gw_request *r, const char *data, size_t len)
{
    if (r->up != NULL) {
        r->bytes_in += len;
        up_write(r->up, data, len);
    }
}

void gw_pool_tick(struct gw_worker *w, uint64_t now_ms)
{
    gw_h2up_tick(w, now_ms);
    while (!gw_link_empty(&w->pool)) {
        struct gw_upstream *up = GV_CONTAINER_OF(w->pool.next, struct gw_upstream, link);
        if (now_ms - up->idle_since_ms < GW_POOL_IDLE_MS)
            break;
        up_close(up);
    }
}

void gw_pool_prune(struct gw_worker *w, const struct gw_snapshot *snap)
{
    struct gw_link *l = w->pool.next;
    while (l != &w->pool) {
        struct gw_upstream *up = GV_CONTAINER_OF(l, struct gw_upstream, link);
        l = l->next;
        if (!snap_wants(snap, up->address, up->tls_ctx))
            up_close(up);
    }
}

void gw_pool_close_all(struct gw_worker *w)
{
    gw_h2up_close_all(w);
    while (!gw_link_empty(&w->pool))
        up_close(GV_CONTAINER_OF(w->pool.next, struct gw_upstream, link));
}
