/* state_plugins.c - validation of plugin configs and consumers, part of the
 * one cluster-state validator (state.c). Each plugin has a check that may
 * normalize its config (defaults spelled out, durations canonical); the
 * gateway's typed configs are built from the result (node/plugins.c). */
#include "node/state_int.h"
#include "gateway/auth.h"

#include "common/err.h"
#include "common/util.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * Plugins: each known plugin with its own check of its config (a deep copy
 * the check may normalize). A plugin without a check takes any object.
 */

struct plugin_rule {
    const char *name;
    int (*check)(json_t *conf, const char *path, struct node_state_error *err);
};

static int check_rate_limit(json_t *conf, const char *path, struct node_state_error *err)
{
    static const char *const keys[] = {"limit", "window", "burst", "key", "scope", NULL};
    static const char *const kinds[] = {"consumer", "ip", "route", "header:", NULL};
    long long limit = 0, burst = 0;
    uint64_t window = 0;
    const char *key = "ip", *scope = "cluster", *hname;
    char buf[32];
    int rc;
    if ((rc = sv_check_keys(conf, path, keys, err)) != 0)
        return rc;
    if (sv_field(conf, "limit") == NULL)
        return sv_fail(err, path, "missing \"limit\"");
    if ((rc = sv_get_ll(conf, path, "limit", 1, 1000000000, &limit, err)) != 0)
        return rc;
    if (sv_field(conf, "window") == NULL)
        return sv_fail(err, path, "missing \"window\"");
    if ((rc = sv_get_duration(conf, path, "window", 1, &window, err)) != 0)
        return rc;
    if ((rc = sv_get_ll(conf, path, "burst", 0, 1000000000, &burst, err)) != 0)
        return rc;
    if ((rc = sv_get_str(conf, path, "key", false, &key, err)) != 0)
        return rc;
    if (sv_parse_keyed(key, kinds, &hname) < 0)
        return sv_fail_field(err, path, "key",
                             "bad key \"%s\" (consumer, ip, route or header:NAME)", key);
    if ((rc = sv_get_str(conf, path, "scope", false, &scope, err)) != 0)
        return rc;
    if (strcmp(scope, "cluster") != 0 && strcmp(scope, "node") != 0)
        return sv_fail_field(err, path, "scope", "bad scope \"%s\" (cluster or node)", scope);
    /* Canonical form: window as a duration string, key and scope spelled out. */
    node_format_duration(window, buf, sizeof(buf));
    if (json_object_set_new(conf, "window", json_string(buf)) != 0 ||
        json_object_set_new(conf, "key", json_string(key)) != 0 ||
        json_object_set_new(conf, "scope", json_string(scope)) != 0)
        return sv_nomem(err);
    return 0;
}

/* A list of strings at conf[key], each of which ok() accepts ("bad WHAT
 * \"...\"" otherwise); *count grows by its length. */
static int check_str_list(const json_t *conf, const char *path, const char *key,
                          bool (*ok)(const char *), const char *what, size_t *count,
                          struct node_state_error *err)
{
    const json_t *list;
    const char *s;
    char p[PATH_LEN], q[PATH_LEN];
    int rc;
    if ((rc = sv_get_list(conf, path, key, &list, err)) != 0 || list == NULL)
        return rc;
    node_path_key(p, sizeof(p), path, key);
    for (size_t i = 0; i < json_array_size(list); i++) {
        if ((rc = sv_list_str(list, p, i, &s, err)) != 0)
            return rc;
        if (!ok(s)) {
            node_path_index(q, sizeof(q), p, i);
            return sv_fail(err, q, "bad %s \"%s\"", what, s);
        }
    }
    *count += json_array_size(list);
    return 0;
}

static int check_cidr_list(const json_t *conf, const char *path, const char *key, size_t *count,
                           struct node_state_error *err)
{
    return check_str_list(conf, path, key, sv_is_cidr, "CIDR", count, err);
}

static int check_ip_restriction(json_t *conf, const char *path, struct node_state_error *err)
{
    static const char *const keys[] = {"allow", "deny", "trusted_proxies", NULL};
    size_t n = 0, t = 0;
    int rc;
    if ((rc = sv_check_keys(conf, path, keys, err)) != 0 ||
        (rc = check_cidr_list(conf, path, "allow", &n, err)) != 0 ||
        (rc = check_cidr_list(conf, path, "deny", &n, err)) != 0 ||
        (rc = check_cidr_list(conf, path, "trusted_proxies", &t, err)) != 0)
        return rc;
    return n > 0 ? 0 : sv_fail(err, path, "needs an \"allow\" or \"deny\" list of CIDRs");
}

