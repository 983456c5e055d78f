/* admin_int.h - what the admin API's files share: server.c (the server,
 * dispatch, read-only endpoints), config_api.c (the /config endpoints that
 * change state) and routes.c (the table naming every endpoint).
 *
 * Threads: the node's control loop only; common/httpd.h serves the
 * connections. A request that changes the cluster state is answered only
 * once the change is on disk: the handler holds it (admin_hold), which
 * keeps it, and its connection from parsing further requests, until
 * admin_change_done answers it; a held request outlives its client.
 */
#ifndef GV_NODE_ADMIN_INT_H
#define GV_NODE_ADMIN_INT_H

#include "common/httpd.h"
#include "node/node.h"

#include <jansson.h>
#include <stdbool.h>

struct admin_events;
struct admin_sse;

struct node_admin {
    struct node *node;
    struct gv_httpd *http;
    char *token;                 /* NULL: no token required */
    struct admin_events *events; /* GET /events (events.c) */
};

/* One request, in the HTTP core's per-request memory (gone once answered). */
struct admin_req {
    struct node_admin *admin;
    struct gv_httpd_req *http;
    json_t *answer; /* held: what to answer once the change is saved */
    int answer_status;
    char allow[64];        /* an Allow header for the answer (a 405), or "" */
    struct admin_sse *sse; /* GET /events: the stream's client (events.c) */
};

/* Answers the current request; j (may be NULL: 500) is taken over. */
void admin_reply(struct admin_req *q, int status, const char *ctype, const char *body, size_t len);
void admin_reply_json(struct admin_req *q, int status, json_t *j);
void admin_reply_error(struct admin_req *q, int status, const char *msg);
/* A 400 {"error": msg, "path": path}. */
void admin_reply_invalid(struct admin_req *q, const char *path, const char *msg);

/* The request body as a JSON object; NULL after answering 400 itself (bad
 * JSON with its line and column, or not an object). New reference. */
json_t *admin_body_object(struct admin_req *q);

/* Holds the request unanswered (see the top of this file) until
 * admin_change_done; status and answer (taken over) are what it then gets. */
void admin_hold(struct admin_req *q, int status, json_t *answer);
/* A node_cstate_done_fn with arg = the held request: answers it (500 when
 * the change could not be saved). */
void admin_change_done(void *arg, int status);

/* Services and targets with health, reason and who checks them (GET
 * /backends and the dashboard's events). New reference. */
json_t *admin_backends_json(struct node *n);

/* process_metrics.c: process_cpu_seconds_total, process_resident_memory_bytes,
 * ... appended to b (nothing off Linux). 0 or GV_ENOMEM. */
struct gv_buf;
int admin_process_metrics(struct gv_buf *b);

/* events.c: the server-sent events stream. admin_events_new: 0 or < 0;
 * admin_events_stop ends every stream (the events free themselves once the
 * last has closed). */
int admin_events_new(struct node_admin *a, unsigned max_conns, struct admin_events **out);
void admin_events_stop(struct admin_events *ev);

/* The endpoints, as routes.c's table names them (server.c: health, status,
 * members, backends, metrics, the keyring, the test fault switch;
 * config_api.c: /config). m->kind and m->param are the path's :kind and
 * :name (or :id); the token is already checked. */
struct admin_match;
void admin_get_asset(struct admin_req *q, const struct admin_match *m);
void admin_get_openapi(struct admin_req *q, const struct admin_match *m);
void admin_get_events(struct admin_req *q, const struct admin_match *m);
void admin_get_changes(struct admin_req *q, const struct admin_match *m);
void admin_get_ratelimit(struct admin_req *q, const struct admin_match *m);
void admin_get_health(struct admin_req *q, const struct admin_match *m);
void admin_get_ready(struct admin_req *q, const struct admin_match *m);
void admin_get_status(struct admin_req *q, const struct admin_match *m);
void admin_get_members(struct admin_req *q, const struct admin_match *m);
void admin_get_backends(struct admin_req *q, const struct admin_match *m);
void admin_get_metrics(struct admin_req *q, const struct admin_match *m);
void admin_get_keys(struct admin_req *q, const struct admin_match *m);
void admin_post_keys(struct admin_req *q, const struct admin_match *m);
void admin_post_key_use(struct admin_req *q, const struct admin_match *m);
void admin_delete_key(struct admin_req *q, const struct admin_match *m);
void admin_post_debug_block(struct admin_req *q, const struct admin_match *m);
void admin_get_config(struct admin_req *q, const struct admin_match *m);
void admin_put_config(struct admin_req *q, const struct admin_match *m);
void admin_get_kind(struct admin_req *q, const struct admin_match *m);
void admin_get_object(struct admin_req *q, const struct admin_match *m);
void admin_put_object(struct admin_req *q, const struct admin_match *m);
void admin_delete_object(struct admin_req *q, const struct admin_match *m);

#endif
