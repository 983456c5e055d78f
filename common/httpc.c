/* httpc.c - the HTTP/1.1 client core (see httpc.h): the response parser on
 * llhttp, request heads, and a blocking exchange for command-line clients. */
#include "common/httpc.h"
#include "common/err.h"
#include "common/util.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define RESP(p) ((struct gv_httpc *)(p)->data)

static int fail(struct gv_httpc *p, int err, const char *why)
{
    p->err = err;
    p->error = why;
    return -1;
}

static int count_head(struct gv_httpc *p, size_t len)
{
    p->head_bytes += len;
    if (p->opt.max_head_bytes > 0 && p->head_bytes > p->opt.max_head_bytes)
        return fail(p, GV_ERANGE, "response head too large");
    return 0;
}

/* Keeps head bytes when headers are kept (not those of trailers). */
static int keep(struct gv_httpc *p, const char *at, size_t len)
{
    if (!p->opt.keep_headers || p->head_done)
        return 0;
    return gv_buf_append(&p->hdr, at, len) == 0 ? 0 : fail(p, GV_ENOMEM, "out of memory");
}

/* A message starts: an interim 1xx may have come before it. */
static int on_message_begin(llhttp_t *lp)
{
    struct gv_httpc *p = RESP(lp);
    p->head_bytes = 0;
    p->in_value = false;
    gv_buf_reset(&p->hdr);
    return 0;
}

static int on_status(llhttp_t *lp, const char *at, size_t len)
{
    return count_head(RESP(lp), len);
}

static int on_header_field(llhttp_t *lp, const char *at, size_t len)
{
    struct gv_httpc *p = RESP(lp);
    if (count_head(p, len) != 0)
        return -1;
    if (p->in_value && keep(p, "", 1) != 0) /* ends the previous value */
        return -1;
    p->in_value = false;
    return keep(p, at, len);
}

static int on_header_field_complete(llhttp_t *lp)
{
    struct gv_httpc *p = RESP(lp);
    p->in_value = true;
    return keep(p, "", 1);
}

static int on_header_value(llhttp_t *lp, const char *at, size_t len)
{
    struct gv_httpc *p = RESP(lp);
    return count_head(p, len) == 0 ? keep(p, at, len) : -1;
}

/* 1: no body follows (the answer to a HEAD). */
static int on_headers_complete(llhttp_t *lp)
{
    struct gv_httpc *p = RESP(lp);
    if (p->in_value && keep(p, "", 1) != 0)
        return -1;
    p->in_value = false;
    if (llhttp_get_status_code(lp) < 200)
        return 0; /* interim: the real answer follows */
    p->status = llhttp_get_status_code(lp);
    p->head_done = true;
    if (p->opt.head_only) {
        p->done = true;
        return HPE_PAUSED;
    }
    return p->opt.head_request ? 1 : 0;
}

static int on_body(llhttp_t *lp, const char *at, size_t len)
{
    struct gv_httpc *p = RESP(lp);
    if (p->opt.max_body_bytes > 0 && p->body.len + len > p->opt.max_body_bytes)
        return fail(p, GV_ERANGE, "response body too large");
    return gv_buf_append(&p->body, at, len) == 0 ? 0 : fail(p, GV_ENOMEM, "out of memory");
}

