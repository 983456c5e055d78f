/* router_index.c - finds the best route for a request in time that does not
 * grow with the number of routes: routes are grouped by host rank (an exact
 * host, a wildcard suffix, or no host: hash lookups), and within a group
 * exact paths and prefixes are hashed (every prefix of the request path is
 * looked up in one pass, longest first), so only regex and catch-all routes
 * are visited one by one. The order is router.h's; tests/unit/gateway/
 * router_test.c checks it against a plain scan of every route. */
#include "common/err.h"
#include "gateway/router_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define HOST_MAX   255 /* a longer request host matches no configured one */
#define LEN_HASHES 128 /* prefix lengths hashed in one pass; more: one by one */

/* ---- building ----------------------------------------------------------------------- */

struct list_builder {
    uint32_t *v;
    size_t n, cap;
};

struct build {
    struct gw_router *r;
    struct list_builder *lists;
    size_t nlists, caplists, capgroups;
};

static long new_list(struct build *b)
{
    if (b->nlists == b->caplists) {
        size_t cap = b->caplists ? b->caplists * 2 : 16;
        struct list_builder *l = realloc(b->lists, cap * sizeof(*l));
        if (l == NULL)
            return GV_ENOMEM;
        b->lists = l;
        b->caplists = cap;
    }
    b->lists[b->nlists] = (struct list_builder){0};
    return (long)b->nlists++;
}

/* Appends a route (routes come in file order: the list stays sorted). */
static int list_push(struct build *b, long list, uint32_t route)
{
    struct list_builder *l = &b->lists[list];
    if (l->n > 0 && l->v[l->n - 1] == route)
        return 0; /* the same route under two equal keys */
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 2;
        uint32_t *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL)
            return GV_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = route;
    return 0;
}

static long new_group(struct build *b)
{
    struct gw_router *r = b->r;
    if (r->ngroups == b->capgroups) {
        size_t cap = b->capgroups ? b->capgroups * 2 : 4;
        struct rt_group *g = realloc(r->groups, cap * sizeof(*g));
        if (g == NULL)
            return GV_ENOMEM;
        r->groups = g;
        b->capgroups = cap;
    }
    r->groups[r->ngroups] = (struct rt_group){.regex = -1, .any = -1};
    return (long)r->ngroups++;
}

/* The value map holds for key, made by make(b) when absent. */
static long find_or_make(struct build *b, struct gv_strmap *map, const char *key, size_t len,
                         long (*make)(struct build *))
{
    long v = gv_strmap_get(map, key, len);
    if (v >= 0)
        return v;
    if ((v = make(b)) < 0)
        return v;
    return gv_strmap_put(map, key, len, (uint32_t)v) == 0 ? v : GV_ENOMEM;
}

static int add_len(struct rt_group *g, uint32_t len)
{
    size_t i = 0;
    while (i < g->nlens && g->lens[i] < len)
        i++;
    if (i < g->nlens && g->lens[i] == len)
        return 0;
    uint32_t *l = realloc(g->lens, (g->nlens + 1) * sizeof(*l));
    if (l == NULL)
        return GV_ENOMEM;
    memmove(l + i + 1, l + i, (g->nlens - i) * sizeof(*l));
    l[i] = len;
    g->lens = l;
    g->nlens++;
    return 0;
}

/* Puts route i's paths into group gi. (Groups may move while lists are
 * made: they are found again by index.) */
static int group_add(struct build *b, long gi, uint32_t i)
{
    const struct rt_route *rt = &b->r->routes[i];
    int rv = 0;
    for (size_t j = 0; rv == 0 && j < rt->npaths && rt->kind >= RT_PREFIX; j++) {
        struct rt_group *g = &b->r->groups[gi];
        struct gv_strmap *map = rt->kind == RT_EXACT ? &g->exact : &g->prefix;
        long l = find_or_make(b, map, rt->paths[j].s, rt->paths[j].len, new_list);
        rv = l < 0 ? (int)l : list_push(b, l, i);
        if (rv == 0 && rt->kind == RT_PREFIX)
            rv = add_len(&b->r->groups[gi], (uint32_t)rt->paths[j].len);
    }
    if (rt->kind <= RT_REGEX) {
        long *slot = rt->kind == RT_REGEX ? &b->r->groups[gi].regex : &b->r->groups[gi].any;
        if (*slot < 0 && (*slot = new_list(b)) < 0)
            return GV_ENOMEM;
        rv = list_push(b, *slot, i);
    }
    return rv;
}

static int index_route(struct build *b, uint32_t i)
{
    const struct rt_route *rt = &b->r->routes[i];
    if (rt->nhosts == 0)
        return group_add(b, 0, i);
    for (size_t h = 0; h < rt->nhosts; h++) {
        const struct rt_host *host = &rt->hosts[h];
        struct gv_strmap *map = host->wildcard ? &b->r->wild : &b->r->hosts;
        long g = find_or_make(b, map, host->s, host->len, new_group);
        int rv = g < 0 ? (int)g : group_add(b, g, i);
        if (rv != 0)
            return rv;
    }
    return 0;
}

/* Moves the built lists into one array of route indexes. */
static int flatten(struct build *b)
{
    struct gw_router *r = b->r;
    size_t total = 0;
    for (size_t i = 0; i < b->nlists; i++)
        total += b->lists[i].n;
    r->lists = calloc(b->nlists + 1, sizeof(*r->lists));
    r->idx = calloc(total + 1, sizeof(*r->idx));
    if (r->lists == NULL || r->idx == NULL)
        return GV_ENOMEM;
    for (size_t i = 0; i < b->nlists; i++) {
        r->lists[i] = (struct rt_list){(uint32_t)r->nidx, (uint32_t)b->lists[i].n};
        memcpy(r->idx + r->nidx, b->lists[i].v, b->lists[i].n * sizeof(*r->idx));
        r->nidx += b->lists[i].n;
    }
    r->nlists = b->nlists;
    return 0;
}

