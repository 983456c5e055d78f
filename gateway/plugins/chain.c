/* chain.c - checking plugin configs and consumers, building a snapshot's
 * plugin chains, and running their phases on requests; see chain.h. Nothing
 * here names a plugin: everything comes from the registry. */
#include "gateway/plugins/chain.h"
#include "gateway/router.h"
#include "common/err.h"
#include "common/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- consumers ------------------------------------------------------------ */

/* The consumer schema: "name" plus one field per auth plugin, each parsed
 * through that plugin's credential holder. Built once from the registry. */
static struct gv_field consumer_fields[1 + GW_CTX_SLOTS];
static struct gv_schema consumer_schema;
static pthread_once_t consumer_once = PTHREAD_ONCE_INIT;

/* The consumer's path from the path of one of its fields ("consumers[0]"
 * from "consumers[0].NAME"). */
static void parent_path(const char *path, const char *field, char *out, size_t n)
{
    size_t len = strlen(path), flen = strlen(field);
    size_t keep = len > flen ? len - flen - 1 : 0;
    if (keep >= n)
        keep = n - 1;
    memcpy(out, path, keep);
    out[keep] = '\0';
}

static int creds_parse(const struct gv_field *f, const json_t *v, void *member, const char *path,
                       struct gv_schema_error *err, void *ctx)
{
    const struct gw_plugin_ops *ops = f->data;
    const struct gv_schema *h = ops->credentials->holder;
    char parent[GV_PATH_LEN];
    void **slot = member;
    json_t *wrap = json_object();
    if (wrap == NULL || json_object_set(wrap, ops->name, (json_t *)v) != 0 ||
        (*slot = calloc(1, h->size)) == NULL) {
        json_decref(wrap);
        return gv_schema_nomem(err);
    }
    parent_path(path, ops->name, parent, sizeof(parent));
    int rv = gv_schema_parse(h, wrap, *slot, parent, err, ctx);
    json_decref(wrap);
    return rv;
}

static json_t *creds_dump(const struct gv_field *f, const void *member)
{
    const struct gw_plugin_ops *ops = f->data;
    void *const *slot = member;
    if (*slot == NULL)
        return NULL;
    json_t *d = gv_schema_dump(ops->credentials->holder, *slot);
    json_t *v = json_object_get(d, ops->name);
    if (v != NULL && json_is_array(v) && json_array_size(v) == 0)
        v = NULL;
    json_incref(v);
    json_decref(d);
    return v;
}

static json_t *creds_dump_min(const struct gv_field *f, const void *member)
{
    const struct gw_plugin_ops *ops = f->data;
    void *const *slot = member;
    if (*slot == NULL)
        return NULL;
    json_t *d = gv_schema_dump_min(ops->credentials->holder, *slot);
    json_t *v = json_object_get(d, ops->name);
    json_incref(v);
    json_decref(d);
    return v;
}

static void creds_free(const struct gv_field *f, void *member)
{
    const struct gw_plugin_ops *ops = f->data;
    void **slot = member;
    if (*slot != NULL)
        gv_schema_free(ops->credentials->holder, *slot);
    free(*slot);
    *slot = NULL;
}

static const struct gv_custom creds_type = {
    .type_doc = "list of credentials (see the plugin)",
    .parse = creds_parse,
    .dump = creds_dump,
    .free = creds_free,
    .dump_min = creds_dump_min,
};

static void consumer_schema_init(void)
{
    const struct gw_plugin_ops *const *list = gw_plugin_list();
    size_t n = 0;
    consumer_fields[n++] = (struct gv_field)GV_FIELD_STR(
        "name", struct gw_consumer, name, .flags = GV_F_REQUIRED, .rule = &gv_rule_name,
        .doc = "the consumer's name, unique; auth plugins identify callers as consumers");
    for (size_t i = 0; i < gw_plugin_count(); i++) {
        if (list[i]->credentials == NULL)
            continue;
        consumer_fields[n++] = (struct gv_field){
            .name = list[i]->name,
            .type = GV_T_CUSTOM,
            .off = offsetof(struct gw_consumer, creds) + i * sizeof(void *),
            .custom = &creds_type,
            .data = list[i],
            .doc = list[i]->credentials->holder->fields[0].doc,
        };
    }
    consumer_schema = (struct gv_schema){
        .name = "consumer",
        .size = sizeof(struct gw_consumer),
        .fields = consumer_fields,
        .nfields = n,
        .doc = "who calls the gateway, with the credentials each auth plugin checks",
    };
}

