/* h2.c - HTTP/2 on client connections: nghttp2 server sessions whose streams
 * are requests of the common pipeline (gateway/h2.h). */
#include "gateway/h2.h"
#include "gateway/pipeline.h"
#include "gateway/plugins/chain.h"
#include "gateway/tls.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_URL_BYTES 8192
#define NV_STACK      64

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct gw_h2_stream {
    struct gw_link link; /* in h2->streams */
    struct gw_h2 *h2;
    int32_t id;
    struct gw_request *req; /* until it finishes */
    struct gv_buf out;      /* response body not yet framed */
    size_t out_off;
    struct gv_buf hdrs;     /* response headers: records of u32 nlen, u32 vlen, name, value */
    struct gv_buf trailers; /* response trailers, records as hdrs */
    struct gv_buf cookie;   /* request cookie crumbs, joined with "; " (RFC 9113 8.2.3) */
    uint32_t held;          /* DATA bytes not yet returned to the windows */
    uint32_t hdr_bytes;     /* the request header block as RFC 9113 counts it */
    int bad;                /* the header block is refused with this status */
    const char *bad_msg;
    bool eof;       /* the response body is complete */
    bool responded; /* HEADERS submitted */
    bool hold;      /* the upstream is not taking the body */
    bool paused_up; /* the upstream was told to pause */
};

struct gw_h2 {
    nghttp2_session *s;
    struct gw_conn *c;
    struct gw_link streams;
    int nstreams;
    bool in_recv;  /* inside nghttp2_session_mem_recv: sending waits */
    bool goaway;   /* a GOAWAY was queued (drain or close) */
    double tokens; /* rapid-reset bucket */
    uint64_t tokens_ms;
    struct gv_buf scratch; /* frames gathered for one write */
};

static nghttp2_session_callbacks *callbacks;
static nghttp2_option *options;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* ---- detection ---------------------------------------------------------- */

bool gw_h2_detect(const struct gw_conn *c, const char *data, size_t len)
{
    if (c->tls != NULL && gw_tls_alpn_h2(c->tls))
        return true;
    size_t n = len < sizeof preface - 1 ? len : sizeof preface - 1;
    /* "PRI " at least: a shorter first read is left to HTTP/1.1, which
     * refuses it. */
    return n >= 4 && memcmp(data, preface, n) == 0;
}

/* ---- the request head ---------------------------------------------------- */

/* HTTP's methods as llhttp numbers them (llhttp_method_name aborts on a
 * number it does not know, so the table is built from its own map). */
static const struct {
    const char *name;
    int method;
} methods[] = {
#define GW_METHOD(num, name, string) {#string, num},
    HTTP_METHOD_MAP(GW_METHOD)
#undef GW_METHOD
};

static int method_of(const uint8_t *v, size_t len)
{
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strlen(methods[i].name) == len && memcmp(methods[i].name, v, len) == 0)
            return methods[i].method;
    return -1;
}

static void refuse(struct gw_h2_stream *st, int status, const char *msg)
{
    if (st->bad == 0) {
        st->bad = status;
        st->bad_msg = msg;
    }
}

static int head_add(struct gw_request *r, const uint8_t *p, size_t n, uint32_t *off)
{
    *off = (uint32_t)r->head.len;
    return gv_buf_append(&r->head, p, n);
}

static void pseudo_header(struct gw_h2_stream *st, const uint8_t *name, size_t nl,
                          const uint8_t *value, size_t vl)
{
    struct gw_request *r = st->req;
    uint32_t off;
    if (nl == 7 && memcmp(name, ":method", 7) == 0) {
        int m = method_of(value, vl);
        if (m < 0)
            refuse(st, 501, "unknown method");
        else
            r->method = (uint8_t)m;
    } else if (nl == 5 && memcmp(name, ":path", 5) == 0) {
        if (vl > MAX_URL_BYTES)
            refuse(st, 414, "request target too long");
        else if (head_add(r, value, vl, &off) != 0)
            refuse(st, 500, "out of memory");
        else {
            r->url_off = off;
            r->url_len = (uint32_t)vl;
        }
    } else if (nl == 10 && memcmp(name, ":authority", 10) == 0) {
        if (head_add(r, value, vl, &off) != 0)
            refuse(st, 500, "out of memory");
        else {
            r->authority_off = off;
            r->authority_len = (uint32_t)vl;
        }
    }
    /* :scheme is checked by nghttp2; :protocol is not enabled. */
}

