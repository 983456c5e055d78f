/* ratelimit.h - node glue for cluster-scope rate limits: runs the
 * gateway/ratelimit/rl_cluster.h tick every 100 ms on the control loop and
 * carries its messages over the mesh (docs/rate-limiting.md). */
#ifndef GV_NODE_RATELIMIT_H
#define GV_NODE_RATELIMIT_H

#include "cluster/swim.h"
#include "common/buf.h"

#include <jansson.h>
#include <uv.h>

int node_ratelimit_start(uv_loop_t *loop, struct cl_swim *swim);
/* grapevine_ratelimit_cluster_peers: the peers whose rate-limit ticks this
 * node heard within the last second (nothing when not started). Control
 * loop. */
int node_ratelimit_metrics(struct gv_buf *out);
/* Closes the timer; safe when not started. */
void node_ratelimit_stop(void);

/* The busiest cluster-scope keys (at most max, by demand here plus at
 * peers), for GET /cluster/ratelimit: [{"key": hex of the key's hash,
 * "demand": this node's attempts/s (EWMA), "peer_demand": the live peers'
 * sum, "share": this node's share of the limit}]. [] when not started.
 * Control loop only; one pass over the table. New reference. */
#define NODE_RL_SHOWN 50
json_t *node_ratelimit_json(size_t max);

#endif
