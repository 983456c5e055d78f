/* buf_test.c - the growable buffer: appends, numbers, consume, steal. */
#include "common/buf.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static void test_append_and_numbers(void)
{
    struct gv_buf b;
    gv_buf_init(&b);
    CHECK_INT(gv_buf_puts(&b, "Content-Length: "), 0);
    CHECK_INT(gv_buf_put_u64(&b, 0), 0);
    CHECK_INT(gv_buf_put2(&b, ",", 1, "x", 1), 0);
    CHECK_INT(gv_buf_put_u64(&b, 18446744073709551615ULL), 0);
    CHECK_STR(b.data, "Content-Length: 0,x18446744073709551615");
    CHECK_INT(gv_buf_put2(&b, NULL, 0, NULL, 0), 0);
    CHECK_INT(b.len, 39);
    gv_buf_consume(&b, 16);
    CHECK_STR(b.data, "0,x18446744073709551615");
    CHECK_INT(gv_buf_printf(&b, "%d", 42), 0);
    char *p = gv_buf_steal(&b);
    CHECK_STR(p, "0,x1844674407370955161542");
    CHECK(b.data == NULL && b.len == 0);
    free(p);
}

static void test_growth(void)
{
    struct gv_buf b;
    gv_buf_init(&b);
    for (int i = 0; i < 10000; i++)
        CHECK_INT(gv_buf_append(&b, "ab", 2), 0);
    CHECK_INT(b.len, 20000);
    CHECK(b.cap > b.len && b.data[b.len] == '\0');
    gv_buf_reset(&b);
    CHECK_INT(b.len, 0);
    gv_buf_free(&b);
}

/* A reader's offset: pieces out, then the buffer reset once all is read. */
static void test_read_at(void)
{
    struct gv_buf b;
    char out[8];
    size_t off = 0;
    bool drained;
    gv_buf_init(&b);
    CHECK_INT(gv_buf_read_at(&b, &off, out, sizeof(out), &drained), 0);
    CHECK(drained); /* nothing to read: empty */
    CHECK_INT(gv_buf_append(&b, "hello, world", 12), 0);
    CHECK_INT(gv_buf_read_at(&b, &off, out, 5, &drained), 5);
    CHECK(!drained && off == 5 && memcmp(out, "hello", 5) == 0);
    CHECK_INT(gv_buf_append(&b, "!", 1), 0); /* more while being read */
    CHECK_INT(gv_buf_read_at(&b, &off, out, sizeof(out), &drained), 8);
    CHECK(drained && off == 0 && b.len == 0 && memcmp(out, ", world!", 8) == 0);
    gv_buf_free(&b);
}

TEST_MAIN(TEST(test_append_and_numbers), TEST(test_growth), TEST(test_read_at))
