/* grpc_probe.h - the HTTP/2 side of a grpc.health.v1.Health/Check probe
 * (nghttp2 over memory; the caller carries the bytes over TCP or TLS): the bytes of the request,
 * then the target's bytes fed in until a verdict. The probe asks for the server's overall health
 * (an empty HealthCheckRequest) and passes only on HTTP 200, grpc-status 0 and a
 * HealthCheckResponse whose status is SERVING (1).
 *
 * Threads: a probe belongs to one caller on one thread; no callbacks.
 */
#ifndef GV_BALANCER_GRPC_PROBE_H
#define GV_BALANCER_GRPC_PROBE_H

#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>

struct lb_grpc_probe;

/* A probe whose request names authority (":authority"). Returns 0 or
 * GV_ENOMEM (*out untouched). */
int lb_grpc_probe_new(const char *authority, struct lb_grpc_probe **out);
void lb_grpc_probe_free(struct lb_grpc_probe *p);
/* Appends what the probe has to send (the request first, then SETTINGS
 * ACKs) to out. Returns 0 or a negative error. */
int lb_grpc_probe_output(struct lb_grpc_probe *p, struct gv_buf *out);
/* Feeds the target's bytes. Returns 0 while the answer is incomplete, 1
 * with the verdict in *serving and its reason in why (whylen bytes), or
 * a negative error (why says what was wrong). */
int lb_grpc_probe_feed(struct lb_grpc_probe *p, const char *data, size_t len, bool *serving,
                       char *why, size_t whylen);

#endif
