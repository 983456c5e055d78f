/* plugins_int.h - internal to node/plugins*.c: one builder per plugin turns
 * its validated JSON config into the gateway's typed config. A builder runs
 * on the control thread, may read the pipeline being built (the auth plugins
 * point at its consumer table) and returns NULL only when out of memory. */
#ifndef GV_NODE_PLUGINS_INT_H
#define GV_NODE_PLUGINS_INT_H

#include "gateway/plugin.h"

#include <jansson.h>
#include <stdint.h>

typedef void *node_plugin_build_fn(const json_t *conf, uint64_t seed, const struct gw_pipeline *p);

/* plugins_http.c */
node_plugin_build_fn node_build_ip_restriction, node_build_cors, node_build_headers,
    node_build_size_limit, node_build_request_id;
/* plugins_auth.c */
node_plugin_build_fn node_build_key_auth, node_build_jwt, node_build_basic_auth;
/* The consumer table of a validated consumers list: 0 or GV_ENOMEM (a key
 * the validator accepted is never refused here). */
struct gw_consumers;
int node_build_consumers(const json_t *consumers, struct gw_consumers **out);

#endif
