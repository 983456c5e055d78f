/* state_tls_test.c - a service's upstream `tls` option in the cluster-state
 * validator: shorthand, defaults, canonical JSON, error paths, and the local
 * check that ca_file can be read. */
#include "common/err.h"
#include "node/state.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SVC(extra)                                                                                 \
    "{\"services\":[{\"name\":\"a\",\"targets\":[{\"address\":\"h:443\"}]" extra "}]}"

static int load(const char *text, struct node_state *st, struct node_state_error *err)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL) {
        fprintf(stderr, "bad test JSON: %s: %s\n", text, je.text);
        return -1;
    }
    int rc = node_state_from_json(j, st, err);
    json_decref(j);
    return rc;
}

/* The canonical JSON of service 0's tls, or "-" when absent. */
static char *tls_json(const struct node_state *st)
{
    json_t *j = node_state_to_json(st);
    json_t *t = json_object_get(json_array_get(json_object_get(j, "services"), 0), "tls");
    char *s = t ? json_dumps(t, JSON_SORT_KEYS | JSON_COMPACT) : strdup("-");
    json_decref(j);
    return s;
}

static void test_forms(void)
{
    struct node_state st;
    struct node_state_error err;
    char *s;

    CHECK_INT(load(SVC(""), &st, &err), 0);
    CHECK(!st.services[0].tls.enabled);
    CHECK(st.services[0].tls.verify); /* on by default, once enabled */
    s = tls_json(&st);
    CHECK_STR(s, "-");
    free(s);
    node_state_free(&st);

    CHECK_INT(load(SVC(",\"tls\":true"), &st, &err), 0);
    CHECK(st.services[0].tls.enabled && st.services[0].tls.verify);
    CHECK(st.services[0].tls.ca_file == NULL && st.services[0].tls.server_name == NULL);
    s = tls_json(&st);
    CHECK_STR(s, "{\"verify\":true}");
    free(s);
    node_state_free(&st);

    CHECK_INT(load(SVC(",\"tls\":false"), &st, &err), 0);
    CHECK(!st.services[0].tls.enabled);
    node_state_free(&st);

    CHECK_INT(load(SVC(",\"tls\":{\"ca_file\":\"/x/ca.pem\",\"server_name\":\"api.example.com\"}"),
                   &st, &err),
              0);
    CHECK(st.services[0].tls.enabled && st.services[0].tls.verify);
    CHECK_STR(st.services[0].tls.ca_file, "/x/ca.pem");
    CHECK_STR(st.services[0].tls.server_name, "api.example.com");
    s = tls_json(&st);
    CHECK_STR(s, "{\"ca_file\":\"/x/ca.pem\",\"server_name\":\"api.example.com\",\"verify\":true}");
    free(s);
    /* The copy the snapshot and health checker take carries it too. */
    struct lb_service_spec copy;
    CHECK_INT(lb_service_spec_copy(&copy, &st.services[0]), 0);
    CHECK_STR(copy.tls.ca_file, "/x/ca.pem");
    CHECK_STR(copy.tls.server_name, "api.example.com");
    lb_service_spec_free(&copy);
    node_state_free(&st);

    CHECK_INT(load(SVC(",\"tls\":{\"verify\":false}"), &st, &err), 0);
    CHECK(st.services[0].tls.enabled && !st.services[0].tls.verify);
    node_state_free(&st);

    CHECK_INT(load(SVC(",\"tls\":{\"enabled\":false,\"verify\":false}"), &st, &err), 0);
    CHECK(!st.services[0].tls.enabled);
    node_state_free(&st);

    /* Probes speak TLS to a TLS service (node/health_tls.c). */
    CHECK_INT(load(SVC(",\"tls\":true,\"health_check\":{}"), &st, &err), 0);
    CHECK(st.services[0].tls.enabled && st.services[0].health.enabled);
    node_state_free(&st);
}

static const struct {
    const char *json, *path, *msg;
} bad[] = {
    {SVC(",\"tls\":\"yes\""), "services[0].tls",
     "must be true, false or {verify, ca_file, server_name}"},
    {SVC(",\"tls\":{\"verify\":\"no\"}"), "services[0].tls.verify", "must be true or false"},
    {SVC(",\"tls\":{\"ca_file\":\"\"}"), "services[0].tls.ca_file", "must not be empty"},
    {SVC(",\"tls\":{\"ca_file\":3}"), "services[0].tls.ca_file", "must be a string"},
    {SVC(",\"tls\":{\"server_name\":\"a b\"}"), "services[0].tls.server_name",
     "bad host name \"a b\""},
    {SVC(",\"tls\":{\"sni\":\"a\"}"), "services[0].tls", "unknown key \"sni\""},
};

static void test_errors(void)
{
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct node_state st;
        struct node_state_error err;
        int rc = load(bad[i].json, &st, &err);
        CHECK_INT(rc, GV_EINVAL);
        if (rc == 0) {
            node_state_free(&st);
            continue;
        }
        CHECK_STR(err.path, bad[i].path);
        CHECK_STR(err.msg, bad[i].msg);
    }
}

static void test_check_files(void)
{
    struct node_state st;
    struct node_state_error err;
    char path[] = "/tmp/gv-ca-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    char json[256];
    snprintf(json, sizeof(json), SVC(",\"tls\":{\"ca_file\":\"%s\"}"), path);
    CHECK_INT(load(json, &st, &err), 0);
    CHECK_INT(node_state_check_files(&st, &err), 0);
    node_state_free(&st);
    unlink(path);
    close(fd);
    /* Valid as cluster state (another node may have the file), but not here. */
    CHECK_INT(load(json, &st, &err), 0);
    CHECK_INT(node_state_check_files(&st, &err), GV_EINVAL);
    CHECK_STR(err.path, "services[0].tls.ca_file");
    CHECK(strstr(err.msg, "cannot read") != NULL);
    node_state_free(&st);
}

TEST_MAIN(TEST(test_forms), TEST(test_errors), TEST(test_check_files))
