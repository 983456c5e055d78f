/* store.c - the last-writer-wins map behind the replicated cluster state, its
 * anti-entropy digest and its msgpack encoding. */
#include "cluster/store.h"
#include "common/err.h"
#include "common/util.h"

#include <msgpack.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

struct slot {
    struct cl_entry e;
    uint8_t *value; /* owned copy behind e.value */
    uint64_t id;    /* identity of this version, XORed into its bucket */
    struct slot *next;
};

struct cl_store {
    struct slot **table;
    size_t nslots, count;
    uint64_t buckets[CL_STORE_BUCKETS];
    uint64_t max_stamp;
};

static bool clean_str(const char *s, size_t max, bool empty_ok)
{
    size_t n = strnlen(s, max + 1);
    if (n > max || (n == 0 && !empty_ok))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

int cl_entry_check(const struct cl_entry *e)
{
    /* any kind: one this node does not know came from a newer node, and is
     * kept and spread all the same */
    if (e == NULL || !clean_str(e->name, CL_STORE_MAX_NAME, false) ||
        !clean_str(e->origin, CL_WIRE_MAX_NAME, true) || e->value_len > CL_STORE_MAX_VALUE ||
        (e->value_len > 0 && e->value == NULL) || (e->deleted && e->value_len > 0) ||
        (!e->deleted && e->value_len == 0))
        return GV_EINVAL;
    /* seeds (stamp 0) have no origin and real writes always have one */
    if ((e->stamp == 0) != (e->origin[0] == '\0') || (e->deleted && e->stamp == 0))
        return GV_EINVAL;
    return 0;
}

#define CMP(a, b)                                                                                  \
    do {                                                                                           \
        if ((a) != (b))                                                                            \
            return (a) > (b) ? 1 : -1;                                                             \
    } while (0)

int cl_entry_cmp(const struct cl_entry *a, const struct cl_entry *b)
{
    CMP(a->stamp, b->stamp);
    int c = strcmp(a->origin, b->origin);
    if (c != 0)
        return c > 0 ? 1 : -1;
    /* Below here only seeds differ (a node never reuses a stamp): any fixed
     * order will do, as long as every node uses the same one. */
    CMP(a->deleted, b->deleted);
    CMP(a->rank, b->rank);
    CMP(a->value_len, b->value_len);
    c = a->value_len ? memcmp(a->value, b->value, a->value_len) : 0;
    return c > 0 ? 1 : c < 0 ? -1 : 0;
}

static uint64_t key_hash(uint8_t kind, const char *name)
{
    return gv_hash64(name, strlen(name), 0x9e3779b97f4a7c15ULL + kind);
}

unsigned cl_entry_bucket(uint8_t kind, const char *name)
{
    return (unsigned)(key_hash(kind, name) % CL_STORE_BUCKETS);
}

static uint64_t entry_id(const struct cl_entry *e)
{
    uint8_t head[14];
    head[0] = e->kind;
    head[1] = e->deleted;
    for (int i = 0; i < 4; i++) /* little-endian: the same on every node */
        head[2 + i] = (uint8_t)(e->rank >> (8 * i));
    for (int i = 0; i < 8; i++)
        head[6 + i] = (uint8_t)(e->stamp >> (8 * i));
    uint64_t h = gv_hash64(head, sizeof(head), 1);
    h = gv_hash64(e->name, strlen(e->name) + 1, h);
    h = gv_hash64(e->origin, strlen(e->origin) + 1, h);
    h = gv_hash64(e->value_len ? e->value : (const uint8_t *)"", e->value_len, h);
    return gv_mix64(h) | 1; /* never 0, so an entry always shows in its bucket */
}

int cl_store_new(struct cl_store **out)
{
    struct cl_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return GV_ENOMEM;
    s->nslots = 64;
    s->table = calloc(s->nslots, sizeof(*s->table));
    if (s->table == NULL) {
        free(s);
        return GV_ENOMEM;
    }
    *out = s;
    return 0;
}

void cl_store_free(struct cl_store *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nslots; i++) {
        for (struct slot *n = s->table[i], *next; n != NULL; n = next) {
            next = n->next;
            free(n->value);
            free(n);
        }
    }
    free(s->table);
    free(s);
}

static struct slot **find(const struct cl_store *s, uint8_t kind, const char *name)
{
    struct slot **pp = &s->table[key_hash(kind, name) & (s->nslots - 1)];
    for (; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->e.kind == kind && strcmp((*pp)->e.name, name) == 0)
            return pp;
    return pp;
}

