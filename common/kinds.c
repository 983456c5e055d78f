/* kinds.c - the table of cluster-state kinds and its lookups; see kinds.h. */
#include "common/kinds.h"

#include <stdio.h>
#include <string.h>

const struct gv_kind gv_kinds[GV_KIND_COUNT] = {
    {GV_KIND_SERVICES, "services", "service"},
    {GV_KIND_CONSUMERS, "consumers", "consumer"},
    {GV_KIND_PLUGINS, "plugins", "plugin"},
    {GV_KIND_ROUTES, "routes", "route"},
};

const struct gv_kind *gv_kind_by_id(unsigned id)
{
    for (size_t i = 0; i < GV_KIND_COUNT; i++)
        if (gv_kinds[i].id == id)
            return &gv_kinds[i];
    return NULL;
}

const struct gv_kind *gv_kind_by_name(const char *s)
{
    for (size_t i = 0; s != NULL && i < GV_KIND_COUNT; i++)
        if (strcmp(s, gv_kinds[i].plural) == 0)
            return &gv_kinds[i];
    return NULL;
}

const struct gv_kind *gv_kind_by_word(const char *s)
{
    for (size_t i = 0; s != NULL && i < GV_KIND_COUNT; i++)
        if (strcmp(s, gv_kinds[i].plural) == 0 || strcmp(s, gv_kinds[i].singular) == 0)
            return &gv_kinds[i];
    return NULL;
}

const char *gv_kind_label(unsigned id, char *buf, size_t n)
{
    const struct gv_kind *k = gv_kind_by_id(id);
    if (k != NULL)
        snprintf(buf, n, "%s", k->plural);
    else
        snprintf(buf, n, "kind-%u", id);
    return buf;
}

const char *gv_kinds_text(char *buf, size_t n, const char *last_sep)
{
    size_t used = 0;
    if (n == 0)
        return buf;
    buf[0] = '\0';
    for (unsigned id = 0; id < GV_KIND_COUNT && used < n; id++) {
        const char *sep = id == 0 ? "" : id + 1 == GV_KIND_COUNT ? last_sep : ", ";
        int w = snprintf(buf + used, n - used, "%s%s", sep, gv_kind_by_id(id)->plural);
        used += w > 0 ? (size_t)w : 0;
    }
    return buf;
}
