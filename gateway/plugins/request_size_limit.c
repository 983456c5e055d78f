/* request_size_limit.c - the request_size_limit plugin: 413 before the
 * upstream sees a byte past max_bytes.
 *
 * A Content-Length over the limit is refused with the head, before any
 * upstream is picked (and before a 100 Continue). A chunked (or any) body is
 * counted as it streams: the codec counts each chunk into the request's
 * body_seen and runs the body phase before handing the chunk to the proxy,
 * so the chunk that crosses the limit is never forwarded; the upstream
 * exchange is aborted.
 */
#include "gateway/plugins/plugin.h"

#include <stdint.h>

struct size_conf {
    int64_t max_bytes;
};

static const struct gv_field fields[] = {
    GV_FIELD_INT("max_bytes", struct size_conf, max_bytes, 1, INT64_MAX, .flags = GV_F_REQUIRED,
                 .doc = "the largest request body accepted, in bytes"),
};
static const struct gv_schema schema = GV_SCHEMA("request_size_limit", struct size_conf, fields);

static bool over(const struct size_conf *c, const struct gw_request *r)
{
    uint64_t max = (uint64_t)c->max_bytes;
    return (r->has_length && r->content_length > max) || r->body_seen > max;
}

static enum gw_plugin_verdict on_request(const void *conf, struct gw_request *r, void *ctx)
{
    (void)ctx;
    /* body_seen: body bytes that came in the same read as the head. */
    if (!over(conf, r))
        return GW_PLUGIN_NEXT;
    gw_request_fail(r, 413, "request body too large");
    return GW_PLUGIN_ANSWERED;
}

static enum gw_plugin_verdict on_body(const void *conf, struct gw_request *r, void *ctx,
                                      const char *data, size_t len)
{
    (void)ctx;
    (void)data;
    (void)len; /* already counted in body_seen */
    return on_request(conf, r, NULL);
}

const struct gw_plugin_ops gw_plugin_request_size_limit = {
    .name = "request_size_limit",
    .order = 40,
    .doc = "413 for a request body over max_bytes, before the upstream sees it",
    .schema = &schema,
    .on_request = on_request,
    .on_body = on_body,
};
