/* service_schema.c - a service's config as one schema table (common/schema.h):
 * each key's type, range, default and meaning drive parsing, the canonical
 * JSON, the reference docs and the JSON Schema alike. */
#include "balancer/lb.h"
#include "balancer/service.h"
#include "common/err.h"
#include "common/schema.h"
#include "common/util.h"

#include <stdio.h>
#include <string.h>

/* GV_T_ENUM stores an int, in the order of hash_names. */
_Static_assert(sizeof(enum lb_hash_on) == sizeof(int), "hash_on is stored as an int");
_Static_assert(LB_HASH_IP == 0 && LB_HASH_PATH == 1 && LB_HASH_HEADER == 2 && LB_HASH_COOKIE == 3,
               "hash_names follows enum lb_hash_on");

_Static_assert(sizeof(enum lb_protocol) == sizeof(int), "protocol is stored as an int");
_Static_assert(LB_PROTO_HTTP1 == 0 && LB_PROTO_HTTP2 == 1 && LB_PROTO_GRPC == 2,
               "protocol_names follows enum lb_protocol");

/* ---- string rules -------------------------------------------------------- */

static bool is_cookie_name(const char *s)
{
    return gv_rule_token.ok(s);
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

static const struct gv_str_rule rule_cookie = {"cookie name", NULL, is_cookie_name};
static const struct gv_str_rule rule_hostname = {"host name", NULL, is_hostname};

/* ---- targets -------------------------------------------------------------- */

/* host and port are what connecting needs; the address passed
 * gv_rule_hostport, which splits it the same way. */
static int target_check(void *obj, const char *path, struct gv_schema_error *err, void *ctx)
{
    struct lb_target_spec *t = obj;
    char p[GV_PATH_LEN];
    (void)ctx;
    if (gv_split_hostport(t->address, t->host, sizeof(t->host), &t->port) != 0) {
        gv_path_key(p, sizeof(p), path, "address");
        return gv_schema_fail(err, p, "bad address \"%s\" (want HOST:PORT)", t->address);
    }
    return 0;
}

static const struct gv_field target_fields[] = {
    GV_FIELD_STR("address", struct lb_target_spec, address, .flags = GV_F_REQUIRED | GV_F_NONEMPTY,
                 .rule = &gv_rule_hostport, .doc = "the upstream server: HOST:PORT or [IPv6]:PORT"),
    GV_FIELD_INT("weight", struct lb_target_spec, weight, 1, 10000, .def.i = 1,
                 .doc = "its share of the requests, relative to the other targets' weights"),
};
static const struct gv_schema target_schema =
    GV_SCHEMA("target", struct lb_target_spec, target_fields, .check = target_check,
              .doc = "one upstream server of the service");

/* ---- balancer: a name looked up in the algorithm registry -------------------- */

static int algo_init(const struct gv_field *f, void *member)
{
    (void)f;
    *(const struct lb_ops **)member = lb_algo_default();
    return 0;
}

static int algo_parse(const struct gv_field *f, const json_t *v, void *member, const char *path,
                      struct gv_schema_error *err, void *ctx)
{
    char choices[256];
    (void)f;
    (void)ctx;
    if (!json_is_string(v))
        return gv_schema_fail(err, path, "must be a string");
    if (json_string_length(v) == 0)
        return gv_schema_fail(err, path, "must not be empty");
    if (strlen(json_string_value(v)) != json_string_length(v))
        return gv_schema_fail(err, path, "must not contain NUL bytes");
    const struct lb_ops *ops = lb_algo_find(json_string_value(v));
    if (ops == NULL) {
        lb_algo_choices(choices, sizeof(choices));
        return gv_schema_fail(err, path, "unknown balancer \"%s\" (%s)", json_string_value(v),
                              choices);
    }
    *(const struct lb_ops **)member = ops;
    return 0;
}

static json_t *algo_dump(const struct gv_field *f, const void *member)
{
    const struct lb_ops *ops = *(const struct lb_ops *const *)member;
    (void)f;
    return ops != NULL ? json_string(ops->name) : NULL;
}

static json_t *algo_json_schema(const struct gv_field *f)
{
    json_t *names = json_array();
    (void)f;
    for (size_t i = 0; i < lb_algo_count(); i++)
        json_array_append_new(names, json_string(lb_algo_at(i)->name));
    return json_pack("{ssso}", "type", "string", "enum", names);
}

static const struct gv_custom algo_type = {
    .type_doc = "algorithm name",
    .parse = algo_parse,
    .dump = algo_dump,
    .json_schema = algo_json_schema,
    .init = algo_init,
};

/* ---- health checks, passive ejection, sticky sessions, timeouts ------------- */

static int health_check(void *obj, const char *path, struct gv_schema_error *err, void *ctx)
{
    const struct lb_health_spec *h = obj;
    char p[GV_PATH_LEN], lim[32];
    (void)ctx;
    if (h->timeout_ms > h->interval_ms) {
        gv_format_duration(h->interval_ms, lim, sizeof(lim));
        gv_path_key(p, sizeof(p), path, "timeout");
        return gv_schema_fail(err, p, "must not exceed the interval (%s)", lim);
    }
    return 0;
}

static const struct gv_field health_fields[] = {
    GV_FIELD_STR("path", struct lb_health_spec, path, .flags = GV_F_NONEMPTY,
                 .def.s = LB_DEFAULT_HEALTH_PATH, .rule = &gv_rule_path,
                 .doc = "the path each probe GETs; a 2xx or 3xx answer is a success (grpc "
                        "services are asked grpc.health.v1.Health/Check instead, and pass "
                        "when SERVING)"),
    GV_FIELD_DURATION("interval", struct lb_health_spec, interval_ms, 1, 0, .def.i = 2000,
                      .doc = "time between two probes of a target"),
    GV_FIELD_DURATION("timeout", struct lb_health_spec, timeout_ms, 1, 0, .def.i = 1000,
                      .doc = "a probe without an answer by then fails; at most the interval"),
    GV_FIELD_INT("healthy", struct lb_health_spec, healthy, 1, 100, .def.i = 2,
                 .doc = "successes in a row that bring a down target back"),
    GV_FIELD_INT("unhealthy", struct lb_health_spec, unhealthy, 1, 100, .def.i = 3,
                 .doc = "failures in a row that take a target out"),
};
static const struct gv_schema health_schema =
    GV_SCHEMA("health_check", struct lb_health_spec, health_fields, .check = health_check,
              .doc = "active health checks: HTTP probes of every target");

static const struct gv_field passive_fields[] = {
    GV_FIELD_INT("failures", struct lb_passive_spec, failures, 0, 1000, .def.i = 5,
                 .doc = "failed requests in a row that eject a target; 0 never ejects"),
    GV_FIELD_DURATION("eject_for", struct lb_passive_spec, eject_for_ms, 1, 0, .def.i = 30000,
                      .doc = "how long an ejected target gets no requests"),
};
static const struct gv_schema passive_schema =
    GV_SCHEMA("passive", struct lb_passive_spec, passive_fields,
              .doc = "passive health: ejecting a target after failed requests");

static const struct gv_field sticky_fields[] = {
    GV_FIELD_STR("cookie", struct lb_sticky_spec, cookie, .flags = GV_F_NONEMPTY,
                 .def.s = LB_DEFAULT_STICKY_COOKIE, .rule = &rule_cookie,
                 .doc = "the cookie that sends a client back to the target it had"),
    GV_FIELD_DURATION("ttl", struct lb_sticky_spec, ttl_ms, 1000, 0, .def.i = 3600 * 1000,
                      .doc = "how long the cookie keeps a client on its target"),
};
static const struct gv_schema sticky_schema =
    GV_SCHEMA("sticky", struct lb_sticky_spec, sticky_fields,
              .doc = "sticky sessions: a signed cookie pins a client to a target");

static const struct gv_field timeout_fields[] = {
    GV_FIELD_DURATION("connect", struct lb_timeouts, connect_ms, 1, 0, .def.i = 1000,
                      .doc = "to open a connection to a target, TLS handshake included"),
    GV_FIELD_DURATION("read", struct lb_timeouts, read_ms, 1, 0, .def.i = 30000,
                      .doc = "longest wait for the next bytes of a target's response"),
    GV_FIELD_DURATION("write", struct lb_timeouts, write_ms, 1, 0, .def.i = 30000,
                      .doc = "longest stall sending a request (accepted, not enforced yet)"),
};
static const struct gv_schema timeout_schema = GV_SCHEMA(
    "timeouts", struct lb_timeouts, timeout_fields, .doc = "timeouts of each try at a target");

/* ---- tls: true | false | {enabled, verify, ca_file, server_name} ------------- */

/* The object form; giving it turns TLS on unless it says enabled: false. */
static const struct gv_field tls_fields[] = {
    GV_FIELD_BOOL("enabled", struct lb_tls_spec, enabled, .def.b = true,
                  .doc = "false keeps the other settings but speaks plain HTTP"),
    GV_FIELD_BOOL("verify", struct lb_tls_spec, verify, .def.b = true,
                  .doc = "check the target's certificate chain and name"),
    GV_FIELD_STR("ca_file", struct lb_tls_spec, ca_file, .flags = GV_F_NONEMPTY,
                 .doc = "PEM file of the CAs to trust instead of the system bundle"),
    GV_FIELD_STR("server_name", struct lb_tls_spec, server_name, .flags = GV_F_NONEMPTY,
                 .rule = &rule_hostname,
                 .doc = "the name sent as SNI and checked in the certificate; default: each "
                        "target's host"),
};
static const struct gv_schema tls_schema =
    GV_SCHEMA("tls", struct lb_tls_spec, tls_fields, .doc = "TLS to the service's targets");

/* Off, but with verification on should it be turned on. */
static int tls_init(const struct gv_field *f, void *member)
{
    struct lb_tls_spec *t = member;
    (void)f;
    t->enabled = false;
    t->verify = true;
    return 0;
}

static int tls_parse(const struct gv_field *f, const json_t *v, void *member, const char *path,
                     struct gv_schema_error *err, void *ctx)
{
    struct lb_tls_spec *t = member;
    (void)f;
    if (json_is_boolean(v)) {
        t->enabled = json_is_true(v);
        return 0;
    }
    if (!json_is_object(v))
        return gv_schema_fail(err, path, "must be true, false or {verify, ca_file, server_name}");
    gv_schema_free(&tls_schema, t);
    return gv_schema_parse(&tls_schema, v, t, path, err, ctx);
}

/* Only when on, and without "enabled": {verify, ca_file?, server_name?}. */
static json_t *tls_dump(const struct gv_field *f, const void *member)
{
    const struct lb_tls_spec *t = member;
    (void)f;
    if (!t->enabled)
        return NULL;
    json_t *o = gv_schema_dump(&tls_schema, t);
    if (o != NULL)
        json_object_del(o, "enabled");
    return o;
}

static void tls_free(const struct gv_field *f, void *member)
{
    (void)f;
    gv_schema_free(&tls_schema, member);
}

static json_t *tls_json_schema(const struct gv_field *f)
{
    (void)f;
    return json_pack("{s[{ss}o]}", "oneOf", "type", "boolean", gv_schema_json_schema(&tls_schema));
}

static const struct gv_custom tls_type = {
    .type_doc = "true, false or {enabled, verify, ca_file, server_name}",
    .parse = tls_parse,
    .dump = tls_dump,
    .free = tls_free,
    .json_schema = tls_json_schema,
    .init = tls_init,
};

/* ---- the service ------------------------------------------------------------ */

static const char *const hash_names[] = {"ip", "path", "header:", "cookie:", NULL};
static const char *const protocol_names[] = {"http1", "http2", "grpc", NULL};

/* Checks across targets: one address is one target (its health and
 * ejection are kept by address). */
static int service_check(void *obj, const char *path, struct gv_schema_error *err, void *ctx)
{
    const struct lb_service_spec *s = obj;
    char p[GV_PATH_LEN], q[GV_PATH_LEN];
    (void)ctx;
    for (size_t i = 1; i < s->ntargets; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s->targets[j].address, s->targets[i].address) != 0)
                continue;
            gv_path_key(p, sizeof(p), path, "targets");
            gv_path_index(q, sizeof(q), p, i);
            gv_path_key(p, sizeof(p), q, "address");
            return gv_schema_fail(err, p, "duplicate target \"%s\"", s->targets[i].address);
        }
    }
    return 0;
}

