/* state.h - the cluster state: services, routes, consumers and global plugins.
 *
 * This is what gets replicated between nodes. Its canonical form is JSON
 * (jansson): the config file's YAML is converted to it, the admin API speaks
 * it, and one validator (node_state_from_json) turns it into the typed specs
 * the gateway and balancer use. A node_state is immutable once built.
 */
#ifndef GV_NODE_STATE_H
#define GV_NODE_STATE_H

#include "balancer/service.h"
#include "gateway/router.h"

#include "common/strmap.h"

#include <jansson.h>
#include <stddef.h>

struct node_state {
    struct lb_service_spec *services;
    size_t nservices;
    struct gv_strmap service_names; /* name -> index in services */
    struct gw_route_spec *routes;
    size_t nroutes;
    json_t *consumers; /* validated "consumers" array (may be empty) */
    json_t *plugins;   /* validated global "plugins" array (may be empty) */
};

/* Where validation failed: path like "routes[0].service" and a message like
 * "no service named \"users\"". */
struct node_state_error {
    char path[192];  /* the value the message is about (GV_PATH_LEN) */
    char where[192]; /* the most precise path to point at (a key inside path) */
    char msg[256];
};

/* Validates and builds a state from JSON {"services":[...],"routes":[...],
 * "consumers":[...],"plugins":[...]} (every key optional). Unknown keys,
 * wrong types, bad durations, bad addresses, duplicate names, a route naming
 * a missing service, bad regexes, bad CIDRs: GV_EINVAL with err filled and
 * out untouched. */
int node_state_from_json(const json_t *root, struct node_state *out, struct node_state_error *err);
/* Routes compiled before, taken instead of compiling their JSON again (the
 * replicated state keeps them per stored version, node/cstate_jcache.c).
 * For element i of "routes", route(arg, i, elem) returns a shared compiled
 * route (gw_route_spec_share) that stands for elem, which is then not read,
 * or NULL to compile elem. A route taken is still checked against the rest
 * of the state: its service must exist, its plugins must check against the
 * consumers (what node_state_route_compile leaves out). */
struct node_state_reuse {
    const struct gw_route_spec *(*route)(void *arg, size_t i, const json_t *elem);
    void *arg;
};
/* One route compiled on its own: its fields, its match and its plugins'
 * settings, without what needs the rest of a state (its service, the
 * consumers). 0, or GV_EINVAL / GV_ENOMEM with out empty. */
int node_state_route_compile(const json_t *v, struct gw_route_spec *out);
/* node_state_from_json, with reuse (NULL: none). */
int node_state_from_json_reuse(const json_t *root, const struct node_state_reuse *reuse,
                               struct node_state *out, struct node_state_error *err);
/* Checks what only this node can: that the files a state names (a service's
 * tls.ca_file) can be read here. For changes made on this node and the
 * config file; a state that arrives by gossip is not held to another node's
 * files. Returns 0 or GV_EINVAL with err filled. */
int node_state_check_files(const struct node_state *st, struct node_state_error *err);
/* The canonical JSON of a state (sorted keys, defaults filled in): what
 * GET /config shows and what the config digest is computed over. New ref. */
json_t *node_state_to_json(const struct node_state *s);
/* The same without any key that holds its default (gv_schema_dump_min): the
 * form objects are stored and replicated in and the config digest is
 * computed over, so nodes of two versions, the later one adding defaulted
 * keys, store and digest the same bytes for the same objects. New ref. */
json_t *node_state_to_json_min(const struct node_state *s);
/* One object of st: element i of kind's list (common/kinds.h ids), as
 * node_state_to_json (minimal false) or node_state_to_json_min would give
 * it, without dumping the rest. NULL when out of range or out of memory. */
json_t *node_state_object_json(const struct node_state *s, int kind, size_t i, bool minimal);
void node_state_free(struct node_state *s);

/* A duration as JSON: a string like "250ms"/"2s"/"1m" or an integer number of
 * seconds. Returns 0 or GV_EINVAL (*ms unchanged). */
int node_json_duration(const json_t *v, uint64_t *ms);
/* Renders ms with the largest unit that divides it exactly ("2s", "250ms"). */
void node_format_duration(uint64_t ms, char *buf, size_t len);

/* Path building shared by the validator and the config loader; each cuts
 * the result short to fit n bytes (a shortened path only shortens a message).
 * node_path_append appends s to dst; node_path_key writes "base.key" ("key"
 * when base is empty); node_path_index writes "base[i]". */
void node_path_append(char *dst, size_t n, const char *s);
void node_path_key(char *dst, size_t n, const char *base, const char *key);
void node_path_index(char *dst, size_t n, const char *base, size_t i);

/* Index of the service named name, or -1. */
int node_state_find_service(const struct node_state *s, const char *name);

#endif
