/* statelog_test.c - the store on disk: appended records come back, a torn
 * or forged tail is cut, a keyed node refuses files it cannot verify, and a
 * compaction keeps everything. */
#include "cluster/statelog.h"
#include "common/err.h"
#include "test.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static void fresh_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/gv-statelog-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_INT(system(cmd), 0);
}

static struct cl_entry entry(const char *name, uint64_t stamp, const char *value)
{
    struct cl_entry e = {.kind = 1, .stamp = stamp, .rank = 0};
    snprintf(e.name, sizeof(e.name), "%s", name);
    snprintf(e.origin, sizeof(e.origin), "gw1");
    e.value = (const uint8_t *)value;
    e.value_len = strlen(value);
    return e;
}

/* Appends entries a..n as one batch each. */
static void append_some(struct cl_statelog *l, struct cl_store *mirror, int from, int to)
{
    for (int i = from; i < to; i++) {
        char name[16], value[32];
        struct gv_buf b;
        gv_buf_init(&b);
        snprintf(name, sizeof(name), "r%d", i);
        snprintf(value, sizeof(value), "{\"n\":%d}", i);
        struct cl_entry e = entry(name, 100 + (uint64_t)i, value);
        CHECK_INT(cl_statelog_encode(l, &e, &b), 0);
        CHECK_INT(cl_statelog_append(l, b.data, b.len), 0);
        CHECK_INT(cl_store_merge(mirror, &e), 1);
        gv_buf_free(&b);
    }
}

/* Loads dir into a new store; its root, or 0 when it did not load. */
static uint64_t load_root(const uint8_t *key, size_t *records, size_t *cut, int *rv)
{
    struct cl_statelog *l;
    struct cl_store *s;
    uint64_t clock, root = 0;
    CHECK_INT(cl_statelog_open(dir, key, &l), 0);
    CHECK_INT(cl_store_new(&s), 0);
    *rv = cl_statelog_load(l, s, &clock, records, cut);
    if (*rv == 0)
        root = cl_store_root(s);
    cl_store_free(s);
    cl_statelog_close(l);
    return root;
}

static void test_append_and_reload(void)
{
    struct cl_statelog *l;
    struct cl_store *mirror;
    size_t records, cut;
    int rv;
    fresh_dir();
    CHECK_INT(cl_store_new(&mirror), 0);
    CHECK_INT(cl_statelog_open(dir, NULL, &l), 0);
    append_some(l, mirror, 0, 50);
    cl_statelog_close(l);
    CHECK(load_root(NULL, &records, &cut, &rv) == cl_store_root(mirror));
    CHECK_INT(rv, 0);
    CHECK_INT(records, 50);
    CHECK_INT(cut, 0);
    cl_store_free(mirror);
    remove_dir();
}

static void test_torn_tail_is_cut(void)
{
    struct cl_statelog *l;
    struct cl_store *mirror;
    size_t records, cut;
    int rv;
    char path[128];
    fresh_dir();
    CHECK_INT(cl_store_new(&mirror), 0);
    CHECK_INT(cl_statelog_open(dir, NULL, &l), 0);
    append_some(l, mirror, 0, 5);
    cl_statelog_close(l);
    /* half a record, as a crash mid-write leaves it */
    snprintf(path, sizeof(path), "%s/cluster-state.log", dir);
    int fd = open(path, O_WRONLY | O_APPEND);
    CHECK(fd >= 0);
    CHECK_INT(write(fd, "GVLR\0\0\0\x40{\"half", 14), 14);
    close(fd);
    CHECK(load_root(NULL, &records, &cut, &rv) == cl_store_root(mirror));
    CHECK_INT(records, 5);
    CHECK_INT(cut, 14);
    /* the cut stuck: appends go on after the good part */
    CHECK_INT(cl_statelog_open(dir, NULL, &l), 0);
    struct cl_store *s;
    uint64_t clock;
    CHECK_INT(cl_store_new(&s), 0);
    CHECK_INT(cl_statelog_load(l, s, &clock, &records, &cut), 0);
    CHECK_INT(cut, 0);
    append_some(l, mirror, 5, 7);
    cl_statelog_close(l);
    cl_store_free(s);
    CHECK(load_root(NULL, &records, &cut, &rv) == cl_store_root(mirror));
    CHECK_INT(records, 7);
    cl_store_free(mirror);
    remove_dir();
}

