/* health.h - active HTTP health checks of the targets of every service.
 *
 * Threads: everything runs on one libuv loop, the node's control thread.
 * lb_health_start/set/stop must be called on that loop's thread, and every
 * callback runs there. Workers see the verdicts only through the atomic
 * fields of lb_target_state (active_healthy, reason, last_check_ms); the
 * check_successes/check_failures counters belong to this module alone.
 *
 * Memory: lb_health_set copies what it needs from the specs (service names,
 * addresses, paths, timings), so they may be freed once it returns. Target
 * states are borrowed: they come from an lb_registry, which must outlive the
 * checker (free it after lb_health_stop's callback). The checker frees its
 * memory in libuv close callbacks, so after lb_health_stop the loop must keep
 * running until the done callback has been called.
 *
 * A probe: resolve the host (numeric addresses skip the resolver; names go
 * through uv_getaddrinfo, trying each address in turn; a target that stands
 * for one address of a name, from_name, is probed at that address), connect
 * (for a service with tls, then a TLS handshake through lb_health_set_tls's
 * engine, verified as the proxy's connections are), send
 *   GET <path> HTTP/1.1, Host: <address> (from_name: the name:port written),
 *   User-Agent: grapevine-health, Connection: close
 * and read the status line and headers. 2xx and 3xx pass; any other status,
 * a connect, write or read error, a malformed response, or no response head
 * within timeout_ms fails. One probe per target at a time, every interval_ms
 * (the first one shortly after the target appears, with a little jitter).
 *
 * Verdicts: a target with no verdict yet ("unchecked", usable) is decided by
 * its first probe. After that `unhealthy` consecutive failures take it out
 * (active_healthy = 0, reason health_check) and `healthy` consecutive
 * successes bring it back (reason none). Transitions are logged at info
 * (healthy) and warn (unhealthy) level, with the failure's cause.
 */
#ifndef GV_BALANCER_HEALTH_H
#define GV_BALANCER_HEALTH_H

#include "balancer/service.h"

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct lb_health;

/* Creates an idle checker on loop. Returns 0 or GV_ENOMEM (*out untouched). */
int lb_health_start(uv_loop_t *loop, struct lb_health **out);

/* Makes the checked set exactly the targets of specs[0..n) whose service has
 * health.enabled; states[s][t] is the state of specs[s].targets[t] (a row
 * may be NULL for a service without checks). Targets
 * kept from the previous set (same state pointer) keep their counters and
 * schedule, taking the new path/timings; targets that left are stopped;
 * targets of services without checks get any old verdict dropped (usable
 * again). Returns 0, or GV_EINVAL (a path that is not "/..." or holds
 * spaces/control bytes, a zero interval or timeout, a target without a
 * host) or GV_ENOMEM, with the checked set unchanged. GV_EINVAL after
 * lb_health_stop. */
int lb_health_set(struct lb_health *h, const struct lb_service_spec *specs, size_t n,
                  struct lb_target_state **const *states);

/* Optional hooks for a shared health plane (docs/health-plane.md); both are
 * called on the loop's thread, with strings valid for the call only.
 * should_probe is asked before every probe: false skips it (no verdict; the
 * target keeps its state, e.g. one applied from another node's report).
 * on_transition is called after a local verdict changed the target's state:
 * healthy with why "" (up again, or a first check passed), or unhealthy with
 * the failure's cause. hooks is copied; NULL removes them. */
struct lb_health_hooks {
    bool (*should_probe)(void *arg, const char *service, const char *address);
    void (*on_transition)(void *arg, const char *service, const char *address, bool healthy,
                          const char *why);
};
void lb_health_set_hooks(struct lb_health *h, const struct lb_health_hooks *hooks, void *arg);

/* TLS for the probes of services with tls. balancer/ does no TLS itself: the
 * node hands it a client engine per probe (the proxy's upstream engine on the
 * service's context), driven over memory buffers. All calls on the loop's
 * thread; the engine is the checker's until close. Without ops, a probe of a
 * TLS service fails with "tls: not available".
 *   open: an engine for a probe of address (host: its name or IP), or NULL
 *         when the service has no TLS context now;
 *   feed: ciphertext read from the socket, 0 or < 0;
 *   read: drives the handshake and decrypts: > 0 plaintext bytes, 0 when it
 *         needs more input, -1 on close_notify, < -1 on failure;
 *   write: encrypts all of len, 0 or < 0 (only after handshake_done);
 *   take_output: moves ciphertext to send into buf, returns its length;
 *   failure: why the handshake failed (certificate error or TLS reason). */
struct lb_probe_tls_ops {
    void *(*open)(void *arg, const char *service, const char *host, const char *address);
    int (*feed)(void *eng, const void *data, size_t len);
    int (*read)(void *eng, void *buf, size_t cap);
    int (*write)(void *eng, const void *data, size_t len);
    size_t (*take_output)(void *eng, void *buf, size_t cap);
    bool (*handshake_done)(void *eng);
    const char *(*failure)(void *eng);
    void (*close)(void *eng);
};
void lb_health_set_tls(struct lb_health *h, const struct lb_probe_tls_ops *ops, void *arg);

/* Applies a verdict reached elsewhere (another node's report) to the checked
 * target (service, address): active_healthy, reason and last_check_ms as a
 * local transition sets them, and this checker's counters start from it, so a
 * node that takes the probes over later goes on from the shared verdict. No
 * hook is called. Returns 0, or GV_ENOENT when the target is not checked
 * here (state unchanged). */
int lb_health_apply(struct lb_health *h, const char *service, const char *address, bool healthy);
/* Sets only the verdict routed on (active_healthy and reason) of a checked
 * target, leaving this checker's own verdict and counters alone: for a node
 * that probes the target itself while the health plane routes on the
 * verdict of all its checkers. No hook is called. 0 or GV_ENOENT. */
int lb_health_route(struct lb_health *h, const char *service, const char *address, bool healthy);

/* Stops every probe and frees the checker. done(arg) is called from a close
 * callback on the loop once the last handle is closed (never from inside
 * this call); h is gone by then. done may be NULL. */
void lb_health_stop(struct lb_health *h, void (*done)(void *arg), void *arg);

#endif
