/* docs.h - reference docs written from the schemas: `grapevine docs`. */
#ifndef GV_NODE_DOCS_H
#define GV_NODE_DOCS_H

#include <stdio.h>

/* Writes the configuration reference (markdown) to out. 0 or GV_ENOMEM. */
int node_docs_config(FILE *out);

#endif
