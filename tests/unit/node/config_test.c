/* config_test.c - loading the YAML config file: the SPEC example, defaults,
 * scalar typing, and the exact "FILE:LINE: message" of each kind of error. */
#include "balancer/lb.h"
#include "common/err.h"
#include "node/config.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int load(const char *yaml, struct node_config *c, struct node_config_error *err)
{
    return node_config_load_string("gw.yaml", yaml, strlen(yaml), c, err);
}

/* tests/unit/node/testdata/NAME, found from this file's own path. */
static void testdata(char *buf, size_t len, const char *name)
{
    const char *slash = strrchr(__FILE__, '/');
    int dirlen = slash ? (int)(slash - __FILE__) : 1;
    snprintf(buf, len, "%.*s/testdata/%s", dirlen, slash ? __FILE__ : ".", name);
}

static void test_spec_example(void)
{
    struct node_config c;
    struct node_config_error err;
    char path[1024];
    testdata(path, sizeof(path), "spec_example.yaml");
    int rc = node_config_load_file(path, &c, &err);
    CHECK_INT(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "%s\n", err.text);
        return;
    }
    CHECK_STR(c.path, path);
    const struct node_settings *n = &c.node;
    CHECK_STR(n->name, "gw1");
    CHECK_STR(n->listen, "0.0.0.0:8080");
    CHECK_STR(n->tls.listen, "0.0.0.0:8443");
    CHECK_INT(n->tls.ncerts, 1);
    CHECK_STR(n->tls.certs[0].cert, "a.pem");
    CHECK_STR(n->tls.certs[0].key, "a.key");
    CHECK_STR(n->admin, "127.0.0.1:9901");
    CHECK_STR(n->admin_token_file, "/etc/grapevine/admin.token");
    CHECK_STR(n->gossip, "0.0.0.0:7946");
    CHECK_STR(n->advertise, "gw1:7946");
    CHECK_INT(n->njoin, 2);
    CHECK_STR(n->join[0], "gw2:7946");
    CHECK_STR(n->join[1], "gw3:7946");
    CHECK_STR(n->cluster_key_file, "/etc/grapevine/cluster.key");
    CHECK_STR(n->data_dir, "/var/lib/grapevine");
    CHECK_INT(n->workers, 0);

    const struct node_state *st = &c.state;
    CHECK_INT(st->nservices, 1);
    const struct lb_service_spec *s = &st->services[0];
    CHECK_STR(s->name, "users");
    CHECK_INT(s->ntargets, 2);
    CHECK_STR(s->targets[1].address, "users-2:9001");
    CHECK_STR(s->targets[1].host, "users-2");
    CHECK_INT(s->targets[1].port, 9001);
    CHECK_INT(s->targets[1].weight, 2);
    CHECK(s->algo == lb_algo_default());
    CHECK_INT(s->hash_on, LB_HASH_IP);
    CHECK(s->health.enabled);
    CHECK_STR(s->health.path, "/healthz");
    CHECK_INT(s->health.interval_ms, 2000);
    CHECK_INT(s->health.timeout_ms, 1000);
    CHECK_INT(s->passive.failures, 5);
    CHECK_INT(s->passive.eject_for_ms, 30000);
    CHECK(s->sticky.enabled);
    CHECK_INT(s->sticky.ttl_ms, 3600000);
    CHECK_INT(s->retries, 2);
    CHECK_INT(s->timeouts.read_ms, 30000);

    CHECK_INT(st->nroutes, 1);
    const struct gw_route_spec *r = &st->routes[0];
    CHECK_STR(r->name, "users-api");
    CHECK_INT(r->nhosts, 1);
    CHECK_STR(r->hosts[0], "api.example.com");
    CHECK_INT(r->npaths, 1);
    CHECK_STR(r->paths[0], "/users");
    CHECK_INT(r->path_type, GW_PATH_PREFIX);
    uint64_t m = 0;
    gw_method_bit("GET", &m);
    gw_method_bit("POST", &m);
    CHECK(r->methods == m);
    CHECK_INT(r->nheaders, 1);
    CHECK_STR(r->headers[0].name, "X-Env");
    CHECK_STR(r->headers[0].value, "prod");
    CHECK_STR(r->service, "users");
    CHECK(r->strip_prefix);
    CHECK_INT(json_array_size(st->routes[0].plugins), 2);
    json_t *rl = json_object_get(json_array_get(st->routes[0].plugins, 0), "rate_limit");
    CHECK_INT(json_integer_value(json_object_get(rl, "limit")), 100);
    CHECK_STR(json_string_value(json_object_get(rl, "key")), "consumer");
    CHECK_INT(json_array_size(st->consumers), 1);
    json_t *alice = json_array_get(st->consumers, 0);
    CHECK_STR(json_string_value(json_array_get(json_object_get(alice, "key_auth"), 0)), "key-abc");
    json_t *jwt = json_array_get(json_object_get(alice, "jwt"), 0);
    CHECK_STR(json_string_value(json_object_get(jwt, "secret")), "...");
    CHECK_INT(json_array_size(st->plugins), 1);
    node_config_free(&c);
}