/* {Name: value} headers; integer values (X-Version: 2 in YAML) become strings. */
static int check_header_map(json_t *obj, const char *path, struct node_state_error *err)
{
    char p[PATH_LEN];
    if (!json_is_object(obj))
        return sv_fail(err, path, "must be an object of header: value");
    for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it)) {
        const char *name = json_object_iter_key(it);
        json_t *v = json_object_iter_value(it);
        node_path_key(p, sizeof(p), path, name);
        if (!sv_is_token(name))
            return sv_fail(err, p, "bad header name \"%s\"", name);
        if (json_is_integer(v)) {
            char buf[32];
            snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            if (json_object_iter_set_new(obj, it, json_string(buf)) != 0)
                return sv_nomem(err);
        } else if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
            return sv_fail(err, p, "must be a string");
        }
    }
    return 0;
}

static int check_header_edits(json_t *conf, const char *path, struct node_state_error *err)
{
    static const char *const keys[] = {"add", "set", "remove", NULL};
    static const char *const maps[] = {"add", "set"};
    const json_t *list;
    const char *s;
    char p[PATH_LEN], q[PATH_LEN];
    int rc;
    if ((rc = sv_check_keys(conf, path, keys, err)) != 0)
        return rc;
    for (size_t i = 0; i < GV_ARRAY_LEN(maps); i++) {
        json_t *m = json_object_get(conf, maps[i]);
        if (json_is_null(m) || m == NULL)
            continue;
        node_path_key(p, sizeof(p), path, maps[i]);
        if ((rc = check_header_map(m, p, err)) != 0)
            return rc;
    }
    if ((rc = sv_get_list(conf, path, "remove", &list, err)) != 0 || list == NULL)
        return rc;
    node_path_key(p, sizeof(p), path, "remove");
    for (size_t i = 0; i < json_array_size(list); i++) {
        if ((rc = sv_list_str(list, p, i, &s, err)) != 0)
            return rc;
        if (!sv_is_token(s)) {
            node_path_index(q, sizeof(q), p, i);
            return sv_fail(err, q, "bad header name \"%s\"", s);
        }
    }
    return 0;
}

static int check_size_limit(json_t *conf, const char *path, struct node_state_error *err)
{
    static const char *const keys[] = {"max_bytes", NULL};
    long long max = 0;
    int rc;
    if ((rc = sv_check_keys(conf, path, keys, err)) != 0)
        return rc;
    if (sv_field(conf, "max_bytes") == NULL)
        return sv_fail(err, path, "missing \"max_bytes\"");
    return sv_get_ll(conf, path, "max_bytes", 1, LLONG_MAX, &max, err);
}

/* A list of HTTP tokens (header names, methods) at conf[key], kept as given. */
static int check_token_list(const json_t *conf, const char *path, const char *key,
                            struct node_state_error *err)
{
    size_t n = 0;
    return check_str_list(conf, path, key, sv_is_token, "token", &n, err);
}

/* An origin is "*" or scheme://host[:port] with nothing after it: browsers
 * send exactly that in Origin, and the gateway compares it as a string. */
static bool is_origin(const char *s)
{
    const char *host;
    if (strncmp(s, "http://", 7) == 0)
        host = s + 7;
    else if (strncmp(s, "https://", 8) == 0)
        host = s + 8;
    else
        return false;
    if (*host == '\0')
        return false;
    for (const char *c = host; *c; c++)
        if (!(isalnum((unsigned char)*c) || strchr("-.:[]", *c) != NULL))
            return false;
    return true;
}

