/* admin_config.c - the admin API's /config endpoints: reading the cluster
 * state, and changing it through node_cstate with answers sent only once the
 * change is on disk. */
#include "cluster/store.h"
#include "common/err.h"
#include "common/kinds.h"
#include "common/util.h"
#include "node/admin_int.h"
#include "node/cstate.h"

#include <stdio.h>
#include <string.h>

/* "route" for routes, for messages about one object. */
static const char *singular(int kind)
{
    const struct gv_kind *k = kind >= 0 ? gv_kind_by_id((unsigned)kind) : NULL;
    return k ? k->singular : "object";
}

static void reply_absent(struct admin_conn *c, int kind, const char *name)
{
    char msg[64 + CL_STORE_MAX_NAME];
    snprintf(msg, sizeof(msg), "no %s named \"%.*s\"", singular(kind), CL_STORE_MAX_NAME, name);
    admin_reply_error(c, 404, msg);
}

/* Answers a change that node_cstate refused (rv < 0). */
static void reply_refused(struct admin_conn *c, int rv, int kind, const char *name,
                          const struct node_state_error *err)
{
    if (rv == GV_EINVAL)
        admin_reply_invalid(c, err->where[0] ? err->where : err->path,
                            err->msg[0] ? err->msg : gv_strerror(rv));
    else if (rv == GV_ENOENT)
        reply_absent(c, kind, name);
    else
        admin_reply_error(c, 500, gv_strerror(rv));
}

/* Percent-decodes in into out (at least strlen(in) + 1 bytes). Returns 0, or
 * -1 on a bad escape or an encoded NUL. */
static int percent_decode(const char *in, char *out)
{
    long n = gv_percent_decode(in, strlen(in), out, strlen(in), false);
    if (n < 0)
        return -1;
    out[n] = '\0';
    return 0;
}

static bool has_control_chars(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* GET and PUT /config. */
static void whole_state(struct admin_conn *c, struct node_cstate *cs, int method)
{
    struct node_state_error err;
    json_t *changes = NULL;
    if (method == HTTP_GET || method == HTTP_HEAD) {
        json_t *j = node_cstate_get(cs, -1, NULL);
        if (j == NULL)
            admin_reply_error(c, 500, gv_strerror(GV_ENOMEM));
        else
            admin_reply_json(c, 200, j);
        return;
    }
    if (method != HTTP_PUT) {
        admin_reply_error(c, 405, "method not allowed (GET or PUT)");
        return;
    }
    json_t *body = admin_body_object(c);
    if (body == NULL)
        return;
    int rv = node_cstate_replace(cs, body, &changes, &err, admin_change_done, c);
    json_decref(body);
    if (rv < 0) {
        reply_refused(c, rv, -1, "", &err);
        return;
    }
    /* what the node serves now, for scripts that then wait for convergence */
    json_object_set_new(changes, "digest", json_string(node_cstate_digest(cs)));
    json_object_set_new(changes, "version", json_integer((json_int_t)node_cstate_version(cs)));
    admin_hold(c, 200, changes);
}

/* GET, PUT and DELETE /config/KIND/NAME. */
static void one_object(struct admin_conn *c, struct node_cstate *cs, int method, int kind,
                       const char *name)
{
    struct node_state_error err;
    int rv;
    if (method == HTTP_GET || method == HTTP_HEAD) {
        json_t *j = node_cstate_get(cs, kind, name);
        if (j == NULL)
            reply_absent(c, kind, name);
        else
            admin_reply_json(c, 200, j);
        return;
    }
    if (method == HTTP_DELETE) {
        rv = node_cstate_delete(cs, kind, name, &err, admin_change_done, c);
        if (rv < 0)
            reply_refused(c, rv, kind, name, &err);
        else
            admin_hold(c, 204, NULL);
        return;
    }
    if (method != HTTP_PUT) {
        admin_reply_error(c, 405, "method not allowed (GET, PUT or DELETE)");
        return;
    }
    if (has_control_chars(name)) {
        admin_reply_invalid(c, "name", "a name must not contain control characters");
        return;
    }
    json_t *body = admin_body_object(c);
    if (body == NULL)
        return;
    json_t *stored = NULL;
    bool created = false;
    /* > 0: the same object was already held; answered the same way */
    rv = node_cstate_put(cs, kind, name, body, &stored, &created, &err, admin_change_done, c);
    json_decref(body);
    if (rv < 0)
        reply_refused(c, rv, kind, name, &err);
    else
        admin_hold(c, 200, stored);
}

void admin_config_request(struct admin_conn *c, int method, const char *path)
{
    struct node_cstate *cs = c->admin->node->cstate;
    const char *rest = path + strlen("/config");
    char kname[16], name[1024];
    if (cs == NULL) {
        admin_reply_error(c, 503, "the node is stopping");
        return;
    }
    if (*rest == '\0') {
        whole_state(c, cs, method);
        return;
    }
    rest++; /* the '/' */
    const char *slash = strchr(rest, '/');
    size_t klen = slash ? (size_t)(slash - rest) : strlen(rest);
    const struct gv_kind *k = NULL;
    if (klen < sizeof(kname)) {
        memcpy(kname, rest, klen);
        kname[klen] = '\0';
        k = gv_kind_by_name(kname);
    }
    if (k == NULL) {
        char kinds[128], msg[160];
        snprintf(msg, sizeof(msg), "no such kind (%s)", gv_kinds_text(kinds, sizeof(kinds), ", "));
        admin_reply_error(c, 404, msg);
        return;
    }
    int kind = k->id;
    if (slash == NULL) {
        if (method != HTTP_GET && method != HTTP_HEAD) {
            admin_reply_error(c, 405, "method not allowed (GET)");
            return;
        }
        json_t *list = node_cstate_get(cs, kind, NULL);
        admin_reply_json(c, 200, list ? list : json_array());
        return;
    }
    if (slash[1] == '\0' || strchr(slash + 1, '/') != NULL || strlen(slash + 1) >= sizeof(name)) {
        admin_reply_error(c, 404, "not found (/config/KIND/NAME; a '/' in NAME is %2F)");
        return;
    }
    if (percent_decode(slash + 1, name) != 0) {
        admin_reply_invalid(c, "name", "bad percent-encoding in the name");
        return;
    }
    one_object(c, cs, method, kind, name);
}
