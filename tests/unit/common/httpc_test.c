/* httpc_test.c - the HTTP/1.1 client core's response parser: framing
 * (Content-Length, chunked, close-delimited, HEAD), interim 1xx heads,
 * head-only parsing, limits and malformed input; and request heads. */
#include "common/err.h"
#include "common/httpc.h"
#include "test.h"

#include <string.h>

static const struct gv_httpc_options whole = {
    .max_head_bytes = 1024, .max_body_bytes = 64, .keep_headers = true};

/* Feeds text one byte at a time; returns the last result. */
static int feed_bytes(struct gv_httpc *p, const char *text)
{
    int rc = 0;
    for (size_t i = 0; text[i] != '\0' && rc == 0; i++)
        rc = gv_httpc_feed(p, text + i, 1);
    return rc;
}

static void test_content_length(void)
{
    struct gv_httpc p;
    gv_httpc_init(&p, &whole);
    CHECK_INT(feed_bytes(&p, "HTTP/1.1 201 Created\r\nX-A: one\r\nx-b:\r\nContent-Length: 5\r\n"
                             "\r\nhello"),
              1);
    CHECK_INT(p.status, 201);
    CHECK_INT(p.body.len, 5);
    CHECK(p.body.data != NULL && memcmp(p.body.data, "hello", 5) == 0);
    CHECK_STR(gv_httpc_header(&p, "x-a"), "one");
    CHECK_STR(gv_httpc_header(&p, "X-B"), "");
    CHECK_STR(gv_httpc_header(&p, "content-length"), "5");
    CHECK(gv_httpc_header(&p, "x-c") == NULL);
    /* bytes after a complete answer change nothing */
    CHECK_INT(gv_httpc_feed(&p, "junk", 4), 1);
    gv_httpc_free(&p);
}

static void test_chunked_and_interim(void)
{
    static const char text[] = "HTTP/1.1 100 Continue\r\n\r\n"
                               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n";
    struct gv_httpc p;
    gv_httpc_init(&p, &whole);
    CHECK_INT(gv_httpc_feed(&p, text, sizeof(text) - 1), 1);
    CHECK_INT(p.status, 200);
    CHECK_INT(p.body.len, 5);
    CHECK(p.body.data != NULL && memcmp(p.body.data, "abcde", 5) == 0);
    CHECK(gv_httpc_header(&p, "x-trailer") == NULL); /* trailers are not headers */
    gv_httpc_free(&p);
}

static void test_close_delimited(void)
{
    struct gv_httpc p;
    gv_httpc_init(&p, &whole);
    CHECK_INT(feed_bytes(&p, "HTTP/1.0 200 OK\r\n\r\nuntil the end"), 0);
    CHECK_INT(gv_httpc_finish(&p), 1);
    CHECK_INT(p.body.len, 13);
    gv_httpc_free(&p);

    gv_httpc_init(&p, &whole); /* a Content-Length body cut short */
    CHECK_INT(feed_bytes(&p, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort"), 0);
    CHECK_INT(gv_httpc_finish(&p), GV_EPROTO);
    CHECK_STR(gv_httpc_error(&p), "connection closed before the response ended");
    gv_httpc_free(&p);
}

static void test_head_only_and_head_request(void)
{
    struct gv_httpc_options o = {.head_only = true};
    struct gv_httpc p;
    gv_httpc_init(&p, &o);
    CHECK_INT(feed_bytes(&p, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100\r\n\r\n"), 1);
    CHECK_INT(p.status, 503);
    CHECK(p.hdr.data == NULL && p.body.data == NULL); /* nothing allocated */

    o = (struct gv_httpc_options){.head_request = true};
    gv_httpc_init(&p, &o);
    CHECK_INT(feed_bytes(&p, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"), 1);
    CHECK_INT(p.body.len, 0);
    gv_httpc_free(&p);
}

static void test_limits_and_malformed(void)
{
    struct gv_httpc p;
    gv_httpc_init(&p, &whole);
    CHECK_INT(feed_bytes(&p, "HTTP/1.1 200 OK\r\nContent-Length: 65\r\n\r\n"), 0);
    char body[65];
    memset(body, 'x', sizeof(body));
    CHECK_INT(gv_httpc_feed(&p, body, sizeof(body)), GV_ERANGE);
    CHECK_STR(gv_httpc_error(&p), "response body too large");
    CHECK_INT(gv_httpc_feed(&p, "x", 1), GV_ERANGE); /* stays failed */
    gv_httpc_free(&p);

    struct gv_httpc_options small = {.max_head_bytes = 16};
    gv_httpc_init(&p, &small);
    CHECK_INT(feed_bytes(&p, "HTTP/1.1 200 OK\r\nX-Long: 0123456789abcdef\r\n\r\n"), GV_ERANGE);
    gv_httpc_free(&p);

    gv_httpc_init(&p, &whole);
    CHECK_INT(feed_bytes(&p, "HTTX/1.1 200 OK\r\n\r\n"), GV_EPROTO);
    CHECK(gv_httpc_error(&p)[0] != '\0');
    gv_httpc_free(&p);

    gv_httpc_init(&p, &whole); /* smuggling shapes are refused too */
    CHECK_INT(feed_bytes(&p, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
              GV_EPROTO);
    gv_httpc_free(&p);
}

static void test_request_head(void)
{
    struct gv_buf b;
    gv_buf_init(&b);
    CHECK_INT(gv_httpc_put_request(&b, "PUT", "/x", "h:1", "A: b\r\n", 3), 0);
    CHECK_STR(b.data, "PUT /x HTTP/1.1\r\nHost: h:1\r\nA: b\r\nContent-Length: 3\r\n\r\n");
    gv_buf_reset(&b);
    CHECK_INT(gv_httpc_put_request(&b, "GET", "/", "h", NULL, -1), 0);
    CHECK_STR(b.data, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    gv_buf_free(&b);
}

TEST_MAIN(TEST(test_content_length), TEST(test_chunked_and_interim), TEST(test_close_delimited),
          TEST(test_head_only_and_head_request), TEST(test_limits_and_malformed),
          TEST(test_request_head))
