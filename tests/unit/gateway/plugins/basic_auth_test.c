/* basic_auth_test.c - the basic_auth plugin through the chain: its schema,
 * consumers' passwords stored as hashes that every node derives alike, a
 * 401 with the realm's challenge for missing, malformed or wrong
 * credentials and for an unknown user, the consumer a user names, and the
 * Authorization header kept from the upstream unless forward_credentials. */
#include "plugin_fixture.h"
#include "common/util.h"

static const char *const consumers =
    "[{\"name\":\"alice\",\"basic_auth\":[{\"username\":\"al\",\"password\":\"pw-al\"},"
    "{\"username\":\"al2\",\"password\":\"a:b\"}]},"
    "{\"name\":\"bob\",\"basic_auth\":[{\"username\":\"bo\",\"password\":\"pw-bo\"}]}]";

/* "Authorization: Basic BASE64(userpass)" into out. */
static const char *basic(char *out, size_t n, const char *userpass)
{
    char b64[200];
    CHECK(strlen(userpass) < 140);
    gv_base64_encode(userpass, strlen(userpass), b64, false);
    snprintf(out, n, "Authorization: Basic %s", b64);
    return out;
}

static void test_schema(void)
{
    struct gv_schema_error err;
    char *canon = NULL;
    CHECK_INT(fx_check("[{\"basic_auth\":{}}]", NULL, &canon, &err), 0);
    CHECK_STR(canon, "[{\"basic_auth\":{\"forward_credentials\":false,\"realm\":\"grapevine\"}}]");
    free(canon);
    CHECK_INT(fx_check("[{\"basic_auth\":{\"realm\":\"a \\\"b\\\"\"}}]", NULL, NULL, &err),
              GV_EINVAL);
    CHECK_STR(err.path, "plugins[0].basic_auth.realm");
    CHECK(strstr(err.msg, "no quotes or backslashes") != NULL);
    CHECK_INT(fx_check("[{\"basic_auth\":{\"forward_credentials\":1}}]", NULL, NULL, &err),
              GV_EINVAL);
    CHECK_STR(err.path, "plugins[0].basic_auth.forward_credentials");
}

static void test_consumer_passwords(void)
{
    struct gv_schema_error err;
    char *canon = NULL, *again = NULL;
    const char *same = "[{\"name\":\"a\",\"basic_auth\":[{\"username\":\"u\",\"password\":\"p\"}]},"
                       "{\"name\":\"b\",\"basic_auth\":[{\"username\":\"v\",\"password\":\"p\"}]}]";
    CHECK_INT(fx_consumers(same, &canon, &err), 0);
    CHECK_INT(fx_consumers(same, &again, &err), 0);
    /* Only the hash is stored, the same on every node that checks the same
     * input, and salted per consumer and user: equal passwords differ. */
    CHECK(canon != NULL && strstr(canon, "\"password\"") == NULL);
    CHECK_STR(canon, again);
    json_t *c = fx_json(canon ? canon : "null");
    const char *h0 = json_string_value(json_object_get(
        json_array_get(json_object_get(json_array_get(c, 0), "basic_auth"), 0), "password_hash"));
    const char *h1 = json_string_value(json_object_get(
        json_array_get(json_object_get(json_array_get(c, 1), "basic_auth"), 0), "password_hash"));
    CHECK(h0 != NULL && strncmp(h0, "pbkdf2-sha256$", 14) == 0);
    CHECK(h0 != NULL && h1 != NULL && strcmp(h0, h1) != 0);
    /* The stored form checks again to itself. */
    free(again);
    again = NULL;
    CHECK_INT(fx_consumers(canon ? canon : "null", &again, &err), 0);
    CHECK_STR(again, canon);
    json_decref(c);
    free(canon);
    free(again);

    CHECK_INT(fx_consumers("[{\"name\":\"a\",\"basic_auth\":[{\"username\":\"u:x\","
                           "\"password\":\"p\"}]}]",
                           NULL, &err),
              GV_EINVAL);
    CHECK_STR(err.path, "consumers[0].basic_auth[0].username");
    CHECK(strstr(err.msg, "must not contain \":\"") != NULL);
    CHECK_INT(fx_consumers("[{\"name\":\"a\",\"basic_auth\":[{\"username\":\"u\"}]}]", NULL, &err),
              GV_EINVAL);
    CHECK_STR(err.path, "consumers[0].basic_auth[0]");
    CHECK_STR(err.msg, "needs \"password\" or \"password_hash\" (one of them)");
    CHECK_INT(fx_consumers("[{\"name\":\"a\",\"basic_auth\":[{\"username\":\"u\","
                           "\"password_hash\":\"md5$x\"}]}]",
                           NULL, &err),
              GV_EINVAL);
    CHECK_STR(err.where, "consumers[0].basic_auth[0].password_hash");
    /* A user name is one consumer's. */
    CHECK_INT(fx_consumers("[{\"name\":\"a\",\"basic_auth\":[{\"username\":\"u\","
                           "\"password\":\"p\"}]},"
                           "{\"name\":\"b\",\"basic_auth\":[{\"username\":\"u\","
                           "\"password\":\"q\"}]}]",
                           NULL, &err),
              GV_EINVAL);
    CHECK_STR(err.path, "consumers[1].basic_auth[0]");
    CHECK(strstr(err.msg, "also belongs to consumer \"a\"") != NULL);
}

