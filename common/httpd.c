/* httpd.c - the HTTP/1.1 server core (see httpd.h): connections and their
 * timer, the llhttp request parser, and the answer writer. */
#include "common/httpd.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"

#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define READ_SIZE       (64 * 1024)
#define LINGER_MS       2000
#define DEFAULT_BACKLOG 128

/* Where a connection is in its life. Reading is on in the first three, in
 * C_LINGER (to drop input) and in C_TUNNEL unless paused. */
enum conn_state {
    C_IDLE,   /* between requests: nothing of the next one yet */
    C_HEAD,   /* a request head is arriving */
    C_BODY,   /* its body is arriving */
    C_BUSY,   /* the handler has the request, or its answer is being written */
    C_TUNNEL, /* upgraded: bytes go to the tunnel ops */
    C_LINGER, /* FIN sent after the last answer: input is dropped until EOF */
    C_CLOSED, /* uv_close called; freed once both handles have closed */
};

struct hdr {
    uint32_t name, nlen, value, vlen; /* offsets into the request's head */
    bool trailer;
};

struct gv_httpd_req {
    struct gv_httpd *srv;
    struct gv_httpd_conn *conn; /* NULL once a held request's connection closed */
    struct gv_buf head;         /* target, names and values, each NUL-terminated */
    struct hdr *hv;
    unsigned nh, hcap;
    bool field_open; /* hv[nh - 1]'s name is arriving */
    bool value_open; /* hv[nh - 1]'s value has not been closed yet */
    struct gv_buf body;
    uint64_t body_bytes;
    size_t head_bytes;
    uint32_t path_off, path_len, query_off, query_len;
    int method;
    bool head_done; /* headers complete: later fields are trailers */
    bool http10;
    bool keep_alive;
    bool upgrade;
    bool pending; /* with the handler, not answered yet */
    bool held;    /* gv_httpd_hold */
    bool chunked; /* the streamed answer is chunked */
    int64_t left; /* bytes of a Content-Length stream still to come */
    void (*pull)(struct gv_httpd_req *r);
    void (*defer_cb)(struct gv_httpd_req *r);
    void (*close_cb)(struct gv_httpd_req *r); /* gv_httpd_on_close */
    max_align_t ctx[];                        /* ops->ctx_size bytes for the handler */
};

struct gv_httpd_conn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* the state's timeout, a deferred answer, or the linger */
    uv_shutdown_t sreq;
    struct gv_httpd *srv;
    struct gv_httpd_conn *prev, *next;
    llhttp_t parser;
    struct gv_httpd_req *req;
    struct gv_buf in; /* input read but not taken yet (a request is being answered) */
    void *eng;        /* the transport's engine, or NULL on plain TCP */
    enum conn_state state;
    int error;   /* the status a parse error is answered with (0: 400; -1: none) */
    int closing; /* handles not closed yet */
    bool reading;
    bool close_after; /* close once the current answer has been written */
    bool paused;      /* tunnel: reading stopped by the handler */
    const struct gv_httpd_tunnel_ops *tops;
    void *targ;
};

struct gv_httpd {
    uv_loop_t *loop;
    uv_tcp_t listener;
    const struct gv_httpd_ops *ops;
    void *arg;
    const struct gv_httpd_transport *tr;
    void *tr_arg;
    struct gv_httpd_limits lim;
    char *extra;
    llhttp_settings_t settings;
    struct gv_httpd_conn *conns;
    unsigned nconns;   /* connections not freed yet */
    unsigned nheld;    /* held requests whose connection has gone */
    unsigned nrefused; /* over-cap sockets still closing */
    bool stopping;
    bool listener_closed;
    void (*done)(void *arg);
    void *done_arg;
    char rbuf[READ_SIZE];  /* one read at a time on the loop */
    char plain[READ_SIZE]; /* what the transport decrypts from it */
};

/* Write records: each owns its bytes; flags say what follows its end. */
enum { W_END = 1, W_PULL = 2, W_TUNNEL = 4 };

struct hwrite {
    uv_write_t req;
    struct gv_httpd_conn *c;
    unsigned flags;
    char data[];
};

static void conn_close(struct gv_httpd_conn *c);
static void take_input(struct gv_httpd_conn *c, const char *data, size_t len);
static void sync_reading(struct gv_httpd_conn *c);
static void error_answer(struct gv_httpd_conn *c, int status, const char *msg);

/* ---- the server's life -------------------------------------------------- */

static void maybe_done(struct gv_httpd *s)
{
    if (!s->stopping || !s->listener_closed || s->nconns > 0 || s->nheld > 0 || s->nrefused > 0)
        return;
    void (*done)(void *) = s->done;
    void *arg = s->done_arg;
    free(s->extra);
    free(s);
    if (done != NULL)
        done(arg);
}

