/* cred_cache.c - see cred_cache.h. */
#include "gateway/auth/cred_cache.h"

#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

_Static_assert((GW_CRED_CACHE_SLOTS & (GW_CRED_CACHE_SLOTS - 1)) == 0,
               "cache slots must be a power of two");

uint64_t gw_cred_cache_gen(void)
{
    static _Atomic uint64_t last;
    return atomic_fetch_add_explicit(&last, 1, memory_order_relaxed) + 1;
}

static int64_t sat_add(int64_t a, int64_t b) /* b >= 0 */
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

struct cache_entry {
    char *tok; /* owned copy of the credential; NULL: empty */
    size_t len;
    uint64_t gen;
    int64_t exp;
    size_t index;
};

static _Thread_local struct cache_entry *cache; /* GW_CRED_CACHE_SLOTS, or NULL */

/* FNV-1a over the whole credential: tokens of one issuer share their header
 * and often most of the payload, and differ at the end. */
static struct cache_entry *cache_slot(const char *tok, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)tok[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 32;
    return &cache[h & (GW_CRED_CACHE_SLOTS - 1)];
}

bool gw_cred_cache_get(uint64_t gen, const char *tok, size_t len, int64_t now, int64_t skew,
                       size_t *index)
{
    if (cache == NULL || tok == NULL || len == 0 || len > GW_CRED_CACHE_MAX_LEN)
        return false;
    struct cache_entry *e = cache_slot(tok, len);
    /* Constant-time compare: timing must not tell how much of a cached (valid)
     * credential a probe got right. */
    if (e->tok == NULL || e->gen != gen || e->len != len || CRYPTO_memcmp(e->tok, tok, len) != 0)
        return false;
    if (now >= sat_add(e->exp, skew < 0 ? 0 : skew)) {
        free(e->tok);
        e->tok = NULL;
        return false;
    }
    *index = e->index;
    return true;
}

void gw_cred_cache_put(uint64_t gen, const char *tok, size_t len, int64_t exp, size_t index)
{
    if (tok == NULL || len == 0 || len > GW_CRED_CACHE_MAX_LEN)
        return;
    if (cache == NULL && (cache = calloc(GW_CRED_CACHE_SLOTS, sizeof(*cache))) == NULL)
        return;
    struct cache_entry *e = cache_slot(tok, len);
    if (e->tok == NULL || e->len != len) {
        free(e->tok);
        if ((e->tok = malloc(len)) == NULL)
            return;
    }
    memcpy(e->tok, tok, len);
    e->len = len;
    e->gen = gen;
    e->exp = exp;
    e->index = index;
}

void gw_cred_cache_reset(void)
{
    if (cache == NULL)
        return;
    for (size_t i = 0; i < GW_CRED_CACHE_SLOTS; i++)
        free(cache[i].tok);
    free(cache);
    cache = NULL;
}
