/* store_test.c - the last-writer-wins store: the same writes in any order give
 * the same state, seeds and tombstones, shape checks, the anti-entropy digest,
 * tombstone collection, ordered listing, the entry codec under damaged input,
 * and the file image with its checksum. */
#include "cluster/store.h"
#include "common/kinds.h"
#include "common/err.h"
#include "test.h"

#include <msgpack.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>

/* A fixed-seed PRNG, so a failure is the same on every run. */
static uint64_t rng = 0x243f6a8885a308d3ULL;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Copies src into dst[0..n), cut short when longer (some tests pass
 * over-long names on purpose). */
static void set_str(char *dst, size_t n, const char *src)
{
    size_t len = strlen(src);
    if (len > n - 1)
        len = n - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* An entry; value NULL makes a tombstone. The strings must outlive it. */
static struct cl_entry mk(uint8_t kind, const char *name, uint64_t stamp, const char *origin,
                          const char *value)
{
    struct cl_entry e;
    memset(&e, 0, sizeof(e));
    e.kind = kind;
    e.rank = CL_RANK_NONE;
    e.stamp = stamp;
    set_str(e.name, sizeof(e.name), name);
    set_str(e.origin, sizeof(e.origin), origin);
    e.deleted = value == NULL;
    e.value = (const uint8_t *)value;
    e.value_len = value ? strlen(value) : 0;
    return e;
}

static bool same_version(const struct cl_entry *a, const struct cl_entry *b)
{
    return a != NULL && b != NULL && a->kind == b->kind && strcmp(a->name, b->name) == 0 &&
           a->rank == b->rank && cl_entry_cmp(a, b) == 0;
}

static int in_other(void *arg, const struct cl_entry *e)
{
    const struct cl_store *other = arg;
    return same_version(e, cl_store_get(other, e->kind, e->name)) ? 0 : 1;
}

/* The same entries, version for version. */
static bool same_content(const struct cl_store *a, const struct cl_store *b)
{
    return cl_store_count(a) == cl_store_count(b) && cl_store_foreach(a, in_other, (void *)b) == 0;
}

static bool same_buckets(const struct cl_store *a, const struct cl_store *b)
{
    uint64_t x[CL_STORE_BUCKETS], y[CL_STORE_BUCKETS];
    cl_store_buckets(a, x);
    cl_store_buckets(b, y);
    return memcmp(x, y, sizeof(x)) == 0;
}

/* The next permutation of p[0..n) in lexical order; false after the last. */
static bool next_perm(int *p, int n)
{
    int i = n - 2;
    while (i >= 0 && p[i] >= p[i + 1])
        i--;
    if (i < 0)
        return false;
    int j = n - 1;
    while (p[j] <= p[i])
        j--;
    int t = p[i];
    p[i] = p[j];
    p[j] = t;
    for (int a = i + 1, b = n - 1; a < b; a++, b--) {
        t = p[a];
        p[a] = p[b];
        p[b] = t;
    }
    return true;
}

static void test_lww_any_order(void)
{
    /* two objects, several versions each: a seed, ordinary writes, a stamp
     * tie broken by origin, a tombstone in between */
    struct cl_entry w[7] = {
        mk(GV_KIND_SERVICES, "users", 0, "", "{\"seed\":1}"),
        mk(GV_KIND_SERVICES, "users", 100, "n1", "{\"v\":1}"),
        mk(GV_KIND_SERVICES, "users", 300, "n1", "{\"v\":2}"),
        mk(GV_KIND_SERVICES, "users", 300, "n2", "{\"v\":3}"), /* the winner: n2 > n1 */
        mk(GV_KIND_SERVICES, "users", 200, "n3", NULL),
        mk(GV_KIND_ROUTES, "users", 50, "n2", NULL), /* same name, other kind */
        mk(GV_KIND_ROUTES, "users", 40, "n9", "{\"r\":1}"),
    };
    w[0].rank = 3;
    int p[7] = {0, 1, 2, 3, 4, 5, 6};
    uint64_t root = 0;
    int perms = 0;
    do {
        struct cl_store *s;
        CHECK_INT(cl_store_new(&s), 0);
        for (int i = 0; i < 7; i++) {
            int rv = cl_store_merge(s, &w[p[i]]);
            CHECK(rv == 0 || rv == 1);
            /* merging it again never changes anything */
            CHECK_INT(cl_store_merge(s, &w[p[i]]), 0);
        }
        CHECK_INT(cl_store_count(s), 2);
        CHECK(same_version(cl_store_get(s, GV_KIND_SERVICES, "users"), &w[3]));
        CHECK(same_version(cl_store_get(s, GV_KIND_ROUTES, "users"), &w[5]));
        CHECK_INT(cl_store_max_stamp(s), 300);
        if (perms == 0)
            root = cl_store_root(s);
        CHECK(cl_store_root(s) == root);
        cl_store_free(s);
        perms++;
    } while (next_perm(p, 7));
    CHECK_INT(perms, 5040);
    CHECK(root != 0);
    /* cmp is antisymmetric and total over these */
    for (int i = 0; i < 7; i++)
        for (int j = 0; j < 7; j++)
            if (w[i].kind == w[j].kind)
                CHECK_INT(cl_entry_cmp(&w[i], &w[j]), -cl_entry_cmp(&w[j], &w[i]));
}

static void test_seeds_and_tombstones(void)
{
    struct cl_store *s;
    CHECK_INT(cl_store_new(&s), 0);
    struct cl_entry seed = mk(GV_KIND_ROUTES, "r", 0, "", "{\"from\":\"file\"}");
    seed.rank = 0;
    CHECK_INT(cl_store_merge(s, &seed), 1);
    /* any write, even the smallest stamp, beats a seed */
    struct cl_entry w1 = mk(GV_KIND_ROUTES, "r", 1, "a", "{}");
    CHECK_INT(cl_store_merge(s, &w1), 1);
    CHECK_INT(cl_store_merge(s, &seed), 0);
    CHECK(same_version(cl_store_get(s, GV_KIND_ROUTES, "r"), &w1));
    /* a newer tombstone wins over an older write */
    struct cl_entry del = mk(GV_KIND_ROUTES, "r", 10, "b", NULL);
    CHECK_INT(cl_store_merge(s, &del), 1);
    const struct cl_entry *cur = cl_store_get(s, GV_KIND_ROUTES, "r");
    CHECK(cur != NULL && cur->deleted && cur->value_len == 0);
    CHECK_INT(cl_store_count(s), 1); /* tombstones count */
    /* an older write (arriving late) loses to the tombstone */
    struct cl_entry w5 = mk(GV_KIND_ROUTES, "r", 5, "z", "{\"late\":1}");
    CHECK_INT(cl_store_merge(s, &w5), 0);
    CHECK(cl_store_get(s, GV_KIND_ROUTES, "r")->deleted);
    /* a newer write brings the object back */
    struct cl_entry w11 = mk(GV_KIND_ROUTES, "r", 11, "a", "{\"back\":1}");
    CHECK_INT(cl_store_merge(s, &w11), 1);
    CHECK(same_version(cl_store_get(s, GV_KIND_ROUTES, "r"), &w11));
    /* the value is the store's copy, not ours */
    char mine[] = "{\"x\":1}";
    struct cl_entry w12 = mk(GV_KIND_ROUTES, "r", 12, "a", mine);
    CHECK_INT(cl_store_merge(s, &w12), 1);
    mine[2] = 'y';
    cur = cl_store_get(s, GV_KIND_ROUTES, "r");
    CHECK(cur->value != (const uint8_t *)mine && memcmp(cur->value, "{\"x\":1}", 7) == 0);
    /* two seeds: a fixed order, whatever the order of arrival */
    struct cl_store *t;
    CHECK_INT(cl_store_new(&t), 0);
    struct cl_entry s1 = mk(GV_KIND_PLUGINS, "p", 0, "", "{\"a\":1}");
    struct cl_entry s2 = mk(GV_KIND_PLUGINS, "p", 0, "", "{\"b\":2}");
    int ab = cl_store_merge(t, &s1) + cl_store_merge(t, &s2);
    const struct cl_entry *kept = cl_store_get(t, GV_KIND_PLUGINS, "p");
    bool s2_won = same_version(kept, &s2);
    cl_store_free(t);
    CHECK_INT(cl_store_new(&t), 0);
    int ba = cl_store_merge(t, &s2) + cl_store_merge(t, &s1);
    CHECK(same_version(cl_store_get(t, GV_KIND_PLUGINS, "p"), s2_won ? &s2 : &s1));
    CHECK(ab >= 1 && ba >= 1);
    /* dropping seeds leaves the writes */
    struct cl_entry w2 = mk(GV_KIND_PLUGINS, "q", 7, "n", "{}");
    CHECK_INT(cl_store_merge(t, &w2), 1);
    CHECK(!cl_store_drop_seed(t, GV_KIND_PLUGINS, "q")); /* a write is not a seed */
    CHECK(cl_store_drop_seed(t, GV_KIND_PLUGINS, "p"));
    CHECK(!cl_store_drop_seed(t, GV_KIND_PLUGINS, "p"));
    CHECK_INT(cl_store_count(t), 1);
    CHECK(cl_store_get(t, GV_KIND_PLUGINS, "p") == NULL);
    cl_store_free(t);
    cl_store_free(s);
}

static void test_entry_check(void)
{
    static uint8_t big[CL_STORE_MAX_VALUE + 1];
    memset(big, 'x', sizeof(big));
    struct cl_entry ok = mk(GV_KIND_SERVICES, "svc", 5, "n1", "{}");
    CHECK_INT(cl_entry_check(&ok), 0);
    CHECK_INT(cl_entry_check(NULL), GV_EINVAL);
    struct cl_entry e;

    /* any kind: the store does not know which ones exist */
    e = ok;
    e.kind = GV_KIND_COUNT;
    CHECK_INT(cl_entry_check(&e), 0);
    e = ok;
    e.kind = 255;
    CHECK_INT(cl_entry_check(&e), 0);
    /* names: 1..128 bytes, no control characters */
    e = ok;
    e.name[0] = '\0';
    CHECK_INT(cl_entry_check(&e), GV_EINVAL);
    e = ok;
    memset(e.name, 'n', CL_STORE_MAX_NAME);
    e.name[CL_STORE_MAX_NAME] = '\0';
    CHECK_INT(cl_entry_check(&e), 0);
    memset(e.name, 'n', sizeof(e.name)); /* 129 bytes, no terminator */
    CHECK_INT(cl_entry_check(&e), GV_EINVAL);
    const char bad_chars[] = {'\n', '\r', '\t', 0x01, 0x1f, 0x7f};
    for (size_t i = 0; i < sizeof(bad_chars); i++) {
        e = ok;
        snprintf(e.name, sizeof(e.name), "a%cb", bad_chars[i]);
        CHECK_INT(cl_entry_check(&e), GV_EINVAL);
        e = ok;
        snprintf(e.origin, sizeof(e.origin), "n%c", bad_chars[i]);
        CHECK_INT(cl_entry_check(&e), GV_EINVAL);
    }
    e = ok;
    snprintf(e.name, sizeof(e.name), "caf\xc3\xa9 /v1 ~x"); /* UTF-8, spaces, slashes */
    CHECK_INT(cl_entry_check(&e), 0);
    /* origin: up to 64 bytes */
    e = ok;
    memset(e.origin, 'o', CL_WIRE_MAX_NAME);
    e.origin[CL_WIRE_MAX_NAME] = '\0';
    CHECK_INT(cl_entry_check(&e), 0);
    memset(e.origin, 'o', sizeof(e.origin));
    CHECK_INT(cl_entry_check(&e), GV_EINVAL);
    /* tombstones have no value; live entries have one */
    e = mk(GV_KIND_SERVICES, "svc", 5, "n1", NULL);
    CHECK_INT(cl_entry_check(&e), 0);
    e.value = (const uint8_t *)"{}";
    e.value_len = 2;
    CHECK_INT(cl_entry_check(&e), GV_EINVAL);
    e = ok;
    e.value_len = 0;
    CHECK_INT(cl_entry_check(&e), GV_EINVAL);
    e = ok;
    e.value = NULL;
    CHECK_INT(cl_entry_check(&e), GV_EINVAL);
    /* seeds: stamp 0 exactly when there is no origin, and never deleted */
    e = ok;
    e.stamp = 0;
    CHECK_INT(cl_entry_check(&e), GV_EINVAL);
    e.origin[0] = '\0';
    CHECK_INT(cl_entry_check(&e), 0);
    e.stamp = 9;
    CHECK_INT(cl_entry_check(&e), GV_EINVAL);
    e = mk(GV_KIND_SERVICES, "svc", 0, "", NULL);
    CHECK_INT(cl_entry_check(&e), GV_EINVAL);
    /* value size */
    e = ok;
    e.value = big;
    e.value_len = CL_STORE_MAX_VALUE;
    CHECK_INT(cl_entry_check(&e), 0);
    e.value_len = CL_STORE_MAX_VALUE + 1;
    CHECK_INT(cl_entry_check(&e), GV_EINVAL);
    /* the store refuses what the check refuses, and stays as it was */
    struct cl_store *s;
    CHECK_INT(cl_store_new(&s), 0);
    CHECK_INT(cl_store_merge(s, &e), GV_EINVAL);
    e = ok;
    e.name[0] = '\0';
    CHECK_INT(cl_store_merge(s, &e), GV_EINVAL);
    CHECK_INT(cl_store_count(s), 0);
    CHECK_INT(cl_store_root(s), 0);
    CHECK(cl_store_get(s, 9, "svc") == NULL);
    CHECK(cl_store_get(s, GV_KIND_SERVICES, NULL) == NULL);
    cl_store_free(s);
}

static void test_digest(void)
{
    struct cl_store *a, *b;
    CHECK_INT(cl_store_new(&a), 0);
    CHECK_INT(cl_store_new(&b), 0);
    CHECK_INT(cl_store_root(a), 0);
    CHECK(same_buckets(a, b));
    char names[200][16], vals[200][32];
    struct cl_entry es[200];
    for (int i = 0; i < 200; i++) {
        snprintf(names[i], sizeof(names[i]), "obj-%d", i);
        snprintf(vals[i], sizeof(vals[i]), "{\"i\":%d}", i);
        es[i] = mk((uint8_t)(i % GV_KIND_COUNT), names[i], 1000 + (uint64_t)i, "n1", vals[i]);
    }
    /* a gets them in order, b backwards and with older versions first */
    for (int i = 0; i < 200; i++)
        CHECK_INT(cl_store_merge(a, &es[i]), 1);
    for (int i = 199; i >= 0; i--) {
        struct cl_entry old = es[i];
        old.stamp -= 500;
        old.value = (const uint8_t *)"{\"old\":true}";
        old.value_len = 12;
        CHECK_INT(cl_store_merge(b, &old), 1);
        CHECK_INT(cl_store_merge(b, &es[i]), 1);
    }
    CHECK(same_content(a, b));
    CHECK(same_buckets(a, b));
    CHECK(cl_store_root(a) == cl_store_root(b));
    CHECK(cl_store_root(a) != 0);
    /* one newer version on one side: different root, exactly its bucket differs */
    struct cl_entry nv = es[17];
    nv.stamp = 5000;
    CHECK_INT(cl_store_merge(b, &nv), 1);
    CHECK(cl_store_root(a) != cl_store_root(b));
    uint64_t x[CL_STORE_BUCKETS], y[CL_STORE_BUCKETS];
    cl_store_buckets(a, x);
    cl_store_buckets(b, y);
    int differ = 0;
    for (int i = 0; i < CL_STORE_BUCKETS; i++)
        differ += x[i] != y[i];
    CHECK_INT(differ, 1);
    unsigned bk = cl_entry_bucket(nv.kind, nv.name);
    CHECK(bk < CL_STORE_BUCKETS && x[bk] != y[bk]);
    /* ... and equal again once a has it too */
    CHECK_INT(cl_store_merge(a, &nv), 1);
    CHECK(cl_store_root(a) == cl_store_root(b));
    /* versions that differ only in the value, the rank or the deleted flag
     * are different identities */
    struct cl_store *c, *d;
    CHECK_INT(cl_store_new(&c), 0);
    CHECK_INT(cl_store_new(&d), 0);
    struct cl_entry v1 = mk(GV_KIND_SERVICES, "s", 0, "", "{\"a\":1}");
    struct cl_entry v2 = mk(GV_KIND_SERVICES, "s", 0, "", "{\"a\":2}");
    CHECK_INT(cl_store_merge(c, &v1), 1);
    CHECK_INT(cl_store_merge(d, &v2), 1);
    CHECK(cl_store_root(c) != cl_store_root(d));
    struct cl_entry r1 = v1;
    r1.rank = 7;
    cl_store_free(d);
    CHECK_INT(cl_store_new(&d), 0);
    CHECK_INT(cl_store_merge(d, &r1), 1);
    CHECK(cl_store_root(c) != cl_store_root(d));
    /* the same object under another kind is another object */
    struct cl_entry k1 = v1;
    k1.kind = GV_KIND_ROUTES;
    cl_store_free(d);
    CHECK_INT(cl_store_new(&d), 0);
    CHECK_INT(cl_store_merge(d, &k1), 1);
    CHECK(cl_store_root(c) != cl_store_root(d));
    /* the bucket depends only on (kind, name) */
    CHECK_INT(cl_entry_bucket(GV_KIND_ROUTES, "x"), cl_entry_bucket(GV_KIND_ROUTES, "x"));
    cl_store_free(c);
    cl_store_free(d);
    cl_store_free(a);
    cl_store_free(b);
}

static void test_gc(void)
{
    struct cl_store *s, *never;
    CHECK_INT(cl_store_new(&s), 0);
    CHECK_INT(cl_store_new(&never), 0);
    char names[60][16];
    for (int i = 0; i < 60; i++) {
        snprintf(names[i], sizeof(names[i]), "o%d", i);
        /* i % 3: 0 live, 1 old tombstone (stamp < 1000), 2 new tombstone */
        uint64_t stamp = i % 3 == 1 ? 100 + (uint64_t)i : 1000 + (uint64_t)i;
        struct cl_entry e = mk(GV_KIND_CONSUMERS, names[i], stamp, "n", i % 3 ? NULL : "{}");
        CHECK_INT(cl_store_merge(s, &e), 1);
        if (i % 3 != 1)
            CHECK_INT(cl_store_merge(never, &e), 1);
    }
    /* a live entry older than the cut-off stays */
    struct cl_entry old_live = mk(GV_KIND_CONSUMERS, "old-live", 5, "n", "{}");
    CHECK_INT(cl_store_merge(s, &old_live), 1);
    CHECK_INT(cl_store_merge(never, &old_live), 1);
    CHECK_INT(cl_store_count(s), 61);
    CHECK(cl_store_root(s) != cl_store_root(never));
    CHECK_INT(cl_store_gc(s, 1000), 20);
    CHECK_INT(cl_store_count(s), 41);
    CHECK(same_content(s, never));
    CHECK(same_buckets(s, never));
    CHECK(cl_store_root(s) == cl_store_root(never));
    CHECK(cl_store_get(s, GV_KIND_CONSUMERS, "o1") == NULL);
    CHECK(cl_store_get(s, GV_KIND_CONSUMERS, "o2") != NULL);
    CHECK_INT(cl_store_gc(s, 1000), 0);
    /* gc of everything deleted down to an empty store: root as a new store */
    struct cl_store *t;
    CHECK_INT(cl_store_new(&t), 0);
    struct cl_entry d = mk(GV_KIND_ROUTES, "gone", 50, "n", NULL);
    CHECK_INT(cl_store_merge(t, &d), 1);
    CHECK_INT(cl_store_gc(t, 51), 1);
    CHECK_INT(cl_store_count(t), 0);
    CHECK_INT(cl_store_root(t), 0);
    /* a write after the gc is held as in any store */
    CHECK_INT(cl_store_merge(t, &old_live), 1);
    CHECK_INT(cl_store_gc(t, UINT64_MAX), 0);
    CHECK_INT(cl_store_count(t), 1);
    cl_store_free(t);
    cl_store_free(s);
    cl_store_free(never);
}

static void test_list(void)
{
    struct cl_store *s;
    CHECK_INT(cl_store_new(&s), 0);
    struct {
        const char *name;
        uint32_t rank;
        bool deleted;
        uint8_t kind;
    } in[] = {
        {"zeta", 0, false, GV_KIND_ROUTES},
        {"alpha", 2, false, GV_KIND_ROUTES},
        {"beta", 1, false, GV_KIND_ROUTES},
        {"api-b", CL_RANK_NONE, false, GV_KIND_ROUTES},
        {"api-a", CL_RANK_NONE, false, GV_KIND_ROUTES},
        {"gone", 0, true, GV_KIND_ROUTES},
        {"omega", 1, false, GV_KIND_ROUTES},
        {"svc", 0, false, GV_KIND_SERVICES},
    };
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        struct cl_entry e = mk(in[i].kind, in[i].name, 10 + i, "n", in[i].deleted ? NULL : "{}");
        e.rank = in[i].rank;
        CHECK_INT(cl_store_merge(s, &e), 1);
    }
    const struct cl_entry **v = NULL;
    int n = cl_store_list(s, GV_KIND_ROUTES, &v);
    const char *want[] = {"zeta", "beta", "omega", "alpha", "api-a", "api-b"};
    CHECK_INT(n, 6);
    for (int i = 0; i < n && i < 6; i++)
        CHECK_STR(v[i]->name, want[i]);
    free(v);
    n = cl_store_list(s, GV_KIND_PLUGINS, &v);
    CHECK_INT(n, 0);
    free(v);
    n = cl_store_list(s, GV_KIND_SERVICES, &v);
    CHECK_INT(n, 1);
    free(v);
    CHECK_INT(cl_store_count(s), 8);
    cl_store_free(s);
}

