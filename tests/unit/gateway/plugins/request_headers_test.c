/* request_headers_test.c - the request_headers plugin through the chain: its
 * schema (names and values that could split a head are refused) and its
 * remove, set and add edits of the head sent upstream, which leave the
 * response alone. */
#include "plugin_fixture.h"

static void test_schema(void)
{
    struct gv_schema_error err;
    char *canon = NULL;
    CHECK_INT(fx_check("[{\"request_headers\":{}}]", NULL, &canon, &err), 0);
    CHECK_STR(canon, "[{\"request_headers\":{\"add\":{},\"remove\":[],\"set\":{}}}]");
    free(canon);
    canon = NULL;
    CHECK_INT(fx_check("[{\"request_headers\":{\"set\":{\"X-B\":\"2\",\"X-A\":\"1\"},"
                       "\"remove\":[\"Cookie\"]}}]",
                       NULL, &canon, &err),
              0);
    CHECK(canon != NULL && strstr(canon, "\"remove\":[\"Cookie\"]") != NULL);
    free(canon);
    /* A number is a value too, kept as its text. */
    canon = NULL;
    CHECK_INT(fx_check("[{\"request_headers\":{\"add\":{\"X-N\":7}}}]", NULL, &canon, &err), 0);
    CHECK(canon != NULL && strstr(canon, "\"add\":{\"X-N\":\"7\"}") != NULL);
    free(canon);

    struct {
        const char *conf, *path;
    } bad[] = {
        {"{\"set\":{\"X A\":\"1\"}}", "plugins[0].request_headers.set.X A"},
        {"{\"add\":{\"X-A\":\"1\\r\\nX-B: 2\"}}", "plugins[0].request_headers.add.X-A"},
        {"{\"add\":{\"X-A\":\"1\\nX\"}}", "plugins[0].request_headers.add.X-A"},
        {"{\"add\":{\"X-A\":true}}", "plugins[0].request_headers.add.X-A"},
        {"{\"remove\":[\"X-A\",\"X:B\"]}", "plugins[0].request_headers.remove[1]"},
        {"{\"remove\":\"X-A\"}", "plugins[0].request_headers.remove"},
        {"{\"replace\":{}}", "plugins[0].request_headers"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char list[256];
        snprintf(list, sizeof(list), "[{\"request_headers\":%s}]", bad[i].conf);
        CHECK_INT(fx_check(list, NULL, NULL, &err), GV_EINVAL);
        CHECK_STR(err.path, bad[i].path);
        if (strcmp(err.path, bad[i].path) != 0)
            fprintf(stderr, "  for %s: %s\n", bad[i].conf, err.msg);
    }
}

static void test_edits(void)
{
    struct gw_pipeline *p =
        fx_pipeline("[{\"request_headers\":{\"remove\":[\"Cookie\",\"X-Debug\"],"
                    "\"set\":{\"X-Env\":\"prod\"},\"add\":{\"Via\":\"gv-test\",\"X-Tag\":\"a\"}}}]",
                    NULL);
    struct gw_peer peer = fx_peer("10.0.0.1");
    struct gw_request r;
    fx_routed(&r, p, &peer, HTTP_GET, "/x",
              (const char *[]){"Accept: */*", "cookie: s=1", "X-Env: dev", "X-Tag: client",
                               "X-DEBUG: 1", "Cookie: t=2", NULL});
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_NEXT);
    CHECK_INT(fx_answer.count, 0);
    /* remove: every header of the name, any case; set: the client's
     * replaced; add: one more beside the client's. */
    CHECK_STR(fx_upstream_head(&r), "Accept: */*\r\nX-Tag: client\r\n"
                                    "X-Env: prod\r\nVia: gv-test\r\nX-Tag: a\r\n");
    /* The response is not this plugin's. */
    CHECK_STR(fx_response_head(&r, (const char *[]){"Cookie: x", "X-Env: up", NULL}),
              "Cookie: x\r\nX-Env: up\r\n");
    fx_request_free(&r);
    gw_pipeline_free(p);
}

/* A route's request_headers replaces a global one (not merged). */
static void test_route_replaces_global(void)
{
    json_t *global = fx_json("[{\"request_headers\":{\"add\":{\"X-Global\":\"g\"}}}]");
    json_t *route = fx_json("[{\"request_headers\":{\"add\":{\"X-Route\":\"r\"}}}]");
    struct gw_route_spec routes[2] = {{.name = "with", .plugins = route}, {.name = "without"}};
    struct gw_pipeline *p = NULL;
    struct gw_peer peer = fx_peer("10.0.0.1");
    struct gw_request r;
    CHECK_INT(gw_pipeline_build(global, routes, 2, NULL, &p), 0);
    CHECK(p != NULL);
    for (int i = 0; i < 2 && p != NULL; i++) {
        fx_request(&r, &peer, HTTP_GET, "/x", NULL);
        r.chain = &p->routes[i];
        CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_NEXT);
        CHECK_STR(fx_upstream_head(&r), i == 0 ? "X-Route: r\r\n" : "X-Global: g\r\n");
        fx_request_free(&r);
    }
    gw_pipeline_free(p);
    json_decref(global);
    json_decref(route);
}

TEST_MAIN(TEST(test_schema), TEST(test_edits), TEST(test_route_replaces_global))
