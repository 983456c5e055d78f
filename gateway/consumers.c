/* consumers.c - the snapshot's consumer table: credentials sorted by value
 * for the auth plugins' lookups (see auth.h). */
#include "gateway/auth.h"
#include "gateway/cred_cache.h"
#include "common/err.h"

#include <stdlib.h>
#include <string.h>

struct gw_consumers *gw_consumers_new(void)
{
    struct gw_consumers *c = calloc(1, sizeof(*c));
    if (c != NULL) {
        c->jwt.gen = gw_cred_cache_gen();
        c->users_gen = gw_cred_cache_gen();
    }
    return c;
}

int gw_consumers_add(struct gw_consumers *c, const char *name, uint32_t *index)
{
    char **v = realloc(c->names, (c->n + 1) * sizeof(*v));
    if (v == NULL)
        return GV_ENOMEM;
    c->names = v;
    if ((v[c->n] = strdup(name)) == NULL)
        return GV_ENOMEM;
    *index = (uint32_t)c->n++;
    return 0;
}

static struct gw_cred *cred_push(struct gw_cred **v, size_t *n, uint32_t consumer,
                                 const char *value)
{
    struct gw_cred *nv = realloc(*v, (*n + 1) * sizeof(*nv));
    if (nv == NULL)
        return NULL;
    *v = nv;
    struct gw_cred *x = &nv[*n];
    memset(x, 0, sizeof(*x));
    if ((x->value = strdup(value)) == NULL)
        return NULL;
    x->len = strlen(value);
    x->consumer = consumer;
    (*n)++;
    return x;
}

int gw_consumers_add_key(struct gw_consumers *c, uint32_t consumer, const char *key)
{
    return cred_push(&c->keys, &c->nkeys, consumer, key) ? 0 : GV_ENOMEM;
}

int gw_consumers_add_user(struct gw_consumers *c, uint32_t consumer, const char *user,
                          const char *stored)
{
    struct gw_password pw;
    if (gw_password_parse(stored, &pw) != 0)
        return GV_EINVAL;
    struct gw_cred *x = cred_push(&c->users, &c->nusers, consumer, user);
    if (x == NULL)
        return GV_ENOMEM;
    x->pw = pw;
    return 0;
}

int gw_consumers_add_jwt(struct gw_consumers *c, uint32_t consumer, const char *issuer,
                         enum gw_jwt_alg alg, const char *material, const char **why)
{
    struct gw_jwt_key *v = realloc(c->jwt.v, (c->jwt.n + 1) * sizeof(*v));
    if (v == NULL)
        return GV_ENOMEM;
    c->jwt.v = v;
    int rv = gw_jwt_key_init(&v[c->jwt.n], issuer, alg, material, (int)consumer, why);
    if (rv == 0)
        c->jwt.n++;
    return rv;
}

/* Shorter first, then bytes: a lookup compares lengths before memcmp. */
static int cred_cmp(const void *a, const void *b)
{
    const struct gw_cred *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->value, y->value, x->len);
}

void gw_consumers_seal(struct gw_consumers *c)
{
    if (c->nkeys > 1)
        qsort(c->keys, c->nkeys, sizeof(*c->keys), cred_cmp);
    if (c->nusers > 1)
        qsort(c->users, c->nusers, sizeof(*c->users), cred_cmp);
}

static const struct gw_cred *find(const struct gw_cred *v, size_t n, const char *s, size_t len)
{
    struct gw_cred want = {.value = (char *)s, .len = len};
    return n ? bsearch(&want, v, n, sizeof(*v), cred_cmp) : NULL;
}

const struct gw_cred *gw_consumers_by_key(const struct gw_consumers *c, const char *key, size_t len)
{
    return find(c->keys, c->nkeys, key, len);
}

const struct gw_cred *gw_consumers_by_user(const struct gw_consumers *c, const char *user,
                                           size_t len)
{
    return find(c->users, c->nusers, user, len);
}

static void creds_free(struct gw_cred *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].value);
    }
    free(v);
}

void gw_consumers_free(struct gw_consumers *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->names[i]);
    free(c->names);
    creds_free(c->keys, c->nkeys);
    creds_free(c->users, c->nusers);
    for (size_t i = 0; i < c->jwt.n; i++)
        gw_jwt_key_clear(&c->jwt.v[i]);
    free(c->jwt.v);
    free(c);
}
