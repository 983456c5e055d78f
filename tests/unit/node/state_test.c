/* state_test.c - the cluster-state validator: typed specs, defaults, error
 * paths and messages, canonical JSON. */
#include "balancer/lb.h"
#include "common/err.h"
#include "node/state.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL)
        fprintf(stderr, "bad test JSON: %s: %s\n", text, je.text);
    return j;
}

/* Loads text; returns the rc and fills err. */
static int load(const char *text, struct node_state *st, struct node_state_error *err)
{
    json_t *j = parse(text);
    if (j == NULL)
        return -1;
    int rc = node_state_from_json(j, st, err);
    json_decref(j);
    return rc;
}

static char *dump(const struct node_state *st)
{
    json_t *j = node_state_to_json(st);
    if (j == NULL)
        return NULL;
    char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(j);
    return s;
}

static const char full[] =
    "{\"services\":[{\"name\":\"users\",\"targets\":[{\"address\":\"10.0.0.5:9001\",\"weight\":1},"
    "{\"address\":\"users-2:9001\",\"weight\":2}],\"balancer\":\"consistent_hash\","
    "\"hash_on\":\"header:X-User\",\"health_check\":{\"path\":\"/healthz\",\"interval\":\"2s\","
    "\"timeout\":\"250ms\",\"healthy\":2,\"unhealthy\":3},\"passive\":{\"failures\":5,"
    "\"eject_for\":30},\"sticky\":{\"cookie\":\"GV_STICKY\",\"ttl\":\"1h\"},\"retries\":2,"
    "\"timeouts\":{\"connect\":\"1s\",\"read\":\"30s\",\"write\":\"1m\"}},"
    "{\"name\":\"orders\",\"targets\":[{\"address\":\"[::1]:7000\"}]}],"
    "\"routes\":[{\"name\":\"users-api\",\"match\":{\"hosts\":[\"API.example.com\","
    "\"*.example.org\"],\"paths\":[\"/users\"],\"path_type\":\"prefix\",\"methods\":[\"GET\","
    "\"post\"],\"headers\":{\"X-Env\":\"prod\",\"X-Version\":2}},\"service\":\"users\","
    "\"strip_prefix\":true,\"plugins\":[{\"rate_limit\":{\"limit\":100,\"window\":1,"
    "\"key\":\"consumer\",\"scope\":\"cluster\"}},{\"key_auth\":{\"header\":\"X-Api-Key\"}},"
    "{\"ip_restriction\":{\"allow\":[\"10.0.0.0/8\",\"2001:db8::/32\",\"192.168.1.1\"]}},"
    "{\"cors\":null}]},"
    "{\"name\":\"orders\",\"match\":{\"paths\":[\"^/orders/[0-9]+$\"],\"path_type\":\"regex\"},"
    "\"service\":\"orders\"}],"
    "\"consumers\":[{\"name\":\"alice\",\"key_auth\":[\"key-abc\"],\"jwt\":[{\"issuer\":"
    "\"alice-app\",\"secret\":\"s3cret\"}]}],"
    "\"plugins\":[{\"request_id\":{\"header\":\"X-Request-Id\"}}]}";

