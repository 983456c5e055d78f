/* key_auth_test.c - the key_auth plugin through the chain: its schema and the
 * consumers' keys, a 401 without a known key, the consumer a key names, and
 * the key kept from the upstream (header taken out, query parameter hidden)
 * unless forward_credentials. */
#include "plugin_fixture.h"

static const char *const consumers = "[{\"name\":\"alice\",\"key_auth\":[\"k-alice\",\"k-a2\"]},"
                                     "{\"name\":\"bob\",\"key_auth\":[\"k-bob\"]}]";

static void test_schema(void)
{
    struct gv_schema_error err;
    char *canon = NULL;
    CHECK_INT(fx_check("[{\"key_auth\":null}]", NULL, &canon, &err), 0);
    CHECK_STR(canon, "[{\"key_auth\":{\"forward_credentials\":false,\"header\":\"X-Api-Key\"}}]");
    free(canon);
    canon = NULL;
    CHECK_INT(fx_check("[{\"key_auth\":{\"header\":\"Authorization\",\"query\":\"api_key\","
                       "\"forward_credentials\":true}}]",
                       consumers, &canon, &err),
              0);
    CHECK_STR(canon, "[{\"key_auth\":{\"forward_credentials\":true,\"header\":\"Authorization\","
                     "\"query\":\"api_key\"}}]");
    free(canon);

    CHECK_INT(fx_check("[{\"key_auth\":{\"header\":\"X Key\"}}]", NULL, NULL, &err), GV_EINVAL);
    CHECK_STR(err.path, "plugins[0].key_auth.header");
    CHECK_INT(fx_check("[{\"key_auth\":{\"query\":\"a&b\"}}]", NULL, NULL, &err), GV_EINVAL);
    CHECK_STR(err.path, "plugins[0].key_auth.query");
    CHECK(strstr(err.msg, "query parameter name") != NULL);
    CHECK_INT(fx_check("[{\"key_auth\":{\"forward\":true}}]", NULL, NULL, &err), GV_EINVAL);
    CHECK_STR(err.msg, "unknown key \"forward\"");
}

static void test_consumer_keys(void)
{
    struct gv_schema_error err;
    char *canon = NULL;
    CHECK_INT(fx_consumers(consumers, &canon, &err), 0);
    CHECK_STR(canon, "[{\"key_auth\":[\"k-alice\",\"k-a2\"],\"name\":\"alice\"},"
                     "{\"key_auth\":[\"k-bob\"],\"name\":\"bob\"}]");
    free(canon);
    /* A key is one consumer's. */
    CHECK_INT(fx_consumers("[{\"name\":\"a\",\"key_auth\":[\"k\"]},"
                           "{\"name\":\"b\",\"key_auth\":[\"x\",\"k\"]}]",
                           NULL, &err),
              GV_EINVAL);
    CHECK_STR(err.path, "consumers[1].key_auth[1]");
    CHECK(strstr(err.msg, "also belongs to consumer \"a\"") != NULL);
    CHECK_INT(fx_consumers("[{\"name\":\"a\",\"key_auth\":[\"\"]}]", NULL, &err), GV_EINVAL);
    CHECK_STR(err.path, "consumers[0].key_auth[0]");
    CHECK_INT(fx_consumers("[{\"name\":\"a\",\"key_auth\":\"k\"}]", NULL, &err), GV_EINVAL);
    CHECK_STR(err.path, "consumers[0].key_auth");
}

static void test_missing_and_invalid_key(void)
{
    struct gw_pipeline *p = fx_pipeline("[{\"key_auth\":{}}]", consumers);
    struct gw_peer peer = fx_peer("10.0.0.1");
    struct gw_request r;

    fx_routed(&r, p, &peer, HTTP_GET, "/x", (const char *[]){"Accept: */*", NULL});
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_ANSWERED);
    CHECK_INT(fx_answer.count, 1);
    CHECK_INT(fx_answer.status, 401);
    CHECK_STR(fx_answer.msg, "missing API key");
    CHECK(r.consumer == NULL);
    fx_request_free(&r);

    fx_routed(&r, p, &peer, HTTP_GET, "/x", (const char *[]){"X-Api-Key: k-nobody", NULL});
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_ANSWERED);
    CHECK_INT(fx_answer.status, 401);
    CHECK_STR(fx_answer.msg, "invalid API key");
    CHECK(r.consumer == NULL);
    fx_request_free(&r);

    /* An empty key is a missing one; a key's prefix is not the key. */
    fx_routed(&r, p, &peer, HTTP_GET, "/x", (const char *[]){"X-Api-Key:", NULL});
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_ANSWERED);
    CHECK_STR(fx_answer.msg, "missing API key");
    fx_request_free(&r);
    fx_routed(&r, p, &peer, HTTP_GET, "/x", (const char *[]){"X-Api-Key: k-ali", NULL});
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_ANSWERED);
    CHECK_STR(fx_answer.msg, "invalid API key");
    fx_request_free(&r);

    /* Without a query setting, a key in the query is not looked at. */
    fx_routed(&r, p, &peer, HTTP_GET, "/x?api_key=k-bob", NULL);
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_ANSWERED);
    CHECK_STR(fx_answer.msg, "missing API key");
    fx_request_free(&r);
    gw_pipeline_free(p);
}

