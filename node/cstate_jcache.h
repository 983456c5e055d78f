/* cstate_jcache.h - the stored objects' JSON, parsed once per version.
 *
 * Every change is validated as the whole state it would make, built as JSON
 * from the store (node/cstate_view.c); parsing every stored value again for
 * each change would cost more than the validation. The cache keeps each
 * object's parsed value, keyed by (kind, name) and checked against the
 * stored bytes (length and a 64-bit hash), and hands out references: the
 * validator only reads them. Entries for objects gone from the store are
 * swept when the cache outgrows twice what was last asked for.
 *
 * Threads: the control loop only.
 */
#ifndef GV_NODE_CSTATE_JCACHE_H
#define GV_NODE_CSTATE_JCACHE_H

#include "cluster/store.h"

#include <jansson.h>

struct cs_jcache;

int cs_jcache_new(struct cs_jcache **out);
void cs_jcache_free(struct cs_jcache *c);
/* Starts a round of lookups (one materialisation of the state). */
void cs_jcache_begin(struct cs_jcache *c);
/* e's value parsed (a new reference), or NULL with je filled when it does
 * not parse (never cached) or when out of memory (je.text empty). */
json_t *cs_jcache_get(struct cs_jcache *c, const struct cl_entry *e, json_error_t *je);
/* Ends the round: drops what the round did not ask for, when the cache
 * holds more than twice that. */
void cs_jcache_end(struct cs_jcache *c);

#endif
