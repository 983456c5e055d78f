/* cstate_jcache.h - the stored objects, parsed (and routes compiled) once
 * per version.
 *
 * Every change is validated as the whole state it would make, built as JSON
 * from the store (node/cstate_view.c); parsing every stored value again for
 * each change would cost more than the validation. The cache keeps each
 * object's parsed value, keyed by (kind, name) and checked against the
 * stored bytes (length and a 64-bit hash), and hands out references: the
 * validator only reads them. A route is kept compiled instead of parsed
 * (a shared spec, gw_route_spec_share, that the states built from it hold
 * too): a state takes it as it is (node_state_reuse) rather than parsing
 * and compiling it again, and its JSON is not kept at all. Entries for objects gone from
 * the store are swept when the cache outgrows twice what was last asked for.
 *
 * Threads: the control loop only. What it hands out may be read by a build
 * off the loop (node/cstate_build.c): parsed values and compiled routes are
 * immutable, their references and holds atomic.
 */
#ifndef GV_NODE_CSTATE_JCACHE_H
#define GV_NODE_CSTATE_JCACHE_H

#include "cluster/store.h"
#include "gateway/router.h"

#include <jansson.h>

struct cs_jcache;

int cs_jcache_new(struct cs_jcache **out);
void cs_jcache_free(struct cs_jcache *c);
/* Starts a round of lookups (one materialisation of the state). */
void cs_jcache_begin(struct cs_jcache *c);
/* e's value parsed (a new reference), or NULL with je filled when it does
 * not parse (never cached) or when out of memory (je.text empty). */
json_t *cs_jcache_get(struct cs_jcache *c, const struct cl_entry *e, json_error_t *je);
/* e's route as compiled before (a shared spec), or NULL when it has not
 * been compiled in this version. Counts as asked. */
const struct gw_route_spec *cs_jcache_route(struct cs_jcache *c, const struct cl_entry *e);
/* Keeps r, compiled from e's stored value, for e's version in place of its
 * parsed value; r is moved into a shared spec, which is returned (held by
 * the cache), or NULL when out of memory (r unchanged). */
const struct gw_route_spec *cs_jcache_keep_route(struct cs_jcache *c, const struct cl_entry *e,
                                                 struct gw_route_spec *r);
/* The id of e's stored value (what says which version a compiled route is
 * for); any thread. */
uint64_t cs_jcache_value_id(const struct cl_entry *e);
/* Keeps shared spec r (one more hold), compiled elsewhere from the value
 * whose id is vid, for e's version when that is still e's value. Whether
 * kept. */
bool cs_jcache_keep_compiled(struct cs_jcache *c, const struct cl_entry *e, uint64_t vid,
                             const struct gw_route_spec *r);
/* Ends the round: drops what the round did not ask for, when the cache
 * holds more than twice that. */
void cs_jcache_end(struct cs_jcache *c);

#endif