static void req_free(struct gv_httpd_req *r)
{
    if (r == NULL)
        return;
    gv_buf_free(&r->head);
    gv_buf_free(&r->body);
    free(r->hv);
    free(r);
}

/* ---- connections -------------------------------------------------------- */

/* A request the handler still has outlives its connection only when held. */
static void release_req(struct gv_httpd_conn *c)
{
    struct gv_httpd_req *r = c->req;
    c->req = NULL;
    if (r != NULL && r->close_cb != NULL) {
        void (*cb)(struct gv_httpd_req *) = r->close_cb;
        r->close_cb = NULL;
        cb(r);
    }
    if (r != NULL && r->pending && r->held) {
        r->conn = NULL;
        c->srv->nheld++;
    } else {
        req_free(r);
    }
}

/* The last of the connection: what it still has is let go of here, in a
 * close callback, so no handler call ever sees its memory go. */
static void on_conn_closed(uv_handle_t *h)
{
    struct gv_httpd_conn *c = h->data;
    if (--c->closing > 0)
        return;
    struct gv_httpd *s = c->srv;
    release_req(c);
    if (c->tops != NULL && c->tops->on_close != NULL)
        c->tops->on_close(c->targ);
    if (c->eng != NULL)
        s->tr->close(c->eng);
    gv_buf_free(&c->in);
    free(c);
    s->nconns--;
    maybe_done(s);
}

/* Closes at once (queued writes are cancelled); safe to call again. */
static void conn_close(struct gv_httpd_conn *c)
{
    if (c->state == C_CLOSED)
        return;
    c->state = C_CLOSED;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->srv->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->closing = 2;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void on_timer(uv_timer_t *t);

static void arm(struct gv_httpd_conn *c, uint64_t ms)
{
    if (ms > 0)
        uv_timer_start(&c->timer, on_timer, ms, 0);
    else
        uv_timer_stop(&c->timer);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    if (status < 0)
        conn_close(req->data);
}

/* Sends FIN after the queued writes and drops input until the client closes
 * too (or LINGER_MS pass): closing with unread input would send a reset that
 * can destroy the last answer before the client has read it. */
static void conn_linger(struct gv_httpd_conn *c)
{
    if (c->state == C_CLOSED || c->state == C_LINGER)
        return;
    c->state = C_LINGER;
    gv_buf_reset(&c->in);
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    arm(c, LINGER_MS);
    sync_reading(c);
}

static void on_timer(uv_timer_t *t)
{
    struct gv_httpd_conn *c = t->data;
    void (*cb)(struct gv_httpd_req *);
    switch (c->state) {
    case C_HEAD:
        error_answer(c, 408, "request head not received in time");
        break;
    case C_BODY:
        error_answer(c, 408, "request body not received in time");
        break;
    case C_BUSY:
        cb = c->req != NULL ? c->req->defer_cb : NULL;
        if (cb != NULL) {
            c->req->defer_cb = NULL;
            cb(c->req);
        }
        break;
    case C_IDLE:
    case C_LINGER:
    case C_TUNNEL:
        conn_close(c);
        break;
    case C_CLOSED:
        break;
    }
}

/* ---- writing ------------------------------------------------------------- */

static void answer_done(struct gv_httpd_conn *c);

static void on_written(uv_write_t *w, int status)
{
    struct hwrite *hw = (struct hwrite *)w;
    struct gv_httpd_conn *c = hw->c;
    unsigned flags = hw->flags;
    free(hw);
    if (c->state == C_CLOSED)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (flags & W_END)
        answer_done(c);
    else if ((flags & W_PULL) && c->state == C_BUSY && c->req->pull != NULL)
        c->req->pull(c->req);
    else if ((flags & W_TUNNEL) && c->state == C_TUNNEL && c->tops->on_written != NULL)
        c->tops->on_written(c->targ, c);
}

/* One record holding n bytes, for the socket. */
static struct hwrite *record(struct gv_httpd_conn *c, size_t n, unsigned flags)
{
    struct hwrite *w = malloc(sizeof(*w) + n + 1);
    if (w != NULL) {
        w->c = c;
        w->flags = flags;
    }
    return w;
}

/* The bytes of bufs as one record: copied, or encrypted by the transport. */
static struct hwrite *record_of(struct gv_httpd_conn *c, const uv_buf_t *bufs, unsigned n,
                                unsigned flags, size_t *len)
{
    const struct gv_httpd_transport *t = c->srv->tr;
    struct hwrite *w;
    *len = 0;
    if (c->eng == NULL) {
        for (unsigned i = 0; i < n; i++)
            *len += bufs[i].len;
        if ((w = record(c, *len, flags)) == NULL)
            return NULL;
        for (size_t i = 0, off = 0; i < n; off += bufs[i].len, i++)
            memcpy(w->data + off, bufs[i].base, bufs[i].len);
        return w;
    }
    for (unsigned i = 0; i < n; i++)
        if (bufs[i].len > 0 && t->write(c->eng, bufs[i].base, bufs[i].len) < 0)
            return NULL;
    if ((w = record(c, t->pending(c->eng), flags)) != NULL)
        *len = t->take_output(c->eng, w->data, t->pending(c->eng));
    return w;
}

/* Queues bufs; on failure the connection is closed. 0 or a negative error. */
static int send_bufs(struct gv_httpd_conn *c, const uv_buf_t *bufs, unsigned n, unsigned flags)
{
    size_t len;
    struct hwrite *w = record_of(c, bufs, n, flags, &len);
    int rc = GV_ENOMEM;
    if (w != NULL) {
        uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
        rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
        if (rc != 0)
            free(w);
    }
    if (rc != 0)
        conn_close(c);
    return rc;
}

static int send_buf(struct gv_httpd_conn *c, const void *data, size_t len, unsigned flags)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    return send_bufs(c, &b, 1, flags);
}