static void plain_header(struct gw_h2_stream *st, const uint8_t *name, size_t nl,
                         const uint8_t *value, size_t vl)
{
    struct gw_request *r = st->req;
    const struct gw_worker_config *cfg = &r->worker->cfg;
    if (nl == 6 && memcmp(name, "cookie", 6) == 0) {
        if ((st->cookie.len > 0 && gv_buf_append(&st->cookie, "; ", 2) != 0) ||
            gv_buf_append(&st->cookie, value, vl) != 0)
            refuse(st, 500, "out of memory");
        return;
    }
    int rv = gw_headers_on_field(&r->hdrs, (uint32_t)r->head.len, nl, cfg->max_headers);
    if (rv == GV_ERANGE) {
        refuse(st, 431, "too many request headers");
        return;
    }
    if (rv != 0 || gv_buf_append(&r->head, name, nl) != 0) {
        refuse(st, 500, "out of memory");
        return;
    }
    gw_headers_on_value(&r->hdrs, (uint32_t)r->head.len, vl);
    if (gv_buf_append(&r->head, value, vl) != 0)
        refuse(st, 500, "out of memory");
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    struct gw_h2_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    (void)flags;
    (void)ud;
    if (st == NULL || st->req == NULL || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers of a request body are not forwarded */
    /* An HPACK bomb decodes to far more than it weighs: the block is
     * judged by what it decodes to, and nothing past the limit is kept. */
    st->hdr_bytes += (uint32_t)(nl + vl + 32);
    if (st->hdr_bytes > st->req->worker->cfg.max_header_bytes)
        refuse(st, 431, "request headers too large");
    if (st->bad != 0)
        return 0;
    if (nl > 0 && name[0] == ':')
        pseudo_header(st, name, nl, value, vl);
    else
        plain_header(st, name, nl, value, vl);
    return 0;
}

/* ---- streams --------------------------------------------------------------- */

static void conn_busy(struct gw_h2 *h)
{
    struct gw_conn *c = h->c;
    gw_link_remove(&c->link);
    gw_link_append(&c->w->busy_conns, &c->link);
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct gw_h2 *h = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct gw_h2_stream *st = calloc(1, sizeof(*st));
    struct gw_request *r = st != NULL ? gw_request_new(h->c) : NULL;
    if (r == NULL) {
        free(st);
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    st->h2 = h;
    st->id = f->hd.stream_id;
    st->req = r;
    r->stream = st;
    r->http_major = 2;
    r->http_minor = 0;
    r->keep_alive = true;
    gw_link_append(&h->streams, &st->link);
    if (h->nstreams++ == 0)
        conn_busy(h);
    nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st);
    return 0;
}

/* The request's body framing towards an HTTP/1.1 upstream: its
 * Content-Length when the client gave one (nghttp2 checks the DATA against
 * it), else chunked. */
static int body_framing(struct gw_request *r, bool end_stream)
{
    size_t n;
    const char *cl = gw_request_header(r, "content-length", &n);
    r->body_done = end_stream;
    r->has_body = !end_stream;
    if (cl != NULL) {
        uint64_t v = 0;
        if (n == 0 || n > 18)
            return -1;
        for (size_t i = 0; i < n; i++) {
            if (cl[i] < '0' || cl[i] > '9')
                return -1;
            v = v * 10 + (uint64_t)(cl[i] - '0');
        }
        r->has_length = true;
        r->content_length = v;
        r->has_body = v > 0;
    } else if (!end_stream) {
        r->body_chunked = true;
    }
    return 0;
}

static int add_cookie(struct gw_h2_stream *st)
{
    struct gw_request *r = st->req;
    if (st->cookie.len == 0)
        return 0;
    int rv = gw_headers_on_field(&r->hdrs, (uint32_t)r->head.len, 6, UINT32_MAX);
    rv = rv ? rv : gv_buf_append(&r->head, "cookie", 6);
    if (rv == 0)
        gw_headers_on_value(&r->hdrs, (uint32_t)r->head.len, st->cookie.len);
    rv = rv ? rv : gv_buf_append(&r->head, st->cookie.data, st->cookie.len);
    gv_buf_free(&st->cookie);
    return rv;
}

/* The head is complete: checks, routing, plugins, then the proxy. */
static void dispatch(struct gw_h2_stream *st, bool end_stream)
{
    struct gw_request *r = st->req;
    size_t hlen = r->authority_len;
    const char *host = r->head.data + r->authority_off;
    const char *url = r->head.data + r->url_off;
    if (add_cookie(st) != 0)
        refuse(st, 500, "out of memory");
    gw_headers_done(&r->hdrs);
    r->head_done = true;
    gw_request_identify(r);
    if (body_framing(r, end_stream) != 0)
        refuse(st, 400, "invalid content-length");
    if (st->bad != 0) {
        gw_request_fail(r, st->bad, st->bad_msg);
        return;
    }
    if (r->method == HTTP_CONNECT) {
        gw_request_fail(r, 405, "CONNECT is not supported");
        return;
    }
    if (r->url_len == 0 || (url[0] != '/' && !(r->url_len == 1 && url[0] == '*'))) {
        gw_request_fail(r, 400, "request target must be an absolute path");
        return;
    }
    if (hlen == 0)
        host = gw_request_header(r, "host", &hlen);
    if (gw_request_route(r, host, hlen) != 0)
        return; /* answered */
    if (gw_chain_on_request(r) != GW_PLUGIN_ANSWERED)
        gw_proxy_start(r);
}

static void body_done(struct gw_h2_stream *st)
{
    struct gw_request *r = st->req;
    if (r == NULL || r->body_done)
        return;
    r->body_done = true;
    gw_proxy_body_done(r);
}

/* Rapid reset (CVE-2023-44487): RST_STREAM frames drain a token bucket;
 * a client that empties it gets GOAWAY ENHANCE_YOUR_CALM. */
static void count_reset(struct gw_h2 *h)
{
    uint64_t now = gv_now_ms();
    h->tokens += (double)(now - h->tokens_ms) * GW_H2_RESET_RATE / 1000.0;
    if (h->tokens > GW_H2_RESET_BURST)
        h->tokens = GW_H2_RESET_BURST;
    h->tokens_ms = now;
    h->tokens -= 1;
    if (h->tokens < 0 && !h->goaway) {
        gv_warn("h2 client sent RST_STREAM faster than %d/s: GOAWAY", GW_H2_RESET_RATE);
        h->goaway = true;
        nghttp2_session_terminate_session(h->s, NGHTTP2_ENHANCE_YOUR_CALM);
    }
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct gw_h2 *h = ud;
    struct gw_h2_stream *st;
    bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
        st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
        if (st == NULL || st->req == NULL)
            break;
        if (f->headers.cat == NGHTTP2_HCAT_REQUEST && !st->req->head_done)
            dispatch(st, end);
        else if (end)
            body_done(st);
        break;
    case NGHTTP2_DATA:
        st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
        if (st != NULL && end)
            body_done(st);
        break;
    case NGHTTP2_RST_STREAM:
        count_reset(h);
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    struct gw_h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
    struct gw_request *r = st != NULL ? st->req : NULL;
    (void)flags;
    (void)ud;
    if (r != NULL && !r->finished) {
        r->bytes_in += len;
        r->body_seen += len;
        if (r->route < 0 || gw_chain_on_body(r, (const char *)data, len) != GW_PLUGIN_ANSWERED)
            gw_proxy_body(r, (const char *)data, len);
    }
    /* The request may have ended meanwhile (a plugin or the proxy answered). */
    if (st != NULL && st->req != NULL && st->hold)
        st->held += (uint32_t)len;
    else
        nghttp2_session_consume(s, id, len);
    return 0;
}

/* Ends a request its stream lost before the answer (a client reset, the
 * connection gone): logged 499 as HTTP/1.1 logs a client gone. */
static void drop_request(struct gw_h2_stream *st)
{
    struct gw_request *r = st->req;
    if (r == NULL)
        return;
    st->req = NULL;
    r->stream = NULL;
    if (r->up != NULL || r->up2 != NULL)
        gw_proxy_abort(r);
    if (!r->finished) {
        if (r->status == 0)
            r->status = 499;
        gw_access_log(r, gv_now_us() - r->start_us);
    }
    gw_request_free(r);
}

static void stream_free(struct gw_h2 *h, struct gw_h2_stream *st)
{
    drop_request(st);
    gw_link_remove(&st->link);
    gv_buf_free(&st->out);
    gv_buf_free(&st->hdrs);
    gv_buf_free(&st->trailers);
    gv_buf_free(&st->cookie);
    free(st);
    if (--h->nstreams == 0 && !h->c->closing) {
        struct gw_conn *c = h->c;
        c->since_ms = gv_now_ms();
        gw_link_remove(&c->link);
        gw_link_append(&c->w->idle_conns, &c->link);
    }
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    struct gw_h2 *h = ud;
    struct gw_h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
    (void)code;
    if (st == NULL)
        return 0;
    if (st->held > 0)
        nghttp2_session_consume_connection(s, st->held);
    nghttp2_session_set_stream_user_data(s, id, NULL);
    stream_free(h, st);
    return 0;
}

/* ---- sending ---------------------------------------------------------------- */

static nghttp2_nv nv_make(const char *name, size_t nl, const char *value, size_t vl)
{
    return (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, nl, vl, NGHTTP2_NV_FLAG_NONE};
}

static size_t count_records(const struct gv_buf *b)
{
    size_t n = 0;
    for (size_t at = 0; at + 8 <= b->len; n++) {
        uint32_t lens[2];
        memcpy(lens, b->data + at, sizeof lens);
        at += 8 + (size_t)lens[0] + lens[1];
    }
    return n;
}

/* The header records of b as name-value pairs from nv[first] on. */
static void records_nv(const struct gv_buf *b, nghttp2_nv *nv, size_t first)
{
    for (size_t at = 0, i = first; at + 8 <= b->len; i++) {
        uint32_t lens[2];
        memcpy(lens, b->data + at, sizeof lens);
        nv[i] = nv_make(b->data + at + 8, lens[0], b->data + at + 8 + lens[0], lens[1]);
        at += 8 + (size_t)lens[0] + lens[1];
    }
}

/* Ends the stream with its trailers instead of an END_STREAM DATA frame. */
static bool send_trailers(struct gw_h2_stream *st)
{
    size_t n = count_records(&st->trailers);
    nghttp2_nv stack[NV_STACK] = {0}, *nv = n <= NV_STACK ? stack : malloc(n * sizeof(*nv));
    if (nv == NULL)
        return false;
    records_nv(&st->trailers, nv, 0);
    int rv = nghttp2_submit_trailer(st->h2->s, st->id, nv, n);
    if (nv != stack)
        free(nv);
    gv_buf_free(&st->trailers);
    return rv == 0;
}

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t cap, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
    struct gw_h2_stream *st = src->ptr;
    bool drained;
    (void)s;
    (void)id;
    (void)ud;
    if (st->out.len == st->out_off && !st->eof)
        return NGHTTP2_ERR_DEFERRED;
    size_t n = gv_buf_read_at(&st->out, &st->out_off, buf, cap, &drained);
    if (drained && st->eof) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (st->trailers.len > 0 && send_trailers(st))
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    if (st->paused_up && st->req != NULL && st->out.len - st->out_off < GW_H2_STREAM_OUT_LOW) {
        st->paused_up = false;
        gw_proxy_resume(st->req);
    }
    return (ssize_t)n;
}

