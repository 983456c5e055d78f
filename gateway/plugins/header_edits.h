/* header_edits.h - `remove`, `set` and `add` header edits, the config both
 * plugins editing request and response heads take: its schema, and applying it
 * while a head is copied (a dropped header is skipped; set and add lines go
 * after the message's own). Nothing is copied per request. */
#ifndef GV_GATEWAY_PLUGINS_HEADER_EDITS_H
#define GV_GATEWAY_PLUGINS_HEADER_EDITS_H

#include "common/schema.h"
#include "gateway/request.h"

struct gw_hdr_edits {
    struct gv_pair *set, *add;
    size_t nset, nadd;
    char **remove;
    size_t nremove;
};

extern const struct gv_schema gw_hdr_edits_schema;

/* true when a header of this name is dropped (removed, or replaced by set). */
bool gw_hdr_edits_drops(const struct gw_hdr_edits *e, const char *name, size_t len);
/* Adds the set and add headers to out. 0 or a negative error. */
int gw_hdr_edits_add(const struct gw_hdr_edits *e, struct gw_hdr_out *out);

#endif
