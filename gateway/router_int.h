/* router_int.h - what router.c (compiling each route) and router_index.c
 * (the index that finds the best route without scanning them all) share. */
#ifndef GV_GATEWAY_ROUTER_INT_H
#define GV_GATEWAY_ROUTER_INT_H

#include "common/strmap.h"
#include "gateway/router.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Path kinds in rank order: a higher value beats a lower one in a host group.
 * A route without paths is a catch-all and ranks below regexes, so a catch-all
 * never hides the regex routes of its group. */
enum rt_kind { RT_ANY = 0, RT_REGEX = 1, RT_PREFIX = 2, RT_EXACT = 3 };

struct rt_str {
    const char *s; /* borrowed from the spec */
    size_t len;
};

struct rt_host {
    const char *s; /* exact: the host; wildcard: the suffix from the dot */
    size_t len;
    bool wildcard;
};

struct rt_route {
    uint64_t methods;
    struct rt_host *hosts;
    size_t nhosts;
    struct rt_str *paths;      /* prefix/exact */
    struct gw_regex **regexes; /* regex; nregexes of them were compiled */
    size_t npaths;
    size_t nregexes;
    enum rt_kind kind;
    struct rt_str *hdr_names;
    struct rt_str *hdr_values;
    size_t nheaders;
    bool strip_prefix;
    bool segments; /* a prefix matches whole segments only */
};

/* Route indexes, ascending (file order), in gw_router.idx[start..start+n). */
struct rt_list {
    uint32_t start, n;
};

/* The routes of one host rank (one exact host, one wildcard suffix, or no
 * host): their exact paths and prefixes hashed to lists, their regex and
 * catch-all routes in file order. */
struct rt_group {
    struct gv_strmap exact, prefix; /* path -> list */
    uint32_t *lens;                 /* the prefixes' lengths, distinct, ascending */
    size_t nlens;
    long regex, any; /* lists, or -1 */
};

struct gw_router {
    struct rt_route *routes;
    size_t n;
    struct gv_strmap hosts;  /* exact host -> group */
    struct gv_strmap wild;   /* ".suffix" of "*.suffix" -> group */
    struct rt_group *groups; /* [0]: the routes with no hosts */
    size_t ngroups;
    struct rt_list *lists;
    size_t nlists;
    uint32_t *idx;
    size_t nidx;
};

/* What a request is matched on, normalised once per match. */
struct rt_req {
    const char *host, *path;
    size_t hlen, plen;
    uint64_t mbit; /* the method's bit, 0 for a method outside the mask */
    const struct gw_request_view *view;
};

/* Builds the index of r's compiled routes. 0 or GV_ENOMEM. */
int rt_index_build(struct gw_router *r);
void rt_index_free(struct gw_router *r);
/* The best route for q (see router.h for the order). */
bool rt_index_match(const struct gw_router *r, const struct rt_req *q, struct gw_route_match *m);

/* router.c: whether rt takes q's method and headers. */
bool rt_filters_pass(const struct rt_route *rt, const struct rt_req *q);
/* router.c: whether a regex route matches the whole path. */
bool rt_regex_match(const struct rt_route *rt, const char *path, size_t len);

#endif
