/* rate_limit_test.c - the rate_limit plugin through the chain (scope node):
 * its schema, a 429 with Retry-After once the limit is used up, the
 * RateLimit-* headers on every response, what is counted together (client
 * address, consumer, header, route), and its decisions metric.
 *
 * Buckets live in the process-wide table and refill at limit per window: a
 * window of an hour keeps any refill out of a test's run, and each test
 * counts from client addresses of its own. No assertion depends on time
 * beyond that. */
#include "plugin_fixture.h"

#include <stdlib.h>

/* The value of header name in a "Name: value\r\n" head, as a number; -1
 * when absent. */
static long value_of(const char *head, const char *name)
{
    char key[64];
    snprintf(key, sizeof(key), "%s: ", name);
    const char *at = strstr(head, key);
    return at ? strtol(at + strlen(key), NULL, 10) : -1;
}

/* The names of the headers in head, joined by ",". */
static const char *names_of(const char *head)
{
    static char out[256];
    size_t n = 0;
    out[0] = '\0';
    for (const char *line = head; *line != '\0' && n < sizeof(out) - 1;) {
        const char *colon = strchr(line, ':'), *eol = strstr(line, "\r\n");
        if (colon == NULL || eol == NULL)
            break;
        n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%.*s", n ? "," : "", (int)(colon - line),
                              line);
        line = eol + 2;
    }
    return out;
}