static int check_cors(json_t *conf, const char *path, struct node_state_error *err)
{
    static const char *const keys[] = {"origins",     "methods", "headers", "expose_headers",
                                       "credentials", "max_age", NULL};
    const json_t *list;
    const char *s;
    char p[PATH_LEN], q[PATH_LEN];
    bool credentials = false;
    uint64_t max_age = 0;
    int rc;
    if ((rc = sv_check_keys(conf, path, keys, err)) != 0 ||
        (rc = sv_get_list(conf, path, "origins", &list, err)) != 0)
        return rc;
    node_path_key(p, sizeof(p), path, "origins");
    for (size_t i = 0; list != NULL && i < json_array_size(list); i++) {
        if ((rc = sv_list_str(list, p, i, &s, err)) != 0)
            return rc;
        if (strcmp(s, "*") != 0 && !is_origin(s)) {
            node_path_index(q, sizeof(q), p, i);
            return sv_fail(err, q, "bad origin \"%s\" (* or scheme://host[:port])", s);
        }
    }
    if ((rc = check_token_list(conf, path, "methods", err)) != 0 ||
        (rc = check_token_list(conf, path, "headers", err)) != 0 ||
        (rc = check_token_list(conf, path, "expose_headers", err)) != 0 ||
        (rc = sv_get_bool(conf, path, "credentials", &credentials, err)) != 0 ||
        (rc = sv_get_duration(conf, path, "max_age", 0, &max_age, err)) != 0)
        return rc;
    if (sv_field(conf, "max_age") != NULL) {
        char buf[32];
        node_format_duration(max_age, buf, sizeof(buf));
        if (json_object_set_new(conf, "max_age", json_string(buf)) != 0)
            return sv_nomem(err);
    }
    return 0;
}

static int check_request_id(json_t *conf, const char *path, struct node_state_error *err)
{
    static const char *const keys[] = {"header", "pass_through", "echo", NULL};
    const char *header = "X-Request-Id";
    bool b = true;
    int rc;
    if ((rc = sv_check_keys(conf, path, keys, err)) != 0 ||
        (rc = sv_get_str(conf, path, "header", false, &header, err)) != 0 ||
        (rc = sv_get_bool(conf, path, "pass_through", &b, err)) != 0 ||
        (rc = sv_get_bool(conf, path, "echo", &b, err)) != 0)
        return rc;
    if (!sv_is_token(header) || strlen(header) >= 128)
        return sv_fail_field(err, path, "header", "bad header name \"%s\"", header);
    return 0;
}

/* Where key_auth and jwt read the credential: a header name and an optional
 * query parameter name (both fit the gateway's 128-byte fields). */
static int check_credential_source(const char *path, const char *header, const char *query,
                                   struct node_state_error *err)
{
    if (!sv_is_token(header) || strlen(header) >= 128)
        return sv_fail_field(err, path, "header", "bad header name \"%s\"", header);
    if (query != NULL && (strlen(query) >= 128 || strpbrk(query, "&=#?% ") != NULL))
        return sv_fail_field(err, path, "query", "bad query parameter name \"%s\"", query);
    return 0;
}

/* The auth plugins share `forward_credentials` (default false: the gateway
 * strips the credential before the request goes upstream). */
static int check_key_auth(json_t *conf, const char *path, struct node_state_error *err)
{
    static const char *const keys[] = {"header", "query", "forward_credentials", NULL};
    const char *header = "X-Api-Key", *query = NULL;
    bool b;
    int rc;
    if ((rc = sv_check_keys(conf, path, keys, err)) != 0 ||
        (rc = sv_get_str(conf, path, "header", false, &header, err)) != 0 ||
        (rc = sv_get_str(conf, path, "query", false, &query, err)) != 0 ||
        (rc = sv_get_bool(conf, path, "forward_credentials", &b, err)) != 0)
        return rc;
    if ((rc = check_credential_source(path, header, query, err)) != 0)
        return rc;
    return 0;
}

static int check_jwt_plugin(json_t *conf, const char *path, struct node_state_error *err)
{
    static const char *const keys[] = {"header", "query", "clock_skew", "forward_credentials",
                                       NULL};
    const char *header = "Authorization", *query = NULL;
    uint64_t skew = 0;
    bool b;
    int rc;
    if ((rc = sv_check_keys(conf, path, keys, err)) != 0 ||
        (rc = sv_get_str(conf, path, "header", false, &header, err)) != 0 ||
        (rc = sv_get_str(conf, path, "query", false, &query, err)) != 0 ||
        (rc = sv_get_duration(conf, path, "clock_skew", 0, &skew, err)) != 0 ||
        (rc = sv_get_bool(conf, path, "forward_credentials", &b, err)) != 0)
        return rc;
    if ((rc = check_credential_source(path, header, query, err)) != 0)
        return rc;
    if (skew > 300000)
        return sv_fail_field(err, path, "clock_skew", "at most 5m");
    return 0;
}

