/* echo.c - `grapevine echo`: a single-threaded libuv + llhttp server that
 * answers each request with a JSON description of it (see echo.h). */
#include "node/echo/echo.h"
#include "gateway/http.h"
#include "gateway/tls.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <jansson.h>
#include <llhttp.h>
#include <openssl/evp.h>
#include <uv.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_LISTEN "127.0.0.1:9001"
#define DEFAULT_NAME   "echo"
#define READ_BUF_SIZE  (64 * 1024)
#define MAX_HEAD_BYTES (64 * 1024)
#define PIECE_SIZE     (64 * 1024)
#define MAX_DELAY_MS   600000
#define LINGER_MS      2000
#define WS_MAX_PAYLOAD ((uint64_t)16 << 20)
#define WS_HIGH_WATER  ((size_t)4 << 20)
#define WS_LOW_WATER   ((size_t)1 << 20)
#define WS_GUID        "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

enum conn_state {
    CONN_HTTP,    /* reading and parsing requests */
    CONN_RESPOND, /* an answer is delayed or being written; not reading */
    CONN_WS,      /* upgraded: echoing WebSocket frames */
    CONN_LINGER,  /* last answer queued, write side shut: drain input, then close */
    CONN_CLOSING, /* uv_close called; freed when both handles are closed */
};

struct echo_server {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    const char *name;
    bool failing; /* POST /fail .. POST /recover */
    struct echo_conn *conns;
    /* GET /stats: how many GET /healthz (probes) and other requests came,
     * so a test can count the health probes a target receives. */
    uint64_t healthz_hits;
    uint64_t requests;
    /* --tls-cert/--tls-key: every connection is TLS; /stats counts the
     * handshakes (and the resumed ones) so a test can see connection reuse. */
    struct gw_tls_ctxset *tls;
    uint64_t tls_handshakes;
    uint64_t tls_resumed;
};

struct echo_conn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* /delay/MS, then the lingering close */
    uv_write_t wreq;  /* the answer's head, body and stream pieces: one at a time */
    uv_write_t creq;  /* "100 Continue" */
    uv_shutdown_t sreq;
    struct echo_server *srv;
    struct echo_conn *prev, *next;
    enum conn_state state;
    int closes_pending;
    bool reading;

    llhttp_t parser;
    size_t rpos, rlen; /* bytes of rbuf not parsed yet */

    /* The request being parsed; reset by on_message_begin. */
    struct gv_buf url;
    struct gv_buf field;
    struct gv_buf value;
    json_t *headers;
    size_t head_bytes;
    uint64_t body_bytes;
    bool head_too_big;
    bool keep_alive;
    bool head_method; /* HEAD: answers carry no body */

    /* The answer being written. */
    struct gv_buf out;    /* head, plus the body unless it is streamed */
    uint64_t stream_left; /* /bytes/N: body bytes not yet written */
    uint64_t stream_sent; /* ... and written */
    bool streaming;
    bool chunked;
    bool close_after;
    char chunk_head[24];

    /* WebSocket. */
    struct gv_buf ws_in;
    bool ws_paused;

    struct gw_tls *tls; /* NULL on plain TCP */
    bool tls_counted;   /* its handshake is in tls_handshakes */

    char rbuf[READ_BUF_SIZE];
};

/* One WebSocket write: frames may queue up, each owns its bytes. */
struct ws_write {
    uv_write_t req;
    struct echo_conn *conn;
    size_t len;
    char data[];
};

static llhttp_settings_t parser_settings;
/* /bytes/N bodies are "abc...xyzabc..." without a break: a piece that
 * starts at body offset o is read from piece_data + o % 26. */
static char piece_data[PIECE_SIZE + 26];
static const char crlf[] = "\r\n";
static const char last_chunk[] = "0\r\n\r\n";

