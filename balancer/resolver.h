/* resolver.h - keeps the addresses of the host names that targets use.
 *
 * Each name is looked up with uv_getaddrinfo (the system resolver, on
 * libuv's thread pool: /etc/hosts, DNS, whatever nsswitch says; it gives no
 * TTLs, so names are polled): when it first appears, then every
 * resolve_every (the smallest of the services using it), and soon after a
 * connect to one of its addresses failed (lb_resolver_nudge, at most once a
 * second per name). A lookup that fails keeps the addresses the name had
 * (a DNS outage does not empty a service) and is tried again within a
 * second; a name that never resolved is retried the same way, never given
 * up. At most two lookups run at once, so slow DNS cannot take the whole
 * thread pool (shared with file I/O); the other names wait their turn.
 *
 * Threads: everything runs on one libuv loop (the node's control loop):
 * every function must be called on that loop's thread, and `changed` is
 * called there, never from inside a call of this API.
 *
 * Memory: lb_resolver_set copies the names it needs. Sets returned by
 * lb_resolver_get belong to the resolver and stay valid until the next
 * call of lb_resolver_set or the next run of the loop.
 */
#ifndef GV_BALANCER_RESOLVER_H
#define GV_BALANCER_RESOLVER_H

#include "balancer/addrset.h"
#include "balancer/service.h"

#include <stddef.h>
#include <uv.h>

struct lb_resolver;

/* Creates a resolver with no names on loop. changed(arg) is called after a
 * lookup gave a name a different set of addresses (its first one
 * included). Returns 0 or GV_ENOMEM (*out untouched). */
int lb_resolver_start(uv_loop_t *loop, void (*changed)(void *arg), void *arg,
                      struct lb_resolver **out);

/* Makes the followed names exactly the host names of the targets of
 * specs[0..n) (IP literals need no lookup). A name kept keeps its addresses
 * and takes the new interval; a new one is looked up now; one no longer used
 * is dropped (a lookup in flight is cancelled or ignored). Returns 0, or
 * GV_ENOMEM with the followed set unchanged. */
int lb_resolver_set(struct lb_resolver *r, const struct lb_service_spec *specs, size_t n);

/* The addresses host has now, or NULL while it has none (never resolved, or
 * not followed). */
const struct lb_addrset *lb_resolver_get(const struct lb_resolver *r, const char *host);

/* Why the last lookup of host failed ("" when it did not, or host is not
 * followed); valid like a set from lb_resolver_get. */
const char *lb_resolver_error(const struct lb_resolver *r, const char *host);

/* A connect to an address of host failed: look it up again soon, at most
 * once a second. Nothing for a name not followed. */
void lb_resolver_nudge(struct lb_resolver *r, const char *host);

/* Drops every name and frees the resolver; done(arg) is called on the loop
 * once its last handle has closed and its last lookup has returned (never
 * from inside this call). done may be NULL. */
void lb_resolver_stop(struct lb_resolver *r, void (*done)(void *arg), void *arg);

#endif