static int check_basic_auth(json_t *conf, const char *path, struct node_state_error *err)
{
    static const char *const keys[] = {"realm", "forward_credentials", NULL};
    const char *realm = NULL;
    bool b;
    int rc;
    if ((rc = sv_check_keys(conf, path, keys, err)) != 0 ||
        (rc = sv_get_str(conf, path, "realm", false, &realm, err)) != 0 ||
        (rc = sv_get_bool(conf, path, "forward_credentials", &b, err)) != 0)
        return rc;
    if (realm != NULL && (strlen(realm) >= 128 || strpbrk(realm, "\"\\\r\n") != NULL))
        return sv_fail_field(err, path, "realm",
                             "must not contain quotes, backslashes or newlines");
    return 0;
}

static const struct plugin_rule plugin_rules[] = {
    {"rate_limit", check_rate_limit},
    {"key_auth", check_key_auth},
    {"jwt", check_jwt_plugin},
    {"basic_auth", check_basic_auth},
    {"ip_restriction", check_ip_restriction},
    {"cors", check_cors},
    {"request_headers", check_header_edits},
    {"response_headers", check_header_edits},
    {"request_size_limit", check_size_limit},
    {"request_id", check_request_id},
};

/* Validates a plugin list [{NAME: {...}}, ...] into a new normalized copy in
 * *out (a plugin written with no config, "- cors:", gets {}). */
int sv_check_plugins(const json_t *list, const char *path, json_t **out,
                     struct node_state_error *err)
{
    char p[PATH_LEN], q[PATH_LEN];
    json_t *copy = NULL, *conf = NULL;
    int rc;
    if (!json_is_array(list))
        return sv_fail(err, path, "must be a list of plugins, each {NAME: {...}}");
    if ((copy = json_array()) == NULL)
        return sv_nomem(err);
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *item = json_array_get(list, i);
        node_path_index(p, sizeof(p), path, i);
        if (!json_is_object(item) || json_object_size(item) != 1) {
            rc = sv_fail(err, p, "a plugin is an object with one key, its name");
            goto fail;
        }
        const char *name = json_object_iter_key(json_object_iter((json_t *)item));
        const json_t *v = json_object_iter_value(json_object_iter((json_t *)item));
        const struct plugin_rule *rule = NULL;
        for (size_t j = 0; j < GV_ARRAY_LEN(plugin_rules); j++)
            if (strcmp(plugin_rules[j].name, name) == 0)
                rule = &plugin_rules[j];
        if (rule == NULL) {
            rc = sv_fail_at_key(err, p, name, "unknown plugin \"%s\"", name);
            goto fail;
        }
        node_path_key(q, sizeof(q), p, name);
        if (!json_is_null(v) && !json_is_object(v)) {
            rc = sv_fail(err, q, "must be an object");
            goto fail;
        }
        conf = json_is_null(v) ? json_object() : json_deep_copy(v);
        if (conf == NULL) {
            rc = sv_nomem(err);
            goto fail;
        }
        if (rule->check != NULL && (rc = rule->check(conf, q, err)) != 0)
            goto fail;
        json_t *wrap = json_object();
        if (wrap == NULL) {
            rc = sv_nomem(err);
            goto fail;
        }
        rc = json_object_set_new(wrap, name, conf); /* takes conf, even on failure */
        conf = NULL;
        if (rc != 0 || json_array_append_new(copy, wrap) != 0) {
            if (rc != 0)
                json_decref(wrap);
            rc = sv_nomem(err);
            goto fail;
        }
    }
    *out = copy;
    return 0;
fail:
    json_decref(conf);
    json_decref(copy);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Consumers: kept as JSON, but checked, since the auth plugins look them up by
 * credential and an ambiguous credential would let one consumer act as another.
 */

struct consumer_index {
    json_t *names;  /* name -> index in consumers */
    json_t *keys;   /* key_auth key -> consumer name */
    json_t *issuer; /* jwt issuer -> consumer name */
    json_t *users;  /* basic_auth username -> consumer name */
};