const struct cl_entry *cl_store_get(const struct cl_store *s, uint8_t kind, const char *name)
{
    if (name == NULL)
        return NULL;
    struct slot **pp = find(s, kind, name);
    return *pp ? &(*pp)->e : NULL;
}

static void grow(struct cl_store *s)
{
    size_t n = s->nslots * 2;
    struct slot **t = calloc(n, sizeof(*t));
    if (t == NULL)
        return; /* chains just get longer */
    for (size_t i = 0; i < s->nslots; i++) {
        for (struct slot *e = s->table[i], *next; e != NULL; e = next) {
            next = e->next;
            struct slot **head = &t[key_hash(e->e.kind, e->e.name) & (n - 1)];
            e->next = *head;
            *head = e;
        }
    }
    free(s->table);
    s->table = t;
    s->nslots = n;
}

int cl_store_merge(struct cl_store *s, const struct cl_entry *e)
{
    if (cl_entry_check(e) != 0)
        return GV_EINVAL;
    struct slot **pp = find(s, e->kind, e->name);
    if (*pp != NULL && cl_entry_cmp(e, &(*pp)->e) <= 0)
        return 0;
    uint8_t *copy = NULL;
    if (e->value_len > 0 && (copy = malloc(e->value_len)) == NULL)
        return GV_ENOMEM;
    if (copy != NULL)
        memcpy(copy, e->value, e->value_len);
    struct slot *n = *pp;
    unsigned b = cl_entry_bucket(e->kind, e->name);
    if (n == NULL) {
        if ((n = calloc(1, sizeof(*n))) == NULL) {
            free(copy);
            return GV_ENOMEM;
        }
        *pp = n;
        s->count++;
    } else {
        s->buckets[b] ^= n->id;
        free(n->value);
    }
    n->e = *e;
    n->value = copy;
    n->e.value = copy;
    n->id = entry_id(&n->e);
    s->buckets[b] ^= n->id;
    if (e->stamp > s->max_stamp)
        s->max_stamp = e->stamp;
    if (s->count > s->nslots)
        grow(s);
    return 1;
}

static bool is_old_tombstone(const struct cl_entry *e, uint64_t before)
{
    return e->deleted && e->stamp < before;
}

static size_t drop_if(struct cl_store *s, bool (*pred)(const struct cl_entry *, uint64_t),
                      uint64_t arg)
{
    size_t dropped = 0;
    for (size_t i = 0; i < s->nslots; i++) {
        for (struct slot **pp = &s->table[i]; *pp != NULL;) {
            struct slot *n = *pp;
            if (pred(&n->e, arg)) {
                s->buckets[cl_entry_bucket(n->e.kind, n->e.name)] ^= n->id;
                *pp = n->next;
                free(n->value);
                free(n);
                s->count--;
                dropped++;
            } else {
                pp = &n->next;
            }
        }
    }
    return dropped;
}

size_t cl_store_gc(struct cl_store *s, uint64_t before)
{
    return drop_if(s, is_old_tombstone, before);
}

bool cl_store_drop_seed(struct cl_store *s, uint8_t kind, const char *name)
{
    struct slot **pp = find(s, kind, name), *n = *pp;
    if (n == NULL || n->e.stamp != 0)
        return false;
    s->buckets[cl_entry_bucket(kind, name)] ^= n->id;
    *pp = n->next;
    free(n->value);
    free(n);
    s->count--;
    return true;
}

size_t cl_store_count(const struct cl_store *s)
{
    return s->count;
}

int cl_store_foreach(const struct cl_store *s, int (*fn)(void *arg, const struct cl_entry *e),
                     void *arg)
{
    for (size_t i = 0; i < s->nslots; i++)
        for (struct slot *n = s->table[i]; n != NULL; n = n->next) {
            int rv = fn(arg, &n->e);
            if (rv != 0)
                return rv;
        }
    return 0;
}

size_t cl_store_scan(const struct cl_store *s, size_t from,
                     int (*fn)(void *arg, const struct cl_entry *e), void *arg)
{
    for (size_t i = from; i < s->nslots; i++) {
        int stop = 0;
        for (struct slot *n = s->table[i]; n != NULL; n = n->next)
            stop |= fn(arg, &n->e);
        if (stop)
            return i + 1;
    }
    return s->nslots;
}

size_t cl_store_slots(const struct cl_store *s)
{
    return s->nslots;
}

static int cmp_order(const void *a, const void *b)
{
    const struct cl_entry *x = *(const struct cl_entry *const *)a;
    const struct cl_entry *y = *(const struct cl_entry *const *)b;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return strcmp(x->name, y->name);
}

