/* jwt_auth.c - the jwt plugin ({header?, query?, clock_skew?,
 * forward_credentials?}): a bearer token (Authorization: Bearer by default,
 * or a configured header or query parameter) verified against the consumers'
 * jwt credentials (gateway/jwt.c); its "iss" names the credential and so the
 * consumer. A token that verified is remembered per worker thread until it
 * expires, so a repeated token costs a lookup. */
#include "gateway/auth.h"
#include "gateway/cred_cache.h"
#include "gateway/pipeline.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static enum gw_plugin_verdict deny(struct gw_request *r, const char *why)
{
    char extra[160];
    snprintf(extra, sizeof(extra),
             "WWW-Authenticate: Bearer error=\"invalid_token\", "
             "error_description=\"%s\"\r\n",
             why);
    gw_request_fail_with(r, 401, why, extra);
    return GW_PLUGIN_ANSWERED;
}

static enum gw_plugin_verdict jwt_request_headers(const void *conf, struct gw_request *r)
{
    const struct gw_auth_conf *c = conf;
    const struct gw_jwt_keys *ks = &c->consumers->jwt;
    char buf[GW_JWT_MAX_LEN];
    size_t len = 0;
    const char *tok = gw_request_header(r, c->header, &len), *query = NULL;
    if (tok != NULL && c->bearer) {
        if (len < 7 || strncasecmp(tok, "Bearer ", 7) != 0)
            tok = NULL; /* another scheme: not ours */
        else {
            tok += 7;
            len -= 7;
            while (len > 0 && *tok == ' ') {
                tok++;
                len--;
            }
        }
    }
    if (tok == NULL && c->query[0] != '\0') {
        long n = gw_auth_query(r, c->query, buf, sizeof(buf));
        if (n > 0) {
            tok = buf;
            len = (size_t)n;
            query = c->query;
        }
    }
    if (tok == NULL || len == 0) {
        gw_request_fail_with(r, 401, "missing token", "WWW-Authenticate: Bearer\r\n");
        return GW_PLUGIN_ANSWERED;
    }
    int64_t now = (int64_t)time(NULL), exp;
    size_t idx;
    const struct gw_jwt_key *key = NULL;
    const char *why = "invalid token";
    if (!gw_cred_cache_get(ks->gen, tok, len, now, c->skew_s, &idx) || idx >= ks->n) {
        if (gw_jwt_verify(ks, tok, len, now, c->skew_s, &key, &exp, &why) != 0)
            return deny(r, why);
        idx = (size_t)(key - ks->v);
        gw_cred_cache_put(ks->gen, tok, len, exp, idx);
    }
    gw_auth_identified(c, r, (uint32_t)ks->v[idx].consumer, query ? NULL : c->header, query);
    return GW_PLUGIN_NEXT;
}

const struct gw_plugin_ops gw_plugin_jwt = {
    .name = "jwt",
    .order = 21,
    .on_request_headers = jwt_request_headers,
    .free_conf = gw_auth_conf_free,
};
