/* tls_upstream.h - TLS towards upstream services: one client context per
 * TLS service (verification, CA bundle, SNI name) with a cache of sessions
 * per target, so a new connection to a target resumes its last session.
 *
 * Threads and ownership: a gw_up_tls is built by the node when it builds a
 * config snapshot (it reads the CA file there, never on a worker loop), is
 * immutable apart from its session cache (locked, touched once per new
 * connection) and is refcounted: the snapshot holds one reference and each
 * upstream connection one, so a connection outlives a config change.
 */
#ifndef GV_GATEWAY_TLS_UPSTREAM_H
#define GV_GATEWAY_TLS_UPSTREAM_H

#include "balancer/service.h"

#include <stddef.h>

struct gw_up_tls;
struct gw_tls;

/* Builds the context for spec (TLS 1.2+, ALPN http/1.1; with spec->verify the
 * peer chain is checked against spec->ca_file or the system bundle). Returns 0,
 * or a negative error with a message in err (*out unchanged). */
int gw_up_tls_new(const struct lb_tls_spec *spec, struct gw_up_tls **out, char *err, size_t errlen);
void gw_up_tls_ref(struct gw_up_tls *u);
void gw_up_tls_unref(struct gw_up_tls *u);

/* A client engine for one connection to target (host as in the target's
 * address; address is the session cache key). SNI is server_name, else host
 * when it is a DNS name; with verify the certificate must match that name
 * (or host's IP address). Returns NULL when out of memory. */
struct gw_tls *gw_up_tls_client(struct gw_up_tls *u, const char *host, const char *address);

/* Makes a client engine offer h2 alone in ALPN (targets of http2 and grpc
 * services); call before the handshake. */
void gw_up_tls_offer_h2(struct gw_tls *t);

#endif
