/* strmap.c - an immutable string map with FNV-1a hashing; see strmap.h. */
#include "common/strmap.h"
#include "common/err.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

uint64_t gv_strmap_hash(const char *key, size_t len)
{
    uint64_t h = GV_STRMAP_HASH_INIT;
    for (size_t i = 0; i < len; i++)
        h = gv_strmap_hash_step(h, (unsigned char)key[i]);
    return h;
}

static bool same(const struct gv_strmap_slot *s, const char *key, size_t len, uint64_t hash)
{
    return s->hash == hash && s->len == len && memcmp(s->key, key, len) == 0;
}

static struct gv_strmap_slot *find(struct gv_strmap_slot *slots, size_t mask, const char *key,
                                   size_t len, uint64_t hash)
{
    for (size_t i = hash & mask;; i = (i + 1) & mask)
        if (slots[i].key == NULL || same(&slots[i], key, len, hash))
            return &slots[i];
}

static int grow(struct gv_strmap *m)
{
    size_t n = m->slots ? (m->mask + 1) * 2 : 4;
    struct gv_strmap_slot *slots = calloc(n, sizeof(*slots));
    if (slots == NULL)
        return GV_ENOMEM;
    for (size_t i = 0; m->slots != NULL && i <= m->mask; i++)
        if (m->slots[i].key != NULL)
            *find(slots, n - 1, m->slots[i].key, m->slots[i].len, m->slots[i].hash) = m->slots[i];
    free(m->slots);
    m->slots = slots;
    m->mask = n - 1;
    return 0;
}

int gv_strmap_put(struct gv_strmap *m, const char *key, size_t len, uint32_t value)
{
    if (len > UINT32_MAX)
        return GV_EINVAL;
    if ((m->slots == NULL || (m->count + 1) * 2 > m->mask + 1) && grow(m) != 0)
        return GV_ENOMEM;
    uint64_t hash = gv_strmap_hash(key, len);
    struct gv_strmap_slot *s = find(m->slots, m->mask, key, len, hash);
    if (s->key == NULL) {
        *s = (struct gv_strmap_slot){key, (uint32_t)len, value, hash};
        m->count++;
    }
    return 0;
}

long gv_strmap_get_hashed(const struct gv_strmap *m, const char *key, size_t len, uint64_t hash)
{
    if (m->slots == NULL)
        return -1;
    const struct gv_strmap_slot *s = find(m->slots, m->mask, key, len, hash);
    return s->key != NULL ? (long)s->value : -1;
}

long gv_strmap_get(const struct gv_strmap *m, const char *key, size_t len)
{
    return gv_strmap_get_hashed(m, key, len, gv_strmap_hash(key, len));
}

void gv_strmap_free(struct gv_strmap *m)
{
    free(m->slots);
    memset(m, 0, sizeof(*m));
}
