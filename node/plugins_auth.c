/* plugins_auth.c - the consumer table and the auth plugins' typed configs
 * (gateway/auth.h) from validated JSON (state_plugins.c). */
#include "node/plugins_int.h"
#include "gateway/auth.h"
#include "node/state.h"
#include "common/err.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int add_consumer(struct gw_consumers *t, const json_t *c)
{
    uint32_t idx;
    const json_t *v;
    size_t i;
    int rv = gw_consumers_add(t, json_string_value(json_object_get(c, "name")), &idx);
    json_array_foreach(json_object_get(c, "key_auth"), i, v)
    {
        if (rv == 0)
            rv = gw_consumers_add_key(t, idx, json_string_value(v));
    }
    json_array_foreach(json_object_get(c, "basic_auth"), i, v)
    {
        if (rv == 0)
            rv = gw_consumers_add_user(t, idx, json_string_value(json_object_get(v, "username")),
                                       json_string_value(json_object_get(v, "password_hash")));
    }
    json_array_foreach(json_object_get(c, "jwt"), i, v)
    {
        enum gw_jwt_alg alg;
        const char *why = NULL, *material = json_string_value(json_object_get(v, "secret"));
        if (material == NULL)
            material = json_string_value(json_object_get(v, "public_key"));
        if (rv == 0 &&
            gw_jwt_alg_parse(json_string_value(json_object_get(v, "algorithm")), &alg) == 0)
            rv = gw_consumers_add_jwt(t, idx, json_string_value(json_object_get(v, "issuer")), alg,
                                      material ? material : "", &why);
        if (rv == GV_EINVAL) { /* validated already: only a key this OpenSSL refuses */
            gv_warn("consumer %s: jwt credential skipped: %s", t->names[idx], why ? why : "");
            rv = 0;
        }
    }
    return rv;
}

int node_build_consumers(const json_t *consumers, struct gw_consumers **out)
{
    struct gw_consumers *t = gw_consumers_new();
    const json_t *c;
    size_t i;
    int rv = t ? 0 : GV_ENOMEM;
    json_array_foreach(consumers, i, c)
    {
        if (rv == 0)
            rv = add_consumer(t, c);
    }
    if (rv != 0) {
        gw_consumers_free(t);
        return rv;
    }
    gw_consumers_seal(t);
    *out = t;
    return 0;
}

static struct gw_auth_conf *auth_conf(const json_t *conf, const struct gw_pipeline *p,
                                      const char *header)
{
    struct gw_auth_conf *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    const char *h = json_string_value(json_object_get(conf, "header"));
    const char *q = json_string_value(json_object_get(conf, "query"));
    const char *realm = json_string_value(json_object_get(conf, "realm"));
    c->consumers = p->consumers;
    snprintf(c->header, sizeof(c->header), "%s", h ? h : header);
    snprintf(c->query, sizeof(c->query), "%s", q ? q : "");
    snprintf(c->realm, sizeof(c->realm), "%s", realm ? realm : "grapevine");
    c->forward = json_is_true(json_object_get(conf, "forward_credentials"));
    return c;
}

void *node_build_key_auth(const json_t *conf, uint64_t seed, const struct gw_pipeline *p)
{
    (void)seed;
    return auth_conf(conf, p, "X-Api-Key");
}

void *node_build_jwt(const json_t *conf, uint64_t seed, const struct gw_pipeline *p)
{
    (void)seed;
    struct gw_auth_conf *c = auth_conf(conf, p, "Authorization");
    uint64_t skew_ms = 30000;
    if (c != NULL) {
        node_json_duration(json_object_get(conf, "clock_skew"), &skew_ms);
        c->skew_s = (int64_t)(skew_ms / 1000);
        c->bearer = strcasecmp(c->header, "Authorization") == 0;
    }
    return c;
}

void *node_build_basic_auth(const json_t *conf, uint64_t seed, const struct gw_pipeline *p)
{
    (void)seed;
    return auth_conf(conf, p, "Authorization");
}
