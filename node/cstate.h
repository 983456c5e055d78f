/* cstate.h - the node's replicated cluster state: the store and its copy in
 * node.data_dir, validation of every change, spreading through the mesh, and
 * applying each new valid state to the data plane.
 *
 * Every state this node applies is validated by node_state_from_json, the
 * same code as the config file: a change made here that would not validate is
 * refused with a path and a reason. When the store's state does not validate
 * (two concurrent changes that conflict, a buggy peer, a damaged file) the
 * entry the error names is quarantined: kept in the store, spread, but left
 * out of the applied state (logged once per version, counted, shown by
 * node_cstate_get), and the rest applies; a PUT or DELETE of that name
 * replaces it. Only an error that names no entry leaves the node serving
 * the last good state until a change fixes it.
 *
 * Entries of a kind this version does not know (a newer node's) are kept in
 * the store, and so saved, spread and collected, but left out of the state
 * built here; node_cstate_replace leaves them alone. Each such kind is logged
 * once; node_cstate_stats_json counts them ("unknown_kind_entries").
 *
 * Threads: the node's control loop only. Memory: JSON handed in is borrowed;
 * JSON handed out is a new reference.
 */
#ifndef GV_NODE_CSTATE_H
#define GV_NODE_CSTATE_H

#include "node/state.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct node;
struct node_cstate;
struct cl_swim;

/* status: 0 once the change is on disk (fsync'd) and, from then on, stored,
 * applied here and spreading; or a negative error when it could not be
 * written: then nothing of it is kept anywhere (not applied, not spread).
 * Called once, from the loop, never before the call that took it
 * returned, in the order the changes were made. */
typedef void (*node_cstate_done_fn)(void *arg, int status);

/* Loads node.data_dir (if set), seeds the config file's objects with stamp 0,
 * and publishes the resulting state. Returns 0, GV_EINVAL when nothing valid
 * can be applied (logged), GV_EIO when data_dir is unusable. */
int node_cstate_open(struct node *n, struct node_cstate **out);
/* Starts replicating through swim (after the gossip has started). */
int node_cstate_attach(struct node_cstate *cs, struct cl_swim *swim);
/* Stops replicating (before the swim stops) and flushes pending writes;
 * done(arg) is called when everything is closed and freed. */
void node_cstate_close(struct node_cstate *cs, void (*done)(void *arg), void *arg);

/* Changes from the admin API. kind is an id of common/kinds.h. Each validates the
 * whole state the change would make (on top of earlier changes still on
 * their way to disk); on failure it returns GV_EINVAL with err filled (path
 * relative to the request body: "service", "match.paths[0]",
 * "routes[2].service" for PUT /config, or the other object's path such as
 * "routes[api].service" when the change breaks another object) and changes
 * nothing. On success it stamps the change, queues it for the disk, returns
 * 0, and once it is written stores it, applies it here, starts spreading it
 * and calls done. GV_ENOMEM: nothing changed either. done is called exactly
 * when the return is >= 0.
 *
 * put: obj is the object; its "name" may be left out (name is used) but must
 * equal name when present. For kind plugins the object is the plugin's
 * config and name the plugin's name. *stored gets the object as now served
 * (defaults filled in) and whether it was created ("created": true/false is
 * not part of the object: *created). Returns 1 instead of 0 when the same
 * object is held already: nothing is written or spread (done still comes). */
int node_cstate_put(struct node_cstate *cs, int kind, const char *name, const json_t *obj,
                    json_t **stored, bool *created, struct node_state_error *err,
                    node_cstate_done_fn done, void *arg);
/* A dry run of node_cstate_put: the same checks and *stored, nothing
 * written or spread; *outcome is "created", "configured" or "unchanged". 0
 * or an error as node_cstate_put's (no callback). */
int node_cstate_check_put(struct node_cstate *cs, int kind, const char *name, const json_t *obj,
                          json_t **stored, const char **outcome, struct node_state_error *err);
/* GV_ENOENT when there is no such object. */
int node_cstate_delete(struct node_cstate *cs, int kind, const char *name,
                       struct node_state_error *err, node_cstate_done_fn done, void *arg);
/* Replaces the whole state ({"services":[...],"routes":[...],...}, every key
 * optional: a missing key means none). *changes gets
 * {"created":["routes/a",...],"updated":[...],"deleted":[...]}. */
int node_cstate_replace(struct node_cstate *cs, const json_t *state, json_t **changes,
                        struct node_state_error *err, node_cstate_done_fn done, void *arg);

/* Reads the applied state: kind < 0 gives the whole state with "digest" and
 * "version"; name NULL gives the list of kind; else the one object, or
 * {"name","invalid":true,"reason","stored","origin"} for one in quarantine,
 * or NULL when absent. */
json_t *node_cstate_get(struct node_cstate *cs, int kind, const char *name);

/* For /status, /metrics and the membership meta. */
const char *node_cstate_digest(const struct node_cstate *cs);
uint64_t node_cstate_version(const struct node_cstate *cs);
json_t *node_cstate_stats_json(const struct node_cstate *cs);
/* The last max changes made through the API (seeds from config files are
 * not changes), newest first: [{"kind","name","origin","stamp","at"
 * (RFC 3339, the writer's clock),"deleted"}]. One pass over the store. */
#define NODE_CSTATE_CHANGES_MAX 50
json_t *node_cstate_changes_json(const struct node_cstate *cs, size_t max);

#endif