static void test_defaults(void)
{
    struct node_config c;
    struct node_config_error err;
    const char *empties[] = {"", "# nothing here\n", "---\n", "node:\n",
                             "node: {}\nservices: []\n"};
    for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
        int rc = load(empties[i], &c, &err);
        CHECK_INT(rc, 0);
        if (rc != 0) {
            fprintf(stderr, "%s\n", err.text);
            continue;
        }
        const struct node_settings *n = &c.node;
        CHECK(n->name != NULL && n->name[0] != '\0');
        CHECK_STR(n->listen, "0.0.0.0:8080");
        CHECK_STR(n->admin, "127.0.0.1:9901");
        CHECK(n->gossip == NULL); /* chosen at start: by the key (node_settings_default_gossip) */
        CHECK_INT(node_settings_default_gossip(&c.node), 0);
        CHECK_STR(n->gossip, "127.0.0.1:7946"); /* no key: loopback only */
        CHECK(n->tls.listen == NULL);
        CHECK_INT(n->tls.ncerts, 0);
        CHECK(n->advertise == NULL);
        CHECK_INT(n->njoin, 0);
        CHECK(n->admin_token_file == NULL);
        CHECK(n->data_dir == NULL);
        CHECK_INT(n->workers, 0);
        CHECK_STR(n->log_level, "info");
        CHECK(n->access_log);
        CHECK_INT(n->header_timeout_ms, 10000);
        CHECK_INT(n->idle_timeout_ms, 60000);
        CHECK_INT(n->max_header_bytes, 16384);
        CHECK_INT(n->max_headers, 100);
        CHECK_INT(c.state.nservices, 0);
        CHECK_INT(c.state.nroutes, 0);
        CHECK(c.path == NULL);
        node_config_free(&c);
    }
}

