/* http_test.c - header classification, token lists, cookies, error bodies. */
#include "gateway/http.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static void test_hop_by_hop(void)
{
    CHECK(gw_is_hop_by_hop("Connection", 10));
    CHECK(gw_is_hop_by_hop("keep-alive", 10));
    CHECK(gw_is_hop_by_hop("TRANSFER-ENCODING", 17));
    CHECK(gw_is_hop_by_hop("Upgrade", 7));
    CHECK(gw_is_hop_by_hop("TE", 2));
    CHECK(!gw_is_hop_by_hop("Content-Length", 14));
    CHECK(!gw_is_hop_by_hop("Connectio", 9));
    CHECK(!gw_is_hop_by_hop("X-Connection", 12));
}

static void test_token_list(void)
{
    const char *v = "keep-alive, Upgrade ,x-foo";
    CHECK(gw_token_list_has(v, strlen(v), "upgrade"));
    CHECK(gw_token_list_has(v, strlen(v), "X-Foo"));
    CHECK(gw_token_list_has(v, strlen(v), "keep-alive"));
    CHECK(!gw_token_list_has(v, strlen(v), "close"));
    CHECK(!gw_token_list_has(v, strlen(v), "keep"));
    CHECK(!gw_token_list_has("", 0, "close"));
    CHECK(gw_token_list_has(",,close,,", 9, "close"));
}

static void test_cookie(void)
{
    size_t n = 0;
    const char *h = "a=1; GV_STICKY=abc.def; b=2";
    const char *v = gw_cookie_find(h, strlen(h), "GV_STICKY", &n);
    CHECK(v != NULL && n == 7 && memcmp(v, "abc.def", 7) == 0);
    v = gw_cookie_find(h, strlen(h), "b", &n);
    CHECK(v != NULL && n == 1 && v[0] == '2');
    CHECK(gw_cookie_find(h, strlen(h), "GV", &n) == NULL);
    CHECK(gw_cookie_find(h, strlen(h), "c", &n) == NULL);
    CHECK(gw_cookie_find("novalue; x", 10, "novalue", &n) == NULL);
    v = gw_cookie_find("e=", 2, "e", &n);
    CHECK(v != NULL && n == 0);
}

static void test_error_response(void)
{
    struct gv_buf b;
    gv_buf_init(&b);
    CHECK_INT(gw_error_response(&b, 404, "no route matched", "id-1", "", false), 0);
    CHECK(strncmp(b.data, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
    CHECK(strstr(b.data, "Content-Type: application/json\r\n") != NULL);
    CHECK(strstr(b.data, "Connection: close") == NULL);
    const char *body = strstr(b.data, "\r\n\r\n") + 4;
    CHECK_STR(body, "{\"error\":\"no route matched\",\"request_id\":\"id-1\"}\n");
    const char *cl = strstr(b.data, "Content-Length: ");
    CHECK(cl != NULL && (size_t)atoi(cl + 16) == strlen(body));
    gv_buf_reset(&b);
    CHECK_INT(gw_error_response(&b, 503, "x", "a\"b", "4bf92f3577b34da6a3ce929d0e0e4736", true), 0);
    CHECK(strstr(b.data, "Connection: close\r\n") != NULL);
    CHECK(strstr(b.data, ",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"}") != NULL);
    CHECK(strstr(b.data, "\"request_id\":\"a\\\"b\"") != NULL);
    gv_buf_reset(&b); /* not ours (not hex): left out rather than escaped */
    CHECK_INT(gw_error_response(&b, 503, "x", "id", "a\"b", false), 0);
    CHECK(strstr(b.data, "trace_id") == NULL);
    gv_buf_free(&b);
    CHECK_STR(gw_reason(431), "Request Header Fields Too Large");
    CHECK_STR(gw_reason(799), "Unknown");
}

TEST_MAIN(TEST(test_hop_by_hop), TEST(test_token_list), TEST(test_cookie),
          TEST(test_error_response))