/* Handshake records and alerts the transport has to send. */
static void flush_transport(struct gv_httpd_conn *c)
{
    if (c->eng != NULL && c->srv->tr->pending(c->eng) > 0)
        send_bufs(c, NULL, 0, 0);
}

/* ---- answers --------------------------------------------------------------- */

static bool bodiless(int status)
{
    return status < 200 || status == 204 || status == 304;
}

/* Status line, headers, framing (length >= 0: Content-Length; -1: chunked;
 * -2: none) and Connection, into b. */
static int put_head(struct gv_httpd_conn *c, struct gv_buf *b, int status, const char *headers,
                    int64_t length)
{
    const struct gv_httpd_req *r = c->req;
    bool http10 = r != NULL && r->http10;
    int rc = gv_buf_printf(b, "HTTP/1.1 %d %s\r\n%s%s", status, gv_http_reason(status),
                           c->srv->extra ? c->srv->extra : "", headers ? headers : "");
    if (rc == 0 && !bodiless(status) && length >= 0)
        rc = gv_buf_printf(b, "Content-Length: %lld\r\n", (long long)length);
    else if (rc == 0 && !bodiless(status) && length == -1)
        rc = gv_buf_puts(b, "Transfer-Encoding: chunked\r\n");
    if (rc == 0 && c->close_after)
        rc = gv_buf_puts(b, "Connection: close\r\n");
    else if (rc == 0 && http10)
        rc = gv_buf_puts(b, "Connection: keep-alive\r\n");
    return rc == 0 ? gv_buf_puts(b, "\r\n") : rc;
}

/* msg as a JSON string's contents into b. */
static void put_json_text(struct gv_buf *b, const char *msg)
{
    for (const char *p = msg; *p != '\0'; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\')
            gv_buf_printf(b, "\\%c", ch);
        else if (ch < 0x20)
            gv_buf_printf(b, "\\u%04x", ch);
        else
            gv_buf_append(b, p, 1);
    }
}

/* The core's own answers: {"error": msg}, then closing. Parsing has stopped
 * (a request cut short), so no further request is read. */
static void error_answer(struct gv_httpd_conn *c, int status, const char *msg)
{
    struct gv_buf body, b;
    gv_buf_init(&body);
    gv_buf_init(&b);
    gv_buf_puts(&body, "{\"error\":\"");
    put_json_text(&body, msg);
    gv_buf_puts(&body, "\"}\n");
    if (c->req != NULL)
        c->req->pending = false;
    c->state = C_BUSY;
    c->close_after = true;
    sync_reading(c);
    if (put_head(c, &b, status, "Content-Type: application/json\r\n", (int64_t)body.len) != 0 ||
        gv_buf_append(&b, body.data, body.len) != 0)
        conn_close(c);
    else
        send_buf(c, b.data, b.len, W_END);
    gv_buf_free(&body);
    gv_buf_free(&b);
}

/* The connection of a request that may be answered now; NULL after freeing
 * a held request whose client has gone. */
static struct gv_httpd_conn *answering(struct gv_httpd_req *r)
{
    struct gv_httpd_conn *c = r->conn;
    if (c == NULL) {
        struct gv_httpd *s = r->srv;
        req_free(r);
        s->nheld--;
        maybe_done(s);
        return NULL;
    }
    r->pending = false;
    r->defer_cb = NULL;
    if (c->state == C_CLOSED)
        return NULL; /* freed with the connection */
    if (c->srv->stopping)
        c->close_after = true;
    return c;
}