static void conn_close(struct echo_conn *c);
static void conn_parse(struct echo_conn *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* ---- small helpers ---- */

/* A JSON string from bytes that may not be UTF-8: invalid input is retried
 * with every non-ASCII byte replaced by '?', so an answer is always built. */
static json_t *json_bytes(const char *p, size_t n)
{
    json_t *s = json_stringn(p, n);
    if (s != NULL || n == 0)
        return s != NULL ? s : json_string("");
    char *copy = malloc(n);
    if (copy == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        copy[i] = (unsigned char)p[i] < 0x80 ? p[i] : '?';
    s = json_stringn(copy, n);
    free(copy);
    return s;
}

/* Parses a decimal number of at most max; returns 0 or GV_EINVAL. */
static int parse_u64(const char *p, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 20)
        return GV_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return GV_EINVAL;
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (max - d) / 10)
            return GV_EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* True when the &-separated query has "name" or "name=1"/"name=true". */
static bool query_flag(const char *q, size_t qlen, const char *name)
{
    size_t nlen = strlen(name);
    size_t i = 0;
    while (i < qlen) {
        const char *amp = memchr(q + i, '&', qlen - i);
        size_t end = amp != NULL ? (size_t)(amp - q) : qlen;
        const char *item = q + i;
        size_t ilen = end - i;
        if (ilen >= nlen && memcmp(item, name, nlen) == 0) {
            const char *v = item + nlen;
            size_t vlen = ilen - nlen;
            if (vlen == 0 || (vlen == 2 && memcmp(v, "=1", 2) == 0) ||
                (vlen == 5 && memcmp(v, "=true", 5) == 0))
                return true;
        }
        i = end + 1;
    }
    return false;
}

/* True when the comma-separated header value lists token (any case). */
static bool header_has_token(const char *v, const char *token)
{
    size_t tlen = strlen(token);
    while (v != NULL && *v != '\0') {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        size_t n = strcspn(v, ",");
        size_t m = n;
        while (m > 0 && (v[m - 1] == ' ' || v[m - 1] == '\t'))
            m--;
        if (m == tlen && strncasecmp(v, token, tlen) == 0)
            return true;
        v += n;
    }
    return false;
}

static const char *req_header(struct echo_conn *c, const char *name)
{
    return json_string_value(json_object_get(c->headers, name));
}

/* ---- TLS ---- */

/* Ciphertext standing in for the caller's write: the caller's request and
 * callback are kept and called when the ciphertext has been written. */
struct tls_write {
    uv_write_t req;
    uv_write_t *orig;
    uv_write_cb cb;
    char data[];
};

static char tls_in[READ_BUF_SIZE]; /* ciphertext of one read (one thread) */

static void on_tls_written(uv_write_t *req, int status)
{
    struct tls_write *tw = (struct tls_write *)req;
    uv_write_t *orig = tw->orig;
    uv_write_cb cb = tw->cb;
    free(tw);
    if (cb != NULL)
        cb(orig, status);
}

/* Writes what the engine has to send; cb (may be NULL) is called with req
 * once it is written. */
static int tls_flush(struct echo_conn *c, uv_write_t *req, uv_write_cb cb)
{
    size_t n = gw_tls_output_pending(c->tls);
    if (n == 0 && cb == NULL)
        return 0;
    struct tls_write *tw = malloc(sizeof(*tw) + n + 1);
    if (tw == NULL)
        return GV_ENOMEM;
    tw->orig = req;
    tw->cb = cb;
    size_t got = gw_tls_take_output(c->tls, tw->data, n);
    uv_buf_t b = uv_buf_init(tw->data, (unsigned)got);
    int rc = uv_write(&tw->req, (uv_stream_t *)&c->tcp, &b, 1, on_tls_written);
    if (rc != 0)
        free(tw);
    return rc;
}

/* uv_write on the connection, through TLS when it has it. */
static int conn_write(struct echo_conn *c, uv_write_t *req, const uv_buf_t *bufs, unsigned n,
                      uv_write_cb cb)
{
    if (c->tls == NULL)
        return uv_write(req, (uv_stream_t *)&c->tcp, bufs, n, cb);
    for (unsigned i = 0; i < n; i++)
        if (gw_tls_write(c->tls, bufs[i].base, bufs[i].len) != 0)
            return UV_EPROTO;
    return tls_flush(c, req, cb);
}

/* Decrypts one read into rbuf; returns the plaintext length, 0 when there is
 * none yet, or a negative error (close). Plaintext beyond rbuf waits in the
 * engine for the next read. */
static ssize_t tls_decrypt(struct echo_conn *c, const char *data, size_t len)
{
    if (len > 0 && gw_tls_feed(c->tls, data, len) != 0)
        return UV_ENOMEM;
    size_t got = 0;
    int st = GW_TLS_WANT;
    while (got < sizeof(c->rbuf)) {
        st = gw_tls_read(c->tls, c->rbuf + got, sizeof(c->rbuf) - got);
        if (st <= 0)
            break;
        got += (size_t)st;
    }
    if (!c->tls_counted && gw_tls_handshake_done(c->tls)) {
        c->tls_counted = true;
        c->srv->tls_handshakes++;
        if (gw_tls_session_reused(c->tls))
            c->srv->tls_resumed++;
    }
    if (tls_flush(c, NULL, NULL) != 0)
        return UV_EPROTO;
    if (got > 0)
        return (ssize_t)got;
    return st == GW_TLS_CLOSED ? UV_EOF : st == GW_TLS_ERROR ? UV_EPROTO : 0;
}

/* ---- connection life ---- */

static void on_handle_closed(uv_handle_t *h)
{
    struct echo_conn *c = h->data;
    if (--c->closes_pending > 0)
        return;
    json_decref(c->headers);
    gv_buf_free(&c->url);
    gv_buf_free(&c->field);
    gv_buf_free(&c->value);
    gv_buf_free(&c->out);
    gv_buf_free(&c->ws_in);
    gw_tls_free(c->tls);
    free(c);
}

/* Closes at once; pending writes are cancelled. Safe to call twice. */
static void conn_close(struct echo_conn *c)
{
    if (c->state == CONN_CLOSING)
        return;
    c->state = CONN_CLOSING;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->srv->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->closes_pending = 2;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void read_start(struct echo_conn *c)
{
    if (c->reading)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    c->reading = true;
}

static void read_stop(struct echo_conn *c)
{
    if (!c->reading)
        return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

static void on_linger_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct echo_conn *c = req->data;
    if (status < 0)
        conn_close(c);
}

/* Sends FIN after the queued writes and reads until the client closes too
 * (or LINGER_MS pass), so unread input cannot turn the close into an RST
 * that destroys the last answer before the client has read it. */
static void conn_linger(struct echo_conn *c)
{
    if (c->state == CONN_CLOSING || c->state == CONN_LINGER)
        return;
    c->state = CONN_LINGER;
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, on_linger_timeout, LINGER_MS, 0);
    read_start(c);
}

/* ---- HTTP answers ---- */

static void tls_pump(struct echo_conn *c);

static void answer_done(struct echo_conn *c)
{
    gv_buf_reset(&c->out);
    c->streaming = false;
    if (c->close_after) {
        conn_linger(c);
        return;
    }
    c->state = CONN_HTTP;
    conn_parse(c);
    tls_pump(c);
}

static void on_answer_written(uv_write_t *req, int status);

static void write_next_piece(struct echo_conn *c)
{
    uv_buf_t bufs[3];
    unsigned n = 0;
    if (c->stream_left > 0) {
        size_t len = (size_t)GV_MIN(c->stream_left, (uint64_t)PIECE_SIZE);
        c->stream_left -= len;
        if (c->chunked) {
            int hl = snprintf(c->chunk_head, sizeof(c->chunk_head), "%zx\r\n", len);
            bufs[n++] = uv_buf_init(c->chunk_head, (unsigned)hl);
        }
        bufs[n++] = uv_buf_init(piece_data + c->stream_sent % 26, (unsigned)len);
        c->stream_sent += len;
        if (c->chunked)
            bufs[n++] = uv_buf_init((char *)crlf, 2);
    } else if (c->chunked) {
        bufs[n++] = uv_buf_init((char *)last_chunk, sizeof(last_chunk) - 1);
        c->chunked = false;
    } else {
        answer_done(c);
        return;
    }
    if (conn_write(c, &c->wreq, bufs, n, on_answer_written) != 0)
        conn_close(c);
}

static void on_answer_written(uv_write_t *req, int status)
{
    struct echo_conn *c = req->data;
    if (c->state == CONN_CLOSING)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->streaming)
        write_next_piece(c);
    else
        answer_done(c);
}

