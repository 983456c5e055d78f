/* request_headers.c - the request_headers plugin: `remove`, `set` and `add`
 * edits of the request head sent upstream (gateway/plugins/header_edits.h). */
#include "gateway/plugins/header_edits.h"
#include "gateway/plugins/plugin.h"

static bool upstream_drop(const void *conf, const struct gw_request *r, const void *ctx,
                          const char *name, size_t len)
{
    (void)r;
    (void)ctx;
    return gw_hdr_edits_drops(conf, name, len);
}

static int upstream_add(const void *conf, struct gw_request *r, const void *ctx,
                        struct gw_hdr_out *out)
{
    (void)r;
    (void)ctx;
    return gw_hdr_edits_add(conf, out);
}

const struct gw_plugin_ops gw_plugin_request_headers = {
    .name = "request_headers",
    .order = 60,
    .doc = "edit the headers sent upstream",
    .schema = &gw_hdr_edits_schema,
    .upstream_drop = upstream_drop,
    .upstream_add = upstream_add,
};