/* Records value in set (owned by consumer); fails when another consumer has it. */
static int claim(json_t *set, const char *value, const char *consumer, const char *path,
                 const char *what, bool show, struct node_state_error *err)
{
    const json_t *owner = json_object_get(set, value);
    if (owner != NULL && strcmp(json_string_value(owner), consumer) == 0)
        return 0; /* listed twice by the same consumer: harmless */
    if (owner != NULL) {
        if (show)
            return sv_fail(err, path, "%s \"%s\" also belongs to consumer \"%s\"", what, value,
                           json_string_value(owner));
        /* Secrets are not echoed back in messages. */
        return sv_fail(err, path, "%s also belongs to consumer \"%s\"", what,
                       json_string_value(owner));
    }
    return json_object_set_new(set, value, json_string(consumer)) == 0 ? 0 : sv_nomem(err);
}

static int check_jwt(json_t *c, const char *path, const char *consumer, struct consumer_index *ix,
                     struct node_state_error *err)
{
    static const char *const keys[] = {"issuer", "algorithm", "secret", "public_key", NULL};
    json_t *list = json_object_get(c, "jwt");
    char p[PATH_LEN], q[PATH_LEN];
    int rc;
    if (json_is_null(list) || list == NULL)
        return 0;
    node_path_key(p, sizeof(p), path, "jwt");
    if (!json_is_array(list))
        return sv_fail(err, p, "must be a list");
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *j = json_array_get(list, i);
        const char *alg = "HS256", *iss = NULL;
        node_path_index(q, sizeof(q), p, i);
        if ((rc = sv_want_object(j, q, err)) != 0 || (rc = sv_check_keys(j, q, keys, err)) != 0 ||
            (rc = sv_get_str(j, q, "issuer", true, &iss, err)) != 0 ||
            (rc = sv_get_str(j, q, "algorithm", false, &alg, err)) != 0)
            return rc;
        char ip[PATH_LEN];
        node_path_key(ip, sizeof(ip), q, "issuer");
        if ((rc = claim(ix->issuer, iss, consumer, ip, "issuer", true, err)) != 0)
            return rc;
        enum gw_jwt_alg a;
        const char *material = NULL, *why = NULL, *want;
        if (gw_jwt_alg_parse(alg, &a) != 0)
            return sv_fail_field(err, q, "algorithm",
                                 "unknown algorithm \"%s\" (HS256/384/512, RS256/384/512, "
                                 "ES256/384)",
                                 alg);
        want = a <= GW_JWT_HS512 ? "secret" : "public_key";
        if (sv_field(j, a <= GW_JWT_HS512 ? "public_key" : "secret") != NULL)
            return sv_fail_at_key(err, q, want, "%s takes \"%s\" only", alg, want);
        if ((rc = sv_get_str(j, q, want, true, &material, err)) != 0)
            return rc;
        /* The key is compiled here, so a state naming a key the gateway
         * cannot use is refused instead of silently locking users out. */
        struct gw_jwt_key key;
        rc = gw_jwt_key_init(&key, iss, a, material, 0, &why);
        if (rc == GV_ENOMEM)
            return sv_nomem(err);
        if (rc != 0)
            return sv_fail_field(err, q, want, "%s", why ? why : "unusable key");
        gw_jwt_key_clear(&key);
        if (json_object_set_new(j, "algorithm", json_string(alg)) != 0)
            return sv_nomem(err);
    }
    return 0;
}

/* basic_auth keeps no password in stored config: a plain "password" is
 * replaced by its hash ("password_hash", gateway/auth.h), salted from the
 * consumer and user names so every node seeding the same file stores the
 * same object; a given "password_hash" must parse. */
static int check_password(json_t *b, const char *path, const char *consumer, const char *user,
                          struct node_state_error *err)
{
    const char *pass = NULL, *hash = NULL;
    struct gw_password pw;
    char stored[GW_PASSWORD_MAX + 1], seed[2 * NAME_MAX_LEN + 64];
    int rc;
    if ((rc = sv_get_str(b, path, "password", false, &pass, err)) != 0 ||
        (rc = sv_get_str(b, path, "password_hash", false, &hash, err)) != 0)
        return rc;
    if ((pass == NULL) == (hash == NULL))
        return sv_fail(err, path, "needs \"password\" or \"password_hash\" (one of them)");
    if (hash != NULL)
        return gw_password_parse(hash, &pw) == 0
                   ? 0
                   : sv_fail_field(err, path, "password_hash",
                                   "not a pbkdf2-sha256$ITERATIONS$SALT$HASH password hash");
    snprintf(seed, sizeof(seed), "grapevine basic_auth\n%s\n%s", consumer, user);
    if (gw_password_hash(pass, seed, stored, sizeof(stored)) != 0)
        return sv_fail_field(err, path, "password", "cannot be hashed");
    if (json_object_set_new(b, "password_hash", json_string(stored)) != 0)
        return sv_nomem(err);
    json_object_del(b, "password");
    return 0;
}

