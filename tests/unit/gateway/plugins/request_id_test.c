/* request_id_test.c - the request_id plugin through the chain: its schema,
 * a client's id kept when valid (pass_through) or replaced by a fresh one,
 * the id sent upstream in its header instead of the client's, and echoed
 * on every response, a refusal by a later plugin included. */
#include "plugin_fixture.h"

/* A fresh id: 32 lowercase hex digits. */
static bool is_fresh(const char *id)
{
    return strlen(id) == 32 && strspn(id, "0123456789abcdef") == 32;
}

static void test_schema(void)
{
    struct gv_schema_error err;
    char *canon = NULL;
    CHECK_INT(fx_check("[{\"request_id\":{\"header\":\"X-Trace-Id\",\"echo\":false}}]", NULL,
                       &canon, &err),
              0);
    CHECK_STR(canon, "[{\"request_id\":{\"echo\":false,\"header\":\"X-Trace-Id\","
                     "\"pass_through\":true}}]");
    free(canon);
    CHECK_INT(fx_check("[{\"request_id\":{\"header\":\"X Trace\"}}]", NULL, NULL, &err), GV_EINVAL);
    CHECK_STR(err.path, "plugins[0].request_id.header");
    CHECK_INT(fx_check("[{\"request_id\":{\"pass_through\":\"yes\"}}]", NULL, NULL, &err),
              GV_EINVAL);
    CHECK_STR(err.path, "plugins[0].request_id.pass_through");
}

/* One request with hdrs through p; its id in id (GW_REQUEST_ID bytes), and
 * the upstream head and the response head (to an upstream that sent
 * `X-Request-Id: up`) in the fixture's texts. */
static void one(const struct gw_pipeline *p, const char *const *hdrs, char *id, const char **up,
                const char **down)
{
    struct gw_peer peer = fx_peer("10.0.0.1");
    struct gw_request r;
    fx_routed(&r, p, &peer, HTTP_GET, "/x", hdrs);
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_NEXT);
    memcpy(id, r.request_id, GW_REQUEST_ID);
    *up = fx_upstream_head(&r);
    *down = fx_response_head(&r, (const char *[]){"X-Request-Id: up", "X-Trace: up", NULL});
    fx_request_free(&r);
}

static void test_default_header(void)
{
    struct gw_pipeline *p = fx_pipeline("[{\"request_id\":null}]", NULL);
    char id[GW_REQUEST_ID], want[128];
    const char *up, *down;
    /* A valid client id is the request's id, sent up and echoed; the
     * upstream's own X-Request-Id does not reach the client. */
    one(p, (const char *[]){"Accept: */*", "x-request-id: Client_1.a-b", NULL}, id, &up, &down);
    CHECK_STR(id, "Client_1.a-b");
    CHECK_STR(up, "Accept: */*\r\nX-Request-Id: Client_1.a-b\r\n");
    CHECK_STR(down, "X-Trace: up\r\nX-Request-Id: Client_1.a-b\r\n");

    /* An invalid one is replaced by a fresh id, sent in its place. */
    one(p, (const char *[]){"X-Request-Id: has space", NULL}, id, &up, &down);
    CHECK(is_fresh(id));
    snprintf(want, sizeof(want), "X-Request-Id: %s\r\n", id);
    CHECK_STR(up, want);
    /* None: a fresh one too, another each time. */
    char before[GW_REQUEST_ID];
    memcpy(before, id, sizeof(before));
    one(p, NULL, id, &up, &down);
    CHECK(is_fresh(id));
    CHECK(strcmp(id, before) != 0);
    snprintf(want, sizeof(want), "X-Request-Id: %s\r\n", id);
    CHECK_STR(up, want);
    gw_pipeline_free(p);
}

static void test_pass_through_off(void)
{
    struct gw_pipeline *p = fx_pipeline("[{\"request_id\":{\"pass_through\":false}}]", NULL);
    char id[GW_REQUEST_ID], want[128];
    const char *up, *down;
    one(p, (const char *[]){"X-Request-Id: client-1", NULL}, id, &up, &down);
    CHECK(is_fresh(id));
    snprintf(want, sizeof(want), "X-Request-Id: %s\r\n", id);
    CHECK_STR(up, want);
    gw_pipeline_free(p);
}

static void test_own_header(void)
{
    struct gw_pipeline *p = fx_pipeline("[{\"request_id\":{\"header\":\"X-Trace\"}}]", NULL);
    char id[GW_REQUEST_ID], want[128];
    const char *up, *down;
    /* The configured header is read, sent and echoed; X-Request-Id is then
     * an ordinary header. */
    one(p, (const char *[]){"X-Request-Id: rid-1", "X-Trace: t-1", NULL}, id, &up, &down);
    CHECK_STR(id, "t-1");
    CHECK_STR(up, "X-Request-Id: rid-1\r\nX-Trace: t-1\r\n");
    CHECK_STR(down, "X-Request-Id: up\r\nX-Trace: t-1\r\n");
    /* Without it the id is fresh, not the codec's X-Request-Id. */
    one(p, (const char *[]){"X-Request-Id: rid-1", NULL}, id, &up, &down);
    CHECK(is_fresh(id));
    snprintf(want, sizeof(want), "X-Request-Id: rid-1\r\nX-Trace: %s\r\n", id);
    CHECK_STR(up, want);
    /* 65 bytes is one too many. */
    char longest[128];
    snprintf(longest, sizeof(longest), "X-Trace: %064d", 7);
    one(p, (const char *[]){longest, NULL}, id, &up, &down);
    CHECK_STR(id, longest + 9);
    snprintf(longest, sizeof(longest), "X-Trace: %065d", 7);
    one(p, (const char *[]){longest, NULL}, id, &up, &down);
    CHECK(is_fresh(id));
    gw_pipeline_free(p);
}

static void test_echo_off(void)
{
    struct gw_pipeline *p = fx_pipeline("[{\"request_id\":{\"echo\":false}}]", NULL);
    char id[GW_REQUEST_ID];
    const char *up, *down;
    one(p, (const char *[]){"X-Request-Id: client-2", NULL}, id, &up, &down);
    CHECK_STR(id, "client-2");
    CHECK_STR(up, "X-Request-Id: client-2\r\n");
    /* The upstream's response goes to the client as it came. */
    CHECK_STR(down, "X-Request-Id: up\r\nX-Trace: up\r\n");
    gw_pipeline_free(p);
}

/* request_id runs first, so a request another plugin refuses still
 * carries its id back. */
static void test_refused_request_carries_id(void)
{
    struct gw_pipeline *p = fx_pipeline("[{\"key_auth\":{}},{\"request_id\":{}}]", NULL);
    struct gw_peer peer = fx_peer("10.0.0.1");
    struct gw_request r;
    fx_routed(&r, p, &peer, HTTP_GET, "/x", (const char *[]){"X-Request-Id: abc", NULL});
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_ANSWERED);
    CHECK_INT(fx_answer.status, 401);
    CHECK_STR(fx_response_head(&r, NULL), "X-Request-Id: abc\r\n");
    fx_request_free(&r);
    gw_pipeline_free(p);
}

TEST_MAIN(TEST(test_schema), TEST(test_default_header), TEST(test_pass_through_off),
          TEST(test_own_header), TEST(test_echo_off), TEST(test_refused_request_carries_id))
