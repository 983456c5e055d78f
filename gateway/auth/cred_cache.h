/* cred_cache.h - a per-thread cache of credentials that passed an expensive
 * check (a JWT signature, a PBKDF2 password hash), so a client that repeats
 * one costs a lookup.
 *
 * Threads: each worker thread has its own cache (thread-local, 256 entries
 * allocated on the first put) and must call gw_cred_cache_reset before it
 * exits. Direct-mapped by a hash of the credential, storing a copy of its
 * bytes, so a hit is an exact match, never a hash collision.
 *
 * Entries are keyed by a generation from gw_cred_cache_gen(): one per
 * credential set (one auth plugin's index over the consumers), so a
 * config change starts afresh and one kind of credential never answers a
 * lookup of another.
 */
#ifndef GV_GATEWAY_CRED_CACHE_H
#define GV_GATEWAY_CRED_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_CRED_CACHE_SLOTS   256  /* per thread */
#define GW_CRED_CACHE_MAX_LEN 1024 /* longer credentials are not cached */

/* A process-wide unique, never-reused generation number; never 0. */
uint64_t gw_cred_cache_gen(void);

/* get returns true and the index the caller stored when tok was put under
 * generation gen and now < exp + skew (the caller passes the same skew; a
 * negative skew counts as 0; INT64_MAX never expires); an expired entry is
 * dropped. Credentials longer than GW_CRED_CACHE_MAX_LEN (and empty ones)
 * are not cached: put ignores them, get misses. put replaces whatever shared
 * the slot and silently does nothing when out of memory. Put only what
 * passed the check, with the index it identified. */
bool gw_cred_cache_get(uint64_t gen, const char *tok, size_t len, int64_t now, int64_t skew,
                       size_t *index);
void gw_cred_cache_put(uint64_t gen, const char *tok, size_t len, int64_t exp, size_t index);
/* Frees this thread's entries. */
void gw_cred_cache_reset(void);

#endif