static void write_answer(struct echo_conn *c)
{
    uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    c->wreq.data = c;
    if (conn_write(c, &c->wreq, &b, 1, on_answer_written) != 0)
        conn_close(c);
}

static void on_delay_done(uv_timer_t *t)
{
    write_answer(t->data);
}

/* Puts the status line and common headers in c->out. content_length < 0
 * means chunked; a 1xx/204/304 status gets no framing headers at all. */
static int put_head(struct echo_conn *c, int status, const char *type, int64_t content_length)
{
    struct gv_buf *o = &c->out;
    int rc = gv_buf_printf(o, "HTTP/1.1 %d %s\r\nServer: grapevine-echo\r\nX-Echo-Name: %s\r\n",
                           status, gw_reason(status), c->srv->name);
    bool bodiless = status == 204 || status == 304;
    if (rc == 0 && type != NULL && !bodiless)
        rc = gv_buf_printf(o, "Content-Type: %s\r\n", type);
    if (rc == 0 && !bodiless) {
        if (content_length >= 0)
            rc = gv_buf_printf(o, "Content-Length: %" PRId64 "\r\n", content_length);
        else
            rc = gv_buf_puts(o, "Transfer-Encoding: chunked\r\n");
    }
    if (rc == 0 && c->close_after)
        rc = gv_buf_puts(o, "Connection: close\r\n");
    else if (rc == 0 && llhttp_get_http_major(&c->parser) == 1 &&
             llhttp_get_http_minor(&c->parser) == 0)
        rc = gv_buf_puts(o, "Connection: keep-alive\r\n");
    if (rc == 0)
        rc = gv_buf_puts(o, "\r\n");
    return rc;
}

/* Queues a JSON answer (steals body), after delay_ms when non-zero. */
static int send_json(struct echo_conn *c, int status, json_t *body, uint64_t delay_ms)
{
    int rc = GV_ENOMEM;
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL)
        goto fail;
    size_t len = strlen(text);
    bool head_only = c->head_method || status == 204 || status == 304;
    gv_buf_reset(&c->out);
    rc = put_head(c, status, "application/json", (int64_t)len);
    if (rc == 0 && !head_only)
        rc = gv_buf_append(&c->out, text, len);
    if (rc != 0)
        goto fail;
    free(text);
    c->state = CONN_RESPOND;
    c->streaming = false;
    if (delay_ms > 0)
        uv_timer_start(&c->timer, on_delay_done, delay_ms, 0);
    else
        write_answer(c);
    return 0;

fail:
    free(text);
    return rc;
}

static int send_error(struct echo_conn *c, int status, const char *msg)
{
    c->close_after = true;
    return send_json(c, status, json_pack("{ss}", "error", msg != NULL ? msg : "bad request"), 0);
}

