/* admin_int.h - what the admin API's files share: server.c (connections,
 * dispatch, read-only endpoints), config_api.c (the /config endpoints that
 * change state) and routes.c (the table naming every endpoint).
 *
 * Threads: the node's control loop only. A request that changes the cluster
 * state is answered only once the change is on disk: the handler holds the
 * connection (admin_hold), which stops parsing further requests on it, and
 * answers later with admin_release. A held connection stays allocated even
 * when its client goes away, until it is released.
 */
#ifndef GV_NODE_ADMIN_INT_H
#define GV_NODE_ADMIN_INT_H

#include "common/buf.h"
#include "node/node.h"

#include <jansson.h>
#include <llhttp.h>
#include <stdbool.h>

struct node_admin {
    struct node *node;
    uv_tcp_t listener;
    char *token;              /* NULL: no token required */
    struct admin_conn *first; /* every open connection */
    int conns;
    bool stopping;
};

struct admin_conn {
    uv_tcp_t tcp;
    llhttp_t parser;
    struct node_admin *admin;
    struct admin_conn *prev, *next;
    int writes; /* answers being written */
    struct gv_buf url;
    struct gv_buf field;
    struct gv_buf auth;
    struct gv_buf body;
    struct gv_buf unparsed; /* bytes after a held request, parsed once it is answered */
    int method;             /* of the request being answered */
    bool keep_alive;        /* of the request being answered */
    bool in_auth;
    bool closing; /* uv_close called */
    bool closed;  /* the handle is closed: free on release */
    bool too_big;
    bool held;      /* a change is waiting for its done callback */
    json_t *answer; /* held: what to answer once the change is saved */
    int answer_status;
    char allow[64]; /* an Allow header for the next answer (a 405), or "" */
};

/* Answers the current request; j (may be NULL: 500) is taken over. */
void admin_reply(struct admin_conn *c, int status, const char *ctype, const char *body, size_t len);
void admin_reply_json(struct admin_conn *c, int status, json_t *j);
void admin_reply_error(struct admin_conn *c, int status, const char *msg);
/* A 400 {"error": msg, "path": path}. */
void admin_reply_invalid(struct admin_conn *c, const char *path, const char *msg);

/* The request body as a JSON object; NULL after answering 400 itself (bad
 * JSON with its line and column, or not an object). New reference. */
json_t *admin_body_object(struct admin_conn *c);

/* Holds the current request unanswered (see the top of this file) until
 * admin_change_done; status and answer (taken over) are what it then gets. */
void admin_hold(struct admin_conn *c, int status, json_t *answer);
/* A node_cstate_done_fn with arg = the held connection: answers it (500
 * when the change could not be saved), then goes on parsing the
 * connection, or frees it when it was closed meanwhile. */
void admin_change_done(void *arg, int status);

/* The endpoints, as routes.c's table names them (server.c: health, status,
 * members, backends, metrics, the keyring, the test fault switch;
 * config_api.c: /config). m->kind and m->param are the path's :kind and
 * :name (or :id); the token is already checked. */
struct admin_match;
void admin_get_health(struct admin_conn *c, const struct admin_match *m);
void admin_get_status(struct admin_conn *c, const struct admin_match *m);
void admin_get_members(struct admin_conn *c, const struct admin_match *m);
void admin_get_backends(struct admin_conn *c, const struct admin_match *m);
void admin_get_metrics(struct admin_conn *c, const struct admin_match *m);
void admin_get_keys(struct admin_conn *c, const struct admin_match *m);
void admin_post_keys(struct admin_conn *c, const struct admin_match *m);
void admin_post_key_use(struct admin_conn *c, const struct admin_match *m);
void admin_delete_key(struct admin_conn *c, const struct admin_match *m);
void admin_post_debug_block(struct admin_conn *c, const struct admin_match *m);
void admin_get_config(struct admin_conn *c, const struct admin_match *m);
void admin_put_config(struct admin_conn *c, const struct admin_match *m);
void admin_get_kind(struct admin_conn *c, const struct admin_match *m);
void admin_get_object(struct admin_conn *c, const struct admin_match *m);
void admin_put_object(struct admin_conn *c, const struct admin_match *m);
void admin_delete_object(struct admin_conn *c, const struct admin_match *m);

#endif
