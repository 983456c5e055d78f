/* h2_upstream.c - HTTP/2 client sessions (h2c, or h2 over TLS) to the
 * targets of http2 and grpc services, streams multiplexed
 * (gateway/h2_upstream.h). */
#include "gateway/h2_upstream.h"
#include "gateway/h2.h"
#include "gateway/http.h"
#include "gateway/pipeline.h"
#include "gateway/tls.h"
#include "gateway/tls_upstream.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESP_HEAD_MAX (64 * 1024)

struct h2up_sess {
    uv_tcp_t tcp; /* first: the handle's memory is the session's */
    uv_connect_t creq;
    struct gw_worker *w;
    nghttp2_session *s;
    struct gw_link link;    /* in w->h2_pool */
    struct gw_link streams; /* every stream not yet freed */
    char address[262];
    char host[256];            /* the target's host, for SNI and verification */
    struct gw_up_tls *tls_ctx; /* the service's TLS context (one ref), or NULL */
    struct gw_tls *tls;        /* the engine once connected over TLS */
    int nstreams;
    bool connected, closing, in_recv;
    uint64_t idle_since_ms;
    size_t out_bytes;
    struct gv_buf scratch;
};

struct gw_h2up_stream {
    struct gw_link link; /* in sess->streams */
    struct h2up_sess *sess;
    struct gw_request *req; /* until the exchange ends */
    int32_t id;
    uv_timer_t timer;
    struct gv_buf body; /* request body waiting for the window */
    size_t body_off;
    bool body_eof;
    bool closed;    /* nghttp2 is done with it (or never had it) */
    bool releasing; /* its timer is closing, then it is freed */
    bool head_done; /* the final response head was relayed */
    bool hold;      /* the client is behind: response bytes are not acknowledged */
    bool counted;   /* holds an in-flight count on its target */
    bool paused_client;
    uint32_t held;
    int service, target;
    uint64_t attempt_us;
    uint64_t deadline_ms; /* from grpc-timeout; 0 when none */
};

struct sess_write {
    uv_write_t req;
    struct h2up_sess *sess;
    size_t len;
    char data[];
};

static nghttp2_session_callbacks *callbacks;
static nghttp2_option *options;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void sess_flush(struct h2up_sess *sess);
static void sess_fail(struct h2up_sess *sess, const char *why);

/* ---- grpc-timeout ---------------------------------------------------------- */

