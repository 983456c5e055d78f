/* request.h - one request as routing, plugins and the proxy see it, whatever
 * protocol brought it: its head (method, target, headers), its body as it
 * streams, the route it matched, who sent it (peer, consumer, request id),
 * the plugins' per-request state, and the calls that answer it.
 *
 * The HTTP/1.1 codec (conn.c) and the HTTP/2 codec (h2.c) fill the same
 * fields. Plugins use only the functions below, never the codec's state.
 *
 * Threads: a request lives and dies on one worker thread. It holds a
 * reference on the gw_view (config generation) it was routed with, so a
 * config change never affects a request in flight; strings it points to in
 * that view live as long as the request.
 */
#ifndef GV_GATEWAY_REQUEST_H
#define GV_GATEWAY_REQUEST_H

#include "common/buf.h"
#include "gateway/http.h"
#include "gateway/trace.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_MAX_TRIES  8   /* 1 + retries, at most */
#define GW_CTX_SLOTS  32  /* plugin context slots (= registered plugins, at most) */
#define GW_CTX_BYTES  512 /* room for every plugin's context in one request */
#define GW_REQUEST_ID 65  /* up to 64 bytes: room for a client's UUID */
#define GW_HIDE_QUERY 2   /* query parameters an auth plugin may take out */

struct gw_conn;
struct gw_h2_stream;
struct gw_h2up_stream;
struct gw_worker;
struct gw_upstream;
struct gw_view;
struct gw_chain;

/* A header to send (name and value are not copied by the call's caller; the
 * sink copies). */
struct gw_hdr {
    const char *name;
    const char *value;
};

/* Where plugins and the proxy add header lines: the codec decides what a
 * header becomes on the wire (a "Name: value\r\n" line, an HPACK entry). */
struct gw_hdr_out {
    int (*add)(struct gw_hdr_out *o, const char *name, size_t nlen, const char *value, size_t vlen);
    void *data;
};

static inline int gw_hdr_add(struct gw_hdr_out *o, const char *name, size_t nlen, const char *value,
                             size_t vlen)
{
    return o->add(o, name, nlen, value, vlen);
}

/* A sink appending "Name: value\r\n" lines to b (HTTP/1.1). */
void gw_hdr_out_h1(struct gw_hdr_out *o, struct gv_buf *b);

/* The client's address: family AF_INET or AF_INET6, bytes in network order. */
struct gw_peer {
    uint8_t family;
    uint8_t addr[16];
};

/* Response framing towards the client (HTTP/1.1). */
enum gw_framing { GW_FRAME_NONE, GW_FRAME_LENGTH, GW_FRAME_CHUNKED, GW_FRAME_CLOSE };

struct gw_request {
    struct gw_conn *conn;        /* the connection it came on */
    struct gw_h2_stream *stream; /* its HTTP/2 stream (gateway/h2.h); NULL on HTTP/1.1 */
    struct gw_worker *worker;
    struct gw_request *next_free; /* in the worker's request cache */
    struct gw_view *view;
    uint64_t start_us;
    const struct gw_peer *peer; /* the connection's */
    bool tls;                   /* came over TLS */
    /* Parsed head: all strings live in `head`, referenced by offsets. */
    struct gv_buf head;
    struct gv_buf npath;       /* the normalised path, when it differs (gateway/path.h) */
    struct gw_headers hdrs;    /* request headers, in head */
    uint32_t url_off, url_len; /* the target; for an absolute-form one, its path on */
    uint32_t authority_off, authority_len; /* an absolute-form target's host[:port], else 0 */
    uint8_t method;                        /* llhttp's HTTP_* */
    uint8_t http_major, http_minor;
    bool keep_alive; /* client wants the connection kept */
    bool expect_continue;
    bool upgrade;         /* an upgrade the route allows (WebSocket) is asked for */
    bool upgrade_refused; /* one it does not allow was: proxied plain, then closed */
    bool path_norm;       /* npath holds the path routing saw */
    bool body_chunked;    /* request body is chunked */
    bool has_body;
    bool head_done;        /* head parsed */
    bool dispatch_pending; /* routed; the proxy starts after this parse */
    bool body_done;        /* the whole body was received */
    bool response_started; /* first response byte sent to the client */
    bool finished;
    /* Body accounting. */
    uint64_t content_length; /* request Content-Length when given */
    bool has_length;
    uint64_t body_seen; /* body bytes received so far */
    uint64_t body_sent; /* body bytes handed to an upstream */
    /* Routing and balancing. */
    int route, service;
    size_t strip_len;
    int tried[GW_MAX_TRIES];
    int ntried;
    int target;
    bool sticky_set; /* a Set-Cookie for stickiness goes into the response */
    struct gw_upstream *up;
    struct gw_h2up_stream *up2; /* its stream to an HTTP/2 upstream, instead of up */
    struct gv_buf up_head;      /* the request head as sent upstream */
    struct gv_buf body_q;       /* body bytes received before upstream was ready */
    /* Response. */
    int status;
    struct gv_buf resp;      /* response head being assembled */
    struct gw_headers rhdrs; /* response headers, in resp */
    enum gw_framing framing;
    uint64_t bytes_in, bytes_out;
    uint64_t up_first_us; /* the first upstream attempt began (0: none) */
    uint64_t up_head_us;  /* the upstream's response head was in (0: not yet) */
    /* Identity. */
    char request_id[GW_REQUEST_ID];
    struct gw_trace trace; /* this hop's span (gateway/trace.h) */
    const char *consumer;  /* identified by an auth plugin: a name in the view, or NULL */
    const char *hide_query[GW_HIDE_QUERY]; /* query parameters not sent upstream */
    uint8_t nhide_query;
    /* Plugins: the route's chain, how many of its plugins ran on_request,
     * and their context slots (allocated from ctx_mem on first use). */
    const struct gw_chain *chain;
    uint8_t ran;
    uint32_t ctx_live; /* bit per slot: ctx[slot] is set for this request */
    uint32_t ctx_used;
    void *ctx[GW_CTX_SLOTS];
    _Alignas(16) unsigned char ctx_mem[GW_CTX_BYTES];
};