static void test_node_settings(void)
{
    struct node_config c;
    struct node_config_error err;
    int rc = load("node:\n"
                  "  join: 'a:1, b:2 ,c:3'\n"
                  "  workers: 4\n"
                  "  log_level: debug\n"
                  "  access_log: false\n"
                  "  header_timeout: 5\n"
                  "  idle_timeout: 90s\n"
                  "  max_header_bytes: 32768\n"
                  "  max_headers: 50\n"
                  "  admin: 0.0.0.0:9901\n"
                  "  admin_token_file: /tok\n"
                  "  tls: {certificates: [{cert: c.pem, key: k.pem}]}\n",
                  &c, &err);
    CHECK_INT(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "%s\n", err.text);
        return;
    }
    CHECK_INT(c.node.njoin, 3);
    CHECK_STR(c.node.join[0], "a:1");
    CHECK_STR(c.node.join[1], "b:2");
    CHECK_STR(c.node.join[2], "c:3");
    CHECK_INT(c.node.workers, 4);
    CHECK_STR(c.node.log_level, "debug");
    CHECK(!c.node.access_log);
    CHECK_INT(c.node.header_timeout_ms, 5000);
    CHECK_INT(c.node.idle_timeout_ms, 90000);
    CHECK_INT(c.node.max_header_bytes, 32768);
    CHECK_INT(c.node.max_headers, 50);
    CHECK_STR(c.node.tls.listen, "0.0.0.0:8443");
    CHECK_INT(node_settings_check(&c.node, &err), 0);
    /* An override that drops the token is caught by the re-check. */
    free(c.node.admin_token_file);
    c.node.admin_token_file = NULL;
    CHECK_INT(node_settings_check(&c.node, &err), GV_EINVAL);
    CHECK_STR(err.text, "node.admin: admin_token_file is required when admin is not on loopback");
    /* So is a bad address from the command line. */
    free(c.node.gossip);
    c.node.gossip = strdup("gossip");
    CHECK_INT(node_settings_check(&c.node, &err), GV_EINVAL);
    CHECK_STR(err.text, "node.gossip: bad address \"gossip\" (want HOST:PORT)");
    node_config_free(&c);

    /* Loopback admin needs no token, whichever way it is spelled. */
    const char *loop[] = {"node: {admin: 'localhost:9901'}\n", "node: {admin: '[::1]:9901'}\n",
                          "node: {admin: 127.1.2.3:9901}\n"};
    for (size_t i = 0; i < sizeof(loop) / sizeof(loop[0]); i++) {
        rc = load(loop[i], &c, &err);
        CHECK_INT(rc, 0);
        if (rc == 0)
            node_config_free(&c);
    }
}

/* Plain scalars are typed like YAML 1.2's core schema; quoted ones are
 * strings; anchors and merge keys work. */
static void test_scalars(void)
{
    struct node_config c;
    struct node_config_error err;
    int rc = load("services:\n"
                  "  - &svc\n"
                  "    name: \"2024\"\n"
                  "    targets: [{address: h:80, weight: +3}]\n"
                  "    retries: 0\n"
                  "  - <<: *svc\n"
                  "    name: copy\n"
                  "routes:\n"
                  "  - name: r\n"
                  "    service: '2024'\n"
                  "    strip_prefix: TRUE\n"
                  "    match:\n"
                  "      headers: {X-Version: 2, X-Null: \"null\"}\n"
                  "      methods: [get]\n"
                  "    plugins:\n"
                  "      - cors:\n"
                  "      - request_size_limit: {max_bytes: 1048576}\n",
                  &c, &err);
    CHECK_INT(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "%s\n", err.text);
        return;
    }
    CHECK_INT(c.state.nservices, 2);
    CHECK_STR(c.state.services[0].name, "2024");
    CHECK_INT(c.state.services[0].targets[0].weight, 3);
    CHECK_INT(c.state.services[0].retries, 0);
    CHECK_STR(c.state.services[1].name, "copy");
    CHECK_STR(c.state.services[1].targets[0].address, "h:80");
    CHECK(c.state.routes[0].strip_prefix);
    CHECK_STR(c.state.routes[0].headers[0].value, "2");
    CHECK_STR(c.state.routes[0].headers[1].value, "null");
    CHECK_INT(json_array_size(c.state.routes[0].plugins), 2);
    node_config_free(&c);
}

static void test_missing_file(void)
{
    struct node_config c;
    struct node_config_error err;
    memset(&c, 0x5a, sizeof(c));
    CHECK_INT(node_config_load_file("/nonexistent/gw.yaml", &c, &err), GV_ENOENT);
    CHECK_STR(err.text, "/nonexistent/gw.yaml: cannot read: No such file or directory");
    CHECK(((unsigned char *)&c)[0] == 0x5a);
}

