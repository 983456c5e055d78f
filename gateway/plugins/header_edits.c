/* header_edits.c - header edits shared by the request and response header
 * plugins; see header_edits.h. */
#include "gateway/plugins/header_edits.h"

#include <string.h>

static const struct gv_field fields[] = {
    GV_FIELD_PAIRS("add", struct gw_hdr_edits, add, nadd, .rule = &gv_rule_token,
                   .doc = "headers added beside any the message has ({Name: value})"),
    GV_FIELD_PAIRS("set", struct gw_hdr_edits, set, nset, .rule = &gv_rule_token,
                   .doc = "headers that replace the message's of that name ({Name: value})"),
    GV_FIELD_STRS("remove", struct gw_hdr_edits, remove, nremove, .rule = &gv_rule_token,
                  .doc = "header names taken out"),
};
const struct gv_schema gw_hdr_edits_schema = GV_SCHEMA("header edits", struct gw_hdr_edits, fields);

bool gw_hdr_edits_drops(const struct gw_hdr_edits *e, const char *name, size_t len)
{
    for (size_t i = 0; i < e->nremove; i++)
        if (strlen(e->remove[i]) == len && gw_name_eq(name, len, e->remove[i]))
            return true;
    for (size_t i = 0; i < e->nset; i++)
        if (strlen(e->set[i].name) == len && gw_name_eq(name, len, e->set[i].name))
            return true;
    return false;
}

static int add_pairs(const struct gv_pair *v, size_t n, struct gw_hdr_out *out)
{
    int rv = 0;
    for (size_t i = 0; i < n && rv == 0; i++)
        rv = gw_hdr_add(out, v[i].name, strlen(v[i].name), v[i].value, strlen(v[i].value));
    return rv;
}

int gw_hdr_edits_add(const struct gw_hdr_edits *e, struct gw_hdr_out *out)
{
    int rv = add_pairs(e->set, e->nset, out);
    return rv ? rv : add_pairs(e->add, e->nadd, out);
}
