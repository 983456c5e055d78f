/* routes_test.c - the admin API's route matching: methods (HEAD with GET),
 * 404 against 405 (and the methods a 405 names), :kind segments, names with
 * percent-escapes, and the real table's rows. */
#include "node/admin/routes.h"
#include "test.h"

#include <string.h>

static void h_a(struct admin_req *q, const struct admin_match *m)
{
    (void)q, (void)m;
}

static void h_b(struct admin_req *q, const struct admin_match *m)
{
    (void)q, (void)m;
}

static const struct admin_route table[] = {
    {ADMIN_M(HTTP_GET), "/things", h_a, false},
    {ADMIN_M(HTTP_PUT) | ADMIN_M(HTTP_DELETE), "/things", h_b, false},
    {ADMIN_M(HTTP_GET), "/x/:kind", h_a, false},
    {ADMIN_M(HTTP_GET) | ADMIN_M(HTTP_PUT), "/x/:kind/:name", h_a, false},
    {ADMIN_M(HTTP_POST), "/keys/:id/use", h_b, false},
};

static enum admin_found match(int method, const char *path, struct admin_match *m)
{
    return admin_route_match(table, sizeof(table) / sizeof(table[0]), method, path, m);
}

static void test_methods(void)
{
    struct admin_match m;
    char buf[64];
    CHECK_INT(match(HTTP_GET, "/things", &m), ADMIN_FOUND);
    CHECK(m.route == &table[0] && m.kind == NULL && m.param[0] == '\0');
    CHECK_INT(match(HTTP_HEAD, "/things", &m), ADMIN_FOUND); /* HEAD rides on GET */
    CHECK(m.route == &table[0]);
    CHECK_INT(match(HTTP_DELETE, "/things", &m), ADMIN_FOUND); /* the first row that takes it */
    CHECK(m.route == &table[1]);
    /* the path is there, the method is not: 405 with every row's methods */
    CHECK_INT(match(HTTP_POST, "/things", &m), ADMIN_NO_METHOD);
    CHECK(m.route == NULL);
    CHECK_STR(admin_methods_text(m.allowed, 0, buf, sizeof(buf)), "GET, PUT or DELETE");
    CHECK_STR(admin_methods_text(m.allowed, 1, buf, sizeof(buf)), "GET, HEAD, PUT, DELETE");
    CHECK_INT(match(HTTP_GET, "/keys/ab/use", &m), ADMIN_NO_METHOD);
    CHECK_STR(admin_methods_text(m.allowed, 0, buf, sizeof(buf)), "POST");
    CHECK_INT(match(HTTP_PATCH, "/x/routes", &m), ADMIN_NO_METHOD);
    CHECK_STR(admin_methods_text(m.allowed, 1, buf, sizeof(buf)), "GET, HEAD");
    CHECK_INT(match(-1, "/things", &m), ADMIN_NO_METHOD);
    CHECK_INT(match(99, "/things", &m), ADMIN_NO_METHOD);
}

static void test_not_found(void)
{
    struct admin_match m;
    /* no row has the path, whatever the method: 404, never 405 */
    const char *paths[] = {"/",          "",      "/thing",     "/things/",      "/things/1",
                           "//things",   "/x",    "/x/routes/", "/x/routes/a/b", "/keys/ab",
                           "/keys//use", "things"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        CHECK_INT(match(HTTP_GET, paths[i], &m), ADMIN_NOT_FOUND);
        CHECK_INT(match(HTTP_POST, paths[i], &m), ADMIN_NOT_FOUND);
        CHECK(m.route == NULL && m.allowed == 0);
    }
}