static void test_full(void)
{
    struct node_state st;
    struct node_state_error err;
    int rc = load(full, &st, &err);
    CHECK_INT(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", err.path, err.msg);
        return;
    }
    CHECK_INT(st.nservices, 2);
    const struct lb_service_spec *s = &st.services[0];
    CHECK_STR(s->name, "users");
    CHECK_INT(s->ntargets, 2);
    CHECK_STR(s->targets[0].address, "10.0.0.5:9001");
    CHECK_STR(s->targets[0].host, "10.0.0.5");
    CHECK_INT(s->targets[0].port, 9001);
    CHECK_INT(s->targets[0].weight, 1);
    CHECK_STR(s->targets[1].host, "users-2");
    CHECK_INT(s->targets[1].weight, 2);
    CHECK(s->algo == lb_algo_find("consistent_hash"));
    CHECK_INT(s->hash_on, LB_HASH_HEADER);
    CHECK_STR(s->hash_key, "X-User");
    CHECK(s->health.enabled);
    CHECK_STR(s->health.path, "/healthz");
    CHECK_INT(s->health.interval_ms, 2000);
    CHECK_INT(s->health.timeout_ms, 250);
    CHECK_INT(s->passive.failures, 5);
    CHECK_INT(s->passive.eject_for_ms, 30000);
    CHECK(s->sticky.enabled);
    CHECK_STR(s->sticky.cookie, "GV_STICKY");
    CHECK_INT(s->sticky.ttl_ms, 3600000);
    CHECK_INT(s->timeouts.write_ms, 60000);
    CHECK_STR(st.services[1].targets[0].host, "::1");
    CHECK_INT(node_state_find_service(&st, "orders"), 1);
    CHECK_INT(node_state_find_service(&st, "nope"), -1);

    CHECK_INT(st.nroutes, 2);
    const struct gw_route_spec *r = &st.routes[0];
    CHECK_STR(r->name, "users-api");
    CHECK_INT(r->nhosts, 2);
    CHECK_STR(r->hosts[0], "api.example.com");
    CHECK_STR(r->hosts[1], "*.example.org");
    CHECK_INT(r->npaths, 1);
    CHECK_STR(r->paths[0], "/users");
    CHECK_INT(r->path_type, GW_PATH_PREFIX);
    uint64_t m = 0;
    CHECK_INT(gw_method_bit("GET", &m), 0);
    CHECK_INT(gw_method_bit("POST", &m), 0);
    CHECK(r->methods == m);
    CHECK_INT(r->nheaders, 2);
    CHECK_STR(r->headers[1].name, "X-Version");
    CHECK_STR(r->headers[1].value, "2");
    CHECK_STR(r->service, "users");
    CHECK(r->strip_prefix);
    CHECK_INT(st.routes[1].path_type, GW_PATH_REGEX);
    CHECK(!st.routes[1].strip_prefix);

    /* Plugins: normalized copies. */
    CHECK(json_array_size(st.routes[0].plugins) > 0);
    CHECK(json_array_size(st.routes[1].plugins) == 0);
    CHECK_INT(json_array_size(st.routes[0].plugins), 4);
    json_t *rl = json_object_get(json_array_get(st.routes[0].plugins, 0), "rate_limit");
    CHECK_STR(json_string_value(json_object_get(rl, "window")), "1s");
    CHECK_INT(json_integer_value(json_object_get(rl, "limit")), 100);
    CHECK(json_is_object(json_object_get(json_array_get(st.routes[0].plugins, 3), "cors")));
    CHECK_INT(json_array_size(st.consumers), 1);
    json_t *jwt = json_array_get(json_object_get(json_array_get(st.consumers, 0), "jwt"), 0);
    CHECK_STR(json_string_value(json_object_get(jwt, "algorithm")), "HS256");
    CHECK_INT(json_array_size(st.plugins), 1);
    node_state_free(&st);
}

