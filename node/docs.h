/* docs.h - reference docs written from the schemas: `grapevine docs`. */
#ifndef GV_NODE_DOCS_H
#define GV_NODE_DOCS_H

#include <stdio.h>

/* Writes the configuration reference (markdown) to out. 0 or GV_ENOMEM. */
int node_docs_config(FILE *out);

/* The OpenAPI 3.1 description of the admin API: the hand-written paths of
 * node/admin/openapi.base.json (compiled in) with the config objects'
 * schemas filled in from the schema tables. New reference, NULL on no
 * memory. What GET /openapi.json answers and docs/openapi.json holds. */
#include <jansson.h>
json_t *node_docs_openapi(void);
/* Writes it to out (indented). 0 or GV_ENOMEM. */
int node_docs_openapi_write(FILE *out);

#endif
