/* config.c - the YAML config file (read by common/yaml): the node: section
 * into node_settings, the rest checked by the cluster-state validator; every
 * error comes back as "FILE:LINE: message". */
#include "node/config.h"

#include "common/err.h"
#include "common/kinds.h"
#include "common/log.h"
#include "common/util.h"
#include "common/yaml.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PATH_LEN 256

struct loader {
    struct gv_yaml *y;
    struct node_config_error *err;
};

/* "FILE:LINE: path: message" (no "path: " at the top level); returns rc. */
__attribute__((format(printf, 5, 6))) static int report(struct loader *ld, int rc, int line,
                                                        const char *path, const char *fmt, ...)
{
    char msg[sizeof(ld->err->text)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gv_yaml_message(ld->err->text, sizeof(ld->err->text), ld->y->name, line, path, msg);
    return rc;
}

static int line_of(const struct loader *ld, const char *path)
{
    return gv_yaml_line(ld->y, path);
}

/* report() at the line of path. */
__attribute__((format(printf, 3, 4))) static int fail(struct loader *ld, const char *path,
                                                      const char *fmt, ...)
{
    char msg[sizeof(ld->err->text)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return report(ld, GV_EINVAL, line_of(ld, path), path, "%s", msg);
}

static int nomem(struct loader *ld)
{
    snprintf(ld->err->text, sizeof(ld->err->text), "%s: out of memory", ld->y->name);
    return GV_ENOMEM;
}

/* ---------------------------------------------------------------------------
 * node: settings
 */

void node_settings_defaults(struct node_settings *s)
{
    char host[256];
    memset(s, 0, sizeof(*s));
    if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "grapevine");
    host[sizeof(host) - 1] = '\0';
    s->name = strdup(host);
    s->listen = strdup("0.0.0.0:8080");
    s->admin = strdup("127.0.0.1:9901");
    s->gossip = strdup("0.0.0.0:7946");
    s->workers = 0;
    s->log_level = strdup("info");
    s->access_log = true;
    s->header_timeout_ms = 10 * 1000;
    s->idle_timeout_ms = 60 * 1000;
    s->max_header_bytes = 16384;
    s->max_headers = 100;
}

void node_settings_free(struct node_settings *s)
{
    if (s == NULL)
        return;
    free(s->name);
    free(s->listen);
    free(s->tls_listen);
    for (size_t i = 0; i < s->ncerts; i++) {
        free(s->certs[i].cert);
        free(s->certs[i].key);
    }
    free(s->certs);
    free(s->admin);
    free(s->admin_token_file);
    free(s->gossip);
    free(s->advertise);
    for (size_t i = 0; i < s->njoin; i++)
        free(s->join[i]);
    free(s->join);
    free(s->cluster_key_file);
    free(s->data_dir);
    free(s->gossip_profile);
    free(s->log_level);
    memset(s, 0, sizeof(*s));
}

static bool is_loopback(const char *hostport)
{
    char host[256];
    uint16_t port;
    unsigned char a[sizeof(struct in6_addr)];
    if (gv_split_hostport(hostport, host, sizeof(host), &port) != 0)
        return false;
    if (strcasecmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, a) == 1)
        return a[0] == 127;
    return strcmp(host, "::1") == 0;
}

/* What is wrong with s as a whole, or NULL: every address must be HOST:PORT
 * (overrides from the command line never went through the loader), and an
 * admin API off loopback needs a token. *path is the setting concerned; the
 * message may be written into buf. */