/* Runs a request with the header auth (NULL: none) through p and expects
 * a 401 for why with the challenge of realm. */
static void expect_refused(const struct gw_pipeline *p, const char *auth, const char *why,
                           const char *realm)
{
    struct gw_peer peer = fx_peer("10.0.0.1");
    struct gw_request r;
    char challenge[128];
    snprintf(challenge, sizeof(challenge),
             "WWW-Authenticate: Basic realm=\"%s\", charset=\"UTF-8\"\r\n", realm);
    fx_routed(&r, p, &peer, HTTP_GET, "/x", (const char *[]){auth, NULL});
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_ANSWERED);
    CHECK_INT(fx_answer.count, 1);
    CHECK_INT(fx_answer.status, 401);
    CHECK_STR(fx_answer.msg, why);
    CHECK_STR(fx_answer.headers, challenge);
    CHECK(r.consumer == NULL);
    if (strcmp(fx_answer.msg, why) != 0)
        fprintf(stderr, "  for %s\n", auth ? auth : "no Authorization");
    fx_request_free(&r);
}

static void test_refusals(void)
{
    struct gw_pipeline *p = fx_pipeline("[{\"basic_auth\":{\"realm\":\"api\"}}]", consumers);
    char h[256];
    expect_refused(p, NULL, "missing basic credentials", "api");
    expect_refused(p, "Authorization: Bearer abc", "missing basic credentials", "api");
    expect_refused(p, basic(h, sizeof(h), "al:wrong"), "invalid basic credentials", "api");
    expect_refused(p, basic(h, sizeof(h), "al:"), "invalid basic credentials", "api");
    /* bob's password is not alice's */
    expect_refused(p, basic(h, sizeof(h), "al:pw-bo"), "invalid basic credentials", "api");
    expect_refused(p, basic(h, sizeof(h), "nobody:pw-al"), "invalid basic credentials", "api");
    expect_refused(p, basic(h, sizeof(h), "AL:pw-al"), "invalid basic credentials", "api");
    expect_refused(p, basic(h, sizeof(h), "no colon"), "malformed basic credentials", "api");
    expect_refused(p, "Authorization: Basic !!!", "malformed basic credentials", "api");
    gw_pipeline_free(p);
}

static void test_valid_user(void)
{
    struct gw_pipeline *p = fx_pipeline("[{\"basic_auth\":{}}]", consumers);
    struct gw_peer peer = fx_peer("10.0.0.1");
    struct gw_request r;
    char h[256];
    /* Twice: the second time the header is found in the worker's cache. */
    for (int i = 0; i < 2; i++) {
        fx_routed(&r, p, &peer, HTTP_GET, "/x",
                  (const char *[]){"Accept: */*", basic(h, sizeof(h), "al:pw-al"), NULL});
        CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_NEXT);
        CHECK_INT(fx_answer.count, 0);
        CHECK_STR(r.consumer, "alice");
        CHECK_STR(fx_upstream_head(&r), "Accept: */*\r\n");
        fx_request_free(&r);
    }
    /* The password is all after the first colon. */
    fx_routed(&r, p, &peer, HTTP_GET, "/x", (const char *[]){basic(h, sizeof(h), "al2:a:b"), NULL});
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_NEXT);
    CHECK_STR(r.consumer, "alice");
    fx_request_free(&r);
    fx_routed(&r, p, &peer, HTTP_GET, "/x",
              (const char *[]){basic(h, sizeof(h), "bo:pw-bo"), NULL});
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_NEXT);
    CHECK_STR(r.consumer, "bob");
    fx_request_free(&r);
    gw_pipeline_free(p);
}

static void test_forward_credentials(void)
{
    struct gw_pipeline *p =
        fx_pipeline("[{\"basic_auth\":{\"forward_credentials\":true}}]", consumers);
    struct gw_peer peer = fx_peer("10.0.0.1");
    struct gw_request r;
    char h[256], want[300];
    fx_routed(&r, p, &peer, HTTP_GET, "/x",
              (const char *[]){basic(h, sizeof(h), "bo:pw-bo"), NULL});
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_NEXT);
    CHECK_STR(r.consumer, "bob");
    snprintf(want, sizeof(want), "%s\r\n", h);
    CHECK_STR(fx_upstream_head(&r), want);
    fx_request_free(&r);
    gw_pipeline_free(p);
}

TEST_MAIN(TEST(test_schema), TEST(test_consumer_passwords), TEST(test_refusals),
          TEST(test_valid_user), TEST(test_forward_credentials))
