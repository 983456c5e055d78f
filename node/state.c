/* state.c - the one validator of cluster state (services, routes, consumers,
 * global plugins): JSON in, typed specs out, and canonical JSON back out. */
#include "node/state.h"

#include "common/err.h"
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

/* Long enough for the deepest path the validator builds; a longer one (a huge
 * key in a plugin config) is cut short, which only shortens the message. */
#define PATH_LEN     192
#define NAME_MAX_LEN 128
/* Upper bound of every duration: a year, far from any overflow of ms math. */
#define DURATION_MAX_MS (365ULL * 24 * 3600 * 1000)

/* ---------------------------------------------------------------------------
 * Errors and paths
 */

void node_path_append(char *dst, size_t n, const char *s)
{
    size_t used = strlen(dst), len = strlen(s);
    if (used + 1 >= n)
        return;
    if (len > n - used - 1)
        len = n - used - 1;
    memcpy(dst + used, s, len);
    dst[used + len] = '\0';
}

__attribute__((format(printf, 4, 0))) static int
verr(struct node_state_error *err, const char *path, const char *where, const char *fmt, va_list ap)
{
    err->path[0] = err->where[0] = '\0';
    node_path_append(err->path, sizeof(err->path), path);
    node_path_append(err->where, sizeof(err->where), where);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    return GV_EINVAL;
}

/* Fills err for the value at path; returns GV_EINVAL. */
__attribute__((format(printf, 3, 4))) static int fail(struct node_state_error *err,
                                                      const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = verr(err, path, path, fmt, ap);
    va_end(ap);
    return rc;
}

void node_path_key(char *dst, size_t n, const char *base, const char *key)
{
    dst[0] = '\0';
    node_path_append(dst, n, base);
    if (base[0] != '\0')
        node_path_append(dst, n, ".");
    node_path_append(dst, n, key);
}

void node_path_index(char *dst, size_t n, const char *base, size_t i)
{
    char idx[32];
    snprintf(idx, sizeof(idx), "[%zu]", i);
    dst[0] = '\0';
    node_path_append(dst, n, base);
    node_path_append(dst, n, idx);
}

/* Like fail() for the object at path, pointing the reader at its key. */
__attribute__((format(printf, 4, 5))) static int
fail_at_key(struct node_state_error *err, const char *path, const char *key, const char *fmt, ...)
{
    char where[PATH_LEN];
    node_path_key(where, sizeof(where), path, key);
    va_list ap;
    va_start(ap, fmt);
    int rc = verr(err, path, where, fmt, ap);
    va_end(ap);
    return rc;
}

/* Fills err for the value of obj[key] (obj at path); returns GV_EINVAL. */
__attribute__((format(printf, 4, 5))) static int
fail_field(struct node_state_error *err, const char *path, const char *key, const char *fmt, ...)
{
    char p[PATH_LEN];
    node_path_key(p, sizeof(p), path, key);
    va_list ap;
    va_start(ap, fmt);
    int rc = verr(err, p, p, fmt, ap);
    va_end(ap);
    return rc;
}

static int nomem(struct node_state_error *err)
{
    fail(err, "", "out of memory");
    return GV_ENOMEM;
}

/* ---------------------------------------------------------------------------
 * Typed access to JSON objects. A key holding null counts as absent, so YAML's
 * "key:" with nothing after it means "the default".
 */

static const json_t *field(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

/* Rejects any key of obj that is not in keys (NULL-terminated). */
static int check_keys(const json_t *obj, const char *path, const char *const *keys,
                      struct node_state_error *err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        size_t i = 0;
        while (keys[i] != NULL && strcmp(keys[i], k) != 0)
            i++;
        if (keys[i] == NULL)
            return fail_at_key(err, path, k, "unknown key \"%s\"", k);
    }
    return 0;
}

static int want_object(const json_t *v, const char *path, struct node_state_error *err)
{
    return json_is_object(v) ? 0 : fail(err, path, "must be an object");
}

/* *out = obj[key] as a non-empty string; untouched when absent and optional. */
static int get_str(const json_t *obj, const char *path, const char *key, bool required,
                   const char **out, struct node_state_error *err)
{
    const json_t *v = field(obj, key);
    if (v == NULL)
        return required ? fail(err, path, "missing \"%s\"", key) : 0;
    if (!json_is_string(v))
        return fail_field(err, path, key, "must be a string");
    if (json_string_length(v) == 0)
        return fail_field(err, path, key, "must not be empty");
    if (strlen(json_string_value(v)) != json_string_length(v))
        return fail_field(err, path, key, "must not contain NUL bytes");
    *out = json_string_value(v);
    return 0;
}

static int get_ll(const json_t *obj, const char *path, const char *key, long long min,
                  long long max, long long *out, struct node_state_error *err)
{
    const json_t *v = field(obj, key);
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        if (max == LLONG_MAX)
            return fail_field(err, path, key, "must be an integer of at least %lld", min);
        return fail_field(err, path, key, "must be an integer from %lld to %lld", min, max);
    }
    *out = json_integer_value(v);
    return 0;
}

static int get_int(const json_t *obj, const char *path, const char *key, int min, int max, int *out,
                   struct node_state_error *err)
{
    long long v = *out;
    int rc = get_ll(obj, path, key, min, max, &v, err);
    if (rc == 0)
        *out = (int)v;
    return rc;
}

static int get_bool(const json_t *obj, const char *path, const char *key, bool *out,
                    struct node_state_error *err)
{
    const json_t *v = field(obj, key);
    if (v == NULL)
        return 0;
    if (!json_is_boolean(v))
        return fail_field(err, path, key, "must be true or false");
    *out = json_is_true(v);
    return 0;
}

