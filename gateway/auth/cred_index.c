/* cred_index.c - credentials sorted by value; see cred_index.h. */
#include "gateway/auth/cred_index.h"
#include "gateway/auth/cred_cache.h"
#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gw_cred_index *gw_cred_index_new(void)
{
    struct gw_cred_index *ix = calloc(1, sizeof(*ix));
    if (ix != NULL)
        ix->gen = gw_cred_cache_gen();
    return ix;
}

int gw_cred_index_add(struct gw_cred_index *ix, const char *value, const char *consumer,
                      const void *data, uint32_t ci, uint32_t cj)
{
    struct gw_cred *v = realloc(ix->v, (ix->n + 1) * sizeof(*v));
    if (v == NULL)
        return GV_ENOMEM;
    ix->v = v;
    struct gw_cred *x = &v[ix->n];
    if ((x->value = strdup(value)) == NULL)
        return GV_ENOMEM;
    x->len = strlen(value);
    x->consumer = consumer;
    x->data = data;
    x->ci = ci;
    x->cj = cj;
    ix->n++;
    return 0;
}

/* Shorter first, then bytes: a lookup compares lengths before memcmp. */
static int by_value(const void *a, const void *b)
{
    const struct gw_cred *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->value, y->value, x->len);
}

/* By value, then where it was written. */
static int by_value_place(const void *a, const void *b)
{
    const struct gw_cred *x = a, *y = b;
    int c = by_value(a, b);
    if (c != 0)
        return c;
    if (x->ci != y->ci)
        return x->ci < y->ci ? -1 : 1;
    return x->cj < y->cj ? -1 : x->cj > y->cj;
}

int gw_cred_index_seal(struct gw_cred_index *ix, const char *field, const char *what, bool show,
                       struct gv_schema_error *err)
{
    char p[GV_PATH_LEN];
    size_t kept = 0;
    if (ix->n > 1)
        qsort(ix->v, ix->n, sizeof(*ix->v), by_value_place);
    /* Sorted by value then place: the first of equal values was written
     * first; a later one of another consumer is the one refused. */
    for (size_t i = 1; i < ix->n; i++) {
        const struct gw_cred *a = &ix->v[i - 1], *x = &ix->v[i];
        if (by_value(a, x) != 0 || strcmp(a->consumer, x->consumer) == 0)
            continue;
        snprintf(p, sizeof(p), "consumers[%u].%s[%u]", x->ci, field, x->cj);
        if (show)
            return gv_schema_fail(err, p, "%s \"%s\" also belongs to consumer \"%s\"", what,
                                  x->value, a->consumer);
        return gv_schema_fail(err, p, "%s also belongs to consumer \"%s\"", what, a->consumer);
    }
    for (size_t i = 0; i < ix->n; i++) {
        if (kept > 0 && by_value(&ix->v[kept - 1], &ix->v[i]) == 0) {
            free(ix->v[i].value); /* listed twice by the same consumer: harmless */
            continue;
        }
        ix->v[kept++] = ix->v[i];
    }
    ix->n = kept;
    return 0;
}

const struct gw_cred *gw_cred_index_find(const struct gw_cred_index *ix, const char *s, size_t len)
{
    struct gw_cred want = {.value = (char *)s, .len = len};
    return ix != NULL && ix->n ? bsearch(&want, ix->v, ix->n, sizeof(*ix->v), by_value) : NULL;
}

void gw_cred_index_free(struct gw_cred_index *ix)
{
    if (ix == NULL)
        return;
    for (size_t i = 0; i < ix->n; i++)
        free(ix->v[i].value);
    free(ix->v);
    free(ix);
}
