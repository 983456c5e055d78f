/* state.c - the one validator of cluster state (services, routes, consumers,
 * global plugins): JSON in, typed specs out, and canonical JSON back out. */
#include "node/state.h"
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
 * Routes
 */

static int parse_match(const json_t *m, const char *path, struct gw_route_spec *r,
                       struct node_state_error *err)
{
    static const char *const keys[] = {"hosts", "paths", "path_type", "methods", "headers", NULL};
    static const char *const types[] = {"prefix", "exact", "regex"};
    static const enum gw_path_type type_values[] = {GW_PATH_PREFIX, GW_PATH_EXACT, GW_PATH_REGEX};
    const json_t *list, *hdrs;
    const char *s = NULL;
    char p[PATH_LEN], q[PATH_LEN];
    int rc;

    if ((rc = sv_want_object(m, path, err)) != 0 || (rc = sv_check_keys(m, path, keys, err)) != 0)
        return rc;

    if ((rc = sv_get_str(m, path, "path_type", false, &s, err)) != 0)
        return rc;
    if (s != NULL) {
        size_t i = 0;
        while (i < GV_ARRAY_LEN(types) && strcmp(types[i], s) != 0)
            i++;
        if (i == GV_ARRAY_LEN(types))
            return sv_fail_field(err, path, "path_type",
                                 "unknown path_type \"%s\" (prefix, exact or regex)", s);
        r->path_type = type_values[i];
    }

    if ((rc = sv_get_list(m, path, "hosts", &list, err)) != 0)
        return rc;
    if (list != NULL && json_array_size(list) > 0) {
        node_path_key(p, sizeof(p), path, "hosts");
        if ((r->hosts = calloc(json_array_size(list), sizeof(char *))) == NULL)
            return sv_nomem(err);
        for (size_t i = 0; i < json_array_size(list); i++) {
            if ((rc = sv_list_str(list, p, i, &s, err)) != 0)
                return rc;
            if (!sv_is_host(s)) {
                node_path_index(q, sizeof(q), p, i);
                return sv_fail(err, q,
                               "bad host \"%s\" (a name like api.example.com or "
                               "*.example.com, no port)",
                               s);
            }
            if ((r->hosts[i] = strdup(s)) == NULL)
                return sv_nomem(err);
            r->nhosts = i + 1;
            for (char *c = r->hosts[i]; *c; c++)
                *c = (char)tolower((unsigned char)*c);
        }
    }

    if ((rc = sv_get_list(m, path, "paths", &list, err)) != 0)
        return rc;
    if (list != NULL && json_array_size(list) > 0) {
        node_path_key(p, sizeof(p), path, "paths");
        if ((r->paths = calloc(json_array_size(list), sizeof(char *))) == NULL)
            return sv_nomem(err);
        for (size_t i = 0; i < json_array_size(list); i++) {
            if ((rc = sv_list_str(list, p, i, &s, err)) != 0)
                return rc;
            node_path_index(q, sizeof(q), p, i);
            if (r->path_type == GW_PATH_REGEX) {
                regex_t re;
                int e = regcomp(&re, s, REG_EXTENDED | REG_NOSUB);
                if (e != 0) {
                    char why[128];
                    regerror(e, &re, why, sizeof(why));
                    return sv_fail(err, q, "bad regex \"%s\": %s", s, why);
                }
                regfree(&re);
            } else if (s[0] != '/' || strpbrk(s, " \t\r\n") != NULL) {
                return sv_fail(err, q, "bad path \"%s\" (must start with \"/\")", s);
            }
            if ((r->paths[i] = strdup(s)) == NULL)
                return sv_nomem(err);
            r->npaths = i + 1;
        }
    }

