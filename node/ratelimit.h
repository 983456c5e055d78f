/* ratelimit.h - node glue for cluster-scope rate limits: keeps the gateway's
 * live-member count (gateway/rl_table.h) in step with the membership view,
 * checked every 100 ms on the control loop. */
#ifndef GV_NODE_RATELIMIT_H
#define GV_NODE_RATELIMIT_H

#include "cluster/swim.h"

#include <uv.h>

int node_ratelimit_start(uv_loop_t *loop, struct cl_swim *swim);
/* Closes the timer; safe when not started. */
void node_ratelimit_stop(void);

#endif
