/* route.c - routing a request: its path normalised (gateway/path.h), its
 * route found with the worker's current config, the route's rules on
 * escaped slashes and upgrades applied, its plugin chain chosen. Kept apart
 * from request.c, whose lookups plugins use without a worker. */
#include "gateway/path.h"
#include "gateway/pipeline.h"
#include "gateway/plugins/chain.h"
#include "gateway/request.h"
#include "gateway/snapshot.h"
#include "common/err.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static const char *view_header(void *ctx, const char *name, size_t *len)
{
    return gw_request_header(ctx, name, len);
}

/* The raw path's normal form into r->npath (when it needs work). 0, or -1
 * when the path cannot be normalised; *flags: GW_PATH_*. */
static int normalize_path(struct gw_request *r, bool decode_slashes, unsigned *flags)
{
    size_t plen;
    const char *path = gw_request_raw_path(r, &plen);
    *flags = 0;
    if (plen == 0) { /* an absolute-form target without a path */
        path = "/";
        plen = 1;
    } else if (!decode_slashes && !gw_path_needs_normalizing(path, plen)) {
        r->path_norm = false;
        return 0;
    }
    gv_buf_reset(&r->npath);
    if (gv_buf_reserve(&r->npath, plen + 1) != 0)
        return -1;
    long n = gw_path_normalize(path, plen, r->npath.data, plen + 1, decode_slashes, flags);
    if (n < 0)
        return -1;
    r->npath.len = (size_t)n;
    r->npath.data[n] = '\0';
    r->path_norm = true;
    return 0;
}

/* Matches the request against the view's router; sets route, strip length
 * and service. False when no route matches. */
static bool match_route(struct gw_request *r, const char *host, size_t hlen)
{
    char hbuf[256];
    size_t hn = 0, plen;
    /* Host without port, lower-cased, for matching. */
    for (size_t i = 0; host != NULL && i < hlen && hn < sizeof(hbuf) - 1; i++) {
        if (host[i] == ':' && memchr(host, ']', hlen) == NULL)
            break;
        hbuf[hn++] = (char)tolower((unsigned char)host[i]);
    }
    hbuf[hn] = '\0';
    const char *path = gw_request_path(r, &plen);
    struct gw_request_view rv = {
        .method = r->method,
        .host = hbuf,
        .host_len = hn,
        .path = path,
        .path_len = plen,
        .header = view_header,
        .header_ctx = r,
    };
    struct gw_route_match m;
    if (!gw_router_match(r->view->snap->router, &rv, &m))
        return false;
    r->route = (int)m.route;
    r->strip_len = m.strip_len;
    r->service = r->view->snap->route_service[m.route];
    return true;
}

static const struct gw_route_spec *route_spec(const struct gw_request *r)
{
    return &r->view->snap->routes[r->route];
}

/* An encoded slash or backslash: refused, kept, or decoded and routed again
 * on the decoded path (whose route must allow decoding too). 0 or answered. */
static int escaped_slashes(struct gw_request *r, const char *host, size_t hlen)
{
    unsigned flags;
    int mode = route_spec(r)->escaped_slashes;
    if (mode == GW_SLASHES_KEEP)
        return 0;
    if (mode == GW_SLASHES_DECODE && normalize_path(r, true, &flags) == 0 &&
        match_route(r, host, hlen) && route_spec(r)->escaped_slashes == GW_SLASHES_DECODE)
        return 0;
    gw_request_fail(r, 400, "encoded slash or backslash in the path");
    return GV_EINVAL;
}

/* An upgrade is tunnelled only to a protocol the route lists; another is
 * proxied as a plain request (Upgrade is hop-by-hop) and the connection
 * closed after it, so nothing after it can pass as tunnel bytes. */
static void judge_upgrade(struct gw_request *r)
{
    size_t ul;
    const char *u = gw_request_header(r, "upgrade", &ul);
    const struct gw_route_spec *spec = route_spec(r);
    if (!r->upgrade)
        return;
    for (size_t i = 0; u != NULL && i < spec->nupgrades; i++)
        if (strlen(spec->upgrades[i]) == ul && strncasecmp(u, spec->upgrades[i], ul) == 0)
            return;
    r->upgrade = false;
    r->upgrade_refused = true;
}

int gw_request_route(struct gw_request *r, const char *host, size_t hlen)
{
    unsigned flags;
    r->view = gw_worker_view(r->worker);
    if (r->view == NULL) {
        gw_request_fail(r, 503, "no configuration loaded");
        return GV_ENOENT;
    }
    if (normalize_path(r, false, &flags) != 0) {
        gw_request_fail(r, 400, "bad request path");
        return GV_EINVAL;
    }
    if (!match_route(r, host, hlen)) {
        gw_request_fail(r, 404, "no route matched");
        return GV_ENOENT;
    }
    if ((flags & GW_PATH_ESCAPED_SLASH) && escaped_slashes(r, host, hlen) != 0)
        return GV_EINVAL;
    judge_upgrade(r);
    const struct gw_pipeline *p = r->view->snap->pipeline;
    r->chain = p != NULL && (size_t)r->route < p->nroutes ? &p->routes[r->route] : NULL;
    return 0;
}
