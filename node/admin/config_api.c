/* config_api.c - the admin API's /config endpoints: reading the cluster
 * state, and changing it through node_cstate with answers sent only once the
 * change is on disk. routes.c maps the requests here. */
#include "cluster/store.h"
#include "common/err.h"
#include "common/kinds.h"
#include "node/admin/admin_int.h"
#include "node/admin/routes.h"
#include "node/cstate.h"

#include <stdio.h>
#include <string.h>

/* "route" for routes, for messages about one object. */
static const char *singular(int kind)
{
    const struct gv_kind *k = kind >= 0 ? gv_kind_by_id((unsigned)kind) : NULL;
    return k ? k->singular : "object";
}

static void reply_absent(struct admin_req *q, int kind, const char *name)
{
    char msg[64 + CL_STORE_MAX_NAME];
    snprintf(msg, sizeof(msg), "no %s named \"%.*s\"", singular(kind), CL_STORE_MAX_NAME, name);
    admin_reply_error(q, 404, msg);
}

/* Answers a change that node_cstate refused (rv < 0). */
static void reply_refused(struct admin_req *q, int rv, int kind, const char *name,
                          const struct node_state_error *err)
{
    if (rv == GV_EINVAL)
        admin_reply_invalid(q, err->where[0] ? err->where : err->path,
                            err->msg[0] ? err->msg : gv_strerror(rv));
    else if (rv == GV_ENOENT)
        reply_absent(q, kind, name);
    else
        admin_reply_error(q, 500, gv_strerror(rv));
}

static bool has_control_chars(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* The replicated state, or NULL after answering 503 (the node is stopping). */
static struct node_cstate *cstate_or_503(struct admin_req *q)
{
    struct node_cstate *cs = q->admin->node->cstate;
    if (cs == NULL)
        admin_reply_error(q, 503, "the node is stopping");
    return cs;
}

/* GET /config: the whole state, with its digest and version. */
void admin_get_config(struct admin_req *q, const struct admin_match *m)
{
    struct node_cstate *cs = cstate_or_503(q);
    (void)m;
    if (cs == NULL)
        return;
    json_t *j = node_cstate_get(cs, -1, NULL);
    if (j == NULL)
        admin_reply_error(q, 500, gv_strerror(GV_ENOMEM));
    else
        admin_reply_json(q, 200, j);
}

/* PUT /config's answer once the change is on disk and applied: with what
 * the node serves now, for scripts that then wait for convergence. */
static void put_config_done(void *arg, int status)
{
    struct admin_req *q = arg;
    struct node_cstate *cs = q->admin->node->cstate;
    if (status == 0 && q->answer != NULL && cs != NULL) {
        json_object_set_new(q->answer, "digest", json_string(node_cstate_digest(cs)));
        json_object_set_new(q->answer, "version",
                            json_integer((json_int_t)node_cstate_version(cs)));
    }
    admin_change_done(arg, status);
}

/* PUT /config: replaces the whole state. */
void admin_put_config(struct admin_req *q, const struct admin_match *m)
{
    struct node_cstate *cs = cstate_or_503(q);
    struct node_state_error err;
    json_t *changes = NULL;
    (void)m;
    if (cs == NULL)
        return;
    json_t *body = admin_body_object(q);
    if (body == NULL)
        return;
    int rv = node_cstate_replace(cs, body, &changes, &err, put_config_done, q);
    json_decref(body);
    if (rv < 0)
        reply_refused(q, rv, -1, "", &err);
    else
        admin_hold(q, 200, changes);
}

/* GET /config/KIND: the objects of one kind. */
void admin_get_kind(struct admin_req *q, const struct admin_match *m)
{
    struct node_cstate *cs = cstate_or_503(q);
    if (cs == NULL)
        return;
    json_t *list = node_cstate_get(cs, m->kind->id, NULL);
    admin_reply_json(q, 200, list ? list : json_array());
}

/* GET /config/KIND/NAME. */
void admin_get_object(struct admin_req *q, const struct admin_match *m)
{
    struct node_cstate *cs = cstate_or_503(q);
    if (cs == NULL)
        return;
    json_t *j = node_cstate_get(cs, m->kind->id, m->param);
    if (j == NULL)
        reply_absent(q, m->kind->id, m->param);
    else
        admin_reply_json(q, 200, j);
}

/* DELETE /config/KIND/NAME: 204 once the tombstone is on disk. */
void admin_delete_object(struct admin_req *q, const struct admin_match *m)
{
    struct node_cstate *cs = cstate_or_503(q);
    struct node_state_error err;
    if (cs == NULL)
        return;
    int rv = node_cstate_delete(cs, m->kind->id, m->param, &err, admin_change_done, q);
    if (rv < 0)
        reply_refused(q, rv, m->kind->id, m->param, &err);
    else
        admin_hold(q, 204, NULL);
}

/* ?dry_run=true (or 1): check the change and say what it would do. */
static bool dry_run(struct admin_req *q)
{
    size_t len;
    const char *qs = gv_httpd_query(q->http, &len);
    static const char *const on[] = {"dry_run=true", "dry_run=1"};
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(on[i]);
        for (const char *p = qs; p + n <= qs + len; p++)
            if ((p == qs || p[-1] == '&') && memcmp(p, on[i], n) == 0 &&
                (p + n == qs + len || p[n] == '&'))
                return true;
    }
    return false;
}

/* PUT /config/KIND/NAME: creates or replaces; 200 with the object as stored
 * once it is on disk. */
void admin_put_object(struct admin_req *q, const struct admin_match *m)
{
    struct node_cstate *cs = cstate_or_503(q);
    struct node_state_error err;
    int kind = m->kind->id;
    const char *name = m->param;
    if (cs == NULL)
        return;
    if (has_control_chars(name)) {
        admin_reply_invalid(q, "name", "a name must not contain control characters");
        return;
    }
    json_t *body = admin_body_object(q);
    if (body == NULL)
        return;
    json_t *stored = NULL;
    bool created = false;
    if (dry_run(q)) {
        const char *outcome = "";
        int rv = node_cstate_check_put(cs, kind, name, body, &stored, &outcome, &err);
        json_decref(body);
        if (rv < 0)
            reply_refused(q, rv, kind, name, &err);
        else
            admin_reply_json(
                q, 200,
                json_pack("{s:b,s:s,s:o}", "dry_run", 1, "result", outcome, "object", stored));
        return;
    }
    /* > 0: the same object was already held; answered the same way */
    int rv = node_cstate_put(cs, kind, name, body, &stored, &created, &err, admin_change_done, q);
    json_decref(body);
    if (rv < 0)
        reply_refused(q, rv, kind, name, &err);
    else
        admin_hold(q, 200, stored);
}
