/* grpc_probe.c - grpc.health.v1.Health/Check over h2c for active health
 * checks (balancer/grpc_probe.h). */
#include "balancer/grpc_probe.h"
#include "common/err.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_MAX 64 /* a HealthCheckResponse is a few bytes */

/* An empty HealthCheckRequest in gRPC's framing: not compressed, length 0. */
static const uint8_t request_msg[5] = {0, 0, 0, 0, 0};

struct lb_grpc_probe {
    nghttp2_session *s;
    int32_t id;
    size_t sent;     /* bytes of request_msg given to nghttp2 */
    int status;      /* :status */
    int grpc_status; /* -1 until seen */
    uint8_t msg[MSG_MAX];
    size_t msg_len;
    bool closed;
    uint32_t close_code;
};

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    struct lb_grpc_probe *p = ud;
    (void)s;
    (void)flags;
    if (f->hd.stream_id != p->id)
        return 0;
    if ((nl == 7 && memcmp(name, ":status", 7) == 0) ||
        (nl == 11 && memcmp(name, "grpc-status", 11) == 0)) {
        int v = 0;
        for (size_t i = 0; i < vl && i < 4; i++)
            v = (value[i] >= '0' && value[i] <= '9') ? v * 10 + (value[i] - '0') : -1000;
        if (nl == 7)
            p->status = v;
        else
            p->grpc_status = v;
    }
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *ud)
{
    struct lb_grpc_probe *p = ud;
    (void)s;
    (void)flags;
    if (id == p->id) {
        size_t n = len < MSG_MAX - p->msg_len ? len : MSG_MAX - p->msg_len;
        memcpy(p->msg + p->msg_len, data, n);
        p->msg_len += n;
    }
    return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    struct lb_grpc_probe *p = ud;
    (void)s;
    if (id == p->id) {
        p->closed = true;
        p->close_code = code;
    }
    return 0;
}

static ssize_t read_msg(nghttp2_session *s, int32_t id, uint8_t *buf, size_t cap, uint32_t *flags,
                        nghttp2_data_source *src, void *ud)
{
    struct lb_grpc_probe *p = ud;
    size_t n = sizeof request_msg - p->sent;
    (void)s;
    (void)id;
    (void)src;
    n = n < cap ? n : cap;
    memcpy(buf, request_msg + p->sent, n);
    p->sent += n;
    if (p->sent == sizeof request_msg)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static nghttp2_nv nv(const char *name, const char *value)
{
    return (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value),
                        NGHTTP2_NV_FLAG_NONE};
}

int lb_grpc_probe_new(const char *authority, struct lb_grpc_probe **out)
{
    nghttp2_session_callbacks *cb;
    struct lb_grpc_probe *p = calloc(1, sizeof(*p));
    if (p == NULL || nghttp2_session_callbacks_new(&cb) != 0) {
        free(p);
        return GV_ENOMEM;
    }
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    int rv = nghttp2_session_client_new(&p->s, cb, p);
    nghttp2_session_callbacks_del(cb);
    if (rv != 0) {
        free(p);
        return GV_ENOMEM;
    }
    p->grpc_status = -1;
    const nghttp2_nv hdrs[] = {
        nv(":method", "POST"),
        nv(":scheme", "http"),
        nv(":authority", authority),
        nv(":path", "/grpc.health.v1.Health/Check"),
        nv("content-type", "application/grpc"),
        nv("te", "trailers"),
        nv("user-agent", "grapevine-health"),
    };
    nghttp2_data_provider prd = {.read_callback = read_msg};
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
    nghttp2_submit_settings(p->s, NGHTTP2_FLAG_NONE, iv, 1);
    p->id = nghttp2_submit_request(p->s, NULL, hdrs, sizeof hdrs / sizeof hdrs[0], &prd, NULL);
    if (p->id < 0) {
        lb_grpc_probe_free(p);
        return GV_ENOMEM;
    }
    *out = p;
    return 0;
}

void lb_grpc_probe_free(struct lb_grpc_probe *p)
{
    if (p == NULL)
        return;
    nghttp2_session_del(p->s);
    free(p);
}

int lb_grpc_probe_output(struct lb_grpc_probe *p, struct gv_buf *out)
{
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(p->s, &data);
        if (n < 0)
            return GV_EPROTO;
        if (n == 0)
            return 0;
        if (gv_buf_append(out, data, (size_t)n) != 0)
            return GV_ENOMEM;
    }
}

/* The status field (1) of a HealthCheckResponse after gRPC's 5-byte
 * prefix; 0 (UNKNOWN) when absent or malformed. */
static int serving_status(const struct lb_grpc_probe *p)
{
    if (p->msg_len < 5 || p->msg[0] != 0)
        return 0;
    size_t len = ((size_t)p->msg[1] << 24) | ((size_t)p->msg[2] << 16) | ((size_t)p->msg[3] << 8) |
                 p->msg[4];
    const uint8_t *m = p->msg + 5;
    if (len > p->msg_len - 5 || len < 2 || m[0] != 0x08 || (m[1] & 0x80))
        return 0;
    return m[1];
}

int lb_grpc_probe_feed(struct lb_grpc_probe *p, const char *data, size_t len, bool *serving,
                       char *why, size_t whylen)
{
    ssize_t n = nghttp2_session_mem_recv(p->s, (const uint8_t *)data, len);
    if (n < 0) {
        snprintf(why, whylen, "bad HTTP/2: %s", nghttp2_strerror((int)n));
        return GV_EPROTO;
    }
    if (!p->closed)
        return 0;
    int st = serving_status(p);
    *serving = p->status == 200 && p->grpc_status == 0 && st == 1;
    if (p->close_code != 0)
        snprintf(why, whylen, "stream reset (%u)", (unsigned)p->close_code);
    else if (p->status != 200)
        snprintf(why, whylen, "status %d", p->status);
    else if (p->grpc_status != 0)
        snprintf(why, whylen, "grpc-status %d", p->grpc_status);
    else
        snprintf(why, whylen, "%s", st == 1 ? "SERVING" : st == 2 ? "NOT_SERVING" : "UNKNOWN");
    return 1;
}