int node_json_duration(const json_t *v, uint64_t *ms)
{
    if (json_is_integer(v)) {
        json_int_t s = json_integer_value(v);
        if (s < 0 || (uint64_t)s > UINT64_MAX / 1000)
            return GV_EINVAL;
        *ms = (uint64_t)s * 1000;
        return 0;
    }
    if (json_is_string(v))
        return gv_parse_duration(json_string_value(v), ms);
    return GV_EINVAL;
}

void node_format_duration(uint64_t ms, char *buf, size_t len)
{
    static const struct {
        uint64_t ms;
        const char *unit;
    } units[] = {{3600000, "h"}, {60000, "m"}, {1000, "s"}};
    if (ms == 0) {
        snprintf(buf, len, "0s");
        return;
    }
    for (size_t i = 0; i < GV_ARRAY_LEN(units); i++) {
        if (ms % units[i].ms == 0) {
            snprintf(buf, len, "%" PRIu64 "%s", ms / units[i].ms, units[i].unit);
            return;
        }
    }
    snprintf(buf, len, "%" PRIu64 "ms", ms);
}

static int get_duration(const json_t *obj, const char *path, const char *key, uint64_t min_ms,
                        uint64_t *out, struct node_state_error *err)
{
    const json_t *v = field(obj, key);
    uint64_t ms;
    char lim[32];
    if (v == NULL)
        return 0;
    if (node_json_duration(v, &ms) != 0) {
        if (json_is_string(v))
            return fail_field(err, path, key, "bad duration \"%s\" (use e.g. 250ms, 2s, 1m)",
                              json_string_value(v));
        return fail_field(err, path, key, "must be a duration like \"250ms\", \"2s\" or \"1m\"");
    }
    if (ms < min_ms) {
        node_format_duration(min_ms, lim, sizeof(lim));
        return fail_field(err, path, key, "must be at least %s", lim);
    }
    if (ms > DURATION_MAX_MS) {
        node_format_duration(DURATION_MAX_MS, lim, sizeof(lim));
        return fail_field(err, path, key, "must be at most %s", lim);
    }
    *out = ms;
    return 0;
}

/* obj[key] as an array (NULL when absent). */
static int get_list(const json_t *obj, const char *path, const char *key, const json_t **out,
                    struct node_state_error *err)
{
    const json_t *v = field(obj, key);
    *out = NULL;
    if (v == NULL)
        return 0;
    if (!json_is_array(v))
        return fail_field(err, path, key, "must be a list");
    *out = v;
    return 0;
}

/* Element i of list (at path) as a non-empty string. */
static int list_str(const json_t *list, const char *path, size_t i, const char **out,
                    struct node_state_error *err)
{
    const json_t *v = json_array_get(list, i);
    char p[PATH_LEN];
    node_path_index(p, sizeof(p), path, i);
    if (!json_is_string(v))
        return fail(err, p, "must be a string");
    if (json_string_length(v) == 0 || strlen(json_string_value(v)) != json_string_length(v))
        return fail(err, p, "must be a non-empty string");
    *out = json_string_value(v);
    return 0;
}

static int set_str(char **dst, const char *src)
{
    char *s = strdup(src);
    if (s == NULL)
        return GV_ENOMEM;
    free(*dst);
    *dst = s;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Lexical checks
 */

/* Names of services, routes and consumers end up in URLs (/config/KIND/NAME)
 * and metric labels, so they keep to a safe alphabet. */
static int check_name(const char *s, const char *path, struct node_state_error *err)
{
    size_t n = strlen(s);
    if (n > NAME_MAX_LEN)
        return fail(err, path, "name longer than %d characters", NAME_MAX_LEN);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '_' && c != '.' && c != '-')
            return fail(err, path, "bad name \"%s\" (use letters, digits, \"_\", \".\", \"-\")", s);
    }
    return 0;
}

/* An HTTP token (RFC 9110): header and cookie names. */
static bool is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!isalnum(c) && strchr("!#$%&'*+-.^_`|~", c) == NULL)
            return false;
    }
    return true;
}

/* A host to match: "api.example.com" or "*.example.com", no port. */
static bool is_host(const char *s)
{
    if (strncmp(s, "*.", 2) == 0)
        s += 2;
    if (*s == '\0' || *s == '.')
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!isalnum(c) && c != '-' && c != '.' && c != '_')
            return false;
    }
    return true;
}

/* "10.0.0.0/8", "2001:db8::/32", or a bare address (one host). */
static bool is_cidr(const char *s)
{
    char addr[INET6_ADDRSTRLEN + 1];
    unsigned char bin[sizeof(struct in6_addr)];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof(addr))
        return false;
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    int max;
    if (inet_pton(AF_INET, addr, bin) == 1)
        max = 32;
    else if (inet_pton(AF_INET6, addr, bin) == 1)
        max = 128;
    else
        return false;
    if (slash == NULL)
        return true;
    const char *p = slash + 1;
    if (*p == '\0' || strlen(p) > 3)
        return false;
    int bits = 0;
    for (; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return false;
        bits = bits * 10 + (*p - '0');
    }
    return bits <= max;
}

/* "ip", "path", "header:NAME" or "cookie:NAME" (hash_on), and likewise the
 * rate_limit key. Returns the kind's index in kinds, or -1; *name points at
 * NAME for the last two. */
