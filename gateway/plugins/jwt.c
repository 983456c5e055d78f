/* jwt.c - the jwt plugin: a bearer token (Authorization: Bearer by default,
 * or a configured header or query parameter) verified against the consumers'
 * jwt credentials (gateway/auth/jws.c); its "iss" names the credential and
 * so the consumer. A token that verified is remembered per worker thread
 * until it expires, so a repeated token costs a lookup. Consumers list
 * `jwt: [{issuer, algorithm, secret | public_key}]`; an issuer belongs to one
 * consumer only, and a key the gateway cannot use is refused in the config. */
#include "gateway/auth/cred_cache.h"
#include "gateway/auth/credential.h"
#include "gateway/auth/jws.h"
#include "gateway/plugins/chain.h"
#include "gateway/plugins/plugin.h"
#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* The consumers' keys, and the consumers they identify. */
struct jwt_index {
    struct gw_jws_keys keys;
    const struct gw_consumer_set *set;
};

struct jwt_conf {
    char *header;
    char *query;
    uint64_t skew_ms;
    bool forward;
    bool bearer; /* the header is Authorization: "Bearer " comes first */
    int64_t skew_s;
    const struct jwt_index *index; /* not owned */
};

static const struct gv_field fields[] = {
    GV_FIELD_STR("header", struct jwt_conf, header, .def.s = "Authorization",
                 .rule = &gv_rule_token, .max = 127,
                 .doc = "the header that carries the token (Authorization: Bearer TOKEN)"),
    GV_FIELD_STR("query", struct jwt_conf, query, .rule = &gw_auth_param_rule, .max = 127,
                 .doc = "a query parameter that may carry the token instead"),
    GV_FIELD_DURATION("clock_skew", struct jwt_conf, skew_ms, 0, 300000, .def.i = 30000,
                      .doc = "tolerance for exp and nbf (at most 5m)"),
    GV_FIELD_BOOL("forward_credentials", struct jwt_conf, forward,
                  .doc = "send the token upstream too (default: it is taken out)"),
};
static const struct gv_schema schema = GV_SCHEMA("jwt", struct jwt_conf, fields);

/* ---- consumers' credentials ------------------------------------------------- */

struct jwt_cred {
    char *issuer;
    int alg; /* enum gw_jws_alg */
    char *secret;
    char *public_key;
};

static const char *const alg_names[] = {"HS256", "HS384", "HS512", "RS256", "RS384",
                                        "RS512", "ES256", "ES384", NULL};

/* The algorithm decides the key material; the key is compiled here, so a
 * state naming a key the gateway cannot use is refused instead of silently
 * locking users out. */
static int cred_check(void *obj, const char *path, struct gv_schema_error *err, void *ctx)
{
    struct jwt_cred *c = obj;
    bool hmac = c->alg <= GW_JWS_HS512;
    const char *want = hmac ? "secret" : "public_key";
    const char *material = hmac ? c->secret : c->public_key;
    const char *why = NULL;
    struct gw_jws_key key;
    (void)ctx;
    if ((hmac ? c->public_key : c->secret) != NULL)
        return gv_schema_fail_key(err, path, want, "%s takes \"%s\" only",
                                  gw_jws_alg_name((enum gw_jws_alg)c->alg), want);
    if (material == NULL)
        return gv_schema_fail(err, path, "missing \"%s\"", want);
    int rv = gw_jws_key_init(&key, c->issuer, (enum gw_jws_alg)c->alg, material, 0, &why);
    if (rv == GV_ENOMEM)
        return gv_schema_nomem(err);
    if (rv != 0) {
        char p[GV_PATH_LEN];
        gv_path_key(p, sizeof(p), path, want);
        return gv_schema_fail(err, p, "%s", why ? why : "unusable key");
    }
    gw_jws_key_clear(&key);
    return 0;
}

static const struct gv_field cred_item_fields[] = {
    GV_FIELD_STR("issuer", struct jwt_cred, issuer, .flags = GV_F_REQUIRED | GV_F_NONEMPTY,
                 .max = 512, .doc = "the token's \"iss\" that names this credential"),
    GV_FIELD_ENUM("algorithm", struct jwt_cred, alg, alg_names, .def.s = "HS256",
                  .doc = "the only algorithm accepted for this issuer"),
    GV_FIELD_STR("secret", struct jwt_cred, secret, .flags = GV_F_SECRET | GV_F_NONEMPTY,
                 .doc = "HS*: the shared secret"),
    GV_FIELD_STR("public_key", struct jwt_cred, public_key, .flags = GV_F_MULTILINE,
                 .doc = "RS*/ES*: the PEM public key"),
};
static const struct gv_schema cred_item =
    GV_SCHEMA("jwt credential", struct jwt_cred, cred_item_fields, .check = cred_check);

struct jwt_creds {
    struct jwt_cred *v;
    size_t n;
};

static const struct gv_field cred_fields[] = {
    GV_FIELD_OBJS("jwt", struct jwt_creds, v, n, &cred_item, .flags = GV_F_OMIT_EMPTY,
                  .doc = "the consumer's JWT issuers and keys (jwt plugin)"),
};
static const struct gv_schema cred_schema =
    GV_SCHEMA("jwt credentials", struct jwt_creds, cred_fields);

static void index_free(void *p)
{
    struct jwt_index *ix = p;
    if (ix == NULL)
        return;
    for (size_t i = 0; i < ix->keys.n; i++)
        gw_jws_key_clear(&ix->keys.v[i]);
    free(ix->keys.v);
    free(ix);
}

