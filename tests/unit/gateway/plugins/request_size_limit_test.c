/* request_size_limit_test.c - the request_size_limit plugin through the
 * chain: its schema, a 413 for a Content-Length over max_bytes with the
 * head, and a streamed body refused at the chunk that crosses the limit.
 * The codec's part is played here: it counts each chunk into body_seen
 * before it runs the body phase. */
#include "plugin_fixture.h"

static void test_schema(void)
{
    struct gv_schema_error err;
    char *canon = NULL;
    CHECK_INT(fx_check("[{\"request_size_limit\":{\"max_bytes\":1048576}}]", NULL, &canon, &err),
              0);
    CHECK_STR(canon, "[{\"request_size_limit\":{\"max_bytes\":1048576}}]");
    free(canon);
    CHECK_INT(fx_check("[{\"request_size_limit\":{}}]", NULL, NULL, &err), GV_EINVAL);
    CHECK_STR(err.path, "plugins[0].request_size_limit");
    CHECK_STR(err.msg, "missing \"max_bytes\"");
    CHECK_INT(fx_check("[{\"request_size_limit\":null}]", NULL, NULL, &err), GV_EINVAL);
    CHECK_STR(err.msg, "missing \"max_bytes\"");
    const char *bad[] = {"0", "-1", "\"1MB\"", "1.5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char list[128];
        snprintf(list, sizeof(list), "[{\"request_size_limit\":{\"max_bytes\":%s}}]", bad[i]);
        CHECK_INT(fx_check(list, NULL, NULL, &err), GV_EINVAL);
        CHECK_STR(err.path, "plugins[0].request_size_limit.max_bytes");
    }
}

static void test_content_length(void)
{
    struct gw_pipeline *p = fx_pipeline("[{\"request_size_limit\":{\"max_bytes\":100}}]", NULL);
    struct gw_peer peer = fx_peer("10.0.0.1");
    struct gw_request r;
    const uint64_t lengths[] = {0, 100, 101, UINT64_MAX};
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        fx_routed(&r, p, &peer, HTTP_POST, "/x", NULL);
        r.has_length = true;
        r.content_length = lengths[i];
        bool over = lengths[i] > 100;
        CHECK_INT(gw_chain_on_request(&r), over ? GW_PLUGIN_ANSWERED : GW_PLUGIN_NEXT);
        CHECK_INT(fx_answer.count, over ? 1 : 0);
        if (over) {
            CHECK_INT(fx_answer.status, 413);
            CHECK_STR(fx_answer.msg, "request body too large");
        }
        fx_request_free(&r);
    }
    /* Body bytes that came with the head count too. */
    fx_routed(&r, p, &peer, HTTP_POST, "/x", NULL);
    r.body_chunked = true;
    r.body_seen = 101;
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_ANSWERED);
    CHECK_INT(fx_answer.status, 413);
    fx_request_free(&r);
    gw_pipeline_free(p);
}

/* Feeds len body bytes as the codec does; the body phase's verdict. */
static enum gw_plugin_verdict feed(struct gw_request *r, size_t len)
{
    static const char bytes[256];
    r->body_seen += len;
    return gw_chain_on_body(r, bytes, len);
}

static void test_streamed_body(void)
{
    struct gw_pipeline *p = fx_pipeline("[{\"request_size_limit\":{\"max_bytes\":100}}]", NULL);
    struct gw_peer peer = fx_peer("10.0.0.1");
    struct gw_request r;
    fx_routed(&r, p, &peer, HTTP_POST, "/x", (const char *[]){"Transfer-Encoding: chunked", NULL});
    r.body_chunked = true;
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_NEXT);
    CHECK_INT(feed(&r, 60), GW_PLUGIN_NEXT);
    CHECK_INT(feed(&r, 40), GW_PLUGIN_NEXT); /* exactly the limit */
    CHECK_INT(fx_answer.count, 0);
    CHECK_INT(feed(&r, 1), GW_PLUGIN_ANSWERED);
    CHECK_INT(fx_answer.count, 1);
    CHECK_INT(fx_answer.status, 413);
    fx_request_free(&r);

    /* A Content-Length that lied is caught by the count as well. */
    fx_routed(&r, p, &peer, HTTP_POST, "/x", NULL);
    r.has_length = true;
    r.content_length = 10;
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_NEXT);
    CHECK_INT(feed(&r, 200), GW_PLUGIN_ANSWERED);
    CHECK_INT(fx_answer.status, 413);
    fx_request_free(&r);
    gw_pipeline_free(p);
}

/* A request refused before the limit ran (an earlier plugin answered) has
 * no body phase from it: only plugins whose request phase ran see the body. */
static void test_body_phase_only_after_request_phase(void)
{
    struct gw_pipeline *p =
        fx_pipeline("[{\"request_size_limit\":{\"max_bytes\":1}},{\"key_auth\":{}}]", NULL);
    struct gw_peer peer = fx_peer("10.0.0.1");
    struct gw_request r;
    fx_routed(&r, p, &peer, HTTP_POST, "/x", NULL);
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_ANSWERED);
    CHECK_INT(fx_answer.status, 401);
    CHECK_INT(feed(&r, 200), GW_PLUGIN_NEXT);
    CHECK_INT(fx_answer.count, 1);
    fx_request_free(&r);
    gw_pipeline_free(p);
}

TEST_MAIN(TEST(test_schema), TEST(test_content_length), TEST(test_streamed_body),
          TEST(test_body_phase_only_after_request_phase))