int64_t gw_grpc_timeout_ms(const char *v, size_t len)
{
    int64_t n = 0;
    if (len < 2 || len > 9)
        return -1;
    for (size_t i = 0; i + 1 < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    switch (v[len - 1]) {
    case 'H':
        return n * 3600000;
    case 'M':
        return n * 60000;
    case 'S':
        return n * 1000;
    case 'm':
        return n;
    case 'u':
        return (n + 999) / 1000;
    case 'n':
        return (n + 999999) / 1000000;
    default:
        return -1;
    }
}

/* ---- streams ------------------------------------------------------------------ */

static void on_timer_closed(uv_handle_t *h)
{
    struct gw_h2up_stream *st = h->data;
    gv_buf_free(&st->body);
    free(st);
}

/* Frees the stream once both its request and nghttp2 are done with it. */
static void stream_release(struct gw_h2up_stream *st)
{
    struct h2up_sess *sess = st->sess;
    if (st->req != NULL || !st->closed || st->releasing)
        return;
    st->releasing = true;
    gw_link_remove(&st->link);
    if (--sess->nstreams == 0)
        sess->idle_since_ms = gv_now_ms();
    uv_close((uv_handle_t *)&st->timer, on_timer_closed);
}

/* Ends the stream's part in its request: the in-flight count goes, and
 * judged tells passive health how the target did. */
static struct gw_request *stream_detach(struct gw_h2up_stream *st, bool judged, bool ok)
{
    struct gw_request *r = st->req;
    if (r == NULL)
        return NULL;
    if (st->counted) {
        struct lb_target_state *ts = r->view->snap->states[st->service][st->target];
        st->counted = false;
        atomic_fetch_sub_explicit(&ts->inflight, 1, memory_order_relaxed);
        if (judged)
            gw_proxy_report(r, st->service, st->target, ok, gv_now_us() - st->attempt_us);
    }
    uv_timer_stop(&st->timer);
    st->req = NULL;
    r->up2 = NULL;
    return r;
}

static void cancel(struct gw_h2up_stream *st)
{
    if (st->closed)
        return;
    if (st->id > 0 && !st->sess->closing)
        nghttp2_submit_rst_stream(st->sess->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
    else
        st->closed = true;
}

static void on_stream_timeout(uv_timer_t *t)
{
    struct gw_h2up_stream *st = t->data;
    struct gw_request *r = st->req;
    if (r == NULL)
        return;
    bool deadline = st->deadline_ms != 0 && gv_now_ms() + 1 >= st->deadline_ms;
    if (!st->sess->connected)
        lb_target_connect_failed(r->view->snap->states[st->service][st->target], gv_now_ms());
    cancel(st);
    stream_detach(st, !deadline, false);
    sess_flush(st->sess);
    if (deadline || r->response_started)
        gw_request_fail(r, 504, deadline ? "deadline exceeded" : "upstream timed out");
    else
        gw_proxy_failed(r, 504,
                        st->sess->connected ? "upstream timed out" : "upstream connect timed out");
    stream_release(st);
}

/* The connect timeout until the session is up, then the read timeout,
 * both cut short by a grpc-timeout deadline. */
static void arm_timer(struct gw_h2up_stream *st)
{
    const struct lb_service_spec *svc = &st->req->view->snap->services[st->service];
    uint64_t ms = st->sess->connected ? svc->timeouts.read_ms : svc->timeouts.connect_ms;
    if (st->deadline_ms != 0) {
        uint64_t now = gv_now_ms();
        uint64_t left = st->deadline_ms > now ? st->deadline_ms - now : 1;
        ms = left < ms ? left : ms;
    }
    uv_timer_start(&st->timer, on_stream_timeout, ms, 0);
}

/* The response ended with its stream. */
static void stream_done(struct gw_h2up_stream *st)
{
    struct gw_request *r = st->req;
    if (r == NULL)
        return;
    stream_detach(st, true, r->status < 500 || r->status > 504);
    gw_proxy_relay_end(r);
    gw_request_finish(r, true);
}

/* The stream ended before its response did. */
static void stream_failed(struct gw_h2up_stream *st, const char *why)
{
    struct gw_request *r = stream_detach(st, true, false);
    if (r == NULL)
        return;
    if (st->head_done || r->response_started)
        gw_request_fail(r, 502, why);
    else
        gw_proxy_failed(r, 502, why);
}

/* ---- nghttp2 callbacks ----------------------------------------------------------- */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct gw_h2up_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    (void)ud;
    if (st != NULL && st->req != NULL && !st->head_done) {
        gv_buf_reset(&st->req->resp);
        gw_headers_reset(&st->req->rhdrs);
        st->req->status = 0;
    }
    return 0;
}

static int resp_header(struct gw_request *r, const uint8_t *name, size_t nl, const uint8_t *value,
                       size_t vl)
{
    if (nl == 7 && memcmp(name, ":status", 7) == 0) {
        r->status = 0;
        for (size_t i = 0; i < vl && i < 3; i++)
            r->status = r->status * 10 + (value[i] - '0');
        return 0;
    }
    if (nl > 0 && name[0] == ':')
        return 0;
    if (r->resp.len + nl + vl > RESP_HEAD_MAX ||
        gw_headers_on_field(&r->rhdrs, (uint32_t)r->resp.len, nl, 256) != 0 ||
        gv_buf_append(&r->resp, name, nl) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    gw_headers_on_value(&r->rhdrs, (uint32_t)r->resp.len, vl);
    return gv_buf_append(&r->resp, value, vl) == 0 ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    struct gw_h2up_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    (void)flags;
    (void)ud;
    if (st == NULL || st->req == NULL)
        return 0;
    if (!st->head_done)
        return resp_header(st->req, name, nl, value, vl);
    /* Trailers (gRPC's status): HTTP/2 clients get them, HTTP/1.1 ones not. */
    if (st->req->stream != NULL && nl > 0 && name[0] != ':')
        gw_h2_trailer(st->req, (const char *)name, nl, (const char *)value, vl);
    return 0;
}

static int64_t resp_length(const struct gw_request *r)
{
    for (uint32_t i = 0; i < r->rhdrs.n; i++) {
        const struct gw_header *x = &r->rhdrs.v[i];
        if (!gw_name_eq(r->resp.data + x->name_off, x->name_len, "content-length"))
            continue;
        int64_t n = 0;
        for (uint32_t j = 0; j < x->value_len && j < 18; j++) {
            char c = r->resp.data[x->value_off + j];
            if (c < '0' || c > '9')
                return -1;
            n = n * 10 + (c - '0');
        }
        return n;
    }
    return -1;
}

static void on_head(struct gw_h2up_stream *st, bool end)
{
    struct gw_request *r = st->req;
    gw_headers_done(&r->rhdrs);
    if (r->status < 200)
        return; /* interim: the final head follows */
    st->head_done = true;
    if (gw_proxy_relay_head(r, resp_length(r), end) != 0) {
        cancel(st);
        stream_failed(st, "invalid response from upstream");
    }
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct gw_h2up_stream *st;
    bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    (void)ud;
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
        return 0;
    st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (st == NULL || st->req == NULL)
        return 0;
    arm_timer(st); /* progress */
    if (f->hd.type == NGHTTP2_HEADERS && !st->head_done)
        on_head(st, end);
    if (end && st->req != NULL && st->head_done)
        stream_done(st);
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    struct gw_h2up_stream *st = nghttp2_session_get_stream_user_data(s, id);
    (void)flags;
    (void)ud;
    if (st != NULL && st->req != NULL && st->head_done &&
        gw_proxy_relay_body(st->req, (const char *)data, len))
        st->hold = true;
    if (st != NULL && st->req != NULL && st->hold)
        st->held += (uint32_t)len;
    else
        nghttp2_session_consume(s, id, len);
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    struct gw_h2up_stream *st = nghttp2_session_get_stream_user_data(s, id);
    (void)ud;
    if (st == NULL)
        return 0;
    st->closed = true;
    if (st->req != NULL)
        stream_failed(st, code == NGHTTP2_REFUSED_STREAM ? "upstream refused the stream"
                                                         : "upstream reset the stream");
    if (st->held > 0)
        nghttp2_session_consume_connection(s, st->held);
    st->held = 0;
    stream_release(st);
    return 0;
}

static ssize_t read_req_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t cap,
                             uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct gw_h2up_stream *st = src->ptr;
    bool drained;
    (void)s;
    (void)id;
    (void)ud;
    if (st->body.len == st->body_off && !st->body_eof)
        return NGHTTP2_ERR_DEFERRED;
    size_t n = gv_buf_read_at(&st->body, &st->body_off, buf, cap, &drained);
    if (drained && st->body_eof)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (st->paused_client && st->req != NULL && st->body.len - st->body_off < GW_LOW_WATER) {
        st->paused_client = false;
        gw_proxy_client_resume(st->req);
    }
    return (ssize_t)n;
}

static void setup(void)
{
    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
    nghttp2_option_new(&options);
    nghttp2_option_set_no_auto_window_update(options, 1);
    nghttp2_option_set_max_continuations(options, GW_H2_MAX_CONTINUATIONS);
    nghttp2_option_set_max_settings(options, GW_H2_MAX_SETTINGS);
    nghttp2_option_set_max_outbound_ack(options, GW_H2_MAX_OUTBOUND_ACK);
}

/* ---- sessions --------------------------------------------------------------------- */

static void on_sess_closed(uv_handle_t *h)
{
    struct h2up_sess *sess = h->data;
    gw_tls_free(sess->tls);
    gw_up_tls_unref(sess->tls_ctx);
    nghttp2_session_del(sess->s);
    gv_buf_free(&sess->scratch);
    free(sess);
}

/* Fails every request on the session, then closes it. */
static void sess_fail(struct h2up_sess *sess, const char *why)
{
    if (sess->closing)
        return;
    sess->closing = true;
    gw_link_remove(&sess->link);
    while (!gw_link_empty(&sess->streams)) {
        struct gw_h2up_stream *st =
            GV_CONTAINER_OF(sess->streams.next, struct gw_h2up_stream, link);
        st->closed = true;
        if (st->req != NULL)
            stream_failed(st, why);
        stream_release(st);
    }
    uv_close((uv_handle_t *)&sess->tcp, on_sess_closed);
}

static void on_sess_write(uv_write_t *req, int status)
{
    struct sess_write *sw = (struct sess_write *)req;
    struct h2up_sess *sess = sw->sess;
    sess->out_bytes -= sw->len;
    free(sw);
    if (sess->closing || status < 0)
        return; /* the read side reports a broken connection */
    if (sess->out_bytes < GW_LOW_WATER)
        sess_flush(sess);
}

static int sess_write_raw(struct h2up_sess *sess, const char *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    if (sess->out_bytes == 0) {
        int n = uv_try_write((uv_stream_t *)&sess->tcp, &b, 1);
        if (n > 0 && (size_t)n == len)
            return 0;
        if (n < 0 && n != UV_EAGAIN)
            return n;
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        }
    }
    struct sess_write *sw = malloc(sizeof(*sw) + len);
    if (sw == NULL)
        return GV_ENOMEM;
    sw->sess = sess;
    sw->len = len;
    memcpy(sw->data, data, len);
    b = uv_buf_init(sw->data, (unsigned)len);
    int rv = uv_write(&sw->req, (uv_stream_t *)&sess->tcp, &b, 1, on_sess_write);
    if (rv != 0) {
        free(sw);
        return rv;
    }
    sess->out_bytes += len;
    return 0;
}

