/* plugins.h - turns the validated plugin JSON of a node_state (global
 * `plugins` and each route's `plugins`) into the typed per-route chains of a
 * gateway snapshot (gateway/plugin.h), once per snapshot on the control
 * thread. */
#ifndef GV_NODE_PLUGINS_H
#define GV_NODE_PLUGINS_H

#include "gateway/plugin.h"
#include "node/state.h"

/* Returns 0 with *out (NULL when no route has any plugin), or GV_ENOMEM. */
int node_plugins_build(const struct node_state *st, struct gw_pipeline **out);

#endif
