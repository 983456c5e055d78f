/* strmap.h - an immutable map from byte strings to small integers, built
 * once and then read by any number of threads without locks.
 *
 * Keys are hashed with 64-bit FNV-1a, which extends one byte at a time:
 * a caller walking a string can hash every prefix of it in one pass
 * (gv_strmap_hash_step) and look each one up without rehashing
 * (gv_strmap_get_hashed). That is how the router finds every configured
 * prefix of a request path in O(path length).
 *
 * Keys are borrowed (they must outlive the map). Open addressing, load
 * factor <= 1/2: a lookup is one or two probes and a memcmp on a hash hit.
 */
#ifndef GV_COMMON_STRMAP_H
#define GV_COMMON_STRMAP_H

#include <stddef.h>
#include <stdint.h>

#define GV_STRMAP_HASH_INIT 0xcbf29ce484222325ULL

struct gv_strmap_slot {
    const char *key;
    uint32_t len;
    uint32_t value;
    uint64_t hash;
};

struct gv_strmap {
    struct gv_strmap_slot *slots; /* NULL while empty */
    size_t mask;                  /* slots - 1 (a power of two) */
    size_t count;
};

static inline uint64_t gv_strmap_hash_step(uint64_t h, unsigned char byte)
{
    return (h ^ byte) * 0x100000001b3ULL;
}

uint64_t gv_strmap_hash(const char *key, size_t len);

/* Adds key -> value; a key already present keeps its first value (returns
 * 0 either way). 0 or GV_ENOMEM (the map is unchanged). */
int gv_strmap_put(struct gv_strmap *m, const char *key, size_t len, uint32_t value);
/* The value of key, or -1. */
long gv_strmap_get(const struct gv_strmap *m, const char *key, size_t len);
/* The same with the key's hash already known. */
long gv_strmap_get_hashed(const struct gv_strmap *m, const char *key, size_t len, uint64_t hash);
void gv_strmap_free(struct gv_strmap *m);

#endif