static void test_valid_key_taken_out(void)
{
    struct gw_pipeline *p = fx_pipeline("[{\"key_auth\":{}}]", consumers);
    struct gw_peer peer = fx_peer("10.0.0.1");
    struct gw_request r;
    fx_routed(&r, p, &peer, HTTP_GET, "/x",
              (const char *[]){"Accept: */*", "x-api-key: k-a2", "X-Other: 1", NULL});
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_NEXT);
    CHECK_INT(fx_answer.count, 0);
    CHECK_STR(r.consumer, "alice");
    CHECK_STR(fx_upstream_head(&r), "Accept: */*\r\nX-Other: 1\r\n");
    CHECK_INT(r.nhide_query, 0);
    fx_request_free(&r);

    fx_routed(&r, p, &peer, HTTP_GET, "/x", (const char *[]){"X-Api-Key: k-bob", NULL});
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_NEXT);
    CHECK_STR(r.consumer, "bob");
    fx_request_free(&r);
    gw_pipeline_free(p);
}

static void test_forward_credentials(void)
{
    struct gw_pipeline *p = fx_pipeline(
        "[{\"key_auth\":{\"forward_credentials\":true,\"query\":\"api_key\"}}]", consumers);
    struct gw_peer peer = fx_peer("10.0.0.1");
    struct gw_request r;
    fx_routed(&r, p, &peer, HTTP_GET, "/x", (const char *[]){"X-Api-Key: k-bob", NULL});
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_NEXT);
    CHECK_STR(r.consumer, "bob");
    CHECK_STR(fx_upstream_head(&r), "X-Api-Key: k-bob\r\n");
    fx_request_free(&r);

    fx_routed(&r, p, &peer, HTTP_GET, "/x?api_key=k-bob", NULL);
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_NEXT);
    CHECK_STR(r.consumer, "bob");
    CHECK_INT(r.nhide_query, 0);
    fx_request_free(&r);
    gw_pipeline_free(p);
}

static void test_query_key_hidden(void)
{
    struct gw_pipeline *p = fx_pipeline(
        "[{\"key_auth\":{\"header\":\"Authorization\",\"query\":\"api_key\"}}]", consumers);
    struct gw_peer peer = fx_peer("10.0.0.1");
    struct gw_request r;
    /* Percent-encoded in the query, decoded before the lookup. */
    fx_routed(&r, p, &peer, HTTP_GET, "/x?a=1&api_key=k%2Dbob&b=2",
              (const char *[]){"X-Api-Key: k-alice", NULL});
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_NEXT);
    CHECK_STR(r.consumer, "bob");
    CHECK_INT(r.nhide_query, 1);
    CHECK_STR(r.hide_query[0], "api_key");
    /* The key came from the query: the configured header is not taken out
     * (it never held the key), and X-Api-Key is not this config's header. */
    CHECK_STR(fx_upstream_head(&r), "X-Api-Key: k-alice\r\n");
    fx_request_free(&r);

    /* The header wins over the query; then only the header is taken out. */
    fx_routed(&r, p, &peer, HTTP_GET, "/x?api_key=k-bob",
              (const char *[]){"Authorization: k-alice", NULL});
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_NEXT);
    CHECK_STR(r.consumer, "alice");
    CHECK_INT(r.nhide_query, 0);
    CHECK_STR(fx_upstream_head(&r), "");
    fx_request_free(&r);

    fx_routed(&r, p, &peer, HTTP_GET, "/x?api_key=", NULL);
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_ANSWERED);
    CHECK_STR(fx_answer.msg, "missing API key");
    fx_request_free(&r);
    gw_pipeline_free(p);
}

TEST_MAIN(TEST(test_schema), TEST(test_consumer_keys), TEST(test_missing_and_invalid_key),
          TEST(test_valid_key_taken_out), TEST(test_forward_credentials),
          TEST(test_query_key_hidden))
