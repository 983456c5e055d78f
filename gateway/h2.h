/* h2.h - the HTTP/2 codec of client connections (nghttp2 does the framing
 * and HPACK): h2 over TLS chosen by ALPN, h2c with prior knowledge on the
 * cleartext listener. Each stream becomes a gw_request that runs the same
 * routing, plugins, balancing and proxy as an HTTP/1.1 request; the response
 * goes back as HEADERS and DATA frames.
 *
 * Threads: everything runs on the connection's worker thread. A gw_h2
 * belongs to its gw_conn (conn.c frees it with the connection). A stream
 * belongs to the gw_h2 and owns its request until the request finishes; the
 * request is freed then, and the stream lives on until nghttp2 has sent the
 * rest of its response.
 *
 * Limits (docs/http2.md): GW_H2_MAX_STREAMS concurrent streams, the node's
 * max_header_bytes/max_headers per header block, at most
 * GW_H2_MAX_CONTINUATIONS CONTINUATION frames per block, a 4 KiB HPACK
 * table, GW_H2_STREAM_WINDOW per stream and GW_H2_CONN_WINDOW per
 * connection for request bodies (returned only as the upstream takes them),
 * GW_H2_STREAM_OUT_HIGH response bytes buffered per stream, and a token
 * bucket on RST_STREAM (rapid reset) ending the connection with GOAWAY
 * ENHANCE_YOUR_CALM. SETTINGS and PING floods end it through nghttp2's
 * outbound-ACK limit.
 */
#ifndef GV_GATEWAY_H2_H
#define GV_GATEWAY_H2_H

#include "gateway/request.h"

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>

#define GW_H2_MAX_STREAMS       100
#define GW_H2_STREAM_WINDOW     (256 * 1024)
#define GW_H2_CONN_WINDOW       (1024 * 1024)
#define GW_H2_STREAM_OUT_HIGH   (128 * 1024)
#define GW_H2_STREAM_OUT_LOW    (32 * 1024)
#define GW_H2_MAX_CONTINUATIONS 8
#define GW_H2_MAX_SETTINGS      32   /* entries in one SETTINGS frame */
#define GW_H2_MAX_OUTBOUND_ACK  1000 /* SETTINGS/PING ACKs queued unsent */
#define GW_H2_RESET_BURST       200  /* RST_STREAM frames a client may send at once... */
#define GW_H2_RESET_RATE        100  /* ...and per second after that */

struct gw_conn;
struct gw_h2;
struct gw_h2_stream;

/* ---- the connection (conn.c) ------------------------------------------- */

/* Whether a connection whose first bytes are data (len bytes) speaks h2:
 * h2 chosen by ALPN on TLS, else the client preface (prior knowledge). */
bool gw_h2_detect(const struct gw_conn *c, const char *data, size_t len);
/* Makes c an HTTP/2 connection and queues the server's SETTINGS. Returns 0
 * or a negative error (c unchanged). */
int gw_h2_start(struct gw_conn *c);
/* Bytes from the client. May close the connection. */
void gw_h2_feed(struct gw_conn *c, const char *data, size_t len);
/* Sends what nghttp2 has queued, while the client's socket keeps up. */
void gw_h2_flush(struct gw_conn *c);
/* Output drained below the low-water mark: sending goes on. */
void gw_h2_drained(struct gw_conn *c);
/* Graceful drain: GOAWAY naming the last stream taken; the connection
 * closes once its streams are done. */
void gw_h2_goaway(struct gw_conn *c);
/* Whether the connection has streams still being served. */
bool gw_h2_busy(const struct gw_conn *c);
/* The connection is closing: a last GOAWAY when it can still be sent, then
 * every stream's request is dropped (logged 499 when unanswered). */
void gw_h2_close(struct gw_conn *c);
void gw_h2_free(struct gw_h2 *h);

/* ---- a stream's request (conn.c answers, proxy.c relays) --------------- */

/* A sink gathering response headers for the request's stream (names are
 * lowercased as HTTP/2 requires). */
void gw_h2_hdr_out(struct gw_request *r, struct gw_hdr_out *o);
/* Sends the gathered headers with status; body says whether DATA follows
 * (gw_h2_body, then gw_h2_finish). Returns 0 or a negative error. */
int gw_h2_respond(struct gw_request *r, int status, bool body);
/* Response body bytes (copied). */
int gw_h2_body(struct gw_request *r, const char *data, size_t len);
/* A response trailer (copied), sent after the body. Returns 0 or a
 * negative error. */
int gw_h2_trailer(struct gw_request *r, const char *name, size_t nl, const char *value, size_t vl);
/* Whether the stream has buffered enough response: the upstream pauses. */
bool gw_h2_backlogged(const struct gw_request *r);
/* The request ends: ok ends the response normally, else the stream is
 * reset. Frees r. */
void gw_h2_finish(struct gw_request *r, bool ok);
/* The upstream is not taking the request body: stop returning window. */
void gw_h2_hold_body(struct gw_request *r);
/* It takes it again: return the window held back. */
void gw_h2_resume_body(struct gw_request *r);

#endif
