/* jwt_test.c - the jwt plugin through the chain: its schema and the
 * consumers' credentials (a key the gateway cannot use is refused), a 401
 * with a Bearer challenge for a missing, forged, expired, unknown or
 * mismatched token, the consumer an issuer names, and the token kept from
 * the upstream unless forward_credentials. Tokens are HMAC-signed here;
 * gateway/auth/jws_test.c covers the other algorithms. */
#include "plugin_fixture.h"
#include "common/util.h"

#include <openssl/hmac.h>
#include <time.h>

static const char *const consumers =
    "[{\"name\":\"alice\",\"jwt\":[{\"issuer\":\"iss-a\",\"secret\":\"secret-a\"}]},"
    "{\"name\":\"bob\",\"jwt\":[{\"issuer\":\"iss-b\",\"algorithm\":\"HS384\","
    "\"secret\":\"secret-b\"}]}]";

/* A compact JWS of payload with header {"alg":alg,"typ":"JWT"}, signed by
 * HMAC (alg HS256 or HS384) with secret, into out (n bytes). */
static const char *token(char *out, size_t n, const char *alg, const char *secret,
                         const char *payload)
{
    char header[64], h64[128], p64[512], s64[128];
    unsigned char sig[EVP_MAX_MD_SIZE];
    unsigned int slen = 0;
    snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    CHECK(strlen(payload) < 360);
    gv_base64_encode(header, strlen(header), h64, true);
    gv_base64_encode(payload, strlen(payload), p64, true);
    snprintf(out, n, "%s.%s", h64, p64);
    const EVP_MD *md = strcmp(alg, "HS384") == 0 ? EVP_sha384() : EVP_sha256();
    CHECK(HMAC(md, secret, (int)strlen(secret), (const unsigned char *)out, strlen(out), sig,
               &slen) != NULL);
    gv_base64_encode(sig, slen, s64, true);
    size_t at = strlen(out);
    snprintf(out + at, n - at, ".%s", s64);
    return out;
}

/* A payload for issuer expiring `exp` seconds from now (negative: past). */
static const char *claims(char *out, size_t n, const char *issuer, long exp)
{
    snprintf(out, n, "{\"iss\":\"%s\",\"exp\":%lld}", issuer, (long long)time(NULL) + exp);
    return out;
}

static void test_schema(void)
{
    struct gv_schema_error err;
    char *canon = NULL;
    CHECK_INT(fx_check("[{\"jwt\":null}]", NULL, &canon, &err), 0);
    CHECK_STR(canon, "[{\"jwt\":{\"clock_skew\":\"30s\",\"forward_credentials\":false,"
                     "\"header\":\"Authorization\"}}]");
    free(canon);
    canon = NULL;
    CHECK_INT(
        fx_check("[{\"jwt\":{\"clock_skew\":\"1m\",\"query\":\"jwt\"}}]", consumers, &canon, &err),
        0);
    CHECK_STR(canon, "[{\"jwt\":{\"clock_skew\":\"1m\",\"forward_credentials\":false,"
                     "\"header\":\"Authorization\",\"query\":\"jwt\"}}]");
    free(canon);

    CHECK_INT(fx_check("[{\"jwt\":{\"clock_skew\":\"10m\"}}]", NULL, NULL, &err), GV_EINVAL);
    CHECK_STR(err.path, "plugins[0].jwt.clock_skew");
    CHECK_STR(err.msg, "must be at most 5m");
    CHECK_INT(fx_check("[{\"jwt\":{\"query\":\"a=b\"}}]", NULL, NULL, &err), GV_EINVAL);
    CHECK_STR(err.path, "plugins[0].jwt.query");
    CHECK_INT(fx_check("[{\"jwt\":{\"header\":\"\"}}]", NULL, NULL, &err), GV_EINVAL);
    CHECK_STR(err.path, "plugins[0].jwt.header");
}