    if ((rc = sv_get_list(m, path, "methods", &list, err)) != 0)
        return rc;
    node_path_key(p, sizeof(p), path, "methods");
    for (size_t i = 0; list != NULL && i < json_array_size(list); i++) {
        char up[32];
        size_t n;
        if ((rc = sv_list_str(list, p, i, &s, err)) != 0)
            return rc;
        for (n = 0; s[n] != '\0' && n + 1 < sizeof(up); n++)
            up[n] = (char)toupper((unsigned char)s[n]);
        up[n] = '\0';
        if (s[n] != '\0' || gw_method_bit(up, &r->methods) != 0) {
            node_path_index(q, sizeof(q), p, i);
            return sv_fail(err, q, "unknown method \"%s\"", s);
        }
    }

    if ((hdrs = sv_field(m, "headers")) != NULL) {
        const char *name;
        json_t *hv;
        node_path_key(p, sizeof(p), path, "headers");
        if (!json_is_object(hdrs))
            return sv_fail(err, p, "must be an object of header: value");
        size_t n = json_object_size(hdrs);
        if (n > 0 && (r->headers = calloc(n, sizeof(*r->headers))) == NULL)
            return sv_nomem(err);
        json_object_foreach((json_t *)hdrs, name, hv)
        {
            struct gw_header_match *h = &r->headers[r->nheaders];
            char num[32];
            const char *val = num;
            node_path_key(q, sizeof(q), p, name);
            if (!sv_is_token(name))
                return sv_fail(err, q, "bad header name \"%s\"", name);
            if (json_is_integer(hv))
                snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(hv));
            else if (json_is_string(hv) && strlen(json_string_value(hv)) == json_string_length(hv))
                val = json_string_value(hv);
            else
                return sv_fail(err, q, "must be a string");
            h->name = strdup(name);
            h->value = strdup(val);
            r->nheaders++;
            if (h->name == NULL || h->value == NULL)
                return sv_nomem(err);
        }
    }
    return 0;
}

/* err from a gateway check (common/schema.h's error) as the validator's. */
static int from_schema(struct node_state_error *err, const struct gv_schema_error *se, int rc)
{
    snprintf(err->path, sizeof(err->path), "%s", se->path);
    snprintf(err->where, sizeof(err->where), "%s", se->where);
    snprintf(err->msg, sizeof(err->msg), "%s", se->msg);
    return rc;
}

static int parse_route(const json_t *v, const char *path, const struct node_state *st,
                       const struct gw_consumer_set *cs, struct gw_route_spec *r, json_t **plugins,
                       struct node_state_error *err)
{
    static const char *const keys[] = {"name", "match", "service", "strip_prefix", "plugins", NULL};
    const char *name = NULL, *svc = NULL;
    const json_t *o;
    char p[PATH_LEN];
    int rc;

    if ((rc = sv_want_object(v, path, err)) != 0 || (rc = sv_check_keys(v, path, keys, err)) != 0 ||
        (rc = sv_get_str(v, path, "name", true, &name, err)) != 0)
        return rc;
    node_path_key(p, sizeof(p), path, "name");
    if ((rc = sv_check_name(name, p, err)) != 0)
        return rc;
    if ((r->name = strdup(name)) == NULL)
        return sv_nomem(err);
    if ((o = sv_field(v, "match")) != NULL) {
        node_path_key(p, sizeof(p), path, "match");
        if ((rc = parse_match(o, p, r, err)) != 0)
            return rc;
    }
    if ((rc = sv_get_str(v, path, "service", true, &svc, err)) != 0)
        return rc;
    if (node_state_find_service(st, svc) < 0)
        return sv_fail_field(err, path, "service", "no service named \"%s\"", svc);
    if ((r->service = strdup(svc)) == NULL)
        return sv_nomem(err);
    if ((rc = sv_get_bool(v, path, "strip_prefix", &r->strip_prefix, err)) != 0)
        return rc;
    if ((o = sv_field(v, "plugins")) != NULL) {
        json_t *copy = NULL;
        node_path_key(p, sizeof(p), path, "plugins");
        struct gv_schema_error se;
        if ((rc = gw_plugins_check(o, p, cs, &copy, &se)) != 0)
            return from_schema(err, &se, rc);
        if (json_array_size(copy) == 0)
            json_decref(copy);
        else
            *plugins = copy;
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * The state
 */

int node_state_find_service(const struct node_state *s, const char *name)
{
    for (size_t i = 0; i < s->nservices; i++)
        if (s->services[i].name != NULL && strcmp(s->services[i].name, name) == 0)
            return (int)i;
    return -1;
}

void node_state_free(struct node_state *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nservices; i++)
        lb_service_spec_free(&s->services[i]);
    free(s->services);
    for (size_t i = 0; i < s->nroutes; i++) {
        gw_route_spec_free(&s->routes[i]);
        if (s->route_plugins != NULL)
            json_decref(s->route_plugins[i]);
    }
    free(s->routes);
    free(s->route_plugins);
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
        for (size_t j = 0; j < i; j++) {
            if (strcmp(st->services[j].name, st->services[i].name) == 0) {
                node_path_key(q, sizeof(q), p, "name");
                return sv_fail(err, q, "duplicate name \"%s\" (also services[%zu])",
                               st->services[i].name, j);
            }
        }
    }
    return 0;
}

