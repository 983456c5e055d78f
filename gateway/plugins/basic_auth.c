/* basic_auth.c - the basic_auth plugin: "Authorization: Basic" user names
 * and passwords identify consumers; 401 with a WWW-Authenticate challenge
 * otherwise. Consumers list `basic_auth: [{username, password}]`; stored
 * config keeps only the password's hash (gateway/auth/password.h), salted
 * from the consumer and user names so every node seeding the same file
 * stores the same object.
 *
 * A hash costs milliseconds, far too much per request: a credential that
 * passed is remembered per worker thread (gateway/auth/cred_cache.h, keyed by
 * the index's generation and the exact header value), so a client that
 * repeats it costs a lookup. A wrong password always pays the full hash, and
 * so does an unknown user, so timing does not tell which names exist. */
#include "gateway/auth/cred_cache.h"
#include "gateway/auth/cred_index.h"
#include "gateway/auth/password.h"
#include "gateway/plugins/chain.h"
#include "gateway/plugins/plugin.h"
#include "common/err.h"
#include "common/util.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct basic_conf {
    char *realm;
    bool forward;
    const struct gw_cred_index *users; /* not owned */
};

struct basic_ctx {
    bool identified;
};

/* A realm goes between quotes in WWW-Authenticate. */
static bool is_realm(const char *s)
{
    return strpbrk(s, "\"\\") == NULL;
}

static const struct gv_str_rule realm_rule = {"realm", "no quotes or backslashes", is_realm};

static const struct gv_field fields[] = {
    GV_FIELD_STR("realm", struct basic_conf, realm, .def.s = "grapevine", .rule = &realm_rule,
                 .max = 127, .doc = "the realm named in the 401 challenge"),
    GV_FIELD_BOOL("forward_credentials", struct basic_conf, forward,
                  .doc = "send the Authorization header upstream too (default: taken out)"),
};
static const struct gv_schema schema = GV_SCHEMA("basic_auth", struct basic_conf, fields);

/* ---- consumers' users -------------------------------------------------------- */

struct basic_user {
    char *username;
    char *password;
    char *password_hash;
    struct gw_password pw; /* parsed password_hash */
};

static bool no_colon(const char *s)
{
    return strchr(s, ':') == NULL;
}

static const struct gv_str_rule user_rule = {NULL, "must not contain \":\"", no_colon};

static int user_check(void *obj, const char *path, struct gv_schema_error *err, void *ctx)
{
    struct basic_user *u = obj;
    (void)ctx;
    if ((u->password == NULL) == (u->password_hash == NULL))
        return gv_schema_fail(err, path, "needs \"password\" or \"password_hash\" (one of them)");
    if (u->password_hash != NULL && gw_password_parse(u->password_hash, &u->pw) != 0)
        return gv_schema_fail_key(err, path, "password_hash",
                                  "not a pbkdf2-sha256$ITERATIONS$SALT$HASH password hash");
    return 0;
}

static const struct gv_field user_fields[] = {
    GV_FIELD_STR("username", struct basic_user, username, .flags = GV_F_REQUIRED | GV_F_NONEMPTY,
                 .rule = &user_rule, .max = 256, .doc = "the user name"),
    GV_FIELD_STR("password", struct basic_user, password, .flags = GV_F_SECRET,
                 .doc = "a password; stored only as its hash"),
    GV_FIELD_STR("password_hash", struct basic_user, password_hash, .max = GW_PASSWORD_MAX,
                 .doc = "pbkdf2-sha256$ITERATIONS$SALT$HASH"),
};
static const struct gv_schema user_schema =
    GV_SCHEMA("basic_auth user", struct basic_user, user_fields, .check = user_check);

struct basic_creds {
    struct basic_user *v;
    size_t n;
};

static const struct gv_field cred_fields[] = {
    GV_FIELD_OBJS("basic_auth", struct basic_creds, v, n, &user_schema, .flags = GV_F_OMIT_EMPTY,
                  .doc = "the consumer's users (basic_auth plugin)"),
};
static const struct gv_schema cred_schema =
    GV_SCHEMA("basic_auth credentials", struct basic_creds, cred_fields);

/* A plain password becomes its hash, salted from the consumer and user. */
static int normalize(void *holder, const char *consumer, const char *path,
                     struct gv_schema_error *err)
{
    struct basic_creds *c = holder;
    char stored[GW_PASSWORD_MAX + 1], seed[600], p[GV_PATH_LEN];
    for (size_t i = 0; i < c->n; i++) {
        struct basic_user *u = &c->v[i];
        if (u->password == NULL)
            continue;
        snprintf(seed, sizeof(seed), "grapevine basic_auth\n%s\n%s", consumer, u->username);
        snprintf(p, sizeof(p), "%s.basic_auth[%zu].password", path, i);
        if (gw_password_hash(u->password, seed, stored, sizeof(stored)) != 0)
            return gv_schema_fail(err, p, "cannot be hashed");
        OPENSSL_cleanse(u->password, strlen(u->password));
        free(u->password);
        u->password = NULL;
        if ((u->password_hash = strdup(stored)) == NULL)
            return gv_schema_nomem(err);
        gw_password_parse(stored, &u->pw);
    }
    return 0;
}