static int parse_keyed(const char *s, const char *const *kinds, const char **name)
{
    for (int i = 0; kinds[i] != NULL; i++) {
        size_t n = strlen(kinds[i]);
        if (kinds[i][n - 1] == ':') {
            if (strncmp(s, kinds[i], n) == 0 && is_token(s + n)) {
                *name = s + n;
                return i;
            }
        } else if (strcmp(s, kinds[i]) == 0) {
            *name = NULL;
            return i;
        }
    }
    return -1;
}

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
    if ((rc = check_keys(conf, path, keys, err)) != 0)
        return rc;
    if (field(conf, "limit") == NULL)
        return fail(err, path, "missing \"limit\"");
    if ((rc = get_ll(conf, path, "limit", 1, 1000000000, &limit, err)) != 0)
        return rc;
    if (field(conf, "window") == NULL)
        return fail(err, path, "missing \"window\"");
    if ((rc = get_duration(conf, path, "window", 1, &window, err)) != 0)
        return rc;
    if ((rc = get_ll(conf, path, "burst", 0, 1000000000, &burst, err)) != 0)
        return rc;
    if ((rc = get_str(conf, path, "key", false, &key, err)) != 0)
        return rc;
    if (parse_keyed(key, kinds, &hname) < 0)
        return fail_field(err, path, "key", "bad key \"%s\" (consumer, ip, route or header:NAME)",
                          key);
    if ((rc = get_str(conf, path, "scope", false, &scope, err)) != 0)
        return rc;
    if (strcmp(scope, "cluster") != 0 && strcmp(scope, "node") != 0)
        return fail_field(err, path, "scope", "bad scope \"%s\" (cluster or node)", scope);
    /* Canonical form: window as a duration string, key and scope spelled out. */
    node_format_duration(window, buf, sizeof(buf));
    if (json_object_set_new(conf, "window", json_string(buf)) != 0 ||
        json_object_set_new(conf, "key", json_string(key)) != 0 ||
        json_object_set_new(conf, "scope", json_string(scope)) != 0)
        return nomem(err);
    return 0;
}