int cl_store_list(const struct cl_store *s, uint8_t kind, const struct cl_entry ***out)
{
    const struct cl_entry **v = malloc((s->count + 1) * sizeof(*v));
    size_t n = 0;
    if (v == NULL)
        return GV_ENOMEM;
    for (size_t i = 0; i < s->nslots; i++)
        for (struct slot *e = s->table[i]; e != NULL; e = e->next)
            if (e->e.kind == kind && !e->e.deleted)
                v[n++] = &e->e;
    qsort(v, n, sizeof(*v), cmp_order);
    *out = v;
    return (int)n;
}

uint64_t cl_store_max_stamp(const struct cl_store *s)
{
    return s->max_stamp;
}

void cl_store_buckets(const struct cl_store *s, uint64_t out[CL_STORE_BUCKETS])
{
    memcpy(out, s->buckets, sizeof(s->buckets));
}

uint64_t cl_store_root(const struct cl_store *s)
{
    return s->count == 0 ? 0 : gv_hash64(s->buckets, sizeof(s->buckets), 7);
}

/* ---- encoding ---- */

static int buf_write(void *data, const char *p, size_t len)
{
    return gv_buf_append(data, p, len) == 0 ? 0 : -1;
}

int cl_entry_pack(msgpack_packer *pk, const struct cl_entry *e)
{
    size_t nl = strlen(e->name), ol = strlen(e->origin);
    if (cl_entry_check(e) != 0)
        return GV_EINVAL;
    if (msgpack_pack_array(pk, 7) < 0 || msgpack_pack_uint8(pk, e->kind) < 0 ||
        msgpack_pack_str_with_body(pk, e->name, nl) < 0 || msgpack_pack_uint64(pk, e->stamp) < 0 ||
        msgpack_pack_str_with_body(pk, e->origin, ol) < 0 || msgpack_pack_uint32(pk, e->rank) < 0 ||
        (e->deleted ? msgpack_pack_true(pk) : msgpack_pack_false(pk)) < 0 ||
        msgpack_pack_bin_with_body(pk, e->value_len ? e->value : (const uint8_t *)"",
                                   e->value_len) < 0)
        return GV_ENOMEM;
    return 0;
}

int cl_entry_encode(const struct cl_entry *e, struct gv_buf *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, buf_write);
    size_t before = out->len;
    int rv = cl_entry_pack(&pk, e);
    if (rv != 0)
        out->len = before;
    return rv;
}

static int obj_uint(const msgpack_object *o, uint64_t max, uint64_t *v)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
        return GV_EPROTO;
    *v = o->via.u64;
    return 0;
}

static int obj_str(const msgpack_object *o, char *dst, size_t max)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > max ||
        (o->via.str.size > 0 && memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL))
        return GV_EPROTO;
    if (o->via.str.size > 0) /* msgpack-c gives "" as NULL */
        memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = '\0';
    return 0;
}

int cl_entry_unpack(const msgpack_object *o, struct cl_entry *e)
{
    uint64_t kind, stamp, rank;
    memset(e, 0, sizeof(*e));
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 7)
        return GV_EPROTO;
    const msgpack_object *a = o->via.array.ptr;
    if (obj_uint(&a[0], UINT8_MAX, &kind) < 0 || obj_str(&a[1], e->name, CL_STORE_MAX_NAME) < 0 ||
        obj_uint(&a[2], UINT64_MAX, &stamp) < 0 ||
        obj_str(&a[3], e->origin, CL_WIRE_MAX_NAME) < 0 || obj_uint(&a[4], UINT32_MAX, &rank) < 0 ||
        a[5].type != MSGPACK_OBJECT_BOOLEAN || a[6].type != MSGPACK_OBJECT_BIN ||
        a[6].via.bin.size > CL_STORE_MAX_VALUE)
        return GV_EPROTO;
    e->kind = (uint8_t)kind;
    e->stamp = stamp;
    e->rank = (uint32_t)rank;
    e->deleted = a[5].via.boolean;
    e->value = (const uint8_t *)a[6].via.bin.ptr;
    e->value_len = a[6].via.bin.size;
    return cl_entry_check(e) == 0 ? 0 : GV_EPROTO;
}

int cl_entry_decode(const uint8_t *data, size_t len, size_t *off, struct cl_entry *e)
{
    size_t end;
    if (*off > len || cl_wire_skim(data + *off, len - *off, &end) < 0)
        return GV_EPROTO;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t o = 0;
    int rv = GV_EPROTO;
    if (msgpack_unpack_next(&up, (const char *)data + *off, end, &o) == MSGPACK_UNPACK_SUCCESS &&
        o == end)
        rv = cl_entry_unpack(&up.data, e); /* bins point into data, not the zone */
    msgpack_unpacked_destroy(&up);
    if (rv == 0)
        *off += end;
    return rv;
}