static void test_schema(void)
{
    struct gv_schema_error err;
    char *canon = NULL;
    CHECK_INT(fx_check("[{\"rate_limit\":{\"limit\":100,\"window\":\"1m\",\"burst\":20,"
                       "\"key\":\"header:X-Client\",\"scope\":\"node\"}}]",
                       NULL, &canon, &err),
              0);
    CHECK_STR(canon, "[{\"rate_limit\":{\"burst\":20,\"key\":\"header:X-Client\",\"limit\":100,"
                     "\"scope\":\"node\",\"window\":\"1m\"}}]");
    free(canon);
    canon = NULL;
    CHECK_INT(fx_check("[{\"rate_limit\":{\"limit\":1,\"window\":\"500ms\",\"key\":\"consumer\"}}]",
                       NULL, &canon, &err),
              0);
    CHECK_STR(canon, "[{\"rate_limit\":{\"burst\":0,\"key\":\"consumer\",\"limit\":1,"
                     "\"scope\":\"cluster\",\"window\":\"500ms\"}}]");
    free(canon);

    struct {
        const char *conf, *path, *msg;
    } bad[] = {
        {"{\"window\":\"1s\"}", "plugins[0].rate_limit", "missing \"limit\""},
        {"{\"limit\":5}", "plugins[0].rate_limit", "missing \"window\""},
        {"{\"limit\":0,\"window\":\"1s\"}", "plugins[0].rate_limit.limit", NULL},
        {"{\"limit\":5,\"window\":\"soon\"}", "plugins[0].rate_limit.window", NULL},
        {"{\"limit\":5,\"window\":\"1s\",\"burst\":-1}", "plugins[0].rate_limit.burst", NULL},
        {"{\"limit\":5,\"window\":\"1s\",\"key\":\"cookie\"}", "plugins[0].rate_limit.key", NULL},
        {"{\"limit\":5,\"window\":\"1s\",\"key\":\"header:\"}", "plugins[0].rate_limit.key", NULL},
        {"{\"limit\":5,\"window\":\"1s\",\"scope\":\"zone\"}", "plugins[0].rate_limit.scope", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char list[256];
        snprintf(list, sizeof(list), "[{\"rate_limit\":%s}]", bad[i].conf);
        CHECK_INT(fx_check(list, NULL, NULL, &err), GV_EINVAL);
        CHECK_STR(err.path, bad[i].path);
        if (bad[i].msg != NULL)
            CHECK_STR(err.msg, bad[i].msg);
        if (strcmp(err.path, bad[i].path) != 0)
            fprintf(stderr, "  for %s\n", bad[i].conf);
    }
}

/* One request from peer with headers hdrs (NULL-terminated, may be NULL)
 * through p; the verdict, and the response head the client gets (the
 * gateway's own answer's headers, or an upstream's empty head) in *head. */
static enum gw_plugin_verdict one(const struct gw_pipeline *p, const char *ip,
                                  const char *const *hdrs, const char **head)
{
    struct gw_peer peer = fx_peer(ip);
    struct gw_request r;
    fx_routed(&r, p, &peer, HTTP_GET, "/x", hdrs);
    enum gw_plugin_verdict v = gw_chain_on_request(&r);
    static char text[1024];
    snprintf(text, sizeof(text), "%s%s", fx_answer.headers, fx_response_head(&r, NULL));
    *head = text;
    fx_request_free(&r);
    return v;
}

static void test_limit_then_429(void)
{
    struct gw_pipeline *p =
        fx_pipeline("[{\"rate_limit\":{\"limit\":2,\"window\":\"1h\",\"scope\":\"node\"}}]", NULL);
    const char *head;

    CHECK_INT(one(p, "10.1.0.1", NULL, &head), GW_PLUGIN_NEXT);
    CHECK_STR(names_of(head), "RateLimit-Limit,RateLimit-Remaining,RateLimit-Reset");
    CHECK_INT(value_of(head, "RateLimit-Limit"), 2);
    CHECK_INT(value_of(head, "RateLimit-Remaining"), 1);
    long reset = value_of(head, "RateLimit-Reset");
    CHECK(reset >= 1 && reset <= 3600);

    CHECK_INT(one(p, "10.1.0.1", NULL, &head), GW_PLUGIN_NEXT);
    CHECK_INT(value_of(head, "RateLimit-Remaining"), 0);
    CHECK_INT(fx_answer.count, 0);

    CHECK_INT(one(p, "10.1.0.1", NULL, &head), GW_PLUGIN_ANSWERED);
    CHECK_INT(fx_answer.count, 1);
    CHECK_INT(fx_answer.status, 429);
    CHECK_STR(fx_answer.msg, "rate limit exceeded");
    CHECK_STR(names_of(head), "Retry-After,RateLimit-Limit,RateLimit-Remaining,RateLimit-Reset");
    long retry = value_of(head, "Retry-After");
    CHECK(retry >= 1 && retry <= 3600);
    CHECK_INT(value_of(head, "RateLimit-Limit"), 2);
    CHECK_INT(value_of(head, "RateLimit-Remaining"), 0);
    CHECK_INT(value_of(head, "RateLimit-Reset"), retry);

    /* Another client has its own bucket. */
    CHECK_INT(one(p, "10.1.0.2", NULL, &head), GW_PLUGIN_NEXT);
    CHECK_INT(value_of(head, "RateLimit-Remaining"), 1);
    gw_pipeline_free(p);
}

static void test_burst(void)
{
    struct gw_pipeline *p = fx_pipeline(
        "[{\"rate_limit\":{\"limit\":1,\"window\":\"1h\",\"burst\":3,\"scope\":\"node\"}}]", NULL);
    const char *head;
    for (int i = 0; i < 3; i++) {
        CHECK_INT(one(p, "10.2.0.1", NULL, &head), GW_PLUGIN_NEXT);
        CHECK_INT(value_of(head, "RateLimit-Remaining"), 2 - i);
    }
    CHECK_INT(one(p, "10.2.0.1", NULL, &head), GW_PLUGIN_ANSWERED);
    CHECK_INT(fx_answer.status, 429);
    gw_pipeline_free(p);
}

/* key consumer: the consumer an auth plugin identified, from any address;
 * a request no auth plugin identified counts by its address. */
static void test_key_consumer(void)
{
    struct gw_pipeline *p =
        fx_pipeline("[{\"rate_limit\":{\"limit\":1,\"window\":\"1h\",\"scope\":\"node\","
                    "\"key\":\"consumer\"}},{\"key_auth\":{}}]",
                    "[{\"name\":\"carol\",\"key_auth\":[\"k-carol\"]}]");
    const char *head;
    const char *const carol[] = {"X-Api-Key: k-carol", NULL};
    CHECK_INT(one(p, "10.3.0.1", carol, &head), GW_PLUGIN_NEXT);
    CHECK_INT(one(p, "10.3.0.2", carol, &head), GW_PLUGIN_ANSWERED);
    CHECK_INT(fx_answer.status, 429);
    gw_pipeline_free(p);

    /* No auth plugin in the chain: the address. */
    p = fx_pipeline("[{\"rate_limit\":{\"limit\":1,\"window\":\"1h\",\"scope\":\"node\","
                    "\"key\":\"consumer\"}}]",
                    NULL);
    CHECK_INT(one(p, "10.3.0.3", NULL, &head), GW_PLUGIN_NEXT);
    CHECK_INT(one(p, "10.3.0.4", NULL, &head), GW_PLUGIN_NEXT);
    CHECK_INT(one(p, "10.3.0.3", NULL, &head), GW_PLUGIN_ANSWERED);
    gw_pipeline_free(p);
}

static void test_key_header_and_route(void)
{
    struct gw_pipeline *p =
        fx_pipeline("[{\"rate_limit\":{\"limit\":1,\"window\":\"1h\",\"scope\":\"node\","
                    "\"key\":\"header:X-Client\"}}]",
                    NULL);
    const char *head;
    const char *const c1[] = {"x-client: c1", NULL}, *const c2[] = {"X-Client: c2", NULL};
    CHECK_INT(one(p, "10.4.0.1", c1, &head), GW_PLUGIN_NEXT);
    CHECK_INT(one(p, "10.4.0.2", c1, &head), GW_PLUGIN_ANSWERED); /* same header value */
    CHECK_INT(one(p, "10.4.0.1", c2, &head), GW_PLUGIN_NEXT);     /* another value */
    /* Without the header: the address. */
    CHECK_INT(one(p, "10.4.0.3", NULL, &head), GW_PLUGIN_NEXT);
    CHECK_INT(one(p, "10.4.0.3", NULL, &head), GW_PLUGIN_ANSWERED);
    gw_pipeline_free(p);

    /* key route: every client of the route shares one bucket. */
    p = fx_pipeline("[{\"rate_limit\":{\"limit\":2,\"window\":\"1h\",\"scope\":\"node\","
                    "\"key\":\"route\"}}]",
                    NULL);
    CHECK_INT(one(p, "10.5.0.1", NULL, &head), GW_PLUGIN_NEXT);
    CHECK_INT(one(p, "10.5.0.2", NULL, &head), GW_PLUGIN_NEXT);
    CHECK_INT(one(p, "fd00::5", NULL, &head), GW_PLUGIN_ANSWERED);
    gw_pipeline_free(p);
}

/* grapevine_ratelimit_decisions_total{route="",result=...} (no view, so no
 * route name) now. */
static long decisions(const char *result)
{
    struct gv_buf b;
    char key[128];
    gv_buf_init(&b);
    CHECK_INT(gw_plugins_metrics(&b), 0);
    snprintf(key, sizeof(key), "grapevine_ratelimit_decisions_total{route=\"\",result=\"%s\"} ",
             result);
    const char *at = b.data ? strstr(b.data, key) : NULL;
    long n = at ? strtol(at + strlen(key), NULL, 10) : 0;
    gv_buf_free(&b);
    return n;
}

static void test_decisions_counted(void)
{
    struct gw_pipeline *p =
        fx_pipeline("[{\"rate_limit\":{\"limit\":1,\"window\":\"1h\",\"scope\":\"node\"}}]", NULL);
    const char *head;
    long allowed = decisions("allowed"), limited = decisions("limited");
    CHECK_INT(one(p, "10.6.0.1", NULL, &head), GW_PLUGIN_NEXT);
    CHECK_INT(one(p, "10.6.0.1", NULL, &head), GW_PLUGIN_ANSWERED);
    CHECK_INT(one(p, "10.6.0.1", NULL, &head), GW_PLUGIN_ANSWERED);
    CHECK_INT(decisions("allowed"), allowed + 1);
    CHECK_INT(decisions("limited"), limited + 2);
    gw_pipeline_free(p);
}

TEST_MAIN(TEST(test_schema), TEST(test_limit_then_429), TEST(test_burst), TEST(test_key_consumer),
          TEST(test_key_header_and_route), TEST(test_decisions_counted))
