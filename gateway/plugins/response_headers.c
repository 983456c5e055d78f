/* response_headers.c - the response_headers plugin: `remove`, `set` and
 * `add` edits of every response head sent to the client, the gateway's own
 * answers included (gateway/plugins/header_edits.h). */
#include "gateway/plugins/header_edits.h"
#include "gateway/plugins/plugin.h"

static bool response_drop(const void *conf, const struct gw_request *r, const void *ctx,
                          const char *name, size_t len)
{
    (void)r;
    (void)ctx;
    return gw_hdr_edits_drops(conf, name, len);
}

static int response_add(const void *conf, struct gw_request *r, const void *ctx,
                        struct gw_hdr_out *out)
{
    (void)r;
    (void)ctx;
    return gw_hdr_edits_add(conf, out);
}

const struct gw_plugin_ops gw_plugin_response_headers = {
    .name = "response_headers",
    .order = 70,
    .doc = "edit the headers of responses to the client",
    .schema = &gw_hdr_edits_schema,
    .response_drop = response_drop,
    .response_add = response_add,
};