static int check_cidr_list(const json_t *conf, const char *path, const char *key, size_t *count,
                           struct node_state_error *err)
{
    const json_t *list;
    const char *s;
    char p[PATH_LEN], q[PATH_LEN];
    int rc;
    if ((rc = get_list(conf, path, key, &list, err)) != 0 || list == NULL)
        return rc;
    node_path_key(p, sizeof(p), path, key);
    for (size_t i = 0; i < json_array_size(list); i++) {
        if ((rc = list_str(list, p, i, &s, err)) != 0)
            return rc;
        if (!is_cidr(s)) {
            node_path_index(q, sizeof(q), p, i);
            return fail(err, q, "bad CIDR \"%s\"", s);
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
    if ((rc = check_keys(conf, path, keys, err)) != 0 ||
        (rc = check_cidr_list(conf, path, "allow", &n, err)) != 0 ||
        (rc = check_cidr_list(conf, path, "deny", &n, err)) != 0)
        return rc;
    return n > 0 ? 0 : fail(err, path, "needs an \"allow\" or \"deny\" list of CIDRs");
}

/* {Name: value} headers; integer values (X-Version: 2 in YAML) become strings. */
static int check_header_map(json_t *obj, const char *path, struct node_state_error *err)
{
    char p[PATH_LEN];
    if (!json_is_object(obj))
        return fail(err, path, "must be an object of header: value");
    for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it)) {
        const char *name = json_object_iter_key(it);
        json_t *v = json_object_iter_value(it);
        node_path_key(p, sizeof(p), path, name);
        if (!is_token(name))
            return fail(err, p, "bad header name \"%s\"", name);
        if (json_is_integer(v)) {
            char buf[32];
            snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            if (json_object_iter_set_new(obj, it, json_string(buf)) != 0)
                return nomem(err);
        } else if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
            return fail(err, p, "must be a string");
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
    if ((rc = check_keys(conf, path, keys, err)) != 0)
        return rc;
    for (size_t i = 0; i < GV_ARRAY_LEN(maps); i++) {
        json_t *m = json_object_get(conf, maps[i]);
        if (json_is_null(m) || m == NULL)
            continue;
        node_path_key(p, sizeof(p), path, maps[i]);
        if ((rc = check_header_map(m, p, err)) != 0)
            return rc;
    }
    if ((rc = get_list(conf, path, "remove", &list, err)) != 0 || list == NULL)
        return rc;
    node_path_key(p, sizeof(p), path, "remove");
    for (size_t i = 0; i < json_array_size(list); i++) {
        if ((rc = list_str(list, p, i, &s, err)) != 0)
            return rc;
        if (!is_token(s)) {
            node_path_index(q, sizeof(q), p, i);
            return fail(err, q, "bad header name \"%s\"", s);
        }
    }
    return 0;
}

static int check_size_limit(json_t *conf, const char *path, struct node_state_error *err)
{
    static const char *const keys[] = {"max_bytes", NULL};
    long long max = 0;
    int rc;
    if ((rc = check_keys(conf, path, keys, err)) != 0)
        return rc;
    if (field(conf, "max_bytes") == NULL)
        return fail(err, path, "missing \"max_bytes\"");
    return get_ll(conf, path, "max_bytes", 1, LLONG_MAX, &max, err);
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
static int check_plugins(const json_t *list, const char *path, json_t **out,
                         struct node_state_error *err)
{
    char p[PATH_LEN], q[PATH_LEN];
    json_t *copy = NULL, *conf = NULL;
    int rc;
    if (!json_is_array(list))
        return fail(err, path, "must be a list of plugins, each {NAME: {...}}");
    if ((copy = json_array()) == NULL)
        return nomem(err);
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *item = json_array_get(list, i);
        node_path_index(p, sizeof(p), path, i);
        if (!json_is_object(item) || json_object_size(item) != 1) {
            rc = fail(err, p, "a plugin is an object with one key, its name");
            goto fail;
        }
        const char *name = json_object_iter_key(json_object_iter((json_t *)item));
        const json_t *v = json_object_iter_value(json_object_iter((json_t *)item));
        const struct plugin_rule *rule = NULL;
        for (size_t j = 0; j < GV_ARRAY_LEN(plugin_rules); j++)
            if (strcmp(plugin_rules[j].name, name) == 0)
                rule = &plugin_rules[j];
        if (rule == NULL) {
            rc = fail_at_key(err, p, name, "unknown plugin \"%s\"", name);
            goto fail;
        }
        node_path_key(q, sizeof(q), p, name);
        if (!json_is_null(v) && !json_is_object(v)) {
            rc = fail(err, q, "must be an object");
            goto fail;
        }
        conf = json_is_null(v) ? json_object() : json_deep_copy(v);
        if (conf == NULL) {
            rc = nomem(err);
            goto fail;
        }
        if (rule->check != NULL && (rc = rule->check(conf, q, err)) != 0)
            goto fail;
        json_t *wrap = json_object();
        if (wrap == NULL) {
            rc = nomem(err);
            goto fail;
        }
        rc = json_object_set_new(wrap, name, conf); /* takes conf, even on failure */
        conf = NULL;
        if (rc != 0 || json_array_append_new(copy, wrap) != 0) {
            if (rc != 0)
                json_decref(wrap);
            rc = nomem(err);
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
 * Services
 */

static int parse_targets(const json_t *svc, const char *path, struct lb_service_spec *s,
                         struct node_state_error *err)
{
    static const char *const keys[] = {"address", "weight", NULL};
    const json_t *list = field(svc, "targets");
    char p[PATH_LEN], q[PATH_LEN];
    const char *addr = NULL;
    int rc;
    if (list == NULL)
        return fail(err, path, "missing \"targets\"");
    node_path_key(p, sizeof(p), path, "targets");
    if (!json_is_array(list) || json_array_size(list) == 0)
        return fail(err, p, "must be a non-empty list of {address, weight}");
    size_t n = json_array_size(list);
    if ((s->targets = calloc(n, sizeof(*s->targets))) == NULL)
        return nomem(err);
    s->ntargets = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *t = json_array_get(list, i);
        struct lb_target_spec *ts = &s->targets[i];
        node_path_index(q, sizeof(q), p, i);
        if ((rc = want_object(t, q, err)) != 0 || (rc = check_keys(t, q, keys, err)) != 0 ||
            (rc = get_str(t, q, "address", true, &addr, err)) != 0)
            return rc;
        if (gv_split_hostport(addr, ts->host, sizeof(ts->host), &ts->port) != 0)
            return fail_field(err, q, "address", "bad address \"%s\" (want HOST:PORT)", addr);
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->targets[j].address, addr) == 0)
                return fail_field(err, q, "address", "duplicate target \"%s\"", addr);
        ts->weight = 1;
        if ((rc = get_int(t, q, "weight", 1, 10000, &ts->weight, err)) != 0)
            return rc;
        if ((ts->address = strdup(addr)) == NULL)
            return nomem(err);
        s->ntargets = i + 1;
    }
    return 0;
}

static int parse_health(const json_t *svc, const char *path, struct lb_service_spec *s,
                        struct node_state_error *err)
{
    static const char *const keys[] = {"path", "interval", "timeout", "healthy", "unhealthy", NULL};
    const json_t *h = field(svc, "health_check");
    char p[PATH_LEN], lim[32];
    const char *hpath = s->health.path ? s->health.path : LB_DEFAULT_HEALTH_PATH;
    int rc;
    if (h == NULL)
        return 0;
    node_path_key(p, sizeof(p), path, "health_check");
    if ((rc = want_object(h, p, err)) != 0 || (rc = check_keys(h, p, keys, err)) != 0)
        return rc;
    s->health.enabled = true;
    if ((rc = get_str(h, p, "path", false, &hpath, err)) != 0)
        return rc;
    if (hpath[0] != '/' || strpbrk(hpath, " \t\r\n") != NULL)
        return fail_field(err, p, "path", "bad path \"%s\" (must start with \"/\")", hpath);
    if ((rc = get_duration(h, p, "interval", 1, &s->health.interval_ms, err)) != 0 ||
        (rc = get_duration(h, p, "timeout", 1, &s->health.timeout_ms, err)) != 0 ||
        (rc = get_int(h, p, "healthy", 1, 100, &s->health.healthy, err)) != 0 ||
        (rc = get_int(h, p, "unhealthy", 1, 100, &s->health.unhealthy, err)) != 0)
        return rc;
    if (s->health.timeout_ms > s->health.interval_ms) {
        node_format_duration(s->health.interval_ms, lim, sizeof(lim));
        return fail_field(err, p, "timeout", "must not exceed the interval (%s)", lim);
    }
    if (hpath != s->health.path && set_str(&s->health.path, hpath) != 0)
        return nomem(err);
    return 0;
}

/* A host name for SNI and the certificate check: letters, digits, '-', '.'. */
static bool is_hostname(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return false;
    }
    return true;
}

/* tls: true | false | {verify, ca_file, server_name} (an object turns it on). */
static int parse_tls(const json_t *svc, const char *path, struct lb_service_spec *s,
                     struct node_state_error *err)
{
    static const char *const keys[] = {"enabled", "verify", "ca_file", "server_name", NULL};
    const json_t *o = field(svc, "tls");
    const char *ca = NULL, *sn = NULL;
    char p[PATH_LEN];
    int rc;
    if (o == NULL)
        return 0;
    if (json_is_boolean(o)) {
        s->tls.enabled = json_is_true(o);
        return 0;
    }
    node_path_key(p, sizeof(p), path, "tls");
    if (!json_is_object(o))
        return fail(err, p, "must be true, false or {verify, ca_file, server_name}");
    s->tls.enabled = true;
    if ((rc = check_keys(o, p, keys, err)) != 0 ||
        (rc = get_bool(o, p, "enabled", &s->tls.enabled, err)) != 0 ||
        (rc = get_bool(o, p, "verify", &s->tls.verify, err)) != 0 ||
        (rc = get_str(o, p, "ca_file", false, &ca, err)) != 0 ||
        (rc = get_str(o, p, "server_name", false, &sn, err)) != 0)
        return rc;
    if (ca != NULL && strpbrk(ca, "\r\n") != NULL)
        return fail_field(err, p, "ca_file", "must be one line");
    if (sn != NULL && !is_hostname(sn))
        return fail_field(err, p, "server_name", "bad host name \"%s\"", sn);
    if ((ca != NULL && set_str(&s->tls.ca_file, ca) != 0) ||
        (sn != NULL && set_str(&s->tls.server_name, sn) != 0))
        return nomem(err);
    return 0;
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
        return fail_field(err, q, "ca_file", "cannot read \"%s\": %s", s->tls.ca_file,
                          strerror(errno));
    }
    return 0;
}