static void test_kinds(void)
{
    struct admin_match m;
    CHECK_INT(match(HTTP_GET, "/x/routes", &m), ADMIN_FOUND);
    CHECK(m.route == &table[2] && m.kind != NULL && m.kind->id == GV_KIND_ROUTES);
    CHECK_INT(match(HTTP_PUT, "/x/consumers/bob", &m), ADMIN_FOUND);
    CHECK(m.route == &table[3] && m.kind->id == GV_KIND_CONSUMERS);
    CHECK_STR(m.param, "bob");
    /* the API names kinds in the plural, exactly */
    CHECK_INT(match(HTTP_GET, "/x/route", &m), ADMIN_NO_KIND);
    CHECK_INT(match(HTTP_GET, "/x/Routes/a", &m), ADMIN_NO_KIND);
    CHECK_INT(match(HTTP_GET, "/x/", &m), ADMIN_NO_KIND);
    CHECK_INT(match(HTTP_DELETE, "/x/widgets/a", &m), ADMIN_NO_KIND); /* the kind first */
    CHECK_INT(match(HTTP_GET, "/x/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &m), ADMIN_NO_KIND);
    CHECK(m.kind == NULL);
}

static void test_names(void)
{
    struct admin_match m;
    CHECK_INT(match(HTTP_GET, "/x/routes/a%2Fb%20c", &m), ADMIN_FOUND);
    CHECK_STR(m.param, "a/b c");
    CHECK_INT(match(HTTP_GET, "/x/routes/caf%C3%A9", &m), ADMIN_FOUND);
    CHECK_STR(m.param, "caf\xc3\xa9");
    CHECK_INT(match(HTTP_GET, "/x/routes/100%25", &m), ADMIN_FOUND);
    CHECK_STR(m.param, "100%");
    CHECK_INT(match(HTTP_GET, "/x/routes/plus+stays", &m), ADMIN_FOUND);
    CHECK_STR(m.param, "plus+stays");
    CHECK_INT(match(HTTP_POST, "/keys/0a1b/use", &m), ADMIN_FOUND);
    CHECK_STR(m.param, "0a1b");
    /* a bad escape or an encoded NUL: 400, before the method is looked at */
    const char *bad[] = {"/x/routes/a%2", "/x/routes/%zz", "/x/routes/a%00b", "/x/routes/%"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(match(HTTP_GET, bad[i], &m), ADMIN_BAD_ESCAPE);
        CHECK_INT(match(HTTP_POST, bad[i], &m), ADMIN_BAD_ESCAPE);
        CHECK(m.route == NULL);
    }
    /* an unknown kind wins over a bad name */
    CHECK_INT(match(HTTP_GET, "/x/widgets/%zz", &m), ADMIN_NO_KIND);
    /* a name as long as the buffer matches nothing */
    char path[ADMIN_MAX_SEGMENT + 32];
    snprintf(path, sizeof(path), "/x/routes/");
    memset(path + strlen(path), 'n', ADMIN_MAX_SEGMENT);
    path[10 + ADMIN_MAX_SEGMENT] = '\0';
    CHECK_INT(match(HTTP_GET, path, &m), ADMIN_NOT_FOUND);
    path[10 + ADMIN_MAX_SEGMENT - 1] = '\0';
    CHECK_INT(match(HTTP_GET, path, &m), ADMIN_FOUND);
    CHECK_INT(strlen(m.param), ADMIN_MAX_SEGMENT - 1);
}

/* The admin API's own table: every documented call finds its row. */
static void test_admin_table(void)
{
    static const struct {
        int method;
        const char *path;
        const char *pattern; /* NULL: not found */
        enum admin_found found;
    } cases[] = {
        {HTTP_GET, "/health", "/health", ADMIN_FOUND},
        {HTTP_HEAD, "/status", "/status", ADMIN_FOUND},
        {HTTP_GET, "/cluster/members", "/cluster/members", ADMIN_FOUND},
        {HTTP_GET, "/backends", "/backends", ADMIN_FOUND},
        {HTTP_GET, "/metrics", "/metrics", ADMIN_FOUND},
        {HTTP_GET, "/config", "/config", ADMIN_FOUND},
        {HTTP_PUT, "/config", "/config", ADMIN_FOUND},
        {HTTP_GET, "/config/services", "/config/:kind", ADMIN_FOUND},
        {HTTP_GET, "/config/plugins/cors", "/config/:kind/:name", ADMIN_FOUND},
        {HTTP_PUT, "/config/routes/a%2Fb", "/config/:kind/:name", ADMIN_FOUND},
        {HTTP_DELETE, "/config/consumers/x", "/config/:kind/:name", ADMIN_FOUND},
        {HTTP_GET, "/cluster/keys", "/cluster/keys", ADMIN_FOUND},
        {HTTP_POST, "/cluster/keys", "/cluster/keys", ADMIN_FOUND},
        {HTTP_POST, "/cluster/keys/deadbeef/use", "/cluster/keys/:id/use", ADMIN_FOUND},
        {HTTP_DELETE, "/cluster/keys/deadbeef", "/cluster/keys/:id", ADMIN_FOUND},
        {HTTP_POST, "/debug/block", "/debug/block", ADMIN_FOUND},
        {HTTP_POST, "/health", NULL, ADMIN_NO_METHOD},
        {HTTP_DELETE, "/config", NULL, ADMIN_NO_METHOD},
        {HTTP_PUT, "/config/routes", NULL, ADMIN_NO_METHOD},
        {HTTP_POST, "/config/routes/x", NULL, ADMIN_NO_METHOD},
        {HTTP_GET, "/debug/block", NULL, ADMIN_NO_METHOD},
        {HTTP_GET, "/config/widgets", NULL, ADMIN_NO_KIND},
        {HTTP_PUT, "/config/widgets/x", NULL, ADMIN_NO_KIND},
        {HTTP_GET, "/config/routes/%zz", NULL, ADMIN_BAD_ESCAPE},
        {HTTP_GET, "/nope", NULL, ADMIN_NOT_FOUND},
        {HTTP_POST, "/nope", NULL, ADMIN_NOT_FOUND},
        {HTTP_GET, "/config/routes/a/b", NULL, ADMIN_NOT_FOUND},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct admin_match m;
        enum admin_found f =
            admin_route_match(admin_routes, admin_nroutes, cases[i].method, cases[i].path, &m);
        CHECK_INT(f, cases[i].found);
        if (f == ADMIN_FOUND && m.route != NULL)
            CHECK_STR(m.route->pattern, cases[i].pattern);
        else if (f != cases[i].found)
            fprintf(stderr, "  case %zu: %s\n", i, cases[i].path);
    }
    struct admin_match m;
    char buf[64];
    admin_route_match(admin_routes, admin_nroutes, HTTP_POST, "/config/routes/x", &m);
    CHECK_STR(admin_methods_text(m.allowed, 0, buf, sizeof(buf)), "GET, PUT or DELETE");
    admin_route_match(admin_routes, admin_nroutes, HTTP_DELETE, "/config", &m);
    CHECK_STR(admin_methods_text(m.allowed, 0, buf, sizeof(buf)), "GET or PUT");
}

TEST_MAIN(TEST(test_methods), TEST(test_not_found), TEST(test_kinds), TEST(test_names),
          TEST(test_admin_table))
