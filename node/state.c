/* state.c - the one validator of cluster state (services, routes, consumers,
 * global plugins): JSON in, typed specs out, and canonical JSON back out. */
#include "node/state.h"
#include "common/kinds.h"
#include "node/state_int.h"
#include "gateway/plugins/chain.h"

#include "common/err.h"
#include "common/schema.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <llhttp.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * Services: their schema is balancer/service_schema.c.
 */

/* One service through lb_service_schema, its error in our form. */
static int parse_service(const json_t *v, const char *path, struct lb_service_spec *s,
                         struct node_state_error *err)
{
    struct gv_schema_error e;
    int rc = gv_schema_parse(&lb_service_schema, v, s, path, &e, NULL);
    if (rc != 0) {
        err->path[0] = err->where[0] = '\0';
        node_path_append(err->path, sizeof(err->path), e.path);
        node_path_append(err->where, sizeof(err->where), e.where);
        snprintf(err->msg, sizeof(err->msg), "%s", e.msg);
    }
    return rc;
}

int node_state_check_files(const struct node_state *st, struct node_state_error *err)
{
    char p[PATH_LEN], q[PATH_LEN];
    for (size_t i = 0; i < st->nservices; i++) {
        const struct lb_service_spec *s = &st->services[i];
        if (!s->tls.enabled || s->tls.ca_file == NULL)
            continue;
        FILE *f = fopen(s->tls.ca_file, "r");
        if (f != NULL) {
            fclose(f);
            continue;
        }
        node_path_index(p, sizeof(p), "services", i);
        node_path_key(q, sizeof(q), p, "tls");
        return sv_fail_field(err, q, "ca_file", "cannot read \"%s\": %s", s->tls.ca_file,
                             strerror(errno));
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * Routes: their schema is gateway/route_schema.c.
 */

/* err from a gateway check (common/schema.h's error) as the validator's. */
static int from_schema(struct node_state_error *err, const struct gv_schema_error *se, int rc)
{
    snprintf(err->path, sizeof(err->path), "%s", se->path);
    snprintf(err->where, sizeof(err->where), "%s", se->where);
    snprintf(err->msg, sizeof(err->msg), "%s", se->msg);
    return rc;
}

static bool service_exists(void *arg, const char *name)
{
    return node_state_find_service(arg, name) >= 0;
}

static int parse_route(const json_t *v, const char *path, struct node_state *st,
                       const struct gw_consumer_set *cs, struct gw_route_spec *r,
                       struct node_state_error *err)
{
    struct gw_route_ctx ctx = {.consumers = cs, .service_exists = service_exists, .arg = st};
    struct gv_schema_error se;
    int rc = gv_schema_parse(&gw_route_schema, v, r, path, &se, &ctx);
    return rc ? from_schema(err, &se, rc) : 0;
}

/* ---------------------------------------------------------------------------
 * The state
 */

int node_state_find_service(const struct node_state *s, const char *name)
{
    return (int)gv_strmap_get(&s->service_names, name, strlen(name));
}

void node_state_free(struct node_state *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nservices; i++)
        lb_service_spec_free(&s->services[i]);
    free(s->services);
    gv_strmap_free(&s->service_names);
    for (size_t i = 0; i < s->nroutes; i++)
        gw_route_spec_free(&s->routes[i]);
    free(s->routes);
    json_decref(s->consumers);
    json_decref(s->plugins);
    memset(s, 0, sizeof(*s));
}

static int parse_services(const json_t *list, struct node_state *st, struct node_state_error *err)
{
    char p[PATH_LEN], q[PATH_LEN];
    int rc;
    if (list == NULL)
        return 0;
    if (!json_is_array(list))
        return sv_fail(err, "services", "must be a list");
    size_t n = json_array_size(list);
    if (n == 0)
        return 0;
    if ((st->services = calloc(n, sizeof(*st->services))) == NULL)
        return sv_nomem(err);
    for (size_t i = 0; i < n; i++) {
        node_path_index(p, sizeof(p), "services", i);
        st->nservices = i + 1;
        if ((rc = parse_service(json_array_get(list, i), p, &st->services[i], err)) != 0)
            return rc;
        const char *name = st->services[i].name;
        long j = gv_strmap_get(&st->service_names, name, strlen(name));
        if (j >= 0) {
            node_path_key(q, sizeof(q), p, "name");
            return sv_fail(err, q, "duplicate name \"%s\" (also services[%ld])", name, j);
        }
        if (gv_strmap_put(&st->service_names, name, strlen(name), (uint32_t)i) != 0)
            return sv_nomem(err);
    }
    return 0;
}

int node_state_route_compile(const json_t *v, struct gw_route_spec *out)
{
    struct gv_schema_error se;
    memset(out, 0, sizeof(*out));
    int rc = gv_schema_parse(&gw_route_schema, v, out, "route", &se, NULL);
    if (rc != 0)
        gw_route_spec_free(out);
    return rc;
}

/* A route compiled before (reuse), held by r and checked against this state
 * as its schema's checks with context would: its service, its plugins
 * against the consumers. */
static int reuse_route(const struct gw_route_spec *was, const char *path, struct node_state *st,
                       const struct gw_consumer_set *cs, struct gw_route_spec *r,
                       struct node_state_error *err)
{
    char p[PATH_LEN];
    struct gv_schema_error se;
    gw_route_spec_hold(was, r);
    if (!service_exists(st, r->service)) {
        node_path_key(p, sizeof(p), path, "service");
        return sv_fail(err, p, "no service named \"%s\"", r->service);
    }
    if (r->plugins == NULL || json_array_size(r->plugins) == 0)
        return 0;
    json_t *canon = NULL;
    node_path_key(p, sizeof(p), path, "plugins");
    int rc = gw_plugins_check(r->plugins, p, cs, &canon, &se);
    json_decref(canon);
    return rc ? from_schema(err, &se, rc) : 0;
}

static int parse_routes(const json_t *list, struct node_state *st, const struct gw_consumer_set *cs,
                        const struct node_state_reuse *reuse, struct node_state_error *err)
{
    char p[PATH_LEN], q[PATH_LEN];
    int rc;
    if (list == NULL)
        return 0;
    if (!json_is_array(list))
        return sv_fail(err, "routes", "must be a list");
    size_t n = json_array_size(list);
    if (n == 0)
        return 0;
    if ((st->routes = calloc(n, sizeof(*st->routes))) == NULL)
        return sv_nomem(err);
    struct gv_strmap names = {0}; /* name -> index, for duplicates */
    rc = 0;
    for (size_t i = 0; i < n; i++) {
        node_path_index(p, sizeof(p), "routes", i);
        st->nroutes = i + 1;
        const json_t *elem = json_array_get(list, i);
        const struct gw_route_spec *was = reuse ? reuse->route(reuse->arg, i, elem) : NULL;
        rc = was ? reuse_route(was, p, st, cs, &st->routes[i], err)
                 : parse_route(elem, p, st, cs, &st->routes[i], err);
        if (rc != 0)
            break;
        const char *name = st->routes[i].name;
        long j = gv_strmap_get(&names, name, strlen(name));
        if (j >= 0) {
            node_path_key(q, sizeof(q), p, "name");
            rc = sv_fail(err, q, "duplicate name \"%s\" (also routes[%ld])", name, j);
            break;
        }
        if (gv_strmap_put(&names, name, strlen(name), (uint32_t)i) != 0) {
            rc = sv_nomem(err);
            break;
        }
    }
    gv_strmap_free(&names);
    return rc;
}

int node_state_from_json(const json_t *root, struct node_state *out, struct node_state_error *err)
{
    return node_state_from_json_reuse(root, NULL, out, err);
}

int node_state_from_json_reuse(const json_t *root, const struct node_state_reuse *reuse,
                               struct node_state *out, struct node_state_error *err)
{
    static const char *const keys[] = {"services", "routes", "consumers", "plugins", NULL};
    struct node_state st = {0};
    struct gw_consumer_set *cs = NULL;
    struct gv_schema_error se;
    const json_t *plugins;
    int rc;

    memset(err, 0, sizeof(*err));
    if (!json_is_object(root))
        return sv_fail(err, "", "the cluster state must be an object");
    if ((rc = sv_check_keys(root, "", keys, err)) != 0 ||
        (rc = parse_services(sv_field(root, "services"), &st, err)) != 0)
        goto fail;
    /* Consumers before routes: plugins that look credentials up are checked
     * against them. */
    if ((rc = gw_consumers_check(sv_field(root, "consumers"), "consumers", &st.consumers, &cs,
                                 &se)) != 0) {
        from_schema(err, &se, rc);
        goto fail;
    }
    if ((rc = parse_routes(sv_field(root, "routes"), &st, cs, reuse, err)) != 0)
        goto fail;
    if ((plugins = sv_field(root, "plugins")) != NULL) {
        if ((rc = gw_plugins_check(plugins, "plugins", cs, &st.plugins, &se)) != 0) {
            from_schema(err, &se, rc);
            goto fail;
        }
    } else if ((st.plugins = json_array()) == NULL) {
        rc = sv_nomem(err);
        goto fail;
    }
    gw_consumer_set_free(cs);
    *out = st;
    return 0;
fail:
    gw_consumer_set_free(cs);
    node_state_free(&st);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Canonical JSON. Building stops caring about individual allocation failures:
 * jansson's setters take NULL values and report them, and one check of the
 * flag at the end decides.
 */

struct builder {
    bool failed;
};

static json_t *b_put(struct builder *b, json_t *obj, const char *key, json_t *v)
{
    if (obj == NULL || json_object_set_new(obj, key, v) != 0)
        b->failed = true;
    return v;
}

static void b_append(struct builder *b, json_t *arr, json_t *v)
{
    if (arr == NULL || json_array_append_new(arr, v) != 0)
        b->failed = true;
}

json_t *node_state_to_json(const struct node_state *s)
{
    struct builder b = {false};
    json_t *root = json_object(), *x;
    x = b_put(&b, root, "services", json_array());
    for (size_t i = 0; i < s->nservices; i++)
        b_append(&b, x, gv_schema_dump(&lb_service_schema, &s->services[i]));
    x = b_put(&b, root, "routes", json_array());
    for (size_t i = 0; i < s->nroutes; i++)
        b_append(&b, x, gv_schema_dump(&gw_route_schema, &s->routes[i]));
    b_put(&b, root, "consumers", s->consumers ? json_deep_copy(s->consumers) : json_array());
    b_put(&b, root, "plugins", s->plugins ? json_deep_copy(s->plugins) : json_array());
    if (b.failed) {
        json_decref(root);
        return NULL;
    }
    return root;
}

/* One element of a JSON list (consumers, plugins) in minimal form. */
static json_t *minimal_element(const json_t *list, size_t i, json_t *(*minimal)(const json_t *))
{
    json_t *one = json_array(), *out = NULL;
    if (one != NULL && json_array_append(one, json_array_get(list, i)) == 0) {
        json_t *min = minimal(one);
        out = json_incref(json_array_get(min, 0));
        json_decref(min);
    }
    json_decref(one);
    return out;
}

json_t *node_state_object_json(const struct node_state *s, int kind, size_t i, bool minimal)
{
    switch (kind) {
    case GV_KIND_SERVICES:
        if (i >= s->nservices)
            return NULL;
        return minimal ? gv_schema_dump_min(&lb_service_schema, &s->services[i])
                       : gv_schema_dump(&lb_service_schema, &s->services[i]);
    case GV_KIND_ROUTES:
        if (i >= s->nroutes)
            return NULL;
        return minimal ? gv_schema_dump_min(&gw_route_schema, &s->routes[i])
                       : gv_schema_dump(&gw_route_schema, &s->routes[i]);
    case GV_KIND_CONSUMERS:
        if (i >= json_array_size(s->consumers))
            return NULL;
        return minimal ? minimal_element(s->consumers, i, gw_consumers_minimal)
                       : json_deep_copy(json_array_get(s->consumers, i));
    case GV_KIND_PLUGINS:
        if (i >= json_array_size(s->plugins))
            return NULL;
        return minimal ? minimal_element(s->plugins, i, gw_plugins_minimal)
                       : json_deep_copy(json_array_get(s->plugins, i));
    default:
        return NULL;
    }
}

json_t *node_state_to_json_min(const struct node_state *s)
{
    struct builder b = {false};
    json_t *root = json_object(), *x;
    x = b_put(&b, root, "services", json_array());
    for (size_t i = 0; i < s->nservices; i++)
        b_append(&b, x, gv_schema_dump_min(&lb_service_schema, &s->services[i]));
    x = b_put(&b, root, "routes", json_array());
    for (size_t i = 0; i < s->nroutes; i++)
        b_append(&b, x, gv_schema_dump_min(&gw_route_schema, &s->routes[i]));
    b_put(&b, root, "consumers", gw_consumers_minimal(s->consumers));
    b_put(&b, root, "plugins", gw_plugins_minimal(s->plugins));
    if (b.failed) {
        json_decref(root);
        return NULL;
    }
    return root;
}