static int count_one(void *arg, const struct cl_entry *e)
{
    (*(int *)arg)++;
    return *(int *)arg == 3 ? 42 : 0;
}

static void test_many_and_foreach(void)
{
    /* enough entries to make the table grow several times */
    struct cl_store *s;
    CHECK_INT(cl_store_new(&s), 0);
    char name[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof(name), "svc-%05d", i);
        struct cl_entry e = mk((uint8_t)(i & 3), name, 1 + (uint64_t)i, "n", "{}");
        CHECK_INT(cl_store_merge(s, &e), 1);
    }
    CHECK_INT(cl_store_count(s), 3000);
    for (int i = 0; i < 3000; i += 97) {
        snprintf(name, sizeof(name), "svc-%05d", i);
        const struct cl_entry *e = cl_store_get(s, (uint8_t)(i & 3), name);
        CHECK(e != NULL && e->stamp == 1 + (uint64_t)i);
        CHECK(cl_store_get(s, (uint8_t)((i + 1) & 3), name) == NULL);
    }
    int seen = 0;
    CHECK_INT(cl_store_foreach(s, count_one, &seen), 42);
    CHECK_INT(seen, 3);
    CHECK_INT(cl_store_max_stamp(s), 3000);
    cl_store_free(s);
    cl_store_free(NULL);
}