int gv_httpd_respond(struct gv_httpd_req *r, int status, const char *headers, const void *body,
                     size_t len)
{
    if (!r->pending)
        return GV_EINVAL;
    struct gv_httpd_conn *c = answering(r);
    if (c == NULL)
        return 0;
    struct gv_buf b;
    gv_buf_init(&b);
    int rc = put_head(c, &b, status, headers, (int64_t)len);
    if (rc == 0 && r->method != HTTP_HEAD && !bodiless(status))
        rc = gv_buf_append(&b, body, len);
    if (rc == 0)
        rc = send_buf(c, b.data, b.len, W_END);
    else
        conn_close(c);
    gv_buf_free(&b);
    return rc;
}

int gv_httpd_stream(struct gv_httpd_req *r, int status, const char *headers, int64_t length,
                    void (*pull)(struct gv_httpd_req *r))
{
    if (!r->pending)
        return GV_EINVAL;
    struct gv_httpd_conn *c = answering(r);
    if (c == NULL)
        return 0;
    bool none = r->method == HTTP_HEAD || bodiless(status) || length == 0;
    r->chunked = length < 0 && !r->http10;
    r->left = length;
    r->pull = pull;
    if (length < 0 && r->http10)
        c->close_after = true; /* the end of the body is the close */
    struct gv_buf b;
    gv_buf_init(&b);
    int rc = put_head(c, &b, status, headers, length < 0 ? (r->chunked ? -1 : -2) : length);
    if (rc == 0)
        rc = send_buf(c, b.data, b.len, none ? W_END : W_PULL);
    else
        conn_close(c);
    gv_buf_free(&b);
    return rc;
}

int gv_httpd_stream_write(struct gv_httpd_req *r, const void *data, size_t len)
{
    struct gv_httpd_conn *c = r->conn;
    if (c == NULL || c->state != C_BUSY || len == 0 || (r->left >= 0 && (uint64_t)r->left < len))
        return GV_EINVAL;
    if (!r->chunked) {
        unsigned flags = W_PULL;
        if (r->left >= 0 && (r->left -= (int64_t)len) == 0)
            flags = W_END;
        return send_buf(c, data, len, flags);
    }
    char head[24];
    int hl = snprintf(head, sizeof(head), "%zx\r\n", len);
    uv_buf_t bufs[3] = {uv_buf_init(head, (unsigned)hl), uv_buf_init((char *)data, (unsigned)len),
                        uv_buf_init("\r\n", 2)};
    return send_bufs(c, bufs, 3, W_PULL);
}

int gv_httpd_stream_end(struct gv_httpd_req *r)
{
    static const char last[] = "0\r\n\r\n";
    struct gv_httpd_conn *c = r->conn;
    if (c == NULL || c->state != C_BUSY)
        return GV_EINVAL;
    if (r->chunked)
        return send_buf(c, last, sizeof(last) - 1, W_END);
    if (r->left < 0) { /* close-delimited (HTTP/1.0): the close ends it */
        answer_done(c);
        return 0;
    }
    conn_close(c); /* a Content-Length answer cut short cannot go on */
    return GV_EINVAL;
}

void gv_httpd_on_close(struct gv_httpd_req *r, void (*cb)(struct gv_httpd_req *r))
{
    r->close_cb = cb;
}

void gv_httpd_hold(struct gv_httpd_req *r)
{
    r->held = true;
}

void gv_httpd_defer(struct gv_httpd_req *r, uint64_t ms, void (*cb)(struct gv_httpd_req *r))
{
    struct gv_httpd_conn *c = r->conn;
    if (c == NULL || c->state != C_BUSY)
        return;
    r->defer_cb = cb;
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* ---- tunnels ------------------------------------------------------------- */

struct gv_httpd_conn *gv_httpd_upgrade(struct gv_httpd_req *r, const char *headers,
                                       const struct gv_httpd_tunnel_ops *ops, void *arg)
{
    if (!r->pending)
        return NULL;
    struct gv_httpd_conn *c = answering(r);
    if (c == NULL)
        return NULL;
    struct gv_buf b;
    gv_buf_init(&b);
    c->close_after = false;
    int rc = gv_buf_printf(&b, "HTTP/1.1 101 %s\r\n%s%s\r\n", gv_http_reason(101),
                           c->srv->extra ? c->srv->extra : "", headers ? headers : "");
    rc = rc == 0 ? send_buf(c, b.data, b.len, 0) : (conn_close(c), rc);
    gv_buf_free(&b);
    if (rc != 0)
        return NULL;
    c->state = C_TUNNEL;
    c->tops = ops;
    c->targ = arg;
    arm(c, 0);
    if (c->in.len > 0) { /* the client's first bytes, read with the request */
        struct gv_buf rest = c->in;
        gv_buf_init(&c->in);
        take_input(c, rest.data, rest.len);
        gv_buf_free(&rest);
    }
    sync_reading(c);
    return c;
}

int gv_httpd_tunnel_write(struct gv_httpd_conn *c, const void *data, size_t len)
{
    if (c->state != C_TUNNEL)
        return GV_EINVAL;
    return len > 0 ? send_buf(c, data, len, W_TUNNEL) : 0;
}

size_t gv_httpd_tunnel_queued(const struct gv_httpd_conn *c)
{
    return uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp);
}