static const struct gv_field service_fields[] = {
    GV_FIELD_STR("name", struct lb_service_spec, name, .flags = GV_F_REQUIRED | GV_F_NONEMPTY,
                 .max = 128, .rule = &gv_rule_name,
                 .doc = "what routes call the service; also its label in metrics"),
    GV_FIELD_OBJS("targets", struct lb_service_spec, targets, ntargets, &target_schema,
                  .flags = GV_F_REQUIRED | GV_F_NONEMPTY,
                  .doc = "the upstream servers the requests are spread over"),
    GV_FIELD_DURATION("resolve_every", struct lb_service_spec, resolve_every_ms, 100, 86400000,
                      .def.i = 5000,
                      .doc = "how often a target named by host name is looked up again (and "
                             "soon after a connect to it fails); each of its addresses is a "
                             "target"),
    GV_FIELD_CUSTOM("balancer", struct lb_service_spec, algo, &algo_type,
                    .doc = "how a target is chosen for each request: the name of a balancing "
                           "algorithm; by default the first the registry lists"),
    GV_FIELD_KEYED_ENUM("hash_on", struct lb_service_spec, hash_on, hash_key, hash_names,
                        .doc = "what a hashing balancer keys on: the client address, the path, "
                               "a request header or a cookie"),
    GV_FIELD_OPT_OBJ("health_check", struct lb_service_spec, health, health.enabled, &health_schema,
                     .doc = "probe the targets; given (even {}), checks are on"),
    GV_FIELD_OBJ("passive", struct lb_service_spec, passive, &passive_schema,
                 .doc = "eject a target after failed requests"),
    GV_FIELD_OPT_OBJ("sticky", struct lb_service_spec, sticky, sticky.enabled, &sticky_schema,
                     .doc = "keep each client on one target; given (even {}), it is on"),
    GV_FIELD_INT("retries", struct lb_service_spec, retries, 0, 10, .def.i = 2,
                 .doc = "further tries on other targets after a failed try, for idempotent "
                        "requests whose response has not started"),
    GV_FIELD_ENUM("protocol", struct lb_service_spec, protocol, protocol_names,
                  .flags = GV_F_OMIT_FIRST,
                  .doc = "what the targets speak: http1, http2 (h2c, or h2 by ALPN with tls; "
                         "requests multiplexed over a few connections per target) or grpc "
                         "(the same; errors the gateway makes are gRPC statuses)"),
    GV_FIELD_OBJ("timeouts", struct lb_service_spec, timeouts, &timeout_schema,
                 .doc = "timeouts of each try"),
    GV_FIELD_CUSTOM("tls", struct lb_service_spec, tls, &tls_type,
                    .doc = "speak TLS to the targets; off by default"),
};

const struct gv_schema lb_service_schema =
    GV_SCHEMA("service", struct lb_service_spec, service_fields, .check = service_check,
              .doc = "an upstream service: its targets and how requests are spread over them");