/* ---- the codec ---- */

static bool same_decoded(const struct cl_entry *a, const struct cl_entry *b)
{
    return same_version(a, b) && strcmp(a->origin, b->origin) == 0 && a->deleted == b->deleted &&
           a->stamp == b->stamp && a->value_len == b->value_len &&
           (a->value_len == 0 || memcmp(a->value, b->value, a->value_len) == 0);
}

static void test_codec_round_trip(void)
{
    static uint8_t big[CL_STORE_MAX_VALUE];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 131);
    struct cl_entry es[5];
    es[0] = mk(GV_KIND_SERVICES, "users", 123456789012345ULL, "node-1", "{\"targets\":[]}");
    es[0].rank = 4;
    es[1] = mk(GV_KIND_ROUTES, "gone", UINT64_MAX, "n", NULL);
    es[2] = mk(GV_KIND_PLUGINS, "seeded", 0, "", "{}");
    es[2].rank = 0;
    es[3] = mk(GV_KIND_CONSUMERS, "x", 1, "o", NULL);
    memset(es[3].name, 'N', CL_STORE_MAX_NAME);
    es[3].name[CL_STORE_MAX_NAME] = '\0';
    memset(es[3].origin, 'O', CL_WIRE_MAX_NAME);
    es[3].origin[CL_WIRE_MAX_NAME] = '\0';
    es[3].rank = UINT32_MAX - 1;
    es[4] = mk(GV_KIND_SERVICES, "binary", 77, "n", "x");
    es[4].value = big; /* bytes with NULs: values are opaque */
    es[4].value_len = sizeof(big);
    struct gv_buf b;
    gv_buf_init(&b);
    for (int i = 0; i < 5; i++)
        CHECK_INT(cl_entry_encode(&es[i], &b), 0);
    /* an invalid entry encodes nothing */
    size_t before = b.len;
    struct cl_entry bad = es[0];
    bad.origin[0] = '\0'; /* a write that is not a seed has an origin */
    CHECK_INT(cl_entry_encode(&bad, &b), GV_EINVAL);
    CHECK_INT(b.len, before);
    size_t off = 0;
    for (int i = 0; i < 5; i++) {
        struct cl_entry d;
        CHECK_INT(cl_entry_decode((const uint8_t *)b.data, b.len, &off, &d), 0);
        CHECK(same_decoded(&d, &es[i]));
        if (d.value_len > 0) /* the value points into the input */
            CHECK(d.value >= (const uint8_t *)b.data && d.value < (const uint8_t *)b.data + b.len);
    }
    CHECK_INT(off, b.len);
    struct cl_entry d;
    CHECK_INT(cl_entry_decode((const uint8_t *)b.data, b.len, &off, &d), GV_EPROTO);
    off = b.len + 1;
    CHECK_INT(cl_entry_decode((const uint8_t *)b.data, b.len, &off, &d), GV_EPROTO);
    CHECK_INT(off, b.len + 1);
    gv_buf_free(&b);
}

