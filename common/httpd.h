/* httpd.h - a small HTTP/1.1 server core on a libuv loop: connections,
 * strict request parsing (llhttp), limits and timeouts, keep-alive and
 * pipelining in order, and answers (whole, streamed, or an upgrade that hands
 * the socket's bytes to the caller). The admin API and `grapevine echo`
 * are built on it; the proxy's own codec is not.
 *
 * Threads: everything runs on the loop given to gv_httpd_start, and every
 * function here must be called on that loop's thread. Callbacks (the ops
 * tables below) are called on it too, never from inside another gv_httpd_*
 * call of the same request except where noted.
 *
 * One request at a time per connection: the next one is parsed only once the
 * previous answer has been written, so answers leave in request order and a
 * pipelining client cannot make the server buffer more than one read.
 *
 * Ownership: the core owns connections and requests. A request handed to
 * on_request is the handler's to answer, now or later; its memory (head,
 * body, ctx) stays valid until its answer has been written, or until its
 * connection has closed when it is not held (memory goes only in libuv
 * close callbacks, never inside a gv_httpd call). A held request
 * (gv_httpd_hold) stays valid until it is answered even when its client has
 * gone; the answer is then dropped.
 * The server frees itself after gv_httpd_stop once every connection has
 * closed and every held request has been answered, then calls done.
 *
 * Errors the core answers itself, as JSON {"error": "..."} with the server's
 * extra headers, then closing: 400 (malformed request), 408 (head or body not
 * received in time), 413 (body over max_body_bytes, also as soon as a
 * Content-Length says so), 431 (head over max_head_bytes or max_headers).
 * A closing connection sends FIN after its last answer and reads (and drops)
 * what the client still sends for a moment, so the client gets the answer
 * rather than a reset.
 */
#ifndef GV_COMMON_HTTPD_H
#define GV_COMMON_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct gv_httpd;
struct gv_httpd_req;
struct gv_httpd_conn;

/* 0 in any field means no limit. */
struct gv_httpd_limits {
    size_t max_head_bytes;    /* request line, header names and values, trailers */
    unsigned max_headers;     /* header fields (trailers included) */
    uint64_t max_body_bytes;  /* 413 above */
    uint64_t head_timeout_ms; /* from accept or a request's first byte to its last header */
    uint64_t body_timeout_ms; /* from the last header to the body's last byte */
    uint64_t idle_timeout_ms; /* between an answer and the next request's first byte */
    unsigned max_conns;       /* open connections; more are accepted and closed at once */
};

struct gv_httpd_ops {
    /* Bytes of per-request state (gv_httpd_ctx), zeroed when a request starts. */
    size_t ctx_size;
    /* Optional: body bytes as they arrive. Without it the core keeps the body
     * (gv_httpd_body); with it nothing is kept. Returns 0, or < 0 to close. */
    int (*on_body)(struct gv_httpd_req *r, const char *data, size_t len);
    /* The whole request is in. Answer it now or later (gv_httpd_respond,
     * gv_httpd_stream, gv_httpd_upgrade, after gv_httpd_hold/defer). */
    void (*on_request)(struct gv_httpd_req *r);
};

/* A byte transport under HTTP other than plain TCP (TLS), driven over memory
 * buffers: the core reads ciphertext from the socket and feeds it, and sends
 * what take_output gives.
 *   open: the engine for a new connection, or NULL to refuse it;
 *   feed: ciphertext read, 0 or < 0;
 *   read: > 0 plaintext bytes, 0 when it needs more input, -1 when the peer
 *         closed (close_notify), < -1 on failure;
 *   write: encrypts all of len, 0 or < 0;
 *   pending / take_output: ciphertext waiting to be sent, and taking it;
 *   close: frees the engine. */
struct gv_httpd_transport {
    void *(*open)(void *arg);
    int (*feed)(void *eng, const void *data, size_t len);
    int (*read)(void *eng, void *buf, size_t cap);
    int (*write)(void *eng, const void *data, size_t len);
    size_t (*pending)(void *eng);
    size_t (*take_output)(void *eng, void *buf, size_t cap);
    void (*close)(void *eng);
};

struct gv_httpd_config {
    const struct gv_httpd_ops *ops;
    void *arg;                                  /* gv_httpd_arg() */
    const struct gv_httpd_transport *transport; /* NULL: plain TCP */
    void *transport_arg;
    struct gv_httpd_limits limits;
    const char *extra_headers; /* "Name: value\r\n" lines on every answer, or NULL; copied */
    int backlog;               /* listen(2)'s; 0: 128 */
};

/* Listens on addr (port 0: the kernel picks one). Returns 0, or a negative
 * error (bind, listen, out of memory) with *out untouched. */
int gv_httpd_start(uv_loop_t *loop, const struct sockaddr *addr, const struct gv_httpd_config *cfg,
                   struct gv_httpd **out);
/* The address listened on. 0 or a negative error. */
int gv_httpd_sockname(const struct gv_httpd *s, struct sockaddr_storage *ss);
/* Stops accepting. now: every connection closes at once. Else idle
 * connections and those still receiving a request close now, and the others
 * once their answer is written. done(arg) (may be NULL) comes from a close
 * callback once the server is freed (see the top of this file). */