void gv_httpd_tunnel_pause(struct gv_httpd_conn *c, bool paused)
{
    if (c->state != C_TUNNEL || c->paused == paused)
        return;
    c->paused = paused;
    if (!paused && c->in.len > 0) {
        struct gv_buf rest = c->in;
        gv_buf_init(&c->in);
        take_input(c, rest.data, rest.len);
        gv_buf_free(&rest);
    }
    sync_reading(c);
}

void gv_httpd_tunnel_close(struct gv_httpd_conn *c)
{
    if (c->state == C_TUNNEL)
        conn_linger(c);
}

/* ---- the request parser -------------------------------------------------- */

#define CONN(p) ((struct gv_httpd_conn *)(p)->data)

/* Counts head bytes against the limit; false (431) when over it. */
static bool head_room(struct gv_httpd_conn *c, size_t len)
{
    struct gv_httpd_req *r = c->req;
    size_t max = c->srv->lim.max_head_bytes;
    r->head_bytes += len;
    if (max > 0 && r->head_bytes > max) {
        c->error = 431;
        return false;
    }
    return true;
}

/* Out of memory in a parser callback: answered 500. */
static int oom(struct gv_httpd_conn *c)
{
    c->error = 500;
    return -1;
}

static int head_add(struct gv_httpd_conn *c, const char *at, size_t len)
{
    if (!head_room(c, len))
        return -1;
    return gv_buf_append(&c->req->head, at, len) == 0 ? 0 : oom(c);
}

static int head_nul(struct gv_httpd_req *r)
{
    return gv_buf_append(&r->head, "", 1) == 0 ? 0 : -1;
}

static struct gv_httpd_req *req_new(struct gv_httpd *s)
{
    struct gv_httpd_req *r = calloc(1, sizeof(*r) + s->ops->ctx_size);
    if (r != NULL) {
        r->srv = s;
        gv_buf_init(&r->head);
        gv_buf_init(&r->body);
    }
    return r;
}

/* A new request: reuses the connection's request memory. */
static int on_message_begin(llhttp_t *p)
{
    struct gv_httpd_conn *c = CONN(p);
    struct gv_httpd_req *r = c->req;
    if (r == NULL && (r = c->req = req_new(c->srv)) == NULL)
        return oom(c);
    r->conn = c;
    c->error = 0;
    gv_buf_reset(&r->head);
    gv_buf_reset(&r->body);
    r->nh = 0;
    r->field_open = r->value_open = r->head_done = r->held = r->pending = false;
    r->body_bytes = r->head_bytes = 0;
    r->pull = r->defer_cb = r->close_cb = NULL;
    memset(r->ctx, 0, c->srv->ops->ctx_size);
    if (c->state == C_IDLE) {
        c->state = C_HEAD;
        arm(c, c->srv->lim.head_timeout_ms);
    }
    return 0;
}

static int on_method(llhttp_t *p, const char *at, size_t len)
{
    return head_room(CONN(p), len) ? 0 : -1;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    return head_add(CONN(p), at, len);
}

/* Splits the target into path and query; an absolute-form target
 * ("http://host/p?q") keeps its path part. */
static int on_url_complete(llhttp_t *p)
{
    struct gv_httpd_conn *c = CONN(p);
    struct gv_httpd_req *r = c->req;
    if (head_nul(r) != 0)
        return oom(c);
    const char *t = r->head.data;
    size_t len = r->head.len - 1, start = 0;
    const char *scheme = t[0] != '/' ? strstr(t, "://") : NULL;
    if (scheme != NULL) {
        start = (size_t)(scheme + 3 - t);
        start += strcspn(t + start, "/?");
    }
    size_t plen = strcspn(t + start, "?");
    r->path_off = (uint32_t)start;
    r->path_len = (uint32_t)plen;
    r->query_off = (uint32_t)(start + plen + (start + plen < len));
    r->query_len = (uint32_t)(len - r->query_off);
    return 0;
}

/* Ends the previous header's value (llhttp may not call back for an empty
 * one). */
static int close_value(struct gv_httpd_conn *c)
{
    struct gv_httpd_req *r = c->req;
    if (!r->value_open)
        return 0;
    r->value_open = false;
    r->hv[r->nh - 1].vlen = (uint32_t)(r->head.len - r->hv[r->nh - 1].value);
    return head_nul(r) == 0 ? 0 : oom(c);
}