static int buf_write(void *data, const char *p, size_t len)
{
    return gv_buf_append(data, p, len) == 0 ? 0 : -1;
}

static int decode_raw(void (*build)(msgpack_packer *pk))
{
    struct gv_buf b;
    msgpack_packer pk;
    struct cl_entry e;
    size_t off = 0;
    gv_buf_init(&b);
    msgpack_packer_init(&pk, &b, buf_write);
    build(&pk);
    int rv = cl_entry_decode((const uint8_t *)b.data, b.len, &off, &e);
    if (rv == 0)
        CHECK_INT(cl_entry_check(&e), 0);
    else
        CHECK_INT(off, 0);
    gv_buf_free(&b);
    return rv;
}

static void head(msgpack_packer *pk, unsigned n, int kind)
{
    msgpack_pack_array(pk, n);
    msgpack_pack_int(pk, kind);
}

static void tail_ok(msgpack_packer *pk, const char *name)
{
    msgpack_pack_str_with_body(pk, name, strlen(name));
    msgpack_pack_uint64(pk, 5);
    msgpack_pack_str_with_body(pk, "n", 1);
    msgpack_pack_uint32(pk, 0);
    msgpack_pack_false(pk);
    msgpack_pack_bin_with_body(pk, "{}", 2);
}

static void raw_good(msgpack_packer *pk)
{
    head(pk, 7, 1);
    tail_ok(pk, "ok");
}

