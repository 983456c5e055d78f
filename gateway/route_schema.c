/* route_schema.c - a route's config as one schema table: what it matches
 * (hosts, paths and how, methods, headers), the service it sends to, and its
 * plugins (checked by gateway/plugins/chain.c). */
#include "gateway/plugins/chain.h"
#include "gateway/regex.h"
#include "gateway/router.h"
#include "common/err.h"

#include <ctype.h>
#include <llhttp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

static const struct gv_str_rule host_rule = {
    "host", "a name like api.example.com or *.example.com, no port", is_host};

static const char *const path_types[] = {"prefix", "exact", "regex", "segment_prefix", NULL};

/* methods: a list of names as bits (1 << llhttp_method_t). */
static int methods_parse(const struct gv_field *f, const json_t *v, void *member, const char *path,
                         struct gv_schema_error *err, void *ctx)
{
    char p[GV_PATH_LEN], up[32];
    uint64_t *mask = member;
    (void)f;
    (void)ctx;
    if (!json_is_array(v))
        return gv_schema_fail(err, path, "must be a list");
    *mask = 0;
    for (size_t i = 0; i < json_array_size(v); i++) {
        const char *s = json_string_value(json_array_get(v, i));
        size_t n = 0;
        gv_path_index(p, sizeof(p), path, i);
        if (s == NULL || *s == '\0')
            return gv_schema_fail(err, p, "must be a non-empty string");
        for (; s[n] != '\0' && n + 1 < sizeof(up); n++)
            up[n] = (char)toupper((unsigned char)s[n]);
        up[n] = '\0';
        if (s[n] != '\0' || gw_method_bit(up, mask) != 0)
            return gv_schema_fail(err, p, "unknown method \"%s\"", s);
    }
    return 0;
}

static json_t *methods_dump(const struct gv_field *f, const void *member)
{
    uint64_t mask = *(const uint64_t *)member;
    json_t *a = json_array();
    (void)f;
    for (int bit = 0; a != NULL && bit < 64; bit++)
        if (mask & ((uint64_t)1 << bit))
            json_array_append_new(a, json_string(llhttp_method_name((llhttp_method_t)bit)));
    return a;
}

static const struct gv_custom methods_type = {
    .type_doc = "list of methods",
    .parse = methods_parse,
    .dump = methods_dump,
};

/* Paths are judged by their type: a regex must compile, the others must be
 * absolute paths. */
static int match_check(void *obj, const char *path, struct gv_schema_error *err, void *ctx)
{
    const struct gw_route_spec *r = obj;
    char p[GV_PATH_LEN], q[GV_PATH_LEN];
    (void)ctx;
    gv_path_key(p, sizeof(p), path, "paths");
    for (size_t i = 0; i < r->npaths; i++) {
        const char *s = r->paths[i];
        gv_path_index(q, sizeof(q), p, i);
        if (r->path_type == GW_PATH_REGEX) {
            struct gw_regex *re = NULL;
            char why[160];
            int e = gw_regex_compile(s, &re, why, sizeof(why));
            gw_regex_free(re);
            if (e == GV_ENOMEM)
                return gv_schema_nomem(err);
            if (e != 0)
                return gv_schema_fail(err, q, "bad regex \"%s\": %s", s, why);
        } else if (s[0] != '/' || strpbrk(s, " \t") != NULL) {
            return gv_schema_fail(err, q, "bad path \"%s\" (must start with \"/\")", s);
        }
    }
    return 0;
}

static const struct gv_field match_fields[] = {
    GV_FIELD_STRS("hosts", struct gw_route_spec, hosts, nhosts, .rule = &host_rule,
                  .flags = GV_F_LOWER,
                  .doc = "hosts matched (lower-cased); a route with hosts beats one without"),
    GV_FIELD_STRS("paths", struct gw_route_spec, paths, npaths,
                  .doc = "paths matched as path_type says; none: every path"),
    GV_FIELD_ENUM("path_type", struct gw_route_spec, path_type, path_types, .def.s = "prefix",
                  .doc = "prefix (longest wins), segment_prefix (whole segments only), exact, or "
                         "regex (PCRE2, whole path, in order)"),
    GV_FIELD_CUSTOM("methods", struct gw_route_spec, methods, &methods_type,
                    .doc = "methods matched; none: any"),
    GV_FIELD_PAIRS("headers", struct gw_route_spec, headers, nheaders, .rule = &gv_rule_token,
                   .doc = "headers that must be present with exactly this value"),
};
static const struct gv_schema match_schema =
    GV_SCHEMA("route match", struct gw_route_spec, match_fields, .check = match_check,
              .doc = "what requests the route takes");

