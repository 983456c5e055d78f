/* buf_test.c - the growable buffer: appends, numbers, consume, steal. */
#include "common/buf.h"
#include "test.h"

#include <stdlib.h>

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

TEST_MAIN(TEST(test_append_and_numbers), TEST(test_growth))
