/* service_schema_test.c - a service's config through lb_service_schema: the
 * typed spec, the canonical JSON and its round trip, refusals with their
 * paths, and docs in which every key explains itself. */
#include "balancer/lb.h"
#include "balancer/service.h"
#include "common/err.h"
#include "common/schema.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* Parses text as services[0]; returns the code, err filled on failure. */
static int parse(const char *text, struct lb_service_spec *s, struct gv_schema_error *err)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (j == NULL) {
        fprintf(stderr, "bad test JSON: %s: %s\n", text, je.text);
        return -1;
    }
    memset(s, 0, sizeof(*s));
    memset(err, 0, sizeof(*err));
    int rc = gv_schema_parse(&lb_service_schema, j, s, "services[0]", err, NULL);
    json_decref(j);
    return rc;
}

static char *dump(const struct lb_service_spec *s)
{
    json_t *j = gv_schema_dump(&lb_service_schema, s);
    char *text = j ? json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
    json_decref(j);
    return text;
}

static const char full[] =
    "{\"name\":\"users\",\"targets\":[{\"address\":\"10.0.0.5:9001\",\"weight\":1},"
    "{\"address\":\"[::1]:9002\",\"weight\":2}],\"balancer\":\"consistent_hash\","
    "\"hash_on\":\"cookie:sid\",\"health_check\":{\"path\":\"/up\",\"interval\":5,"
    "\"timeout\":\"250ms\",\"healthy\":1,\"unhealthy\":4},\"passive\":{\"failures\":0,"
    "\"eject_for\":\"1m\"},\"sticky\":{\"cookie\":\"SID\",\"ttl\":\"2h\"},\"retries\":0,"
    "\"resolve_every\":\"1500ms\",\"timeouts\":{\"connect\":\"1500ms\",\"read\":\"1m\",\"write\":"
    "\"10s\"},"
    "\"tls\":{\"verify\":false,\"ca_file\":\"/ca.pem\",\"server_name\":\"users.internal\"}}";

static void test_round_trip(void)
{
    struct lb_service_spec a, b;
    struct gv_schema_error err;
    CHECK_INT(parse(full, &a, &err), 0);
    CHECK_STR(a.name, "users");
    CHECK_INT(a.ntargets, 2);
    CHECK_STR(a.targets[1].host, "::1");
    CHECK_INT(a.targets[1].port, 9002);
    CHECK(a.algo == lb_algo_find("consistent_hash"));
    CHECK_INT(a.hash_on, LB_HASH_COOKIE);
    CHECK_STR(a.hash_key, "sid");
    CHECK(a.health.enabled);
    CHECK_INT(a.health.interval_ms, 5000);
    CHECK_INT(a.passive.failures, 0);
    CHECK(a.sticky.enabled);
    CHECK_INT(a.sticky.ttl_ms, 7200000);
    CHECK_INT(a.timeouts.connect_ms, 1500);
    CHECK_INT(a.resolve_every_ms, 1500);
    CHECK(a.tls.enabled && !a.tls.verify);
    CHECK_STR(a.tls.server_name, "users.internal");

    char *first = dump(&a);
    CHECK_STR(first,
              "{\"balancer\":\"consistent_hash\",\"hash_on\":\"cookie:sid\",\"health_check\":{"
              "\"healthy\":1,\"interval\":\"5s\",\"path\":\"/up\",\"timeout\":\"250ms\","
              "\"unhealthy\":4},\"name\":\"users\",\"passive\":{\"eject_for\":\"1m\","
              "\"failures\":0},\"resolve_every\":\"1500ms\",\"retries\":0,\"sticky\":{\"cookie\":"
              "\"SID\",\"ttl\":\"2h\"},"
              "\"targets\":[{\"address\":\"10.0.0.5:9001\",\"weight\":1},{\"address\":"
              "\"[::1]:9002\",\"weight\":2}],\"timeouts\":{\"connect\":\"1500ms\",\"read\":"
              "\"1m\",\"write\":\"10s\"},\"tls\":{\"ca_file\":\"/ca.pem\",\"server_name\":"
              "\"users.internal\",\"verify\":false}}");
    /* parse -> dump -> parse gives the same spec, hence the same dump */
    CHECK_INT(parse(first, &b, &err), 0);
    char *second = dump(&b);
    CHECK_STR(second, first);
    CHECK(b.algo == a.algo && b.hash_on == a.hash_on);
    CHECK(b.targets[0].port == a.targets[0].port && b.tls.verify == a.tls.verify);
    free(first);
    free(second);
    lb_service_spec_free(&a);
    lb_service_spec_free(&b);
    CHECK(a.name == NULL && a.targets == NULL && a.tls.ca_file == NULL);
}