/* plugins: checked by their own schemas, kept as canonical JSON. */
static int plugins_parse(const struct gv_field *f, const json_t *v, void *member, const char *path,
                         struct gv_schema_error *err, void *ctx)
{
    const struct gw_route_ctx *rc = ctx;
    json_t **out = member;
    (void)f;
    json_decref(*out);
    *out = NULL;
    return gw_plugins_check(v, path, rc ? rc->consumers : NULL, out, err);
}

static json_t *plugins_dump(const struct gv_field *f, const void *member)
{
    json_t *const *list = member;
    (void)f;
    return *list ? json_deep_copy(*list) : json_array();
}

static json_t *plugins_dump_min(const struct gv_field *f, const void *member)
{
    json_t *const *list = member;
    (void)f;
    return *list ? gw_plugins_minimal(*list) : json_array();
}

static void plugins_free(const struct gv_field *f, void *member)
{
    (void)f;
    json_decref(*(json_t **)member);
    *(json_t **)member = NULL;
}

static const struct gv_custom plugins_type = {
    .type_doc = "list of plugins, each {NAME: {...}}",
    .parse = plugins_parse,
    .dump = plugins_dump,
    .free = plugins_free,
    .dump_min = plugins_dump_min,
};

static int route_check(void *obj, const char *path, struct gv_schema_error *err, void *ctx)
{
    const struct gw_route_spec *r = obj;
    const struct gw_route_ctx *rc = ctx;
    char p[GV_PATH_LEN];
    if (rc != NULL && rc->service_exists != NULL && !rc->service_exists(rc->arg, r->service)) {
        gv_path_key(p, sizeof(p), path, "service");
        return gv_schema_fail(err, p, "no service named \"%s\"", r->service);
    }
    return 0;
}

static const char *const slashes_names[] = {"refuse", "keep", "decode", NULL};
static const char *const forward_names[] = {"normalized", "original", NULL};

/* An upgrade protocol: a token; never h2c, whose tunnel would carry requests
 * past routing and plugins (h2c smuggling). */
static bool is_upgrade(const char *s)
{
    return gv_rule_token.ok(s) && strcasecmp(s, "h2c") != 0;
}

static const struct gv_str_rule upgrade_rule = {"upgrade protocol",
                                                "a token; h2c is never tunnelled", is_upgrade};

static const struct gv_field route_fields[] = {
    GV_FIELD_STR("name", struct gw_route_spec, name, .flags = GV_F_REQUIRED, .rule = &gv_rule_name,
                 .doc = "the route's name, unique"),
    GV_FIELD_INLINE_OBJ("match", &match_schema, .doc = "what requests the route takes"),
    GV_FIELD_STR("service", struct gw_route_spec, service, .flags = GV_F_REQUIRED,
                 .rule = &gv_rule_name, .doc = "the service the route sends to"),
    GV_FIELD_BOOL("strip_prefix", struct gw_route_spec, strip_prefix,
                  .doc = "take the matched prefix (or exact path) off the path sent upstream"),
    GV_FIELD_CUSTOM("plugins", struct gw_route_spec, plugins, &plugins_type,
                    .doc = "the route's plugins; one of the same name replaces a global one"),
    GV_FIELD_ENUM("escaped_slashes", struct gw_route_spec, escaped_slashes, slashes_names,
                  .def.s = "refuse",
                  .doc = "a path with %2F, %5C or a backslash: refuse (400), keep (routed "
                         "and forwarded encoded) or decode (decoded, normalised, routed again)"),
    GV_FIELD_ENUM("forward_path", struct gw_route_spec, forward_path, forward_names,
                  .def.s = "normalized",
                  .doc = "the path sent upstream: the normalised one routing saw, or the "
                         "client's original spelling"),
    GV_FIELD_STRS("upgrades", struct gw_route_spec, upgrades, nupgrades, .rule = &upgrade_rule,
                  .def.s = "websocket",
                  .doc = "protocols a client may switch to through the route (Upgrade); "
                         "others are proxied as plain requests"),
};
const struct gv_schema gw_route_schema =
    GV_SCHEMA("route", struct gw_route_spec, route_fields, .check = route_check,
              .doc = "which requests go to which service, and through which plugins");
