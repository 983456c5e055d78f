/* assets.h - the files the admin API serves from the binary: the dashboard
 * (node/admin/dashboard/) and the base of the API's OpenAPI description
 * (node/admin/openapi.base.json, completed by node/docs.c), compiled in at
 * build time by node/admin/dashboard/embed.cmake. index.html is "/", every
 * other file "/" plus its name; only those the route table names are
 * served as they are.
 *
 * No threads, no state: a const table.
 */
#ifndef GV_NODE_ADMIN_ASSETS_H
#define GV_NODE_ADMIN_ASSETS_H

#include <stddef.h>

struct admin_asset {
    const char *path;         /* "/", "/dashboard.js" */
    const char *content_type; /* "text/html; charset=utf-8" */
    const unsigned char *data;
    size_t len;
};

extern const struct admin_asset admin_assets[];
extern const size_t admin_nassets;

#endif
