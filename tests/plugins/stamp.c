/* stamp.c - a test-only gateway plugin, linked into build/grapevine-test
 * only (tests/CMakeLists.txt). It exists to show that a plugin is one file
 * plus one registry line (gateway/plugins/registry.c names it weakly): with
 * nothing else, it is configurable in the YAML file and through the admin
 * API, validated by its schema, and runs on requests
 * (tests/scenario/test_plugin_extension.py). It adds `header: value` to the
 * request sent upstream and X-Stamped: value to the response. */
#include "gateway/plugins/plugin.h"

#include <string.h>

struct stamp_conf {
    char *header;
    char *value;
    int64_t times;
};

static const struct gv_field fields[] = {
    GV_FIELD_STR("header", struct stamp_conf, header, .def.s = "X-Stamp", .rule = &gv_rule_token,
                 .doc = "the header added upstream"),
    GV_FIELD_STR("value", struct stamp_conf, value, .flags = GV_F_REQUIRED, .doc = "its value"),
    GV_FIELD_INT("times", struct stamp_conf, times, 1, 3, .def.i = 1,
                 .doc = "how many copies of the header"),
};
static const struct gv_schema schema = GV_SCHEMA("test_stamp", struct stamp_conf, fields);

static int upstream_add(const void *conf, struct gw_request *r, const void *ctx,
                        struct gw_hdr_out *out)
{
    const struct stamp_conf *c = conf;
    int rv = 0;
    (void)r;
    (void)ctx;
    for (int64_t i = 0; i < c->times && rv == 0; i++)
        rv = gw_hdr_add(out, c->header, strlen(c->header), c->value, strlen(c->value));
    return rv;
}

static int response_add(const void *conf, struct gw_request *r, const void *ctx,
                        struct gw_hdr_out *out)
{
    const struct stamp_conf *c = conf;
    (void)r;
    (void)ctx;
    return gw_hdr_add(out, "X-Stamped", 9, c->value, strlen(c->value));
}

const struct gw_plugin_ops gw_plugin_test_stamp = {
    .name = "test_stamp",
    .order = 50,
    .doc = "test only: stamps requests and responses",
    .schema = &schema,
    .upstream_add = upstream_add,
    .response_add = response_add,
};
