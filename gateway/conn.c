/* conn.c - the client side of the pipeline: accepting, parsing requests with
 * llhttp, enforcing limits and timeouts, routing, and writing responses in
 * order on keep-alive and pipelined connections. */
#include "gateway/h2.h"
#include "gateway/http.h"
#include "gateway/path.h"
#include "gateway/pipeline.h"
#include "gateway/plugins/chain.h"
#include "gateway/tls.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_URL_BYTES         8192
#define ERR_URI_TOO_LONG      1
#define ERR_HEADERS_TOO_LARGE 2

struct conn_write {
    uv_write_t req;
    struct gw_conn *conn;
    size_t len;
    char data[];
};

static llhttp_settings_t req_settings;
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;

static void conn_feed(struct gw_conn *c, const char *data, size_t len);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* ---- requests ---------------------------------------------------------- */

/* Finished requests are kept on a small per-worker free list with their
 * buffers, so a steady stream of requests allocates nothing. */
#define REQ_CACHE_MAX  64
#define REQ_KEEP_BYTES (16 * 1024) /* larger buffers go back to malloc */

static void buf_trim(struct gv_buf *b)
{
    if (b->cap > REQ_KEEP_BYTES)
        gv_buf_free(b);
    else
        gv_buf_reset(b);
}

struct gw_request *gw_request_new(struct gw_conn *c)
{
    struct gw_worker *w = c->w;
    struct gw_request *r = w->req_cache;
    if (r != NULL) {
        w->req_cache = r->next_free;
        w->nreq_cache--;
        struct gv_buf head = r->head, up_head = r->up_head, resp = r->resp, npath = r->npath;
        struct gw_headers hdrs = r->hdrs, rhdrs = r->rhdrs;
        /* The context slots are governed by ctx_live: no need to clear them. */
        memset(r, 0, offsetof(struct gw_request, ctx));
        r->head = head;
        r->up_head = up_head;
        r->resp = resp;
        r->npath = npath;
        r->hdrs = hdrs;
        r->rhdrs = rhdrs;
        gw_headers_reset(&r->hdrs);
        gw_headers_reset(&r->rhdrs);
    } else {
        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return NULL;
    }
    r->conn = c;
    r->worker = c->w;
    r->peer = &c->peer;
    r->tls = c->tls != NULL;
    r->start_us = gv_now_us();
    r->route = -1;
    r->service = -1;
    r->target = -1;
    return r;
}

void gw_request_free(struct gw_request *r)
{
    struct gw_worker *w = r->conn->w;
    gw_view_unref(r->view);
    gv_buf_free(&r->body_q);
    if (w->nreq_cache < REQ_CACHE_MAX && !w->draining) {
        buf_trim(&r->head);
        buf_trim(&r->up_head);
        buf_trim(&r->resp);
        buf_trim(&r->npath);
        r->next_free = w->req_cache;
        w->req_cache = r;
        w->nreq_cache++;
        return;
    }
    gv_buf_free(&r->head);
    gv_buf_free(&r->up_head);
    gv_buf_free(&r->resp);
    gv_buf_free(&r->npath);
    gw_headers_free(&r->hdrs);
    gw_headers_free(&r->rhdrs);
    free(r);
}

void gw_request_cache_clear(struct gw_worker *w)
{
    while (w->req_cache != NULL) {
        struct gw_request *r = w->req_cache;
        w->req_cache = r->next_free;
        gv_buf_free(&r->head);
        gv_buf_free(&r->up_head);
        gv_buf_free(&r->resp);
        gv_buf_free(&r->npath);
        gw_headers_free(&r->hdrs);
        gw_headers_free(&r->rhdrs);
        free(r);
    }
    w->nreq_cache = 0;
}

/* Nothing is waiting to go out to the client, neither in libuv's write
 * queue nor gathered under a cork. */
static bool conn_flushed(const struct gw_conn *c)
{
    return c->out_bytes == 0 && !(c->w->corked == c && c->w->cork.len > 0);
}

/* After the bytes kept while a request was answered are parsed: reading
 * stopped when they were kept, so a request they end in the middle of (its
 * head, or a body not held back by the upstream) needs the socket again. */
