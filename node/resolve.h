/* resolve.h - the node's side of following the host names of targets
 * (balancer/resolver.h does the lookups): a name whose addresses change gets
 * the served snapshot rebuilt with the same config (node_republish), and a
 * failed connect to one of a name's addresses gets the name looked up again
 * soon. The names followed are those of the served config (node_publish
 * hands them to the resolver).
 *
 * Threads: the node's control loop only.
 */
#ifndef GV_NODE_RESOLVE_H
#define GV_NODE_RESOLVE_H

#include <jansson.h>
#include <stddef.h>

struct node;
struct gw_snapshot;

/* Creates n->resolver and starts watching for failed connects (a timer
 * twice a second). Returns 0 or GV_ENOMEM (n->resolver stays NULL). */
int node_resolve_start(struct node *n);

/* Stops the resolver and the watch; the loop must run once more for their
 * handles to close. Safe when not started, and twice. */
void node_resolve_stop(struct node *n);

/* For GET /backends: each target of service i of s named by a host name
 * that has no address yet, appended to arr as {"address" and "target": the
 * name as written, "weight", "healthy": false, "reason": "unresolved",
 * "error": why the last lookup failed or "", "checked_by": [], "inflight": 0}. */
void node_resolve_pending_json(const struct node *n, const struct gw_snapshot *s, size_t i,
                               json_t *arr);

#endif