static const char *settings_problem(const struct node_settings *s, const char **path, char *buf,
                                    size_t len)
{
    const struct {
        const char *path;
        const char *addr;
    } addrs[] = {{"node.listen", s->listen},
                 {"node.tls.listen", s->tls_listen},
                 {"node.admin", s->admin},
                 {"node.gossip", s->gossip},
                 {"node.advertise", s->advertise}};
    char host[256];
    uint16_t port;
    for (size_t i = 0; i < GV_ARRAY_LEN(addrs); i++) {
        if (addrs[i].addr != NULL &&
            gv_split_hostport(addrs[i].addr, host, sizeof(host), &port) != 0) {
            *path = addrs[i].path;
            snprintf(buf, len, "bad address \"%.200s\" (want HOST:PORT)", addrs[i].addr);
            return buf;
        }
    }
    for (size_t i = 0; i < s->njoin; i++) {
        if (gv_split_hostport(s->join[i], host, sizeof(host), &port) != 0) {
            *path = "node.join";
            snprintf(buf, len, "bad address \"%.200s\" (want HOST:PORT)", s->join[i]);
            return buf;
        }
    }
    *path = "node.admin";
    if (s->admin != NULL && !is_loopback(s->admin) && s->admin_token_file == NULL)
        return "admin_token_file is required when admin is not on loopback";
    return NULL;
}

int node_settings_check(const struct node_settings *s, struct node_config_error *err)
{
    char buf[256];
    const char *path;
    const char *why = settings_problem(s, &path, buf, sizeof(buf));
    if (why == NULL)
        return 0;
    err->text[0] = '\0';
    node_path_append(err->text, sizeof(err->text), path);
    node_path_append(err->text, sizeof(err->text), ": ");
    node_path_append(err->text, sizeof(err->text), why);
    return GV_EINVAL;
}

static const json_t *field(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

/* obj[key] (obj at path) as a fresh non-empty string in *dst, freeing the old
 * one; untouched when absent. */
static int set_str(struct loader *ld, const json_t *obj, const char *path, const char *key,
                   char **dst)
{
    const json_t *v = field(obj, key);
    char p[PATH_LEN];
    node_path_key(p, sizeof(p), path, key);
    if (v == NULL)
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v))
        return fail(ld, p, "must be a non-empty string");
    char *s = strdup(json_string_value(v));
    if (s == NULL)
        return nomem(ld);
    free(*dst);
    *dst = s;
    return 0;
}

static int check_addr(struct loader *ld, const char *path, const char *addr)
{
    char host[256];
    uint16_t port;
    if (gv_split_hostport(addr, host, sizeof(host), &port) != 0)
        return fail(ld, path, "bad address \"%s\" (want HOST:PORT)", addr);
    return 0;
}

static int set_addr(struct loader *ld, const json_t *obj, const char *path, const char *key,
                    char **dst)
{
    char p[PATH_LEN];
    int rc;
    node_path_key(p, sizeof(p), path, key);
    if (field(obj, key) == NULL)
        return 0;
    if ((rc = set_str(ld, obj, path, key, dst)) != 0)
        return rc;
    return check_addr(ld, p, *dst);
}

static int set_duration(struct loader *ld, const json_t *obj, const char *path, const char *key,
                        uint64_t *dst)
{
    const json_t *v = field(obj, key);
    uint64_t ms;
    char p[PATH_LEN];
    node_path_key(p, sizeof(p), path, key);
    if (v == NULL)
        return 0;
    if (node_json_duration(v, &ms) != 0) {
        if (json_is_string(v))
            return fail(ld, p, "bad duration \"%s\" (use e.g. 250ms, 2s, 1m)",
                        json_string_value(v));
        return fail(ld, p, "must be a duration like \"250ms\", \"2s\" or \"1m\"");
    }
    if (ms == 0 || ms > 24ULL * 3600 * 1000)
        return fail(ld, p, "must be more than 0 and at most 24h");
    *dst = ms;
    return 0;
}

static int set_uint(struct loader *ld, const json_t *obj, const char *path, const char *key,
                    long long min, long long max, uint32_t *dst)
{
    const json_t *v = field(obj, key);
    char p[PATH_LEN];
    node_path_key(p, sizeof(p), path, key);
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return fail(ld, p, "must be an integer from %lld to %lld", min, max);
    *dst = (uint32_t)json_integer_value(v);
    return 0;
}

