/* state_check.c - the validator's vocabulary: error paths and typed, checked
 * access to JSON values, shared by state.c (services, routes) and
 * state_plugins.c (plugins, consumers). See state_int.h. */
#include "node/state_int.h"

#include "common/err.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
int sv_fail(struct node_state_error *err, const char *path, const char *fmt, ...)
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

/* Like sv_fail() for the object at path, pointing the reader at its key. */
int sv_fail_at_key(struct node_state_error *err, const char *path, const char *key, const char *fmt,
                   ...)
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
int sv_fail_field(struct node_state_error *err, const char *path, const char *key, const char *fmt,
                  ...)
{
    char p[PATH_LEN];
    node_path_key(p, sizeof(p), path, key);
    va_list ap;
    va_start(ap, fmt);
    int rc = verr(err, p, p, fmt, ap);
    va_end(ap);
    return rc;
}

int sv_nomem(struct node_state_error *err)
{
    sv_fail(err, "", "out of memory");
    return GV_ENOMEM;
}

/* ---------------------------------------------------------------------------
 * Typed access to JSON objects. A key holding null counts as absent, so YAML's
 * "key:" with nothing after it means "the default".
 */

const json_t *sv_field(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

/* Rejects any key of obj that is not in keys (NULL-terminated). */
int sv_check_keys(const json_t *obj, const char *path, const char *const *keys,
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
            return sv_fail_at_key(err, path, k, "unknown key \"%s\"", k);
    }
    return 0;
}

int sv_want_object(const json_t *v, const char *path, struct node_state_error *err)
{
    return json_is_object(v) ? 0 : sv_fail(err, path, "must be an object");
}

/* *out = obj[key] as a non-empty string; untouched when absent and optional. */
int sv_get_str(const json_t *obj, const char *path, const char *key, bool required,
               const char **out, struct node_state_error *err)
{
    const json_t *v = sv_field(obj, key);
    if (v == NULL)
        return required ? sv_fail(err, path, "missing \"%s\"", key) : 0;
    if (!json_is_string(v))
        return sv_fail_field(err, path, key, "must be a string");
    if (json_string_length(v) == 0)
        return sv_fail_field(err, path, key, "must not be empty");
    if (strlen(json_string_value(v)) != json_string_length(v))
        return sv_fail_field(err, path, key, "must not contain NUL bytes");
    *out = json_string_value(v);
    return 0;
}

int sv_get_ll(const json_t *obj, const char *path, const char *key, long long min, long long max,
              long long *out, struct node_state_error *err)
{
    const json_t *v = sv_field(obj, key);
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        if (max == LLONG_MAX)
            return sv_fail_field(err, path, key, "must be an integer of at least %lld", min);
        return sv_fail_field(err, path, key, "must be an integer from %lld to %lld", min, max);
    }
    *out = json_integer_value(v);
    return 0;
}

int sv_get_int(const json_t *obj, const char *path, const char *key, int min, int max, int *out,
               struct node_state_error *err)
{
    long long v = *out;
    int rc = sv_get_ll(obj, path, key, min, max, &v, err);
    if (rc == 0)
        *out = (int)v;
    return rc;
}

int sv_get_bool(const json_t *obj, const char *path, const char *key, bool *out,
                struct node_state_error *err)
{
    const json_t *v = sv_field(obj, key);
    if (v == NULL)
        return 0;
    if (!json_is_boolean(v))
        return sv_fail_field(err, path, key, "must be true or false");
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

int sv_get_duration(const json_t *obj, const char *path, const char *key, uint64_t min_ms,
                    uint64_t *out, struct node_state_error *err)
{
    const json_t *v = sv_field(obj, key);
    uint64_t ms;
    char lim[32];
    if (v == NULL)
        return 0;
    if (node_json_duration(v, &ms) != 0) {
        if (json_is_string(v))
            return sv_fail_field(err, path, key, "bad duration \"%s\" (use e.g. 250ms, 2s, 1m)",
                                 json_string_value(v));
        return sv_fail_field(err, path, key, "must be a duration like \"250ms\", \"2s\" or \"1m\"");
    }
    if (ms < min_ms) {
        node_format_duration(min_ms, lim, sizeof(lim));
        return sv_fail_field(err, path, key, "must be at least %s", lim);
    }
    if (ms > DURATION_MAX_MS) {
        node_format_duration(DURATION_MAX_MS, lim, sizeof(lim));
        return sv_fail_field(err, path, key, "must be at most %s", lim);
    }
    *out = ms;
    return 0;
}

/* obj[key] as an array (NULL when absent). */
int sv_get_list(const json_t *obj, const char *path, const char *key, const json_t **out,
                struct node_state_error *err)
{
    const json_t *v = sv_field(obj, key);
    *out = NULL;
    if (v == NULL)
        return 0;
    if (!json_is_array(v))
        return sv_fail_field(err, path, key, "must be a list");
    *out = v;
    return 0;
}

/* Element i of list (at path) as a non-empty string. */
int sv_list_str(const json_t *list, const char *path, size_t i, const char **out,
                struct node_state_error *err)
{
    const json_t *v = json_array_get(list, i);
    char p[PATH_LEN];
    node_path_index(p, sizeof(p), path, i);
    if (!json_is_string(v))
        return sv_fail(err, p, "must be a string");
    if (json_string_length(v) == 0 || strlen(json_string_value(v)) != json_string_length(v))
        return sv_fail(err, p, "must be a non-empty string");
    *out = json_string_value(v);
    return 0;
}

int sv_set_str(char **dst, const char *src)
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
int sv_check_name(const char *s, const char *path, struct node_state_error *err)
{
    size_t n = strlen(s);
    if (n > NAME_MAX_LEN)
        return sv_fail(err, path, "name longer than %d characters", NAME_MAX_LEN);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '_' && c != '.' && c != '-')
            return sv_fail(err, path, "bad name \"%s\" (use letters, digits, \"_\", \".\", \"-\")",
                           s);
    }
    return 0;
}

/* An HTTP token (RFC 9110): header and cookie names. */
bool sv_is_token(const char *s)
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
bool sv_is_host(const char *s)
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
bool sv_is_cidr(const char *s)
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
 * key of a plugin that keys its state by request. Returns the kind's index in kinds, or -1; *name
 * points at NAME for the last two. */
int sv_parse_keyed(const char *s, const char *const *kinds, const char **name)
{
    for (int i = 0; kinds[i] != NULL; i++) {
        size_t n = strlen(kinds[i]);
        if (kinds[i][n - 1] == ':') {
            if (strncmp(s, kinds[i], n) == 0 && sv_is_token(s + n)) {
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
