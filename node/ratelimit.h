/* ratelimit.h - node glue for cluster-scope rate limits: runs the
 * gateway/ratelimit/rl_cluster.h tick every 100 ms on the control loop and
 * carries its messages over the mesh (docs/rate-limiting.md). */
#ifndef GV_NODE_RATELIMIT_H
#define GV_NODE_RATELIMIT_H

#include "cluster/swim.h"
#include "common/buf.h"

#include <uv.h>

int node_ratelimit_start(uv_loop_t *loop, struct cl_swim *swim);
/* grapevine_ratelimit_cluster_peers: the peers whose rate-limit ticks this
 * node heard within the last second (nothing when not started). Control
 * loop. */
int node_ratelimit_metrics(struct gv_buf *out);
/* Closes the timer; safe when not started. */
void node_ratelimit_stop(void);

#endif