/* Rejects keys of obj (at path) not in keys. */
static int check_keys(struct loader *ld, const json_t *obj, const char *path,
                      const char *const *keys)
{
    const char *k;
    json_t *v;
    char p[PATH_LEN];
    json_object_foreach((json_t *)obj, k, v)
    {
        size_t i = 0;
        while (keys[i] != NULL && strcmp(keys[i], k) != 0)
            i++;
        if (keys[i] == NULL) {
            node_path_key(p, sizeof(p), path, k);
            return report(ld, GV_EINVAL, line_of(ld, p), path, "unknown key \"%s\"", k);
        }
    }
    return 0;
}

static int parse_tls(struct loader *ld, const json_t *tls, struct node_settings *s)
{
    static const char *const keys[] = {"listen", "certificates", NULL};
    static const char *const cert_keys[] = {"cert", "key", NULL};
    const json_t *certs;
    char p[PATH_LEN];
    int rc;
    if (!json_is_object(tls))
        return fail(ld, "node.tls", "must be an object");
    if ((rc = check_keys(ld, tls, "node.tls", keys)) != 0)
        return rc;
    certs = field(tls, "certificates");
    if (certs == NULL)
        return fail(ld, "node.tls", "missing \"certificates\"");
    if (!json_is_array(certs) || json_array_size(certs) == 0)
        return fail(ld, "node.tls.certificates", "must be a non-empty list of {cert, key}");
    if ((s->certs = calloc(json_array_size(certs), sizeof(*s->certs))) == NULL)
        return nomem(ld);
    for (size_t i = 0; i < json_array_size(certs); i++) {
        const json_t *c = json_array_get(certs, i);
        node_path_index(p, sizeof(p), "node.tls.certificates", i);
        s->ncerts = i + 1;
        if (!json_is_object(c))
            return fail(ld, p, "must be an object {cert, key}");
        if ((rc = check_keys(ld, c, p, cert_keys)) != 0 ||
            (rc = set_str(ld, c, p, "cert", &s->certs[i].cert)) != 0 ||
            (rc = set_str(ld, c, p, "key", &s->certs[i].key)) != 0)
            return rc;
        if (s->certs[i].cert == NULL)
            return fail(ld, p, "missing \"cert\"");
        if (s->certs[i].key == NULL)
            return fail(ld, p, "missing \"key\"");
    }
    if ((s->tls_listen = strdup("0.0.0.0:8443")) == NULL)
        return nomem(ld);
    return set_addr(ld, tls, "node.tls", "listen", &s->tls_listen);
}

static int add_join(struct loader *ld, struct node_settings *s, const char *path, const char *addr,
                    size_t alen)
{
    char *a = strndup(addr, alen);
    int rc;
    if (a == NULL)
        return nomem(ld);
    if ((rc = check_addr(ld, path, a)) != 0) {
        free(a);
        return rc;
    }
    s->join[s->njoin++] = a;
    return 0;
}

/* join: a list, or one string "a:7946,b:7946" as on the command line. */
static int parse_join(struct loader *ld, const json_t *v, struct node_settings *s)
{
    char p[PATH_LEN];
    int rc;
    if (json_is_string(v)) {
        const char *str = json_string_value(v);
        size_t n = 1;
        for (const char *c = str; *c; c++)
            n += *c == ',';
        if ((s->join = calloc(n, sizeof(char *))) == NULL)
            return nomem(ld);
        while (*str != '\0') {
            size_t len = strcspn(str, ",");
            const char *a = str, *e = str + len;
            while (a < e && isspace((unsigned char)*a))
                a++;
            while (e > a && isspace((unsigned char)e[-1]))
                e--;
            if (e > a && (rc = add_join(ld, s, "node.join", a, (size_t)(e - a))) != 0)
                return rc;
            str += len + (str[len] == ',');
        }
        return 0;
    }
    if (!json_is_array(v))
        return fail(ld, "node.join", "must be a list of HOST:PORT or a string \"HOST:PORT,...\"");
    if (json_array_size(v) == 0)
        return 0;
    if ((s->join = calloc(json_array_size(v), sizeof(char *))) == NULL)
        return nomem(ld);
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *a = json_array_get(v, i);
        node_path_index(p, sizeof(p), "node.join", i);
        if (!json_is_string(a))
            return fail(ld, p, "must be a string HOST:PORT");
        if ((rc = add_join(ld, s, p, json_string_value(a), json_string_length(a))) != 0)
            return rc;
    }
    return 0;
}

