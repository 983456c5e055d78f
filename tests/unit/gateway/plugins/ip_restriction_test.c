/* ip_restriction_test.c - the ip_restriction plugin through the chain: its
 * schema, allow and deny lists (deny wins; IPv4, IPv6 and IPv4-mapped
 * peers), and X-Forwarded-For believed only from trusted proxies, walked
 * from the right so a client cannot name itself. Denied: 403. */
#include "plugin_fixture.h"

static void test_schema(void)
{
    struct gv_schema_error err;
    char *canon = NULL;
    CHECK_INT(fx_check("[{\"ip_restriction\":{\"deny\":[\"10.0.0.0/8\",\"fd00::/8\"],"
                       "\"trusted_proxies\":[\"192.168.0.1\"]}}]",
                       NULL, &canon, &err),
              0);
    CHECK_STR(canon, "[{\"ip_restriction\":{\"allow\":[],\"deny\":[\"10.0.0.0/8\",\"fd00::/8\"],"
                     "\"trusted_proxies\":[\"192.168.0.1\"]}}]");
    free(canon);

    CHECK_INT(fx_check("[{\"ip_restriction\":{}}]", NULL, NULL, &err), GV_EINVAL);
    CHECK_STR(err.path, "plugins[0].ip_restriction");
    CHECK_STR(err.msg, "needs an \"allow\" or \"deny\" list of CIDRs");
    /* Trusted proxies alone judge nobody. */
    CHECK_INT(
        fx_check("[{\"ip_restriction\":{\"trusted_proxies\":[\"10.0.0.1\"]}}]", NULL, NULL, &err),
        GV_EINVAL);
    CHECK_STR(err.path, "plugins[0].ip_restriction");
    const char *bad[] = {"10.0.0.0/33", "10.0.0.0/",          "10.0.0",
                         "fd00::/129",  "::ffff:10.0.0.0/95", "example.com"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char list[128];
        snprintf(list, sizeof(list), "[{\"ip_restriction\":{\"allow\":[\"1.2.3.4\",\"%s\"]}}]",
                 bad[i]);
        CHECK_INT(fx_check(list, NULL, NULL, &err), GV_EINVAL);
        CHECK_STR(err.path, "plugins[0].ip_restriction.allow[1]");
        if (strcmp(err.path, "plugins[0].ip_restriction.allow[1]") != 0)
            fprintf(stderr, "  for %s\n", bad[i]);
    }
}

/* A request from ip with headers hdrs (NULL-terminated, may be NULL)
 * through p: true when admitted, false when it got the 403 for msg. */
static bool admitted(const struct gw_pipeline *p, const char *ip, const char *const *hdrs,
                     const char *msg)
{
    struct gw_peer peer = fx_peer(ip);
    struct gw_request r;
    fx_routed(&r, p, &peer, HTTP_GET, "/x", hdrs);
    enum gw_plugin_verdict v = gw_chain_on_request(&r);
    bool in = v == GW_PLUGIN_NEXT && fx_answer.count == 0;
    if (!in) {
        CHECK_INT(v, GW_PLUGIN_ANSWERED);
        CHECK_INT(fx_answer.count, 1);
        CHECK_INT(fx_answer.status, 403);
        CHECK_STR(fx_answer.msg, msg);
    }
    fx_request_free(&r);
    return in;
}

#define DENIED "forbidden by ip_restriction"

