/* routes.h - the admin API's route table: one row per endpoint (the methods
 * it takes, a path pattern, its handler), and the matcher that picks the row
 * for a request or says why none fits (404, 405 with the methods the path
 * takes, 400 for a bad escape).
 *
 * A pattern is literal segments and parameters: ":kind" matches a kind's
 * plural from common/kinds.h ("routes"); any other ":param" (":name", ":id")
 * matches one non-empty segment, handed to the handler percent-decoded
 * ("a%2Fb" is "a/b"). A row taking GET takes HEAD too.
 *
 * No threads, no state: the table is const and matching writes only to the
 * caller's admin_match.
 */
#ifndef GV_NODE_ADMIN_ROUTES_H
#define GV_NODE_ADMIN_ROUTES_H

#include "common/kinds.h"

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ADMIN_M(method)   (1ULL << (method)) /* an llhttp method as a bit */
#define ADMIN_MAX_SEGMENT 1024               /* a longer parameter matches nothing */

struct admin_req;
struct admin_match;

/* Called on the admin loop with the matched request; answers it (now, or
 * later through admin_hold). */
typedef void (*admin_handler_fn)(struct admin_req *q, const struct admin_match *m);

struct admin_route {
    uint64_t methods;    /* ADMIN_M(HTTP_GET) | ... */
    const char *pattern; /* "/config/:kind/:name" */
    admin_handler_fn handler;
    bool public; /* answered without the admin token (the dashboard's files) */
};

struct admin_match {
    const struct admin_route *route; /* ADMIN_FOUND: the row */
    const struct gv_kind *kind;      /* the :kind segment, or NULL */
    char param[ADMIN_MAX_SEGMENT];   /* the other parameter, decoded; "" when none */
    uint64_t allowed;                /* ADMIN_NO_METHOD: the methods the path takes */
};

enum admin_found {
    ADMIN_FOUND,     /* m->route answers it */
    ADMIN_NOT_FOUND, /* 404: no row has this path */
    ADMIN_NO_METHOD, /* 405: rows have this path, not with this method */
    ADMIN_NO_KIND,   /* 404: a row would have it but for its :kind segment */
    ADMIN_BAD_ESCAPE /* 400: a row has it, but a parameter's %-escape is bad (or %00) */
};

/* The admin API's rows (routes.c), in the order they are tried. */
extern const struct admin_route admin_routes[];
extern const size_t admin_nroutes;

/* Finds the first of routes[0..n) that takes method on path (the URL's path,
 * no query). Fills m (the kind and parameter of the row found, or the
 * methods allowed) and says what was found. */
enum admin_found admin_route_match(const struct admin_route *routes, size_t n, int method,
                                   const char *path, struct admin_match *m);

/* The methods of a mask in a fixed order (GET, HEAD, POST, PUT, DELETE):
 * with_head false leaves HEAD out and joins the last with " or " ("GET, PUT
 * or DELETE", for messages); true lists them all with ", " (an Allow
 * header). Into buf, which is returned. */
const char *admin_methods_text(uint64_t methods, int with_head, char *buf, size_t n);

#endif
