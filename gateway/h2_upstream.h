/* h2_upstream.h - HTTP/2 to the targets of services with protocol http2 or
 * grpc (h2c, or h2 by ALPN over the service's TLS): nghttp2 client sessions, at most GW_H2UP_CONNS
 * per target on each worker, each request one stream multiplexed on the least loaded one. Responses
 * (trailers included) are relayed through proxy.c's relay functions, so HTTP/2 and HTTP/1.1 clients
 * both get them.
 *
 * Threads: the worker's thread only. A session belongs to the worker's
 * h2_pool list and is freed when its TCP handle closes. A stream belongs to
 * its request (r->up2) until the exchange ends, and to its session until
 * nghttp2 closes it; it is freed when both are done.
 */
#ifndef GV_GATEWAY_H2_UPSTREAM_H
#define GV_GATEWAY_H2_UPSTREAM_H

#include "gateway/request.h"

#include <stdint.h>

#define GW_H2UP_CONNS       2   /* sessions per target per worker */
#define GW_H2UP_STREAMS     100 /* streams on a session before another is opened */
#define GW_H2UP_WINDOW      (256 * 1024)
#define GW_H2UP_CONN_WINDOW (1024 * 1024)

struct gw_worker;

/* Sends r to target r->target of its service (a stream on a pooled or new
 * session). Returns 0, or a negative error (r unchanged: the caller
 * answers). */
int gw_h2up_attempt(struct gw_request *r);
/* Request body bytes (copied), and its end. */
void gw_h2up_body(struct gw_request *r, const char *data, size_t len);
void gw_h2up_body_done(struct gw_request *r);
/* The client went away or was answered: the stream is cancelled. */
void gw_h2up_abort(struct gw_request *r);
/* The client drained: response bytes held back are acknowledged. */
void gw_h2up_resume(struct gw_request *r);
/* Idle sessions close after GW_POOL_IDLE_MS; all of them on drain. */
void gw_h2up_tick(struct gw_worker *w, uint64_t now_ms);
void gw_h2up_close_all(struct gw_worker *w);
/* The deadline a grpc-timeout value (len bytes) asks for, in ms; -1 when
 * it is not a valid one ("1..8 digits" then H, M, S, m, u or n). */
int64_t gw_grpc_timeout_ms(const char *v, size_t len);

#endif