static int new_header(struct gv_httpd_conn *c)
{
    struct gv_httpd_req *r = c->req;
    unsigned max = c->srv->lim.max_headers;
    if (close_value(c) != 0)
        return -1;
    if (max > 0 && r->nh >= max) {
        c->error = 431;
        return -1;
    }
    if (r->nh == r->hcap) {
        unsigned cap = r->hcap ? r->hcap * 2 : 16;
        struct hdr *v = realloc(r->hv, cap * sizeof(*v));
        if (v == NULL)
            return oom(c);
        r->hv = v;
        r->hcap = cap;
    }
    r->hv[r->nh++] = (struct hdr){.name = (uint32_t)r->head.len, .trailer = r->head_done};
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct gv_httpd_conn *c = CONN(p);
    if (!c->req->field_open && new_header(c) != 0)
        return -1;
    c->req->field_open = true;
    return head_add(c, at, len);
}

static int on_header_field_complete(llhttp_t *p)
{
    struct gv_httpd_conn *c = CONN(p);
    struct gv_httpd_req *r = c->req;
    struct hdr *h = &r->hv[r->nh - 1];
    h->nlen = (uint32_t)(r->head.len - h->name);
    r->field_open = false;
    if (head_nul(r) != 0)
        return oom(c);
    h->value = (uint32_t)r->head.len;
    r->value_open = true;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    return head_add(CONN(p), at, len);
}

static int on_header_value_complete(llhttp_t *p)
{
    return close_value(CONN(p));
}

/* "HTTP/1.1 100 Continue" for a client that waits for it before its body. */
static void send_continue(struct gv_httpd_conn *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    const char *expect = gv_httpd_header(c->req, "expect");
    if (expect != NULL && strcasecmp(expect, "100-continue") == 0 && !c->req->http10)
        send_buf(c, cont, sizeof(cont) - 1, 0);
}

static int on_headers_complete(llhttp_t *p)
{
    struct gv_httpd_conn *c = CONN(p);
    struct gv_httpd_req *r = c->req;
    uint64_t max = c->srv->lim.max_body_bytes;
    if (close_value(c) != 0)
        return -1;
    r->head_done = true;
    r->method = llhttp_get_method(p);
    r->http10 = llhttp_get_http_major(p) == 1 && llhttp_get_http_minor(p) == 0;
    r->upgrade = llhttp_get_upgrade(p) != 0;
    if (max > 0 && (p->flags & F_CONTENT_LENGTH) && p->content_length > max) {
        c->error = 413; /* said before a byte of it came: no need to read it */
        return -1;
    }
    send_continue(c);
    if (c->state == C_CLOSED)
        return -1;
    c->state = C_BODY;
    arm(c, c->srv->lim.body_timeout_ms);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct gv_httpd_conn *c = CONN(p);
    struct gv_httpd_req *r = c->req;
    uint64_t max = c->srv->lim.max_body_bytes;
    r->body_bytes += len;
    if (max > 0 && r->body_bytes > max) {
        c->error = 413;
        return -1;
    }
    if (c->srv->ops->on_body != NULL) {
        if (c->srv->ops->on_body(r, at, len) == 0)
            return 0;
        c->error = -1; /* the handler gave up: close without an answer */
        return -1;
    }
    return gv_buf_append(&r->body, at, len) == 0 ? 0 : oom(c);
}

/* Pauses the parser after each request: the next is parsed once this one
 * is answered. */
static int on_message_complete(llhttp_t *p)
{
    struct gv_httpd_conn *c = CONN(p);
    c->req->keep_alive = llhttp_should_keep_alive(p) != 0;
    c->state = C_BUSY;
    arm(c, 0);
    return HPE_PAUSED;
}

static void init_settings(llhttp_settings_t *s)
{
    llhttp_settings_init(s);
    s->on_message_begin = on_message_begin;
    s->on_method = on_method;
    s->on_url = on_url;
    s->on_url_complete = on_url_complete;
    s->on_header_field = on_header_field;
    s->on_header_field_complete = on_header_field_complete;
    s->on_header_value = on_header_value;
    s->on_header_value_complete = on_header_value_complete;
    s->on_headers_complete = on_headers_complete;
    s->on_body = on_body;
    s->on_message_complete = on_message_complete;
}

/* Hands a complete request to the handler. An upgrade the handler does not
 * take ends the connection: what follows the request is not HTTP. */
static void dispatch(struct gv_httpd_conn *c)
{
    struct gv_httpd_req *r = c->req;
    r->pending = true;
    c->close_after = !r->keep_alive || r->upgrade || c->srv->stopping;
    sync_reading(c);
    c->srv->ops->on_request(r);
}

static void parse_failed(struct gv_httpd_conn *c)
{
    char msg[160];
    switch (c->error) {
    case -1:
        conn_close(c);
        break;
    case 413:
        error_answer(c, 413, "request body too large");
        break;
    case 431:
        error_answer(c, 431, "request head too large");
        break;
    case 500:
        error_answer(c, 500, "out of memory");
        break;
    default:
        snprintf(msg, sizeof(msg), "bad request: %s", llhttp_get_error_reason(&c->parser));
        error_answer(c, 400, msg);
    }
}