static int parse_service(const json_t *v, const char *path, struct lb_service_spec *s,
                         struct node_state_error *err)
{
    static const char *const keys[] = {"name",         "targets", "balancer", "hash_on",
                                       "health_check", "passive", "sticky",   "retries",
                                       "timeouts",     "tls",     NULL};
    static const char *const passive_keys[] = {"failures", "eject_for", NULL};
    static const char *const sticky_keys[] = {"cookie", "ttl", NULL};
    static const char *const timeout_keys[] = {"connect", "read", "write", NULL};
    static const char *const hash_kinds[] = {"ip", "path", "header:", "cookie:", NULL};
    static const enum lb_hash_on hash_values[] = {LB_HASH_IP, LB_HASH_PATH, LB_HASH_HEADER,
                                                  LB_HASH_COOKIE};
    const char *name = NULL, *str = NULL, *hname = NULL;
    const json_t *o;
    char p[PATH_LEN];
    int rc;

    if ((rc = want_object(v, path, err)) != 0 || (rc = check_keys(v, path, keys, err)) != 0 ||
        (rc = get_str(v, path, "name", true, &name, err)) != 0)
        return rc;
    node_path_key(p, sizeof(p), path, "name");
    if ((rc = check_name(name, p, err)) != 0)
        return rc;
    if (set_str(&s->name, name) != 0)
        return nomem(err);
    if ((rc = parse_targets(v, path, s, err)) != 0)
        return rc;

    str = NULL;
    if ((rc = get_str(v, path, "balancer", false, &str, err)) != 0)
        return rc;
    if (str != NULL && lb_algo_parse(str, &s->algo) != 0)
        return fail_field(err, path, "balancer",
                          "unknown balancer \"%s\" (round_robin, least_connections, p2c_ewma, "
                          "consistent_hash or random)",
                          str);

    str = NULL;
    if ((rc = get_str(v, path, "hash_on", false, &str, err)) != 0)
        return rc;
    if (str != NULL) {
        int k = parse_keyed(str, hash_kinds, &hname);
        if (k < 0)
            return fail_field(err, path, "hash_on",
                              "bad hash_on \"%s\" (ip, path, header:NAME or cookie:NAME)", str);
        s->hash_on = hash_values[k];
        free(s->hash_key);
        s->hash_key = NULL;
        if (hname != NULL && (s->hash_key = strdup(hname)) == NULL)
            return nomem(err);
    }

    if ((rc = parse_health(v, path, s, err)) != 0)
        return rc;

    if ((o = field(v, "passive")) != NULL) {
        node_path_key(p, sizeof(p), path, "passive");
        if ((rc = want_object(o, p, err)) != 0 || (rc = check_keys(o, p, passive_keys, err)) != 0 ||
            (rc = get_int(o, p, "failures", 0, 1000, &s->passive.failures, err)) != 0 ||
            (rc = get_duration(o, p, "eject_for", 1, &s->passive.eject_for_ms, err)) != 0)
            return rc;
    }

    if ((o = field(v, "sticky")) != NULL) {
        const char *cookie = s->sticky.cookie ? s->sticky.cookie : LB_DEFAULT_STICKY_COOKIE;
        node_path_key(p, sizeof(p), path, "sticky");
        s->sticky.enabled = true;
        if ((rc = want_object(o, p, err)) != 0 || (rc = check_keys(o, p, sticky_keys, err)) != 0 ||
            (rc = get_str(o, p, "cookie", false, &cookie, err)) != 0 ||
            (rc = get_duration(o, p, "ttl", 1000, &s->sticky.ttl_ms, err)) != 0)
            return rc;
        if (!is_token(cookie))
            return fail_field(err, p, "cookie", "bad cookie name \"%s\"", cookie);
        if (cookie != s->sticky.cookie && set_str(&s->sticky.cookie, cookie) != 0)
            return nomem(err);
    }

    if ((rc = get_int(v, path, "retries", 0, 10, &s->retries, err)) != 0)
        return rc;

    if ((o = field(v, "timeouts")) != NULL) {
        node_path_key(p, sizeof(p), path, "timeouts");
        if ((rc = want_object(o, p, err)) != 0 || (rc = check_keys(o, p, timeout_keys, err)) != 0 ||
            (rc = get_duration(o, p, "connect", 1, &s->timeouts.connect_ms, err)) != 0 ||
            (rc = get_duration(o, p, "read", 1, &s->timeouts.read_ms, err)) != 0 ||
            (rc = get_duration(o, p, "write", 1, &s->timeouts.write_ms, err)) != 0)
            return rc;
    }
    if ((rc = parse_tls(v, path, s, err)) != 0)
        return rc;
    /* The active checker speaks plain HTTP only: against a TLS port every
     * probe would fail and take the service down. */
    if (s->tls.enabled && s->health.enabled)
        return fail_at_key(err, path, "health_check",
                           "active health checks are not supported over upstream TLS yet "
                           "(passive checks are)");
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

    if ((rc = want_object(m, path, err)) != 0 || (rc = check_keys(m, path, keys, err)) != 0)
        return rc;

