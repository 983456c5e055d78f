/* headers.c - the request_headers and response_headers plugins: `remove`,
 * `set` and `add` header edits.
 *
 * Nothing is copied per request: the plugin points the request at its config
 * (r->up_edits / r->down_edits) and the code that writes the head applies it
 * as it copies headers (proxy.c build_up_head for the upstream request,
 * write_client_head for the response): a dropped header is skipped, the set
 * and add lines are appended after the message's own.
 */
#include "gateway/http_plugins.h"
#include "gateway/pipeline.h"
#include "common/err.h"

#include <stdlib.h>

static bool listed(const struct gw_hdr_kv *v, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].name_len == len && gw_name_eq(name, len, v[i].name))
            return true;
    return false;
}

bool gw_hdr_edits_drops(const struct gw_hdr_edits *e, const char *name, size_t len)
{
    return listed(e->remove, e->nremove, name, len) || listed(e->set, e->nset, name, len);
}

static int append_kv(const struct gw_hdr_kv *v, size_t n, struct gv_buf *b)
{
    int rv = 0;
    for (size_t i = 0; i < n && rv == 0; i++) {
        rv = gv_buf_put2(b, v[i].name, v[i].name_len, ": ", 2);
        rv = rv ? rv : gv_buf_put2(b, v[i].value, v[i].value_len, "\r\n", 2);
    }
    return rv;
}

int gw_hdr_edits_append(const struct gw_hdr_edits *e, struct gv_buf *b)
{
    int rv = append_kv(e->set, e->nset, b);
    return rv ? rv : append_kv(e->add, e->nadd, b);
}

void gw_hdr_edits_free(void *conf)
{
    free(conf); /* one allocation: the struct, its arrays and strings */
}

static enum gw_plugin_verdict reqh_request_headers(const void *conf, struct gw_request *r)
{
    r->up_edits = conf;
    return GW_PLUGIN_NEXT;
}

static enum gw_plugin_verdict resph_request_headers(const void *conf, struct gw_request *r)
{
    r->down_edits = conf;
    return GW_PLUGIN_NEXT;
}

static int resph_response_headers(const void *conf, struct gw_request *r, struct gv_buf *head)
{
    (void)r;
    return gw_hdr_edits_append(conf, head);
}

const struct gw_plugin_ops gw_plugin_request_headers = {
    .name = "request_headers",
    .order = 60,
    .on_request_headers = reqh_request_headers,
    .free_conf = gw_hdr_edits_free,
};

const struct gw_plugin_ops gw_plugin_response_headers = {
    .name = "response_headers",
    .order = 70,
    .on_request_headers = resph_request_headers,
    .on_response_headers = resph_response_headers,
    .free_conf = gw_hdr_edits_free,
};