static int parse_node(struct loader *ld, const json_t *node, struct node_settings *s)
{
    static const char *const keys[] = {"name",
                                       "listen",
                                       "tls",
                                       "admin",
                                       "admin_token_file",
                                       "gossip",
                                       "advertise",
                                       "join",
                                       "cluster_key_file",
                                       "data_dir",
                                       "gossip_profile",
                                       "workers",
                                       "log_level",
                                       "access_log",
                                       "header_timeout",
                                       "idle_timeout",
                                       "max_header_bytes",
                                       "max_headers",
                                       NULL};
    const json_t *v;
    enum gv_log_level level;
    int rc;

    if (node == NULL)
        return 0;
    if (!json_is_object(node))
        return fail(ld, "node", "must be an object");
    if ((rc = check_keys(ld, node, "node", keys)) != 0)
        return rc;
    if (field(node, "name") != NULL && (rc = set_str(ld, node, "node", "name", &s->name)) != 0)
        return rc;
    for (const char *c = field(node, "name") ? s->name : NULL; c != NULL && *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.')
            return fail(ld, "node.name",
                        "bad name \"%s\" (use letters, digits, \"_\", \".\", \"-\")", s->name);
    if ((rc = set_addr(ld, node, "node", "listen", &s->listen)) != 0 ||
        (rc = set_addr(ld, node, "node", "admin", &s->admin)) != 0 ||
        (rc = set_str(ld, node, "node", "admin_token_file", &s->admin_token_file)) != 0 ||
        (rc = set_addr(ld, node, "node", "gossip", &s->gossip)) != 0 ||
        (rc = set_addr(ld, node, "node", "advertise", &s->advertise)) != 0 ||
        (rc = set_str(ld, node, "node", "cluster_key_file", &s->cluster_key_file)) != 0 ||
        (rc = set_str(ld, node, "node", "data_dir", &s->data_dir)) != 0 ||
        (rc = set_str(ld, node, "node", "gossip_profile", &s->gossip_profile)) != 0)
        return rc;
    if (s->gossip_profile != NULL && strcmp(s->gossip_profile, "lan") != 0 &&
        strcmp(s->gossip_profile, "local") != 0 && strcmp(s->gossip_profile, "wan") != 0)
        return fail(ld, "node.gossip_profile", "unknown gossip_profile \"%s\" (lan, local or wan)",
                    s->gossip_profile);
    if ((v = field(node, "tls")) != NULL && (rc = parse_tls(ld, v, s)) != 0)
        return rc;
    if ((v = field(node, "join")) != NULL && (rc = parse_join(ld, v, s)) != 0)
        return rc;
    if ((v = field(node, "workers")) != NULL) {
        if (json_is_string(v) && strcmp(json_string_value(v), "auto") == 0)
            s->workers = 0;
        else if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 1024)
            s->workers = (int)json_integer_value(v);
        else
            return fail(ld, "node.workers", "must be \"auto\" or an integer from 0 to 1024");
    }
    if ((rc = set_str(ld, node, "node", "log_level", &s->log_level)) != 0)
        return rc;
    if (s->log_level != NULL && gv_log_parse_level(s->log_level, &level) != 0)
        return fail(ld, "node.log_level", "unknown log_level \"%s\" (debug, info, warn or error)",
                    s->log_level);
    if ((v = field(node, "access_log")) != NULL) {
        if (!json_is_boolean(v))
            return fail(ld, "node.access_log", "must be true or false");
        s->access_log = json_is_true(v);
    }
    if ((rc = set_duration(ld, node, "node", "header_timeout", &s->header_timeout_ms)) != 0 ||
        (rc = set_duration(ld, node, "node", "idle_timeout", &s->idle_timeout_ms)) != 0 ||
        (rc = set_uint(ld, node, "node", "max_header_bytes", 1024, 1 << 20,
                       &s->max_header_bytes)) != 0 ||
        (rc = set_uint(ld, node, "node", "max_headers", 1, 10000, &s->max_headers)) != 0)
        return rc;
    char buf[256];
    const char *path;
    const char *why = settings_problem(s, &path, buf, sizeof(buf));
    return why ? fail(ld, path, "%s", why) : 0;
}