void gv_httpd_stop(struct gv_httpd *s, bool now, void (*done)(void *arg), void *arg);

/* ---- the request (valid as said at the top) ---- */

void *gv_httpd_arg(const struct gv_httpd_req *r);
void *gv_httpd_ctx(struct gv_httpd_req *r);
int gv_httpd_method(const struct gv_httpd_req *r); /* llhttp's HTTP_GET, ... */
const char *gv_httpd_method_name(const struct gv_httpd_req *r);
/* The target's path (an absolute-form target's too) and its query (after
 * '?', "" when none). Neither is NUL-terminated at len. */
const char *gv_httpd_path(const struct gv_httpd_req *r, size_t *len);
const char *gv_httpd_query(const struct gv_httpd_req *r, size_t *len);
/* The first header (not trailer) named name (any case), NUL-terminated, or
 * NULL. */
const char *gv_httpd_header(const struct gv_httpd_req *r, const char *name);
/* Every header and trailer in arrival order: i < gv_httpd_nheaders. */
size_t gv_httpd_nheaders(const struct gv_httpd_req *r);
void gv_httpd_header_at(const struct gv_httpd_req *r, size_t i, const char **name, size_t *nlen,
                        const char **value, size_t *vlen);
/* The body kept by the core (no on_body); "" with *len 0 when none. */
const char *gv_httpd_body(const struct gv_httpd_req *r, size_t *len);
/* Whether the client asked to upgrade (Upgrade header, or CONNECT). Unless
 * the handler upgrades, the connection closes after the answer. */
bool gv_httpd_wants_upgrade(const struct gv_httpd_req *r);

/* ---- answers: exactly one per request ---- */

/* headers: "Name: value\r\n" lines or NULL. The core adds Content-Length
 * (none for 1xx, 204 and 304), Connection and the server's extra headers;
 * HEAD requests get no body. Copies what it needs. Returns 0 (also when the
 * client has gone) or a negative error (the connection is closed). */
int gv_httpd_respond(struct gv_httpd_req *r, int status, const char *headers, const void *body,
                     size_t len);
/* A streamed answer: length bytes (Content-Length), or < 0 for chunked
 * (close-delimited to HTTP/1.0 clients). pull(r) is called each time the
 * previous piece has been written (first after the head), and answers with
 * one gv_httpd_stream_write or gv_httpd_stream_end, now or later. */
int gv_httpd_stream(struct gv_httpd_req *r, int status, const char *headers, int64_t length,
                    void (*pull)(struct gv_httpd_req *r));
int gv_httpd_stream_write(struct gv_httpd_req *r, const void *data, size_t len);
int gv_httpd_stream_end(struct gv_httpd_req *r);
/* For a long stream (server-sent events): cb(r) is called once, from the
 * connection's close callback, when the connection closes before the answer
 * has ended (client gone, write failed, server stopped now); r is freed
 * right after cb returns. NULL cancels it. */
void gv_httpd_on_close(struct gv_httpd_req *r, void (*cb)(struct gv_httpd_req *r));
/* Keeps r valid past its connection's close, until it is answered. */
void gv_httpd_hold(struct gv_httpd_req *r);
/* Calls cb(r) after ms on the connection's timer (not for held requests);
 * nothing is called when the connection closes first. */
void gv_httpd_defer(struct gv_httpd_req *r, uint64_t ms, void (*cb)(struct gv_httpd_req *r));

/* ---- upgrades ---- */

/* What an upgraded connection calls back; arg is gv_httpd_upgrade's.
 *   on_data: bytes from the client (after the request that upgraded; the
 *            first may come before gv_httpd_upgrade has returned);
 *   on_written: a write has left (for flow control, see tunnel_queued);
 *   on_close: the connection has closed (from its close callback, never
 *             inside a gv_httpd call); the last call, arg may go. */
struct gv_httpd_tunnel_ops {
    void (*on_data)(void *arg, struct gv_httpd_conn *c, const char *data, size_t len);
    void (*on_written)(void *arg, struct gv_httpd_conn *c);
    void (*on_close)(void *arg);
};

/* Answers r with "101 Switching Protocols" plus headers (which say what to,
 * e.g. "Upgrade: websocket\r\nConnection: Upgrade\r\n") and hands the
 * connection's bytes to ops from then on. r is gone once this returns.
 * Returns the connection, or NULL (out of memory, client gone: closed). */
struct gv_httpd_conn *gv_httpd_upgrade(struct gv_httpd_req *r, const char *headers,
                                       const struct gv_httpd_tunnel_ops *ops, void *arg);
/* Sends len bytes (copied). 0 or a negative error. */
int gv_httpd_tunnel_write(struct gv_httpd_conn *c, const void *data, size_t len);
/* Bytes written but not yet sent. */
size_t gv_httpd_tunnel_queued(const struct gv_httpd_conn *c);
/* Stops or resumes reading from the client. */
void gv_httpd_tunnel_pause(struct gv_httpd_conn *c, bool paused);
/* Closes after what is queued has been sent (on_close still comes). */
void gv_httpd_tunnel_close(struct gv_httpd_conn *c);

/* The reason phrase of a status code ("Not Found"); "Unknown" for others. */
const char *gv_http_reason(int status);

#endif
