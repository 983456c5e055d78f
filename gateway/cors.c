/* cors.c - the cors plugin ({origins?, methods?, headers?, expose_headers?,
 * credentials?, max_age?}).
 *
 * A preflight (OPTIONS with Origin and Access-Control-Request-Method) is
 * answered here with 204 and the Access-Control-Allow-* headers, never
 * proxied; a preflight from an origin not allowed gets 403. An actual request
 * from an allowed origin is proxied and its response gets
 * Access-Control-Allow-Origin (and -Credentials, -Expose-Headers); one from
 * another origin is proxied untouched, so the browser withholds the answer.
 */
#include "gateway/http_plugins.h"
#include "gateway/pipeline.h"

#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool gw_cors_origin_ok(const struct gw_cors_conf *c, const char *origin, size_t len)
{
    if (c->any_origin)
        return true;
    for (char **o = c->origins; o != NULL && *o != NULL; o++)
        if (strlen(*o) == len && strncasecmp(*o, origin, len) == 0)
            return true;
    return false;
}

void gw_cors_free(void *conf)
{
    struct gw_cors_conf *c = conf;
    if (c == NULL)
        return;
    for (char **o = c->origins; o != NULL && *o != NULL; o++)
        free(*o);
    free(c->origins);
    free(c->methods);
    free(c->headers);
    free(c->expose);
    free(c);
}

/* Access-Control-Allow-Origin (+ Vary, + -Credentials). A wildcard config
 * answers "*" unless credentials are on: browsers refuse "*" with them, so
 * the origin is echoed instead. */
static int allow_origin(const struct gw_cors_conf *c, const char *origin, size_t len,
                        struct gv_buf *b)
{
    int rv;
    if (c->any_origin && !c->credentials)
        return gv_buf_puts(b, "Access-Control-Allow-Origin: *\r\n");
    rv =
        gv_buf_printf(b, "Access-Control-Allow-Origin: %.*s\r\nVary: Origin\r\n", (int)len, origin);
    if (rv == 0 && c->credentials)
        rv = gv_buf_puts(b, "Access-Control-Allow-Credentials: true\r\n");
    return rv;
}

static enum gw_plugin_verdict cors_request_headers(const void *conf, struct gw_request *r)
{
    const struct gw_cors_conf *c = conf;
    size_t olen, mlen, hlen = 0;
    const char *origin = gw_request_header(r, "origin", &olen);
    if (origin == NULL)
        return GW_PLUGIN_NEXT; /* not a cross-origin request */
    bool ok = gw_cors_origin_ok(c, origin, olen);
    const char *method = gw_request_header(r, "access-control-request-method", &mlen);
    if (r->method != HTTP_OPTIONS || method == NULL) {
        if (ok) {
            r->cors = c;
            r->cors_origin_off = (uint32_t)(origin - r->head.data);
            r->cors_origin_len = (uint32_t)olen;
        }
        return GW_PLUGIN_NEXT;
    }
    if (!ok) {
        gw_request_fail(r, 403, "CORS origin not allowed");
        return GW_PLUGIN_ANSWERED;
    }
    const char *asked = gw_request_header(r, "access-control-request-headers", &hlen);
    struct gv_buf b;
    gv_buf_init(&b);
    int rv = allow_origin(c, origin, olen, &b);
    rv = rv ? rv : gv_buf_printf(&b, "Access-Control-Allow-Methods: %s\r\n", c->methods);
    if (c->headers != NULL)
        rv = rv ? rv : gv_buf_printf(&b, "Access-Control-Allow-Headers: %s\r\n", c->headers);
    else if (asked != NULL && hlen > 0)
        rv =
            rv ? rv : gv_buf_printf(&b, "Access-Control-Allow-Headers: %.*s\r\n", (int)hlen, asked);
    if (c->max_age_s >= 0)
        rv = rv ? rv : gv_buf_printf(&b, "Access-Control-Max-Age: %lld\r\n", c->max_age_s);
    rv = rv ? rv : gv_buf_append(&b, "", 1); /* NUL-terminated for gw_request_answer */
    if (rv != 0)
        gw_request_fail(r, 500, "out of memory");
    else
        gw_request_answer(r, 204, b.data);
    gv_buf_free(&b);
    return GW_PLUGIN_ANSWERED;
}

static int cors_response_headers(const void *conf, struct gw_request *r, struct gv_buf *head)
{
    const struct gw_cors_conf *c = conf;
    if (r->cors == NULL)
        return 0;
    int rv = allow_origin(c, r->head.data + r->cors_origin_off, r->cors_origin_len, head);
    if (rv == 0 && c->expose != NULL)
        rv = gv_buf_printf(head, "Access-Control-Expose-Headers: %s\r\n", c->expose);
    return rv;
}

const struct gw_plugin_ops gw_plugin_cors = {
    .name = "cors",
    .order = 7,
    .on_request_headers = cors_request_headers,
    .on_response_headers = cors_response_headers,
    .free_conf = gw_cors_free,
};