/* ---- the file image ---- */

#define FILE_MAGIC "GVST"
#define FILE_HEAD  5
#define FILE_SUM   32

struct save_ctx {
    msgpack_packer *pk;
    int rv;
};

static int save_one(void *arg, const struct cl_entry *e)
{
    struct save_ctx *c = arg;
    c->rv = cl_entry_pack(c->pk, e);
    return c->rv;
}

/* The image's sum: HMAC-SHA256 under key (version 2), or SHA-256 without
 * one (version 1). */
static int image_sum(const uint8_t *key, const void *data, size_t len, uint8_t md[FILE_SUM])
{
    unsigned int mdlen = 0;
    if (key != NULL)
        return HMAC(EVP_sha256(), key, CL_STORE_KEY_LEN, data, len, md, &mdlen) ? 0 : GV_EIO;
    return EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) == 1 ? 0 : GV_EIO;
}

int cl_store_save_keyed(const struct cl_store *s, uint64_t clock, const uint8_t *key,
                        struct gv_buf *out)
{
    msgpack_packer pk;
    size_t start = out->len;
    uint8_t md[FILE_SUM];
    msgpack_packer_init(&pk, out, buf_write);
    struct save_ctx ctx = {&pk, 0};
    if (gv_buf_append(out, FILE_MAGIC, 4) != 0 ||
        gv_buf_append(out, key ? "\x02" : "\x01", 1) != 0 || msgpack_pack_array(&pk, 2) < 0 ||
        msgpack_pack_uint64(&pk, clock) < 0 || msgpack_pack_array(&pk, (uint32_t)s->count) < 0 ||
        cl_store_foreach(s, save_one, &ctx) != 0 ||
        image_sum(key, out->data + start, out->len - start, md) != 0 ||
        gv_buf_append(out, md, sizeof(md)) != 0) {
        out->len = start;
        return ctx.rv ? ctx.rv : GV_ENOMEM;
    }
    return 0;
}

int cl_store_save(const struct cl_store *s, uint64_t clock, struct gv_buf *out)
{
    return cl_store_save_keyed(s, clock, NULL, out);
}

int cl_store_load(struct cl_store *s, const uint8_t *data, size_t len, uint64_t *clock)
{
    return cl_store_load_keyed(s, data, len, NULL, clock);
}

int cl_store_load_keyed(struct cl_store *s, const uint8_t *data, size_t len, const uint8_t *key,
                        uint64_t *clock)
{
    uint8_t md[FILE_SUM];
    size_t end, off = 0;
    /* With a key only a keyed image is taken: a file anyone could have
     * written (plain SHA-256) must not change a keyed cluster's state. */
    if (len < FILE_HEAD + FILE_SUM || memcmp(data, FILE_MAGIC, 4) != 0 ||
        data[4] != (key ? 2 : 1) || image_sum(key, data, len - FILE_SUM, md) != 0 ||
        CRYPTO_memcmp(md, data + len - FILE_SUM, FILE_SUM) != 0)
        return GV_EPROTO;
    const uint8_t *body = data + FILE_HEAD;
    size_t blen = len - FILE_HEAD - FILE_SUM;
    if (cl_wire_skim(body, blen, &end) < 0 || end != blen)
        return GV_EPROTO;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    int rv = GV_EPROTO;
    if (msgpack_unpack_next(&up, (const char *)body, blen, &off) != MSGPACK_UNPACK_SUCCESS)
        goto out;
    const msgpack_object *root = &up.data;
    uint64_t c;
    if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size != 2 ||
        obj_uint(&root->via.array.ptr[0], UINT64_MAX, &c) < 0 ||
        root->via.array.ptr[1].type != MSGPACK_OBJECT_ARRAY)
        goto out;
    const msgpack_object_array *list = &root->via.array.ptr[1].via.array;
    for (uint32_t i = 0; i < list->size; i++) {
        struct cl_entry e;
        if (cl_entry_unpack(&list->ptr[i], &e) < 0)
            goto out;
    }
    for (uint32_t i = 0; i < list->size; i++) {
        struct cl_entry e;
        cl_entry_unpack(&list->ptr[i], &e);
        if ((rv = cl_store_merge(s, &e)) < 0)
            goto out;
    }
    *clock = c;
    rv = 0;
out:
    msgpack_unpacked_destroy(&up);
    return rv;
}
