/* health_share.h - the node side of the shared health plane
 * (docs/health-plane.md): picks the targets this node probes (at most
 * CL_HP_CHECKERS alive members probe each one), spreads its verdicts and
 * passive ejections as reports on cluster channel 2, and applies the other
 * nodes' reports to the target states the workers route on.
 *
 * Threads: everything runs on the node's control loop, which is also the
 * swim's and the health checker's loop. One instance per process (like
 * node/ratelimit.c). Strings passed in are borrowed for the call.
 */
#ifndef GV_NODE_HEALTH_SHARE_H
#define GV_NODE_HEALTH_SHARE_H

#include <jansson.h>
#include <stdint.h>

struct node;
struct cl_swim;

/* Registers channel 2, installs the checker's hooks and starts a 100 ms
 * timer (membership, local passive ejections). Returns 0 (also when swim or
 * the checker is NULL: nothing is shared, every node probes alone), or a
 * negative error with nothing left registered. */
int node_health_share_start(struct node *n, struct cl_swim *swim);

/* Removes the hooks, unregisters the channel and closes the timer (memory is
 * freed in its close callback, so the loop must run once more). Call before
 * the checker and the swim stop. Safe when not started. */
void node_health_share_stop(void);

/* The members that probe (service, address), best first, as a new JSON
 * array of names: the same on every node that sees the same alive members.
 * Before start (or without a cluster), [self]. NULL on allocation failure. */
json_t *node_health_share_checkers(const char *self, const char *service, const char *address);

/* Counters for GET /metrics: reports sent, applied, ignored (stale or for an
 * unknown target) and dropped as malformed. */
struct node_health_share_stats {
    uint64_t sent, applied, ignored, malformed;
};
void node_health_share_stats(struct node_health_share_stats *out);

#endif