static void test_defaults(void)
{
    struct lb_service_spec s, d;
    struct gv_schema_error err;
    CHECK_INT(parse("{\"name\":\"a\",\"targets\":[{\"address\":\"h:80\"}]}", &s, &err), 0);
    char *text = dump(&s);
    /* What GET /config shows: every default, optional parts left out. */
    CHECK_STR(text, "{\"balancer\":\"round_robin\",\"hash_on\":\"ip\",\"name\":\"a\",\"passive\":{"
                    "\"eject_for\":\"30s\",\"failures\":5},\"resolve_every\":\"5s\","
                    "\"retries\":2,\"targets\":[{"
                    "\"address\":\"h:80\",\"weight\":1}],\"timeouts\":{\"connect\":\"1s\","
                    "\"read\":\"30s\",\"write\":\"30s\"}}");
    free(text);
    CHECK(s.algo == lb_algo_default());
    CHECK(!s.health.enabled && !s.sticky.enabled && !s.tls.enabled);
    CHECK(s.tls.verify); /* on once TLS is turned on */
    CHECK_STR(s.health.path, LB_DEFAULT_HEALTH_PATH);
    CHECK_STR(s.sticky.cookie, LB_DEFAULT_STICKY_COOKIE);
    /* lb_service_spec_defaults is the schema's defaults. */
    CHECK_INT(lb_service_spec_defaults(&d), 0);
    CHECK(d.algo == s.algo && d.retries == s.retries && d.tls.verify);
    CHECK(d.health.interval_ms == s.health.interval_ms && d.sticky.ttl_ms == s.sticky.ttl_ms);
    CHECK(d.resolve_every_ms == 5000 && s.resolve_every_ms == 5000);
    lb_service_spec_free(&d);
    lb_service_spec_free(&s);

    /* Given, even empty, health_check, sticky and tls turn on. */
    CHECK_INT(parse("{\"name\":\"a\",\"targets\":[{\"address\":\"h:80\"}],\"health_check\":{},"
                    "\"sticky\":{},\"tls\":true}",
                    &s, &err),
              0);
    CHECK(s.health.enabled && s.sticky.enabled && s.tls.enabled && s.tls.verify);
    text = dump(&s);
    CHECK(strstr(text, "\"health_check\":{\"healthy\":2,\"interval\":\"2s\",\"path\":\"/healthz\","
                       "\"timeout\":\"1s\",\"unhealthy\":3}") != NULL);
    CHECK(strstr(text, "\"sticky\":{\"cookie\":\"GV_STICKY\",\"ttl\":\"1h\"}") != NULL);
    CHECK(strstr(text, "\"tls\":{\"verify\":true}") != NULL);
    free(text);
    lb_service_spec_free(&s);

    /* protocol is dumped only when it is not http1, the default. */
    CHECK_INT(parse("{\"name\":\"a\",\"targets\":[{\"address\":\"h:80\"}],\"protocol\":\"grpc\"}",
                    &s, &err),
              0);
    CHECK_INT(s.protocol, LB_PROTO_GRPC);
    text = dump(&s);
    CHECK(strstr(text, "\"protocol\":\"grpc\"") != NULL);
    free(text);
    lb_service_spec_free(&s);

    /* {enabled: false} keeps TLS off, and out of the canonical JSON. */
    CHECK_INT(parse("{\"name\":\"a\",\"targets\":[{\"address\":\"h:80\"}],\"tls\":{\"enabled\":"
                    "false,\"ca_file\":\"/x\"}}",
                    &s, &err),
              0);
    CHECK(!s.tls.enabled);
    text = dump(&s);
    CHECK(strstr(text, "tls") == NULL);
    free(text);
    lb_service_spec_free(&s);
}

#define SVC(extra) "{\"name\":\"a\",\"targets\":[{\"address\":\"h:80\"}]" extra "}"