static void test_consumer_credentials(void)
{
    struct gv_schema_error err;
    char *canon = NULL;
    CHECK_INT(fx_consumers("[{\"name\":\"a\",\"jwt\":[{\"issuer\":\"i\",\"secret\":\"s\"}]}]",
                           &canon, &err),
              0);
    /* The algorithm is spelled out; the secret stays (the state needs it). */
    CHECK_STR(canon, "[{\"jwt\":[{\"algorithm\":\"HS256\",\"issuer\":\"i\",\"secret\":\"s\"}],"
                     "\"name\":\"a\"}]");
    free(canon);

    CHECK_INT(fx_consumers("[{\"name\":\"a\",\"jwt\":[{\"issuer\":\"i\",\"algorithm\":\"none\","
                           "\"secret\":\"s\"}]}]",
                           NULL, &err),
              GV_EINVAL);
    CHECK_STR(err.path, "consumers[0].jwt[0].algorithm");
    CHECK_INT(fx_consumers("[{\"name\":\"a\",\"jwt\":[{\"issuer\":\"i\"}]}]", NULL, &err),
              GV_EINVAL);
    CHECK_STR(err.path, "consumers[0].jwt[0]");
    CHECK_STR(err.msg, "missing \"secret\"");
    CHECK_INT(fx_consumers("[{\"name\":\"a\",\"jwt\":[{\"secret\":\"s\"}]}]", NULL, &err),
              GV_EINVAL);
    CHECK_STR(err.path, "consumers[0].jwt[0]");
    CHECK_STR(err.msg, "missing \"issuer\"");
    /* An HMAC issuer takes a secret, an RSA one a usable public key. */
    CHECK_INT(fx_consumers("[{\"name\":\"a\",\"jwt\":[{\"issuer\":\"i\",\"secret\":\"s\","
                           "\"public_key\":\"k\"}]}]",
                           NULL, &err),
              GV_EINVAL);
    CHECK(strstr(err.msg, "HS256 takes \"secret\" only") != NULL);
    CHECK_INT(fx_consumers("[{\"name\":\"a\",\"jwt\":[{\"issuer\":\"i\",\"algorithm\":\"RS256\","
                           "\"public_key\":\"not a key\"}]}]",
                           NULL, &err),
              GV_EINVAL);
    CHECK_STR(err.path, "consumers[0].jwt[0].public_key");
    CHECK_STR(err.msg, "not a PEM public key");
    /* An issuer names one consumer. */
    CHECK_INT(fx_consumers("[{\"name\":\"a\",\"jwt\":[{\"issuer\":\"i\",\"secret\":\"s\"}]},"
                           "{\"name\":\"b\",\"jwt\":[{\"issuer\":\"i\",\"secret\":\"t\"}]}]",
                           NULL, &err),
              GV_EINVAL);
    CHECK_STR(err.path, "consumers[1].jwt[0].issuer");
    CHECK_STR(err.msg, "issuer \"i\" also belongs to consumer \"a\"");
}

/* Runs a request carrying `auth` as its Authorization header (NULL: none)
 * through p and expects a 401 for why, with its challenge. */
static void expect_refused(const struct gw_pipeline *p, const char *auth, const char *why,
                           const char *challenge)
{
    struct gw_peer peer = fx_peer("10.0.0.1");
    struct gw_request r;
    fx_routed(&r, p, &peer, HTTP_GET, "/x", (const char *[]){auth, NULL});
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_ANSWERED);
    CHECK_INT(fx_answer.count, 1);
    CHECK_INT(fx_answer.status, 401);
    CHECK_STR(fx_answer.msg, why);
    CHECK_STR(fx_answer.headers, challenge);
    CHECK(r.consumer == NULL);
    if (strcmp(fx_answer.msg, why) != 0)
        fprintf(stderr, "  for Authorization: %s\n", auth ? auth : "(none)");
    fx_request_free(&r);
}