static void test_defaults(void)
{
    struct node_state st;
    struct node_state_error err;
    int rc = load("{\"services\":[{\"name\":\"a\",\"targets\":[{\"address\":\"h:80\"}]}],"
                  "\"routes\":[{\"name\":\"r\",\"service\":\"a\"}]}",
                  &st, &err);
    CHECK_INT(rc, 0);
    if (rc != 0)
        return;
    const struct lb_service_spec *s = &st.services[0];
    CHECK_INT(s->targets[0].weight, 1);
    CHECK(s->algo == lb_algo_default());
    CHECK_INT(s->hash_on, LB_HASH_IP);
    CHECK(s->hash_key == NULL);
    CHECK(!s->health.enabled);
    CHECK(!s->sticky.enabled);
    CHECK_INT(s->passive.failures, 5);
    CHECK_INT(s->passive.eject_for_ms, 30000);
    CHECK_INT(s->retries, 2);
    CHECK_INT(s->timeouts.connect_ms, 1000);
    CHECK_INT(s->timeouts.read_ms, 30000);
    CHECK_INT(s->timeouts.write_ms, 30000);
    const struct gw_route_spec *r = &st.routes[0];
    CHECK_INT(r->nhosts, 0);
    CHECK_INT(r->npaths, 0);
    CHECK_INT(r->path_type, GW_PATH_PREFIX);
    CHECK(r->methods == 0);
    CHECK(!r->strip_prefix);
    CHECK(json_array_size(st.routes[0].plugins) == 0);
    CHECK_INT(json_array_size(st.consumers), 0);
    CHECK_INT(json_array_size(st.plugins), 0);
    node_state_free(&st);

    /* An empty health_check turns checks on with their defaults. */
    rc = load("{\"services\":[{\"name\":\"a\",\"targets\":[{\"address\":\"h:80\"}],"
              "\"health_check\":{},\"sticky\":{}}]}",
              &st, &err);
    CHECK_INT(rc, 0);
    if (rc != 0)
        return;
    s = &st.services[0];
    CHECK(s->health.enabled);
    CHECK_STR(s->health.path, "/healthz");
    CHECK_INT(s->health.interval_ms, 2000);
    CHECK_INT(s->health.timeout_ms, 1000);
    CHECK_INT(s->health.healthy, 2);
    CHECK_INT(s->health.unhealthy, 3);
    CHECK(s->sticky.enabled);
    CHECK_STR(s->sticky.cookie, "GV_STICKY");
    CHECK_INT(s->sticky.ttl_ms, 3600000);
    node_state_free(&st);

    /* Nothing at all is a valid, empty state. */
    CHECK_INT(load("{}", &st, &err), 0);
    CHECK_INT(st.nservices, 0);
    CHECK_INT(st.nroutes, 0);
    node_state_free(&st);
}

static void test_round_trip(void)
{
    struct node_state a, b;
    struct node_state_error err;
    int rc = load(full, &a, &err);
    CHECK_INT(rc, 0);
    if (rc != 0)
        return;
    char *first = dump(&a);
    CHECK(first != NULL);
    rc = load(first, &b, &err);
    CHECK_INT(rc, 0);
    if (rc == 0) {
        char *second = dump(&b);
        CHECK_STR(second, first);
        free(second);
        node_state_free(&b);
    } else {
        fprintf(stderr, "%s: %s\n", err.path, err.msg);
    }
    /* Defaults are filled in and durations spelled in the largest unit. */
    CHECK(strstr(first, "\"timeouts\":{\"connect\":\"1s\",\"read\":\"30s\",\"write\":\"1m\"}"));
    CHECK(strstr(first, "\"passive\":{\"eject_for\":\"30s\",\"failures\":5}"));
    CHECK(strstr(first, "\"methods\":[\"GET\",\"POST\"]"));
    CHECK(strstr(first, "\"hosts\":[\"api.example.com\",\"*.example.org\"]"));
    CHECK(strstr(first, "\"balancer\":\"round_robin\""));
    CHECK(strstr(first, "\"cors\":{\"credentials\":false,\"expose_headers\":[]"));
    CHECK(strstr(first, "\"scope\":\"cluster\""));
    free(first);
    node_state_free(&a);

    /* An empty state has every section, empty. */
    CHECK_INT(load("{}", &a, &err), 0);
    first = dump(&a);
    CHECK_STR(first, "{\"consumers\":[],\"plugins\":[],\"routes\":[],\"services\":[]}");
    free(first);
    node_state_free(&a);
}