static int on_message_complete(llhttp_t *lp)
{
    struct gv_httpc *p = RESP(lp);
    if (!p->head_done)
        return 0;
    p->done = true;
    return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void gv_httpc_init(struct gv_httpc *p, const struct gv_httpc_options *opt)
{
    memset(p, 0, sizeof(*p));
    p->opt = *opt;
    gv_buf_init(&p->hdr);
    gv_buf_init(&p->body);
    llhttp_init(&p->parser, HTTP_RESPONSE, &settings);
    p->parser.data = p;
}

void gv_httpc_free(struct gv_httpc *p)
{
    gv_buf_free(&p->hdr);
    gv_buf_free(&p->body);
}

int gv_httpc_feed(struct gv_httpc *p, const char *data, size_t len)
{
    if (p->done)
        return 1;
    if (p->err != 0)
        return p->err;
    llhttp_errno_t e = llhttp_execute(&p->parser, data, len);
    if (p->done)
        return 1;
    if (e == HPE_OK)
        return 0;
    if (p->err == 0)
        p->err = GV_EPROTO;
    return p->err;
}

int gv_httpc_finish(struct gv_httpc *p)
{
    if (p->done)
        return 1;
    /* on_message_complete pauses, so llhttp_finish says HPE_PAUSED then */
    if (p->err == 0 && (llhttp_finish(&p->parser), p->done))
        return 1;
    if (p->err == 0)
        fail(p, GV_EPROTO, "connection closed before the response ended");
    return p->err;
}

const char *gv_httpc_error(const struct gv_httpc *p)
{
    if (p->error != NULL)
        return p->error;
    return p->err != 0 ? llhttp_get_error_reason(&p->parser) : "";
}

const char *gv_httpc_header(const struct gv_httpc *p, const char *name)
{
    const char *s = p->hdr.data, *end = s + p->hdr.len;
    while (s != NULL && s < end) {
        const char *value = s + strlen(s) + 1;
        if (value >= end)
            break;
        if (strcasecmp(s, name) == 0)
            return value;
        s = value + strlen(value) + 1;
    }
    return NULL;
}

int gv_httpc_put_request(struct gv_buf *b, const char *method, const char *target, const char *host,
                         const char *headers, long long content_length)
{
    int rc = gv_buf_printf(b, "%s %s HTTP/1.1\r\nHost: %s\r\n%s", method, target, host,
                           headers != NULL ? headers : "");
    if (rc == 0 && content_length >= 0)
        rc = gv_buf_printf(b, "Content-Length: %lld\r\n", content_length);
    return rc == 0 ? gv_buf_puts(b, "\r\n") : rc;
}

/* ---- blocking sockets --------------------------------------------------- */

static int connect_one(const struct addrinfo *ai, int timeout_ms)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* on Linux the send timeout bounds connect(2) too */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return fd;
    int rc = errno == EINPROGRESS ? GV_ETIMEDOUT : -errno;
    close(fd);
    return rc;
}

int gv_httpc_connect(const char *hostport, int timeout_ms, char *err, size_t errlen)
{
    char host[256], port[8];
    uint16_t portnum;
    if (gv_split_hostport(hostport, host, sizeof(host), &portnum) != 0) {
        snprintf(err, errlen, "bad address \"%s\" (HOST:PORT)", hostport);
        return GV_EINVAL;
    }
    snprintf(port, sizeof(port), "%u", portnum);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
        return GV_ENOENT;
    }
    rc = GV_ENOENT;
    for (const struct addrinfo *ai = res; ai != NULL && rc < 0; ai = ai->ai_next)
        rc = connect_one(ai, timeout_ms);
    freeaddrinfo(res);
    if (rc < 0)
        snprintf(err, errlen, "%s", rc == GV_ETIMEDOUT ? "connect timed out" : strerror(-rc));
    return rc;
}

static const char *io_error(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK ? "timed out" : strerror(e);
}

static int send_all(int fd, const char *data, size_t len, char *err, size_t errlen)
{
    for (size_t off = 0; off < len;) {
        ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);
        if (n <= 0) {
            snprintf(err, errlen, "send: %s", io_error(errno));
            return GV_EIO;
        }
        off += (size_t)n;
    }
    return 0;
}

int gv_httpc_exchange(int fd, const void *req, size_t len, struct gv_httpc *p, char *err,
                      size_t errlen)
{
    char buf[16384];
    int rc = send_all(fd, req, len, err, errlen);
    while (rc == 0) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0) {
            snprintf(err, errlen, "receive: %s", io_error(errno));
            return GV_EIO;
        }
        rc = n == 0 ? gv_httpc_finish(p) : gv_httpc_feed(p, buf, (size_t)n);
        if (rc < 0)
            snprintf(err, errlen, "%s%s", rc == GV_EPROTO && n > 0 ? "malformed response: " : "",
                     gv_httpc_error(p));
    }
    return rc < 0 ? rc : 0;
}
