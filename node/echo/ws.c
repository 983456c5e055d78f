/* ws.c - echo's WebSocket (RFC 6455, version 13) on an upgraded
 * common/httpd connection: every data frame goes back unmasked, a ping gets a
 * pong, a close gets the same close; see echo.h. */
#include "node/echo/echo_int.h"
#include "common/buf.h"
#include "common/err.h"

#include <llhttp.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WS_MAX_PAYLOAD ((uint64_t)16 << 20)
#define WS_HIGH_WATER  ((size_t)4 << 20)
#define WS_LOW_WATER   ((size_t)1 << 20)
#define WS_GUID        "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* One upgraded connection; freed by on_close. */
struct ws {
    struct gv_buf in; /* bytes of frames not complete yet */
    bool paused;      /* reading stopped: too much queued to send */
    bool closing;     /* a close frame went out: the rest is dropped */
};

/* One frame's head, parsed. */
struct frame {
    bool fin;
    unsigned op;
    size_t head;  /* bytes before the masking key */
    uint64_t len; /* payload bytes */
};

/* Sends one unmasked frame; first_byte carries FIN and the opcode. */
static int send_frame(struct gv_httpd_conn *c, uint8_t first_byte, const void *payload, size_t len)
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
    int rc = gv_httpd_tunnel_write(c, h, hl);
    return rc == 0 && len > 0 ? gv_httpd_tunnel_write(c, payload, len) : rc;
}

/* Sends a close frame with payload (a status code, or none) and closes once
 * it has gone. */
static void send_close(struct ws *w, struct gv_httpd_conn *c, const void *payload, size_t len)
{
    w->closing = true;
    send_frame(c, 0x88, payload, len);
    gv_httpd_tunnel_close(c);
}

static void fail(struct ws *w, struct gv_httpd_conn *c, unsigned code)
{
    uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    send_close(w, c, p, sizeof(p));
}

/* Parses the head of the frame at b (avail bytes): 1 with f filled, 0 when
 * more bytes are needed, or a close code (1002, 1009) for a bad frame. */
static unsigned parse_head(const uint8_t *b, size_t avail, struct frame *f)
{
    if (avail < 2)
        return 0;
    f->fin = (b[0] & 0x80) != 0;
    f->op = b[0] & 0x0f;
    f->head = 2;
    f->len = b[1] & 0x7f;
    if ((b[0] & 0x70) != 0 || (b[1] & 0x80) == 0)
        return 1002; /* extensions were not negotiated; clients must mask */
    if (f->len == 126) {
        if (avail < 4)
            return 0;
        f->len = (uint64_t)b[2] << 8 | b[3];
        f->head = 4;
    } else if (f->len == 127) {
        if (avail < 10)
            return 0;
        f->len = 0;
        for (int i = 0; i < 8; i++)
            f->len = f->len << 8 | b[2 + i];
        f->head = 10;
    }
    bool control = f->op >= 8;
    if ((control && (!f->fin || f->len > 125 || f->op > 10)) || (!control && f->op > 2))
        return 1002;
    return f->len > WS_MAX_PAYLOAD ? 1009 : 1;
}

/* Unmasks one whole frame's payload and answers it. */
static int answer_frame(struct ws *w, struct gv_httpd_conn *c, const struct frame *f, uint8_t *b)
{
    const uint8_t *mask = b + f->head;
    uint8_t *payload = b + f->head + 4;
    for (uint64_t i = 0; i < f->len; i++)
        payload[i] ^= mask[i & 3];
    if (f->op == 8) { /* the status code back (a 1-byte payload is invalid) */
        send_close(w, c, payload, f->len >= 2 ? 2 : 0);
        return 0;
    }
    if (f->op == 9)
        return send_frame(c, 0x80 | 10, payload, (size_t)f->len);
    if (f->op == 10)
        return 0;
    return send_frame(c, (uint8_t)((f->fin ? 0x80 : 0) | f->op), payload, (size_t)f->len);
}

/* Echoes every complete frame in w->in; keeps a partial one for later. */
static void process(struct ws *w, struct gv_httpd_conn *c)
{
    size_t off = 0;
    struct frame f;
    while (!w->closing) {
        uint8_t *b = (uint8_t *)w->in.data + off;
        size_t avail = w->in.len - off;
        unsigned st = parse_head(b, avail, &f);
        if (st > 1)
            fail(w, c, st);
        if (st != 1 || avail < f.head + 4 + f.len)
            break;
        if (answer_frame(w, c, &f, b) != 0)
            return; /* the connection is closed */
        off += f.head + 4 + (size_t)f.len;
    }
    gv_buf_consume(&w->in, off);
    if (!w->closing && gv_httpd_tunnel_queued(c) > WS_HIGH_WATER) {
        w->paused = true;
        gv_httpd_tunnel_pause(c, true);
    }
}

static void on_data(void *arg, struct gv_httpd_conn *c, const char *data, size_t len)
{
    struct ws *w = arg;
    if (w->closing)
        return;
    if (gv_buf_append(&w->in, data, len) != 0)
        fail(w, c, 1011);
    else
        process(w, c);
}

/* Reading resumes once what waits to be sent has mostly gone. */
static void on_written(void *arg, struct gv_httpd_conn *c)
{
    struct ws *w = arg;
    if (w->paused && gv_httpd_tunnel_queued(c) < WS_LOW_WATER) {
        w->paused = false;
        gv_httpd_tunnel_pause(c, false);
    }
}

static void on_close(void *arg)
{
    struct ws *w = arg;
    gv_buf_free(&w->in);
    free(w);
}

static const struct gv_httpd_tunnel_ops ws_ops = {
    .on_data = on_data,
    .on_written = on_written,
    .on_close = on_close,
};

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

/* The handshake's answer headers into out; returns 0, or the status to
 * answer with instead. */
static int handshake(struct gv_httpd_req *r, char *out, size_t outlen)
{
    const char *key = gv_httpd_header(r, "sec-websocket-key");
    const char *version = gv_httpd_header(r, "sec-websocket-version");
    if (gv_httpd_method(r) != HTTP_GET ||
        !header_has_token(gv_httpd_header(r, "upgrade"), "websocket") || key == NULL ||
        version == NULL || strcmp(version, "13") != 0)
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
    n = snprintf(out, outlen,
                 "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n",
                 (const char *)accept);
    return n > 0 && (size_t)n < outlen ? 0 : 500;
}

int echo_ws_accept(struct gv_httpd_req *r)
{
    char headers[256];
    int status = handshake(r, headers, sizeof(headers));
    if (status != 0)
        return status;
    struct ws *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return 500;
    gv_buf_init(&w->in);
    if (gv_httpd_upgrade(r, headers, &ws_ops, w) == NULL)
        on_close(w); /* never handed over: the connection is gone */
    return 0;
}
