/* request_id.c - the request_id plugin: which header carries the request's
 * id, whether a client's id is kept, and the id sent upstream and back.
 *
 * Every request has an id from its head on (the codec keeps a valid
 * X-Request-Id, else makes a random one), used in error bodies and the
 * access log. This plugin sends it upstream in its header (replacing the
 * client's) and echoes it on every response, the gateway's own included.
 */
#include "gateway/plugins/plugin.h"

#include <string.h>
#include <strings.h>

struct rid_conf {
    char *header;
    bool pass_through;
    bool echo;
    bool codec_rule; /* X-Request-Id with pass_through: what the codec did already */
};

static const struct gv_field fields[] = {
    GV_FIELD_STR("header", struct rid_conf, header, .def.s = "X-Request-Id", .rule = &gv_rule_token,
                 .max = 127, .doc = "the header that carries the id"),
    GV_FIELD_BOOL("pass_through", struct rid_conf, pass_through, .def.b = true,
                  .doc = "keep a client's id when it is 1-64 of [A-Za-z0-9._-]"),
    GV_FIELD_BOOL("echo", struct rid_conf, echo, .def.b = true,
                  .doc = "send the id back on the response"),
};
static const struct gv_schema schema = GV_SCHEMA("request_id", struct rid_conf, fields);

static int prepare(void *conf, const struct gw_plugin_env *env, struct gv_schema_error *err)
{
    struct rid_conf *c = conf;
    (void)env;
    (void)err;
    c->codec_rule = c->pass_through && strcasecmp(c->header, "X-Request-Id") == 0;
    return 0;
}

static enum gw_plugin_verdict on_request(const void *conf, struct gw_request *r, void *ctx)
{
    const struct rid_conf *c = conf;
    size_t n;
    (void)ctx;
    if (c->codec_rule)
        return GW_PLUGIN_NEXT; /* the codec applied this very rule to the head */
    const char *v = c->pass_through ? gw_request_header(r, c->header, &n) : NULL;
    if (!gw_request_set_id(r, v, v ? n : 0))
        gw_request_new_id(r);
    return GW_PLUGIN_NEXT;
}

static bool upstream_drop(const void *conf, const struct gw_request *r, const void *ctx,
                          const char *name, size_t len)
{
    const struct rid_conf *c = conf;
    (void)r;
    (void)ctx;
    return gw_name_eq(name, len, c->header);
}

static int upstream_add(const void *conf, struct gw_request *r, const void *ctx,
                        struct gw_hdr_out *out)
{
    const struct rid_conf *c = conf;
    (void)ctx;
    return gw_hdr_add(out, c->header, strlen(c->header), r->request_id, strlen(r->request_id));
}

static bool response_drop(const void *conf, const struct gw_request *r, const void *ctx,
                          const char *name, size_t len)
{
    const struct rid_conf *c = conf;
    (void)r;
    (void)ctx;
    return c->echo && gw_name_eq(name, len, c->header);
}

static int response_add(const void *conf, struct gw_request *r, const void *ctx,
                        struct gw_hdr_out *out)
{
    const struct rid_conf *c = conf;
    (void)ctx;
    if (!c->echo)
        return 0;
    return gw_hdr_add(out, c->header, strlen(c->header), r->request_id, strlen(r->request_id));
}

const struct gw_plugin_ops gw_plugin_request_id = {
    .name = "request_id",
    .order = 5,
    .doc = "a request id sent upstream and echoed back",
    .schema = &schema,
    .prepare = prepare,
    .on_request = on_request,
    .upstream_drop = upstream_drop,
    .upstream_add = upstream_add,
    .response_drop = response_drop,
    .response_add = response_add,
};