static void raw_kind(msgpack_packer *pk)
{
    head(pk, 7, 256); /* kinds are one byte */
    tail_ok(pk, "ok");
}

static void raw_neg_kind(msgpack_packer *pk)
{
    head(pk, 7, -1);
    tail_ok(pk, "ok");
}

static void raw_short(msgpack_packer *pk)
{
    head(pk, 6, 1);
    msgpack_pack_str_with_body(pk, "ok", 2);
    msgpack_pack_uint64(pk, 5);
    msgpack_pack_str_with_body(pk, "n", 1);
    msgpack_pack_uint32(pk, 0);
    msgpack_pack_false(pk);
}

static void raw_long_name(msgpack_packer *pk)
{
    char name[CL_STORE_MAX_NAME + 2];
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    head(pk, 7, 1);
    tail_ok(pk, name);
}

static void raw_nul_name(msgpack_packer *pk)
{
    head(pk, 7, 1);
    msgpack_pack_str_with_body(pk, "a\0b", 3);
    msgpack_pack_uint64(pk, 5);
    msgpack_pack_str_with_body(pk, "n", 1);
    msgpack_pack_uint32(pk, 0);
    msgpack_pack_false(pk);
    msgpack_pack_bin_with_body(pk, "{}", 2);
}

static void raw_value_str(msgpack_packer *pk)
{
    head(pk, 7, 1);
    msgpack_pack_str_with_body(pk, "ok", 2);
    msgpack_pack_uint64(pk, 5);
    msgpack_pack_str_with_body(pk, "n", 1);
    msgpack_pack_uint32(pk, 0);
    msgpack_pack_false(pk);
    msgpack_pack_str_with_body(pk, "{}", 2); /* a str where a bin belongs */
}