const struct gv_schema *gw_consumer_schema(void)
{
    pthread_once(&consumer_once, consumer_schema_init);
    return &consumer_schema;
}

void gw_consumer_set_free(struct gw_consumer_set *set)
{
    const struct gw_plugin_ops *const *list = gw_plugin_list();
    if (set == NULL)
        return;
    for (size_t s = 0; s < gw_plugin_count(); s++)
        if (set->index[s] != NULL && list[s]->credentials->index_free != NULL)
            list[s]->credentials->index_free(set->index[s]);
    for (size_t i = 0; i < set->n; i++) {
        gv_schema_free(gw_consumer_schema(), set->v[i]);
        free(set->v[i]);
    }
    free(set->v);
    free(set);
}

/* Parses and normalizes consumer i at path into set. */
static int consumer_parse(const json_t *v, const char *path, struct gw_consumer_set *set,
                          struct gv_schema_error *err)
{
    const struct gw_plugin_ops *const *list = gw_plugin_list();
    struct gw_consumer *c = calloc(1, sizeof(*c));
    char p[GV_PATH_LEN];
    if (c == NULL)
        return gv_schema_nomem(err);
    set->v[set->n++] = c;
    int rv = gv_schema_parse(gw_consumer_schema(), v, c, path, err, NULL);
    for (size_t s = 0; rv == 0 && s < gw_plugin_count(); s++)
        if (c->creds[s] != NULL && list[s]->credentials->normalize != NULL)
            rv = list[s]->credentials->normalize(c->creds[s], c->name, path, err);
    for (size_t j = 0; rv == 0 && j + 1 < set->n; j++) {
        if (strcmp(set->v[j]->name, c->name) == 0) {
            gv_path_key(p, sizeof(p), path, "name");
            return gv_schema_fail(err, p, "duplicate name \"%s\" (also consumers[%zu])", c->name,
                                  j);
        }
    }
    return rv;
}

int gw_consumers_check(const json_t *list, const char *path, json_t **canonical,
                       struct gw_consumer_set **out, struct gv_schema_error *err)
{
    const struct gw_plugin_ops *const *plugins = gw_plugin_list();
    struct gw_consumer_set *set = calloc(1, sizeof(*set));
    json_t *canon = json_array();
    char p[GV_PATH_LEN];
    int rv = 0;
    if (set == NULL || canon == NULL) {
        rv = gv_schema_nomem(err);
        goto fail;
    }
    if (list != NULL && !json_is_array(list)) {
        rv = gv_schema_fail(err, path, "must be a list");
        goto fail;
    }
    size_t n = json_array_size(list);
    if (n > 0 && (set->v = calloc(n, sizeof(*set->v))) == NULL) {
        rv = gv_schema_nomem(err);
        goto fail;
    }
    for (size_t i = 0; i < n && rv == 0; i++) {
        gv_path_index(p, sizeof(p), path, i);
        rv = consumer_parse(json_array_get(list, i), p, set, err);
        json_t *d = rv == 0 ? gv_schema_dump(gw_consumer_schema(), set->v[i]) : NULL;
        if (rv == 0 && (d == NULL || json_array_append_new(canon, d) != 0))
            rv = gv_schema_nomem(err);
    }
    for (size_t s = 0; s < gw_plugin_count() && rv == 0; s++)
        if (plugins[s]->credentials != NULL)
            rv = plugins[s]->credentials->index(set, (int)s, &set->index[s], err);
    if (rv != 0)
        goto fail;
    if (canonical != NULL)
        *canonical = canon;
    else
        json_decref(canon);
    if (out != NULL)
        *out = set;
    else
        gw_consumer_set_free(set);
    return 0;
fail:
    json_decref(canon);
    gw_consumer_set_free(set);
    return rv;
}

/* ---- plugin configs --------------------------------------------------------- */

static void inst_free(struct gw_plugin_inst *in)
{
    if (in->conf == NULL)
        return;
    if (in->ops->release != NULL)
        in->ops->release(in->conf);
    gv_schema_free(in->ops->schema, in->conf);
    free(in->conf);
    in->conf = NULL;
}