static void test_durations(void)
{
    char buf[32];
    uint64_t ms = 7;
    json_t *j;
    node_format_duration(0, buf, sizeof(buf));
    CHECK_STR(buf, "0s");
    node_format_duration(250, buf, sizeof(buf));
    CHECK_STR(buf, "250ms");
    node_format_duration(1500, buf, sizeof(buf));
    CHECK_STR(buf, "1500ms");
    node_format_duration(2000, buf, sizeof(buf));
    CHECK_STR(buf, "2s");
    node_format_duration(90000, buf, sizeof(buf));
    CHECK_STR(buf, "90s");
    node_format_duration(120000, buf, sizeof(buf));
    CHECK_STR(buf, "2m");
    node_format_duration(7200000, buf, sizeof(buf));
    CHECK_STR(buf, "2h");
    j = json_integer(3);
    CHECK_INT(node_json_duration(j, &ms), 0);
    CHECK_INT(ms, 3000);
    json_decref(j);
    j = json_string("250ms");
    CHECK_INT(node_json_duration(j, &ms), 0);
    CHECK_INT(ms, 250);
    json_decref(j);
    ms = 7;
    j = json_integer(-1);
    CHECK_INT(node_json_duration(j, &ms), GV_EINVAL);
    json_decref(j);
    j = json_real(1.5);
    CHECK_INT(node_json_duration(j, &ms), GV_EINVAL);
    json_decref(j);
    CHECK_INT(ms, 7);
}

struct bad_case {
    const char *json;
    const char *path;
    const char *msg;
};

#define SVC(extra)                                                                                 \
    "{\"services\":[{\"name\":\"users\",\"targets\":[{\"address\":\"h:80\"}]" extra "}]"
#define ROUTE(extra) SVC("") ",\"routes\":[{\"name\":\"r\",\"service\":\"users\"" extra "}]}"
#define PLUGIN(p)    ROUTE(",\"plugins\":[" p "]")