static int index_build(const struct gw_consumer_set *set, int slot, void **out,
                       struct gv_schema_error *err)
{
    struct gw_cred_index *ix = gw_cred_index_new();
    int rv = ix ? 0 : gv_schema_nomem(err);
    for (size_t i = 0; rv == 0 && i < set->n; i++) {
        const struct basic_creds *c = set->v[i]->creds[slot];
        for (size_t j = 0; c != NULL && rv == 0 && j < c->n; j++)
            if (gw_cred_index_add(ix, c->v[j].username, set->v[i]->name, &c->v[j].pw, (uint32_t)i,
                                  (uint32_t)j) != 0)
                rv = gv_schema_nomem(err);
    }
    if (rv == 0)
        rv = gw_cred_index_seal(ix, "basic_auth", "username", true, err);
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
    .normalize = normalize,
    .index = index_build,
    .index_free = index_free,
};

/* ---- phases --------------------------------------------------------------------- */

static int prepare(void *conf, const struct gw_plugin_env *env, struct gv_schema_error *err)
{
    struct basic_conf *c = conf;
    (void)err;
    c->users = env->index;
    return 0;
}

static enum gw_plugin_verdict deny(const struct basic_conf *c, struct gw_request *r,
                                   const char *why)
{
    char value[192];
    snprintf(value, sizeof(value), "Basic realm=\"%s\", charset=\"UTF-8\"", c->realm);
    struct gw_hdr h = {"WWW-Authenticate", value};
    gw_request_fail_with(r, 401, why, &h, 1);
    return GW_PLUGIN_ANSWERED;
}

/* Checks "Basic BASE64(user:password)"; the user's credential or NULL. */
static const struct gw_cred *check(const struct basic_conf *c, const char *v, size_t len,
                                   const char **why)
{
    const char *b = v + 6;
    size_t bl = len - 6;
    char plain[96];
    while (bl > 0 && b[0] == ' ') {
        b++;
        bl--;
    }
    long n = gv_base64_decode(b, bl, plain, sizeof(plain) - 1, false);
    const char *colon = n > 0 ? memchr(plain, ':', (size_t)n) : NULL;
    *why = "malformed basic credentials";
    if (colon == NULL)
        return NULL;
    size_t ulen = (size_t)(colon - plain);
    const struct gw_cred *cred = gw_cred_index_find(c->users, plain, ulen);
    static const struct gw_password nobody = {.iterations = GW_PASSWORD_ITERATIONS, .salt_len = 16};
    bool ok =
        gw_password_check(cred != NULL ? cred->data : &nobody, colon + 1, (size_t)n - ulen - 1) &&
        cred != NULL;
    OPENSSL_cleanse(plain, sizeof(plain));
    *why = "invalid basic credentials";
    return ok ? cred : NULL;
}

static enum gw_plugin_verdict on_request(const void *conf, struct gw_request *r, void *ctx)
{
    const struct basic_conf *c = conf;
    struct basic_ctx *x = ctx;
    size_t len, idx;
    const char *why;
    const char *v = gw_request_header(r, "authorization", &len);
    if (v == NULL || len < 6 || strncasecmp(v, "Basic ", 6) != 0)
        return deny(c, r, "missing basic credentials");
    uint64_t gen = c->users ? c->users->gen : 0;
    const struct gw_cred *cred = NULL;
    if (gw_cred_cache_get(gen, v, len, 0, 0, &idx) && c->users && idx < c->users->n)
        cred = &c->users->v[idx];
    if (cred == NULL) {
        if ((cred = check(c, v, len, &why)) == NULL)
            return deny(c, r, why);
        gw_cred_cache_put(gen, v, len, INT64_MAX, (size_t)(cred - c->users->v));
    }
    gw_request_set_consumer(r, cred->consumer);
    x->identified = !c->forward;
    return GW_PLUGIN_NEXT;
}

static bool upstream_drop(const void *conf, const struct gw_request *r, const void *ctx,
                          const char *name, size_t len)
{
    const struct basic_ctx *x = ctx;
    (void)conf;
    (void)r;
    return x != NULL && x->identified && gw_name_eq(name, len, "authorization");
}

const struct gw_plugin_ops gw_plugin_basic_auth = {
    .name = "basic_auth",
    .order = 22,
    .doc = "user names and hashed passwords identify consumers; 401 otherwise",
    .schema = &schema,
    .prepare = prepare,
    .credentials = &credentials,
    .ctx_size = sizeof(struct basic_ctx),
    .on_request = on_request,
    .upstream_drop = upstream_drop,
};