/* Parses and prepares one plugin config (conf: an object or null) at path. */
static int inst_make(const struct gw_plugin_ops *ops, int slot, const json_t *conf,
                     const char *path, const struct gw_plugin_env *env, struct gw_plugin_inst *out,
                     struct gv_schema_error *err)
{
    json_t *empty = NULL;
    out->ops = ops;
    out->slot = slot;
    if ((out->conf = calloc(1, ops->schema->size)) == NULL)
        return gv_schema_nomem(err);
    if (conf == NULL || json_is_null(conf))
        conf = empty = json_object();
    int rv = conf ? gv_schema_parse(ops->schema, conf, out->conf, path, err, NULL)
                  : gv_schema_nomem(err);
    json_decref(empty);
    bool prepared = rv == 0 && ops->prepare != NULL;
    if (prepared)
        rv = ops->prepare(out->conf, env, err);
    if (rv != 0) {
        if (prepared && ops->release != NULL) /* what prepare got to allocate */
            ops->release(out->conf);
        gv_schema_free(ops->schema, out->conf);
        free(out->conf);
        out->conf = NULL;
    }
    return rv;
}

/* The plugin an item {NAME: conf} of a list names. */
static int item_plugin(const json_t *item, const char *path, const char **name, const json_t **conf,
                       const struct gw_plugin_ops **ops, int *slot, struct gv_schema_error *err)
{
    if (!json_is_object(item) || json_object_size(item) != 1)
        return gv_schema_fail(err, path, "a plugin is an object with one key, its name");
    void *it = json_object_iter((json_t *)item);
    *name = json_object_iter_key(it);
    *conf = json_object_iter_value(it);
    *ops = gw_plugin_find(*name, strlen(*name), slot);
    if (*ops == NULL)
        return gv_schema_fail_key(err, path, *name, "unknown plugin \"%s\"", *name);
    return 0;
}

int gw_plugin_check(const char *name, const json_t *conf, const char *path,
                    const struct gw_consumer_set *consumers, json_t **canonical,
                    struct gv_schema_error *err)
{
    int slot;
    const struct gw_plugin_ops *ops = gw_plugin_find(name, strlen(name), &slot);
    struct gw_plugin_inst in = {0};
    if (ops == NULL)
        return gv_schema_fail(err, path, "unknown plugin \"%s\"", name);
    struct gw_plugin_env env = {.index = consumers ? consumers->index[slot] : NULL};
    int rv = inst_make(ops, slot, conf, path, &env, &in, err);
    if (rv == 0 && canonical != NULL && (*canonical = gv_schema_dump(ops->schema, in.conf)) == NULL)
        rv = gv_schema_nomem(err);
    inst_free(&in);
    return rv;
}

int gw_plugins_check(const json_t *list, const char *path, const struct gw_consumer_set *consumers,
                     json_t **canonical, struct gv_schema_error *err)
{
    char p[GV_PATH_LEN], q[GV_PATH_LEN];
    json_t *canon = json_array();
    int rv = canon ? 0 : gv_schema_nomem(err);
    if (rv == 0 && !json_is_array(list))
        rv = gv_schema_fail(err, path, "must be a list of plugins, each {NAME: {...}}");
    for (size_t i = 0; rv == 0 && i < json_array_size(list); i++) {
        const char *name = NULL;
        const json_t *conf = NULL;
        const struct gw_plugin_ops *ops = NULL;
        json_t *one = NULL;
        int slot = 0;
        gv_path_index(p, sizeof(p), path, i);
        if ((rv = item_plugin(json_array_get(list, i), p, &name, &conf, &ops, &slot, err)) != 0)
            break;
        for (size_t j = 0; j < i && rv == 0; j++)
            if (json_object_get(json_array_get(list, j), name) != NULL)
                rv = gv_schema_fail_key(err, p, name, "plugin \"%s\" is listed twice", name);
        gv_path_key(q, sizeof(q), p, name);
        if (rv == 0 && conf != NULL && !json_is_null(conf) && !json_is_object(conf))
            rv = gv_schema_fail(err, q, "must be an object");
        if (rv == 0)
            rv = gw_plugin_check(name, conf, q, consumers, &one, err);
        if (rv == 0 && json_array_append_new(canon, json_pack("{so}", name, one)) != 0)
            rv = gv_schema_nomem(err);
    }
    if (rv == 0 && canonical != NULL)
        *canonical = canon;
    else
        json_decref(canon);
    return rv;
}

/* ---- minimal forms ------------------------------------------------------------- */

json_t *gw_plugin_minimal(const char *name, const json_t *conf)
{
    struct gv_schema_error err;
    int slot;
    const struct gw_plugin_ops *ops = gw_plugin_find(name, strlen(name), &slot);
    void *typed = ops ? calloc(1, ops->schema->size) : NULL;
    json_t *out = NULL;
    if (typed != NULL && gv_schema_parse(ops->schema, conf, typed, "", &err, NULL) == 0)
        out = gv_schema_dump_min(ops->schema, typed);
    if (typed != NULL) {
        gv_schema_free(ops->schema, typed);
        free(typed);
    }
    return out;
}

