/* settings.c - the node: section as one field table: each row names a key,
 * its type, its default and its one-line doc; see settings.h. */
#include "node/config/settings.h"

#include "common/err.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define DAY_MS  (24ULL * 3600 * 1000)
#define HOUR_MS (3600ULL * 1000)

/* A list field's count sits at aux_off, beside the list at off. */
static size_t *count_of(const struct gv_field *f, void *member)
{
    return (size_t *)((char *)member - f->off + f->aux_off);
}

static const size_t *count_of_const(const struct gv_field *f, const void *member)
{
    return (const size_t *)((const char *)member - f->off + f->aux_off);
}

static json_t *string_schema(const struct gv_field *f)
{
    (void)f;
    return json_pack("{ss}", "type", "string");
}

/* ---- text: a non-empty one-line string, checked by the field's rule ------- */

/* v as a fresh string in *out; wrong says what it must be otherwise. */
static int take_text(const struct gv_field *f, const json_t *v, const char *path, const char *wrong,
                     struct gv_schema_error *err, char **out)
{
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v))
        return gv_schema_fail(err, path, "%s", wrong);
    const char *s = json_string_value(v);
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return gv_schema_fail(err, path, "must not contain control characters (CR, LF, ...)");
    if (f->rule != NULL && !f->rule->ok(s))
        return gv_schema_fail(err, path, "bad %s \"%s\" (%s)", f->rule->what, s, f->rule->want);
    if ((*out = strdup(s)) == NULL)
        return gv_schema_nomem(err);
    return 0;
}

static int text_parse(const struct gv_field *f, const json_t *v, void *member, const char *path,
                      struct gv_schema_error *err, void *ctx)
{
    char *s;
    int rc = take_text(f, v, path, "must be a non-empty string", err, &s);
    (void)ctx;
    if (rc != 0)
        return rc;
    free(*(char **)member);
    *(char **)member = s;
    return 0;
}

static json_t *text_dump(const struct gv_field *f, const void *member)
{
    (void)f;
    const char *s = *(char *const *)member;
    return s ? json_string(s) : NULL;
}

static void text_free(const struct gv_field *f, void *member)
{
    (void)f;
    free(*(char **)member);
}

static const struct gv_custom text_type = {
    .type_doc = "string",
    .parse = text_parse,
    .dump = text_dump,
    .free = text_free,
    .json_schema = string_schema,
};

static const struct gv_custom address_type = {
    .type_doc = "HOST:PORT",
    .parse = text_parse,
    .dump = text_dump,
    .free = text_free,
    .json_schema = string_schema,
};

/* ---- choice: one of .names (any case), kept as written -------------------- */

static void choices(const struct gv_field *f, char *buf, size_t n)
{
    size_t k = 0, used = 0;
    while (f->names[k] != NULL)
        k++;
    buf[0] = '\0';
    for (size_t i = 0; i < k && used < n; i++) {
        int w = snprintf(buf + used, n - used, "%s%s",
                         i == 0       ? ""
                         : i + 1 == k ? " or "
                                      : ", ",
                         f->names[i]);
        used += w > 0 ? (size_t)w : 0;
    }
}

static int choice_parse(const struct gv_field *f, const json_t *v, void *member, const char *path,
                        struct gv_schema_error *err, void *ctx)
{
    char *s, list[128];
    int rc = take_text(f, v, path, "must be a non-empty string", err, &s);
    (void)ctx;
    if (rc != 0)
        return rc;
    for (size_t i = 0; f->names[i] != NULL; i++) {
        if (strcasecmp(s, f->names[i]) == 0) {
            free(*(char **)member);
            *(char **)member = s;
            return 0;
        }
    }
    choices(f, list, sizeof(list));
    rc = gv_schema_fail(err, path, "unknown %s \"%s\" (%s)", f->name, s, list);
    free(s);
    return rc;
}

static json_t *choice_schema(const struct gv_field *f)
{
    json_t *names = json_array();
    for (size_t i = 0; f->names[i] != NULL; i++)
        json_array_append_new(names, json_string(f->names[i]));
    return json_pack("{ssso}", "type", "string", "enum", names);
}