static int parse_routes(const json_t *list, struct node_state *st, const struct gw_consumer_set *cs,
                        struct node_state_error *err)
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
    st->routes = calloc(n, sizeof(*st->routes));
    st->route_plugins = calloc(n, sizeof(*st->route_plugins));
    if (st->routes == NULL || st->route_plugins == NULL)
        return sv_nomem(err);
    for (size_t i = 0; i < n; i++) {
        node_path_index(p, sizeof(p), "routes", i);
        st->nroutes = i + 1;
        if ((rc = parse_route(json_array_get(list, i), p, st, cs, &st->routes[i],
                              &st->route_plugins[i], err)) != 0)
            return rc;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(st->routes[j].name, st->routes[i].name) == 0) {
                node_path_key(q, sizeof(q), p, "name");
                return sv_fail(err, q, "duplicate name \"%s\" (also routes[%zu])",
                               st->routes[i].name, j);
            }
        }
    }
    return 0;
}

int node_state_from_json(const json_t *root, struct node_state *out, struct node_state_error *err)
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
    if ((rc = parse_routes(sv_field(root, "routes"), &st, cs, err)) != 0)
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

static json_t *b_strings(struct builder *b, char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        b_append(b, a, json_string(v[i]));
    return a;
}

static json_t *route_json(struct builder *b, const struct gw_route_spec *r, const json_t *plugins)
{
    static const char *const types[] = {
        [GW_PATH_PREFIX] = "prefix", [GW_PATH_EXACT] = "exact", [GW_PATH_REGEX] = "regex"};
    json_t *o = json_object(), *m, *x;
    b_put(b, o, "name", json_string(r->name));
    m = b_put(b, o, "match", json_object());
    b_put(b, m, "hosts", b_strings(b, r->hosts, r->nhosts));
    b_put(b, m, "paths", b_strings(b, r->paths, r->npaths));
    b_put(b, m, "path_type", json_string(types[r->path_type]));
    x = b_put(b, m, "methods", json_array());
    for (int bit = 0; bit < 64; bit++)
        if (r->methods & ((uint64_t)1 << bit))
            b_append(b, x, json_string(llhttp_method_name((llhttp_method_t)bit)));
    x = b_put(b, m, "headers", json_object());
    for (size_t i = 0; i < r->nheaders; i++)
        b_put(b, x, r->headers[i].name, json_string(r->headers[i].value));
    b_put(b, o, "service", json_string(r->service));
    b_put(b, o, "strip_prefix", json_boolean(r->strip_prefix));
    b_put(b, o, "plugins", plugins ? json_deep_copy(plugins) : json_array());
    return o;
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
        b_append(&b, x,
                 route_json(&b, &s->routes[i], s->route_plugins ? s->route_plugins[i] : NULL));
    b_put(&b, root, "consumers", s->consumers ? json_deep_copy(s->consumers) : json_array());
    b_put(&b, root, "plugins", s->plugins ? json_deep_copy(s->plugins) : json_array());
    if (b.failed) {
        json_decref(root);
        return NULL;
    }
    return root;
}