    if ((rc = get_str(m, path, "path_type", false, &s, err)) != 0)
        return rc;
    if (s != NULL) {
        size_t i = 0;
        while (i < GV_ARRAY_LEN(types) && strcmp(types[i], s) != 0)
            i++;
        if (i == GV_ARRAY_LEN(types))
            return fail_field(err, path, "path_type",
                              "unknown path_type \"%s\" (prefix, exact or regex)", s);
        r->path_type = type_values[i];
    }

    if ((rc = get_list(m, path, "hosts", &list, err)) != 0)
        return rc;
    if (list != NULL && json_array_size(list) > 0) {
        node_path_key(p, sizeof(p), path, "hosts");
        if ((r->hosts = calloc(json_array_size(list), sizeof(char *))) == NULL)
            return nomem(err);
        for (size_t i = 0; i < json_array_size(list); i++) {
            if ((rc = list_str(list, p, i, &s, err)) != 0)
                return rc;
            if (!is_host(s)) {
                node_path_index(q, sizeof(q), p, i);
                return fail(err, q,
                            "bad host \"%s\" (a name like api.example.com or "
                            "*.example.com, no port)",
                            s);
            }
            if ((r->hosts[i] = strdup(s)) == NULL)
                return nomem(err);
            r->nhosts = i + 1;
            for (char *c = r->hosts[i]; *c; c++)
                *c = (char)tolower((unsigned char)*c);
        }
    }

    if ((rc = get_list(m, path, "paths", &list, err)) != 0)
        return rc;
    if (list != NULL && json_array_size(list) > 0) {
        node_path_key(p, sizeof(p), path, "paths");
        if ((r->paths = calloc(json_array_size(list), sizeof(char *))) == NULL)
            return nomem(err);
        for (size_t i = 0; i < json_array_size(list); i++) {
            if ((rc = list_str(list, p, i, &s, err)) != 0)
                return rc;
            node_path_index(q, sizeof(q), p, i);
            if (r->path_type == GW_PATH_REGEX) {
                regex_t re;
                int e = regcomp(&re, s, REG_EXTENDED | REG_NOSUB);
                if (e != 0) {
                    char why[128];
                    regerror(e, &re, why, sizeof(why));
                    return fail(err, q, "bad regex \"%s\": %s", s, why);
                }
                regfree(&re);
            } else if (s[0] != '/' || strpbrk(s, " \t\r\n") != NULL) {
                return fail(err, q, "bad path \"%s\" (must start with \"/\")", s);
            }
            if ((r->paths[i] = strdup(s)) == NULL)
                return nomem(err);
            r->npaths = i + 1;
        }
    }

    if ((rc = get_list(m, path, "methods", &list, err)) != 0)
        return rc;
    node_path_key(p, sizeof(p), path, "methods");
    for (size_t i = 0; list != NULL && i < json_array_size(list); i++) {
        char up[32];
        size_t n;
        if ((rc = list_str(list, p, i, &s, err)) != 0)
            return rc;
        for (n = 0; s[n] != '\0' && n + 1 < sizeof(up); n++)
            up[n] = (char)toupper((unsigned char)s[n]);
        up[n] = '\0';
        if (s[n] != '\0' || gw_method_bit(up, &r->methods) != 0) {
            node_path_index(q, sizeof(q), p, i);
            return fail(err, q, "unknown method \"%s\"", s);
        }
    }

    if ((hdrs = field(m, "headers")) != NULL) {
        const char *name;
        json_t *hv;
        node_path_key(p, sizeof(p), path, "headers");
        if (!json_is_object(hdrs))
            return fail(err, p, "must be an object of header: value");
        size_t n = json_object_size(hdrs);
        if (n > 0 && (r->headers = calloc(n, sizeof(*r->headers))) == NULL)
            return nomem(err);
        json_object_foreach((json_t *)hdrs, name, hv)
        {
            struct gw_header_match *h = &r->headers[r->nheaders];
            char num[32];
            const char *val = num;
            node_path_key(q, sizeof(q), p, name);
            if (!is_token(name))
                return fail(err, q, "bad header name \"%s\"", name);
            if (json_is_integer(hv))
                snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(hv));
            else if (json_is_string(hv) && strlen(json_string_value(hv)) == json_string_length(hv))
                val = json_string_value(hv);
            else
                return fail(err, q, "must be a string");
            h->name = strdup(name);
            h->value = strdup(val);
            r->nheaders++;
            if (h->name == NULL || h->value == NULL)
                return nomem(err);
        }
    }
    return 0;
}

static int parse_route(const json_t *v, const char *path, const struct node_state *st,
                       struct gw_route_spec *r, json_t **plugins, struct node_state_error *err)
{
    static const char *const keys[] = {"name", "match", "service", "strip_prefix", "plugins", NULL};
    const char *name = NULL, *svc = NULL;
    const json_t *o;
    char p[PATH_LEN];
    int rc;