/* Parses until the input ends or a request is complete; returns the bytes
 * used. */
static size_t parse(struct gv_httpd_conn *c, const char *data, size_t len)
{
    llhttp_errno_t e = llhttp_execute(&c->parser, data, len);
    if (e == HPE_OK)
        return len;
    if (e == HPE_PAUSED && c->state == C_BUSY) {
        const char *pos = llhttp_get_error_pos(&c->parser);
        size_t used = pos >= data && pos <= data + len ? (size_t)(pos - data) : len;
        llhttp_resume(&c->parser);
        dispatch(c);
        return used;
    }
    if (c->state != C_CLOSED)
        parse_failed(c);
    return len;
}

/* ---- reading ----------------------------------------------------------- */

static bool takes_input(const struct gv_httpd_conn *c)
{
    return c->state == C_IDLE || c->state == C_HEAD || c->state == C_BODY ||
           (c->state == C_TUNNEL && !c->paused);
}

/* Hands input to whoever takes it now; what nobody takes waits in c->in. */
static void take_input(struct gv_httpd_conn *c, const char *data, size_t len)
{
    while (len > 0 && takes_input(c)) {
        if (c->state == C_TUNNEL) {
            c->tops->on_data(c->targ, c, data, len);
            return;
        }
        size_t used = parse(c, data, len);
        data += used;
        len -= used;
    }
    if (len > 0 && (c->state == C_BUSY || c->state == C_TUNNEL) &&
        gv_buf_append(&c->in, data, len) != 0)
        conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct gv_httpd_conn *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->srv->rbuf, sizeof(c->srv->rbuf));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);

/* Reads while the connection takes input (or lingers). */
static void sync_reading(struct gv_httpd_conn *c)
{
    bool want = takes_input(c) || c->state == C_LINGER;
    if (want == c->reading || c->state == C_CLOSED)
        return;
    if (want && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    if (!want)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = want;
}

/* Decrypts what was read and hands the plaintext on; false when the peer
 * closed or the transport failed (the caller closes). */
static bool take_ciphertext(struct gv_httpd_conn *c, const char *data, size_t len)
{
    const struct gv_httpd_transport *t = c->srv->tr;
    char *plain = c->srv->plain;
    if (t->feed(c->eng, data, len) < 0)
        return false;
    for (;;) {
        int n = t->read(c->eng, plain, sizeof(c->srv->plain));
        if (n <= 0 || c->state == C_CLOSED) {
            flush_transport(c);
            return n == 0;
        }
        if (c->state != C_LINGER)
            take_input(c, plain, (size_t)n);
    }
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct gv_httpd_conn *c = st->data;
    if (c->state == C_CLOSED || n == 0)
        return;
    if (n < 0) { /* EOF or an error: nothing more to answer */
        conn_close(c);
        return;
    }
    if (c->eng != NULL && !take_ciphertext(c, buf->base, (size_t)n))
        conn_close(c);
    else if (c->eng == NULL && c->state != C_LINGER)
        take_input(c, buf->base, (size_t)n);
    sync_reading(c);
}

/* The answer has left: the next request, or the close. */
static void answer_done(struct gv_httpd_conn *c)
{
    if (c->req != NULL)
        c->req->close_cb = NULL; /* the answer ended: nothing to tell */
    if (c->close_after || c->srv->stopping) {
        conn_linger(c);
        return;
    }
    c->state = C_IDLE;
    arm(c, c->srv->lim.idle_timeout_ms);
    if (c->in.len > 0) {
        struct gv_buf rest = c->in;
        gv_buf_init(&c->in);
        take_input(c, rest.data, rest.len);
        gv_buf_free(&rest);
    }
    sync_reading(c);
}

/* ---- accepting ----------------------------------------------------------- */

static void on_refused_closed(uv_handle_t *h)
{
    struct gv_httpd *s = h->data;
    free(h);
    s->nrefused--;
    maybe_done(s);
}

/* Over the cap: accepted and closed at once, with a 503 on plain TCP. */
static void refuse(struct gv_httpd *s)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
                               "application/json\r\nContent-Length: 31\r\nConnection: close\r\n"
                               "\r\n{\"error\":\"too many connections\"}";
    uv_tcp_t *t = malloc(sizeof(*t));
    if (t == NULL)
        return;
    uv_tcp_init(s->loop, t);
    t->data = s;
    s->nrefused++;
    if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)t) == 0 && s->tr == NULL) {
        uv_buf_t b = uv_buf_init((char *)busy, sizeof(busy) - 1);
        uv_try_write((uv_stream_t *)t, &b, 1);
    }
    uv_close((uv_handle_t *)t, on_refused_closed);
}

