/* kinds.h - the kinds of cluster state (services, routes, consumers,
 * plugins): the number each is stored and gossiped under, its names, and the
 * order objects are applied in. The one list of kinds; everything that needs
 * one reads this table.
 *
 * The store and the gossip treat a kind as an opaque number (0..255), so a
 * node that meets a kind it does not know keeps and spreads it untouched:
 * ids are never reused or renumbered.
 *
 * No threads, no state: a const table.
 */
#ifndef GV_COMMON_KINDS_H
#define GV_COMMON_KINDS_H

#include <stddef.h>
#include <stdint.h>

/* As stored on disk and on the wire. */
enum gv_kind_id {
    GV_KIND_SERVICES = 0,
    GV_KIND_ROUTES = 1,
    GV_KIND_CONSUMERS = 2,
    GV_KIND_PLUGINS = 3,
};
#define GV_KIND_COUNT 4 /* ids 0..GV_KIND_COUNT-1 are known */

struct gv_kind {
    uint8_t id;
    const char *plural;   /* "services": the config file's key, /config/KIND, ctl's output */
    const char *singular; /* "service": messages; ctl takes it as KIND too */
};

/* Every kind in apply order: services, consumers, plugins, routes. Routes
 * name services (and their plugins may name consumers), so a file applied
 * object by object in this order never names an object not yet there. */
extern const struct gv_kind gv_kinds[GV_KIND_COUNT];

/* The kind with this id, or NULL when it is not one this version knows. */
const struct gv_kind *gv_kind_by_id(unsigned id);
/* The kind whose plural is s (the config's key, the admin API's KIND), or NULL. */
const struct gv_kind *gv_kind_by_name(const char *s);
/* The kind called s in either number ("route", "routes"), or NULL. */
const struct gv_kind *gv_kind_by_word(const char *s);
/* The plural of id, or "kind-N" for an unknown one (written into buf, n
 * bytes, which is then returned): for logs about any entry. */
const char *gv_kind_label(unsigned id, char *buf, size_t n);
/* The plurals in id order for messages, "services, routes, consumers" then
 * last_sep then "plugins" (last_sep: ", ", " or ", " and "); into buf, which
 * is returned. */
const char *gv_kinds_text(char *buf, size_t n, const char *last_sep);

#endif
