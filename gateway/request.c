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

void gw_request_identify(struct gw_request *r)
{
    size_t n = 0;
    const char *v = gw_request_header(r, "x-request-id", &n);
    if (!gw_request_set_id(r, v, n))
        gw_request_new_id(r);
    v = gw_request_header(r, "traceparent", &n);
    gw_trace_begin(&r->trace, v, n);
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