static const struct {
    const char *json, *path, *where, *msg;
} refusals[] = {
    {"{\"targets\":[{\"address\":\"h:80\"}]}", "services[0]", "services[0]", "missing \"name\""},
    {SVC(",\"retires\":2"), "services[0]", "services[0].retires", "unknown key \"retires\""},
    {"{\"name\":\"a\",\"targets\":[]}", "services[0].targets", "services[0].targets",
     "must be a non-empty list of {address, weight}"},
    {"{\"name\":\"a\",\"targets\":[{\"address\":\"h:1\"},{\"address\":\"g:1\"},"
     "{\"address\":\"h:1\"}]}",
     "services[0].targets[2].address", "services[0].targets[2].address",
     "duplicate target \"h:1\""},
    {"{\"name\":\"a\",\"targets\":[{\"address\":\"h\"}]}", "services[0].targets[0].address",
     "services[0].targets[0].address", "bad address \"h\" (want HOST:PORT)"},
    {SVC(",\"balancer\":\"fastest\""), "services[0].balancer", "services[0].balancer",
     "unknown balancer \"fastest\" (round_robin, least_connections, p2c_ewma, consistent_hash or "
     "random)"},
    {SVC(",\"balancer\":\"random\\u0000x\""), "services[0].balancer", "services[0].balancer",
     "must not contain NUL bytes"},
    {SVC(",\"balancer\":[]"), "services[0].balancer", "services[0].balancer", "must be a string"},
    {SVC(",\"hash_on\":\"cookie:a b\""), "services[0].hash_on", "services[0].hash_on",
     "bad hash_on \"cookie:a b\" (ip, path, header:NAME or cookie:NAME)"},
    {SVC(",\"health_check\":{\"interval\":\"1s\",\"timeout\":\"2s\"}"),
     "services[0].health_check.timeout", "services[0].health_check.timeout",
     "must not exceed the interval (1s)"},
    {SVC(",\"health_check\":{\"path\":\"up\"}"), "services[0].health_check.path",
     "services[0].health_check.path", "bad path \"up\" (must start with \"/\")"},
    {SVC(",\"passive\":{\"eject_for\":99999999999}"), "services[0].passive.eject_for",
     "services[0].passive.eject_for", "must be at most 8760h"},
    {SVC(",\"sticky\":{\"cookie\":\"a;b\"}"), "services[0].sticky.cookie",
     "services[0].sticky.cookie", "bad cookie name \"a;b\""},
    {SVC(",\"sticky\":{\"ttl\":\"500ms\"}"), "services[0].sticky.ttl", "services[0].sticky.ttl",
     "must be at least 1s"},
    {SVC(",\"tls\":\"on\""), "services[0].tls", "services[0].tls",
     "must be true, false or {verify, ca_file, server_name}"},
    {SVC(",\"tls\":{\"sni\":\"x\"}"), "services[0].tls", "services[0].tls.sni",
     "unknown key \"sni\""},
    {SVC(",\"tls\":{\"server_name\":\"a_b\"}"), "services[0].tls.server_name",
     "services[0].tls.server_name", "bad host name \"a_b\""},
    {SVC(",\"resolve_every\":\"10ms\""), "services[0].resolve_every", "services[0].resolve_every",
     "must be at least 100ms"},
    {SVC(",\"resolve_every\":\"25h\""), "services[0].resolve_every", "services[0].resolve_every",
     "must be at most 24h"},
    {SVC(",\"protocol\":\"h3\""), "services[0].protocol", "services[0].protocol",
     "unknown protocol \"h3\" (http1, http2 or grpc)"},
};

static void test_refusals(void)
{
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        struct lb_service_spec s;
        struct gv_schema_error err;
        int rc = parse(refusals[i].json, &s, &err);
        CHECK_INT(rc, GV_EINVAL);
        if (rc != GV_EINVAL)
            fprintf(stderr, "  case %zu: %s\n", i, refusals[i].json);
        CHECK_STR(err.path, refusals[i].path);
        CHECK_STR(err.where, refusals[i].where);
        CHECK_STR(err.msg, refusals[i].msg);
        lb_service_spec_free(&s); /* what was parsed before the refusal (ASan) */
    }
}

/* The reference docs: a row per key, each with its one-line meaning. */
static void test_docs(void)
{
    struct gv_buf b;
    gv_buf_init(&b);
    CHECK_INT(gv_schema_doc(&lb_service_schema, "services[]", &b), 0);
    CHECK(b.data != NULL);
    if (b.data == NULL)
        return;
    CHECK(strstr(b.data, "| `services[].targets[].weight` | integer 1..10000 | `1` |") != NULL);
    CHECK(strstr(b.data, "| `services[].balancer` | algorithm name |") != NULL);
    CHECK(strstr(b.data, "| `services[].health_check.interval` | duration | `2s` |") != NULL);
    CHECK(strstr(b.data, "| `services[].sticky.cookie` | cookie name | `GV_STICKY` |") != NULL);
    int rows = 0;
    for (char *line = b.data; line != NULL && *line; rows++) {
        char *end = strchr(line, '\n');
        /* "| `key` | type | default | doc |": the doc cell is not empty */
        char *last = end ? end : line + strlen(line);
        CHECK(last - line > 4 && strncmp(last - 4, " | |", 4) != 0);
        CHECK(strncmp(last - 3, "  |", 3) != 0);
        line = end ? end + 1 : NULL;
    }
    CHECK(rows >= 20);
    gv_buf_free(&b);

    json_t *js = gv_schema_json_schema(&lb_service_schema);
    json_t *props = json_object_get(js, "properties");
    json_t *names = json_object_get(json_object_get(props, "balancer"), "enum");
    CHECK_INT(json_array_size(names), lb_algo_count());
    for (size_t i = 0; i < json_array_size(names); i++)
        CHECK(lb_algo_find(json_string_value(json_array_get(names, i))) == lb_algo_at(i));
    CHECK_INT(json_array_size(json_object_get(json_object_get(props, "tls"), "oneOf")), 2);
    CHECK_INT(json_array_size(json_object_get(js, "required")), 2);
    json_decref(js);
}

TEST_MAIN(TEST(test_round_trip), TEST(test_defaults), TEST(test_refusals), TEST(test_docs))