/* ---- the head ---------------------------------------------------------- */

/* The first header called name (case-insensitive), its length in *len; NULL
 * when absent. */
const char *gw_request_header(const struct gw_request *r, const char *name, size_t *len);
/* The request target as received ("/a//b?x=1"), its path part as received
 * ("/a//b"), and the normalised path routing and plugins see ("/a/b",
 * gateway/path.h). */
const char *gw_request_target(const struct gw_request *r, size_t *len);
const char *gw_request_raw_path(const struct gw_request *r, size_t *len);
const char *gw_request_path(const struct gw_request *r, size_t *len);
/* The first value of query parameter name, percent-decoded into buf (n
 * bytes). Returns its length, or -1 when absent, empty or longer than buf. */
long gw_request_query_param(const struct gw_request *r, const char *name, char *buf, size_t n);
/* The matched route's name ("" before routing). */
const char *gw_request_route_name(const struct gw_request *r);

/* ---- routing and the log ------------------------------------------------ */

/* Routes the request with the worker's current config: takes a view,
 * normalises the path, matches host (the Host or :authority value, hlen
 * bytes; NULL when none), method, path and headers, applies the route's
 * rules on escaped slashes and upgrades, and sets route, service and the
 * plugin chain. Returns 0, or answers the request itself (400 a path that
 * cannot be normalised or an escaped slash the route refuses, 404 no route,
 * 503 no config) and returns a negative error. */
int gw_request_route(struct gw_request *r, const char *host, size_t hlen);
/* Records a finished request: the latency histogram, and one JSON line in
 * the access log when it is on (gateway/access_log.c). */
void gw_access_log(struct gw_request *r, uint64_t dur_us);

/* ---- identity ---------------------------------------------------------- */

/* A client-supplied id is kept when it is 1..64 bytes of [A-Za-z0-9._-]. */
bool gw_request_id_valid(const char *v, size_t len);
/* Takes v as the request id when valid (true), else leaves it (false). */
bool gw_request_set_id(struct gw_request *r, const char *v, size_t len);
/* A fresh random id (32 hex digits). */
void gw_request_new_id(struct gw_request *r);
/* Once the head is in, whatever the codec: a valid X-Request-Id from the
 * client is kept (the request_id plugin may choose another header), else a
 * random one; a valid traceparent is continued, else a trace starts here
 * (gateway/trace.h). */
void gw_request_identify(struct gw_request *r);
/* The consumer an auth plugin identified: a string that outlives the request
 * (one in the snapshot). Sent upstream as X-Consumer, logged, used by
 * rate limits keyed by consumer. */
void gw_request_set_consumer(struct gw_request *r, const char *name);
/* Keeps query parameter name (a string that outlives the request) out of the
 * target sent upstream. */
void gw_request_hide_query(struct gw_request *r, const char *name);

/* ---- answers (conn.c) --------------------------------------------------- */

/* Sends an error response ({"error": msg, "request_id": ...}) for the
 * request and ends it; extra headers (n of them) go with it. */
void gw_request_fail(struct gw_request *r, int status, const char *msg);
void gw_request_fail_with(struct gw_request *r, int status, const char *msg,
                          const struct gw_hdr *extra, size_t n);
/* Answers the request with a bodiless response (a CORS preflight's 204)
 * carrying extra headers, and ends it. */
void gw_request_answer(struct gw_request *r, int status, const struct gw_hdr *extra, size_t n);

/* ---- plugin state (pipeline.c) ----------------------------------------- */

/* The context of the plugin in slot, size bytes zeroed on first use in this
 * request; NULL when the request's room is used up (the plugin then treats
 * the request as if it had no state: see each plugin). */
void *gw_request_ctx(struct gw_request *r, int slot, size_t size);

#endif
