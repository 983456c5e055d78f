/* router.c - compiles route specs into a read-only table and picks the best
 * route for a request without allocating. */
#include "gateway/router.h"
#include "common/err.h"
#include "gateway/regex.h"
#include "gateway/router_int.h"

#include <llhttp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* llhttp_method_t values are 0..HTTP_QUERY; all fit in the 64-bit mask. */
#define METHOD_MAX HTTP_QUERY

/* A shared spec: the copy that owns the contents (own.shared points back
 * here, so it is a copy like the others) and how many holds there are. */
struct gw_route_shared {
    atomic_size_t holds;
    struct gw_route_spec own;
};

void gw_route_spec_release(const struct gw_route_spec *r)
{
    struct gw_route_shared *sh = r->shared;
    if (atomic_fetch_sub_explicit(&sh->holds, 1, memory_order_acq_rel) == 1) {
        gv_schema_free(&gw_route_schema, &sh->own);
        free(sh);
    }
}

void gw_route_spec_retain(const struct gw_route_spec *r)
{
    atomic_fetch_add_explicit(&r->shared->holds, 1, memory_order_relaxed);
}

void gw_route_spec_free(struct gw_route_spec *r)
{
    if (r == NULL)
        return;
    if (r->shared != NULL)
        gw_route_spec_release(r);
    else
        gv_schema_free(&gw_route_schema, r);
    memset(r, 0, sizeof(*r));
}

const struct gw_route_spec *gw_route_spec_share(struct gw_route_spec *r)
{
    struct gw_route_shared *sh = malloc(sizeof(*sh));
    if (sh == NULL)
        return NULL;
    sh->own = *r;
    sh->own.shared = sh;
    atomic_init(&sh->holds, 1);
    memset(r, 0, sizeof(*r));
    return &sh->own;
}

void gw_route_spec_hold(const struct gw_route_spec *r, struct gw_route_spec *to)
{
    gw_route_spec_retain(r);
    *to = *r;
}

int gw_method_bit(const char *name, uint64_t *mask)
{
    if (name == NULL)
        return GV_EINVAL;
    for (int m = 0; m <= METHOD_MAX; m++) {
        if (strcmp(name, llhttp_method_name((llhttp_method_t)m)) == 0) {
            *mask |= (uint64_t)1 << m;
            return 0;
        }
    }
    return GV_EINVAL;
}

static void route_free(struct rt_route *rt)
{
    for (size_t i = 0; i < rt->nregexes; i++)
        gw_regex_free(rt->regexes[i]);
    free(rt->regexes);
    free(rt->paths);
    free(rt->hosts);
    free(rt->hdr_names);
    free(rt->hdr_values);
}

void gw_router_free(struct gw_router *r)
{
    if (r == NULL)
        return;
    rt_index_free(r);
    for (size_t i = 0; i < r->n; i++)
        route_free(&r->routes[i]);
    free(r->routes);
    free(r);
}

/* Each compile step fills one part of rt from the spec of routes[idx]; an
 * error names the offending field in err. They return 0, GV_EINVAL or
 * GV_ENOMEM, and leave what they allocated in rt for route_free. */

static int compile_hosts(const struct gw_route_spec *spec, size_t idx, struct rt_route *rt,
                         char *err, size_t errlen)
{
    if (spec->nhosts > 0) {
        rt->hosts = calloc(spec->nhosts, sizeof(*rt->hosts));
        if (rt->hosts == NULL)
            return GV_ENOMEM;
    }
    for (size_t j = 0; j < spec->nhosts; j++) {
        const char *h = spec->hosts[j];
        if (h == NULL || h[0] == '\0') {
            snprintf(err, errlen, "routes[%zu].match.hosts[%zu]: empty host", idx, j);
            return GV_EINVAL;
        }
        struct rt_host *rh = &rt->hosts[rt->nhosts++];
        if (h[0] == '*' && h[1] == '.' && h[2] != '\0') {
            rh->s = h + 1; /* keep the dot: "*.a.com" must not match "xa.com" */
            rh->wildcard = true;
        } else {
            rh->s = h;
        }
        rh->len = strlen(rh->s);
    }
    return 0;
}

static int compile_regexes(const struct gw_route_spec *spec, size_t idx, struct rt_route *rt,
                           char *err, size_t errlen)
{
    rt->regexes = calloc(spec->npaths, sizeof(*rt->regexes));
    if (rt->regexes == NULL)
        return GV_ENOMEM;
    for (size_t j = 0; j < spec->npaths; j++) {
        if (spec->paths[j] == NULL) {
            snprintf(err, errlen, "routes[%zu].match.paths[%zu]: missing path", idx, j);
            return GV_EINVAL;
        }
        char why[160];
        int rc = gw_regex_compile(spec->paths[j], &rt->regexes[j], why, sizeof(why));
        if (rc != 0) {
            snprintf(err, errlen, "routes[%zu].match.paths[%zu]: %s", idx, j,
                     rc == GV_ENOMEM ? "out of memory" : why);
            return rc;
        }
        rt->nregexes++;
    }
    return 0;
}

/* Prefix and exact paths; max_len is what the route can score at best. */
static int compile_literals(const struct gw_route_spec *spec, size_t idx, struct rt_route *rt,
                            char *err, size_t errlen)
{
    rt->paths = calloc(spec->npaths, sizeof(*rt->paths));
    if (rt->paths == NULL)
        return GV_ENOMEM;
    for (size_t j = 0; j < spec->npaths; j++) {
        if (spec->paths[j] == NULL) {
            snprintf(err, errlen, "routes[%zu].match.paths[%zu]: missing path", idx, j);
            return GV_EINVAL;
        }
        rt->paths[j].s = spec->paths[j];
        rt->paths[j].len = strlen(spec->paths[j]);
    }
    return 0;
}

