/* cors.c - the cors plugin: cross-origin requests from browsers.
 *
 * A preflight (OPTIONS with Origin and Access-Control-Request-Method) is
 * answered here with 204 and the Access-Control-Allow-* headers, never
 * proxied; a preflight from an origin not allowed gets 403. An actual request
 * from an allowed origin is proxied and its response (or the gateway's own
 * answer: a 401, a 429) gets Access-Control-Allow-Origin (and -Credentials,
 * -Expose-Headers), so the browser lets the page read it; one from another
 * origin is proxied untouched, so the browser withholds the answer.
 */
#include "gateway/plugins/plugin.h"

#include <ctype.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* max_age: a duration, or absent (no Access-Control-Max-Age sent). The
 * schema gives a custom field no default, so absent is the zero value. */
struct cors_max_age {
    bool set;
    uint64_t ms;
};

struct cors_conf {
    char **origins;
    size_t norigins;
    char **methods;
    size_t nmethods;
    char **headers;
    size_t nheaders;
    char **expose;
    size_t nexpose;
    bool credentials;
    struct cors_max_age max_age;
    /* prepared */
    bool any_origin;
    char *methods_text, *headers_text, *expose_text; /* joined by ", " */
};

struct cors_ctx {
    uint32_t origin_off, origin_len; /* the allowed Origin, in the request head */
    bool allowed;
    bool preflight;
};

/* An origin is "*" or scheme://host[:port] with nothing after it: browsers
 * send exactly that in Origin, and it is compared as a string. */
static bool is_origin(const char *s)
{
    const char *host;
    if (strcmp(s, "*") == 0)
        return true;
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

static const struct gv_str_rule origin_rule = {"origin", "* or scheme://host[:port]", is_origin};

static int max_age_parse(const struct gv_field *f, const json_t *v, void *member, const char *path,
                         struct gv_schema_error *err, void *ctx)
{
    uint64_t ms;
    (void)f;
    (void)ctx;
    if (gv_json_duration(v, &ms) != 0 || ms > 365ULL * 24 * 3600 * 1000)
        return gv_schema_fail(err, path, "must be a duration like \"250ms\", \"2s\" or \"1m\"");
    *(struct cors_max_age *)member = (struct cors_max_age){.set = true, .ms = ms};
    return 0;
}

static json_t *max_age_dump(const struct gv_field *f, const void *member)
{
    const struct cors_max_age *m = member;
    char buf[32];
    (void)f;
    if (!m->set)
        return NULL;
    gv_format_duration(m->ms, buf, sizeof(buf));
    return json_string(buf);
}

static const struct gv_custom max_age_type = {
    .type_doc = "duration (absent: not sent)",
    .parse = max_age_parse,
    .dump = max_age_dump,
};

static const struct gv_field fields[] = {
    GV_FIELD_STRS("origins", struct cors_conf, origins, norigins, .rule = &origin_rule,
                  .doc = "allowed origins (scheme://host[:port]) or \"*\"; none: any"),
    GV_FIELD_STRS("methods", struct cors_conf, methods, nmethods, .rule = &gv_rule_token,
                  .doc = "Access-Control-Allow-Methods (default GET, HEAD, PUT, PATCH, POST, "
                         "DELETE)"),
    GV_FIELD_STRS("headers", struct cors_conf, headers, nheaders, .rule = &gv_rule_token,
                  .doc = "allowed request headers (none: whatever the preflight asks)"),
    GV_FIELD_STRS("expose_headers", struct cors_conf, expose, nexpose, .rule = &gv_rule_token,
                  .doc = "Access-Control-Expose-Headers"),
    GV_FIELD_BOOL("credentials", struct cors_conf, credentials,
                  .doc = "allow credentials (cookies); \"*\" then echoes the origin"),
    GV_FIELD_CUSTOM("max_age", struct cors_conf, max_age, &max_age_type,
                    .doc = "how long browsers may cache a preflight"),
};

static const struct gv_schema schema = GV_SCHEMA("cors", struct cors_conf, fields);

/* v joined by ", ", or dflt (NULL: none) when v is empty. */
static char *joined(char *const *v, size_t n, const char *dflt)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += strlen(v[i]) + 2;
    if (n == 0)
        return dflt ? strdup(dflt) : NULL;
    char *s = malloc(len + 1);
    if (s == NULL)
        return NULL;
    s[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            strcat(s, ", ");
        strcat(s, v[i]);
    }
    return s;
}

static void release(void *conf)
{
    struct cors_conf *c = conf;
    free(c->methods_text);
    free(c->headers_text);
    free(c->expose_text);
}

