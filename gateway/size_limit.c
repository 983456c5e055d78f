/* size_limit.c - the request_size_limit plugin ({max_bytes}): 413 before the
 * upstream sees a byte past the limit.
 *
 * A Content-Length over the limit is refused with the head, before any
 * upstream is picked (and before a 100 Continue). A chunked (or any) body is
 * counted as it streams: conn.c counts each chunk into r->body_seen and runs
 * the body phase before handing the chunk to the proxy, so the chunk that
 * crosses the limit is never forwarded; the upstream exchange is aborted.
 */
#include "gateway/http_plugins.h"
#include "gateway/pipeline.h"

#include <stdlib.h>

bool gw_size_over(const struct gw_size_limit_conf *c, bool has_length, uint64_t content_length,
                  uint64_t seen)
{
    return (has_length && content_length > c->max_bytes) || seen > c->max_bytes;
}

static enum gw_plugin_verdict sl_request_headers(const void *conf, struct gw_request *r)
{
    /* body_seen: body bytes that came in the same read as the head. */
    if (!gw_size_over(conf, r->has_length, r->content_length, r->body_seen))
        return GW_PLUGIN_NEXT;
    gw_request_fail(r, 413, "request body too large");
    return GW_PLUGIN_ANSWERED;
}

static enum gw_plugin_verdict sl_request_body(const void *conf, struct gw_request *r,
                                              const char *data, size_t len)
{
    (void)data;
    (void)len; /* already counted in r->body_seen */
    if (!gw_size_over(conf, false, 0, r->body_seen))
        return GW_PLUGIN_NEXT;
    gw_request_fail(r, 413, "request body too large");
    return GW_PLUGIN_ANSWERED;
}

static void sl_free(void *conf)
{
    free(conf);
}

const struct gw_plugin_ops gw_plugin_request_size_limit = {
    .name = "request_size_limit",
    .order = 40,
    .on_request_headers = sl_request_headers,
    .on_request_body = sl_request_body,
    .free_conf = sl_free,
};