static void raw_big_rank(msgpack_packer *pk)
{
    head(pk, 7, 1);
    msgpack_pack_str_with_body(pk, "ok", 2);
    msgpack_pack_uint64(pk, 5);
    msgpack_pack_str_with_body(pk, "n", 1);
    msgpack_pack_uint64(pk, 1ULL << 32);
    msgpack_pack_false(pk);
    msgpack_pack_bin_with_body(pk, "{}", 2);
}

static void raw_deleted_value(msgpack_packer *pk)
{
    head(pk, 7, 1);
    msgpack_pack_str_with_body(pk, "ok", 2);
    msgpack_pack_uint64(pk, 5);
    msgpack_pack_str_with_body(pk, "n", 1);
    msgpack_pack_uint32(pk, 0);
    msgpack_pack_true(pk);
    msgpack_pack_bin_with_body(pk, "{}", 2);
}

static void raw_big_value(msgpack_packer *pk)
{
    static char v[CL_STORE_MAX_VALUE + 1];
    memset(v, 'v', sizeof(v));
    head(pk, 7, 1);
    msgpack_pack_str_with_body(pk, "ok", 2);
    msgpack_pack_uint64(pk, 5);
    msgpack_pack_str_with_body(pk, "n", 1);
    msgpack_pack_uint32(pk, 0);
    msgpack_pack_false(pk);
    msgpack_pack_bin_with_body(pk, v, sizeof(v));
}

static void raw_seed_origin(msgpack_packer *pk)
{
    head(pk, 7, 1);
    msgpack_pack_str_with_body(pk, "ok", 2);
    msgpack_pack_uint64(pk, 0);
    msgpack_pack_str_with_body(pk, "n", 1);
    msgpack_pack_uint32(pk, 0);
    msgpack_pack_false(pk);
    msgpack_pack_bin_with_body(pk, "{}", 2);
}

static void test_decode_rejects(void)
{
    CHECK_INT(decode_raw(raw_good), 0);
    CHECK_INT(decode_raw(raw_kind), GV_EPROTO);
    CHECK_INT(decode_raw(raw_neg_kind), GV_EPROTO);
    CHECK_INT(decode_raw(raw_short), GV_EPROTO);
    CHECK_INT(decode_raw(raw_long_name), GV_EPROTO);
    CHECK_INT(decode_raw(raw_nul_name), GV_EPROTO);
    CHECK_INT(decode_raw(raw_value_str), GV_EPROTO);
    CHECK_INT(decode_raw(raw_big_rank), GV_EPROTO);
    CHECK_INT(decode_raw(raw_deleted_value), GV_EPROTO);
    CHECK_INT(decode_raw(raw_big_value), GV_EPROTO);
    CHECK_INT(decode_raw(raw_seed_origin), GV_EPROTO);
}

/* Decodes data[0..len) entry by entry: each either fails or is a valid entry
 * inside the input. Returns the number decoded. */
static int decode_all(const uint8_t *data, size_t len)
{
    size_t off = 0;
    int n = 0;
    struct cl_entry e;
    for (;;) {
        size_t was = off;
        int rv = cl_entry_decode(data, len, &off, &e);
        if (rv != 0) {
            CHECK_INT(rv, GV_EPROTO);
            CHECK_INT(off, was);
            return n;
        }
        n++;
        CHECK(off > was && off <= len);
        CHECK_INT(cl_entry_check(&e), 0);
        if (e.value_len > 0)
            CHECK(e.value >= data + was && e.value + e.value_len <= data + off);
    }
}

static void test_decode_damaged(void)
{
    struct gv_buf b;
    gv_buf_init(&b);
    struct cl_entry e = mk(GV_KIND_ROUTES, "orders-api", 0x1234567890ULL, "gw-2",
                           "{\"paths\":[\"/orders\"],\"service\":\"orders\"}");
    e.rank = 300;
    CHECK_INT(cl_entry_encode(&e, &b), 0);
    size_t one = b.len;
    struct cl_entry t = mk(GV_KIND_SERVICES, "old", 99, "gw-1", NULL);
    CHECK_INT(cl_entry_encode(&t, &b), 0);
    /* every truncation of the first entry fails, and leaves off alone */
    for (size_t n = 0; n < one; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exactly n bytes: ASan sees overreads */
        memcpy(copy, b.data, n);
        size_t off = 0;
        struct cl_entry d;
        CHECK_INT(cl_entry_decode(copy, n, &off, &d), GV_EPROTO);
        CHECK_INT(off, 0);
        free(copy);
    }
    /* truncations of the pair decode the first entry at most */
    for (size_t n = 0; n < b.len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, b.data, n);
        CHECK_INT(decode_all(copy, n), n >= one ? 1 : 0);
        free(copy);
    }
    /* random damage: flipped bits, overwritten bytes, inserted bytes */
    uint8_t *copy = malloc(b.len + 8);
    int decoded = 0;
    for (int round = 0; round < 10000; round++) {
        size_t n = b.len;
        memcpy(copy, b.data, n);
        int hits = 1 + (int)(next_rand() % 4);
        for (int h = 0; h < hits; h++) {
            size_t at = (size_t)(next_rand() % n);
            switch (next_rand() % 3) {
            case 0:
                copy[at] ^= (uint8_t)(1u << (next_rand() % 8));
                break;
            case 1:
                copy[at] = (uint8_t)next_rand();
                break;
            default:
                if (n < b.len + 8) {
                    memmove(copy + at + 1, copy + at, n - at);
                    copy[at] = (uint8_t)next_rand();
                    n++;
                }
            }
        }
        uint8_t *exact = malloc(n);
        memcpy(exact, copy, n);
        decoded += decode_all(exact, n) > 0;
        free(exact);
    }
    free(copy);
    /* some damage leaves a valid entry (a changed stamp or letter) */
    CHECK(decoded > 0);
    /* pure noise */
    for (int round = 0; round < 2000; round++) {
        uint8_t noise[64];
        size_t n = 1 + (size_t)(next_rand() % sizeof(noise));
        for (size_t i = 0; i < n; i++)
            noise[i] = (uint8_t)next_rand();
        decode_all(noise, n);
    }
    gv_buf_free(&b);
}