static int prepare(void *conf, const struct gw_plugin_env *env, struct gv_schema_error *err)
{
    struct cors_conf *c = conf;
    (void)env;
    c->any_origin = c->norigins == 0;
    for (size_t i = 0; i < c->norigins; i++)
        c->any_origin |= strcmp(c->origins[i], "*") == 0;
    c->methods_text = joined(c->methods, c->nmethods, "GET, HEAD, PUT, PATCH, POST, DELETE");
    c->headers_text = joined(c->headers, c->nheaders, NULL);
    c->expose_text = joined(c->expose, c->nexpose, NULL);
    if (c->methods_text == NULL || (c->nheaders && c->headers_text == NULL) ||
        (c->nexpose && c->expose_text == NULL))
        return gv_schema_nomem(err);
    return 0;
}

static bool origin_ok(const struct cors_conf *c, const char *origin, size_t len)
{
    if (c->any_origin)
        return true;
    for (size_t i = 0; i < c->norigins; i++)
        if (strlen(c->origins[i]) == len && strncasecmp(c->origins[i], origin, len) == 0)
            return true;
    return false;
}

static enum gw_plugin_verdict on_request(const void *conf, struct gw_request *r, void *ctx)
{
    const struct cors_conf *c = conf;
    struct cors_ctx *x = ctx;
    size_t olen, mlen;
    const char *origin = gw_request_header(r, "origin", &olen);
    if (origin == NULL)
        return GW_PLUGIN_NEXT; /* not a cross-origin request */
    bool ok = origin_ok(c, origin, olen);
    const char *method = gw_request_header(r, "access-control-request-method", &mlen);
    x->allowed = ok;
    x->origin_off = (uint32_t)(origin - r->head.data);
    x->origin_len = (uint32_t)olen;
    if (r->method != HTTP_OPTIONS || method == NULL)
        return GW_PLUGIN_NEXT;
    if (!ok) {
        gw_request_fail(r, 403, "CORS origin not allowed");
        return GW_PLUGIN_ANSWERED;
    }
    x->preflight = true;
    gw_request_answer(r, 204, NULL, 0); /* the Allow-* headers come from response_add */
    return GW_PLUGIN_ANSWERED;
}

/* Access-Control-Allow-Origin (+ Vary, + -Credentials). A wildcard config
 * answers "*" unless credentials are on: browsers refuse "*" with them, so
 * the origin is echoed instead. */
static int allow_origin(const struct cors_conf *c, const char *origin, size_t len,
                        struct gw_hdr_out *out)
{
    int rv;
    if (c->any_origin && !c->credentials)
        return gw_hdr_add(out, "Access-Control-Allow-Origin", 27, "*", 1);
    rv = gw_hdr_add(out, "Access-Control-Allow-Origin", 27, origin, len);
    rv = rv ? rv : gw_hdr_add(out, "Vary", 4, "Origin", 6);
    if (rv == 0 && c->credentials)
        rv = gw_hdr_add(out, "Access-Control-Allow-Credentials", 32, "true", 4);
    return rv;
}

static int preflight_headers(const struct cors_conf *c, const struct gw_request *r,
                             struct gw_hdr_out *out)
{
    size_t hlen = 0;
    char age[32];
    const char *asked = gw_request_header(r, "access-control-request-headers", &hlen);
    int rv = gw_hdr_add(out, "Access-Control-Allow-Methods", 28, c->methods_text,
                        strlen(c->methods_text));
    if (c->headers_text != NULL)
        rv = rv ? rv
                : gw_hdr_add(out, "Access-Control-Allow-Headers", 28, c->headers_text,
                             strlen(c->headers_text));
    else if (asked != NULL && hlen > 0)
        rv = rv ? rv : gw_hdr_add(out, "Access-Control-Allow-Headers", 28, asked, hlen);
    if (c->max_age.set) {
        int n = snprintf(age, sizeof(age), "%llu", (unsigned long long)(c->max_age.ms / 1000));
        rv = rv ? rv : gw_hdr_add(out, "Access-Control-Max-Age", 22, age, (size_t)n);
    }
    return rv;
}

static int response_add(const void *conf, struct gw_request *r, const void *ctx,
                        struct gw_hdr_out *out)
{
    const struct cors_conf *c = conf;
    const struct cors_ctx *x = ctx;
    if (x == NULL || !x->allowed)
        return 0;
    int rv = allow_origin(c, r->head.data + x->origin_off, x->origin_len, out);
    if (rv == 0 && x->preflight)
        return preflight_headers(c, r, out);
    if (rv == 0 && c->expose_text != NULL)
        rv = gw_hdr_add(out, "Access-Control-Expose-Headers", 29, c->expose_text,
                        strlen(c->expose_text));
    return rv;
}

const struct gw_plugin_ops gw_plugin_cors = {
    .name = "cors",
    .order = 7,
    .doc = "answers CORS preflights and lets allowed origins read responses",
    .schema = &schema,
    .prepare = prepare,
    .release = release,
    .ctx_size = sizeof(struct cors_ctx),
    .on_request = on_request,
    .response_add = response_add,
};
