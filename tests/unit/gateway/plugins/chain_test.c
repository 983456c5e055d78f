/* chain_test.c - the plugin pipeline: checking lists and consumers into
 * canonical JSON, building chains (global + route, a route's plugin
 * replacing the global one, sorted by order), and running the phases over a
 * request: identity, context slots, headers dropped and added both ways. */
#include "gateway/plugins/chain.h"
#include "gateway/router.h"
#include "common/err.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static json_t *js(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (j == NULL)
        fprintf(stderr, "bad test JSON: %s\n", e.text);
    return j;
}

/* A request with the given "Name: value" headers. */
static void request_init(struct gw_request *r, struct gw_peer *peer, const char *const *hdrs,
                         size_t n)
{
    memset(r, 0, sizeof(*r));
    r->peer = peer;
    r->route = 0;
    gv_buf_append(&r->head, "/x?k=1", 6);
    r->url_len = 6;
    for (size_t i = 0; i < n; i++) {
        const char *colon = strchr(hdrs[i], ':');
        size_t nl = (size_t)(colon - hdrs[i]);
        gw_headers_on_field(&r->hdrs, (uint32_t)r->head.len, nl, 100);
        gv_buf_append(&r->head, hdrs[i], nl);
        gw_headers_on_value(&r->hdrs, (uint32_t)r->head.len, strlen(colon + 2));
        gv_buf_append(&r->head, colon + 2, strlen(colon + 2));
    }
    gw_headers_done(&r->hdrs);
    gw_request_new_id(r);
}

static void request_fini(struct gw_request *r)
{
    gv_buf_free(&r->head);
    gw_headers_free(&r->hdrs);
}

static void test_check_canonical(void)
{
    struct gv_schema_error err;
    json_t *in = js("[{\"request_id\":null},{\"rate_limit\":{\"limit\":5,\"window\":10}}]"), *out;
    CHECK_INT(gw_plugins_check(in, "routes[0].plugins", NULL, &out, &err), 0);
    char *text = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
    CHECK_STR(text, "[{\"request_id\":{\"echo\":true,\"header\":\"X-Request-Id\","
                    "\"pass_through\":true}},{\"rate_limit\":{\"burst\":0,\"key\":\"ip\","
                    "\"limit\":5,\"scope\":\"cluster\",\"window\":\"10s\"}}]");
    free(text);
    json_decref(in);
    json_decref(out);

    in = js("[{\"cors\":{}},{\"cors\":{}}]");
    CHECK_INT(gw_plugins_check(in, "plugins", NULL, &out, &err), GV_EINVAL);
    CHECK_STR(err.path, "plugins[1]");
    CHECK_STR(err.msg, "plugin \"cors\" is listed twice");
    json_decref(in);

    in = js("[{\"request_headers\":{\"set\":{\"X-A\":\"1\\r\\nX-Evil: 1\"}}}]");
    CHECK_INT(gw_plugins_check(in, "plugins", NULL, &out, &err), GV_EINVAL);
    CHECK_STR(err.path, "plugins[0].request_headers.set.X-A");
    json_decref(in);
}

static void test_consumers(void)
{
    struct gv_schema_error err;
    struct gw_consumer_set *set = NULL;
    json_t *canon = NULL;
    json_t *in = js("[{\"name\":\"alice\",\"key_auth\":[\"ka\"],"
                    "\"basic_auth\":[{\"username\":\"al\",\"password\":\"pw\"}]},"
                    "{\"name\":\"bob\"}]");
    CHECK_INT(gw_consumers_check(in, "consumers", &canon, &set, &err), 0);
    CHECK_INT(set->n, 2);
    const json_t *alice = json_array_get(canon, 0);
    const json_t *user = json_array_get(json_object_get(alice, "basic_auth"), 0);
    CHECK(json_object_get(user, "password") == NULL); /* stored only as its hash */
    CHECK(strncmp(json_string_value(json_object_get(user, "password_hash")), "pbkdf2-sha256$",
                  14) == 0);
    CHECK_INT(json_object_size(json_array_get(canon, 1)), 1); /* bob: just a name */
    /* the canonical form checks again to itself */
    json_t *again = NULL;
    CHECK_INT(gw_consumers_check(canon, "consumers", &again, NULL, &err), 0);
    CHECK(json_equal(canon, again));
    json_decref(again);
    json_decref(canon);
    gw_consumer_set_free(set);
    json_decref(in);
}

