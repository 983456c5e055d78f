/* path_test.c - the path normalisation table: each shape an attacker uses
 * to get around a rule, what routing sees, and what is refused. */
#include "gateway/path.h"
#include "test.h"

#include <string.h>

static const struct {
    const char *in;
    const char *out; /* NULL: refused */
    unsigned flags;
} shapes[] = {
    {"/", "/", 0},
    {"/admin", "/admin", 0},
    {"/admin/", "/admin/", 0},
    {"/api/../admin/x", "/admin/x", GW_PATH_CHANGED},
    {"//admin/x", "/admin/x", GW_PATH_CHANGED},
    {"/./admin/x", "/admin/x", GW_PATH_CHANGED},
    {"/%61dmin/x", "/admin/x", GW_PATH_CHANGED},
    {"/api/%2e%2e/admin/x", "/admin/x", GW_PATH_CHANGED},
    {"/api/%2E%2E/admin/x", "/admin/x", GW_PATH_CHANGED},
    {"/api/.%2e/admin", "/admin", GW_PATH_CHANGED},
    {"/a/b/../../admin", "/admin", GW_PATH_CHANGED},
    {"/../admin", "/admin", GW_PATH_CHANGED},
    {"/../../../admin", "/admin", GW_PATH_CHANGED},
    {"/..", "/", GW_PATH_CHANGED},
    {"/a/..", "/", GW_PATH_CHANGED},
    {"/a/b/..", "/a/", GW_PATH_CHANGED},
    {"/a/.", "/a/", GW_PATH_CHANGED},
    {"/a/./b", "/a/b", GW_PATH_CHANGED},
    {"/a//b///c", "/a/b/c", GW_PATH_CHANGED},
    {"/a//", "/a/", GW_PATH_CHANGED},
    {"///", "/", GW_PATH_CHANGED},
    {"/...", "/...", 0},
    {"/.x/..y", "/.x/..y", 0},
    {"/a/b.c/d", "/a/b.c/d", 0},
    {"/%7euser", "/~user", GW_PATH_CHANGED},
    {"/caf%c3%a9", "/caf%C3%A9", GW_PATH_CHANGED},
    {"/a%20b", "/a%20b", 0},
    {"/a%2fb", "/a%2Fb", GW_PATH_CHANGED | GW_PATH_ESCAPED_SLASH},
    {"/api/%2F..%2Fadmin", "/api/%2F..%2Fadmin", GW_PATH_ESCAPED_SLASH},
    {"/a%5cb", "/a%5Cb", GW_PATH_CHANGED | GW_PATH_ESCAPED_SLASH},
    {"/a\\b", "/a\\b", GW_PATH_ESCAPED_SLASH},
    {"/a%00b", NULL, 0},
    {"/a%0d%0aX", NULL, 0},
    {"/a%zzb", NULL, 0},
    {"/a%2", NULL, 0},
    {"/a\tb", NULL, 0},
    {"admin", NULL, 0},
    {"", NULL, 0},
};

static void test_table(void)
{
    char out[256];
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        unsigned flags = 99;
        long n =
            gw_path_normalize(shapes[i].in, strlen(shapes[i].in), out, sizeof(out), false, &flags);
        if (shapes[i].out == NULL) {
            CHECK_INT(n, -1);
            if (n != -1)
                fprintf(stderr, "  case %zu: %s\n", i, shapes[i].in);
            continue;
        }
        CHECK(n >= 0);
        if (n < 0) {
            fprintf(stderr, "  case %zu: %s refused\n", i, shapes[i].in);
            continue;
        }
        out[n] = '\0';
        CHECK_STR(out, shapes[i].out);
        CHECK_INT(flags, shapes[i].flags);
        /* normal forms are fixed points */
        char again[256];
        unsigned f2;
        long m = gw_path_normalize(out, (size_t)n, again, sizeof(again), false, &f2);
        CHECK_INT(m, n);
        CHECK(!(f2 & GW_PATH_CHANGED));
        /* the quick scan never calls a path normal that is not */
        if (shapes[i].flags & GW_PATH_CHANGED)
            CHECK(gw_path_needs_normalizing(shapes[i].in, strlen(shapes[i].in)));
    }
}

static void test_decode_slashes(void)
{
    char out[64];
    unsigned flags;
    const char *in = "/api/%2F..%2Fadmin";
    long n = gw_path_normalize(in, strlen(in), out, sizeof(out), true, &flags);
    CHECK(n > 0);
    out[n > 0 ? n : 0] = '\0';
    CHECK_STR(out, "/admin"); /* decoded, then normalised: no way around /admin */
    CHECK(flags & GW_PATH_ESCAPED_SLASH);
    in = "/a\\b%5cc";
    n = gw_path_normalize(in, strlen(in), out, sizeof(out), true, &flags);
    out[n > 0 ? n : 0] = '\0';
    CHECK_STR(out, "/a/b/c");
}

static void test_bounds(void)
{
    char out[4];
    unsigned flags;
    CHECK_INT(gw_path_normalize("/abcdef", 7, out, sizeof(out), false, &flags), -1);
    CHECK(!gw_path_needs_normalizing("/a/b.c/d-e_f~g", 14));
}

TEST_MAIN(TEST(test_table), TEST(test_decode_slashes), TEST(test_bounds))