static int send_bytes(struct echo_conn *c, uint64_t n, bool chunked)
{
    bool head_only = c->head_method;
    /* HTTP/1.0 has no chunked coding. */
    if (llhttp_get_http_major(&c->parser) == 1 && llhttp_get_http_minor(&c->parser) == 0)
        chunked = false;
    gv_buf_reset(&c->out);
    int rc = put_head(c, 200, "application/octet-stream", chunked ? -1 : (int64_t)n);
    if (rc != 0)
        return rc;
    c->state = CONN_RESPOND;
    c->streaming = !head_only;
    c->chunked = chunked && !head_only;
    c->stream_left = head_only ? 0 : n;
    c->stream_sent = 0;
    write_answer(c);
    return 0;
}

/* ---- WebSocket ---- */

static void on_ws_written(uv_write_t *req, int status)
{
    struct ws_write *w = req->data;
    struct echo_conn *c = w->conn;
    free(w);
    if (c->state == CONN_CLOSING)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->state == CONN_WS && c->ws_paused &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < WS_LOW_WATER) {
        c->ws_paused = false;
        read_start(c);
        tls_pump(c);
    }
}

/* Queues bytes (head and payload are copied). */
static int ws_send_raw(struct echo_conn *c, const void *head, size_t hlen, const void *payload,
                       size_t plen)
{
    struct ws_write *w = malloc(sizeof(*w) + hlen + plen);
    if (w == NULL)
        return GV_ENOMEM;
    w->conn = c;
    w->len = hlen + plen;
    memcpy(w->data, head, hlen);
    if (plen > 0)
        memcpy(w->data + hlen, payload, plen);
    w->req.data = w;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    int rc = conn_write(c, &w->req, &b, 1, on_ws_written);
    if (rc != 0)
        free(w);
    return rc;
}

/* Sends one unmasked frame; first_byte carries FIN and the opcode. */
static int ws_send_frame(struct echo_conn *c, uint8_t first_byte, const void *payload, size_t len)
{
    uint8_t h[10];
    size_t hl = 2;
    h[0] = first_byte;
    if (len < 126) {
        h[1] = (uint8_t)len;
    } else if (len <= 0xffff) {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        hl = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        hl = 10;
    }
    return ws_send_raw(c, h, hl, payload, len);
}

static void ws_fail(struct echo_conn *c, unsigned code)
{
    uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    if (ws_send_frame(c, 0x88, p, sizeof(p)) != 0)
        conn_close(c);
    else
        conn_linger(c);
}

/* Echoes every complete frame in ws_in; keeps a partial frame for later. */
static void ws_process(struct echo_conn *c)
{
    size_t off = 0;
    while (c->state == CONN_WS) {
        const uint8_t *b = (const uint8_t *)c->ws_in.data + off;
        size_t avail = c->ws_in.len - off;
        if (avail < 2)
            break;
        bool fin = (b[0] & 0x80) != 0;
        unsigned op = b[0] & 0x0f;
        size_t hl = 2;
        uint64_t plen = b[1] & 0x7f;
        if ((b[0] & 0x70) != 0 || (b[1] & 0x80) == 0) {
            ws_fail(c, 1002); /* extensions were not negotiated; clients must mask */
            break;
        }
        if (plen == 126) {
            if (avail < 4)
                break;
            plen = (uint64_t)b[2] << 8 | b[3];
            hl = 4;
        } else if (plen == 127) {
            if (avail < 10)
                break;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = plen << 8 | b[2 + i];
            hl = 10;
        }
        bool control = op >= 8;
        if ((control && (!fin || plen > 125 || op > 10)) || (!control && op > 2)) {
            ws_fail(c, 1002);
            break;
        }
        if (plen > WS_MAX_PAYLOAD) {
            ws_fail(c, 1009);
            break;
        }
        if (avail < hl + 4 + plen)
            break;
        const uint8_t *mask = b + hl;
        uint8_t *payload = (uint8_t *)c->ws_in.data + off + hl + 4;
        for (uint64_t i = 0; i < plen; i++)
            payload[i] ^= mask[i & 3];
        off += hl + 4 + (size_t)plen;
        int rc = 0;
        if (op == 8) {
            /* Echo the status code (not a 1-byte payload, which is invalid). */
            rc = ws_send_frame(c, 0x88, payload, plen >= 2 ? 2 : 0);
            if (rc == 0)
                conn_linger(c);
        } else if (op == 9) {
            rc = ws_send_frame(c, 0x80 | 10, payload, (size_t)plen);
        } else if (op != 10) {
            rc = ws_send_frame(c, (uint8_t)((fin ? 0x80 : 0) | op), payload, (size_t)plen);
        }
        if (rc != 0) {
            conn_close(c);
            return;
        }
    }
    gv_buf_consume(&c->ws_in, off);
    if (c->state == CONN_WS &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > WS_HIGH_WATER) {
        c->ws_paused = true;
        read_stop(c);
    }
}

static void ws_feed(struct echo_conn *c, const char *data, size_t len)
{
    if (gv_buf_append(&c->ws_in, data, len) != 0) {
        conn_close(c);
        return;
    }
    ws_process(c);
}

