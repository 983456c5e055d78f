/* expand.h - a service's targets as the addresses they stand for.
 *
 * A target written as an address is one target. A target named by host name
 * is one target per address the name has now (as HAProxy's server-template
 * and Envoy's STRICT_DNS clusters do: a compose service scaled to 3 or a
 * Kubernetes headless service is 3 targets), each with the weight written,
 * known by its "IP:PORT" address (its health, ejection and sticky cookies
 * follow that address), and keeping the name for TLS and health probes. A
 * name with no address yet stands for no target.
 *
 * Pure: the caller says what each name resolves to. Any thread.
 */
#ifndef GV_BALANCER_EXPAND_H
#define GV_BALANCER_EXPAND_H

#include "balancer/addrset.h"
#include "balancer/service.h"

#include <stdbool.h>
#include <sys/socket.h>

/* True when the target's host is a name to resolve, not an IP literal. */
bool lb_target_is_name(const struct lb_target_spec *t);

/* What host resolves to now, or NULL while it has no address. */
typedef const struct lb_addrset *(*lb_lookup_fn)(void *arg, const char *host);

/* Builds out, a deep copy of in whose targets are addresses (see above), in
 * the order written and each name's addresses in order. An address met twice
 * (two names, a name and a literal) is one target: the first, with its
 * weight. *addrs gets each target's socket address (malloc'd, one entry per
 * target and at least one). Returns 0 or GV_ENOMEM (out and *addrs
 * untouched). */
int lb_service_expand(const struct lb_service_spec *in, lb_lookup_fn lookup, void *arg,
                      struct lb_service_spec *out, struct sockaddr_storage **addrs);

#endif