static void read_rest(struct gw_conn *c)
{
    const struct gw_request *r = c->req;
    if (c->closing || c->reading || c->close_after_write || c->pending != NULL || c->tunnel)
        return;
    if (r != NULL && (r->body_done || r->body_q.len > GW_HIGH_WATER))
        return;
    c->reading = true;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* Takes the connection on to its next request, or closes it. */
static void conn_next(struct gw_conn *c)
{
    struct gw_worker *w = c->w;
    if (c->closing)
        return;
    if (c->close_after_write || w->draining) {
        c->close_after_write = true;
        if (conn_flushed(c))
            gw_conn_close(c);
        return;
    }
    c->since_ms = gv_now_ms();
    gw_link_remove(&c->link);
    gw_link_append(&w->idle_conns, &c->link);
    if (c->in_parse)
        return; /* conn_feed goes on with the bytes after this request */
    llhttp_resume(&c->parser);
    if (c->pending != NULL) {
        char *p = c->pending;
        uint32_t n = c->pending_len;
        c->pending = NULL;
        c->pending_len = 0;
        conn_feed(c, p, n);
        free(p);
        read_rest(c);
        return;
    }
    if (!c->reading && !c->closing) {
        c->reading = true;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
}

void gw_request_finish(struct gw_request *r, bool ok)
{
    struct gw_conn *c = r->conn;
    if (r->finished)
        return;
    r->finished = true;
    gw_access_log(r, gv_now_us() - r->start_us);
    if (r->stream != NULL) {
        gw_h2_finish(r, ok);
        return;
    }
    if (!r->keep_alive || !ok || !r->body_done || (r->upgrade && !c->tunnel) || r->upgrade_refused)
        c->close_after_write = true;
    c->req = NULL;
    gw_request_free(r);
    conn_next(c);
}

void gw_request_fail(struct gw_request *r, int status, const char *msg)
{
    gw_request_fail_with(r, status, msg, NULL, 0);
}

/* The headers of a response the gateway makes itself: extra, then those of
 * the plugins that ran (a request id echoed, RateLimit-*, CORS). */
static int own_headers_to(struct gw_request *r, const struct gw_hdr *extra, size_t n,
                          struct gw_hdr_out *out)
{
    int rv = 0;
    for (size_t i = 0; i < n && rv == 0; i++)
        rv = gw_hdr_add(out, extra[i].name, strlen(extra[i].name), extra[i].value,
                        strlen(extra[i].value));
    return rv ? rv : gw_chain_response_add(r, out);
}

static int own_headers(struct gw_request *r, const struct gw_hdr *extra, size_t n, struct gv_buf *b)
{
    struct gw_hdr_out out;
    gw_hdr_out_h1(&out, b);
    return own_headers_to(r, extra, n, &out);
}

/* The HTTP/2 form of a response made here: HEADERS, then the body in DATA
 * (ctype names it) when there is one. Ends the request. */
static void send_own_h2(struct gw_request *r, int status, const struct gw_hdr *extra, size_t n,
                        const char *body, size_t blen, const char *ctype)
{
    struct gw_hdr_out out;
    char cl[24];
    int rv = 0;
    if (r->up != NULL || r->up2 != NULL)
        gw_proxy_abort(r);
    gw_h2_hdr_out(r, &out);
    if (ctype != NULL)
        rv = gw_hdr_add(&out, "content-type", 12, ctype, strlen(ctype));
    if (status != 204 && status != 304) {
        int cn = snprintf(cl, sizeof cl, "%zu", blen);
        rv = rv ? rv : gw_hdr_add(&out, "content-length", 14, cl, (size_t)cn);
    }
    rv = rv ? rv : own_headers_to(r, extra, n, &out);
    rv = rv ? rv : gw_h2_respond(r, status, blen > 0);
    rv = rv ? rv : gw_h2_body(r, body, blen);
    r->status = status;
    gw_request_finish(r, rv == 0);
}

/* A gRPC call (application/grpc, +proto, +json...): its errors are gRPC
 * statuses. */
static bool is_grpc(const struct gw_request *r)
{
    size_t n;
    const char *ct = gw_request_header(r, "content-type", &n);
    return ct != NULL && n >= 16 && strncasecmp(ct, "application/grpc", 16) == 0 &&
           (n == 16 || ct[16] == '+' || ct[16] == ';');
}

/* The gRPC status for an HTTP status the gateway answers with. */
static int grpc_status(int http)
{
    switch (http) {
    case 400:
        return 13; /* INTERNAL */
    case 401:
        return 16; /* UNAUTHENTICATED */
    case 403:
        return 7; /* PERMISSION_DENIED */
    case 404:
    case 405:
        return 12; /* UNIMPLEMENTED */
    case 408:
    case 504:
        return 4; /* DEADLINE_EXCEEDED */
    case 413:
    case 429:
        return 8; /* RESOURCE_EXHAUSTED */
    case 502:
    case 503:
        return 14; /* UNAVAILABLE */
    default:
        return 2; /* UNKNOWN */
    }
}

/* grpc-message is percent-encoded (gRPC over HTTP/2, "Responses"). */
static size_t grpc_message(const char *msg, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t j = 0;
    for (const unsigned char *p = (const unsigned char *)msg; *p && j + 4 < cap; p++) {
        if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
            out[j++] = (char)*p;
        } else {
            out[j++] = '%';
            out[j++] = hex[*p >> 4];
            out[j++] = hex[*p & 15];
        }
    }
    out[j] = '\0';
    return j;
}

/* An error of a gRPC call: HTTP 200 with grpc-status and grpc-message, in
 * a trailers-only response, or as the trailers of one already started. */
static void fail_grpc(struct gw_request *r, int status, const char *msg, const struct gw_hdr *extra,
                      size_t n)
{
    char code[8], text[256];
    struct gw_hdr_out out;
    size_t cl = (size_t)snprintf(code, sizeof code, "%d", grpc_status(status));
    size_t tl = grpc_message(msg, text, sizeof text);
    int rv;
    if (r->up != NULL || r->up2 != NULL)
        gw_proxy_abort(r);
    if (r->response_started) {
        rv = gw_h2_trailer(r, "grpc-status", 11, code, cl);
        rv = rv ? rv : gw_h2_trailer(r, "grpc-message", 12, text, tl);
        gw_request_finish(r, rv == 0);
        return;
    }
    gw_h2_hdr_out(r, &out);
    rv = gw_hdr_add(&out, "content-type", 12, "application/grpc", 16);
    rv = rv ? rv : gw_hdr_add(&out, "grpc-status", 11, code, cl);
    rv = rv ? rv : gw_hdr_add(&out, "grpc-message", 12, text, tl);
    rv = rv ? rv : own_headers_to(r, extra, n, &out);
    rv = rv ? rv : gw_h2_respond(r, 200, false);
    r->status = status; /* the log and metrics keep what happened */
    gw_request_finish(r, rv == 0);
}

/* An error answer over HTTP/2: the same JSON body as HTTP/1.1's. */
static void fail_h2(struct gw_request *r, int status, const char *msg, const struct gw_hdr *extra,
                    size_t n)
{
    struct gv_buf b;
    if (is_grpc(r)) {
        fail_grpc(r, status, msg, extra, n);
        return;
    }
    gv_buf_init(&b);
    if (r->response_started) {
        r->status = r->status ? r->status : status;
        if (r->up != NULL || r->up2 != NULL)
            gw_proxy_abort(r);
        gw_request_finish(r, false);
        return;
    }
    if (gw_error_response(&b, status, msg, r->request_id, r->trace.trace_id, false) == 0) {
        size_t at = 4; /* after the blank line that ends the head */
        while (at <= b.len && memcmp(b.data + at - 4, "\r\n\r\n", 4) != 0)
            at++;
        at = at <= b.len ? at : b.len;
        send_own_h2(r, status, extra, n, b.data + at, b.len - at, "application/json");
    } else {
        send_own_h2(r, status, extra, n, NULL, 0, NULL);
    }
    gv_buf_free(&b);
}

/* Sends a response made here (status line, headers, then tail: the rest of
 * the head and the body) and ends the request. */
static void send_own(struct gw_request *r, int status, const struct gw_hdr *extra, size_t n,
                     const char *tail, size_t tail_len, bool close)
{
    struct gw_conn *c = r->conn;
    struct gv_buf b;
    gv_buf_init(&b);
    int rv = gv_buf_printf(&b, "HTTP/1.1 %d %s\r\n", status, gw_reason(status));
    rv = rv ? rv : own_headers(r, extra, n, &b);
    rv = rv ? rv : gv_buf_append(&b, tail, tail_len);
    if (rv == 0) {
        gw_conn_write(c, b.data, b.len);
        r->bytes_out += b.len;
    }
    gv_buf_free(&b);
    r->status = status;
    r->response_started = true;
    if (close)
        c->close_after_write = true;
    gw_request_finish(r, !close);
}

void gw_request_fail_with(struct gw_request *r, int status, const char *msg,
                          const struct gw_hdr *extra, size_t n)
{
    struct gw_conn *c = r->conn;
    if (r->stream != NULL) {
        fail_h2(r, status, msg, extra, n);
        return;
    }
    if (r->up != NULL || r->up2 != NULL)
        gw_proxy_abort(r);
    if (r->response_started) {
        /* Part of a response is out: the only honest signal left is to
         * close the connection mid-message. */
        r->status = r->status ? r->status : status;
        c->close_after_write = true;
        gw_request_finish(r, false);
        return;
    }
    bool close = !r->keep_alive || !r->body_done || c->w->draining;
    struct gv_buf b;
    c->linger |= !r->body_done; /* part of its body may still be on the way */
    gv_buf_init(&b);
    if (gw_error_response(&b, status, msg, r->request_id, r->trace.trace_id, close) == 0) {
        const char *eol = memchr(b.data, '\n', b.len); /* after the status line */
        size_t at = eol ? (size_t)(eol + 1 - b.data) : 0;
        send_own(r, status, extra, n, b.data + at, b.len - at, close);
    } else {
        c->close_after_write = true;
        r->status = status;
        gw_request_finish(r, false);
    }
    gv_buf_free(&b);
}

void gw_request_answer(struct gw_request *r, int status, const struct gw_hdr *extra, size_t n)
{
    struct gw_conn *c = r->conn;
    if (r->stream != NULL) {
        send_own_h2(r, status, extra, n, NULL, 0, NULL);
        return;
    }
    if (r->up != NULL || r->up2 != NULL)
        gw_proxy_abort(r);
    bool close = !r->keep_alive || !r->body_done || c->w->draining;
    char tail[64];
    int len = snprintf(tail, sizeof(tail), "%s%s\r\n",
                       status != 204 && status != 304 ? "Content-Length: 0\r\n" : "",
                       close ? "Connection: close\r\n" : "");
    send_own(r, status, extra, n, tail, (size_t)len, close);
}

/* ---- parser callbacks -------------------------------------------------- */

#define CONN(p) ((struct gw_conn *)(p)->data)

static int head_append(struct gw_conn *c, const char *at, size_t len)
{
    c->head_bytes += (uint32_t)len;
    if (c->head_bytes > c->w->cfg.max_header_bytes) {
        c->error_status = ERR_HEADERS_TOO_LARGE;
        return -1;
    }
    return gv_buf_append(&c->req->head, at, len) == 0 ? 0 : -1;
}

static int on_message_begin(llhttp_t *p)
{
    struct gw_conn *c = CONN(p);
    if (c->close_after_write || c->closing)
        return -1; /* nothing more is read on a connection that is ending */
    c->req = gw_request_new(c);
    if (c->req == NULL)
        return -1;
    c->head_bytes = 0;
    gw_link_remove(&c->link);
    c->since_ms = gv_now_ms();
    gw_link_append(&c->w->head_conns, &c->link);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct gw_conn *c = CONN(p);
    struct gw_request *r = c->req;
    if (r->url_len == 0)
        r->url_off = (uint32_t)r->head.len;
    r->url_len += (uint32_t)len;
    if (r->url_len > MAX_URL_BYTES) {
        c->error_status = ERR_URI_TOO_LONG;
        return -1;
    }
    return head_append(c, at, len);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct gw_conn *c = CONN(p);
    struct gw_request *r = c->req;
    int rv = gw_headers_on_field(&r->hdrs, (uint32_t)r->head.len, len, c->w->cfg.max_headers);
    if (rv == GV_ERANGE)
        c->error_status = ERR_HEADERS_TOO_LARGE;
    return rv == 0 ? head_append(c, at, len) : -1;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct gw_conn *c = CONN(p);
    struct gw_request *r = c->req;
    gw_headers_on_value(&r->hdrs, (uint32_t)r->head.len, len);
    return head_append(c, at, len);
}

/* An absolute-form target (RFC 9112 3.2.2: "http://host/path", which a
 * server MUST accept): its authority is the host routing and the upstream
 * see, in place of the Host header, and the target becomes its path. 0, or
 * -1 for a target that is neither origin-form nor a valid absolute form. */
static int absolute_form(struct gw_request *r)
{
    size_t aoff, alen, poff;
    if (gw_target_absolute(r->head.data + r->url_off, r->url_len, &aoff, &alen, &poff) != 0)
        return -1;
    r->authority_off = r->url_off + (uint32_t)aoff;
    r->authority_len = (uint32_t)alen;
    r->url_off += (uint32_t)poff;
    r->url_len -= (uint32_t)poff;
    return 0;
}

/* Checks what HTTP/1.1 asks of a request head, then routes it. */
static void request_dispatch(struct gw_request *r)
{
    const char *url = r->head.data + r->url_off;
    size_t hosts = 0, hlen = 0;
    const char *host = NULL;

    for (uint32_t i = 0; i < r->hdrs.n; i++) {
        const struct gw_header *h = &r->hdrs.v[i];
        if (gw_name_eq(r->head.data + h->name_off, h->name_len, "host")) {
            hosts++;
            host = r->head.data + h->value_off;
            hlen = h->value_len;
        }
    }
    if (r->http_major == 0) {
        r->keep_alive = false;
        gw_request_fail(r, 400, "HTTP/0.9 is not supported");
        return;
    }
    if (r->method == HTTP_CONNECT) {
        gw_request_fail(r, 405, "CONNECT is not supported");
        return;
    }
    if (hosts > 1 || (hosts == 0 && r->http_minor >= 1 && r->http_major == 1)) {
        gw_request_fail(r, 400, hosts ? "more than one Host header" : "missing Host header");
        return;
    }
    if (r->url_len > 0 && url[0] != '/' && !(r->url_len == 1 && url[0] == '*')) {
        if (absolute_form(r) != 0) {
            gw_request_fail(r, 400, "request target must be an absolute path or URI");
            return;
        }
        host = r->head.data + r->authority_off;
        hlen = r->authority_len;
    } else if (r->url_len == 0) {
        gw_request_fail(r, 400, "request target must be an absolute path or URI");
        return;
    }
    if (gw_request_route(r, host, hlen) != 0)
        return; /* answered */
    /* The proxy starts once llhttp has checked everything that arrived with
     * this head (see conn_feed): a request whose body framing turns out
     * malformed in the same read never reaches an upstream. */
    r->dispatch_pending = true;
}

static int on_headers_complete(llhttp_t *p)
{
    struct gw_conn *c = CONN(p);
    struct gw_request *r = c->req;
    gw_headers_done(&r->hdrs);
    r->head_done = true;
    r->method = llhttp_get_method(p);
    r->http_major = llhttp_get_http_major(p);
    r->http_minor = llhttp_get_http_minor(p);
    r->keep_alive = llhttp_should_keep_alive(p);
    r->upgrade = llhttp_get_upgrade(p);
    r->body_chunked = (p->flags & F_CHUNKED) != 0;
    r->has_length = (p->flags & F_CONTENT_LENGTH) != 0;
    r->content_length = p->content_length;
    r->has_body = r->body_chunked || (r->has_length && p->content_length > 0);
    size_t n;
    const char *e = gw_request_header(r, "expect", &n);
    r->expect_continue = e != NULL && gw_name_eq(e, n, "100-continue") && r->has_body;
    gw_link_remove(&c->link);
    gw_link_append(&c->w->busy_conns, &c->link);
    gw_request_identify(r);
    request_dispatch(r);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct gw_conn *c = CONN(p);
    struct gw_request *r = c->req;
    if (r == NULL)
        return c->close_after_write ? -1 : 0;
    r->bytes_in += len;
    r->body_seen += len;
    /* Body plugins (a size limit) judge each chunk before it is
     * forwarded; before the head phase has run (the chunk came with the
     * head) it is only queued, and that phase judges what was counted. */
    if (r->route >= 0 && !r->dispatch_pending && gw_chain_on_body(r, at, len) == GW_PLUGIN_ANSWERED)
        return c->close_after_write ? -1 : 0;
    gw_proxy_body(r, at, len);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct gw_conn *c = CONN(p);
    struct gw_request *r = c->req;
    if (r == NULL) /* answered before its body ended */
        return c->close_after_write ? -1 : 0;
    r->body_done = true;
    gw_proxy_body_done(r);
    /* One request at a time: pause until its response is out. */
    return c->req != NULL ? HPE_PAUSED : 0;
}

static void settings_init(void)
{
    llhttp_settings_init(&req_settings);
    req_settings.on_message_begin = on_message_begin;
    req_settings.on_url = on_url;
    req_settings.on_header_field = on_header_field;
    req_settings.on_header_value = on_header_value;
    req_settings.on_headers_complete = on_headers_complete;
    req_settings.on_body = on_body;
    req_settings.on_message_complete = on_message_complete;
}

/* ---- connection I/O ---------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h)
{
    struct gw_conn *c = h->data;
    struct gw_worker *w = c->w;
    free(c->pending);
    gw_h2_free(c->h2);
    gw_tls_free(c->tls);
    free(c);
    gw_worker_conn_gone(w);
}

/* Ends the connection's request, logged as 499 when it had no answer. */
static void drop_request(struct gw_conn *c)
{
    struct gw_request *r = c->req;
    if (r == NULL)
        return;
    c->req = NULL;
    if (r->up != NULL || r->up2 != NULL)
        gw_proxy_abort(r);
    if (!r->finished) {
        if (r->status == 0)
            r->status = 499; /* client went away first, as nginx logs it */
        gw_access_log(r, gv_now_us() - r->start_us);
    }
    gw_request_free(r);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    free(req);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* Lingering close (as nginx does): after an error answer to a client that
 * may still be sending, shut the write side and read and discard until the
 * client closes or GW_LINGER_MS pass. Closing at once would make the kernel
 * answer the unread input with a reset, which can destroy the answer
 * before the client reads it (a 431 for an oversized head). */
static void linger(struct gw_conn *c)
{
    uv_shutdown_t *sh = malloc(sizeof(*sh));
    drop_request(c);
    c->lingering = true;
    c->since_ms = gv_now_ms();
    gw_link_remove(&c->link);
    gw_link_append(&c->w->linger_conns, &c->link);
    if (sh == NULL || uv_shutdown(sh, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        free(sh);
    if (!c->reading) {
        c->reading = true;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
}

void gw_conn_close(struct gw_conn *c)
{
    if (c->closing)
        return;
    if (c->in_parse) {
        c->close_pending = true;
        return;
    }
    if (c->linger && !c->lingering && !c->broken && !c->w->draining) {
        linger(c);
        return;
    }
    if (c->h2 != NULL)
        gw_h2_close(c);
    c->closing = true;
    gw_link_remove(&c->link);
    drop_request(c);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_write(uv_write_t *req, int status)
{
    struct conn_write *cw = (struct conn_write *)req;
    struct gw_conn *c = cw->conn;
    c->out_bytes -= (uint32_t)cw->len;
    free(cw);
    if (c->closing)
        return;
    if (status < 0) {
        gw_conn_close(c);
        return;
    }
    if (c->h2 != NULL) {
        if (c->out_bytes < GW_LOW_WATER)
            gw_h2_drained(c);
        if (!c->closing && c->close_after_write && c->out_bytes == 0 && !gw_h2_busy(c))
            gw_conn_close(c);
        return;
    }
    if (c->req != NULL && c->out_bytes < GW_LOW_WATER)
        gw_proxy_resume(c->req);
    else if (c->req == NULL && c->close_after_write && c->out_bytes == 0)
        gw_conn_close(c);
}

/* Never closes the connection itself: callers are often deep inside a
 * request's processing. A failed write marks the connection to close once
 * the request ends; a failure reported later arrives in on_write. */
int gw_conn_write(struct gw_conn *c, const void *data, size_t len)
{
    if (c->closing || c->broken || len == 0)
        return 0;
    if (c->w->corked == c)
        return gv_buf_append(&c->w->cork, data, len);
    if (c->tls != NULL && !c->tls_raw)
        return gw_tls_conn_encrypt(c, data, len);
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    if (c->out_bytes == 0) {
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n > 0) {
            if ((size_t)n == len)
                return 0;
            data = (const char *)data + n;
            len -= (size_t)n;
        } else if (n != UV_EAGAIN) {
            c->broken = true;
            c->close_after_write = true;
            return n;
        }
    }
    struct conn_write *cw = malloc(sizeof(*cw) + len);
    if (cw == NULL) {
        c->broken = true;
        c->close_after_write = true;
        return GV_ENOMEM;
    }
    cw->conn = c;
    cw->len = len;
    memcpy(cw->data, data, len);
    b = uv_buf_init(cw->data, (unsigned)len);
    int rv = uv_write(&cw->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rv != 0) {
        free(cw);
        c->broken = true;
        c->close_after_write = true;
        return rv;
    }
    c->out_bytes += (uint32_t)len;
    return 0;
}

void gw_conn_cork(struct gw_conn *c)
{
    c->w->corked = c;
}

void gw_conn_uncork(struct gw_conn *c)
{
    struct gw_worker *w = c->w;
    if (w->corked != c)
        return;
    w->corked = NULL;
    if (c->h2 != NULL) { /* its writes are frames nghttp2 queued meanwhile */
        gw_h2_flush(c);
        return;
    }
    if (w->cork.len > 0) {
        gw_conn_write(c, w->cork.data, w->cork.len);
        if (w->cork.cap > 256 * 1024)
            gv_buf_free(&w->cork);
        else
            gv_buf_reset(&w->cork);
    }
    if (!c->closing && c->req == NULL && c->close_after_write && c->out_bytes == 0)
        gw_conn_close(c);
}

static void parse_error(struct gw_conn *c, llhttp_errno_t err)
{
    struct gw_request *r = c->req;
    int status = 400;
    const char *msg = "malformed request";
    if (c->error_status == ERR_URI_TOO_LONG) {
        status = 414;
        msg = "request line too long";
    } else if (c->error_status == ERR_HEADERS_TOO_LARGE) {
        status = 431;
        msg = "request headers too large";
    }
    gv_debug("client parse error: %s (%s)", llhttp_errno_name(err),
             llhttp_get_error_reason(&c->parser));
    c->close_after_write = true;
    c->linger = true; /* the rest of what it sent is unread */
    if (r != NULL) {
        r->keep_alive = false;
        gw_request_fail(r, status, msg);
    } else if (err != HPE_USER || c->error_status != 0) {
        struct gv_buf b;
        gv_buf_init(&b);
        if (gw_error_response(&b, status, msg, "", "", true) == 0)
            gw_conn_write(c, b.data, b.len);
        gv_buf_free(&b);
    }
    if (c->req == NULL && conn_flushed(c))
        gw_conn_close(c);
}

static void stop_reading(struct gw_conn *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static int keep_pending(struct gw_conn *c, const char *p, size_t n)
{
    free(c->pending);
    c->pending = NULL;
    c->pending_len = 0;
    if (n == 0)
        return 0;
    c->pending = malloc(n);
    if (c->pending == NULL)
        return GV_ENOMEM;
    memcpy(c->pending, p, n);
    c->pending_len = (uint32_t)n;
    return 0;
}

/* Bytes that arrive while a request is being answered wait in c->pending;
 * past this much, the client is not read until the response is out. */
#define PENDING_MAX (64 * 1024)

static int append_pending(struct gw_conn *c, const char *p, size_t n)
{
    char *q = realloc(c->pending, c->pending_len + n);
    if (q == NULL)
        return GV_ENOMEM;
    memcpy(q + c->pending_len, p, n);
    c->pending = q;
    c->pending_len += (uint32_t)n;
    return 0;
}

/* The first bytes of a connection choose its protocol: HTTP/2 by ALPN or
 * its preface, else HTTP/1.1. */
static bool conn_choose(struct gw_conn *c, const char *data, size_t len)
{
    c->proto_known = true;
    if (!gw_h2_detect(c, data, len))
        return true;
    if (gw_h2_start(c) != 0) {
        gw_conn_close(c);
        return false;
    }
    return true;
}

static void conn_feed(struct gw_conn *c, const char *data, size_t len)
{
    if (!c->proto_known && !conn_choose(c, data, len))
        return;
    if (c->h2 != NULL) {
        gw_h2_feed(c, data, len);
        return;
    }
    while (!c->closing) {
        if (c->tunnel) {
            if (c->req != NULL && len > 0)
                gw_proxy_tunnel_write(c->req, data, len);
            return;
        }
        if (c->req != NULL && c->req->body_done) {
            /* The parser is paused on this request: the client sent more
             * (a pipelined request) before the response was out. Reading
             * goes on, without an epoll change per request, until this much
             * waits. */
            if (len > 0 && append_pending(c, data, len) != 0) {
                gw_conn_close(c);
                return;
            }
            if (c->pending_len > PENDING_MAX)
                stop_reading(c);
            return;
        }
        c->in_parse = true;
        llhttp_errno_t err = llhttp_execute(&c->parser, data, len);
        c->in_parse = false;
        if (c->close_pending) {
            c->close_pending = false;
            gw_conn_close(c);
            return;
        }
        if (c->req != NULL && c->req->dispatch_pending &&
            (err == HPE_OK || err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE)) {
            c->req->dispatch_pending = false;
            /* Plugins run here, after the parse, so a bodiless request that
             * a plugin answers (e.g. 429) keeps its connection. */
            if (gw_chain_on_request(c->req) != GW_PLUGIN_ANSWERED)
                gw_proxy_start(c->req);
            if (c->closing)
                return;
        }
        if (err == HPE_OK)
            return;
        if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
            const char *pos = llhttp_get_error_pos(&c->parser);
            size_t rest =
                (pos != NULL && pos >= data && pos <= data + len) ? (size_t)(data + len - pos) : 0;
            if (c->req == NULL && err == HPE_PAUSED) {
                /* Already answered: go straight on with the next request. */
                if (c->close_after_write) {
                    stop_reading(c);
                    return;
                }
                llhttp_resume(&c->parser);
                data = pos;
                len = rest;
                continue;
            }
            /* Keep what follows for after the response (or for the tunnel).
             * The common case, nothing after a request, keeps reading so a
             * keep-alive request costs no epoll change. */
            if (keep_pending(c, pos, rest) != 0) {
                gw_conn_close(c);
                return;
            }
            if (rest > 0 || err == HPE_PAUSED_UPGRADE)
                stop_reading(c);
            return;
        }
        parse_error(c, err);
        return;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct gw_conn *c = h->data;
    (void)suggested;
    /* Safe to share: libuv calls alloc, read and read_cb back to back on
     * this thread, and read_cb copies whatever it keeps. */
    buf->base = c->w->read_buf;
    buf->len = sizeof(c->w->read_buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct gw_conn *c = s->data;
    const char *plain = NULL;
    if (c->lingering) { /* discard until the client closes */
        if (nread < 0) {
            c->linger = false;
            gw_conn_close(c);
        }
        return;
    }
    if (c->tls != NULL && nread > 0)
        nread = gw_tls_conn_decrypt(c, buf->base, (size_t)nread, &plain);
    if (nread == 0)
        return;
    if (nread < 0) {
        if (nread == UV_EOF && c->req != NULL && c->req->body_done && !c->tunnel) {
            /* Half-close after a complete request: answer, then close. */
            stop_reading(c);
            c->close_after_write = true;
            return;
        }
        if (c->req != NULL && c->tunnel)
            gw_proxy_abort(c->req);
        gw_conn_close(c);
        return;
    }
    conn_feed(c, plain != NULL ? plain : buf->base, (size_t)nread);
}

void gw_conn_resume_body(struct gw_conn *c)
{
    if (!c->closing && !c->reading && c->req != NULL && (!c->req->body_done || c->tunnel)) {
        c->reading = true;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
}

void gw_conn_accept(struct gw_worker *w, uv_stream_t *server, struct gw_tls_ctxset *tls)
{
    pthread_once(&settings_once, settings_init);
    struct gw_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->w = w;
    gw_link_init(&c->link);
    uv_tcp_init(&w->loop, &c->tcp);
    c->tcp.data = c;
    w->nconns++;
    atomic_fetch_add_explicit(&w->cfg.metrics->conns, 1, memory_order_relaxed);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        (tls != NULL && (c->tls = gw_tls_new(tls)) == NULL)) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    if (c->tls != NULL)
        gw_tls_offer_h2(c->tls);
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        c->peer.family = (uint8_t)ss.ss_family;
        if (ss.ss_family == AF_INET6)
            memcpy(c->peer.addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
        else
            memcpy(c->peer.addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    }
    uv_tcp_nodelay(&c->tcp, 1);
    llhttp_init(&c->parser, HTTP_REQUEST, &req_settings);
    c->parser.data = c;
    c->since_ms = gv_now_ms();
    gw_link_append(&w->idle_conns, &c->link);
    c->reading = true;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

void gw_conn_close_idle(struct gw_worker *w)
{
    /* HTTP/2 connections still serving streams are told to finish them. */
    for (struct gw_link *l = w->busy_conns.next; l != &w->busy_conns;) {
        struct gw_conn *c = GV_CONTAINER_OF(l, struct gw_conn, link);
        l = l->next;
        if (c->h2 != NULL)
            gw_h2_goaway(c);
    }
    while (!gw_link_empty(&w->idle_conns)) {
        struct gw_conn *c = GV_CONTAINER_OF(w->idle_conns.next, struct gw_conn, link);
        gw_conn_close(c);
    }
}

void gw_conn_tick(struct gw_worker *w, uint64_t now_ms)
{
    while (!gw_link_empty(&w->linger_conns)) {
        struct gw_conn *c = GV_CONTAINER_OF(w->linger_conns.next, struct gw_conn, link);
        if (!w->draining && now_ms - c->since_ms < GW_LINGER_MS)
            break;
        c->linger = false;
        gw_conn_close(c);
    }
    if (w->draining && now_ms >= w->drain_deadline_ms) {
        /* Past the drain deadline: cut what is still open (long polls,
         * WebSocket tunnels) so the process can exit. */
        while (!gw_link_empty(&w->busy_conns))
            gw_conn_close(GV_CONTAINER_OF(w->busy_conns.next, struct gw_conn, link));
        while (!gw_link_empty(&w->head_conns))
            gw_conn_close(GV_CONTAINER_OF(w->head_conns.next, struct gw_conn, link));
    }
    while (!gw_link_empty(&w->head_conns)) {
        struct gw_conn *c = GV_CONTAINER_OF(w->head_conns.next, struct gw_conn, link);
        if (now_ms - c->since_ms < w->cfg.header_timeout_ms)
            break;
        gw_link_remove(&c->link);
        if (c->req != NULL) {
            c->req->keep_alive = false;
            gw_request_fail(c->req, 408, "request head not received in time");
        } else {
            gw_conn_close(c);
        }
    }
    while (!gw_link_empty(&w->idle_conns)) {
        struct gw_conn *c = GV_CONTAINER_OF(w->idle_conns.next, struct gw_conn, link);
        if (now_ms - c->since_ms < w->cfg.idle_timeout_ms)
            break;
        gw_conn_close(c);
    }
}