/* Answers the handshake. Returns 0 (upgraded), or a status to answer with. */
static int ws_accept(struct echo_conn *c)
{
    const char *upgrade = req_header(c, "upgrade");
    const char *key = req_header(c, "sec-websocket-key");
    const char *version = req_header(c, "sec-websocket-version");
    if (llhttp_get_method(&c->parser) != HTTP_GET || !header_has_token(upgrade, "websocket") ||
        key == NULL || version == NULL || strcmp(version, "13") != 0)
        return 400;
    char input[128];
    int n = snprintf(input, sizeof(input), "%s%s", key, WS_GUID);
    if (n < 0 || (size_t)n >= sizeof(input))
        return 400;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(input, (size_t)n, md, &mdlen, EVP_sha1(), NULL) != 1)
        return 500;
    unsigned char accept[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    EVP_EncodeBlock(accept, md, (int)mdlen);
    char head[256];
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nX-Echo-Name: %s\r\n\r\n",
                 (const char *)accept, c->srv->name);
    if (n < 0 || (size_t)n >= sizeof(head))
        return 500;
    c->state = CONN_WS;
    if (ws_send_raw(c, head, (size_t)n, NULL, 0) != 0)
        conn_close(c);
    return 0;
}

/* ---- requests ---- */

static int answer_echo(struct echo_conn *c, int status, const char *path, size_t plen,
                       const char *query, size_t qlen, uint64_t delay_ms)
{
    const char *method = llhttp_method_name((llhttp_method_t)llhttp_get_method(&c->parser));
    json_t *body = json_object();
    if (body == NULL)
        return GV_ENOMEM;
    json_object_set_new(body, "name", json_string(c->srv->name));
    json_object_set_new(body, "method", json_string(method));
    json_object_set_new(body, "path", json_bytes(path, plen));
    json_object_set_new(body, "query", json_bytes(query, qlen));
    json_object_set(body, "headers", c->headers);
    json_object_set_new(body, "body_bytes", json_integer((json_int_t)c->body_bytes));
    if (json_object_size(body) != 6) {
        json_decref(body);
        return GV_ENOMEM;
    }
    return send_json(c, status, body, delay_ms);
}

/* For paths like "/delay/MS": 1 with *n set when path is prefix and a
 * number in min..max, -1 when it is prefix and something else, 0 when it does
 * not start with prefix. */
static int path_number(const char *path, size_t plen, const char *prefix, uint64_t min,
                       uint64_t max, uint64_t *n)
{
    size_t pl = strlen(prefix);
    if (plen < pl || memcmp(path, prefix, pl) != 0)
        return 0;
    if (parse_u64(path + pl, plen - pl, max, n) != 0 || *n < min)
        return -1;
    return 1;
}

/* 400 for a malformed test-endpoint path; the connection stays open. */
static int answer_bad_path(struct echo_conn *c, const char *what)
{
    return send_json(c, 400, json_pack("{ss}", "error", what), 0);
}

static bool path_is(const char *path, size_t plen, const char *s)
{
    return plen == strlen(s) && memcmp(path, s, plen) == 0;
}

static int handle_request(struct echo_conn *c)
{
    const char *url = c->url.data != NULL ? c->url.data : "";
    size_t ulen = c->url.len;
    /* An absolute-form target: keep the path part. */
    const char *scheme_end = ulen > 0 && url[0] != '/' ? strstr(url, "://") : NULL;
    if (scheme_end != NULL) {
        const char *slash = strchr(scheme_end + 3, '/');
        const char *qm = strchr(scheme_end + 3, '?');
        const char *start = slash != NULL && (qm == NULL || slash < qm) ? slash : qm;
        start = start != NULL ? start : url + ulen;
        ulen -= (size_t)(start - url);
        url = start;
    }
    const char *qm = memchr(url, '?', ulen);
    size_t plen = qm != NULL ? (size_t)(qm - url) : ulen;
    const char *query = qm != NULL ? qm + 1 : "";
    size_t qlen = qm != NULL ? ulen - plen - 1 : 0;
    const char *path = url;
    int method = llhttp_get_method(&c->parser);
    uint64_t n = 0;

    c->close_after = !c->keep_alive;
    if (llhttp_get_upgrade(&c->parser)) {
        if (path_is(path, plen, "/ws")) {
            int status = ws_accept(c);
            if (status == 0)
                return 0;
            return send_error(c, status, "bad WebSocket handshake");
        }
        /* Upgrades elsewhere (and CONNECT) are answered, then closed. */
        c->close_after = true;
    }
    if (path_is(path, plen, "/stats") && method == HTTP_GET) {
        json_t *st =
            json_pack("{sssIsI}", "name", c->srv->name, "healthz", (json_int_t)c->srv->healthz_hits,
                      "requests", (json_int_t)c->srv->requests);
        if (st != NULL && c->srv->tls != NULL) {
            json_object_set_new(st, "tls_handshakes",
                                json_integer((json_int_t)c->srv->tls_handshakes));
            json_object_set_new(st, "tls_resumed", json_integer((json_int_t)c->srv->tls_resumed));
        }
        return send_json(c, 200, st, 0);
    }
    if (path_is(path, plen, "/healthz") && (method == HTTP_GET || method == HTTP_HEAD)) {
        c->srv->healthz_hits++;
        const char *st = c->srv->failing ? "failing" : "ok";
        return send_json(c, c->srv->failing ? 503 : 200, json_pack("{ss}", "status", st), 0);
    }
    c->srv->requests++;
    if (path_is(path, plen, "/fail") && method == HTTP_POST)
        c->srv->failing = true;
    if (path_is(path, plen, "/recover") && method == HTTP_POST)
        c->srv->failing = false;
    int num = path_number(path, plen, "/bytes/", 0, INT64_MAX, &n);
    if (num != 0)
        return num > 0 ? send_bytes(c, n, query_flag(query, qlen, "chunked"))
                       : answer_bad_path(c, "/bytes/N: N must be a byte count");
    num = path_number(path, plen, "/delay/", 0, MAX_DELAY_MS, &n);
    if (num != 0)
        return num > 0 ? answer_echo(c, 200, path, plen, query, qlen, n)
                       : answer_bad_path(c, "/delay/MS: MS must be 0..600000");
    num = path_number(path, plen, "/status/", 200, 599, &n);
    if (num != 0)
        return num > 0 ? answer_echo(c, (int)n, path, plen, query, qlen, 0)
                       : answer_bad_path(c, "/status/CODE: CODE must be 200..599");
    return answer_echo(c, 200, path, plen, query, qlen, 0);
}