/* The consumer that already holds issuer, or NULL. */
static const char *issuer_owner(const struct jwt_index *ix, const char *issuer)
{
    for (size_t k = 0; k < ix->keys.n; k++)
        if (strcmp(ix->keys.v[k].issuer, issuer) == 0)
            return ix->set->v[ix->keys.v[k].consumer]->name;
    return NULL;
}

static int add_key(struct jwt_index *ix, const struct jwt_cred *c, size_t consumer, size_t j,
                   struct gv_schema_error *err)
{
    const char *owner = issuer_owner(ix, c->issuer), *why = NULL;
    const char *name = ix->set->v[consumer]->name;
    char p[GV_PATH_LEN];
    if (owner != NULL && strcmp(owner, name) != 0) {
        snprintf(p, sizeof(p), "consumers[%zu].jwt[%zu].issuer", consumer, j);
        return gv_schema_fail(err, p, "issuer \"%s\" also belongs to consumer \"%s\"", c->issuer,
                              owner);
    }
    struct gw_jws_key *v = realloc(ix->keys.v, (ix->keys.n + 1) * sizeof(*v));
    if (v == NULL)
        return gv_schema_nomem(err);
    ix->keys.v = v;
    const char *material = c->secret ? c->secret : c->public_key;
    int rv = gw_jws_key_init(&v[ix->keys.n], c->issuer, (enum gw_jws_alg)c->alg, material,
                             (int)consumer, &why);
    if (rv != 0) /* checked when parsed: only memory can fail here */
        return gv_schema_nomem(err);
    ix->keys.n++;
    return 0;
}

static int index_build(const struct gw_consumer_set *set, int slot, void **out,
                       struct gv_schema_error *err)
{
    struct jwt_index *ix = calloc(1, sizeof(*ix));
    int rv = ix ? 0 : gv_schema_nomem(err);
    if (ix != NULL) {
        ix->set = set;
        ix->keys.gen = gw_cred_cache_gen();
    }
    for (size_t i = 0; rv == 0 && i < set->n; i++) {
        const struct jwt_creds *c = set->v[i]->creds[slot];
        for (size_t j = 0; c != NULL && rv == 0 && j < c->n; j++)
            rv = add_key(ix, &c->v[j], i, j, err);
    }
    if (rv != 0) {
        index_free(ix);
        return rv;
    }
    *out = ix;
    return 0;
}

static const struct gw_plugin_credentials credentials = {
    .holder = &cred_schema,
    .index = index_build,
    .index_free = index_free,
};

/* ---- phases --------------------------------------------------------------------- */

static int prepare(void *conf, const struct gw_plugin_env *env, struct gv_schema_error *err)
{
    struct jwt_conf *c = conf;
    (void)err;
    c->index = env->index;
    c->skew_s = (int64_t)(c->skew_ms / 1000);
    c->bearer = strcasecmp(c->header, "Authorization") == 0;
    return 0;
}

static enum gw_plugin_verdict deny(struct gw_request *r, const char *why)
{
    char value[160];
    snprintf(value, sizeof(value), "Bearer error=\"invalid_token\", error_description=\"%s\"", why);
    struct gw_hdr h = {"WWW-Authenticate", value};
    gw_request_fail_with(r, 401, why, &h, 1);
    return GW_PLUGIN_ANSWERED;
}

/* The token in the configured header ("Bearer " stripped), or NULL. */
static const char *header_token(const struct jwt_conf *c, const struct gw_request *r, size_t *len)
{
    const char *tok = gw_request_header(r, c->header, len);
    if (tok == NULL || !c->bearer)
        return tok;
    if (*len < 7 || strncasecmp(tok, "Bearer ", 7) != 0)
        return NULL; /* another scheme: not ours */
    tok += 7;
    *len -= 7;
    while (*len > 0 && *tok == ' ') {
        tok++;
        (*len)--;
    }
    return tok;
}

static enum gw_plugin_verdict on_request(const void *conf, struct gw_request *r, void *ctx)
{
    const struct jwt_conf *c = conf;
    static const struct gw_jws_keys none;
    const struct gw_jws_keys *ks = c->index ? &c->index->keys : &none;
    char buf[GW_JWS_MAX_LEN];
    size_t len = 0;
    const char *query;
    const char *tok = header_token(c, r, &len);
    tok = gw_auth_credential(r, tok, &len, c->query, buf, sizeof(buf), &query);
    if (tok == NULL) {
        struct gw_hdr h = {"WWW-Authenticate", "Bearer"};
        gw_request_fail_with(r, 401, "missing token", &h, 1);
        return GW_PLUGIN_ANSWERED;
    }
    int64_t now = (int64_t)time(NULL), exp;
    size_t idx;
    const struct gw_jws_key *key = NULL;
    const char *why = "invalid token";
    if (!gw_cred_cache_get(ks->gen, tok, len, now, c->skew_s, &idx) || idx >= ks->n) {
        if (gw_jws_verify(ks, tok, len, now, c->skew_s, &key, &exp, &why) != 0)
            return deny(r, why);
        idx = (size_t)(key - ks->v);
        gw_cred_cache_put(ks->gen, tok, len, exp, idx);
    }
    gw_auth_accept(r, ctx, c->index->set->v[ks->v[idx].consumer]->name, c->forward, query,
                   c->header);
    return GW_PLUGIN_NEXT;
}

const struct gw_plugin_ops gw_plugin_jwt = {
    .name = "jwt",
    .order = 21,
    .doc = "signed JWTs identify consumers by issuer; 401 otherwise",
    .schema = &schema,
    .prepare = prepare,
    .credentials = &credentials,
    .ctx_size = sizeof(struct gw_auth_ctx),
    .on_request = on_request,
    .upstream_drop = gw_auth_upstream_drop,
};