/* ---- the file image ---- */

static struct cl_store *sample_store(void)
{
    struct cl_store *s;
    CHECK_INT(cl_store_new(&s), 0);
    char name[32], val[64];
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof(name), "obj%d", i);
        snprintf(val, sizeof(val), "{\"n\":%d,\"pad\":\"%.*s\"}", i, i,
                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        /* every fifth a seed; some of the others deleted */
        bool seed = i % 5 == 0, gone = !seed && i % 7 == 3;
        struct cl_entry e = mk((uint8_t)(i % 4), name, seed ? 0 : 1000 + (uint64_t)i,
                               seed ? "" : "n1", gone ? NULL : val);
        e.rank = (uint32_t)i;
        CHECK_INT(cl_store_merge(s, &e), 1);
    }
    return s;
}

static void test_save_load(void)
{
    struct cl_store *s = sample_store(), *l;
    struct gv_buf img;
    gv_buf_init(&img);
    CHECK_INT(gv_buf_append(&img, "prefix", 6), 0); /* save appends */
    CHECK_INT(cl_store_save(s, 0xabcdef12345ULL, &img), 0);
    const uint8_t *data = (const uint8_t *)img.data + 6;
    size_t len = img.len - 6;
    CHECK(memcmp(data, "GVST", 4) == 0);
    CHECK_INT(cl_store_new(&l), 0);
    uint64_t clock = 7;
    CHECK_INT(cl_store_load(l, data, len, &clock), 0);
    CHECK_INT(clock, 0xabcdef12345ULL);
    CHECK(same_content(s, l));
    CHECK(cl_store_root(s) == cl_store_root(l));
    CHECK_INT(cl_store_count(l), 40);
    /* an empty store saves and loads too */
    struct cl_store *e, *e2;
    struct gv_buf ei;
    gv_buf_init(&ei);
    CHECK_INT(cl_store_new(&e), 0);
    CHECK_INT(cl_store_new(&e2), 0);
    CHECK_INT(cl_store_save(e, 0, &ei), 0);
    CHECK_INT(cl_store_load(e2, (const uint8_t *)ei.data, ei.len, &clock), 0);
    CHECK_INT(clock, 0);
    CHECK_INT(cl_store_count(e2), 0);
    gv_buf_free(&ei);
    cl_store_free(e);
    cl_store_free(e2);
    cl_store_free(l);
    gv_buf_free(&img);
    cl_store_free(s);
}

static void test_load_damaged(void)
{
    struct cl_store *s = sample_store();
    struct gv_buf img;
    gv_buf_init(&img);
    CHECK_INT(cl_store_save(s, 42, &img), 0);
    const uint8_t *data = (const uint8_t *)img.data;
    size_t len = img.len;
    uint8_t *copy = malloc(len);
    int accepted = 0;
    /* every bit of the image flipped, one at a time */
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            struct cl_store *l;
            uint64_t clock = 7;
            memcpy(copy, data, len);
            copy[i] ^= (uint8_t)(1u << bit);
            CHECK_INT(cl_store_new(&l), 0);
            int rv = cl_store_load(l, copy, len, &clock);
            if (rv != GV_EPROTO || cl_store_count(l) != 0 || cl_store_root(l) != 0 || clock != 7) {
                accepted++;
                if (accepted < 5)
                    fprintf(stderr, "  flip of byte %zu bit %d: rv %d, count %zu\n", i, bit, rv,
                            cl_store_count(l));
            }
            cl_store_free(l);
        }
    }
    CHECK_INT(accepted, 0);
    /* every truncation, and a byte too many */
    for (size_t n = 0; n < len; n++) {
        struct cl_store *l;
        uint64_t clock = 7;
        uint8_t *t = malloc(n ? n : 1);
        memcpy(t, data, n);
        CHECK_INT(cl_store_new(&l), 0);
        CHECK_INT(cl_store_load(l, t, n, &clock), GV_EPROTO);
        CHECK_INT(cl_store_count(l), 0);
        CHECK_INT(clock, 7);
        cl_store_free(l);
        free(t);
    }
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, data, len);
    longer[len] = 0;
    struct cl_store *l;
    uint64_t clock = 7;
    CHECK_INT(cl_store_new(&l), 0);
    CHECK_INT(cl_store_load(l, longer, len + 1, &clock), GV_EPROTO);
    CHECK_INT(cl_store_count(l), 0);
    cl_store_free(l);
    free(longer);
    free(copy);
    gv_buf_free(&img);
    cl_store_free(s);
}

/* An image with a correct checksum around a body the caller packs: the
 * loader must judge the content, not only the checksum. */
static int load_forged(void (*body)(msgpack_packer *pk), struct cl_store *into)
{
    struct gv_buf b;
    msgpack_packer pk;
    uint8_t md[32];
    unsigned int mdlen = 0;
    gv_buf_init(&b);
    gv_buf_append(&b, "GVST\x01", 5);
    msgpack_packer_init(&pk, &b, buf_write);
    body(&pk);
    EVP_Digest(b.data, b.len, md, &mdlen, EVP_sha256(), NULL);
    gv_buf_append(&b, md, sizeof(md));
    uint64_t clock = 7;
    int rv = cl_store_load(into, (const uint8_t *)b.data, b.len, &clock);
    if (rv != 0)
        CHECK_INT(clock, 7);
    gv_buf_free(&b);
    return rv;
}

static void forged_ok(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint64(pk, 9);
    msgpack_pack_array(pk, 1);
    raw_good(pk);
}

static void forged_bad_last(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint64(pk, 9);
    msgpack_pack_array(pk, 3);
    raw_good(pk);
    raw_good(pk);
    raw_kind(pk); /* the third entry is bad: nothing may be loaded */
}

