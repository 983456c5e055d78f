/* settings_test.c - the node: section's field table: defaults, the canonical
 * dump and its round trip, docs with a default and a line for every key, and
 * the JSON Schema. Error messages are config_test.c's. */
#include "common/buf.h"
#include "common/err.h"
#include "node/config/settings.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static char *dump_text(const struct node_settings *s)
{
    json_t *j = gv_schema_dump(&node_settings_schema, s);
    char *t = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    return t;
}

static void test_defaults_dump(void)
{
    struct node_settings s;
    node_settings_defaults(&s);
    CHECK(s.name != NULL && s.name[0] != '\0');
    free(s.name); /* the host name: not the same on every machine */
    s.name = strdup("gw");
    char *t = dump_text(&s);
    CHECK_STR(
        t, "{\"access_log\":true,\"admin\":\"127.0.0.1:9901\",\"admin_body_timeout\":\"30s\","
           "\"admin_max_connections\":256,"
           "\"header_timeout\":\"10s\",\"idle_timeout\":\"1m\",\"insecure_gossip\":false,"
           "\"join\":[],\"join_every\":\"30s\","
           "\"listen\":\"0.0.0.0:8080\",\"log_level\":\"info\",\"max_header_bytes\":16384,"
           "\"max_headers\":100,\"name\":\"gw\",\"shutdown_delay\":\"0s\",\"workers\":\"auto\"}");
    free(t);
    CHECK_INT(node_settings_check(&s, &(struct node_config_error){{0}}), 0);
    node_settings_free(&s);
    CHECK(s.name == NULL && s.listen == NULL);
}

static void test_round_trip(void)
{
    json_error_t je;
    json_t *in = json_loads(
        "{\"name\": \"gw-2\", \"listen\": \"[::1]:80\", \"workers\": 3, \"join\": \"a:1, b:2\","
        " \"tls\": {\"certificates\": [{\"cert\": \"c.pem\", \"key\": \"k.pem\"}]},"
        " \"gossip_profile\": \"WAN\", \"idle_timeout\": 90, \"access_log\": false,"
        " \"data_dir\": \"/var/lib/gv\", \"max_headers\": 7}",
        0, &je);
    struct node_settings a, b;
    struct gv_schema_error err;
    node_settings_defaults(&a);
    int rc = gv_schema_parse(&node_settings_schema, in, &a, "node", &err, NULL);
    CHECK_INT(rc, 0);
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", err.path, err.msg);
    CHECK_STR(a.tls.listen, "0.0.0.0:8443"); /* its default once tls is given */
    CHECK(a.tls_given);
    CHECK_INT(a.njoin, 2);
    CHECK_INT(a.idle_timeout_ms, 90000);
    CHECK_STR(a.gossip_profile, "WAN"); /* any case, kept as written */
    char *ta = dump_text(&a);
    json_t *again = json_loads(ta, 0, &je);
    node_settings_defaults(&b);
    CHECK_INT(gv_schema_parse(&node_settings_schema, again, &b, "node", &err, NULL), 0);
    char *tb = dump_text(&b);
    CHECK_STR(ta, tb);
    CHECK(strstr(ta, "\"tls\":{\"certificates\":[{\"cert\":\"c.pem\",\"key\":\"k.pem\"}],"
                     "\"listen\":\"0.0.0.0:8443\"}") != NULL);
    CHECK(strstr(ta, "\"join\":[\"a:1\",\"b:2\"]") != NULL);
    free(ta);
    free(tb);
    json_decref(in);
    json_decref(again);
    node_settings_free(&a);
    node_settings_free(&b);
}

static void test_docs(void)
{
    struct gv_buf b;
    gv_buf_init(&b);
    CHECK_INT(gv_schema_doc(&node_settings_schema, "node", &b), 0);
    const char *keys[] = {"name",
                          "listen",
                          "tls",
                          "tls.listen",
                          "tls.certificates",
                          "admin",
                          "admin_token_file",
                          "admin_body_timeout",
                          "admin_max_connections",
                          "gossip",
                          "advertise",
                          "join",
                          "join_every",
                          "cluster_key_file",
                          "data_dir",
                          "gossip_profile",
                          "workers",
                          "log_level",
                          "access_log",
                          "insecure_gossip",
                          "header_timeout",
                          "idle_timeout",
                          "shutdown_delay",
                          "max_header_bytes",
                          "max_headers"};
    size_t rows = 0;
    for (const char *p = b.data; p && (p = strchr(p, '\n')) != NULL; p++)
        rows++;
    CHECK_INT(rows, sizeof(keys) / sizeof(keys[0]));
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char want[64];
        snprintf(want, sizeof(want), "| `node.%s` |", keys[i]);
        CHECK(b.data && strstr(b.data, want) != NULL);
    }
    /* every row has a doc: no row ends in an empty last cell */
    CHECK(b.data && strstr(b.data, "|  |\n") == NULL);
    /* defaults as a user writes them */
    CHECK(b.data && strstr(b.data, "| `node.listen` | HOST:PORT | `0.0.0.0:8080` |") != NULL);
    CHECK(b.data && strstr(b.data, "| `node.header_timeout` | duration | `10s` |") != NULL);
    CHECK(b.data && strstr(b.data, "| `node.max_headers` | integer 1..10000 | `100` |") != NULL);
    CHECK(b.data && strstr(b.data, "| `node.tls.certificates` | list of {cert, key} | required |"));
    gv_buf_free(&b);

    json_t *js = gv_schema_json_schema(&node_settings_schema);
    json_t *props = json_object_get(js, "properties");
    CHECK_INT(json_object_size(props), 23);
    CHECK(json_is_false(json_object_get(js, "additionalProperties")));
    CHECK_STR(
        json_string_value(json_object_get(json_object_get(props, "log_level"), "description")),
        "Least severe log lines written (stderr); SIGHUP re-reads it");
    json_decref(js);
}

/* A delay may be 0 (the default) and is bounded; a bad one says why. */
static void test_shutdown_delay(void)
{
    static const struct {
        const char *json;
        int rc;
        uint64_t ms;
    } cases[] = {
        {"{\"shutdown_delay\": \"0s\"}", 0, 0},    {"{\"shutdown_delay\": \"15s\"}", 0, 15000},
        {"{\"shutdown_delay\": 5}", 0, 5000},      {"{\"shutdown_delay\": \"5m\"}", 0, 300000},
        {"{\"shutdown_delay\": \"6m\"}", -1, 0},   {"{\"shutdown_delay\": \"-1s\"}", -1, 0},
        {"{\"shutdown_delay\": \"soon\"}", -1, 0}, {"{\"shutdown_delay\": true}", -1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *in = json_loads(cases[i].json, 0, NULL);
        struct node_settings a;
        struct gv_schema_error err = {0};
        node_settings_defaults(&a);
        int rc = gv_schema_parse(&node_settings_schema, in, &a, "node", &err, NULL);
        CHECK_INT(rc == 0 ? 0 : -1, cases[i].rc);
        if (rc == 0)
            CHECK_INT(a.shutdown_delay_ms, cases[i].ms);
        else
            CHECK_STR(err.path, "node.shutdown_delay");
        json_decref(in);
        node_settings_free(&a);
    }
}

TEST_MAIN(TEST(test_defaults_dump), TEST(test_round_trip), TEST(test_docs),
          TEST(test_shutdown_delay))