static int compile_paths(const struct gw_route_spec *spec, size_t idx, struct rt_route *rt,
                         char *err, size_t errlen)
{
    int rc = 0;
    if (spec->npaths == 0) {
        rt->kind = RT_ANY;
    } else if (spec->path_type == GW_PATH_REGEX) {
        rt->kind = RT_REGEX;
        rc = compile_regexes(spec, idx, rt, err, errlen);
    } else {
        rt->kind = spec->path_type == GW_PATH_EXACT ? RT_EXACT : RT_PREFIX;
        rt->segments = spec->path_type == GW_PATH_SEGMENTS;
        rc = compile_literals(spec, idx, rt, err, errlen);
    }
    if (rc == 0)
        rt->npaths = spec->npaths;
    return rc;
}

static int compile_headers(const struct gw_route_spec *spec, size_t idx, struct rt_route *rt,
                           char *err, size_t errlen)
{
    if (spec->nheaders > 0) {
        rt->hdr_names = calloc(spec->nheaders, sizeof(*rt->hdr_names));
        rt->hdr_values = calloc(spec->nheaders, sizeof(*rt->hdr_values));
        if (rt->hdr_names == NULL || rt->hdr_values == NULL)
            return GV_ENOMEM;
    }
    for (size_t j = 0; j < spec->nheaders; j++) {
        const struct gv_pair *hm = &spec->headers[j];
        if (hm->name == NULL || hm->name[0] == '\0' || hm->value == NULL) {
            snprintf(err, errlen, "routes[%zu].match.headers[%zu]: missing name or value", idx, j);
            return GV_EINVAL;
        }
        rt->hdr_names[j].s = hm->name;
        rt->hdr_names[j].len = strlen(hm->name);
        rt->hdr_values[j].s = hm->value;
        rt->hdr_values[j].len = strlen(hm->value);
    }
    rt->nheaders = spec->nheaders;
    return 0;
}

static int route_compile(const struct gw_route_spec *spec, size_t idx, struct rt_route *rt,
                         char *err, size_t errlen)
{
    int rc;
    rt->methods = spec->methods;
    rt->strip_prefix = spec->strip_prefix;
    if ((rc = compile_hosts(spec, idx, rt, err, errlen)) != 0 ||
        (rc = compile_paths(spec, idx, rt, err, errlen)) != 0)
        return rc;
    return compile_headers(spec, idx, rt, err, errlen);
}

int gw_router_build(const struct gw_route_spec *routes, size_t n, struct gw_router **out, char *err,
                    size_t errlen)
{
    char scratch[1];
    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof(scratch);
    }
    err[0] = '\0';
    int rc = GV_ENOMEM;
    struct gw_router *r = calloc(1, sizeof(*r));
    if (r == NULL)
        goto fail;
    if (n > 0) {
        r->routes = calloc(n, sizeof(*r->routes));
        if (r->routes == NULL)
            goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        r->n = i + 1; /* so gw_router_free releases a half-built route too */
        rc = route_compile(&routes[i], i, &r->routes[i], err, errlen);
        if (rc != 0)
            goto fail;
    }
    if ((rc = rt_index_build(r)) != 0)
        goto fail;
    *out = r;
    return 0;

fail:
    if (rc == GV_ENOMEM && err[0] == '\0')
        snprintf(err, errlen, "out of memory");
    gw_router_free(r);
    return rc;
}

/* The request host without a ":port" (and without a trailing dot), so a
 * caller that forgot to strip it still matches. "[v6]:port" keeps "[v6]". */
static size_t host_len_without_port(const char *h, size_t len)
{
    size_t i = len;
    while (i > 0 && h[i - 1] >= '0' && h[i - 1] <= '9')
        i--;
    if (i > 0 && i < len && h[i - 1] == ':') {
        size_t colon = i - 1;
        /* A bare IPv6 literal has more colons and is not bracketed: keep it. */
        if (h[0] == '[' ? (colon > 0 && h[colon - 1] == ']') : memchr(h, ':', colon) == NULL)
            len = colon;
    }
    if (len > 1 && h[len - 1] == '.')
        len--;
    return len;
}

bool rt_filters_pass(const struct rt_route *rt, const struct rt_req *q)
{
    if (rt->methods != 0 && (rt->methods & q->mbit) == 0)
        return false;
    for (size_t i = 0; i < rt->nheaders; i++) {
        if (q->view->header == NULL)
            return false;
        size_t vlen = 0;
        const char *v = q->view->header(q->view->header_ctx, rt->hdr_names[i].s, &vlen);
        if (v == NULL || vlen != rt->hdr_values[i].len || memcmp(v, rt->hdr_values[i].s, vlen) != 0)
            return false;
    }
    return true;
}

/* A regex must match the whole path (gateway/regex.h anchors both ends). */
bool rt_regex_match(const struct rt_route *rt, const char *path, size_t len)
{
    for (size_t i = 0; i < rt->nregexes; i++)
        if (gw_regex_match(rt->regexes[i], path, len))
            return true;
    return false;
}

bool gw_router_match(const struct gw_router *r, const struct gw_request_view *req,
                     struct gw_route_match *m)
{
    struct rt_req q = {
        .host = req->host != NULL ? req->host : "",
        .hlen = req->host != NULL ? host_len_without_port(req->host, req->host_len) : 0,
        .path = req->path != NULL ? req->path : "",
        .plen = req->path != NULL ? req->path_len : 0,
        .mbit = req->method >= 0 && req->method <= METHOD_MAX ? (uint64_t)1 << req->method : 0,
        .view = req,
    };
    return rt_index_match(r, &q, m);
}
