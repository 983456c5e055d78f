/* credential.h - what the plugins that take a credential from the request
 * (key_auth, jwt) share: where it is found (a header, else a query
 * parameter) and how it is kept from the upstream once it is accepted (the
 * query parameter taken out, or the header dropped). */
#ifndef GV_GATEWAY_AUTH_CREDENTIAL_H
#define GV_GATEWAY_AUTH_CREDENTIAL_H

#include "common/schema.h"
#include "gateway/request.h"

#include <stdbool.h>
#include <stddef.h>

/* A query parameter name: no characters that end or escape one. */
extern const struct gv_str_rule gw_auth_param_rule;

/* The plugins' per-request context (ctx_size): the header to drop. */
struct gw_auth_ctx {
    const char *drop_header;
};

/* The credential: value (*len bytes, from the header; NULL when absent),
 * else the query parameter query (when not NULL) copied into buf. Sets
 * *from_query to query when it came from there, else NULL. NULL when there
 * is none or it is empty. */
const char *gw_auth_credential(const struct gw_request *r, const char *value, size_t *len,
                               const char *query, char *buf, size_t cap, const char **from_query);

/* The credential named consumer: the request is that consumer's, and
 * unless forward is set the credential goes no further (from_query taken
 * out of the query, else header dropped through gw_auth_upstream_drop). */
void gw_auth_accept(struct gw_request *r, struct gw_auth_ctx *x, const char *consumer, bool forward,
                    const char *from_query, const char *header);

/* The plugins' upstream_drop. */
bool gw_auth_upstream_drop(const void *conf, const struct gw_request *r, const void *ctx,
                           const char *name, size_t len);

#endif