static void on_connection(uv_stream_t *l, int status)
{
    struct gv_httpd *s = l->data;
    if (status < 0 || s->stopping)
        return;
    if (s->lim.max_conns > 0 && s->nconns >= s->lim.max_conns) {
        refuse(s);
        return;
    }
    struct gv_httpd_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    s->nconns++;
    if ((c->next = s->conns) != NULL)
        c->next->prev = c;
    s->conns = c;
    llhttp_init(&c->parser, HTTP_REQUEST, &s->settings);
    c->parser.data = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0 ||
        (s->tr != NULL && (c->eng = s->tr->open(s->tr_arg)) == NULL)) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    arm(c, s->lim.head_timeout_ms ? s->lim.head_timeout_ms : s->lim.idle_timeout_ms);
    sync_reading(c);
}

static void on_listener_closed(uv_handle_t *h)
{
    struct gv_httpd *s = h->data;
    s->listener_closed = true;
    maybe_done(s);
}

int gv_httpd_start(uv_loop_t *loop, const struct sockaddr *addr, const struct gv_httpd_config *cfg,
                   struct gv_httpd **out)
{
    struct gv_httpd *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return GV_ENOMEM;
    s->loop = loop;
    s->ops = cfg->ops;
    s->arg = cfg->arg;
    s->tr = cfg->transport;
    s->tr_arg = cfg->transport_arg;
    s->lim = cfg->limits;
    init_settings(&s->settings);
    int rc = cfg->extra_headers && !(s->extra = strdup(cfg->extra_headers)) ? GV_ENOMEM : 0;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    if (rc == 0)
        rc = uv_tcp_bind(&s->listener, addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, cfg->backlog ? cfg->backlog : DEFAULT_BACKLOG,
                       on_connection);
    if (rc != 0) {
        /* the listener is freed with s: run the loop once to close it */
        s->stopping = true;
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
        uv_run(loop, UV_RUN_NOWAIT);
        return rc;
    }
    *out = s;
    return 0;
}

int gv_httpd_sockname(const struct gv_httpd *s, struct sockaddr_storage *ss)
{
    int len = sizeof(*ss);
    return uv_tcp_getsockname(&s->listener, (struct sockaddr *)ss, &len);
}

void gv_httpd_stop(struct gv_httpd *s, bool now, void (*done)(void *arg), void *arg)
{
    s->stopping = true;
    s->done = done;
    s->done_arg = arg;
    for (struct gv_httpd_conn *c = s->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (now || c->state != C_BUSY)
            conn_close(c);
    }
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

/* ---- the request's parts --------------------------------------------------- */

void *gv_httpd_arg(const struct gv_httpd_req *r)
{
    return r->srv->arg;
}

void *gv_httpd_ctx(struct gv_httpd_req *r)
{
    return r->ctx;
}

int gv_httpd_method(const struct gv_httpd_req *r)
{
    return r->method;
}

const char *gv_httpd_method_name(const struct gv_httpd_req *r)
{
    return llhttp_method_name((llhttp_method_t)r->method);
}

const char *gv_httpd_path(const struct gv_httpd_req *r, size_t *len)
{
    *len = r->path_len;
    return r->head.data != NULL ? r->head.data + r->path_off : "";
}

const char *gv_httpd_query(const struct gv_httpd_req *r, size_t *len)
{
    *len = r->query_len;
    return r->head.data != NULL ? r->head.data + r->query_off : "";
}

const char *gv_httpd_header(const struct gv_httpd_req *r, const char *name)
{
    for (unsigned i = 0; i < r->nh; i++)
        if (!r->hv[i].trailer && strcasecmp(r->head.data + r->hv[i].name, name) == 0)
            return r->head.data + r->hv[i].value;
    return NULL;
}

size_t gv_httpd_nheaders(const struct gv_httpd_req *r)
{
    return r->nh;
}

void gv_httpd_header_at(const struct gv_httpd_req *r, size_t i, const char **name, size_t *nlen,
                        const char **value, size_t *vlen)
{
    const struct hdr *h = &r->hv[i];
    *name = r->head.data + h->name;
    *nlen = h->nlen;
    *value = r->head.data + h->value;
    *vlen = h->vlen;
}

const char *gv_httpd_body(const struct gv_httpd_req *r, size_t *len)
{
    *len = r->body.len;
    return r->body.data != NULL ? r->body.data : "";
}

bool gv_httpd_wants_upgrade(const struct gv_httpd_req *r)
{
    return r->upgrade;
}

const char *gv_http_reason(int status)
{
    static const struct {
        int status;
        const char *text;
    } reasons[] = {
        {100, "Continue"},
        {101, "Switching Protocols"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {304, "Not Modified"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {507, "Insufficient Storage"},
    };
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].status == status)
            return reasons[i].text;
    return "Unknown";
}