static void close_when_done(struct gw_h2 *h)
{
    struct gw_conn *c = h->c;
    if (nghttp2_session_want_read(h->s) || nghttp2_session_want_write(h->s))
        return;
    c->close_after_write = true;
    if (c->out_bytes == 0)
        gw_conn_close(c);
}

/* Sends what nghttp2 has queued while the client's socket keeps up; false
 * when the session failed. */
static bool send_frames(struct gw_h2 *h)
{
    struct gw_conn *c = h->c;
    bool ok = true;
    gv_buf_reset(&h->scratch);
    while (c->out_bytes < GW_HIGH_WATER && h->scratch.len < GW_HIGH_WATER) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(h->s, &p);
        if (n < 0) {
            gv_debug("h2 send: %s", nghttp2_strerror((int)n));
            ok = false;
            break;
        }
        if (n == 0 || gv_buf_append(&h->scratch, p, (size_t)n) != 0)
            break;
    }
    if (h->scratch.len > 0)
        gw_conn_write(c, h->scratch.data, h->scratch.len);
    /* An idle connection keeps no buffer. */
    if (h->scratch.cap > GW_HIGH_WATER || h->nstreams == 0)
        gv_buf_free(&h->scratch);
    return ok;
}

void gw_h2_flush(struct gw_conn *c)
{
    struct gw_h2 *h = c->h2;
    if (h == NULL || h->in_recv || c->closing)
        return;
    if (!send_frames(h))
        c->broken = true;
    if (c->broken)
        gw_conn_close(c);
    else
        close_when_done(h);
}