static void forged_shape(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 3);
    msgpack_pack_uint64(pk, 9);
    msgpack_pack_array(pk, 0);
    msgpack_pack_nil(pk);
}

static void forged_clock(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 2);
    msgpack_pack_int64(pk, -9);
    msgpack_pack_array(pk, 0);
}

static void forged_trailing(msgpack_packer *pk)
{
    forged_ok(pk);
    msgpack_pack_nil(pk);
}

static void test_load_forged(void)
{
    struct cl_store *s;
    CHECK_INT(cl_store_new(&s), 0);
    CHECK_INT(load_forged(forged_ok, s), 0);
    CHECK_INT(cl_store_count(s), 1);
    cl_store_free(s);
    void (*bad[])(msgpack_packer *) = {forged_bad_last, forged_shape, forged_clock,
                                       forged_trailing};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(cl_store_new(&s), 0);
        CHECK_INT(load_forged(bad[i], s), GV_EPROTO);
        CHECK_INT(cl_store_count(s), 0);
        CHECK_INT(cl_store_root(s), 0);
        cl_store_free(s);
    }
}

/* A kind this version does not know (a newer node's) is an object like any
 * other: merged by the same rules, listed, counted in the digest, encoded,
 * saved, loaded and collected, never refused as malformed. */
static void test_unknown_kind(void)
{
    const uint8_t future = 200, last = 255;
    struct cl_store *s, *t;
    CHECK_INT(cl_store_new(&s), 0);
    struct cl_entry known = mk(GV_KIND_SERVICES, "shared", 10, "n1", "{\"s\":1}");
    struct cl_entry f1 = mk(future, "shared", 20, "n9", "{\"new\":1}");
    struct cl_entry f2 = mk(future, "shared", 30, "n9", "{\"new\":2}");
    struct cl_entry fold = mk(future, "shared", 25, "n2", "{\"old\":1}");
    struct cl_entry seed = mk(last, "seeded", 0, "", "{}");
    struct cl_entry gone = mk(last, "gone", 40, "n9", NULL);
    CHECK_INT(cl_store_merge(s, &known), 1);
    CHECK_INT(cl_store_merge(s, &f1), 1);
    CHECK_INT(cl_store_merge(s, &f2), 1);
    CHECK_INT(cl_store_merge(s, &fold), 0); /* last writer wins, as for any kind */
    CHECK_INT(cl_store_merge(s, &seed), 1);
    CHECK_INT(cl_store_merge(s, &gone), 1);
    CHECK_INT(cl_store_count(s), 4);
    CHECK(same_version(cl_store_get(s, future, "shared"), &f2));
    CHECK(same_version(cl_store_get(s, GV_KIND_SERVICES, "shared"), &known));
    CHECK_INT(cl_store_max_stamp(s), 40);

    const struct cl_entry **v;
    int n = cl_store_list(s, future, &v);
    CHECK_INT(n, 1);
    if (n == 1)
        CHECK(same_version(v[0], &f2));
    free(v);
    n = cl_store_list(s, last, &v); /* the tombstone is not listed */
    CHECK_INT(n, 1);
    if (n == 1)
        CHECK_STR(v[0]->name, "seeded");
    free(v);

    /* the digest: the entry shows in its bucket, so anti-entropy moves it */
    uint64_t b[CL_STORE_BUCKETS];
    CHECK_INT(cl_store_new(&t), 0);
    CHECK_INT(cl_store_merge(t, &known), 1);
    CHECK(cl_store_root(t) != cl_store_root(s));
    cl_store_buckets(s, b);
    CHECK(b[cl_entry_bucket(future, "shared")] != 0);
    CHECK_INT(cl_store_merge(t, &f2), 1);
    CHECK_INT(cl_store_merge(t, &seed), 1);
    CHECK_INT(cl_store_merge(t, &gone), 1);
    CHECK(same_buckets(s, t));
    CHECK_INT(cl_store_root(t), cl_store_root(s));
    cl_store_free(t);

    /* the codec */
    struct gv_buf buf;
    gv_buf_init(&buf);
    CHECK_INT(cl_entry_encode(&f2, &buf), 0);
    CHECK_INT(cl_entry_encode(&gone, &buf), 0);
    size_t off = 0;
    struct cl_entry d;
    CHECK_INT(cl_entry_decode((const uint8_t *)buf.data, buf.len, &off, &d), 0);
    CHECK(same_decoded(&d, &f2));
    CHECK_INT(cl_entry_decode((const uint8_t *)buf.data, buf.len, &off, &d), 0);
    CHECK(same_decoded(&d, &gone));
    CHECK_INT(off, buf.len);

    /* the file image */
    gv_buf_reset(&buf);
    uint64_t clock = 0;
    CHECK_INT(cl_store_save(s, 77, &buf), 0);
    CHECK_INT(cl_store_new(&t), 0);
    CHECK_INT(cl_store_load(t, (const uint8_t *)buf.data, buf.len, &clock), 0);
    CHECK_INT(clock, 77);
    CHECK(same_content(s, t));
    CHECK(same_buckets(s, t));
    cl_store_free(t);
    gv_buf_free(&buf);

    /* collection: the old tombstone and the seed go like any other */
    CHECK_INT(cl_store_gc(s, 41), 1);
    CHECK(cl_store_get(s, last, "gone") == NULL);
    CHECK(cl_store_drop_seed(s, last, "seeded"));
    CHECK(cl_store_get(s, last, "seeded") == NULL);
    CHECK_INT(cl_store_count(s), 2);
    cl_store_free(s);
}

TEST_MAIN(TEST(test_lww_any_order), TEST(test_seeds_and_tombstones), TEST(test_entry_check),
          TEST(test_digest), TEST(test_gc), TEST(test_list), TEST(test_many_and_foreach),
          TEST(test_codec_round_trip), TEST(test_decode_rejects), TEST(test_decode_damaged),
          TEST(test_save_load), TEST(test_load_damaged), TEST(test_load_forged),
          TEST(test_unknown_kind))