    if ((rc = want_object(v, path, err)) != 0 || (rc = check_keys(v, path, keys, err)) != 0 ||
        (rc = get_str(v, path, "name", true, &name, err)) != 0)
        return rc;
    node_path_key(p, sizeof(p), path, "name");
    if ((rc = check_name(name, p, err)) != 0)
        return rc;
    if ((r->name = strdup(name)) == NULL)
        return nomem(err);
    if ((o = field(v, "match")) != NULL) {
        node_path_key(p, sizeof(p), path, "match");
        if ((rc = parse_match(o, p, r, err)) != 0)
            return rc;
    }
    if ((rc = get_str(v, path, "service", true, &svc, err)) != 0)
        return rc;
    if (node_state_find_service(st, svc) < 0)
        return fail_field(err, path, "service", "no service named \"%s\"", svc);
    if ((r->service = strdup(svc)) == NULL)
        return nomem(err);
    if ((rc = get_bool(v, path, "strip_prefix", &r->strip_prefix, err)) != 0)
        return rc;
    if ((o = field(v, "plugins")) != NULL) {
        json_t *copy = NULL;
        node_path_key(p, sizeof(p), path, "plugins");
        if ((rc = check_plugins(o, p, &copy, err)) != 0)
            return rc;
        if (json_array_size(copy) == 0)
            json_decref(copy);
        else
            *plugins = copy;
    }
    return 0;
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
            return fail(err, path, "%s \"%s\" also belongs to consumer \"%s\"", what, value,
                        json_string_value(owner));
        /* Secrets are not echoed back in messages. */
        return fail(err, path, "%s also belongs to consumer \"%s\"", what,
                    json_string_value(owner));
    }
    return json_object_set_new(set, value, json_string(consumer)) == 0 ? 0 : nomem(err);
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
        return fail(err, p, "must be a list");
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *j = json_array_get(list, i);
        const char *alg = "HS256", *iss = NULL;
        node_path_index(q, sizeof(q), p, i);
        if ((rc = want_object(j, q, err)) != 0 || (rc = check_keys(j, q, keys, err)) != 0 ||
            (rc = get_str(j, q, "issuer", true, &iss, err)) != 0 ||
            (rc = get_str(j, q, "algorithm", false, &alg, err)) != 0)
            return rc;
        char ip[PATH_LEN];
        node_path_key(ip, sizeof(ip), q, "issuer");
        if ((rc = claim(ix->issuer, iss, consumer, ip, "issuer", true, err)) != 0)
            return rc;
        if (strcmp(alg, "HS256") == 0) {
            if ((rc = get_str(j, q, "secret", true, &s, err)) != 0)
                return rc;
        } else if (strcmp(alg, "RS256") == 0 || strcmp(alg, "ES256") == 0) {
            if ((rc = get_str(j, q, "public_key", true, &s, err)) != 0)
                return rc;
            if (strstr(s, "-----BEGIN ") == NULL)
                return fail_field(err, q, "public_key", "must be a PEM public key");
        } else {
            return fail_field(err, q, "algorithm",
                              "unknown algorithm \"%s\" (HS256, RS256 or ES256)", alg);
        }
        if (json_object_set_new(j, "algorithm", json_string(alg)) != 0)
            return nomem(err);
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
    if ((rc = want_object(c, path, err)) != 0 || (rc = check_keys(c, path, keys, err)) != 0 ||
        (rc = get_str(c, path, "name", true, &name, err)) != 0)
        return rc;
    node_path_key(p, sizeof(p), path, "name");
    if ((rc = check_name(name, p, err)) != 0)
        return rc;
    if ((prev = json_object_get(ix->names, name)) != NULL)
        return fail(err, p, "duplicate name \"%s\" (also consumers[%" JSON_INTEGER_FORMAT "])",
                    name, json_integer_value(prev));
    if (json_object_set_new(ix->names, name, json_integer((json_int_t)index)) != 0)
        return nomem(err);

    if ((rc = get_list(c, path, "key_auth", &list, err)) != 0)
        return rc;
    node_path_key(p, sizeof(p), path, "key_auth");
    for (size_t i = 0; list != NULL && i < json_array_size(list); i++) {
        node_path_index(q, sizeof(q), p, i);
        if ((rc = list_str(list, p, i, &s, err)) != 0 ||
            (rc = claim(ix->keys, s, name, q, "key", false, err)) != 0)
            return rc;
    }

    if ((rc = check_jwt(c, path, name, ix, err)) != 0)
        return rc;

    if ((rc = get_list(c, path, "basic_auth", &list, err)) != 0)
        return rc;
    node_path_key(p, sizeof(p), path, "basic_auth");
    for (size_t i = 0; list != NULL && i < json_array_size(list); i++) {
        const json_t *b = json_array_get(list, i);
        const char *user = NULL, *pass = NULL;
        char up[PATH_LEN];
        node_path_index(q, sizeof(q), p, i);
        if ((rc = want_object(b, q, err)) != 0 || (rc = check_keys(b, q, basic_keys, err)) != 0 ||
            (rc = get_str(b, q, "username", true, &user, err)) != 0 ||
            (rc = get_str(b, q, "password", true, &pass, err)) != 0)
            return rc;
        node_path_key(up, sizeof(up), q, "username");
        if (strchr(user, ':') != NULL)
            return fail(err, up, "must not contain \":\"");
        if ((rc = claim(ix->users, user, name, up, "username", true, err)) != 0)
            return rc;
    }
    return 0;
}

/* Validates consumers into a normalized copy (jwt algorithm filled in). */
static int check_consumers(const json_t *list, json_t **out, struct node_state_error *err)
{
    struct consumer_index ix = {json_object(), json_object(), json_object(), json_object()};
    json_t *copy = list ? json_deep_copy(list) : json_array();
    char p[PATH_LEN];
    int rc = 0;
    if (ix.names == NULL || ix.keys == NULL || ix.issuer == NULL || ix.users == NULL ||
        copy == NULL) {
        rc = nomem(err);
        goto fail;
    }
    if (!json_is_array(copy)) {
        rc = fail(err, "consumers", "must be a list");
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
        return fail(err, "services", "must be a list");
    size_t n = json_array_size(list);
    if (n == 0)
        return 0;
    if ((st->services = calloc(n, sizeof(*st->services))) == NULL)
        return nomem(err);
    for (size_t i = 0; i < n; i++) {
        node_path_index(p, sizeof(p), "services", i);
        lb_service_spec_defaults(&st->services[i]);
        st->nservices = i + 1;
        if ((rc = parse_service(json_array_get(list, i), p, &st->services[i], err)) != 0)
            return rc;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(st->services[j].name, st->services[i].name) == 0) {
                node_path_key(q, sizeof(q), p, "name");
                return fail(err, q, "duplicate name \"%s\" (also services[%zu])",
                            st->services[i].name, j);
            }
        }
    }
    return 0;
}