static void test_file_errors_name_the_file(void)
{
    struct node_config c;
    struct node_config_error err;
    char path[] = "/tmp/gv_config_test_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    const char text[] = "services:\n  - name: a\n    targets: [{address: nope}]\n";
    CHECK_INT(write(fd, text, sizeof(text) - 1), sizeof(text) - 1);
    close(fd);
    CHECK_INT(node_config_load_file(path, &c, &err), GV_EINVAL);
    char want[256];
    snprintf(want, sizeof(want),
             "%s:3: services[0].targets[0].address: bad address \"nope\" (want HOST:PORT)", path);
    CHECK_STR(err.text, want);
    unlink(path);
}

struct bad_case {
    const char *yaml;
    const char *text; /* the whole expected message */
};

#define SVC                                                                                        \
    "services:\n"                                                                                  \
    "  - name: users\n"                                                                            \
    "    targets: [{address: 10.0.0.5:9001}]\n"
#define ROUTE                                                                                      \
    SVC "routes:\n"                                                                                \
        "  - name: r\n"                                                                            \
        "    service: users\n"

static const struct bad_case bad_cases[] = {
    /* Unknown keys, pointing at the key's own line. */
    {"node:\n  name: a\nservice: []\n", "gw.yaml:3: unknown key \"service\""},
    {"node:\n  name: a\n  listn: 0.0.0.0:80\n", "gw.yaml:3: node: unknown key \"listn\""},
    {ROUTE "    strip_prefix: true\n    retires: 2\n",
     "gw.yaml:8: routes[0]: unknown key \"retires\""},
    {SVC "    health_check:\n      path: /h\n      intervall: 2s\n",
     "gw.yaml:6: services[0].health_check: unknown key \"intervall\""},
    {SVC "    passive: {failures: 2, eject: 1s}\n", "gw.yaml:4: services[0].passive: unknown key "
                                                    "\"eject\""},
    /* References and duplicates. */
    {SVC "routes:\n  - name: r\n    service: user\n",
     "gw.yaml:6: routes[0].service: no service named \"user\""},
    {SVC "routes:\n  - name: r\n", "gw.yaml:5: routes[0]: missing \"service\""},
    {SVC "  - name: users\n    targets: [{address: h:1}]\n",
     "gw.yaml:4: services[1].name: duplicate name \"users\" (also services[0])"},
    {ROUTE "  - name: r\n    service: users\n",
     "gw.yaml:7: routes[1].name: duplicate name \"r\" (also routes[0])"},
    {"consumers:\n  - name: a\n    key_auth: [k1]\n  - name: b\n    key_auth: [k2, k1]\n",
     "gw.yaml:5: consumers[1].key_auth[1]: key also belongs to consumer \"a\""},
    /* Values. */
    {SVC "    health_check: {interval: 2 s}\n",
     "gw.yaml:4: services[0].health_check.interval: bad duration \"2 s\" (use e.g. 250ms, 2s, "
     "1m)"},
    {SVC "    timeouts:\n      connect: 1.5s\n",
     "gw.yaml:5: services[0].timeouts.connect: bad duration \"1.5s\" (use e.g. 250ms, 2s, 1m)"},
    {"services:\n  - name: users\n    targets:\n      - address: 10.0.0.5\n",
     "gw.yaml:4: services[0].targets[0].address: bad address \"10.0.0.5\" (want HOST:PORT)"},
    {"node:\n  listen: 8080\n", "gw.yaml:2: node.listen: must be a non-empty string"},
    {"node:\n  gossip: 0.0.0.0:70000\n",
     "gw.yaml:2: node.gossip: bad address \"0.0.0.0:70000\" (want HOST:PORT)"},
    {"node:\n  join: [gw2:7946, gw3]\n",
     "gw.yaml:2: node.join[1]: bad address \"gw3\" (want HOST:PORT)"},
    {"node:\n  join: gw2:7946,gw3\n", "gw.yaml:2: node.join: bad address \"gw3\" (want HOST:PORT)"},
    {ROUTE "    match:\n      path_type: regex\n      paths: ['^/a[']\n", NULL},
    {ROUTE "    plugins:\n      - ip_restriction:\n          allow: [10.0.0.0/8, 10.1.0.0/40]\n",
     "gw.yaml:9: routes[0].plugins[0].ip_restriction.allow[1]: bad CIDR \"10.1.0.0/40\""},
    {ROUTE "    plugins:\n      - rate_limit: {window: 1s}\n",
     "gw.yaml:8: routes[0].plugins[0].rate_limit: missing \"limit\""},
    {ROUTE "    plugins:\n      - ratelimit: {limit: 1}\n",
     "gw.yaml:8: routes[0].plugins[0]: unknown plugin \"ratelimit\""},
    {ROUTE "    match: {methods: [GET, FETCH]}\n",
     "gw.yaml:7: routes[0].match.methods[1]: unknown method \"FETCH\""},
    {SVC "    balancer: fastest\n",
     "gw.yaml:4: services[0].balancer: unknown balancer \"fastest\" (round_robin, "
     "least_connections, p2c_ewma, consistent_hash or random)"},
    /* Wrong types. */
    {SVC "    retries: two\n", "gw.yaml:4: services[0].retries: must be an integer from 0 to 10"},
    {"services:\n  - name: users\n    targets: [{address: h:80, weight: '2'}]\n",
     "gw.yaml:3: services[0].targets[0].weight: must be an integer from 1 to 10000"},
    {ROUTE "    strip_prefix: yes\n", "gw.yaml:7: routes[0].strip_prefix: must be true or false"},
    {"services: {name: users}\n", "gw.yaml:1: services: must be a list"},
    {"routes:\n  - r1\n", "gw.yaml:2: routes[0]: must be an object"},
    {"- a\n- b\n", "gw.yaml:1: the top level must be a mapping of node, services, routes, "
                   "consumers and plugins"},
    {"node:\n  workers: many\n",
     "gw.yaml:2: node.workers: must be \"auto\" or an integer from 0 to 1024"},
    {"node:\n  log_level: loud\n",
     "gw.yaml:2: node.log_level: unknown log_level \"loud\" (debug, info, warn or error)"},
    {"node:\n  access_log: on\n", "gw.yaml:2: node.access_log: must be true or false"},
    {"node:\n  header_timeout: 0s\n",
     "gw.yaml:2: node.header_timeout: must be more than 0 and at most 24h"},
    {"node:\n  max_header_bytes: 100\n",
     "gw.yaml:2: node.max_header_bytes: must be an integer from 1024 to 1048576"},
    {"node:\n  name: my node\n",
     "gw.yaml:2: node.name: bad name \"my node\" (use letters, digits, \"_\", \".\", \"-\")"},
    {"node:\n  tls: {listen: 0.0.0.0:8443}\n", "gw.yaml:2: node.tls: missing \"certificates\""},
    {"node:\n  tls:\n    certificates:\n      - cert: a.pem\n",
     "gw.yaml:4: node.tls.certificates[0]: missing \"key\""},
    {"node:\n  name: gw1\n  admin: 0.0.0.0:9901\n",
     "gw.yaml:3: node.admin: admin_token_file is required when admin is not on loopback"},
    {"node:\n  name: gw1\n  gossip: 0.0.0.0:7946\n",
     "gw.yaml:3: node.gossip: cluster_key_file is required when gossip is not on loopback "
     "(or insecure_gossip: true)"},
    /* YAML itself. */
    {"services:\n  - name: a\n    targets: [{address: h:1}\n",
     "gw.yaml:4: flow sequence without a closing bracket"},
    {"node:\n  name: a\n  name: b\n", "gw.yaml:3: duplicate key"},
    {"node:\n\tname: a\n", "gw.yaml:2: tab character may not be used as indentation"},
    {"node:\n  name: *anchor\n", "gw.yaml:2: invalid alias"},
    {"node: {}\n---\nservices: []\n", "gw.yaml:3: only one YAML document is allowed"},
    {"? [a, b]\n: 1\n", "gw.yaml:1: keys must be non-empty plain strings"},
    {"node:\n  name: a\n%  x \xe0\xdf\n", "gw.yaml:3: invalid UTF-8"},
    {"node:\n  name: \xed\xa0\x80\n", "gw.yaml:2: invalid UTF-8"},
    {"node:\n  name: \"unterminated\n", "gw.yaml:2: double-quoted scalar without closing quote"},
};