static void test_keys(void)
{
    uint8_t ck[32], k[32], other[32];
    struct cl_statelog *l;
    struct cl_store *mirror;
    size_t records, cut;
    int rv;
    memset(ck, 7, sizeof(ck));
    cl_statelog_file_key(ck, k);
    memset(ck, 8, sizeof(ck));
    cl_statelog_file_key(ck, other);
    CHECK(memcmp(k, other, sizeof(k)) != 0);
    fresh_dir();
    CHECK_INT(cl_store_new(&mirror), 0);
    CHECK_INT(cl_statelog_open(dir, k, &l), 0);
    append_some(l, mirror, 0, 3);
    cl_statelog_close(l);
    CHECK(load_root(k, &records, &cut, &rv) == cl_store_root(mirror));
    CHECK_INT(records, 3);
    /* another key (or none) cannot verify the records: nothing is taken */
    load_root(other, &records, &cut, &rv);
    CHECK_INT(rv, 0);
    CHECK_INT(records, 0);
    CHECK(cut > 0);
    cl_store_free(mirror);
    remove_dir();
}

static void test_compaction(void)
{
    uint8_t k[32] = {1};
    struct cl_statelog *l;
    struct cl_store *mirror;
    struct gv_buf img;
    size_t records, cut;
    int rv;
    fresh_dir();
    CHECK_INT(cl_store_new(&mirror), 0);
    CHECK_INT(cl_statelog_open(dir, k, &l), 0);
    append_some(l, mirror, 0, 20);
    gv_buf_init(&img);
    CHECK_INT(cl_store_save_keyed(mirror, 120, cl_statelog_key(l), &img), 0);
    CHECK_INT(cl_statelog_compact(l, img.data, img.len), 0);
    CHECK_INT(cl_statelog_log_bytes(l), 0);
    append_some(l, mirror, 20, 25); /* after the image: in the log */
    cl_statelog_close(l);
    CHECK(load_root(k, &records, &cut, &rv) == cl_store_root(mirror));
    CHECK_INT(records, 5);
    /* a keyed node refuses an image it cannot verify (here: one without a key) */
    gv_buf_reset(&img);
    CHECK_INT(cl_store_save(mirror, 1, &img), 0);
    CHECK_INT(cl_statelog_open(dir, k, &l), 0);
    CHECK_INT(cl_statelog_compact(l, img.data, img.len), 0);
    cl_statelog_close(l);
    load_root(k, &records, &cut, &rv);
    CHECK_INT(rv, GV_EPROTO);
    gv_buf_free(&img);
    cl_store_free(mirror);
    remove_dir();
}

/* The first start after an upgrade from 0.1 on a keyed node: 0.1 left a
 * plain image and no log. It is taken once (and flagged, to be re-signed);
 * once the log exists, the same plain image is refused. */
static void test_upgrade_from_plain_image(void)
{
    uint8_t k[32] = {7};
    struct cl_statelog *l;
    struct cl_store *mirror, *s;
    struct gv_buf img;
    char path[128];
    size_t records, cut;
    uint64_t clock;
    int rv;
    fresh_dir();
    CHECK_INT(cl_store_new(&mirror), 0);
    struct cl_entry e = entry("old", 9, "{\"v\":1}");
    CHECK_INT(cl_store_merge(mirror, &e), 1);
    gv_buf_init(&img);
    CHECK_INT(cl_store_save(mirror, 9, &img), 0);
    snprintf(path, sizeof(path), "%s/cluster-state.gvst", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL && fwrite(img.data, 1, img.len, f) == img.len);
    fclose(f);
    CHECK_INT(cl_statelog_open(dir, k, &l), 0);
    CHECK_INT(cl_store_new(&s), 0);
    CHECK_INT(cl_statelog_load(l, s, &clock, &records, &cut), 0);
    CHECK(cl_statelog_unsigned_image(l));
    CHECK(cl_store_root(s) == cl_store_root(mirror));
    cl_store_free(s);
    cl_statelog_close(l);
    /* the log exists now: the plain image is no longer taken */
    load_root(k, &records, &cut, &rv);
    CHECK_INT(rv, GV_EPROTO);
    gv_buf_free(&img);
    cl_store_free(mirror);
    remove_dir();
}

TEST_MAIN(TEST(test_append_and_reload), TEST(test_torn_tail_is_cut), TEST(test_keys),
          TEST(test_compaction), TEST(test_upgrade_from_plain_image))
