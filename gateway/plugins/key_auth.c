/* key_auth.c - the key_auth plugin: an API key from a header (X-Api-Key by
 * default) or, when configured, a query parameter identifies a consumer;
 * a missing or unknown key gets 401. Consumers list their keys as
 * `key_auth: [KEY, ...]`; a key belongs to one consumer only. Unless
 * forward_credentials is set, the key is not sent upstream. */
#include "gateway/auth/cred_index.h"
#include "gateway/auth/credential.h"
#include "gateway/plugins/chain.h"
#include "gateway/plugins/plugin.h"

#include <string.h>

struct key_auth_conf {
    char *header;
    char *query;
    bool forward;
    const struct gw_cred_index *keys; /* the consumers' keys; not owned */
};

static const struct gv_field fields[] = {
    GV_FIELD_STR("header", struct key_auth_conf, header, .def.s = "X-Api-Key",
                 .rule = &gv_rule_token, .max = 127, .doc = "the header that carries the key"),
    GV_FIELD_STR("query", struct key_auth_conf, query, .rule = &gw_auth_param_rule, .max = 127,
                 .doc = "a query parameter that may carry the key instead"),
    GV_FIELD_BOOL("forward_credentials", struct key_auth_conf, forward,
                  .doc = "send the key upstream too (default: it is taken out)"),
};
static const struct gv_schema schema = GV_SCHEMA("key_auth", struct key_auth_conf, fields);

/* ---- consumers' keys --------------------------------------------------------- */

struct key_auth_creds {
    char **keys;
    size_t nkeys;
};

static const struct gv_field cred_fields[] = {
    GV_FIELD_STRS("key_auth", struct key_auth_creds, keys, nkeys, .flags = GV_F_OMIT_EMPTY,
                  .max = 512, .doc = "the consumer's API keys (key_auth plugin)"),
};
static const struct gv_schema cred_schema =
    GV_SCHEMA("key_auth credentials", struct key_auth_creds, cred_fields);

static int index_build(const struct gw_consumer_set *set, int slot, void **out,
                       struct gv_schema_error *err)
{
    struct gw_cred_index *ix = gw_cred_index_new();
    int rv = ix ? 0 : gv_schema_nomem(err);
    for (size_t i = 0; rv == 0 && i < set->n; i++) {
        const struct key_auth_creds *c = set->v[i]->creds[slot];
        for (size_t j = 0; c != NULL && rv == 0 && j < c->nkeys; j++)
            if (gw_cred_index_add(ix, c->keys[j], set->v[i]->name, NULL, (uint32_t)i,
                                  (uint32_t)j) != 0)
                rv = gv_schema_nomem(err);
    }
    if (rv == 0)
        rv = gw_cred_index_seal(ix, "key_auth", "key", false, err);
    if (rv != 0) {
        gw_cred_index_free(ix);
        return rv;
    }
    *out = ix;
    return 0;
}

static void index_free(void *ix)
{
    gw_cred_index_free(ix);
}

static const struct gw_plugin_credentials credentials = {
    .holder = &cred_schema,
    .index = index_build,
    .index_free = index_free,
};

/* ---- phases --------------------------------------------------------------------- */

static int prepare(void *conf, const struct gw_plugin_env *env, struct gv_schema_error *err)
{
    struct key_auth_conf *c = conf;
    (void)err;
    c->keys = env->index;
    return 0;
}

static enum gw_plugin_verdict on_request(const void *conf, struct gw_request *r, void *ctx)
{
    const struct key_auth_conf *c = conf;
    char buf[512];
    size_t len = 0;
    const char *query;
    const char *key = gw_request_header(r, c->header, &len);
    key = gw_auth_credential(r, key, &len, c->query, buf, sizeof(buf), &query);
    if (key == NULL) {
        gw_request_fail(r, 401, "missing API key");
        return GW_PLUGIN_ANSWERED;
    }
    const struct gw_cred *cred = gw_cred_index_find(c->keys, key, len);
    if (cred == NULL) {
        gw_request_fail(r, 401, "invalid API key");
        return GW_PLUGIN_ANSWERED;
    }
    gw_auth_accept(r, ctx, cred->consumer, c->forward, query, c->header);
    return GW_PLUGIN_NEXT;
}

const struct gw_plugin_ops gw_plugin_key_auth = {
    .name = "key_auth",
    .order = 20,
    .doc = "API keys identify consumers; 401 without a known key",
    .schema = &schema,
    .prepare = prepare,
    .credentials = &credentials,
    .ctx_size = sizeof(struct gw_auth_ctx),
    .on_request = on_request,
    .upstream_drop = gw_auth_upstream_drop,
};