static void test_refusals(void)
{
    struct gw_pipeline *p = fx_pipeline("[{\"jwt\":{}}]", consumers);
    char tok[1024], auth[1100], pl[256];
    expect_refused(p, NULL, "missing token", "WWW-Authenticate: Bearer\r\n");
    /* Another scheme is not a bearer token. */
    expect_refused(p, "Authorization: Basic YTpi", "missing token", "WWW-Authenticate: Bearer\r\n");
    expect_refused(p, "Authorization: Bearer ", "missing token", "WWW-Authenticate: Bearer\r\n");

    struct {
        const char *alg, *secret, *issuer;
        long exp;
        const char *why;
    } cases[] = {
        {"HS256", "secret-x", "iss-a", 300, "bad signature"},
        {"HS256", "secret-a", "iss-a", -3600, "token expired"},
        {"HS256", "secret-a", "iss-x", 300, "unknown issuer"},
        /* bob's issuer takes HS384 only, even signed with his secret */
        {"HS256", "secret-b", "iss-b", 300, "algorithm mismatch"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char challenge[256];
        token(tok, sizeof(tok), cases[i].alg, cases[i].secret,
              claims(pl, sizeof(pl), cases[i].issuer, cases[i].exp));
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
        snprintf(challenge, sizeof(challenge),
                 "WWW-Authenticate: Bearer error=\"invalid_token\", "
                 "error_description=\"%s\"\r\n",
                 cases[i].why);
        expect_refused(p, auth, cases[i].why, challenge);
    }
    snprintf(auth, sizeof(auth), "Authorization: Bearer not.a.token");
    expect_refused(p, auth, "malformed token",
                   "WWW-Authenticate: Bearer error=\"invalid_token\", "
                   "error_description=\"malformed token\"\r\n");
    gw_pipeline_free(p);
}

static void test_valid_token_taken_out(void)
{
    struct gw_pipeline *p = fx_pipeline("[{\"jwt\":{}}]", consumers);
    struct gw_peer peer = fx_peer("10.0.0.1");
    struct gw_request r;
    char tok[1024], auth[1100], pl[256];
    token(tok, sizeof(tok), "HS256", "secret-a", claims(pl, sizeof(pl), "iss-a", 300));
    snprintf(auth, sizeof(auth), "authorization: bearer  %s", tok);
    /* Twice: the second time the token comes from the worker's cache. */
    for (int i = 0; i < 2; i++) {
        fx_routed(&r, p, &peer, HTTP_GET, "/x", (const char *[]){"Accept: */*", auth, NULL});
        CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_NEXT);
        CHECK_INT(fx_answer.count, 0);
        CHECK_STR(r.consumer, "alice");
        CHECK_STR(fx_upstream_head(&r), "Accept: */*\r\n");
        fx_request_free(&r);
    }
    token(tok, sizeof(tok), "HS384", "secret-b", claims(pl, sizeof(pl), "iss-b", 300));
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
    fx_routed(&r, p, &peer, HTTP_GET, "/x", (const char *[]){auth, NULL});
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_NEXT);
    CHECK_STR(r.consumer, "bob");
    fx_request_free(&r);
    gw_pipeline_free(p);
}

static void test_forward_and_other_places(void)
{
    struct gw_peer peer = fx_peer("10.0.0.1");
    struct gw_request r;
    char tok[1024], hdr[1100], target[1100], pl[256];
    token(tok, sizeof(tok), "HS256", "secret-a", claims(pl, sizeof(pl), "iss-a", 300));

    /* forward_credentials: the header goes upstream as it came. */
    struct gw_pipeline *p = fx_pipeline("[{\"jwt\":{\"forward_credentials\":true}}]", consumers);
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", tok);
    fx_routed(&r, p, &peer, HTTP_GET, "/x", (const char *[]){hdr, NULL});
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_NEXT);
    CHECK_STR(r.consumer, "alice");
    char want[1200];
    snprintf(want, sizeof(want), "%s\r\n", hdr);
    CHECK_STR(fx_upstream_head(&r), want);
    fx_request_free(&r);
    gw_pipeline_free(p);

    /* Another header carries the bare token; a query parameter may too. */
    p = fx_pipeline("[{\"jwt\":{\"header\":\"X-Token\",\"query\":\"jwt\"}}]", consumers);
    snprintf(hdr, sizeof(hdr), "X-Token: %s", tok);
    fx_routed(&r, p, &peer, HTTP_GET, "/x", (const char *[]){hdr, "Authorization: x", NULL});
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_NEXT);
    CHECK_STR(r.consumer, "alice");
    CHECK_STR(fx_upstream_head(&r), "Authorization: x\r\n");
    fx_request_free(&r);

    snprintf(target, sizeof(target), "/x?jwt=%s&page=2", tok);
    fx_routed(&r, p, &peer, HTTP_GET, target, NULL);
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_NEXT);
    CHECK_STR(r.consumer, "alice");
    CHECK_INT(r.nhide_query, 1);
    CHECK_STR(r.hide_query[0], "jwt");
    fx_request_free(&r);
    gw_pipeline_free(p);
}

TEST_MAIN(TEST(test_schema), TEST(test_consumer_credentials), TEST(test_refusals),
          TEST(test_valid_token_taken_out), TEST(test_forward_and_other_places))