static void test_allow_and_deny(void)
{
    struct gw_pipeline *p =
        fx_pipeline("[{\"ip_restriction\":{\"allow\":[\"10.0.0.0/8\",\"2001:db8::/32\"],"
                    "\"deny\":[\"10.1.0.0/16\",\"2001:db8:bad::/48\"]}}]",
                    NULL);
    CHECK(admitted(p, "10.2.3.4", NULL, DENIED));
    CHECK(!admitted(p, "10.1.3.4", NULL, DENIED)); /* deny wins over allow */
    CHECK(!admitted(p, "11.0.0.1", NULL, DENIED)); /* not in the allow list */
    CHECK(admitted(p, "2001:db8:1::1", NULL, DENIED));
    CHECK(!admitted(p, "2001:db8:bad::1", NULL, DENIED));
    CHECK(!admitted(p, "2001:db9::1", NULL, DENIED));
    /* A v4 client on a dual-stack socket is judged as v4. */
    CHECK(admitted(p, "::ffff:10.2.3.4", NULL, DENIED));
    CHECK(!admitted(p, "::ffff:10.1.3.4", NULL, DENIED));
    /* Without trusted proxies, X-Forwarded-For is the client's say only. */
    CHECK(!admitted(p, "11.0.0.1", (const char *[]){"X-Forwarded-For: 10.2.3.4", NULL}, DENIED));
    gw_pipeline_free(p);

    /* A deny list alone admits everyone else. */
    p = fx_pipeline("[{\"ip_restriction\":{\"deny\":[\"203.0.113.7\"]}}]", NULL);
    CHECK(!admitted(p, "203.0.113.7", NULL, DENIED));
    CHECK(admitted(p, "203.0.113.8", NULL, DENIED));
    CHECK(admitted(p, "fd00::1", NULL, DENIED));
    gw_pipeline_free(p);
}

static void test_trusted_proxies(void)
{
    struct gw_pipeline *p =
        fx_pipeline("[{\"ip_restriction\":{\"allow\":[\"203.0.113.0/24\",\"2001:db8::/32\"],"
                    "\"trusted_proxies\":[\"192.168.0.0/16\"]}}]",
                    NULL);
    const char *proxy = "192.168.1.1";
    struct {
        const char *xff;
        bool in;
    } cases[] = {
        {"203.0.113.5", true},
        {"198.51.100.1", false},
        /* the proxy's own hop on the right is skipped */
        {"203.0.113.5, 192.168.1.2", true},
        /* the first untrusted hop from the right is the client: what a client
         * writes to its left is not believed... */
        {"198.51.100.1, 203.0.113.5", true},
        /* ...and a client cannot hide behind an allowed address it names */
        {"203.0.113.5, 198.51.100.1", false},
        /* every hop trusted: the leftmost */
        {"192.168.9.9, 192.168.1.2", false},
        {"203.0.113.5:4711", true},
        {"[2001:db8::1]:443", true},
        {"203.0.113.5,,", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char h[128];
        snprintf(h, sizeof(h), "X-Forwarded-For: %s", cases[i].xff);
        bool in = admitted(p, proxy, (const char *[]){h, NULL}, DENIED);
        CHECK(in == cases[i].in);
        if (in != cases[i].in)
            fprintf(stderr, "  for %s\n", h);
    }
    /* Several X-Forwarded-For headers are one list, in order. */
    CHECK(admitted(
        p, proxy,
        (const char *[]){"X-Forwarded-For: 198.51.100.1", "x-forwarded-for: 203.0.113.5", NULL},
        DENIED));
    CHECK(!admitted(
        p, proxy,
        (const char *[]){"X-Forwarded-For: 203.0.113.5", "X-Forwarded-For: 198.51.100.1", NULL},
        DENIED));
    /* A hop that is not an address is refused, not skipped. */
    CHECK(!admitted(p, proxy, (const char *[]){"X-Forwarded-For: 203.0.113.5, nonsense", NULL},
                    DENIED ": bad X-Forwarded-For"));
    /* No header: the proxy itself is the client. */
    CHECK(!admitted(p, proxy, NULL, DENIED));
    /* A peer that is not a trusted proxy is judged itself, whatever it says. */
    CHECK(!admitted(p, "198.51.100.9", (const char *[]){"X-Forwarded-For: 203.0.113.5", NULL},
                    DENIED));
    CHECK(admitted(p, "203.0.113.9", (const char *[]){"X-Forwarded-For: 198.51.100.1", NULL},
                   DENIED));
    gw_pipeline_free(p);
}

TEST_MAIN(TEST(test_schema), TEST(test_allow_and_deny), TEST(test_trusted_proxies))