/* ---- llhttp callbacks ---- */

static int count_head(struct echo_conn *c, size_t n)
{
    c->head_bytes += n;
    if (c->head_bytes > MAX_HEAD_BYTES) {
        c->head_too_big = true;
        return -1;
    }
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    struct echo_conn *c = p->data;
    gv_buf_reset(&c->url);
    gv_buf_reset(&c->field);
    gv_buf_reset(&c->value);
    json_decref(c->headers);
    c->headers = json_object();
    c->head_bytes = 0;
    c->body_bytes = 0;
    c->head_method = false;
    return c->headers != NULL ? 0 : -1;
}

static int on_method(llhttp_t *p, const char *at, size_t len)
{
    return count_head(p->data, len);
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct echo_conn *c = p->data;
    if (count_head(c, len) != 0 || gv_buf_append(&c->url, at, len) != 0)
        return -1;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct echo_conn *c = p->data;
    if (count_head(c, len) != 0 || gv_buf_append(&c->field, at, len) != 0)
        return -1;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct echo_conn *c = p->data;
    if (count_head(c, len) != 0 || gv_buf_append(&c->value, at, len) != 0)
        return -1;
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    struct echo_conn *c = p->data;
    int rc = -1;
    json_t *v = NULL;
    if (gv_buf_reserve(&c->field, 0) != 0)
        goto fail;
    c->field.data[c->field.len] = '\0';
    for (size_t i = 0; i < c->field.len; i++)
        c->field.data[i] = (char)tolower((unsigned char)c->field.data[i]);
    const char *old = json_string_value(json_object_get(c->headers, c->field.data));
    if (old != NULL) {
        struct gv_buf joined;
        gv_buf_init(&joined);
        if (gv_buf_puts(&joined, old) == 0 && gv_buf_puts(&joined, ", ") == 0 &&
            gv_buf_append(&joined, c->value.data != NULL ? c->value.data : "", c->value.len) == 0)
            v = json_bytes(joined.data, joined.len);
        gv_buf_free(&joined);
    } else {
        v = json_bytes(c->value.data != NULL ? c->value.data : "", c->value.len);
    }
    if (v == NULL)
        goto fail;
    /* A name that is not UTF-8 is dropped, not fatal (set_new frees v). */
    json_object_set_new(c->headers, c->field.data, v);
    rc = 0;

fail:
    gv_buf_reset(&c->field);
    gv_buf_reset(&c->value);
    return rc;
}

static void on_continue_written(uv_write_t *req, int status)
{
    struct echo_conn *c = req->data;
    if (status < 0 && c->state != CONN_CLOSING)
        conn_close(c);
}