int rt_index_build(struct gw_router *r)
{
    struct build b = {.r = r};
    int rv = new_group(&b) < 0 ? GV_ENOMEM : 0; /* groups[0]: no hosts */
    for (size_t i = 0; rv == 0 && i < r->n; i++)
        rv = index_route(&b, (uint32_t)i);
    if (rv == 0)
        rv = flatten(&b);
    for (size_t i = 0; i < b.nlists; i++)
        free(b.lists[i].v);
    free(b.lists);
    return rv;
}

void rt_index_free(struct gw_router *r)
{
    for (size_t i = 0; i < r->ngroups; i++) {
        gv_strmap_free(&r->groups[i].exact);
        gv_strmap_free(&r->groups[i].prefix);
        free(r->groups[i].lens);
    }
    free(r->groups);
    gv_strmap_free(&r->hosts);
    gv_strmap_free(&r->wild);
    free(r->lists);
    free(r->idx);
}

/* ---- matching ---------------------------------------------------------------------- */

/* "/api" as whole segments matches "/api" and "/api/x", never "/apix". */
static bool segments_ok(const struct rt_route *rt, const struct rt_req *q, size_t len)
{
    return !rt->segments || q->plen == len || q->path[len - 1] == '/' || q->path[len] == '/';
}

/* The first route of list (file order) that takes the request, matched
 * over len bytes of its path. */
static bool take(const struct gw_router *r, long list, const struct rt_req *q, size_t len,
                 struct gw_route_match *m)
{
    if (list < 0)
        return false;
    const struct rt_list *l = &r->lists[list];
    for (uint32_t k = 0; k < l->n; k++) {
        uint32_t i = r->idx[l->start + k];
        const struct rt_route *rt = &r->routes[i];
        if (segments_ok(rt, q, len) && rt_filters_pass(rt, q)) {
            m->route = i;
            m->strip_len = rt->strip_prefix ? len : 0;
            return true;
        }
    }
    return false;
}

/* Every configured prefix of the path, longest first: the hashes of the
 * path's prefixes at the group's lengths come from one pass. */
static bool take_prefix(const struct gw_router *r, const struct rt_group *g, const struct rt_req *q,
                        struct gw_route_match *m)
{
    uint64_t hs[LEN_HASHES], h = GV_STRMAP_HASH_INIT;
    size_t n = 0;
    if (g->nlens == 0)
        return false;
    for (size_t i = 0; i <= q->plen && n < g->nlens && g->lens[n] <= q->plen; i++) {
        if (g->lens[n] == i && n < LEN_HASHES)
            hs[n++] = h;
        else if (g->lens[n] == i)
            n++; /* beyond what hs holds: hashed again below */
        if (i < q->plen)
            h = gv_strmap_hash_step(h, (unsigned char)q->path[i]);
    }
    while (n-- > 0) {
        size_t len = g->lens[n];
        long l = n < LEN_HASHES ? gv_strmap_get_hashed(&g->prefix, q->path, len, hs[n])
                                : gv_strmap_get(&g->prefix, q->path, len);
        if (take(r, l, q, len, m))
            return true;
    }
    return false;
}

static bool take_regex(const struct gw_router *r, long list, const struct rt_req *q,
                       struct gw_route_match *m)
{
    if (list < 0)
        return false;
    const struct rt_list *l = &r->lists[list];
    for (uint32_t k = 0; k < l->n; k++) {
        uint32_t i = r->idx[l->start + k];
        const struct rt_route *rt = &r->routes[i];
        if (rt_filters_pass(rt, q) && rt_regex_match(rt, q->path, q->plen)) {
            m->route = i;
            m->strip_len = 0;
            return true;
        }
    }
    return false;
}

/* Within one host rank: exact paths, then the longest prefix, then regexes
 * in file order, then catch-alls; ties to the earlier route. */
static bool match_group(const struct gw_router *r, const struct rt_group *g, const struct rt_req *q,
                        struct gw_route_match *m)
{
    return take(r, gv_strmap_get(&g->exact, q->path, q->plen), q, q->plen, m) ||
           take_prefix(r, g, q, m) || take_regex(r, g->regex, q, m) || take(r, g->any, q, 0, m);
}

/* The exact host, then wildcard suffixes longest first ("*.b.example.com"
 * before "*.example.com"; at least one label before the suffix), then the
 * routes without hosts. */
bool rt_index_match(const struct gw_router *r, const struct rt_req *q, struct gw_route_match *m)
{
    char host[HOST_MAX];
    size_t n = q->hlen;
    if (n > 0 && n <= sizeof(host)) {
        for (size_t i = 0; i < n; i++)
            host[i] = (char)tolower((unsigned char)q->host[i]);
        long g = gv_strmap_get(&r->hosts, host, n);
        if (g >= 0 && match_group(r, &r->groups[g], q, m))
            return true;
        for (size_t i = 1; r->wild.count > 0 && i < n; i++) {
            if (host[i] != '.' || host[i - 1] == '.')
                continue;
            g = gv_strmap_get(&r->wild, host + i, n - i);
            if (g >= 0 && match_group(r, &r->groups[g], q, m))
                return true;
        }
    }
    return match_group(r, &r->groups[0], q, m);
}
