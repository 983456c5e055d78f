/* request_test.c - the protocol-neutral request (gateway/request.c): header,
 * target, path and query parameter lookups, the request id's rules, hidden
 * query parameters, the plugins' context slots and the HTTP/1.1 header
 * sink, on requests made up without a socket. */
#include "gateway/request.h"
#include "request_fixture.h"
#include "test.h"

#include <llhttp.h>
#include <stdint.h>
#include <string.h>

/* gw_request_header's value as a string ("(absent)" when NULL). */
static const char *header(const struct gw_request *r, const char *name)
{
    static char out[256];
    size_t len = 0;
    const char *v = gw_request_header(r, name, &len);
    if (v == NULL)
        return "(absent)";
    snprintf(out, sizeof(out), "%.*s", (int)len, v);
    return out;
}

static void test_header(void)
{
    struct gw_peer peer = fx_peer("10.0.0.1");
    struct gw_request r;
    fx_request(&r, &peer, HTTP_GET, "/",
               (const char *[]){"Host: a.example", "X-Multi: first", "x-multi: second",
                                "X-Empty:", "X-Abc: 3", NULL});
    CHECK_STR(header(&r, "host"), "a.example");
    CHECK_STR(header(&r, "HOST"), "a.example");
    CHECK_STR(header(&r, "X-MULTI"), "first"); /* the first of several */
    CHECK_STR(header(&r, "x-empty"), "");      /* present, empty */
    CHECK_STR(header(&r, "X-Ab"), "(absent)"); /* a prefix is another name */
    CHECK_STR(header(&r, "X-Abcd"), "(absent)");
    CHECK_STR(header(&r, "Accept"), "(absent)");
    size_t len = 99;
    CHECK(gw_request_header(&r, "Accept", &len) == NULL);
    CHECK_INT(len, 99); /* left alone when absent */
    fx_request_free(&r);

    fx_request(&r, &peer, HTTP_GET, "/", NULL);
    CHECK_STR(header(&r, "host"), "(absent)");
    fx_request_free(&r);
}

/* gw_request_target or _path as a string. */
static const char *part(const struct gw_request *r, bool path)
{
    static char out[256];
    size_t len = 0;
    const char *v = path ? gw_request_path(r, &len) : gw_request_target(r, &len);
    snprintf(out, sizeof(out), "%.*s", (int)len, v);
    return out;
}