static int check_consumer(json_t *c, const char *path, size_t index, struct consumer_index *ix,
                          struct node_state_error *err)
{
    static const char *const keys[] = {"name", "key_auth", "jwt", "basic_auth", NULL};
    static const char *const basic_keys[] = {"username", "password", "password_hash", NULL};
    const char *name = NULL, *s;
    const json_t *list, *prev;
    char p[PATH_LEN], q[PATH_LEN];
    int rc;
    if ((rc = sv_want_object(c, path, err)) != 0 || (rc = sv_check_keys(c, path, keys, err)) != 0 ||
        (rc = sv_get_str(c, path, "name", true, &name, err)) != 0)
        return rc;
    node_path_key(p, sizeof(p), path, "name");
    if ((rc = sv_check_name(name, p, err)) != 0)
        return rc;
    if ((prev = json_object_get(ix->names, name)) != NULL)
        return sv_fail(err, p, "duplicate name \"%s\" (also consumers[%" JSON_INTEGER_FORMAT "])",
                       name, json_integer_value(prev));
    if (json_object_set_new(ix->names, name, json_integer((json_int_t)index)) != 0)
        return sv_nomem(err);

    if ((rc = sv_get_list(c, path, "key_auth", &list, err)) != 0)
        return rc;
    node_path_key(p, sizeof(p), path, "key_auth");
    for (size_t i = 0; list != NULL && i < json_array_size(list); i++) {
        node_path_index(q, sizeof(q), p, i);
        if ((rc = sv_list_str(list, p, i, &s, err)) != 0 ||
            (rc = claim(ix->keys, s, name, q, "key", false, err)) != 0)
            return rc;
    }

    if ((rc = check_jwt(c, path, name, ix, err)) != 0)
        return rc;

    if ((rc = sv_get_list(c, path, "basic_auth", &list, err)) != 0)
        return rc;
    node_path_key(p, sizeof(p), path, "basic_auth");
    for (size_t i = 0; list != NULL && i < json_array_size(list); i++) {
        json_t *b = json_array_get(list, i);
        const char *user = NULL;
        char up[PATH_LEN];
        node_path_index(q, sizeof(q), p, i);
        if ((rc = sv_want_object(b, q, err)) != 0 ||
            (rc = sv_check_keys(b, q, basic_keys, err)) != 0 ||
            (rc = sv_get_str(b, q, "username", true, &user, err)) != 0)
            return rc;
        node_path_key(up, sizeof(up), q, "username");
        if (strchr(user, ':') != NULL)
            return sv_fail(err, up, "must not contain \":\"");
        if ((rc = claim(ix->users, user, name, up, "username", true, err)) != 0)
            return rc;
        if ((rc = check_password(b, q, name, user, err)) != 0)
            return rc;
    }
    return 0;
}

/* Validates consumers into a normalized copy (jwt algorithm filled in). */
int sv_check_consumers(const json_t *list, json_t **out, struct node_state_error *err)
{
    struct consumer_index ix = {json_object(), json_object(), json_object(), json_object()};
    json_t *copy = list ? json_deep_copy(list) : json_array();
    char p[PATH_LEN];
    int rc = 0;
    if (ix.names == NULL || ix.keys == NULL || ix.issuer == NULL || ix.users == NULL ||
        copy == NULL) {
        rc = sv_nomem(err);
        goto fail;
    }
    if (!json_is_array(copy)) {
        rc = sv_fail(err, "consumers", "must be a list");
        goto fail;
    }
    for (size_t i = 0; i < json_array_size(copy); i++) {
        node_path_index(p, sizeof(p), "consumers", i);
        if ((rc = check_consumer(json_array_get(copy, i), p, i, &ix, err)) != 0)
            goto fail;
    }
    *out = copy;
    copy = NULL;
fail:
    json_decref(copy);
    json_decref(ix.names);
    json_decref(ix.keys);
    json_decref(ix.issuer);
    json_decref(ix.users);
    return rc;
}