static const struct gv_custom log_level_type = {
    .type_doc = "debug, info, warn or error",
    .parse = choice_parse,
    .dump = text_dump,
    .free = text_free,
    .json_schema = choice_schema,
};

static const struct gv_custom profile_type = {
    .type_doc = "lan, local or wan",
    .parse = choice_parse,
    .dump = text_dump,
    .free = text_free,
    .json_schema = choice_schema,
};

/* ---- timeout: a duration more than 0 and at most .max ms ------------------- */

static int timeout_parse(const struct gv_field *f, const json_t *v, void *member, const char *path,
                         struct gv_schema_error *err, void *ctx)
{
    uint64_t ms;
    char max[32];
    (void)ctx;
    if (gv_json_duration(v, &ms) != 0) {
        if (json_is_string(v))
            return gv_schema_fail(err, path, "bad duration \"%s\" (use e.g. 250ms, 2s, 1m)",
                                  json_string_value(v));
        return gv_schema_fail(err, path, "must be a duration like \"250ms\", \"2s\" or \"1m\"");
    }
    if (ms == 0 || ms > (uint64_t)f->max) {
        gv_format_duration((uint64_t)f->max, max, sizeof(max));
        return gv_schema_fail(err, path, "must be more than 0 and at most %s", max);
    }
    if (ms < (uint64_t)f->min) {
        gv_format_duration((uint64_t)f->min, max, sizeof(max));
        return gv_schema_fail(err, path, "must be at least %s", max);
    }
    *(uint64_t *)member = ms;
    return 0;
}