/* Sends what the TLS engine has to send (records, alerts). */
static int tls_out(struct h2up_sess *sess)
{
    char buf[16 * 1024];
    size_t n;
    int rv = 0;
    while (rv == 0 && (n = gw_tls_take_output(sess->tls, buf, sizeof buf)) > 0)
        rv = sess_write_raw(sess, buf, n);
    return rv;
}

static int sess_write(struct h2up_sess *sess, const char *data, size_t len)
{
    if (sess->tls == NULL)
        return sess_write_raw(sess, data, len);
    if (gw_tls_write(sess->tls, data, len) != 0)
        return GV_EPROTO;
    return tls_out(sess);
}

static void sess_flush(struct h2up_sess *sess)
{
    int rv = 0;
    if (!sess->connected || sess->closing || sess->in_recv)
        return;
    gv_buf_reset(&sess->scratch);
    while (sess->out_bytes < GW_HIGH_WATER && sess->scratch.len < GW_HIGH_WATER) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(sess->s, &p);
        if (n < 0)
            rv = (int)n;
        if (n <= 0 || gv_buf_append(&sess->scratch, p, (size_t)n) != 0)
            break;
    }
    if (rv == 0 && sess->scratch.len > 0)
        rv = sess_write(sess, sess->scratch.data, sess->scratch.len);
    if (sess->scratch.cap > GW_HIGH_WATER)
        gv_buf_free(&sess->scratch);
    if (rv != 0)
        sess_fail(sess, "upstream write failed");
}

