/* routes.c - the admin API's endpoints as one table, and the matcher that
 * picks a row for a request; see routes.h. */
#include "node/admin/routes.h"
#include "node/admin/admin_int.h"

#include "common/util.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define GET    ADMIN_M(HTTP_GET)
#define POST   ADMIN_M(HTTP_POST)
#define PUT    ADMIN_M(HTTP_PUT)
#define DELETE ADMIN_M(HTTP_DELETE)

const struct admin_route admin_routes[] = {
    {GET, "/", admin_get_asset, true},
    {GET, "/dashboard.css", admin_get_asset, true},
    {GET, "/dashboard.js", admin_get_asset, true},
    {GET, "/openapi.json", admin_get_openapi, true},
    {GET, "/events", admin_get_events, false},
    {GET, "/health", admin_get_health, false},
    {GET, "/ready", admin_get_ready, false},
    {GET, "/status", admin_get_status, false},
    {GET, "/cluster/members", admin_get_members, false},
    {GET, "/cluster/changes", admin_get_changes, false},
    {GET, "/cluster/ratelimit", admin_get_ratelimit, false},
    {GET, "/backends", admin_get_backends, false},
    {GET, "/metrics", admin_get_metrics, false},
    {GET, "/cluster/keys", admin_get_keys, false},
    {POST, "/cluster/keys", admin_post_keys, false},
    {POST, "/cluster/keys/:id/use", admin_post_key_use, false},
    {DELETE, "/cluster/keys/:id", admin_delete_key, false},
    {POST, "/debug/block", admin_post_debug_block, false},
    {GET, "/config", admin_get_config, false},
    {PUT, "/config", admin_put_config, false},
    {GET, "/config/:kind", admin_get_kind, false},
    {GET, "/config/:kind/:name", admin_get_object, false},
    {PUT, "/config/:kind/:name", admin_put_object, false},
    {DELETE, "/config/:kind/:name", admin_delete_object, false},
};
const size_t admin_nroutes = GV_ARRAY_LEN(admin_routes);

/* How one row's pattern fits a path. */
enum fit { FIT, NO_FIT, FIT_BUT_KIND, FIT_BUT_ESCAPE };

static enum fit fit(const char *pattern, const char *path, struct admin_match *m)
{
    const char *p = pattern, *s = path;
    enum fit why = FIT;
    m->kind = NULL;
    m->param[0] = '\0';
    while (*p == '/' && *s == '/') {
        p++, s++;
        size_t plen = strcspn(p, "/"), slen = strcspn(s, "/");
        if (plen == 5 && strncmp(p, ":kind", 5) == 0) {
            char word[32];
            if (slen < sizeof(word)) {
                memcpy(word, s, slen);
                word[slen] = '\0';
                m->kind = gv_kind_by_name(word);
            }
            if (m->kind == NULL && why == FIT)
                why = FIT_BUT_KIND;
        } else if (*p == ':') {
            if (slen == 0 || slen >= sizeof(m->param))
                return NO_FIT;
            long n = gv_percent_decode(s, slen, m->param, sizeof(m->param) - 1, false);
            m->param[n < 0 ? 0 : n] = '\0';
            if (n < 0 && why == FIT)
                why = FIT_BUT_ESCAPE;
        } else if (plen != slen || strncmp(p, s, plen) != 0) {
            return NO_FIT;
        }
        p += plen;
        s += slen;
    }
    return *p == '\0' && *s == '\0' ? why : NO_FIT;
}

enum admin_found admin_route_match(const struct admin_route *routes, size_t n, int method,
                                   const char *path, struct admin_match *m)
{
    uint64_t bit = method >= 0 && method < 64 ? ADMIN_M(method) : 0;
    bool bad_kind = false, bad_escape = false;
    m->route = NULL;
    m->allowed = 0;
    for (size_t i = 0; i < n; i++) {
        enum fit f = fit(routes[i].pattern, path, m);
        uint64_t takes = routes[i].methods;
        if (takes & GET)
            takes |= ADMIN_M(HTTP_HEAD);
        if (f == FIT && (takes & bit)) {
            m->route = &routes[i];
            m->allowed = 0;
            return ADMIN_FOUND;
        }
        if (f == FIT)
            m->allowed |= takes;
        bad_kind |= f == FIT_BUT_KIND;
        bad_escape |= f == FIT_BUT_ESCAPE;
    }
    m->kind = NULL;
    m->param[0] = '\0';
    if (m->allowed != 0)
        return ADMIN_NO_METHOD;
    if (bad_escape)
        return ADMIN_BAD_ESCAPE;
    return bad_kind ? ADMIN_NO_KIND : ADMIN_NOT_FOUND;
}

const char *admin_methods_text(uint64_t methods, int with_head, char *buf, size_t n)
{
    static const struct {
        int method;
        const char *name;
    } order[] = {{HTTP_GET, "GET"},
                 {HTTP_HEAD, "HEAD"},
                 {HTTP_POST, "POST"},
                 {HTTP_PUT, "PUT"},
                 {HTTP_DELETE, "DELETE"}};
    const char *names[GV_ARRAY_LEN(order)];
    size_t k = 0, used = 0;
    for (size_t i = 0; i < GV_ARRAY_LEN(order); i++)
        if ((methods & ADMIN_M(order[i].method)) && (with_head || order[i].method != HTTP_HEAD))
            names[k++] = order[i].name;
    if (n == 0)
        return buf;
    buf[0] = '\0';
    for (size_t i = 0; i < k && used < n; i++) {
        const char *sep = i == 0 ? "" : (!with_head && i + 1 == k) ? " or " : ", ";
        int w = snprintf(buf + used, n - used, "%s%s", sep, names[i]);
        used += w > 0 ? (size_t)w : 0;
    }
    return buf;
}