static json_t *timeout_dump(const struct gv_field *f, const void *member)
{
    char buf[32];
    (void)f;
    gv_format_duration(*(const uint64_t *)member, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *timeout_schema(const struct gv_field *f)
{
    (void)f;
    return json_pack("{s[{ss}{ss}]}", "oneOf", "type", "string", "type", "integer");
}

static const struct gv_custom timeout_type = {
    .type_doc = "duration",
    .parse = timeout_parse,
    .dump = timeout_dump,
    .json_schema = timeout_schema,
};

/* A delay: a timeout that may be 0 (none). */
static int delay_parse(const struct gv_field *f, const json_t *v, void *member, const char *path,
                       struct gv_schema_error *err, void *ctx)
{
    uint64_t ms;
    if (gv_json_duration(v, &ms) == 0 && ms == 0) {
        *(uint64_t *)member = 0;
        return 0;
    }
    return timeout_parse(f, v, member, path, err, ctx);
}

static const struct gv_custom delay_type = {
    .type_doc = "duration",
    .parse = delay_parse,
    .dump = timeout_dump,
    .json_schema = timeout_schema,
};

/* ---- workers: "auto" (0) or a count --------------------------------------- */

static int workers_parse(const struct gv_field *f, const json_t *v, void *member, const char *path,
                         struct gv_schema_error *err, void *ctx)
{
    (void)ctx;
    if (json_is_string(v) && strcmp(json_string_value(v), "auto") == 0)
        *(int *)member = 0;
    else if (json_is_integer(v) && json_integer_value(v) >= f->min &&
             json_integer_value(v) <= f->max)
        *(int *)member = (int)json_integer_value(v);
    else
        return gv_schema_fail(err, path,
                              "must be \"auto\" or an integer from %" PRId64 " to %" PRId64, f->min,
                              f->max);
    return 0;
}

static json_t *workers_dump(const struct gv_field *f, const void *member)
{
    (void)f;
    int w = *(const int *)member;
    return w == 0 ? json_string("auto") : json_integer(w);
}

static json_t *workers_schema(const struct gv_field *f)
{
    return json_pack("{s[{ss}{sssIsI}]}", "oneOf", "const", "auto", "type", "integer", "minimum",
                     (json_int_t)f->min, "maximum", (json_int_t)f->max);
}

static const struct gv_custom workers_type = {
    .type_doc = "`auto` or integer 0..1024",
    .parse = workers_parse,
    .dump = workers_dump,
    .json_schema = workers_schema,
};

/* ---- join: a list of HOST:PORT, or one string "a:1,b:2" as on the command
 * line; the count is at aux_off ---------------------------------------------- */

static void join_free(const struct gv_field *f, void *member)
{
    char **list = *(char ***)member;
    size_t *n = count_of(f, member);
    for (size_t i = 0; i < *n; i++)
        free(list[i]);
    free(list);
    *(char ***)member = NULL;
    *n = 0;
}

/* Appends addr (alen bytes) to the list, checked as a HOST:PORT at path. */
static int join_add(const struct gv_field *f, void *member, const char *path, const char *addr,
                    size_t alen, struct gv_schema_error *err)
{
    char **list = *(char ***)member;
    size_t *n = count_of(f, member);
    char *a = strndup(addr, alen);
    if (a == NULL)
        return gv_schema_nomem(err);
    if (!gv_rule_hostport.ok(a)) {
        int rc = gv_schema_fail(err, path, "bad address \"%s\" (want HOST:PORT)", a);
        free(a);
        return rc;
    }
    list[(*n)++] = a;
    return 0;
}

static int join_parse(const struct gv_field *f, const json_t *v, void *member, const char *path,
                      struct gv_schema_error *err, void *ctx)
{
    char p[GV_PATH_LEN];
    size_t cap;
    int rc;
    (void)ctx;
    join_free(f, member);
    if (json_is_string(v)) {
        const char *str = json_string_value(v);
        cap = 1;
        for (const char *c = str; *c; c++)
            cap += *c == ',';
    } else if (json_is_array(v)) {
        cap = json_array_size(v);
    } else {
        return gv_schema_fail(err, path,
                              "must be a list of HOST:PORT or a string \"HOST:PORT,...\"");
    }
    if (cap == 0)
        return 0;
    if ((*(char ***)member = calloc(cap, sizeof(char *))) == NULL)
        return gv_schema_nomem(err);
    if (json_is_string(v)) {
        const char *str = json_string_value(v);
        while (*str != '\0') {
            size_t len = strcspn(str, ",");
            const char *a = str, *e = str + len;
            while (a < e && isspace((unsigned char)*a))
                a++;
            while (e > a && isspace((unsigned char)e[-1]))
                e--;
            if (e > a && (rc = join_add(f, member, path, a, (size_t)(e - a), err)) != 0)
                return rc;
            str += len + (str[len] == ',');
        }
        return 0;
    }
    for (size_t i = 0; i < cap; i++) {
        const json_t *a = json_array_get(v, i);
        gv_path_index(p, sizeof(p), path, i);
        if (!json_is_string(a))
            return gv_schema_fail(err, p, "must be a string HOST:PORT");
        if ((rc = join_add(f, member, p, json_string_value(a), json_string_length(a), err)) != 0)
            return rc;
    }
    return 0;
}

static json_t *join_dump(const struct gv_field *f, const void *member)
{
    char *const *list = *(char **const *)member;
    size_t n = *count_of_const(f, member);
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++)
        json_array_append_new(a, json_string(list[i]));
    return a;
}

static json_t *join_schema(const struct gv_field *f)
{
    (void)f;
    return json_pack("{s[{sss{ss}}{ss}]}", "oneOf", "type", "array", "items", "type", "string",
                     "type", "string");
}

static const struct gv_custom join_type = {
    .type_doc = "list of HOST:PORT, or \"HOST:PORT,...\"",
    .parse = join_parse,
    .dump = join_dump,
    .free = join_free,
    .json_schema = join_schema,
};

/* ---- node.tls ----------------------------------------------------------------- */

static const struct gv_field cert_fields[] = {
    GV_FIELD_CUSTOM("cert", struct node_tls_cert, cert, &text_type, .flags = GV_F_REQUIRED,
                    .doc = "PEM file with the certificate chain, leaf first"),
    GV_FIELD_CUSTOM("key", struct node_tls_cert, key, &text_type, .flags = GV_F_REQUIRED,
                    .doc = "PEM file with its private key"),
};
static const struct gv_schema cert_schema = GV_SCHEMA(
    "certificate", struct node_tls_cert, cert_fields, .doc = "One certificate and its key");

static void certs_free(const struct gv_field *f, void *member)
{
    struct node_tls_cert *certs = *(struct node_tls_cert **)member;
    size_t *n = count_of(f, member);
    for (size_t i = 0; i < *n; i++)
        gv_schema_free(&cert_schema, &certs[i]);
    free(certs);
    *(struct node_tls_cert **)member = NULL;
    *n = 0;
}

static int certs_parse(const struct gv_field *f, const json_t *v, void *member, const char *path,
                       struct gv_schema_error *err, void *ctx)
{
    char p[GV_PATH_LEN];
    size_t *n = count_of(f, member);
    certs_free(f, member);
    if (!json_is_array(v) || json_array_size(v) == 0)
        return gv_schema_fail(err, path, "must be a non-empty list of {cert, key}");
    struct node_tls_cert *certs = calloc(json_array_size(v), sizeof(*certs));
    if (certs == NULL)
        return gv_schema_nomem(err);
    *(struct node_tls_cert **)member = certs;
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *c = json_array_get(v, i);
        gv_path_index(p, sizeof(p), path, i);
        if (!json_is_object(c))
            return gv_schema_fail(err, p, "must be an object {cert, key}");
        *n = i + 1;
        int rc = gv_schema_parse(&cert_schema, c, &certs[i], p, err, ctx);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static json_t *certs_dump(const struct gv_field *f, const void *member)
{
    const struct node_tls_cert *certs = *(struct node_tls_cert *const *)member;
    size_t n = *count_of_const(f, member);
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++)
        json_array_append_new(a, gv_schema_dump(&cert_schema, &certs[i]));
    return a;
}

static json_t *certs_schema(const struct gv_field *f)
{
    (void)f;
    return json_pack("{sssosi}", "type", "array", "items", gv_schema_json_schema(&cert_schema),
                     "minItems", 1);
}

static const struct gv_custom certs_type = {
    .type_doc = "list of {cert, key}",
    .parse = certs_parse,
    .dump = certs_dump,
    .free = certs_free,
    .json_schema = certs_schema,
};

static int custom_default(const struct gv_field *f, void *obj);

static const struct gv_field tls_fields[] = {
    GV_FIELD_CUSTOM("listen", struct node_tls_settings, listen, &address_type,
                    .rule = &gv_rule_hostport, .def.s = "0.0.0.0:8443",
                    .doc = "Where the proxy takes TLS connections"),
    GV_FIELD_CUSTOM("certificates", struct node_tls_settings, certs, &certs_type,
                    .aux_off = offsetof(struct node_tls_settings, ncerts), .flags = GV_F_REQUIRED,
                    .doc = "Certificates to serve, chosen by the names in them (SNI); the first "
                           "is the default"),
};

/* listen takes its default once tls is given, not before. */
static int tls_check(void *obj, const char *path, struct gv_schema_error *err, void *ctx)
{
    struct node_tls_settings *t = obj;
    (void)path, (void)ctx;
    if (t->listen == NULL && custom_default(&tls_fields[0], t) != 0)
        return gv_schema_nomem(err);
    return 0;
}

static const struct gv_schema tls_schema =
    GV_SCHEMA("tls", struct node_tls_settings, tls_fields, .check = tls_check,
              .doc = "TLS termination on a listener of its own; off unless given");

/* ---- the node: section ------------------------------------------------------- */

static bool is_node_name(const char *s)
{
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
            return false;
    return true;
}

static const struct gv_str_rule node_name_rule = {
    "name", "use letters, digits, \"_\", \".\", \"-\"", is_node_name};

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const gossip_profiles[] = {"lan", "local", "wan", NULL};

static int settings_check(void *obj, const char *path, struct gv_schema_error *err, void *ctx);

#define S struct node_settings
static const struct gv_field settings_fields[] = {
    GV_FIELD_CUSTOM("name", S, name, &text_type, .rule = &node_name_rule,
                    .doc = "This node's name in the cluster, its logs and metrics (default: the "
                           "host name)"),
    GV_FIELD_CUSTOM("listen", S, listen, &address_type, .rule = &gv_rule_hostport,
                    .def.s = "0.0.0.0:8080", .doc = "Where the proxy takes HTTP connections"),
    GV_FIELD_OPT_OBJ("tls", S, tls, tls_given, &tls_schema,
                     .doc = "TLS termination on a listener of its own; off unless given"),
    GV_FIELD_CUSTOM("admin", S, admin, &address_type, .rule = &gv_rule_hostport,
                    .def.s = "127.0.0.1:9901",
                    .doc = "Where the admin API, /metrics and the dashboard listen"),
    GV_FIELD_CUSTOM("admin_token_file", S, admin_token_file, &text_type,
                    .doc = "File with the admin API's bearer token; required when admin is not "
                           "on loopback"),
    GV_FIELD_CUSTOM("admin_body_timeout", S, admin_body_timeout_ms, &timeout_type, .max = DAY_MS,
                    .def.s = "30s",
                    .doc = "Time an admin API client has to send a request body once its head "
                           "is in (its head has header_timeout, and keep-alive idle_timeout)"),
    GV_FIELD_INT("admin_max_connections", S, admin_max_connections, 1, 65536, .def.i = 256,
                 .doc = "Open admin API connections; more are closed as they come"),
    GV_FIELD_CUSTOM("gossip", S, gossip, &address_type, .rule = &gv_rule_hostport,
                    .doc = "Where the gossip mesh (nng, TCP) listens (default 0.0.0.0:7946 with "
                           "a cluster key, 127.0.0.1:7946 without one)"),
    GV_FIELD_BOOL("insecure_gossip", S, insecure_gossip,
                  .doc = "Let gossip listen off loopback without a cluster key: any host that "
                         "reaches it can then change every route (logged loudly)"),
    GV_FIELD_CUSTOM("advertise", S, advertise, &address_type, .rule = &gv_rule_hostport,
                    .doc = "How other nodes reach this one (default: the gossip address; when "
                           "gossip listens on all addresses, $POD_IP with the gossip port, else "
                           "the host name with it)"),
    GV_FIELD_CUSTOM("join", S, join, &join_type, .aux_off = offsetof(S, njoin),
                    .doc = "Members to join through; names that resolve to several addresses "
                           "name them all and are re-resolved"),
    GV_FIELD_CUSTOM("join_every", S, join_every_ms, &timeout_type, .min = 100, .max = HOUR_MS,
                    .def.s = "30s",
                    .doc = "Once joined, how often the join names are looked up again; every "
                           "address not yet a live member is contacted (100ms .. 1h)"),
    GV_FIELD_CUSTOM("cluster_key_file", S, cluster_key_file, &text_type,
                    .doc = "File with the gossip key (base64 of 32 bytes): AES-256-GCM on every "
                           "message; without it gossip is not encrypted"),
    GV_FIELD_CUSTOM("data_dir", S, data_dir, &text_type,
                    .doc = "Where the replicated cluster state is saved; without it a restarted "
                           "node relies on its peers"),
    GV_FIELD_CUSTOM("gossip_profile", S, gossip_profile, &profile_type, .names = gossip_profiles,
                    .doc = "Gossip timings: lan, local (one host) or wan (default: lan)"),
    GV_FIELD_CUSTOM("workers", S, workers, &workers_type, .min = 0, .max = 1024, .def.s = "auto",
                    .doc = "Proxy worker threads: auto is one per core"),
    GV_FIELD_CUSTOM("log_level", S, log_level, &log_level_type, .names = log_levels,
                    .def.s = "info",
                    .doc = "Least severe log lines written (stderr); SIGHUP re-reads it"),
    GV_FIELD_BOOL("access_log", S, access_log, .def.b = true,
                  .doc = "A JSON line per request on stdout"),
    GV_FIELD_CUSTOM("header_timeout", S, header_timeout_ms, &timeout_type, .max = DAY_MS,
                    .def.s = "10s", .doc = "Time a client has to send a whole request head"),
    GV_FIELD_CUSTOM("idle_timeout", S, idle_timeout_ms, &timeout_type, .max = DAY_MS, .def.s = "1m",
                    .doc = "Time a keep-alive client connection may sit idle"),
    GV_FIELD_CUSTOM("shutdown_delay", S, shutdown_delay_ms, &delay_type, .max = 5 * 60 * 1000,
                    .def.s = "0s",
                    .doc = "After SIGTERM, how long to keep accepting and serving while /ready "
                           "answers 503, before the listeners close and in-flight requests "
                           "drain: the time load balancers take to stop sending (0s .. 5m)"),
    GV_FIELD_INT("max_header_bytes", S, max_header_bytes, 1024, 1 << 20, .def.i = 16384,
                 .doc = "Largest request line and headers taken from a client"),
    GV_FIELD_INT("max_headers", S, max_headers, 1, 10000, .def.i = 100,
                 .doc = "Most header fields taken in one request"),
};
#undef S

const struct gv_schema node_settings_schema =
    GV_SCHEMA("node", struct node_settings, settings_fields, .check = settings_check,
              .doc = "This node only; never gossiped");

/* ---- defaults ------------------------------------------------------------------- */

/* A custom field's default is its .def.s read like a config value, so the
 * table states it once, as a user would write it. */
static int custom_default(const struct gv_field *f, void *obj)
{
    struct gv_schema_error err;
    if (f->type != GV_T_CUSTOM || f->def.s == NULL)
        return 0;
    json_t *v = json_string(f->def.s);
    int rc = v ? f->custom->parse(f, v, (char *)obj + f->off, f->name, &err, NULL) : GV_ENOMEM;
    json_decref(v);
    return rc;
}

void node_settings_defaults(struct node_settings *s)
{
    char host[256];
    memset(s, 0, sizeof(*s));
    gv_schema_defaults(&node_settings_schema, s);
    for (size_t i = 0; i < GV_ARRAY_LEN(settings_fields); i++)
        custom_default(&settings_fields[i], s);
    if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "grapevine");
    host[sizeof(host) - 1] = '\0';
    s->name = strdup(host);
}