static int parse_routes(const json_t *list, struct node_state *st, struct node_state_error *err)
{
    char p[PATH_LEN], q[PATH_LEN];
    int rc;
    if (list == NULL)
        return 0;
    if (!json_is_array(list))
        return fail(err, "routes", "must be a list");
    size_t n = json_array_size(list);
    if (n == 0)
        return 0;
    st->routes = calloc(n, sizeof(*st->routes));
    st->route_plugins = calloc(n, sizeof(*st->route_plugins));
    if (st->routes == NULL || st->route_plugins == NULL)
        return nomem(err);
    for (size_t i = 0; i < n; i++) {
        node_path_index(p, sizeof(p), "routes", i);
        st->nroutes = i + 1;
        if ((rc = parse_route(json_array_get(list, i), p, st, &st->routes[i], &st->route_plugins[i],
                              err)) != 0)
            return rc;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(st->routes[j].name, st->routes[i].name) == 0) {
                node_path_key(q, sizeof(q), p, "name");
                return fail(err, q, "duplicate name \"%s\" (also routes[%zu])", st->routes[i].name,
                            j);
            }
        }
    }
    return 0;
}

int node_state_from_json(const json_t *root, struct node_state *out, struct node_state_error *err)
{
    static const char *const keys[] = {"services", "routes", "consumers", "plugins", NULL};
    struct node_state st = {0};
    const json_t *plugins;
    int rc;

    memset(err, 0, sizeof(*err));
    if (!json_is_object(root))
        return fail(err, "", "the cluster state must be an object");
    if ((rc = check_keys(root, "", keys, err)) != 0 ||
        (rc = parse_services(field(root, "services"), &st, err)) != 0 ||
        (rc = parse_routes(field(root, "routes"), &st, err)) != 0 ||
        (rc = check_consumers(field(root, "consumers"), &st.consumers, err)) != 0)
        goto fail;
    if ((plugins = field(root, "plugins")) != NULL) {
        if ((rc = check_plugins(plugins, "plugins", &st.plugins, err)) != 0)
            goto fail;
    } else if ((st.plugins = json_array()) == NULL) {
        rc = nomem(err);
        goto fail;
    }
    *out = st;
    return 0;
fail:
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

static json_t *b_duration(uint64_t ms)
{
    char buf[32];
    node_format_duration(ms, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *b_strings(struct builder *b, char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        b_append(b, a, json_string(v[i]));
    return a;
}

static json_t *service_json(struct builder *b, const struct lb_service_spec *s)
{
    json_t *o = json_object(), *targets = json_array(), *x;
    char hash[300];
    b_put(b, o, "name", json_string(s->name));
    for (size_t i = 0; i < s->ntargets; i++) {
        x = json_object();
        b_put(b, x, "address", json_string(s->targets[i].address));
        b_put(b, x, "weight", json_integer(s->targets[i].weight));
        b_append(b, targets, x);
    }
    b_put(b, o, "targets", targets);
    b_put(b, o, "balancer", json_string(lb_algo_name(s->algo)));
    switch (s->hash_on) {
    case LB_HASH_IP:
        snprintf(hash, sizeof(hash), "ip");
        break;
    case LB_HASH_PATH:
        snprintf(hash, sizeof(hash), "path");
        break;
    case LB_HASH_HEADER:
        snprintf(hash, sizeof(hash), "header:%s", s->hash_key ? s->hash_key : "");
        break;
    case LB_HASH_COOKIE:
        snprintf(hash, sizeof(hash), "cookie:%s", s->hash_key ? s->hash_key : "");
        break;
    }
    b_put(b, o, "hash_on", json_string(hash));
    if (s->health.enabled) {
        x = b_put(b, o, "health_check", json_object());
        b_put(b, x, "path", json_string(s->health.path ? s->health.path : LB_DEFAULT_HEALTH_PATH));
        b_put(b, x, "interval", b_duration(s->health.interval_ms));
        b_put(b, x, "timeout", b_duration(s->health.timeout_ms));
        b_put(b, x, "healthy", json_integer(s->health.healthy));
        b_put(b, x, "unhealthy", json_integer(s->health.unhealthy));
    }
    x = b_put(b, o, "passive", json_object());
    b_put(b, x, "failures", json_integer(s->passive.failures));
    b_put(b, x, "eject_for", b_duration(s->passive.eject_for_ms));
    if (s->sticky.enabled) {
        x = b_put(b, o, "sticky", json_object());
        b_put(b, x, "cookie",
              json_string(s->sticky.cookie ? s->sticky.cookie : LB_DEFAULT_STICKY_COOKIE));
        b_put(b, x, "ttl", b_duration(s->sticky.ttl_ms));
    }
    b_put(b, o, "retries", json_integer(s->retries));
    x = b_put(b, o, "timeouts", json_object());
    b_put(b, x, "connect", b_duration(s->timeouts.connect_ms));
    b_put(b, x, "read", b_duration(s->timeouts.read_ms));
    b_put(b, x, "write", b_duration(s->timeouts.write_ms));
    if (s->tls.enabled) {
        x = b_put(b, o, "tls", json_object());
        b_put(b, x, "verify", json_boolean(s->tls.verify));
        if (s->tls.ca_file != NULL)
            b_put(b, x, "ca_file", json_string(s->tls.ca_file));
        if (s->tls.server_name != NULL)
            b_put(b, x, "server_name", json_string(s->tls.server_name));
    }
    return o;
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
        b_append(&b, x, service_json(&b, &s->services[i]));
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
