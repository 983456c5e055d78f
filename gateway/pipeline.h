/* pipeline.h - the request pipeline inside one worker, shared by worker.c
 * (loop, listener, views, timeouts), conn.c (client side) and proxy.c
 * (upstream side). Everything here runs on the worker's thread only.
 *
 * Ownership: a gw_conn owns at most one gw_request (requests on a connection
 * are served one at a time, in order, which is what answers pipelined requests
 * in order). A request owns at most one gw_upstream while it is being served;
 * when the response ends, a reusable upstream goes back to the worker's pool.
 * A request holds a reference on the gw_view (config generation) it started
 * with, so a config change never affects a request in flight.
 */
#ifndef GV_GATEWAY_PIPELINE_H
#define GV_GATEWAY_PIPELINE_H

#include "balancer/lb.h"
#include "common/buf.h"
#include "gateway/http.h"
#include "gateway/request.h"
#include "gateway/worker.h"

#include <llhttp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define GW_HIGH_WATER    (256 * 1024) /* stop reading the other side above this */
#define GW_LOW_WATER     (64 * 1024)  /* resume below this */
#define GW_POOL_MAX_IDLE 128          /* idle upstream connections per target */
#define GW_POOL_IDLE_MS  60000        /* idle upstream connections closed after */
#define GW_DRAIN_MS      30000        /* SIGTERM: connections still busy after this are cut */
#define GW_LINGER_MS     5000         /* an error answer's connection drains input this long */

/* One config generation as this worker sees it: the shared snapshot plus this
 * worker's balancer instances (lock-free because they are per worker). */
struct gw_view {
    struct gw_snapshot *snap;
    struct lb_balancer **balancers; /* per service */
    int refs;                       /* worker thread only */
};

/* Intrusive doubly linked list. */
struct gw_link {
    struct gw_link *prev, *next;
};

struct gw_upstream;
struct gw_tls;
struct gw_tls_ctxset;
struct gw_up_tls;
struct gw_h2;

struct gw_worker {
    struct gw_worker_config cfg;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_tcp_t tls_listener; /* when cfg.tls is set */
    uv_async_t wakeup;
    uv_timer_t ticker; /* drives client timeouts and pool expiry */
    pthread_t thread;
    _Atomic int drain_requested;
    _Atomic int finished; /* the thread's loop has ended (drained) */
    bool draining;
    int nconns;
    struct gw_view *view;
    struct gw_link idle_conns;   /* waiting for a request; oldest first */
    struct gw_link head_conns;   /* receiving a request head; oldest first */
    struct gw_link busy_conns;   /* serving a request or tunnelling */
    struct gw_link linger_conns; /* answered with an error, draining input; oldest first */
    uint64_t drain_deadline_ms;
    struct gw_link pool;      /* idle upstream connections; oldest first */
    struct gw_link h2_pool;   /* HTTP/2 upstream sessions (gateway/h2_upstream.h) */
    char read_buf[64 * 1024]; /* every client read lands here, then is parsed */
    bool read_buf_busy;
    struct gv_buf log;            /* access log lines waiting to be written */
    struct gw_request *req_cache; /* finished requests kept for reuse */
    int nreq_cache;
    struct gw_conn *corked; /* writes to this connection are gathered... */
    struct gv_buf cork;     /* ...here, and sent in one write on uncork */
};

struct gw_conn {
    uv_tcp_t tcp; /* first: the handle's memory is the connection's */
    llhttp_t parser;
    struct gw_worker *w;
    struct gw_request *req;
    struct gw_link link; /* in idle_conns, head_conns or busy_conns */
    uint64_t since_ms;
    char *pending; /* unparsed bytes kept while a request is served */
    uint32_t pending_len;
    uint32_t out_bytes;  /* bytes written to the client not yet flushed */
    uint32_t head_bytes; /* size of the request head so far */
    struct gw_peer peer;
    uint8_t error_status; /* set by a parser callback before failing: 1=414, 2=431 */
    /* One bit each: an idle keep-alive connection is this struct and its
     * socket, so its size is the memory per idle connection (bench.sh); as
     * bools these took 11 bytes and the struct one 16-byte malloc step more. */
    bool closing : 1;
    bool in_parse : 1;      /* inside llhttp_execute: closing is deferred */
    bool close_pending : 1; /* close once in_parse ends */
    bool close_after_write : 1;
    bool broken : 1; /* a write failed: nothing more is sent */
    bool reading : 1;
    bool tunnel : 1;      /* upgraded: bytes pass through untouched */
    bool tls_raw : 1;     /* writing ciphertext: gw_conn_write passes it through */
    bool linger : 1;      /* an error answer may leave unread input: close lingering */
    bool lingering : 1;   /* answered and shut for writing; reading until EOF or the deadline */
    bool proto_known : 1; /* the first bytes chose HTTP/1.1 or HTTP/2 */
    struct gw_tls *tls;   /* NULL on plain TCP connections */
    struct gw_h2 *h2;     /* the HTTP/2 session (gateway/h2.h); NULL on HTTP/1.1 */
};

enum gw_up_state { GW_UP_CONNECTING, GW_UP_ACTIVE, GW_UP_IDLE, GW_UP_CLOSING };

