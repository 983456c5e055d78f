/* cors_test.c - the cors plugin through the chain: its schema, preflights
 * answered here (204 with the Allow-* headers, 403 for an origin not
 * allowed, before any auth plugin asks for credentials), and the
 * Access-Control-* headers an allowed origin's actual request gets on its
 * response, the gateway's own answers included. */
#include "plugin_fixture.h"

#define ORIGIN "Origin: https://app.example"

static void test_schema(void)
{
    struct gv_schema_error err;
    char *canon = NULL;
    CHECK_INT(fx_check("[{\"cors\":{}}]", NULL, &canon, &err), 0);
    CHECK_STR(canon, "[{\"cors\":{\"credentials\":false,\"expose_headers\":[],\"headers\":[],"
                     "\"methods\":[],\"origins\":[]}}]");
    free(canon);
    canon = NULL;
    CHECK_INT(fx_check("[{\"cors\":{\"origins\":[\"https://a.example:8443\",\"http://[::1]:80\"],"
                       "\"methods\":[\"GET\"],\"max_age\":\"10m\",\"credentials\":true}}]",
                       NULL, &canon, &err),
              0);
    CHECK_STR(canon, "[{\"cors\":{\"credentials\":true,\"expose_headers\":[],\"headers\":[],"
                     "\"max_age\":\"10m\",\"methods\":[\"GET\"],"
                     "\"origins\":[\"https://a.example:8443\",\"http://[::1]:80\"]}}]");
    free(canon);

    /* An absent max_age is left out; a zero one is kept. */
    canon = NULL;
    CHECK_INT(fx_check("[{\"cors\":{\"max_age\":\"0s\"}}]", NULL, &canon, &err), 0);
    CHECK(canon != NULL && strstr(canon, "\"max_age\":\"0s\"") != NULL);
    free(canon);

    struct {
        const char *conf, *path;
    } bad[] = {
        {"{\"origins\":[\"a.example\"]}", "plugins[0].cors.origins[0]"},
        {"{\"origins\":[\"*\",\"https://a.example/app\"]}", "plugins[0].cors.origins[1]"},
        {"{\"origins\":[\"ftp://a.example\"]}", "plugins[0].cors.origins[0]"},
        {"{\"origins\":[\"https://\"]}", "plugins[0].cors.origins[0]"},
        {"{\"methods\":[\"GE T\"]}", "plugins[0].cors.methods[0]"},
        {"{\"headers\":[\"X-A\",\"X:B\"]}", "plugins[0].cors.headers[1]"},
        {"{\"max_age\":\"forever\"}", "plugins[0].cors.max_age"},
        {"{\"max_age\":\"400d\"}", "plugins[0].cors.max_age"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char list[256];
        snprintf(list, sizeof(list), "[{\"cors\":%s}]", bad[i].conf);
        CHECK_INT(fx_check(list, NULL, NULL, &err), GV_EINVAL);
        CHECK_STR(err.path, bad[i].path);
        if (strcmp(err.path, bad[i].path) != 0)
            fprintf(stderr, "  for %s\n", bad[i].conf);
    }
}

/* The request (method, headers up to a NULL) through p: the verdict, and
 * in *head the response head the client gets (the gateway's own answer,
 * or the upstream's `upstream` headers as the chain passes them). */
static enum gw_plugin_verdict run(const struct gw_pipeline *p, int method, const char *const *hdrs,
                                  const char *const *upstream, const char **head)
{
    struct gw_peer peer = fx_peer("10.0.0.1");
    struct gw_request r;
    static char text[2048];
    fx_routed(&r, p, &peer, method, "/x", hdrs);
    enum gw_plugin_verdict v = gw_chain_on_request(&r);
    snprintf(text, sizeof(text), "%s%s", fx_answer.headers,
             fx_response_head(&r, v == GW_PLUGIN_NEXT ? upstream : NULL));
    *head = text;
    fx_request_free(&r);
    return v;
}

static void test_preflight(void)
{
    struct gw_pipeline *p = fx_pipeline(
        "[{\"cors\":{\"origins\":[\"https://app.example\"],\"max_age\":\"10m\"}}]", NULL);
    const char *head;
    CHECK_INT(run(p, HTTP_OPTIONS,
                  (const char *[]){ORIGIN, "Access-Control-Request-Method: PUT",
                                   "Access-Control-Request-Headers: X-Custom, content-type", NULL},
                  NULL, &head),
              GW_PLUGIN_ANSWERED);
    CHECK_INT(fx_answer.count, 1);
    CHECK_INT(fx_answer.status, 204);
    CHECK_STR(head, "Access-Control-Allow-Origin: https://app.example\r\n"
                    "Vary: Origin\r\n"
                    "Access-Control-Allow-Methods: GET, HEAD, PUT, PATCH, POST, DELETE\r\n"
                    "Access-Control-Allow-Headers: X-Custom, content-type\r\n"
                    "Access-Control-Max-Age: 600\r\n");

    /* Origins compare without case; the client's spelling is echoed. */
    CHECK_INT(run(p, HTTP_OPTIONS,
                  (const char *[]){"Origin: HTTPS://App.Example",
                                   "Access-Control-Request-Method: GET", NULL},
                  NULL, &head),
              GW_PLUGIN_ANSWERED);
    CHECK_INT(fx_answer.status, 204);
    CHECK(strstr(head, "Access-Control-Allow-Origin: HTTPS://App.Example\r\n") != NULL);
    CHECK(strstr(head, "Access-Control-Allow-Headers") == NULL); /* none asked */

    /* Another origin's preflight is refused, with no Allow-* header. */
    CHECK_INT(run(p, HTTP_OPTIONS,
                  (const char *[]){"Origin: https://evil.example",
                                   "Access-Control-Request-Method: PUT", NULL},
                  NULL, &head),
              GW_PLUGIN_ANSWERED);
    CHECK_INT(fx_answer.status, 403);
    CHECK_STR(fx_answer.msg, "CORS origin not allowed");
    CHECK_STR(head, "");

    /* An OPTIONS that asks for no method is not a preflight: proxied. */
    CHECK_INT(run(p, HTTP_OPTIONS, (const char *[]){ORIGIN, NULL}, NULL, &head), GW_PLUGIN_NEXT);
    CHECK_INT(fx_answer.count, 0);
    CHECK_STR(head, "Access-Control-Allow-Origin: https://app.example\r\nVary: Origin\r\n");
    gw_pipeline_free(p);

    /* max_age 0 is said (do not cache), unlike an absent one (below). */
    p = fx_pipeline("[{\"cors\":{\"max_age\":\"0s\"}}]", NULL);
    CHECK_INT(run(p, HTTP_OPTIONS,
                  (const char *[]){ORIGIN, "Access-Control-Request-Method: GET", NULL}, NULL,
                  &head),
              GW_PLUGIN_ANSWERED);
    CHECK(strstr(head, "Access-Control-Max-Age: 0\r\n") != NULL);
    gw_pipeline_free(p);

    /* Configured headers are allowed whatever the preflight asks. */
    p = fx_pipeline("[{\"cors\":{\"headers\":[\"X-A\",\"X-B\"],\"methods\":[\"GET\",\"POST\"]}}]",
                    NULL);
    CHECK_INT(run(p, HTTP_OPTIONS,
                  (const char *[]){ORIGIN, "Access-Control-Request-Method: POST",
                                   "Access-Control-Request-Headers: X-Other", NULL},
                  NULL, &head),
              GW_PLUGIN_ANSWERED);
    CHECK_STR(head, "Access-Control-Allow-Origin: *\r\n"
                    "Access-Control-Allow-Methods: GET, POST\r\n"
                    "Access-Control-Allow-Headers: X-A, X-B\r\n");
    gw_pipeline_free(p);
}

static void test_actual_request(void)
{
    struct gw_pipeline *p =
        fx_pipeline("[{\"cors\":{\"origins\":[\"https://app.example\",\"https://b.example\"],"
                    "\"expose_headers\":[\"X-Total\",\"ETag\"]}}]",
                    NULL);
    const char *const upstream[] = {"Content-Type: application/json", NULL};
    const char *head;
    CHECK_INT(run(p, HTTP_GET, (const char *[]){ORIGIN, NULL}, upstream, &head), GW_PLUGIN_NEXT);
    CHECK_STR(head, "Content-Type: application/json\r\n"
                    "Access-Control-Allow-Origin: https://app.example\r\n"
                    "Vary: Origin\r\n"
                    "Access-Control-Expose-Headers: X-Total, ETag\r\n");
    /* Another origin is proxied untouched: the browser withholds it. */
    CHECK_INT(
        run(p, HTTP_GET, (const char *[]){"Origin: https://c.example", NULL}, upstream, &head),
        GW_PLUGIN_NEXT);
    CHECK_INT(fx_answer.count, 0);
    CHECK_STR(head, "Content-Type: application/json\r\n");
    /* Not cross-origin at all: nothing added. */
    CHECK_INT(run(p, HTTP_POST, NULL, upstream, &head), GW_PLUGIN_NEXT);
    CHECK_STR(head, "Content-Type: application/json\r\n");
    gw_pipeline_free(p);
}

static void test_any_origin(void)
{
    const char *head;
    /* "*" without credentials: the wildcard itself. */
    struct gw_pipeline *p = fx_pipeline("[{\"cors\":{\"origins\":[\"*\"]}}]", NULL);
    CHECK_INT(run(p, HTTP_GET, (const char *[]){ORIGIN, NULL}, NULL, &head), GW_PLUGIN_NEXT);
    CHECK_STR(head, "Access-Control-Allow-Origin: *\r\n");
    gw_pipeline_free(p);
    /* With credentials browsers refuse "*": the origin is echoed. */
    p = fx_pipeline("[{\"cors\":{\"credentials\":true}}]", NULL);
    CHECK_INT(
        run(p, HTTP_GET, (const char *[]){"Origin: http://x.example:8080", NULL}, NULL, &head),
        GW_PLUGIN_NEXT);
    CHECK_STR(head, "Access-Control-Allow-Origin: http://x.example:8080\r\n"
                    "Vary: Origin\r\n"
                    "Access-Control-Allow-Credentials: true\r\n");
    gw_pipeline_free(p);
}

/* cors runs before auth: a preflight needs no credentials, and the 401 an
 * allowed origin gets carries the headers that let the page read it. */
static void test_before_auth(void)
{
    struct gw_pipeline *p =
        fx_pipeline("[{\"key_auth\":{}},{\"cors\":{\"origins\":[\"https://app.example\"]}}]",
                    "[{\"name\":\"a\",\"key_auth\":[\"k\"]}]");
    const char *head;
    CHECK_INT(run(p, HTTP_OPTIONS,
                  (const char *[]){ORIGIN, "Access-Control-Request-Method: GET", NULL}, NULL,
                  &head),
              GW_PLUGIN_ANSWERED);
    CHECK_INT(fx_answer.status, 204);
    CHECK_INT(run(p, HTTP_GET, (const char *[]){ORIGIN, NULL}, NULL, &head), GW_PLUGIN_ANSWERED);
    CHECK_INT(fx_answer.status, 401);
    CHECK_STR(head, "Access-Control-Allow-Origin: https://app.example\r\nVary: Origin\r\n");
    gw_pipeline_free(p);
}

TEST_MAIN(TEST(test_schema), TEST(test_preflight), TEST(test_actual_request), TEST(test_any_origin),
          TEST(test_before_auth))
