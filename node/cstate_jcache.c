/* cstate_jcache.c - parsed stored values, one per object version; see
 * cstate_jcache.h. A chained hash table that doubles as it fills. */
#include "node/cstate_jcache.h"
#include "common/err.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

struct jentry {
    uint8_t kind;
    char *name;
    uint64_t vhash; /* of the stored bytes */
    size_t vlen;
    json_t *json;
    uint64_t round; /* the last round that asked for it */
    struct jentry *next;
};

struct cs_jcache {
    struct jentry **table;
    size_t nslots, count;
    uint64_t round;
    size_t asked; /* this round */
};

static uint64_t key_hash(uint8_t kind, const char *name)
{
    return gv_hash64(name, strlen(name), kind + 1);
}

int cs_jcache_new(struct cs_jcache **out)
{
    struct cs_jcache *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->table = calloc(64, sizeof(*c->table))) == NULL) {
        free(c);
        return GV_ENOMEM;
    }
    c->nslots = 64;
    *out = c;
    return 0;
}

static void entry_free(struct jentry *e)
{
    json_decref(e->json);
    free(e->name);
    free(e);
}

void cs_jcache_free(struct cs_jcache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nslots; i++)
        for (struct jentry *e = c->table[i], *next; e != NULL; e = next) {
            next = e->next;
            entry_free(e);
        }
    free(c->table);
    free(c);
}

static void grow(struct cs_jcache *c)
{
    size_t n = c->nslots * 2;
    struct jentry **t = calloc(n, sizeof(*t));
    if (t == NULL)
        return; /* chains just get longer */
    for (size_t i = 0; i < c->nslots; i++)
        for (struct jentry *e = c->table[i], *next; e != NULL; e = next) {
            next = e->next;
            struct jentry **head = &t[key_hash(e->kind, e->name) & (n - 1)];
            e->next = *head;
            *head = e;
        }
    free(c->table);
    c->table = t;
    c->nslots = n;
}

void cs_jcache_begin(struct cs_jcache *c)
{
    c->round++;
    c->asked = 0;
}

/* The entry for (kind, name), made empty when absent; NULL: no memory. */
static struct jentry *slot(struct cs_jcache *c, uint8_t kind, const char *name)
{
    struct jentry **head = &c->table[key_hash(kind, name) & (c->nslots - 1)];
    for (struct jentry *e = *head; e != NULL; e = e->next)
        if (e->kind == kind && strcmp(e->name, name) == 0)
            return e;
    struct jentry *e = calloc(1, sizeof(*e));
    if (e == NULL || (e->name = strdup(name)) == NULL) {
        free(e);
        return NULL;
    }
    e->kind = kind;
    e->next = *head;
    *head = e;
    if (++c->count > c->nslots)
        grow(c);
    return e;
}

json_t *cs_jcache_get(struct cs_jcache *c, const struct cl_entry *e, json_error_t *je)
{
    uint64_t h = gv_hash64(e->value, e->value_len, 0x6a63);
    struct jentry *j = slot(c, e->kind, e->name);
    je->text[0] = '\0';
    c->asked++;
    if (j == NULL)
        return NULL;
    j->round = c->round;
    if (j->json != NULL && j->vhash == h && j->vlen == e->value_len)
        return json_incref(j->json);
    json_decref(j->json);
    j->json = json_loadb((const char *)e->value, e->value_len, JSON_DECODE_ANY, je);
    j->vhash = h;
    j->vlen = e->value_len;
    return json_incref(j->json);
}

void cs_jcache_end(struct cs_jcache *c)
{
    if (c->count <= 2 * c->asked + 64)
        return;
    for (size_t i = 0; i < c->nslots; i++)
        for (struct jentry **pp = &c->table[i]; *pp != NULL;) {
            struct jentry *e = *pp;
            if (e->round == c->round) {
                pp = &e->next;
                continue;
            }
            *pp = e->next;
            entry_free(e);
            c->count--;
        }
}