static void on_sess_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct h2up_sess *sess = h->data;
    (void)suggested;
    buf->base = sess->w->read_buf;
    buf->len = sizeof(sess->w->read_buf);
}

static void sess_up(struct h2up_sess *sess);

/* Frames from the target. false when the session failed. */
static bool sess_recv(struct h2up_sess *sess, const char *data, size_t len)
{
    sess->in_recv = true;
    ssize_t n = nghttp2_session_mem_recv(sess->s, (const uint8_t *)data, len);
    sess->in_recv = false;
    if (n < 0) {
        gv_debug("upstream %s: h2: %s", sess->address, nghttp2_strerror((int)n));
        sess_fail(sess, "invalid HTTP/2 from upstream");
        return false;
    }
    return true;
}

/* Plaintext of one read of a TLS session. */
static _Thread_local char tls_plain[96 * 1024];

/* Ciphertext from a TLS target: the handshake (h2 must be chosen by ALPN),
 * then its plaintext to nghttp2. false when the session failed. */
static bool tls_in(struct h2up_sess *sess, const char *data, size_t len)
{
    char why[160];
    int st = GW_TLS_WANT;
    size_t got = 0;
    if (len > 0 && gw_tls_feed(sess->tls, data, len) != 0)
        st = GW_TLS_ERROR;
    while (st != GW_TLS_ERROR && got < sizeof tls_plain &&
           (st = gw_tls_read(sess->tls, tls_plain + got, sizeof tls_plain - got)) > 0)
        got += (size_t)st;
    if (tls_out(sess) != 0 || st == GW_TLS_ERROR || st == GW_TLS_CLOSED) {
        snprintf(why, sizeof why, "upstream TLS: %s",
                 st == GW_TLS_CLOSED ? "closed by the upstream" : gw_tls_failure(sess->tls));
        sess_fail(sess, why);
        return false;
    }
    if (!sess->connected && gw_tls_handshake_done(sess->tls)) {
        if (!gw_tls_alpn_h2(sess->tls)) {
            sess_fail(sess, "upstream TLS: the target did not choose h2 by ALPN");
            return false;
        }
        sess_up(sess);
        if (sess->closing)
            return false;
    }
    return got == 0 || sess_recv(sess, tls_plain, got);
}

