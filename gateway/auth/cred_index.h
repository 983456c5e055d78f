/* cred_index.h - credentials looked up by value (API keys, user
 * names): a sorted array searched in O(log n) comparisons, no allocation.
 *
 * Built on the control thread when a snapshot is built (add, then seal),
 * read-only afterwards by any number of workers.
 */
#ifndef GV_GATEWAY_AUTH_CRED_INDEX_H
#define GV_GATEWAY_AUTH_CRED_INDEX_H

#include "common/schema.h"

#include <stddef.h>
#include <stdint.h>

struct gw_cred {
    char *value; /* owned copy */
    size_t len;
    const char *consumer; /* the consumer's name; outlives the index */
    const void *data;     /* the caller's credential (a password), outlives the index */
    uint32_t ci, cj;      /* consumers[ci].FIELD[cj]: where it was written */
};

struct gw_cred_index {
    struct gw_cred *v;
    size_t n;
    uint64_t gen; /* unique per index, keys gateway/auth/cred_cache.h entries */
};

/* A new empty index (gen set). NULL when out of memory. */
struct gw_cred_index *gw_cred_index_new(void);
/* Adds value for consumer; ci/cj say where it was written. 0 or GV_ENOMEM. */
int gw_cred_index_add(struct gw_cred_index *ix, const char *value, const char *consumer,
                      const void *data, uint32_t ci, uint32_t cj);
/* Sorts the index; a value two consumers claim is refused with the path of
 * the later one ("consumers[ci].FIELD[cj]") and "WHAT also belongs to
 * consumer \"x\"" (the value itself is shown only when show is true: keys
 * are secrets). A value one consumer lists twice is kept once. 0 or
 * GV_EINVAL with err filled. */
int gw_cred_index_seal(struct gw_cred_index *ix, const char *field, const char *what, bool show,
                       struct gv_schema_error *err);
/* The credential equal to s (len bytes), or NULL. */
const struct gw_cred *gw_cred_index_find(const struct gw_cred_index *ix, const char *s, size_t len);
void gw_cred_index_free(struct gw_cred_index *ix);

#endif