static void test_errors(void)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *b = &bad_cases[i];
        struct node_config c;
        struct node_config_error err;
        memset(&c, 0x5a, sizeof(c));
        int rc = load(b->yaml, &c, &err);
        CHECK_INT(rc, GV_EINVAL);
        if (rc != GV_EINVAL) {
            fprintf(stderr, "  case %zu:\n%s", i, b->yaml);
            if (rc == 0)
                node_config_free(&c);
            continue;
        }
        CHECK(((unsigned char *)&c)[0] == 0x5a);
        if (b->text != NULL) {
            CHECK_STR(err.text, b->text);
        } else {
            /* The regex case: the C library words the reason, so check the rest. */
            static const char want[] = "gw.yaml:9: routes[0].match.paths[0]: bad regex \"^/a[\": ";
            CHECK(strncmp(err.text, want, sizeof(want) - 1) == 0);
        }
    }
}

static void test_canonical_from_yaml(void)
{
    /* The same state written two ways gives the same canonical JSON. */
    struct node_config a, b;
    struct node_config_error err;
    int ra = load(SVC "    health_check: {interval: 2}\n", &a, &err);
    int rb = load("services: [{name: users, targets: [{address: '10.0.0.5:9001', weight: 1}],\n"
                  "            health_check: {interval: 2000ms, path: /healthz}}]\n",
                  &b, &err);
    CHECK_INT(ra, 0);
    CHECK_INT(rb, 0);
    if (ra == 0 && rb == 0) {
        json_t *ja = node_state_to_json(&a.state), *jb = node_state_to_json(&b.state);
        char *sa = json_dumps(ja, JSON_SORT_KEYS | JSON_COMPACT);
        char *sb = json_dumps(jb, JSON_SORT_KEYS | JSON_COMPACT);
        CHECK_STR(sa, sb);
        free(sa);
        free(sb);
        json_decref(ja);
        json_decref(jb);
    }
    if (ra == 0)
        node_config_free(&a);
    if (rb == 0)
        node_config_free(&b);
}

static void test_gossip_off_loopback(void)
{
    struct node_config c;
    struct node_config_error err;
    const char *ok[] = {"node:\n  gossip: 0.0.0.0:7946\n  insecure_gossip: true\n",
                        "node:\n  gossip: 0.0.0.0:7946\n  cluster_key_file: /k\n",
                        "node:\n  gossip: 127.0.0.1:7946\n"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        CHECK_INT(load(ok[i], &c, &err), 0);
        node_config_free(&c);
    }
    CHECK_INT(load("node:\n  cluster_key_file: /k\n", &c, &err), 0);
    CHECK_INT(node_settings_default_gossip(&c.node), 0);
    CHECK_STR(c.node.gossip, "0.0.0.0:7946"); /* with a key: every interface */
    node_config_free(&c);
}

TEST_MAIN(TEST(test_gossip_off_loopback), TEST(test_spec_example), TEST(test_defaults),
          TEST(test_node_settings), TEST(test_scalars), TEST(test_missing_file),
          TEST(test_file_errors_name_the_file), TEST(test_errors), TEST(test_canonical_from_yaml))