static void test_target_and_path(void)
{
    struct gw_peer peer = fx_peer("10.0.0.1");
    struct gw_request r;
    struct {
        const char *target, *path;
    } cases[] = {
        {"/a/b?x=1&y=2", "/a/b"}, {"/a/b", "/a/b"}, {"/?", "/"}, {"/a?b?c", "/a"}, {"*", "*"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fx_request(&r, &peer, HTTP_GET, cases[i].target, NULL);
        CHECK_STR(part(&r, false), cases[i].target);
        CHECK_STR(part(&r, true), cases[i].path);
        fx_request_free(&r);
    }
    /* The target is found by its offset, wherever the head holds it. */
    memset(&r, 0, sizeof(r));
    CHECK_INT(gv_buf_puts(&r.head, "GET /x/y?q=1 HTTP/1.1"), 0);
    r.url_off = 4;
    r.url_len = 8;
    CHECK_STR(part(&r, false), "/x/y?q=1");
    CHECK_STR(part(&r, true), "/x/y");
    gv_buf_free(&r.head);
    /* No head yet: empty. */
    memset(&r, 0, sizeof(r));
    CHECK_STR(part(&r, false), "");
    CHECK_STR(part(&r, true), "");
}

/* gw_request_query_param of name in target with an n-byte buffer: the
 * value, or "(none)" when it returned -1. */
static const char *param(const char *target, const char *name, size_t n)
{
    static char out[256];
    char buf[256];
    struct gw_peer peer = fx_peer("10.0.0.1");
    struct gw_request r;
    fx_request(&r, &peer, HTTP_GET, target, NULL);
    long len = gw_request_query_param(&r, name, buf, n);
    CHECK(len == -1 || (len > 0 && (size_t)len <= n));
    if (len < 0)
        snprintf(out, sizeof(out), "(none)");
    else
        snprintf(out, sizeof(out), "%.*s", (int)len, buf);
    fx_request_free(&r);
    return out;
}

static void test_query_param(void)
{
    const char *t = "/p?a=1&key=x%20y%2Fz&plus=a+b&empty=&bare&a=2&k=v";
    CHECK_STR(param(t, "a", 64), "1"); /* the first of several */
    CHECK_STR(param(t, "key", 64), "x y/z");
    CHECK_STR(param(t, "plus", 64), "a b");
    CHECK_STR(param(t, "k", 64), "v"); /* not the prefix of "key" */
    CHECK_STR(param(t, "empty", 64), "(none)");
    CHECK_STR(param(t, "bare", 64), "(none)");
    CHECK_STR(param(t, "absent", 64), "(none)");
    CHECK_STR(param(t, "ke", 64), "(none)");
    CHECK_STR(param("/p", "a", 64), "(none)");
    CHECK_STR(param("/p?", "a", 64), "(none)");
    CHECK_STR(param("/a=1?b=2", "a", 64), "(none)"); /* the path is not the query */
    /* The buffer: a value that fits exactly, and one byte more. */
    CHECK_STR(param("/p?k=12345", "k", 5), "12345");
    CHECK_STR(param("/p?k=123456", "k", 5), "(none)");
    CHECK_STR(param("/p?k=%41%42", "k", 2), "AB"); /* decoded length counts */
    /* Bad escapes and an encoded NUL are refused, not passed on. */
    CHECK_STR(param("/p?k=a%zz", "k", 64), "(none)");
    CHECK_STR(param("/p?k=a%4", "k", 64), "(none)");
    CHECK_STR(param("/p?k=a%00b", "k", 64), "(none)");
}

static void test_request_id(void)
{
    char id65[66];
    memset(id65, 'a', 65);
    id65[65] = '\0';
    CHECK(gw_request_id_valid("abc-DEF_0.9", 11));
    CHECK(gw_request_id_valid(id65, 64));
    CHECK(!gw_request_id_valid(id65, 65));
    CHECK(!gw_request_id_valid("", 0));
    const char *bad[] = {"a b", "a/b", "a:b", "a\"b", "caf\xc3\xa9", "a\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(!gw_request_id_valid(bad[i], strlen(bad[i])));
    CHECK(gw_request_id_valid("ab cd", 2)); /* only len bytes are judged */

    struct gw_request r;
    memset(&r, 0, sizeof(r));
    CHECK(gw_request_set_id(&r, "trace.1", 7));
    CHECK_STR(r.request_id, "trace.1");
    CHECK(gw_request_set_id(&r, id65, 64));
    CHECK_INT(strlen(r.request_id), 64);
    CHECK(gw_request_set_id(&r, "xy-and-more", 2));
    CHECK_STR(r.request_id, "xy");
    /* Refused: the id is left as it was. */
    CHECK(!gw_request_set_id(&r, id65, 65));
    CHECK(!gw_request_set_id(&r, "a b", 3));
    CHECK(!gw_request_set_id(&r, NULL, 0));
    CHECK_STR(r.request_id, "xy");

    gw_request_new_id(&r);
    char first[GW_REQUEST_ID];
    memcpy(first, r.request_id, sizeof(first));
    CHECK_INT(strlen(first), 32);
    CHECK_INT(strspn(first, "0123456789abcdef"), 32);
    CHECK(gw_request_id_valid(first, 32));
    gw_request_new_id(&r);
    CHECK(strcmp(first, r.request_id) != 0);
}

static void test_consumer_and_hidden_query(void)
{
    struct gw_request r;
    memset(&r, 0, sizeof(r));
    CHECK(r.consumer == NULL);
    static const char alice[] = "alice";
    gw_request_set_consumer(&r, alice);
    CHECK(r.consumer == alice);

    gw_request_hide_query(&r, "api_key");
    gw_request_hide_query(&r, "jwt");
    CHECK_INT(r.nhide_query, GW_HIDE_QUERY);
    /* Past the room, a name is not taken and nothing is overwritten. */
    gw_request_hide_query(&r, "third");
    CHECK_INT(r.nhide_query, GW_HIDE_QUERY);
    CHECK_STR(r.hide_query[0], "api_key");
    CHECK_STR(r.hide_query[1], "jwt");
}

static void test_context_slots(void)
{
    struct gw_request r;
    memset(&r, 0, sizeof(r));
    memset(r.ctx_mem, 0xa5, sizeof(r.ctx_mem)); /* a reused request's leftovers */

    unsigned char *a = gw_request_ctx(&r, 0, 24);
    CHECK(a != NULL);
    if (a != NULL) {
        static const unsigned char zero[24];
        CHECK(memcmp(a, zero, sizeof(zero)) == 0); /* zeroed on first use */
        a[0] = 7;
    }
    /* The same slot again: the same memory, not zeroed again. */
    unsigned char *again = gw_request_ctx(&r, 0, 24);
    CHECK(again == a);
    CHECK(again != NULL && again[0] == 7);
    /* Another slot: its own memory, aligned for any type. */
    unsigned char *b = gw_request_ctx(&r, GW_CTX_SLOTS - 1, 8);
    CHECK(b != NULL && b != a);
    CHECK(b != NULL && ((uintptr_t)b % 16) == 0);
    CHECK(a != NULL && b != NULL && (b >= a + 24 || b + 8 <= a));

    /* More than the room left: NULL, and nothing is taken. */
    uint32_t used = r.ctx_used, live = r.ctx_live;
    CHECK(gw_request_ctx(&r, 5, GW_CTX_BYTES) == NULL);
    CHECK_INT(r.ctx_used, used);
    CHECK_INT(r.ctx_live, live);
    /* What still fits does, to the last byte: a at 0 (24 bytes), b at 32
     * (8), the next at 48. */
    CHECK_INT(r.ctx_used, 40);
    CHECK(gw_request_ctx(&r, 5, GW_CTX_BYTES - 48 - 16) != NULL);
    CHECK(gw_request_ctx(&r, 6, 17) == NULL);
    CHECK(gw_request_ctx(&r, 6, 16) != NULL);
    CHECK_INT(r.ctx_used, GW_CTX_BYTES);
    CHECK(gw_request_ctx(&r, 7, 1) == NULL);
    /* Slots that do not exist. */
    CHECK(gw_request_ctx(&r, -1, 4) == NULL);
    CHECK(gw_request_ctx(&r, GW_CTX_SLOTS, 4) == NULL);
}

static void test_route_name_and_sink(void)
{
    struct gw_request r;
    memset(&r, 0, sizeof(r));
    CHECK_STR(gw_request_route_name(&r), ""); /* not routed: no view */

    struct gv_buf b;
    struct gw_hdr_out out;
    gv_buf_init(&b);
    gw_hdr_out_h1(&out, &b);
    CHECK_INT(gw_hdr_add(&out, "X-A", 3, "1", 1), 0);
    CHECK_INT(gw_hdr_add(&out, "X-Bee", 3, "2 and more", 1), 0); /* lengths, not strings */
    CHECK_STR(b.data, "X-A: 1\r\nX-B: 2\r\n");
    gv_buf_free(&b);
}

TEST_MAIN(TEST(test_header), TEST(test_target_and_path), TEST(test_query_param),
          TEST(test_request_id), TEST(test_consumer_and_hidden_query), TEST(test_context_slots),
          TEST(test_route_name_and_sink))