/* Sends now unless a caller up the stack will: nghttp2 is parsing, or the
 * connection is corked (gw_conn_uncork flushes). */
static void flush_soon(struct gw_h2 *h)
{
    if (!h->in_recv && h->c->w->corked != h->c)
        gw_h2_flush(h->c);
}

void gw_h2_drained(struct gw_conn *c)
{
    gw_h2_flush(c);
}

/* ---- answers ------------------------------------------------------------------ */

static int h2_hdr_add(struct gw_hdr_out *o, const char *name, size_t nl, const char *value,
                      size_t vl)
{
    struct gv_buf *b = o->data;
    uint32_t lens[2] = {(uint32_t)nl, (uint32_t)vl};
    int rv = gv_buf_append(b, lens, sizeof lens);
    rv = rv ? rv : gv_buf_reserve(b, nl);
    if (rv != 0)
        return rv;
    for (size_t i = 0; i < nl; i++) {
        char ch = name[i];
        b->data[b->len++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    return gv_buf_append(b, value, vl);
}

void gw_h2_hdr_out(struct gw_request *r, struct gw_hdr_out *o)
{
    gv_buf_reset(&r->stream->hdrs);
    o->add = h2_hdr_add;
    o->data = &r->stream->hdrs;
}

int gw_h2_respond(struct gw_request *r, int status, bool body)
{
    struct gw_h2_stream *st = r->stream;
    struct gv_buf *b = &st->hdrs;
    size_t n = count_records(b) + 1;
    nghttp2_nv stack[NV_STACK], *nv = n <= NV_STACK ? stack : malloc(n * sizeof(*nv));
    char code[8];
    if (nv == NULL)
        return GV_ENOMEM;
    snprintf(code, sizeof code, "%03d", status);
    nv[0] = nv_make(":status", 7, code, 3);
    records_nv(b, nv, 1);
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_body};
    int rv = nghttp2_submit_response(st->h2->s, st->id, nv, n, body ? &prd : NULL);
    if (nv != stack)
        free(nv);
    gv_buf_reset(b);
    st->responded = rv == 0;
    st->eof = !body;
    r->status = status;
    r->response_started = true;
    /* A bodiless response ends the stream when sent, and its request with
     * it: gw_h2_finish sends it, once the request is let go. */
    if (body)
        flush_soon(st->h2);
    return rv == 0 ? 0 : GV_EPROTO;
}

int gw_h2_body(struct gw_request *r, const char *data, size_t len)
{
    struct gw_h2_stream *st = r->stream;
    if (len == 0)
        return 0;
    if (gv_buf_append(&st->out, data, len) != 0)
        return GV_ENOMEM;
    r->bytes_out += len;
    nghttp2_session_resume_data(st->h2->s, st->id);
    flush_soon(st->h2);
    return 0;
}

int gw_h2_trailer(struct gw_request *r, const char *name, size_t nl, const char *value, size_t vl)
{
    struct gw_hdr_out o = {.add = h2_hdr_add, .data = &r->stream->trailers};
    return gw_hdr_add(&o, name, nl, value, vl);
}

bool gw_h2_backlogged(const struct gw_request *r)
{
    struct gw_h2_stream *st = r->stream;
    if (st->out.len - st->out_off <= GW_H2_STREAM_OUT_HIGH)
        return false;
    st->paused_up = true;
    return true;
}

void gw_h2_finish(struct gw_request *r, bool ok)
{
    struct gw_h2_stream *st = r->stream;
    struct gw_h2 *h = st->h2;
    st->req = NULL;
    r->stream = NULL;
    if (ok && st->responded) {
        st->eof = true;
        nghttp2_session_resume_data(h->s, st->id);
    } else {
        nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    }
    gw_request_free(r);
    flush_soon(h);
}

void gw_h2_hold_body(struct gw_request *r)
{
    r->stream->hold = true;
}

void gw_h2_resume_body(struct gw_request *r)
{
    struct gw_h2_stream *st = r->stream;
    st->hold = false;
    if (st->held > 0) {
        nghttp2_session_consume(st->h2->s, st->id, st->held);
        st->held = 0;
        flush_soon(st->h2);
    }
}

/* ---- the connection ----------------------------------------------------------- */

static void setup(void)
{
    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
    nghttp2_option_new(&options);
    /* Window returns follow the upstream taking the body (gw_h2_resume_body). */
    nghttp2_option_set_no_auto_window_update(options, 1);
    /* Closed streams are not kept for the (deprecated) priority tree. */
    nghttp2_option_set_no_closed_streams(options, 1);
    nghttp2_option_set_max_continuations(options, GW_H2_MAX_CONTINUATIONS);
    nghttp2_option_set_max_settings(options, GW_H2_MAX_SETTINGS);
    nghttp2_option_set_max_outbound_ack(options, GW_H2_MAX_OUTBOUND_ACK);
    nghttp2_option_set_max_deflate_dynamic_table_size(options, 4096);
    /* nghttp2's own reset limit backs up count_reset() with a looser one. */
    nghttp2_option_set_stream_reset_rate_limit(options, 4 * GW_H2_RESET_BURST,
                                               4 * GW_H2_RESET_RATE);
}

int gw_h2_start(struct gw_conn *c)
{
    pthread_once(&once, setup);
    struct gw_h2 *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return GV_ENOMEM;
    h->c = c;
    gw_link_init(&h->streams);
    h->tokens = GW_H2_RESET_BURST;
    h->tokens_ms = gv_now_ms();
    if (nghttp2_session_server_new2(&h->s, callbacks, h, options) != 0) {
        free(h);
        return GV_ENOMEM;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, GW_H2_MAX_STREAMS},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, GW_H2_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, c->w->cfg.max_header_bytes},
        {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 4096},
    };
    if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0 ||
        nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0, GW_H2_CONN_WINDOW) != 0) {
        nghttp2_session_del(h->s);
        free(h);
        return GV_ENOMEM;
    }
    c->h2 = h;
    return 0;
}

