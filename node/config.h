/* config.h - the config file: this node's settings and the cluster state
 * (services, routes) it seeds.
 *
 * Loading happens at start-up and on SIGHUP, on the main thread, with plain
 * malloc. A loaded node_config is immutable and owned by whoever loaded it.
 */
#ifndef GV_NODE_CONFIG_H
#define GV_NODE_CONFIG_H

#include "node/config/settings.h"
#include "node/state.h"

struct node_config {
    char *path; /* the file it came from, or NULL */
    struct node_settings node;
    struct node_state state; /* services, routes, consumers, plugins */
};

/* Loads and validates a YAML file. Returns 0, or GV_EINVAL / GV_ENOENT with a
 * "FILE:LINE: message" in err (out is then untouched). */
int node_config_load_file(const char *path, struct node_config *out, struct node_config_error *err);
/* Same, from a string; name is used in messages in place of FILE. */
int node_config_load_string(const char *name, const char *yaml, size_t len, struct node_config *out,
                            struct node_config_error *err);
void node_config_free(struct node_config *c);
/* Checks a file and reports every error it can find, up to max, through
 * fn(arg, "FILE:LINE: message"): after an error the element it is about (a
 * route, a service...) is set aside and the rest checked again, so an error
 * that follows from one set aside (a route naming a refused service) is
 * reported too. Returns how many were reported (0: the file is valid). */
int node_config_check_file(const char *path, void (*fn)(void *arg, const char *msg), void *arg,
                           int max);

#endif