json_t *gw_plugins_minimal(const json_t *list)
{
    json_t *out = json_array();
    for (size_t i = 0; out != NULL && i < json_array_size(list); i++) {
        const json_t *item = json_array_get(list, i);
        void *it = json_object_iter((json_t *)item);
        const char *name = it ? json_object_iter_key(it) : NULL;
        json_t *m = name ? gw_plugin_minimal(name, json_object_iter_value(it)) : NULL;
        if (m == NULL || json_array_append_new(out, json_pack("{so}", name, m)) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

json_t *gw_consumers_minimal(const json_t *list)
{
    json_t *out = json_array();
    for (size_t i = 0; out != NULL && i < json_array_size(list); i++) {
        struct gw_consumer c = {0};
        struct gv_schema_error err;
        json_t *m = NULL;
        if (gv_schema_parse(gw_consumer_schema(), json_array_get(list, i), &c, "", &err, NULL) == 0)
            m = gv_schema_dump_min(gw_consumer_schema(), &c);
        gv_schema_free(gw_consumer_schema(), &c);
        if (m == NULL || json_array_append_new(out, m) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

/* ---- building ---------------------------------------------------------------- */

static int by_order(const void *a, const void *b)
{
    const struct gw_plugin_inst *x = a, *y = b;
    if (x->ops->order != y->ops->order)
        return x->ops->order < y->ops->order ? -1 : 1;
    return x->slot - y->slot;
}

/* Adds the plugins of list to chain c, an instance replacing one of the
 * same plugin (a route's over a global one). */
static int chain_add(struct gw_chain *c, const json_t *list, const struct gw_plugin_env *base,
                     const struct gw_consumer_set *consumers)
{
    struct gv_schema_error err;
    for (size_t i = 0; i < json_array_size(list); i++) {
        const char *name = NULL;
        const json_t *conf = NULL;
        const struct gw_plugin_ops *ops = NULL;
        struct gw_plugin_inst in;
        int slot = 0;
        if (item_plugin(json_array_get(list, i), "", &name, &conf, &ops, &slot, &err) != 0)
            return GV_EINVAL;
        struct gw_plugin_env env = *base;
        env.index = consumers ? consumers->index[slot] : NULL;
        int rv = inst_make(ops, slot, conf, "", &env, &in, &err);
        if (rv != 0)
            return rv;
        size_t at = 0;
        while (at < c->n && c->v[at].slot != slot)
            at++;
        if (at < c->n) {
            inst_free(&c->v[at]);
        } else {
            struct gw_plugin_inst *v = realloc(c->v, (c->n + 1) * sizeof(*v));
            if (v == NULL) {
                inst_free(&in);
                return GV_ENOMEM;
            }
            c->v = v;
            c->n++;
        }
        c->v[at] = in;
    }
    return 0;
}

static void chain_seal(struct gw_chain *c)
{
    if (c->n > 1)
        qsort(c->v, c->n, sizeof(*c->v), by_order);
    for (size_t i = 0; i < c->n; i++) {
        const struct gw_plugin_ops *o = c->v[i].ops;
        c->any_upstream |= o->upstream_drop != NULL || o->upstream_add != NULL;
        c->any_response |= o->response_drop != NULL || o->response_add != NULL;
    }
}

int gw_pipeline_build(const json_t *global, const struct gw_route_spec *routes, size_t nroutes,
                      const json_t *consumers, struct gw_pipeline **out)
{
    struct gv_schema_error err;
    bool any = json_array_size(global) > 0;
    int rv;
    *out = NULL;
    for (size_t r = 0; r < nroutes && !any; r++)
        any = json_array_size(routes[r].plugins) > 0;
    if (!any)
        return 0;
    struct gw_pipeline *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->routes = calloc(nroutes + 1, sizeof(*p->routes))) == NULL) {
        free(p);
        return GV_ENOMEM;
    }
    p->nroutes = nroutes;
    if ((rv = gw_consumers_check(consumers, "consumers", NULL, &p->consumers, &err)) != 0)
        goto fail;
    for (size_t r = 0; r < nroutes; r++) {
        /* A global plugin keeps one state for all routes; a route's own is
         * seeded by the route's name. */
        struct gw_plugin_env genv = {.seed = 0x676c6f62616cULL};
        const char *name = routes[r].name;
        struct gw_plugin_env renv = {.seed = gv_hash64(name, strlen(name), 0x726f757465ULL),
                                     .route = name};
        if ((rv = chain_add(&p->routes[r], global, &genv, p->consumers)) != 0 ||
            (rv = chain_add(&p->routes[r], routes[r].plugins, &renv, p->consumers)) != 0)
            goto fail;
        chain_seal(&p->routes[r]);
    }
    *out = p;
    return 0;
fail:
    gw_pipeline_free(p);
    return rv;
}

void gw_pipeline_free(struct gw_pipeline *p)
{
    if (p == NULL)
        return;
    for (size_t r = 0; r < p->nroutes; r++) {
        for (size_t i = 0; i < p->routes[r].n; i++)
            inst_free(&p->routes[r].v[i]);
        free(p->routes[r].v);
    }
    free(p->routes);
    gw_consumer_set_free(p->consumers);
    free(p);
}

/* ---- phases ------------------------------------------------------------------- */

static const void *ctx_of(const struct gw_request *r, const struct gw_plugin_inst *in)
{
    return (r->ctx_live & (1u << in->slot)) ? r->ctx[in->slot] : NULL;
}

enum gw_plugin_verdict gw_chain_on_request(struct gw_request *r)
{
    const struct gw_chain *c = r->chain;
    for (size_t i = 0; c != NULL && i < c->n; i++) {
        const struct gw_plugin_inst *in = &c->v[i];
        void *ctx = in->ops->ctx_size ? gw_request_ctx(r, in->slot, in->ops->ctx_size) : NULL;
        r->ran = (uint8_t)(i + 1);
        if (in->ops->on_request != NULL &&
            in->ops->on_request(in->conf, r, ctx) == GW_PLUGIN_ANSWERED)
            return GW_PLUGIN_ANSWERED;
    }
    return GW_PLUGIN_NEXT;
}

enum gw_plugin_verdict gw_chain_on_body(struct gw_request *r, const char *data, size_t len)
{
    const struct gw_chain *c = r->chain;
    for (size_t i = 0; c != NULL && i < r->ran; i++) {
        const struct gw_plugin_inst *in = &c->v[i];
        if (in->ops->on_body != NULL &&
            in->ops->on_body(in->conf, r, (void *)ctx_of(r, in), data, len) == GW_PLUGIN_ANSWERED)
            return GW_PLUGIN_ANSWERED;
    }
    return GW_PLUGIN_NEXT;
}

bool gw_chain_upstream_drop(const struct gw_request *r, const char *name, size_t len)
{
    const struct gw_chain *c = r->chain;
    if (c == NULL || !c->any_upstream)
        return false;
    for (size_t i = 0; i < r->ran; i++) {
        const struct gw_plugin_inst *in = &c->v[i];
        if (in->ops->upstream_drop != NULL &&
            in->ops->upstream_drop(in->conf, r, ctx_of(r, in), name, len))
            return true;
    }
    return false;
}

int gw_chain_upstream_add(struct gw_request *r, struct gw_hdr_out *out)
{
    const struct gw_chain *c = r->chain;
    int rv = 0;
    for (size_t i = 0; c != NULL && c->any_upstream && i < r->ran && rv == 0; i++) {
        const struct gw_plugin_inst *in = &c->v[i];
        if (in->ops->upstream_add != NULL)
            rv = in->ops->upstream_add(in->conf, r, ctx_of(r, in), out);
    }
    return rv;
}

bool gw_chain_response_drop(const struct gw_request *r, const char *name, size_t len)
{
    const struct gw_chain *c = r->chain;
    if (c == NULL || !c->any_response)
        return false;
    for (size_t i = 0; i < r->ran; i++) {
        const struct gw_plugin_inst *in = &c->v[i];
        if (in->ops->response_drop != NULL &&
            in->ops->response_drop(in->conf, r, ctx_of(r, in), name, len))
            return true;
    }
    return false;
}

int gw_chain_response_add(struct gw_request *r, struct gw_hdr_out *out)
{
    const struct gw_chain *c = r->chain;
    int rv = 0;
    for (size_t i = 0; c != NULL && c->any_response && i < r->ran && rv == 0; i++) {
        const struct gw_plugin_inst *in = &c->v[i];
        if (in->ops->response_add != NULL)
            rv = in->ops->response_add(in->conf, r, ctx_of(r, in), out);
    }
    return rv;
}

int gw_plugins_metrics(struct gv_buf *out)
{
    const struct gw_plugin_ops *const *list = gw_plugin_list();
    int rv = 0;
    for (size_t i = 0; i < gw_plugin_count() && rv == 0; i++)
        if (list[i]->metrics != NULL)
            rv = list[i]->metrics(out);
    return rv;
}
