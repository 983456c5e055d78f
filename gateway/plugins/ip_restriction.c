/* ip_restriction.c - the ip_restriction plugin: `allow` and `deny` CIDR
 * lists judge the client's address (deny wins; a non-empty allow list must
 * match); `trusted_proxies` are peers whose X-Forwarded-For is believed.
 * Denied: 403.
 *
 * Matching is a linear walk over prefixes (a byte compare and a mask per
 * rule): rule lists are short, and this keeps a rule list one allocation.
 */
#include "gateway/addr.h"
#include "gateway/plugins/plugin.h"
#include "common/err.h"

#include <stdlib.h>
#include <string.h>

struct ipr_conf {
    char **allow, **deny, **trusted;
    size_t nallow, ndeny, ntrusted;
    /* prepared: one allocation, allow then deny then trusted */
    struct gw_cidr *rules;
};

static bool is_cidr(const char *s)
{
    struct gw_cidr c;
    return gw_cidr_parse(s, &c) == 0;
}

static const struct gv_str_rule cidr_rule = {"CIDR", NULL, is_cidr};

static int conf_check(void *obj, const char *path, struct gv_schema_error *err, void *ctx)
{
    const struct ipr_conf *c = obj;
    (void)ctx;
    if (c->nallow + c->ndeny == 0)
        return gv_schema_fail(err, path, "needs an \"allow\" or \"deny\" list of CIDRs");
    return 0;
}

static const struct gv_field fields[] = {
    GV_FIELD_STRS("allow", struct ipr_conf, allow, nallow, .rule = &cidr_rule,
                  .doc = "CIDRs admitted (when given, everyone else is denied)"),
    GV_FIELD_STRS("deny", struct ipr_conf, deny, ndeny, .rule = &cidr_rule,
                  .doc = "CIDRs denied (wins over allow)"),
    GV_FIELD_STRS("trusted_proxies", struct ipr_conf, trusted, ntrusted, .rule = &cidr_rule,
                  .doc = "peers whose X-Forwarded-For names the client"),
};
static const struct gv_schema schema =
    GV_SCHEMA("ip_restriction", struct ipr_conf, fields, .check = conf_check);

static int prepare(void *conf, const struct gw_plugin_env *env, struct gv_schema_error *err)
{
    struct ipr_conf *c = conf;
    (void)env;
    size_t n = c->nallow + c->ndeny + c->ntrusted;
    if ((c->rules = calloc(n + 1, sizeof(*c->rules))) == NULL)
        return gv_schema_nomem(err);
    for (size_t i = 0; i < c->nallow; i++)
        gw_cidr_parse(c->allow[i], &c->rules[i]); /* checked by the schema */
    for (size_t i = 0; i < c->ndeny; i++)
        gw_cidr_parse(c->deny[i], &c->rules[c->nallow + i]);
    for (size_t i = 0; i < c->ntrusted; i++)
        gw_cidr_parse(c->trusted[i], &c->rules[c->nallow + c->ndeny + i]);
    return 0;
}

static void release(void *conf)
{
    struct ipr_conf *c = conf;
    free(c->rules);
    c->rules = NULL;
}

/* The client address the rules judge: the peer, unless the peer is a trusted
 * proxy; then X-Forwarded-For (every value joined by ", " in order) is
 * walked from the right, skipping trusted proxies, and the first untrusted
 * hop is the client (all trusted: the leftmost). GV_EINVAL when the hop that
 * would be the client is not an address (the request is then denied). */
static int client_of(const struct ipr_conf *c, const struct gw_addr *peer, const char *xff,
                     size_t xff_len, struct gw_addr *client)
{
    *client = *peer;
    if (c->ntrusted == 0 || xff == NULL ||
        !gw_cidr_list_match(c->rules + c->nallow + c->ndeny, c->ntrusted, peer))
        return 0;
    /* Right to left: each hop was appended by the one after it; a trusted
     * hop vouches for the entry to its left. */
    size_t end = xff_len;
    while (end > 0) {
        size_t start = end;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        const char *e = xff + start;
        size_t n = end - start;
        end = start > 0 ? start - 1 : 0;
        size_t blank = 0;
        while (blank < n && (e[blank] == ' ' || e[blank] == '\t'))
            blank++;
        if (blank == n) { /* empty element ("a,,b"): nothing to judge */
            if (start == 0)
                break;
            continue;
        }
        struct gw_addr hop;
        if (gw_addr_parse(e, n, &hop) != 0)
            return GV_EINVAL;
        *client = hop;
        if (!gw_cidr_list_match(c->rules + c->nallow + c->ndeny, c->ntrusted, &hop))
            return 0;
        if (start == 0)
            break;
    }
    return 0; /* every hop trusted: the leftmost */
}

/* true when the rules admit a: deny wins; a non-empty allow list must match. */
static bool allowed(const struct ipr_conf *c, const struct gw_addr *a)
{
    if (gw_cidr_list_match(c->rules + c->nallow, c->ndeny, a))
        return false;
    return c->nallow == 0 || gw_cidr_list_match(c->rules, c->nallow, a);
}

/* ---- the plugin --------------------------------------------------------- */

/* Every X-Forwarded-For value, joined in order ("a, b" then ", c"). A lone
 * header, the usual case, is returned in place. */
static const char *xff_of(const struct gw_request *r, struct gv_buf *tmp, size_t *len)
{
    const char *one = NULL;
    size_t onelen = 0, count = 0;
    for (uint32_t i = 0; i < r->hdrs.n; i++) {
        const struct gw_header *h = &r->hdrs.v[i];
        if (!gw_name_eq(r->head.data + h->name_off, h->name_len, "x-forwarded-for"))
            continue;
        const char *v = r->head.data + h->value_off;
        if (count++ == 0) {
            one = v;
            onelen = h->value_len;
            continue;
        }
        if (count == 2 && gv_buf_append(tmp, one, onelen) != 0)
            return NULL;
        if (gv_buf_put2(tmp, ", ", 2, v, h->value_len) != 0)
            return NULL;
    }
    if (count <= 1) {
        *len = onelen;
        return one;
    }
    *len = tmp->len;
    return tmp->data;
}

static enum gw_plugin_verdict on_request(const void *conf, struct gw_request *r, void *ctx)
{
    const struct ipr_conf *c = conf;
    struct gw_addr peer, client;
    (void)ctx;
    gw_addr_from_peer(r->peer->family, r->peer->addr, &peer);
    int rv = 0;
    if (c->ntrusted > 0) {
        struct gv_buf tmp;
        size_t n = 0;
        gv_buf_init(&tmp);
        const char *xff = xff_of(r, &tmp, &n);
        rv = client_of(c, &peer, xff, n, &client);
        gv_buf_free(&tmp);
    } else {
        client = peer;
    }
    if (rv == 0 && allowed(c, &client))
        return GW_PLUGIN_NEXT;
    gw_request_fail(r, 403,
                    rv == 0 ? "forbidden by ip_restriction"
                            : "forbidden by ip_restriction: bad X-Forwarded-For");
    return GW_PLUGIN_ANSWERED;
}

const struct gw_plugin_ops gw_plugin_ip_restriction = {
    .name = "ip_restriction",
    .order = 10,
    .doc = "admit or deny clients by address (CIDR lists), behind trusted proxies too",
    .schema = &schema,
    .prepare = prepare,
    .release = release,
    .on_request = on_request,
};