static void on_sess_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct h2up_sess *sess = s->data;
    if (nread == 0 || sess->closing)
        return;
    if (nread < 0) {
        sess_fail(sess,
                  nread == UV_EOF ? "upstream closed the connection" : "upstream connection reset");
        return;
    }
    bool ok = sess->tls != NULL ? tls_in(sess, buf->base, (size_t)nread)
                                : sess_recv(sess, buf->base, (size_t)nread);
    if (ok)
        sess_flush(sess);
}

static void on_sess_connect(uv_connect_t *req, int status)
{
    struct h2up_sess *sess = req->data;
    if (sess->closing)
        return;
    if (status < 0) {
        char why[96];
        snprintf(why, sizeof why, "upstream connect failed: %s", uv_strerror(status));
        for (struct gw_link *l = sess->streams.next; l != &sess->streams; l = l->next) {
            struct gw_h2up_stream *st = GV_CONTAINER_OF(l, struct gw_h2up_stream, link);
            if (st->req != NULL)
                lb_target_connect_failed(st->req->view->snap->states[st->service][st->target],
                                         gv_now_ms());
        }
        sess_fail(sess, why);
        return;
    }
    uv_tcp_nodelay(&sess->tcp, 1);
    uv_read_start((uv_stream_t *)&sess->tcp, on_sess_alloc, on_sess_read);
    if (sess->tls_ctx == NULL) {
        sess_up(sess);
        return;
    }
    /* TLS: the ClientHello offers h2 only; the session is up once the
     * handshake is done (tls_in). The connect timeout covers it. */
    sess->tls = gw_up_tls_client(sess->tls_ctx, sess->host, sess->address);
    if (sess->tls == NULL) {
        sess_fail(sess, "out of memory");
        return;
    }
    gw_up_tls_offer_h2(sess->tls);
    tls_in(sess, NULL, 0);
}

/* The transport is ready: frames may go out. */
static void sess_up(struct h2up_sess *sess)
{
    sess->connected = true;
    for (struct gw_link *l = sess->streams.next; l != &sess->streams; l = l->next) {
        struct gw_h2up_stream *st = GV_CONTAINER_OF(l, struct gw_h2up_stream, link);
        if (st->req != NULL)
            arm_timer(st);
    }
    sess_flush(sess);
}

static struct h2up_sess *sess_new(struct gw_worker *w, const struct lb_target_spec *t,
                                  const struct sockaddr_storage *sa, struct gw_up_tls *tls_ctx)
{
    const char *address = t->address;
    struct h2up_sess *sess = calloc(1, sizeof(*sess));
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, GW_H2UP_WINDOW},
    };
    if (sess == NULL)
        return NULL;
    if (nghttp2_session_client_new2(&sess->s, callbacks, sess, options) != 0) {
        free(sess);
        return NULL;
    }
    nghttp2_submit_settings(sess->s, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
    nghttp2_session_set_local_window_size(sess->s, NGHTTP2_FLAG_NONE, 0, GW_H2UP_CONN_WINDOW);
    sess->w = w;
    snprintf(sess->address, sizeof sess->address, "%s", address);
    snprintf(sess->host, sizeof sess->host, "%s", t->host);
    if ((sess->tls_ctx = tls_ctx) != NULL)
        gw_up_tls_ref(tls_ctx);
    gw_link_init(&sess->streams);
    uv_tcp_init(&w->loop, &sess->tcp);
    sess->tcp.data = sess->creq.data = sess;
    gw_link_append(&w->h2_pool, &sess->link);
    int rv =
        sa->ss_family == AF_UNSPEC
            ? UV_EAI_NONAME
            : uv_tcp_connect(&sess->creq, &sess->tcp, (const struct sockaddr *)sa, on_sess_connect);
    if (rv != 0) {
        sess_fail(sess, "upstream connect failed");
        return NULL;
    }
    return sess;
}

/* The least loaded session to address that takes new streams; a new one
 * while it has GW_H2UP_STREAMS and fewer than GW_H2UP_CONNS exist. */
