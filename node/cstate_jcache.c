/* cstate_jcache.c - parsed stored values, one per object version; see
 * cstate_jcache.h. A chained hash table that doubles as it fills. */
#include "node/cstate_jcache.h"
#include "common/err.h"
#include "common/util.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct jentry {
    uint8_t kind;
    char *name;
    uint64_t vhash; /* of the stored bytes */
    size_t vlen;
    json_t *json;                      /* parsed, or */
    const struct gw_route_spec *route; /* compiled (a hold on a shared spec) */
    uint64_t round;                    /* the last round that asked for it */
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
    if (e->route != NULL)
        gw_route_spec_release(e->route);
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

/* The entry for (kind, name), or NULL. */
static struct jentry *find(const struct cs_jcache *c, uint8_t kind, const char *name)
{
    for (struct jentry *e = c->table[key_hash(kind, name) & (c->nslots - 1)]; e != NULL;
         e = e->next)
        if (e->kind == kind && strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

/* The entry for (kind, name), made empty when absent; NULL: no memory. */
static struct jentry *slot(struct cs_jcache *c, uint8_t kind, const char *name)
{
    struct jentry *found = find(c, kind, name);
    if (found != NULL)
        return found;
    struct jentry **head = &c->table[key_hash(kind, name) & (c->nslots - 1)];
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

static uint64_t value_hash(const struct cl_entry *e)
{
    return gv_hash64(e->value, e->value_len, 0x6a63);
}

static bool current(const struct jentry *j, const struct cl_entry *e, uint64_t h)
{
    return j->vhash == h && j->vlen == e->value_len;
}

json_t *cs_jcache_get(struct cs_jcache *c, const struct cl_entry *e, json_error_t *je)
{
    uint64_t h = value_hash(e);
    struct jentry *j = slot(c, e->kind, e->name);
    je->text[0] = '\0';
    c->asked++;
    if (j == NULL)
        return NULL;
    j->round = c->round;
    if (j->json != NULL && current(j, e, h))
        return json_incref(j->json);
    json_decref(j->json);
    if (j->route != NULL)
        gw_route_spec_release(j->route);
    j->route = NULL;
    j->json = json_loadb((const char *)e->value, e->value_len, JSON_DECODE_ANY, je);
    j->vhash = h;
    j->vlen = e->value_len;
    return json_incref(j->json);
}

const struct gw_route_spec *cs_jcache_route(struct cs_jcache *c, const struct cl_entry *e)
{
    struct jentry *j = find(c, e->kind, e->name);
    if (j == NULL || j->route == NULL || !current(j, e, value_hash(e)))
        return NULL;
    j->round = c->round;
    c->asked++;
    return j->route;
}

const struct gw_route_spec *cs_jcache_keep_route(struct cs_jcache *c, const struct cl_entry *e,
                                                 struct gw_route_spec *r)
{
    struct jentry *j = slot(c, e->kind, e->name);
    const struct gw_route_spec *sh = j ? gw_route_spec_share(r) : NULL;
    if (sh == NULL)
        return NULL;
    if (j->route != NULL)
        gw_route_spec_release(j->route);
    json_decref(j->json);
    j->json = NULL;
    j->route = sh;
    j->vhash = value_hash(e);
    j->vlen = e->value_len;
    j->round = c->round;
    c->asked++;
    return sh;
}

uint64_t cs_jcache_value_id(const struct cl_entry *e)
{
    return value_hash(e);
}

bool cs_jcache_keep_compiled(struct cs_jcache *c, const struct cl_entry *e, uint64_t vid,
                             const struct gw_route_spec *r)
{
    struct jentry *j = value_hash(e) == vid ? slot(c, e->kind, e->name) : NULL;
    if (j == NULL)
        return false;
    gw_route_spec_retain(r);
    if (j->route != NULL)
        gw_route_spec_release(j->route);
    json_decref(j->json);
    j->json = NULL;
    j->route = r;
    j->vhash = vid;
    j->vlen = e->value_len;
    j->round = c->round;
    return true;
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