static const struct bad_case bad_cases[] = {
    {"[]", "", "the cluster state must be an object"},
    {"{\"service\":[]}", "", "unknown key \"service\""},
    {"{\"services\":{}}", "services", "must be a list"},
    {"{\"services\":[3]}", "services[0]", "must be an object"},
    {SVC(",\"retires\":2") "}", "services[0]", "unknown key \"retires\""},
    {"{\"services\":[{\"targets\":[{\"address\":\"h:80\"}]}]}", "services[0]", "missing \"name\""},
    {"{\"services\":[{\"name\":7,\"targets\":[]}]}", "services[0].name", "must be a string"},
    {"{\"services\":[{\"name\":\"a b\",\"targets\":[]}]}", "services[0].name",
     "bad name \"a b\" (use letters, digits, \"_\", \".\", \"-\")"},
    {"{\"services\":[{\"name\":\"a\"}]}", "services[0]", "missing \"targets\""},
    {"{\"services\":[{\"name\":\"a\",\"targets\":[]}]}", "services[0].targets",
     "must be a non-empty list of {address, weight}"},
    {"{\"services\":[{\"name\":\"a\",\"targets\":[{\"address\":\"nope\"}]}]}",
     "services[0].targets[0].address", "bad address \"nope\" (want HOST:PORT)"},
    {"{\"services\":[{\"name\":\"a\",\"targets\":[{\"address\":\"h:1\"},{\"address\":\"h:1\"}]}]}",
     "services[0].targets[1].address", "duplicate target \"h:1\""},
    {"{\"services\":[{\"name\":\"a\",\"targets\":[{\"address\":\"h:80\",\"weight\":0}]}]}",
     "services[0].targets[0].weight", "must be an integer from 1 to 10000"},
    {"{\"services\":[{\"name\":\"a\",\"targets\":[{\"address\":\"h:80\",\"port\":1}]}]}",
     "services[0].targets[0]", "unknown key \"port\""},
    {"{\"services\":[{\"name\":\"a\",\"targets\":[{\"address\":\"h:80\"}]},"
     "{\"name\":\"a\",\"targets\":[{\"address\":\"h:80\"}]}]}",
     "services[1].name", "duplicate name \"a\" (also services[0])"},
    {SVC(",\"balancer\":\"fastest\"") "}", "services[0].balancer",
     "unknown balancer \"fastest\" (round_robin, least_connections, p2c_ewma, consistent_hash or "
     "random)"},
    {SVC(",\"hash_on\":\"header:\"") "}", "services[0].hash_on",
     "bad hash_on \"header:\" (ip, path, header:NAME or cookie:NAME)"},
    {SVC(",\"health_check\":{\"path\":\"healthz\"}") "}", "services[0].health_check.path",
     "bad path \"healthz\" (must start with \"/\")"},
    {SVC(",\"health_check\":{\"interval\":\"2x\"}") "}", "services[0].health_check.interval",
     "bad duration \"2x\" (use e.g. 250ms, 2s, 1m)"},
    {SVC(",\"health_check\":{\"interval\":true}") "}", "services[0].health_check.interval",
     "must be a duration like \"250ms\", \"2s\" or \"1m\""},
    {SVC(",\"health_check\":{\"interval\":\"0s\"}") "}", "services[0].health_check.interval",
     "must be at least 1ms"},
    {SVC(",\"health_check\":{\"interval\":\"1s\",\"timeout\":\"2s\"}") "}",
     "services[0].health_check.timeout", "must not exceed the interval (1s)"},
    {SVC(",\"health_check\":{\"healthy\":0}") "}", "services[0].health_check.healthy",
     "must be an integer from 1 to 100"},
    {SVC(",\"health_check\":\"/healthz\"") "}", "services[0].health_check", "must be an object"},
    {SVC(",\"passive\":{\"failures\":-1}") "}", "services[0].passive.failures",
     "must be an integer from 0 to 1000"},
    {SVC(",\"passive\":{\"eject\":\"30s\"}") "}", "services[0].passive", "unknown key \"eject\""},
    {SVC(",\"sticky\":{\"cookie\":\"a b\"}") "}", "services[0].sticky.cookie",
     "bad cookie name \"a b\""},
    {SVC(",\"sticky\":{\"ttl\":\"10ms\"}") "}", "services[0].sticky.ttl", "must be at least 1s"},
    {SVC(",\"retries\":11") "}", "services[0].retries", "must be an integer from 0 to 10"},
    {SVC(",\"retries\":\"2\"") "}", "services[0].retries", "must be an integer from 0 to 10"},
    {SVC(",\"timeouts\":{\"read\":\"9999h\"}") "}", "services[0].timeouts.read",
     "must be at most 8760h"},
    {ROUTE(",\"retires\":2"), "routes[0]", "unknown key \"retires\""},
    {SVC("") ",\"routes\":[{\"service\":\"users\"}]}", "routes[0]", "missing \"name\""},
    {SVC("") ",\"routes\":[{\"name\":\"r\"}]}", "routes[0]", "missing \"service\""},
    {SVC("") ",\"routes\":[{\"name\":\"r\",\"service\":\"user\"}]}", "routes[0].service",
     "no service named \"user\""},
    {SVC("") ",\"routes\":[{\"name\":\"r\",\"service\":\"users\"},"
             "{\"name\":\"r\",\"service\":\"users\"}]}",
     "routes[1].name", "duplicate name \"r\" (also routes[0])"},
    {ROUTE(",\"strip_prefix\":\"yes\""), "routes[0].strip_prefix", "must be true or false"},
    {ROUTE(",\"match\":{\"path\":[\"/a\"]}"), "routes[0].match", "unknown key \"path\""},
    {ROUTE(",\"match\":{\"paths\":\"/a\"}"), "routes[0].match.paths", "must be a list"},
    {ROUTE(",\"match\":{\"paths\":[\"/a\",\"b\"]}"), "routes[0].match.paths[1]",
     "bad path \"b\" (must start with \"/\")"},
    {ROUTE(",\"match\":{\"paths\":[\"/a\",5]}"), "routes[0].match.paths[1]", "must be a string"},
    {ROUTE(",\"match\":{\"paths\":[\"^/a(\"],\"path_type\":\"regex\"}"), "routes[0].match.paths[0]",
     NULL /* regerror text varies; prefix checked */},
    {ROUTE(",\"match\":{\"path_type\":\"glob\"}"), "routes[0].match.path_type",
     "unknown path_type \"glob\" (prefix, exact, regex or segment_prefix)"},
    {ROUTE(",\"match\":{\"hosts\":[\"api.example.com:80\"]}"), "routes[0].match.hosts[0]",
     "bad host \"api.example.com:80\" (a name like api.example.com or *.example.com, no port)"},
    {ROUTE(",\"match\":{\"methods\":[\"GET\",\"FETCH\"]}"), "routes[0].match.methods[1]",
     "unknown method \"FETCH\""},
    {ROUTE(",\"match\":{\"headers\":{\"X Env\":\"a\"}}"), "routes[0].match.headers.X Env",
     "bad header name \"X Env\""},
    {ROUTE(",\"match\":{\"headers\":{\"X-Env\":[1]}}"), "routes[0].match.headers.X-Env",
     "must be a string"},
    {ROUTE(",\"plugins\":{}"), "routes[0].plugins",
     "must be a list of plugins, each {NAME: {...}}"},
    {PLUGIN("{\"cors\":{},\"jwt\":{}}"), "routes[0].plugins[0]",
     "a plugin is an object with one key, its name"},
    {PLUGIN("{\"rate_limiter\":{}}"), "routes[0].plugins[0]", "unknown plugin \"rate_limiter\""},
    {PLUGIN("{\"cors\":[]}"), "routes[0].plugins[0].cors", "must be an object"},
    {PLUGIN("{\"rate_limit\":{\"window\":\"1s\"}}"), "routes[0].plugins[0].rate_limit",
     "missing \"limit\""},
    {PLUGIN("{\"rate_limit\":{\"limit\":0,\"window\":\"1s\"}}"),
     "routes[0].plugins[0].rate_limit.limit", "must be an integer from 1 to 1000000000"},
    {PLUGIN("{\"rate_limit\":{\"limit\":5}}"), "routes[0].plugins[0].rate_limit",
     "missing \"window\""},
    {PLUGIN("{\"rate_limit\":{\"limit\":5,\"window\":\"1d\"}}"),
     "routes[0].plugins[0].rate_limit.window", "bad duration \"1d\" (use e.g. 250ms, 2s, 1m)"},
    {PLUGIN("{\"rate_limit\":{\"limit\":5,\"window\":1,\"key\":\"user\"}}"),
     "routes[0].plugins[0].rate_limit.key",
     "bad key \"user\" (consumer, ip, route or header:NAME)"},
    {PLUGIN("{\"rate_limit\":{\"limit\":5,\"window\":1,\"scope\":\"global\"}}"),
     "routes[0].plugins[0].rate_limit.scope", "unknown scope \"global\" (cluster or node)"},
    {PLUGIN("{\"rate_limit\":{\"limit\":5,\"window\":1,\"per\":1}}"),
     "routes[0].plugins[0].rate_limit", "unknown key \"per\""},
    {PLUGIN("{\"ip_restriction\":{\"allow\":[\"10.0.0.0/8\",\"10.0.0.0/33\"]}}"),
     "routes[0].plugins[0].ip_restriction.allow[1]", "bad CIDR \"10.0.0.0/33\""},
    {PLUGIN("{\"ip_restriction\":{\"deny\":[\"300.1.1.1\"]}}"),
     "routes[0].plugins[0].ip_restriction.deny[0]", "bad CIDR \"300.1.1.1\""},
    {PLUGIN("{\"ip_restriction\":{\"deny\":[\"::1/129\"]}}"),
     "routes[0].plugins[0].ip_restriction.deny[0]", "bad CIDR \"::1/129\""},
    {PLUGIN("{\"ip_restriction\":{\"allow\":[\"10.0.0.0/\"]}}"),
     "routes[0].plugins[0].ip_restriction.allow[0]", "bad CIDR \"10.0.0.0/\""},
    {PLUGIN("{\"ip_restriction\":{}}"), "routes[0].plugins[0].ip_restriction",
     "needs an \"allow\" or \"deny\" list of CIDRs"},
    {PLUGIN("{\"request_headers\":{\"add\":{\"X A\":\"1\"}}}"),
     "routes[0].plugins[0].request_headers.add.X A", "bad header name \"X A\""},
    {PLUGIN("{\"response_headers\":{\"remove\":[\"ok\",\"\"]}}"),
     "routes[0].plugins[0].response_headers.remove[1]", "must be a non-empty string"},
    {PLUGIN("{\"request_size_limit\":{\"max_bytes\":0}}"),
     "routes[0].plugins[0].request_size_limit.max_bytes", "must be an integer of at least 1"},
    {"{\"plugins\":[{\"request_id\":{}},{\"nope\":{}}]}", "plugins[1]", "unknown plugin \"nope\""},
    {"{\"consumers\":[{\"key_auth\":[\"k\"]}]}", "consumers[0]", "missing \"name\""},
    {"{\"consumers\":[{\"name\":\"a\"},{\"name\":\"a\"}]}", "consumers[1].name",
     "duplicate name \"a\" (also consumers[0])"},
    {"{\"consumers\":[{\"name\":\"a\",\"keys\":[]}]}", "consumers[0]", "unknown key \"keys\""},
    {"{\"consumers\":[{\"name\":\"a\",\"key_auth\":\"k\"}]}", "consumers[0].key_auth",
     "must be a list"},
    {"{\"consumers\":[{\"name\":\"a\",\"key_auth\":[\"k\"]},{\"name\":\"b\",\"key_auth\":[\"k\"]}]"
     "}",
     "consumers[1].key_auth[0]", "key also belongs to consumer \"a\""},
    {"{\"consumers\":[{\"name\":\"a\",\"jwt\":[{\"issuer\":\"i\",\"algorithm\":\"none\"}]}]}",
     "consumers[0].jwt[0].algorithm",
     "unknown algorithm \"none\" (HS256, HS384, HS512, RS256, RS384, RS512, ES256 or ES384)"},
    {"{\"consumers\":[{\"name\":\"a\",\"jwt\":[{\"issuer\":\"i\"}]}]}", "consumers[0].jwt[0]",
     "missing \"secret\""},
    {"{\"consumers\":[{\"name\":\"a\",\"jwt\":[{\"issuer\":\"i\",\"algorithm\":\"RS256\","
     "\"public_key\":\"abc\"}]}]}",
     "consumers[0].jwt[0].public_key", "not a PEM public key"},
    {"{\"consumers\":[{\"name\":\"a\",\"jwt\":[{\"issuer\":\"i\",\"secret\":\"x\"}]},"
     "{\"name\":\"b\",\"jwt\":[{\"issuer\":\"i\",\"secret\":\"y\"}]}]}",
     "consumers[1].jwt[0].issuer", "issuer \"i\" also belongs to consumer \"a\""},
    {"{\"consumers\":[{\"name\":\"a\",\"basic_auth\":[{\"username\":\"u:x\",\"password\":\"p\"}]}]"
     "}",
     "consumers[0].basic_auth[0].username", "must not contain \":\""},
};