static void test_chain_order_and_phases(void)
{
    json_t *global = js("[{\"request_headers\":{\"add\":{\"X-Global\":\"g\"}}},"
                        "{\"request_id\":{\"header\":\"X-Trace\"}}]");
    json_t *route =
        js("[{\"key_auth\":{}},"
           "{\"request_headers\":{\"set\":{\"X-Route\":\"r\"},\"remove\":[\"X-Drop\"]}},"
           "{\"response_headers\":{\"add\":{\"X-Out\":\"o\"}}}]");
    json_t *consumers = js("[{\"name\":\"alice\",\"key_auth\":[\"secret-key\"]}]");
    struct gw_route_spec routes[1] = {{.name = "r", .plugins = route}};
    struct gw_pipeline *p = NULL;
    CHECK_INT(gw_pipeline_build(global, routes, 1, consumers, &p), 0);
    CHECK(p != NULL);
    const struct gw_chain *c = &p->routes[0];
    CHECK_INT(c->n, 4); /* the route's request_headers replaced the global one */
    const char *order[] = {"request_id", "key_auth", "request_headers", "response_headers"};
    for (size_t i = 0; i < c->n && i < 4; i++)
        CHECK_STR(c->v[i].ops->name, order[i]);

    struct gw_peer peer = {.family = 2, .addr = {127, 0, 0, 1}};
    struct gw_request r;
    const char *hdrs[] = {"X-Api-Key: secret-key", "X-Drop: 1", "X-Trace: t-1"};
    request_init(&r, &peer, hdrs, 3);
    r.chain = c;
    CHECK_INT(gw_chain_on_request(&r), GW_PLUGIN_NEXT);
    CHECK_INT(r.ran, 4);
    CHECK_STR(r.consumer, "alice");
    CHECK_STR(r.request_id, "t-1"); /* request_id took its own header */
    /* upstream: the key, X-Drop and the client's X-Trace stay here */
    CHECK(gw_chain_upstream_drop(&r, "x-api-key", 9));
    CHECK(gw_chain_upstream_drop(&r, "X-Drop", 6));
    CHECK(gw_chain_upstream_drop(&r, "x-trace", 7));
    CHECK(gw_chain_upstream_drop(&r, "X-Route", 7)); /* replaced by set */
    CHECK(!gw_chain_upstream_drop(&r, "Accept", 6));
    struct gv_buf b;
    struct gw_hdr_out out;
    gv_buf_init(&b);
    gw_hdr_out_h1(&out, &b);
    CHECK_INT(gw_chain_upstream_add(&r, &out), 0);
    CHECK_STR(b.data, "X-Trace: t-1\r\nX-Route: r\r\n");
    gv_buf_reset(&b);
    CHECK_INT(gw_chain_response_add(&r, &out), 0);
    CHECK_STR(b.data, "X-Trace: t-1\r\nX-Out: o\r\n");
    CHECK(gw_chain_response_drop(&r, "x-trace", 7));
    gv_buf_free(&b);
    request_fini(&r);

    gw_pipeline_free(p);
    json_decref(global);
    json_decref(route);
    json_decref(consumers);
}

static void test_context_slots(void)
{
    struct gw_request r;
    memset(&r, 0, sizeof(r));
    int *a = gw_request_ctx(&r, 3, sizeof(int));
    CHECK(a != NULL && *a == 0);
    *a = 7;
    CHECK(gw_request_ctx(&r, 3, sizeof(int)) == a);
    CHECK(gw_request_ctx(&r, 4, GW_CTX_BYTES) == NULL); /* no room left */
    CHECK(gw_request_ctx(&r, GW_CTX_SLOTS, 4) == NULL);
}

static void test_no_plugins_no_pipeline(void)
{
    struct gw_pipeline *p = (void *)1;
    json_t *empty = json_array();
    struct gw_route_spec routes[2] = {{.name = "a"}, {.name = "b", .plugins = empty}};
    CHECK_INT(gw_pipeline_build(empty, routes, 2, NULL, &p), 0);
    CHECK(p == NULL);
    json_decref(empty);
}

TEST_MAIN(TEST(test_check_canonical), TEST(test_consumers), TEST(test_chain_order_and_phases),
          TEST(test_context_slots), TEST(test_no_plugins_no_pipeline))
