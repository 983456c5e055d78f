/* request_id.c - the request_id plugin ({header?, pass_through?, echo?}).
 *
 * Every request has an id from its head on (conn.c: a valid X-Request-Id is
 * kept, else a random one), used in error bodies and the access log. This
 * plugin governs it: which header carries it, whether a client's id is kept,
 * and it sends the id upstream (replacing the client's header, by
 * build_up_head) and back on the response.
 */
#include "gateway/http_plugins.h"
#include "gateway/pipeline.h"
#include "common/util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool gw_request_id_valid(const char *v, size_t len)
{
    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)v[i]) && v[i] != '-' && v[i] != '_' && v[i] != '.')
            return false;
    return true;
}

static enum gw_plugin_verdict rid_request_headers(const void *conf, struct gw_request *r)
{
    const struct gw_request_id_conf *c = conf;
    size_t n;
    r->rid = c;
    if (c->conn_rule)
        return GW_PLUGIN_NEXT; /* conn.c applied this very rule to the head */
    const char *v = c->pass_through ? gw_request_header(r, c->header, &n) : NULL;
    if (v != NULL && gw_request_id_valid(v, n) && n < sizeof(r->request_id)) {
        memcpy(r->request_id, v, n);
        r->request_id[n] = '\0';
    } else {
        gw_request_new_id(r);
    }
    return GW_PLUGIN_NEXT;
}

static int rid_response_headers(const void *conf, struct gw_request *r, struct gv_buf *head)
{
    const struct gw_request_id_conf *c = conf;
    if (!c->echo)
        return 0;
    int rv = gv_buf_put2(head, c->header, strlen(c->header), ": ", 2);
    rv = rv ? rv : gv_buf_put2(head, r->request_id, strlen(r->request_id), "\r\n", 2);
    return rv;
}

static void rid_free(void *conf)
{
    free(conf);
}

const struct gw_plugin_ops gw_plugin_request_id = {
    .name = "request_id",
    .order = 5,
    .on_request_headers = rid_request_headers,
    .on_response_headers = rid_response_headers,
    .free_conf = rid_free,
};
