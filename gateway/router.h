/* router.h - matching requests to routes.
 *
 * A router is compiled once from route specs and is immutable afterwards, so
 * every worker may match against it concurrently without locks.
 *
 * Order (SPEC): a route whose hosts match beats a route with no hosts; within
 * each of those two groups, exact paths first, then the longest matching
 * prefix, then regexes in file order. Methods and headers must also match.
 *
 * The finer points, decided here:
 * - Hosts: an exact host beats a wildcard, and a longer wildcard suffix beats
 *   a shorter one ("*.api.example.com" over "*.example.com"); host comparison
 *   ignores case, and a ":port" or trailing dot left on the request host is
 *   ignored. "*.example.com" does not match "example.com" itself.
 * - Paths are matched in their normal form (gateway/path.h): "//a/./b" is
 *   "/a/b", "/%61" is "/a".
 * - Prefixes (path_type prefix) are plain string prefixes, as in Envoy and
 *   Kong: "/users" matches "/users", "/users/1" and also "/usersx".
 *   path_type segment_prefix matches whole segments: "/users" and
 *   "/users/1", never "/usersx" (Envoy's path_separated_prefix).
 * - A regex (PCRE2, gateway/regex.h: bounded in size and steps) must match
 *   the whole path, not a part of it.
 * - A route without paths is a catch-all: it ranks below the regex routes of
 *   its host group, and strips nothing.
 * - Remaining ties (same rank and prefix length, or two regexes) go to the
 *   route that comes first in the file.
 * - strip_len is the matched prefix (prefix routes) or the whole path (exact
 *   routes); regex and catch-all routes strip nothing. The stripped path may
 *   be empty or lack its leading "/": the caller puts one back.
 *
 * Cost: gw_router_match never allocates, and does not grow with the number
 * of routes (gateway/router_index.c): a hash lookup for the exact host and
 * one per label for wildcard suffixes; within a host group, one hash lookup
 * for the exact path and one per distinct configured prefix length (the
 * path's prefixes are hashed in one pass), longest first; only regex and
 * catch-all routes are tried one by one, in file order, and only when
 * nothing literal matched. Matching from many threads at once is safe.
 */
#ifndef GV_GATEWAY_ROUTER_H
#define GV_GATEWAY_ROUTER_H

#include "common/schema.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum gw_path_type { GW_PATH_PREFIX, GW_PATH_EXACT, GW_PATH_REGEX, GW_PATH_SEGMENTS };

struct gw_route_spec {
    char *name;
    char **hosts; /* lower-case; "*.example.com" matches one or more labels */
    size_t nhosts;
    char **paths; /* no paths = every path (a prefix of "/") */
    size_t npaths;
    enum gw_path_type path_type;
    uint64_t methods;        /* bit (1 << llhttp_method_t); 0 = any method */
    struct gv_pair *headers; /* name case-insensitive, value exact */
    size_t nheaders;
    char *service;
    bool strip_prefix;
    json_t *plugins; /* the route's plugin list, canonical (gateway/plugins/chain.h) */
    /* Paths with an encoded slash or a backslash (gateway/path.h). */
    int escaped_slashes; /* enum gw_escaped_slashes */
    int forward_path;    /* enum gw_forward_path */
    char **upgrades;     /* protocols a client may upgrade to (Upgrade: NAME) */
    size_t nupgrades;
    /* Not part of the config: set when this spec's strings, lists and
     * plugins are shared between copies (gw_route_spec_share), each of
     * which holds them; NULL when this copy owns them alone. */
    struct gw_route_shared *shared;
};

enum gw_escaped_slashes { GW_SLASHES_REFUSE, GW_SLASHES_KEEP, GW_SLASHES_DECODE };
enum gw_forward_path { GW_FORWARD_NORMALIZED, GW_FORWARD_ORIGINAL };

/* A route's config: its schema (gateway/route_schema.c). Parsing checks the
 * service it names and its plugins through ctx, a struct gw_route_ctx. */
extern const struct gv_schema gw_route_schema;
struct gw_consumer_set;
struct gw_route_ctx {
    const struct gw_consumer_set *consumers; /* for plugins that look credentials up */
    bool (*service_exists)(void *arg, const char *name);
    void *arg;
};

/* Frees what r owns: its contents, or, for a copy of a shared spec, its
 * hold on them (the last hold frees them). r is zeroed. Thread-safe for
 * shared copies. */
void gw_route_spec_free(struct gw_route_spec *r);
/* Compiled routes are immutable, so a state built after a change can take
 * the routes it keeps from before instead of compiling them again
 * (node/cstate_jcache.c keeps them per stored version). gw_route_spec_share
 * moves r (zeroed after) into a shared spec and returns it, with one hold
 * (the caller's), or NULL when out of memory (r unchanged).
 * gw_route_spec_hold makes *to one more copy of the shared spec r (free it
 * with gw_route_spec_free); gw_route_spec_retain takes one more hold without
 * a copy; gw_route_spec_release lets go of a hold that gw_route_spec_share or
 * gw_route_spec_retain gave. Holds are atomic: any thread. Nothing may change
 * a shared spec's contents. */
const struct gw_route_spec *gw_route_spec_share(struct gw_route_spec *r);
void gw_route_spec_hold(const struct gw_route_spec *r, struct gw_route_spec *to);
void gw_route_spec_retain(const struct gw_route_spec *r);
void gw_route_spec_release(const struct gw_route_spec *r);
/* Returns 0 and sets bit in *mask for a method name like "GET", or GV_EINVAL. */
int gw_method_bit(const char *name, uint64_t *mask);

/* What the router needs from a request. host has no port and is lower-case. */
struct gw_request_view {
    int method; /* llhttp_method_t */
    const char *host;
    size_t host_len;
    const char *path; /* without the query */
    size_t path_len;
    /* Returns the value of the first header with that name (case-insensitive)
     * and sets *len, or NULL. */
    const char *(*header)(void *ctx, const char *name, size_t *len);
    void *header_ctx;
};

struct gw_route_match {
    size_t route;     /* index into the specs the router was built from */
    size_t strip_len; /* bytes of path to strip (strip_prefix), else 0 */
};

struct gw_router;

/* Compiles routes (borrowed; must outlive the router). On a bad regex returns
 * GV_EINVAL with "routes[i].match.paths[j]: <why>" in err. */
int gw_router_build(const struct gw_route_spec *routes, size_t n, struct gw_router **out, char *err,
                    size_t errlen);
void gw_router_free(struct gw_router *r);
/* Returns true and fills *m for the best route, false when none matches. */
bool gw_router_match(const struct gw_router *r, const struct gw_request_view *req,
                     struct gw_route_match *m);

#endif
