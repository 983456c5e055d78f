/* response_headers_test.c - the response_headers plugin through the chain:
 * its schema and its remove, set and add edits of the response head, for a
 * proxied response and for an answer the gateway makes after the chain
 * passed (a 502); the head sent upstream is left alone. */
#include "plugin_fixture.h"

static void test_schema(void)
{
    struct gv_schema_error err;
    char *canon = NULL;
    CHECK_INT(fx_check("[{\"response_headers\":{\"set\":{\"X-Frame-Options\":\"DENY\"}}}]", NULL,
                       &canon, &err),
              0);
    CHECK_STR(canon, "[{\"response_headers\":{\"add\":{},\"remove\":[],"
                     "\"set\":{\"X-Frame-Options\":\"DENY\"}}}]");
    free(canon);
    CHECK_INT(fx_check("[{\"response_headers\":{\"set\":{\"X-A\":\"a\\r\\nSet-Cookie: x=1\"}}}]",
                       NULL, NULL, &err),
              GV_EINVAL);
    CHECK_STR(err.path, "plugins[0].response_headers.set.X-A");
    CHECK_INT(fx_check("[{\"response_headers\":{\"remove\":[\"\"]}}]", NULL, NULL, &err),
              GV_EINVAL);
    CHECK_STR(err.path, "plugins[0].response_headers.remove[0]");
    CHECK_INT(fx_check("[{\"response_headers\":[]}]", NULL, NULL, &err), GV_EINVAL);
    CHECK_STR(err.path, "plugins[0].response_headers");
}

static void test_edits(void)
{
    struct gw_pipeline *p = fx_pipeline(
        "[{\"response_headers\":{\"remove\":[\"Server\",\"X-Powered-By\"],"
        "\"set\":{\"X-Frame-Options\":\"DENY\"},\"add\":{\"Cache-Control\":\"no-store\"}}}]",
        NULL);
    struct gw_peer peer = fx_peer("10.0.0.1");
    struct gw_request r;
    fx_routed(&r, p, &peer, HTTP_GET, "/x", (const char *[]){"Server: client", NULL});
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_NEXT);
    /* The request goes upstream untouched. */
    CHECK_STR(fx_upstream_head(&r), "Server: client\r\n");
    CHECK_STR(fx_response_head(&r, (const char *[]){"Content-Type: text/plain", "server: nginx",
                                                    "X-Frame-Options: SAMEORIGIN",
                                                    "Cache-Control: max-age=60",
                                                    "x-powered-by: php", NULL}),
              "Content-Type: text/plain\r\nCache-Control: max-age=60\r\n"
              "X-Frame-Options: DENY\r\nCache-Control: no-store\r\n");
    /* An answer of the gateway's own once the chain passed (no upstream
     * headers): the set and add lines. */
    CHECK_STR(fx_response_head(&r, NULL), "X-Frame-Options: DENY\r\nCache-Control: no-store\r\n");
    fx_request_free(&r);
    gw_pipeline_free(p);
}

TEST_MAIN(TEST(test_schema), TEST(test_edits))