void gw_h2_feed(struct gw_conn *c, const char *data, size_t len)
{
    struct gw_h2 *h = c->h2;
    /* A close asked for inside nghttp2's callbacks waits for it to return. */
    h->in_recv = true;
    c->in_parse = true;
    ssize_t n = nghttp2_session_mem_recv(h->s, (const uint8_t *)data, len);
    c->in_parse = false;
    h->in_recv = false;
    if (c->close_pending) {
        c->close_pending = false;
        gw_conn_close(c);
        return;
    }
    if (n < 0) {
        gv_debug("h2 client: %s", nghttp2_strerror((int)n));
        if (!h->goaway)
            nghttp2_session_terminate_session(h->s, n == NGHTTP2_ERR_FLOODED
                                                        ? NGHTTP2_ENHANCE_YOUR_CALM
                                                        : NGHTTP2_PROTOCOL_ERROR);
        h->goaway = true;
    }
    gw_h2_flush(c);
}

void gw_h2_goaway(struct gw_conn *c)
{
    struct gw_h2 *h = c->h2;
    if (h->goaway)
        return;
    h->goaway = true;
    nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->s),
                          NGHTTP2_NO_ERROR, NULL, 0);
    c->close_after_write = true;
    gw_h2_flush(c);
    if (!c->closing && h->nstreams == 0 && c->out_bytes == 0)
        gw_conn_close(c);
}

bool gw_h2_busy(const struct gw_conn *c)
{
    return c->h2->nstreams > 0;
}

void gw_h2_close(struct gw_conn *c)
{
    struct gw_h2 *h = c->h2;
    if (!h->goaway && !c->broken) {
        h->goaway = true;
        nghttp2_session_terminate_session(h->s, NGHTTP2_NO_ERROR);
        send_frames(h);
    }
    while (!gw_link_empty(&h->streams)) {
        struct gw_h2_stream *st = GV_CONTAINER_OF(h->streams.next, struct gw_h2_stream, link);
        nghttp2_session_set_stream_user_data(h->s, st->id, NULL);
        stream_free(h, st);
    }
}

void gw_h2_free(struct gw_h2 *h)
{
    if (h == NULL)
        return;
    nghttp2_session_del(h->s);
    gv_buf_free(&h->scratch);
    free(h);
}