static struct h2up_sess *sess_pick(struct gw_worker *w, const struct lb_target_spec *t,
                                   const struct sockaddr_storage *sa, struct gw_up_tls *tls_ctx)
{
    const char *address = t->address;
    struct h2up_sess *best = NULL;
    int count = 0;
    for (struct gw_link *l = w->h2_pool.next; l != &w->h2_pool; l = l->next) {
        struct h2up_sess *s = GV_CONTAINER_OF(l, struct h2up_sess, link);
        if (s->tls_ctx != tls_ctx || strcmp(s->address, address) != 0 ||
            !nghttp2_session_check_request_allowed(s->s))
            continue;
        count++;
        if (best == NULL || s->nstreams < best->nstreams)
            best = s;
    }
    if (best != NULL && (best->nstreams < GW_H2UP_STREAMS || count >= GW_H2UP_CONNS))
        return best;
    return sess_new(w, t, sa, tls_ctx);
}

/* ---- requests ----------------------------------------------------------------------- */

static int rec_add(struct gw_hdr_out *o, const char *name, size_t nl, const char *value, size_t vl)
{
    struct gv_buf *b = o->data;
    uint32_t lens[2] = {(uint32_t)nl, (uint32_t)vl};
    int rv = gv_buf_append(b, lens, sizeof lens);
    rv = rv ? rv : gv_buf_reserve(b, nl);
    if (rv != 0)
        return rv;
    for (size_t i = 0; i < nl; i++)
        b->data[b->len++] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] + 32) : name[i];
    return gv_buf_append(b, value, vl);
}

static nghttp2_nv nv_make(const char *name, size_t nl, const char *value, size_t vl)
{
    return (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, nl, vl, NGHTTP2_NV_FLAG_NONE};
}

/* The request's HEADERS: pseudo-headers first, Host as :authority, then
 * the same headers an HTTP/1.1 upstream gets, TE: trailers for gRPC. */
static int submit(struct gw_h2up_stream *st, struct gv_buf *recs, struct gv_buf *target)
{
    struct gw_request *r = st->req;
    struct gw_hdr_out out = {.add = rec_add, .data = recs};
    const char *method = llhttp_method_name((llhttp_method_t)r->method), *auth = "";
    size_t alen = 0, n = 4, cap;
    size_t tl;
    const char *te = gw_request_header(r, "te", &tl);
    bool grpc = r->view->snap->services[st->service].protocol == LB_PROTO_GRPC;
    int rv = gw_proxy_up_h2_head(r, &out, target);
    if (rv == 0 && (grpc || (te != NULL && gw_token_list_has(te, tl, "trailers"))))
        rv = gw_hdr_add(&out, "te", 2, "trailers", 8);
    if (rv == 0 && r->has_length) {
        char cl[24];
        int cn = snprintf(cl, sizeof cl, "%llu", (unsigned long long)r->content_length);
        rv = gw_hdr_add(&out, "content-length", 14, cl, (size_t)cn);
    }
    if (rv != 0)
        return rv;
    cap = 4;
    for (size_t at = 0; at + 8 <= recs->len; cap++) {
        uint32_t lens[2];
        memcpy(lens, recs->data + at, sizeof lens);
        at += 8 + (size_t)lens[0] + lens[1];
    }
    nghttp2_nv *nv = calloc(cap, sizeof(*nv));
    if (nv == NULL)
        return GV_ENOMEM;
    for (size_t at = 0; at + 8 <= recs->len;) {
        uint32_t lens[2];
        memcpy(lens, recs->data + at, sizeof lens);
        const char *name = recs->data + at + 8, *val = name + lens[0];
        if (lens[0] == 4 && memcmp(name, "host", 4) == 0) {
            auth = val;
            alen = lens[1];
        } else {
            nv[n++] = nv_make(name, lens[0], val, lens[1]);
        }
        at += 8 + (size_t)lens[0] + lens[1];
    }
    nv[0] = nv_make(":method", 7, method, strlen(method));
    nv[1] = st->sess->tls_ctx != NULL ? nv_make(":scheme", 7, "https", 5)
                                      : nv_make(":scheme", 7, "http", 4);
    nv[2] = nv_make(":authority", 10, auth, alen);
    nv[3] = nv_make(":path", 5, target->data, target->len);
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_req_body};
    bool body = !r->body_done || st->body.len > 0;
    int32_t id = nghttp2_submit_request(st->sess->s, NULL, nv, n, body ? &prd : NULL, st);
    free(nv);
    if (id < 0)
        return GV_EPROTO;
    st->id = id;
    return 0;
}