static int on_headers_complete(llhttp_t *p)
{
    struct echo_conn *c = p->data;
    c->keep_alive = llhttp_should_keep_alive(p) != 0;
    c->head_method = llhttp_get_method(p) == HTTP_HEAD;
    const char *expect = req_header(c, "expect");
    if (expect != NULL && strcasecmp(expect, "100-continue") == 0 &&
        llhttp_get_http_major(p) == 1 && llhttp_get_http_minor(p) >= 1) {
        /* Every earlier answer is written already, so this goes out in order. */
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uv_buf_t b = uv_buf_init((char *)cont, sizeof(cont) - 1);
        c->creq.data = c;
        if (conn_write(c, &c->creq, &b, 1, on_continue_written) != 0)
            return -1;
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct echo_conn *c = p->data;
    c->body_bytes += len;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct echo_conn *c = p->data;
    if (handle_request(c) != 0)
        return -1;
    /* Parse no further until this answer has been written. */
    return HPE_PAUSED;
}

/* ---- reading ---- */

/* Feeds unparsed input to llhttp until it runs out or a request is waiting
 * for its answer. */
static void conn_parse(struct echo_conn *c)
{
    while (c->state == CONN_HTTP && c->rpos < c->rlen) {
        const char *start = c->rbuf + c->rpos;
        llhttp_errno_t e = llhttp_execute(&c->parser, start, c->rlen - c->rpos);
        if (e == HPE_OK) {
            c->rpos = c->rlen;
        } else if (e == HPE_PAUSED) {
            c->rpos = (size_t)(llhttp_get_error_pos(&c->parser) - c->rbuf);
            llhttp_resume(&c->parser);
        } else {
            c->rpos = c->rlen = 0;
            if (c->state != CONN_HTTP)
                break;
            int rc = c->head_too_big ? send_error(c, 431, "request head larger than 64 KiB")
                                     : send_error(c, 400, llhttp_get_error_reason(&c->parser));
            if (rc != 0)
                conn_close(c);
            break;
        }
    }
    if (c->state == CONN_WS && c->rpos < c->rlen) {
        /* Bytes after the handshake are the first frames. */
        size_t rpos = c->rpos, rlen = c->rlen;
        c->rpos = c->rlen = 0;
        ws_feed(c, c->rbuf + rpos, rlen - rpos);
    }
    if (c->state == CONN_HTTP || (c->state == CONN_WS && !c->ws_paused)) {
        c->rpos = c->rlen = 0;
        read_start(c);
    } else if (c->state == CONN_RESPOND) {
        read_stop(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct echo_conn *c = h->data;
    (void)suggested;
    if (c->tls != NULL)
        *buf = uv_buf_init(tls_in, sizeof(tls_in));
    else
        *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

/* Hands n bytes read into rbuf to the parser or the WebSocket. */
static void deliver(struct echo_conn *c, size_t n)
{
    switch (c->state) {
    case CONN_HTTP:
        c->rpos = 0;
        c->rlen = n;
        conn_parse(c);
        break;
    case CONN_WS:
        ws_feed(c, c->rbuf, n);
        break;
    default:
        break; /* lingering: drop input */
    }
}

/* Plaintext the TLS engine still holds: a read decrypts into rbuf only as
 * much as fits, and the rest would otherwise wait for the next socket read,
 * which never comes once the peer has sent everything. Runs while the
 * connection takes input. */
static void tls_pump(struct echo_conn *c)
{
    while (c->tls != NULL && c->rpos == c->rlen &&
           (c->state == CONN_HTTP || (c->state == CONN_WS && !c->ws_paused))) {
        ssize_t n = tls_decrypt(c, NULL, 0);
        if (n == 0)
            return;
        if (n < 0) {
            conn_close(c);
            return;
        }
        deliver(c, (size_t)n);
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct echo_conn *c = s->data;
    if (nread == 0 || c->state == CONN_CLOSING)
        return;
    if (c->tls != NULL && nread > 0 && c->state != CONN_LINGER)
        nread = tls_decrypt(c, buf->base, (size_t)nread);
    if (nread == 0)
        return;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    deliver(c, (size_t)nread);
    tls_pump(c);
}

/* ---- server ---- */

static void on_connection(uv_stream_t *listener, int status)
{
    struct echo_server *srv = listener->data;
    if (status < 0) {
        gv_warn("echo: accept: %s", uv_strerror(status));
        return;
    }
    struct echo_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        gv_warn("echo: out of memory for a connection");
        return;
    }
    c->srv = srv;
    uv_tcp_init(&srv->loop, &c->tcp);
    uv_timer_init(&srv->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = c;
    srv->conns = c;
    llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
    c->parser.data = c;
    c->headers = json_object();
    if (srv->tls != NULL)
        c->tls = gw_tls_new(srv->tls);
    if (c->headers == NULL || (srv->tls != NULL && c->tls == NULL) ||
        uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    read_start(c);
}

static void on_stop_signal(uv_signal_t *sig, int signum)
{
    struct echo_server *srv = sig->data;
    gv_info("echo %s: signal %d, stopping", srv->name, signum);
    uv_close((uv_handle_t *)&srv->listener, NULL);
    uv_close((uv_handle_t *)&srv->sigterm, NULL);
    uv_close((uv_handle_t *)&srv->sigint, NULL);
    while (srv->conns != NULL)
        conn_close(srv->conns);
}

static void usage(void)
{
    fprintf(stderr, "usage: grapevine echo [--listen ADDR:PORT] [--name NAME]\n"
                    "                      [--tls-cert PEM --tls-key PEM]\n"
                    "  --listen    default " DEFAULT_LISTEN "\n"
                    "  --name      default " DEFAULT_NAME "\n"
                    "  --tls-cert  serve TLS with this certificate chain (and --tls-key)\n");
}

/* Resolves "host:port" (port 0 allowed) into a socket address. */
static int resolve_listen(const char *spec, struct sockaddr_storage *ss)
{
    char host[256];
    uint16_t port = 0;
    char tmp[300];
    size_t len = strlen(spec);
    /* gv_split_hostport refuses port 0; here it means "any free port". */
    if (len >= 2 && len < sizeof(tmp) && strcmp(spec + len - 2, ":0") == 0) {
        memcpy(tmp, spec, len + 1);
        tmp[len - 1] = '1';
        if (gv_split_hostport(tmp, host, sizeof(host), &port) != 0)
            return GV_EINVAL;
        port = 0;
    } else if (gv_split_hostport(spec, host, sizeof(host), &port) != 0) {
        return GV_EINVAL;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL)
        return GV_ENOENT;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    return 0;
}

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port;
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, sizeof(ip));
        port = ntohs(a->sin6_port);
        snprintf(out, outlen, "[%s]:%d", ip, port);
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, ip, sizeof(ip));
        port = ntohs(a->sin_port);
        snprintf(out, outlen, "%s:%d", ip, port);
    }
}

static void init_statics(void)
{
    llhttp_settings_init(&parser_settings);
    parser_settings.on_message_begin = on_message_begin;
    parser_settings.on_method = on_method;
    parser_settings.on_url = on_url;
    parser_settings.on_header_field = on_header_field;
    parser_settings.on_header_value = on_header_value;
    parser_settings.on_header_value_complete = on_header_value_complete;
    parser_settings.on_headers_complete = on_headers_complete;
    parser_settings.on_body = on_body;
    parser_settings.on_message_complete = on_message_complete;
    for (size_t i = 0; i < sizeof(piece_data); i++)
        piece_data[i] = (char)('a' + i % 26);
}

int node_echo_main(int argc, char **argv)
{
    const char *listen = DEFAULT_LISTEN;
    const char *name = DEFAULT_NAME;
    const char *tls_cert = NULL, *tls_key = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        const char *val = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage();
            return 0;
        } else if (strncmp(a, "--listen", 8) == 0 && (a[8] == '\0' || a[8] == '=')) {
            dst = &listen;
            val = a[8] == '=' ? a + 9 : NULL;
        } else if (strncmp(a, "--name", 6) == 0 && (a[6] == '\0' || a[6] == '=')) {
            dst = &name;
            val = a[6] == '=' ? a + 7 : NULL;
        } else if (strncmp(a, "--tls-cert", 10) == 0 && (a[10] == '\0' || a[10] == '=')) {
            dst = &tls_cert;
            val = a[10] == '=' ? a + 11 : NULL;
        } else if (strncmp(a, "--tls-key", 9) == 0 && (a[9] == '\0' || a[9] == '=')) {
            dst = &tls_key;
            val = a[9] == '=' ? a + 10 : NULL;
        } else {
            fprintf(stderr, "grapevine echo: unknown argument \"%s\"\n", a);
            usage();
            return 2;
        }
        if (val == NULL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "grapevine echo: %s needs a value\n", a);
                return 2;
            }
            val = argv[++i];
        }
        *dst = val;
    }
    if (name[0] == '\0' || strpbrk(name, "\r\n") != NULL) {
        fprintf(stderr, "grapevine echo: --name must be one non-empty line\n");
        return 2;
    }
    struct sockaddr_storage addr;
    int rc = resolve_listen(listen, &addr);
    if (rc != 0) {
        fprintf(stderr, "grapevine echo: --listen %s: %s\n", listen,
                rc == GV_EINVAL ? "expected ADDR:PORT" : "cannot resolve the address");
        return 2;
    }

    if ((tls_cert == NULL) != (tls_key == NULL)) {
        fprintf(stderr, "grapevine echo: --tls-cert and --tls-key go together\n");
        return 2;
    }
    struct gw_tls_ctxset *tls = NULL;
    if (tls_cert != NULL) {
        char err[256];
        struct gw_tls_certfile f = {.cert = tls_cert, .key = tls_key};
        if (gw_tls_ctxset_load(&f, 1, &tls, err, sizeof(err)) != 0) {
            fprintf(stderr, "grapevine echo: %s\n", err);
            return 2;
        }
    }

    init_statics();
    /* A client that goes away mid-write must not kill the process. */
    signal(SIGPIPE, SIG_IGN);

    struct echo_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        gw_tls_ctxset_unref(tls);
        return 1;
    }
    srv->name = name;
    srv->tls = tls;
    int status = 1;
    rc = uv_loop_init(&srv->loop);
    if (rc != 0) {
        gv_error("echo: loop: %s", uv_strerror(rc));
        gw_tls_ctxset_unref(tls);
        free(srv);
        return 1;
    }
    uv_tcp_init(&srv->loop, &srv->listener);
    uv_signal_init(&srv->loop, &srv->sigterm);
    uv_signal_init(&srv->loop, &srv->sigint);
    srv->listener.data = srv;
    srv->sigterm.data = srv;
    srv->sigint.data = srv;

    /* libuv sets SO_REUSEADDR on the socket before it binds. */
    rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection);
    if (rc != 0) {
        gv_error("echo %s: cannot listen on %s: %s", name, listen, uv_strerror(rc));
        uv_close((uv_handle_t *)&srv->listener, NULL);
        uv_close((uv_handle_t *)&srv->sigterm, NULL);
        uv_close((uv_handle_t *)&srv->sigint, NULL);
        goto done;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    char where[INET6_ADDRSTRLEN + 16];
    if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &blen) == 0)
        format_addr(&bound, where, sizeof(where));
    else
        snprintf(where, sizeof(where), "%s", listen);
    uv_signal_start(&srv->sigterm, on_stop_signal, SIGTERM);
    uv_signal_start(&srv->sigint, on_stop_signal, SIGINT);
    gv_info("echo %s listening on %s", name, where);
    status = 0;

done:
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    uv_loop_close(&srv->loop);
    gw_tls_ctxset_unref(srv->tls);
    free(srv);
    return status;
}