struct gw_upstream {
    uv_tcp_t tcp;
    llhttp_t parser;
    uv_timer_t timer;
    uv_connect_t connect_req;
    struct gw_worker *w;
    struct gw_request *req; /* NULL while idle in the pool */
    struct gw_link link;    /* in the pool while idle */
    enum gw_up_state state;
    char address[262]; /* pool key: the target's address */
    uint64_t idle_since_ms;
    uint64_t out_bytes; /* bytes written upstream not yet flushed */
    bool reused;        /* came from the pool */
    bool got_bytes;     /* any response byte seen */
    bool in_parse;
    bool close_pending;
    bool reading;
    bool tunnel;
    bool done;     /* response complete: release after the parser returns */
    bool skip_1xx; /* an interim response is being dropped */
    bool counted;  /* holds one in-flight count on its target */
    int service;   /* attempt's service and target, for passive health */
    int target;
    uint64_t attempt_us;
    int handles;               /* open libuv handles (tcp, timer) until freed */
    struct gw_up_tls *tls_ctx; /* a TLS service's context (one ref), else NULL */
    struct gw_tls *tls;        /* the TLS engine once connected; NULL on plain TCP */
};

/* worker.c */
void gw_link_init(struct gw_link *l);
void gw_link_remove(struct gw_link *l);
void gw_link_append(struct gw_link *head, struct gw_link *l);
bool gw_link_empty(const struct gw_link *head);
struct gw_view *gw_worker_view(struct gw_worker *w); /* current view, new ref */
void gw_view_unref(struct gw_view *v);
void gw_worker_log(struct gw_worker *w, const char *line, size_t len);
void gw_worker_conn_gone(struct gw_worker *w);

/* conn.c */
/* Accepts one connection from server; tls is the certificate set for a TLS
 * listener (the connection takes its own reference), NULL for plain TCP. */
void gw_conn_accept(struct gw_worker *w, uv_stream_t *server, struct gw_tls_ctxset *tls);
/* A request on c (from the worker's cache), and its release. */
struct gw_request *gw_request_new(struct gw_conn *c);
void gw_request_free(struct gw_request *r);
/* Writes bytes to the client (copied). Returns 0 or a negative error. */
int gw_conn_write(struct gw_conn *c, const void *data, size_t len);
void gw_conn_close(struct gw_conn *c);
/* The response has been fully written to the client (or abandoned). */
void gw_request_finish(struct gw_request *r, bool ok);
/* Upstream side has drained below the low-water mark: resume the client. */
void gw_conn_resume_body(struct gw_conn *c);
void gw_conn_close_idle(struct gw_worker *w);
void gw_request_cache_clear(struct gw_worker *w);
/* Gathers writes to c until gw_conn_uncork(), so a response head and body
 * parsed from one upstream read leave in one system call. */
void gw_conn_cork(struct gw_conn *c);
void gw_conn_uncork(struct gw_conn *c);
void gw_conn_tick(struct gw_worker *w, uint64_t now_ms);

/* proxy.c */
/* Picks a target and sends the request head to it (from the pool or a new
 * connection). On no available target answers 503 itself. */
void gw_proxy_start(struct gw_request *r);
/* Hands request body bytes to the upstream side (copied). */
void gw_proxy_body(struct gw_request *r, const char *data, size_t len);
/* The client finished sending the request. */
void gw_proxy_body_done(struct gw_request *r);
/* The client went away: abandon the upstream exchange. */
void gw_proxy_abort(struct gw_request *r);
/* Client writes drained: resume reading the upstream response. */
void gw_proxy_resume(struct gw_request *r);
/* Tunnel bytes client -> upstream. */
void gw_proxy_tunnel_write(struct gw_request *r, const char *data, size_t len);
/* Relaying a response to the client, whatever its protocol: the head
 * (length -1 when unknown; end: no body follows), body bytes (true when the
 * client is behind: stop reading the upstream until gw_proxy_resume), and
 * the end of the body. */
int gw_proxy_relay_head(struct gw_request *r, int64_t length, bool end);
/* An attempt's outcome for passive health and the latency EWMA
 * (lb_target_report), saying once when it ejects the target. */
void gw_proxy_report(struct gw_request *r, int service, int target, bool ok, uint64_t latency_us);
bool gw_proxy_relay_body(struct gw_request *r, const char *at, size_t len);
void gw_proxy_relay_end(struct gw_request *r);
/* The target path (into target) and headers (into out) an HTTP/2 upstream
 * gets: what an HTTP/1.1 one gets, without the framing. */
int gw_proxy_up_h2_head(struct gw_request *r, struct gw_hdr_out *out, struct gv_buf *target);
/* An attempt failed before its response started: another try, or the
 * answer status. */
void gw_proxy_failed(struct gw_request *r, int status, const char *why);
/* The upstream is behind on the request body: the client's side waits
 * (HTTP/1.1 stops reading, HTTP/2 holds the window), then goes on. */
void gw_proxy_client_pause(struct gw_request *r);
void gw_proxy_client_resume(struct gw_request *r);
void gw_pool_tick(struct gw_worker *w, uint64_t now_ms);
void gw_pool_close_all(struct gw_worker *w);
/* Closes the pooled connections that snap has no target for (an address its
 * host name no longer has, a target or TLS context a config change
 * removed): requests would never take them again. */
void gw_pool_prune(struct gw_worker *w, const struct gw_snapshot *snap);

#endif
