/* credential.c - see credential.h. */
#include "gateway/auth/credential.h"
#include "gateway/http.h"

#include <string.h>

static bool is_param(const char *s)
{
    return strlen(s) > 0 && strpbrk(s, "&=#?% ") == NULL;
}

const struct gv_str_rule gw_auth_param_rule = {"query parameter name", NULL, is_param};

const char *gw_auth_credential(const struct gw_request *r, const char *value, size_t *len,
                               const char *query, char *buf, size_t cap, const char **from_query)
{
    *from_query = NULL;
    if (value == NULL && query != NULL) {
        long n = gw_request_query_param(r, query, buf, cap);
        if (n > 0) {
            *len = (size_t)n;
            *from_query = query;
            return buf;
        }
    }
    return value != NULL && *len > 0 ? value : NULL;
}

void gw_auth_accept(struct gw_request *r, struct gw_auth_ctx *x, const char *consumer, bool forward,
                    const char *from_query, const char *header)
{
    gw_request_set_consumer(r, consumer);
    if (forward)
        return;
    if (from_query != NULL)
        gw_request_hide_query(r, from_query);
    else
        x->drop_header = header;
}

bool gw_auth_upstream_drop(const void *conf, const struct gw_request *r, const void *ctx,
                           const char *name, size_t len)
{
    const struct gw_auth_ctx *x = ctx;
    (void)conf;
    (void)r;
    return x != NULL && x->drop_header != NULL && gw_name_eq(name, len, x->drop_header);
}
