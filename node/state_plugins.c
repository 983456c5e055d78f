/* state_plugins.c - validation of plugin configs and consumers, part of the
 * one cluster-state validator (state.c). Each plugin has a check that may
 * normalize its config (defaults spelled out, durations canonical); the
 * gateway's typed configs are built from the result (node/plugins.c). */
#include "node/state_int.h"

#include "common/err.h"
#include "common/util.h"

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

static int check_cidr_list(const json_t *conf, const char *path, const char *key, size_t *count,
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
        if (!sv_is_cidr(s)) {
            node_path_index(q, sizeof(q), p, i);
            return sv_fail(err, q, "bad CIDR \"%s\"", s);
        }
    }
    *count += json_array_size(list);
    return 0;
}

static int check_ip_restriction(json_t *conf, const char *path, struct node_state_error *err)
{
    static const char *const keys[] = {"allow", "deny", NULL};
    size_t n = 0;
    int rc;
    if ((rc = sv_check_keys(conf, path, keys, err)) != 0 ||
        (rc = check_cidr_list(conf, path, "allow", &n, err)) != 0 ||
        (rc = check_cidr_list(conf, path, "deny", &n, err)) != 0)
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

static const struct plugin_rule plugin_rules[] = {
    {"rate_limit", check_rate_limit},
    {"key_auth", NULL},
    {"jwt", NULL},
    {"basic_auth", NULL},
    {"ip_restriction", check_ip_restriction},
    {"cors", NULL},
    {"request_headers", check_header_edits},
    {"response_headers", check_header_edits},
    {"request_size_limit", check_size_limit},
    {"request_id", NULL},
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
    const char *s;
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
        if (strcmp(alg, "HS256") == 0) {
            if ((rc = sv_get_str(j, q, "secret", true, &s, err)) != 0)
                return rc;
        } else if (strcmp(alg, "RS256") == 0 || strcmp(alg, "ES256") == 0) {
            if ((rc = sv_get_str(j, q, "public_key", true, &s, err)) != 0)
                return rc;
            if (strstr(s, "-----BEGIN ") == NULL)
                return sv_fail_field(err, q, "public_key", "must be a PEM public key");
        } else {
            return sv_fail_field(err, q, "algorithm",
                                 "unknown algorithm \"%s\" (HS256, RS256 or ES256)", alg);
        }
        if (json_object_set_new(j, "algorithm", json_string(alg)) != 0)
            return sv_nomem(err);
    }
    return 0;
}

static int check_consumer(json_t *c, const char *path, size_t index, struct consumer_index *ix,
                          struct node_state_error *err)
{
    static const char *const keys[] = {"name", "key_auth", "jwt", "basic_auth", NULL};
    static const char *const basic_keys[] = {"username", "password", NULL};
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
        const json_t *b = json_array_get(list, i);
        const char *user = NULL, *pass = NULL;
        char up[PATH_LEN];
        node_path_index(q, sizeof(q), p, i);
        if ((rc = sv_want_object(b, q, err)) != 0 ||
            (rc = sv_check_keys(b, q, basic_keys, err)) != 0 ||
            (rc = sv_get_str(b, q, "username", true, &user, err)) != 0 ||
            (rc = sv_get_str(b, q, "password", true, &pass, err)) != 0)
            return rc;
        node_path_key(up, sizeof(up), q, "username");
        if (strchr(user, ':') != NULL)
            return sv_fail(err, up, "must not contain \":\"");
        if ((rc = claim(ix->users, user, name, up, "username", true, err)) != 0)
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