static void test_errors(void)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        struct node_state st;
        struct node_state_error err;
        memset(&st, 0x5a, sizeof(st));
        int rc = load(c->json, &st, &err);
        CHECK_INT(rc, GV_EINVAL);
        if (rc != GV_EINVAL) {
            fprintf(stderr, "  case %zu: %s\n", i, c->json);
            if (rc == 0)
                node_state_free(&st);
            continue;
        }
        /* out is untouched on failure */
        CHECK(((unsigned char *)&st)[0] == 0x5a);
        CHECK_STR(err.path, c->path);
        if (c->msg != NULL)
            CHECK_STR(err.msg, c->msg);
        else
            CHECK(strncmp(err.msg, "bad regex \"^/a(\": ", 18) == 0);
    }
}

static void test_unknown_key_where(void)
{
    struct node_state st;
    struct node_state_error err;
    CHECK_INT(load(ROUTE(",\"retires\":2"), &st, &err), GV_EINVAL);
    CHECK_STR(err.path, "routes[0]");
    CHECK_STR(err.where, "routes[0].retires");
    CHECK_INT(load(SVC("") ",\"routes\":[{\"name\":\"r\",\"service\":\"x\"}]}", &st, &err),
              GV_EINVAL);
    CHECK_STR(err.where, "routes[0].service");
}

TEST_MAIN(TEST(test_full), TEST(test_defaults), TEST(test_round_trip), TEST(test_durations),
          TEST(test_errors), TEST(test_unknown_key_where))