/* ---------------------------------------------------------------------------
 * Loading
 */

/* The top level holds node: and the kinds of cluster state. */
static int check_top_keys(struct loader *ld, const json_t *root)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)root, k, v)
    {
        if (strcmp(k, "node") != 0 && gv_kind_by_name(k) == NULL)
            return report(ld, GV_EINVAL, line_of(ld, k), "", "unknown key \"%s\"", k);
    }
    return 0;
}

/* Checks and converts what y holds into *out (untouched on error). */
static int load(struct gv_yaml *y, struct node_config *out, struct node_config_error *err)
{
    struct loader ld = {.y = y, .err = err};
    struct node_config cfg;
    struct node_state_error serr;
    json_t *root = y->root, *state = NULL;
    int rc;

    memset(&cfg, 0, sizeof(cfg));
    node_settings_defaults(&cfg.node);
    err->text[0] = '\0';
    if (root != NULL && !json_is_object(root)) {
        char kinds[128];
        rc = fail(&ld, "", "the top level must be a mapping of node, %s",
                  gv_kinds_text(kinds, sizeof(kinds), " and "));
        goto fail;
    }
    if (root != NULL && ((rc = check_top_keys(&ld, root)) != 0 ||
                         (rc = parse_node(&ld, field(root, "node"), &cfg.node)) != 0))
        goto fail;
    if ((state = json_object()) == NULL) {
        rc = nomem(&ld);
        goto fail;
    }
    for (size_t i = 0; root != NULL && i < GV_KIND_COUNT; i++) {
        json_t *v = json_object_get(root, gv_kinds[i].plural);
        if (v != NULL && json_object_set(state, gv_kinds[i].plural, v) != 0) {
            rc = nomem(&ld);
            goto fail;
        }
    }
    if ((rc = node_state_from_json(state, &cfg.state, &serr)) != 0 ||
        (rc = node_state_check_files(&cfg.state, &serr)) != 0) {
        if (rc == GV_ENOMEM) {
            nomem(&ld);
            goto fail;
        }
        int line = line_of(&ld, serr.where[0] ? serr.where : serr.path);
        report(&ld, rc, line, serr.path, "%s", serr.msg);
        goto fail;
    }
    *out = cfg;
    rc = 0;
    goto done;
fail:
    node_settings_free(&cfg.node);
    node_state_free(&cfg.state);
done:
    json_decref(state);
    return rc;
}

int node_config_load_string(const char *name, const char *yaml, size_t len, struct node_config *out,
                            struct node_config_error *err)
{
    struct gv_yaml y;
    int rc = gv_yaml_load(&y, name, yaml, len, err->text, sizeof(err->text));
    if (rc == 0)
        rc = load(&y, out, err);
    gv_yaml_free(&y);
    return rc;
}

int node_config_load_file(const char *path, struct node_config *out, struct node_config_error *err)
{
    struct node_config cfg;
    struct gv_yaml y;
    int rc = gv_yaml_load_file(&y, path, err->text, sizeof(err->text));
    if (rc == 0)
        rc = load(&y, &cfg, err);
    gv_yaml_free(&y);
    if (rc != 0)
        return rc;
    if ((cfg.path = strdup(path)) == NULL) {
        node_config_free(&cfg);
        snprintf(err->text, sizeof(err->text), "%s: out of memory", path);
        return GV_ENOMEM;
    }
    *out = cfg;
    return 0;
}

void node_config_free(struct node_config *c)
{
    if (c == NULL)
        return;
    free(c->path);
    node_settings_free(&c->node);
    node_state_free(&c->state);
    memset(c, 0, sizeof(*c));
}
