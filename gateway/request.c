/* request.c - the protocol-neutral request: head lookups, identity and the
 * plugins' context slots; see request.h. (Answers live with the codec.) */
#include "gateway/request.h"
#include "gateway/pipeline.h"
#include "gateway/plugins/chain.h"
#include "gateway/snapshot.h"
#include "common/err.h"
#include "gateway/path.h"
#include "common/util.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

const char *gw_request_header(const struct gw_request *r, const char *name, size_t *len)
{
    for (uint32_t i = 0; i < r->hdrs.n; i++) {
        const struct gw_header *h = &r->hdrs.v[i];
        if (gw_name_eq(r->head.data + h->name_off, h->name_len, name)) {
            *len = h->value_len;
            return r->head.data + h->value_off;
        }
    }
    return NULL;
}

const char *gw_request_target(const struct gw_request *r, size_t *len)
{
    *len = r->url_len;
    return r->head.data ? r->head.data + r->url_off : "";
}

const char *gw_request_raw_path(const struct gw_request *r, size_t *len)
{
    const char *t = gw_request_target(r, len);
    const char *q = memchr(t, '?', *len);
    if (q != NULL)
        *len = (size_t)(q - t);
    return t;
}

const char *gw_request_path(const struct gw_request *r, size_t *len)
{
    if (!r->path_norm)
        return gw_request_raw_path(r, len);
    *len = r->npath.len;
    return r->npath.data;
}

long gw_request_query_param(const struct gw_request *r, const char *name, char *buf, size_t n)
{
    size_t tlen;
    const char *url = gw_request_target(r, &tlen), *end = url + tlen;
    const char *q = memchr(url, '?', tlen);
    size_t nl = strlen(name);
    while (q != NULL && q < end) {
        const char *p = q + 1, *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        q = amp;
        if ((size_t)(pe - p) <= nl || memcmp(p, name, nl) != 0 || p[nl] != '=')
            continue;
        long len = gv_percent_decode(p + nl + 1, (size_t)(pe - p - nl - 1), buf, n, true);
        return len > 0 ? len : -1;
    }
    return -1;
}

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

const char *gw_request_route_name(const struct gw_request *r)
{
    const struct gw_snapshot *s = r->view ? r->view->snap : NULL;
    return (s != NULL && r->route >= 0) ? s->routes[r->route].name : "";
}

bool gw_request_id_valid(const char *v, size_t len)
{
    if (len == 0 || len >= GW_REQUEST_ID)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)v[i]) && v[i] != '-' && v[i] != '_' && v[i] != '.')
            return false;
    return true;
}

bool gw_request_set_id(struct gw_request *r, const char *v, size_t len)
{
    if (v == NULL || !gw_request_id_valid(v, len))
        return false;
    memcpy(r->request_id, v, len);
    r->request_id[len] = '\0';
    return true;
}

void gw_request_new_id(struct gw_request *r)
{
    gv_hex64(gv_rand64(), r->request_id);
    gv_hex64(gv_rand64(), r->request_id + 16);
    r->request_id[32] = '\0';
}

void gw_request_set_consumer(struct gw_request *r, const char *name)
{
    r->consumer = name;
}

void gw_request_hide_query(struct gw_request *r, const char *name)
{
    if (r->nhide_query < GW_HIDE_QUERY)
        r->hide_query[r->nhide_query++] = name;
}

void *gw_request_ctx(struct gw_request *r, int slot, size_t size)
{
    if (slot < 0 || slot >= GW_CTX_SLOTS)
        return NULL;
    if (r->ctx_live & (1u << slot))
        return r->ctx[slot];
    size_t at = ((size_t)r->ctx_used + 15) & ~(size_t)15;
    if (at + size > sizeof(r->ctx_mem))
        return NULL;
    void *p = r->ctx_mem + at;
    memset(p, 0, size);
    r->ctx_used = (uint32_t)(at + size);
    r->ctx[slot] = p;
    r->ctx_live |= 1u << slot;
    return p;
}

/* ---- header sinks --------------------------------------------------------- */

static int h1_add(struct gw_hdr_out *o, const char *name, size_t nlen, const char *value,
                  size_t vlen)
{
    struct gv_buf *b = o->data;
    int rv = gv_buf_put2(b, name, nlen, ": ", 2);
    return rv ? rv : gv_buf_put2(b, value, vlen, "\r\n", 2);
}

void gw_hdr_out_h1(struct gw_hdr_out *o, struct gv_buf *b)
{
    o->add = h1_add;
    o->data = b;
}