int gw_h2up_attempt(struct gw_request *r)
{
    struct gw_worker *w = r->worker;
    const struct gw_snapshot *snap = r->view->snap;
    const struct lb_target_spec *t = &snap->services[r->service].targets[r->target];
    pthread_once(&once, setup);
    struct gw_up_tls *tls_ctx = snap->up_tls != NULL ? snap->up_tls[r->service] : NULL;
    struct h2up_sess *sess = sess_pick(w, t, &snap->addrs[r->service][r->target], tls_ctx);
    struct gw_h2up_stream *st = sess != NULL ? calloc(1, sizeof(*st)) : NULL;
    struct gv_buf recs, target;
    size_t n;
    if (st == NULL)
        return GV_ENOMEM;
    st->sess = sess;
    st->req = r;
    st->service = r->service;
    st->target = r->target;
    st->attempt_us = gv_now_us();
    if (r->up_first_us == 0)
        r->up_first_us = st->attempt_us;
    st->counted = true;
    uv_timer_init(&w->loop, &st->timer);
    st->timer.data = st;
    gw_link_append(&sess->streams, &st->link);
    sess->nstreams++;
    atomic_fetch_add_explicit(&snap->states[r->service][r->target]->inflight, 1,
                              memory_order_relaxed);
    r->up2 = st;
    const char *gt = gw_request_header(r, "grpc-timeout", &n);
    int64_t ms = gt != NULL ? gw_grpc_timeout_ms(gt, n) : -1;
    if (ms >= 0)
        st->deadline_ms = gv_now_ms() + (uint64_t)(ms > 0 ? ms : 1);
    /* Body bytes that came before the upstream was chosen. */
    st->body = r->body_q;
    gv_buf_init(&r->body_q);
    r->body_sent += st->body.len;
    st->body_eof = r->body_done;
    gv_buf_init(&recs);
    gv_buf_init(&target);
    int rv = submit(st, &recs, &target);
    gv_buf_free(&recs);
    gv_buf_free(&target);
    if (rv != 0) {
        stream_detach(st, false, false);
        st->closed = true;
        stream_release(st);
        return rv;
    }
    arm_timer(st);
    sess_flush(sess);
    return 0;
}

void gw_h2up_body(struct gw_request *r, const char *data, size_t len)
{
    struct gw_h2up_stream *st = r->up2;
    if (gv_buf_append(&st->body, data, len) != 0) {
        gw_request_fail(r, 500, "out of memory");
        return;
    }
    r->body_sent += len;
    if (st->body.len - st->body_off > GW_HIGH_WATER) {
        st->paused_client = true;
        gw_proxy_client_pause(r);
    }
    nghttp2_session_resume_data(st->sess->s, st->id);
    sess_flush(st->sess);
}

void gw_h2up_body_done(struct gw_request *r)
{
    struct gw_h2up_stream *st = r->up2;
    st->body_eof = true;
    nghttp2_session_resume_data(st->sess->s, st->id);
    sess_flush(st->sess);
}

void gw_h2up_abort(struct gw_request *r)
{
    struct gw_h2up_stream *st = r->up2;
    cancel(st);
    stream_detach(st, false, false);
    sess_flush(st->sess);
    stream_release(st);
}

void gw_h2up_resume(struct gw_request *r)
{
    struct gw_h2up_stream *st = r->up2;
    st->hold = false;
    if (st->held > 0 && !st->closed) {
        nghttp2_session_consume(st->sess->s, st->id, st->held);
        st->held = 0;
        sess_flush(st->sess);
    }
}

void gw_h2up_tick(struct gw_worker *w, uint64_t now_ms)
{
    for (struct gw_link *l = w->h2_pool.next; l != &w->h2_pool;) {
        struct h2up_sess *sess = GV_CONTAINER_OF(l, struct h2up_sess, link);
        l = l->next;
        if (sess->nstreams > 0 || !sess->connected)
            continue;
        if (now_ms - sess->idle_since_ms >= GW_POOL_IDLE_MS ||
            !nghttp2_session_check_request_allowed(sess->s))
            sess_fail(sess, "idle");
    }
}

void gw_h2up_close_all(struct gw_worker *w)
{
    while (!gw_link_empty(&w->h2_pool))
        sess_fail(GV_CONTAINER_OF(w->h2_pool.next, struct h2up_sess, link), "shutting down");
}
