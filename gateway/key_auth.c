/* key_auth.c - the key_auth plugin ({header?, query?, forward_credentials?}):
 * an API key from a header (X-Api-Key by default) or, when configured, a
 * query parameter identifies a consumer; a missing or unknown key gets 401.
 * Also the helpers the three auth plugins share. */
#include "gateway/auth.h"
#include "gateway/pipeline.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

long gw_auth_query(const struct gw_request *r, const char *name, char *buf, size_t n)
{
    const char *url = r->head.data + r->url_off, *end = url + r->url_len;
    const char *q = memchr(url, '?', r->url_len);
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

void gw_auth_identified(const struct gw_auth_conf *c, struct gw_request *r, uint32_t consumer,
                        const char *header, const char *query)
{
    r->consumer = c->consumers->names[consumer];
    if (c->forward)
        return;
    if (header != NULL && r->nhide_hdr < sizeof(r->hide_hdr) / sizeof(r->hide_hdr[0]))
        r->hide_hdr[r->nhide_hdr++] = header;
    if (query != NULL && r->nhide_query < sizeof(r->hide_query) / sizeof(r->hide_query[0]))
        r->hide_query[r->nhide_query++] = query;
}

void gw_auth_conf_free(void *conf)
{
    free(conf); /* the consumer table belongs to the pipeline */
}

static enum gw_plugin_verdict ka_request_headers(const void *conf, struct gw_request *r)
{
    const struct gw_auth_conf *c = conf;
    char buf[512];
    size_t len = 0;
    const char *key = gw_request_header(r, c->header, &len), *query = NULL;
    if (key == NULL && c->query[0] != '\0') {
        long n = gw_auth_query(r, c->query, buf, sizeof(buf));
        if (n > 0) {
            key = buf;
            len = (size_t)n;
            query = c->query;
        }
    }
    if (key == NULL || len == 0) {
        gw_request_fail(r, 401, "missing API key");
        return GW_PLUGIN_ANSWERED;
    }
    const struct gw_cred *cred = gw_consumers_by_key(c->consumers, key, len);
    if (cred == NULL) {
        gw_request_fail(r, 401, "invalid API key");
        return GW_PLUGIN_ANSWERED;
    }
    gw_auth_identified(c, r, cred->consumer, query ? NULL : c->header, query);
    return GW_PLUGIN_NEXT;
}

const struct gw_plugin_ops gw_plugin_key_auth = {
    .name = "key_auth",
    .order = 20,
    .on_request_headers = ka_request_headers,
    .free_conf = gw_auth_conf_free,
};