void node_settings_free(struct node_settings *s)
{
    if (s != NULL)
        gv_schema_free(&node_settings_schema, s);
}

/* ---- the settings as a whole ------------------------------------------------------ */

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
 * (overrides from the command line never went through the table), and an
 * admin API off loopback needs a token. *path is the setting concerned; the
 * message may be written into buf. */
static const char *settings_problem(const struct node_settings *s, const char **path, char *buf,
                                    size_t len)
{
    const struct {
        const char *path;
        const char *addr;
    } addrs[] = {{"node.listen", s->listen},
                 {"node.tls.listen", s->tls.listen},
                 {"node.admin", s->admin},
                 {"node.gossip", s->gossip},
                 {"node.advertise", s->advertise}};
    for (size_t i = 0; i < GV_ARRAY_LEN(addrs); i++) {
        if (addrs[i].addr != NULL && !gv_rule_hostport.ok(addrs[i].addr)) {
            *path = addrs[i].path;
            snprintf(buf, len, "bad address \"%.200s\" (want HOST:PORT)", addrs[i].addr);
            return buf;
        }
    }
    for (size_t i = 0; i < s->njoin; i++) {
        if (!gv_rule_hostport.ok(s->join[i])) {
            *path = "node.join";
            snprintf(buf, len, "bad address \"%.200s\" (want HOST:PORT)", s->join[i]);
            return buf;
        }
    }
    *path = "node.admin";
    if (s->admin != NULL && !is_loopback(s->admin) && s->admin_token_file == NULL)
        return "admin_token_file is required when admin is not on loopback";
    /* The same rule for the mesh, which can change every route. */
    *path = "node.gossip";
    if (s->gossip != NULL && !is_loopback(s->gossip) && s->cluster_key_file == NULL &&
        !s->insecure_gossip)
        return "cluster_key_file is required when gossip is not on loopback "
               "(or insecure_gossip: true)";
    return NULL;
}

static int settings_check(void *obj, const char *path, struct gv_schema_error *err, void *ctx)
{
    char buf[256];
    const char *where;
    (void)path, (void)ctx;
    const char *why = settings_problem(obj, &where, buf, sizeof(buf));
    return why ? gv_schema_fail(err, where, "%s", why) : 0;
}

int node_settings_default_gossip(struct node_settings *s)
{
    if (s->gossip != NULL)
        return 0;
    s->gossip = strdup(s->cluster_key_file != NULL ? "0.0.0.0:7946" : "127.0.0.1:7946");
    return s->gossip != NULL ? 0 : GV_ENOMEM;
}

int node_settings_check(const struct node_settings *s, struct node_config_error *err)
{
    char buf[256];
    const char *path;
    const char *why = settings_problem(s, &path, buf, sizeof(buf));
    if (why == NULL)
        return 0;
    snprintf(err->text, sizeof(err->text), "%s: %s", path, why);
    return GV_EINVAL;
}
