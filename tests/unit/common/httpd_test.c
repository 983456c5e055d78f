/* httpd_test.c - the HTTP/1.1 server core on a real socket: a test handler
 * on the main thread's loop, and clients on a second thread with blocking
 * sockets. Keep-alive and pipelining in order, HTTP/1.0, 100-continue, the
 * limits (413, 431, 408, idle close, the connection cap), malformed input,
 * held, deferred and streamed answers, upgrades, and a clean stop. */
#include "common/httpc.h"
#include "common/httpd.h"
#include "test.h"

#include <llhttp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_TIMEOUT_MS 300
#define IDLE_TIMEOUT_MS 500
#define MAX_CONNS       4

static uv_loop_t loop;
static struct gv_httpd *srv;
static uv_async_t finished;
static uv_timer_t hold_timer;
static struct gv_httpd_req *held;
static char addr[32];
static bool stopped;

/* ---- the handler (loop thread) ---- */

struct ctx {
    int pieces;
};

static bool is(struct gv_httpd_req *r, const char *path)
{
    size_t len;
    const char *p = gv_httpd_path(r, &len);
    return len == strlen(path) && memcmp(p, path, len) == 0;
}

static void answer(struct gv_httpd_req *r, const char *text)
{
    gv_httpd_respond(r, 200, "Content-Type: text/plain\r\n", text, strlen(text));
}

static void later(struct gv_httpd_req *r)
{
    answer(r, "later");
}

static void on_hold_timer(uv_timer_t *t)
{
    answer(held, "held");
    held = NULL;
}

static void pull(struct gv_httpd_req *r)
{
    struct ctx *x = gv_httpd_ctx(r);
    char piece[16];
    if (x->pieces == 3) {
        gv_httpd_stream_end(r);
        return;
    }
    int n = snprintf(piece, sizeof(piece), "piece%d", x->pieces++);
    gv_httpd_stream_write(r, piece, (size_t)n);
}

static void list_headers(struct gv_httpd_req *r)
{
    char out[1024] = "";
    size_t used = 0;
    for (size_t i = 0; i < gv_httpd_nheaders(r); i++) {
        const char *n, *v;
        size_t nl, vl;
        gv_httpd_header_at(r, i, &n, &nl, &v, &vl);
        used +=
            (size_t)snprintf(out + used, sizeof(out) - used, "%.*s=%.*s;", (int)nl, n, (int)vl, v);
    }
    answer(r, out);
}

static void target(struct gv_httpd_req *r)
{
    char out[256];
    size_t pl, ql;
    const char *p = gv_httpd_path(r, &pl), *q = gv_httpd_query(r, &ql);
    snprintf(out, sizeof(out), "%s %.*s|%.*s", gv_httpd_method_name(r), (int)pl, p, (int)ql, q);
    answer(r, out);
}

static void ws_data(void *arg, struct gv_httpd_conn *c, const char *data, size_t len)
{
    char up[256] = {0};
    size_t n = len < sizeof(up) ? len : sizeof(up);
    for (size_t i = 0; i < n; i++)
        up[i] = (char)(data[i] >= 'a' && data[i] <= 'z' ? data[i] - 32 : data[i]);
    gv_httpd_tunnel_write(c, up, n);
    if (n >= 3 && memcmp(data + n - 3, "bye", 3) == 0)
        gv_httpd_tunnel_close(c);
}

static const struct gv_httpd_tunnel_ops ws_ops = {.on_data = ws_data};

static void on_request(struct gv_httpd_req *r)
{
    size_t len;
    const char *body = gv_httpd_body(r, &len);
    if (is(r, "/hello"))
        answer(r, "hello");
    else if (is(r, "/echo"))
        gv_httpd_respond(r, 200, NULL, body, len);
    else if (is(r, "/headers"))
        list_headers(r);
    else if (is(r, "/defer"))
        gv_httpd_defer(r, 50, later);
    else if (is(r, "/hold")) {
        gv_httpd_hold(r);
        held = r;
        uv_timer_start(&hold_timer, on_hold_timer, 300, 0);
    } else if (is(r, "/stream"))
        gv_httpd_stream(r, 200, NULL, -1, pull);
    else if (is(r, "/fixed"))
        gv_httpd_stream(r, 200, NULL, 18, pull);
    else if (is(r, "/ws") && gv_httpd_wants_upgrade(r))
        gv_httpd_upgrade(r, "Upgrade: test\r\nConnection: Upgrade\r\n", &ws_ops, NULL);
    else if (is(r, "/target") || gv_httpd_path(r, &len)[0] != '/')
        target(r);
    else
        gv_httpd_respond(r, 404, NULL, "", 0);
}

static const struct gv_httpd_ops ops = {.ctx_size = sizeof(struct ctx), .on_request = on_request};

/* ---- clients (second thread) ---- */

static int dial(void)
{
    char err[128];
    int fd = gv_httpc_connect(addr, 5000, err, sizeof(err));
    if (fd < 0)
        fprintf(stderr, "connect %s: %s\n", addr, err);
    return fd;
}

static void put(int fd, const char *s)
{
    CHECK_INT(send(fd, s, strlen(s), MSG_NOSIGNAL), strlen(s));
}

/* Reads until the peer closes or ms pass; returns the bytes (NUL-terminated). */
static size_t drain(int fd, char *buf, size_t cap, int ms)
{
    size_t got = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (got + 1 < cap && poll(&p, 1, ms) == 1) {
        ssize_t n = recv(fd, buf + got, cap - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    return got;
}

/* Reads until text has arrived (or 3 s pass). */
static bool wait_for(int fd, char *buf, size_t cap, const char *text)
{
    size_t got = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    buf[0] = '\0';
    while (strstr(buf, text) == NULL && got + 1 < cap && poll(&p, 1, 3000) == 1) {
        ssize_t n = recv(fd, buf + got, cap - 1 - got, 0);
        if (n <= 0)
            break;
        buf[got += (size_t)n] = '\0';
    }
    return strstr(buf, text) != NULL;
}

/* One request on a new connection; the answer parsed into p. */
static int fetch(const char *req, struct gv_httpc *p)
{
    static const struct gv_httpc_options o = {.max_body_bytes = 1 << 20, .keep_headers = true};
    char err[128];
    int fd = dial();
    gv_httpc_init(p, &o);
    int rc = gv_httpc_exchange(fd, req, strlen(req), p, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "exchange: %s\n", err);
    close(fd);
    return rc;
}

static bool body_is(const struct gv_httpc *p, const char *text)
{
    return p->body.len == strlen(text) && memcmp(p->body.data, text, p->body.len) == 0;
}

static void test_pipelining(void)
{
    char buf[4096];
    int fd = dial();
    put(fd, "GET /defer HTTP/1.1\r\nHost: x\r\n\r\n"
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirst"
            "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(wait_for(fd, buf, sizeof(buf), "hello"));
    char *a = strstr(buf, "later"), *b = strstr(buf, "first"), *c = strstr(buf, "hello");
    CHECK(a != NULL && b != NULL && a < b && b < c);
    CHECK(strstr(buf, "Connection:") == NULL);
    close(fd);
}

static void test_http10_and_continue(void)
{
    char buf[4096];
    int fd = dial();
    put(fd, "GET /hello HTTP/1.0\r\n\r\n");
    drain(fd, buf, sizeof(buf), 3000); /* closed after the answer */
    CHECK(strstr(buf, "Connection: close\r\n") != NULL && strstr(buf, "hello") != NULL);
    close(fd);

    fd = dial();
    put(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    CHECK(wait_for(fd, buf, sizeof(buf), "\r\n\r\n"));
    CHECK_STR(buf, "HTTP/1.1 100 Continue\r\n\r\n");
    put(fd, "body");
    CHECK(wait_for(fd, buf, sizeof(buf), "body"));
    CHECK(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
    close(fd);
}

static void test_body_limits(void)
{
    char buf[4096];
    int fd = dial(); /* said by Content-Length: answered before the body */
    put(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\nsome");
    drain(fd, buf, sizeof(buf), 3000);
    CHECK(strncmp(buf, "HTTP/1.1 413 Content Too Large\r\n", 32) == 0);
    CHECK(strstr(buf, "{\"error\":\"request body too large\"}") != NULL);
    close(fd);

    fd = dial(); /* chunked: answered once it is over */
    put(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    char chunk[700];
    memset(chunk, 'x', sizeof(chunk));
    memcpy(chunk, "2b5\r\n", 5); /* 693 bytes of x */
    memcpy(chunk + sizeof(chunk) - 2, "\r\n", 2);
    for (int i = 0; i < 2; i++)
        CHECK_INT(send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL), sizeof(chunk));
    drain(fd, buf, sizeof(buf), 3000);
    CHECK(strncmp(buf, "HTTP/1.1 413 ", 13) == 0);
    close(fd);
}

static void test_head_limits_and_malformed(void)
{
    struct gv_httpc p;
    char req[2048];
    snprintf(req, sizeof(req), "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: %01100d\r\n\r\n", 0);
    CHECK_INT(fetch(req, &p), 0);
    CHECK_INT(p.status, 431);
    CHECK_STR(gv_httpc_header(&p, "connection"), "close");
    gv_httpc_free(&p);
    strcpy(req, "GET /hello HTTP/1.1\r\n");
    for (int i = 0; i < 11; i++)
        sprintf(req + strlen(req), "X-%d: %d\r\n", i, i);
    strcat(req, "\r\n");
    CHECK_INT(fetch(req, &p), 0);
    CHECK_INT(p.status, 431);
    gv_httpc_free(&p);
    CHECK_INT(
        fetch("GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", &p), 0);
    CHECK_INT(p.status, 400);
    CHECK(p.body.len > 0 && strstr(p.body.data, "bad request: ") != NULL);
    gv_httpc_free(&p);
    CHECK_INT(fetch("GET /hello HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n", &p), 0);
    CHECK_INT(p.status, 400);
    gv_httpc_free(&p);
}

static void test_timeouts(void)
{
    char buf[1024];
    int fd = dial();
    put(fd, "GET /hello HTTP/1.1\r\nHo");
    drain(fd, buf, sizeof(buf), 3000);
    CHECK(strncmp(buf, "HTTP/1.1 408 ", 13) == 0 && strstr(buf, "head not received") != NULL);
    close(fd);

    fd = dial();
    put(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    drain(fd, buf, sizeof(buf), 3000);
    CHECK(strncmp(buf, "HTTP/1.1 408 ", 13) == 0 && strstr(buf, "body not received") != NULL);
    close(fd);

    fd = dial(); /* idle after an answer: closed without a word */
    put(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(wait_for(fd, buf, sizeof(buf), "hello"));
    CHECK_INT(drain(fd, buf, sizeof(buf), 3000), 0);
    close(fd);
}

static void test_connection_cap(void)
{
    char buf[1024];
    int fds[MAX_CONNS];
    for (int i = 0; i < MAX_CONNS; i++)
        fds[i] = dial();
    int extra = dial();
    drain(extra, buf, sizeof(buf), 2000);
    CHECK(buf[0] == '\0' || strncmp(buf, "HTTP/1.1 503 ", 13) == 0);
    close(extra);
    put(fds[0], "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"); /* the others are served */
    CHECK(wait_for(fds[0], buf, sizeof(buf), "hello"));
    for (int i = 0; i < MAX_CONNS; i++)
        close(fds[i]);
}

static void test_held_and_streamed(void)
{
    struct gv_httpc p;
    int fd = dial(); /* a client that goes before its held answer */
    put(fd, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    close(fd);
    usleep(400 * 1000);
    CHECK_INT(fetch("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n", &p), 0);
    CHECK(body_is(&p, "held"));
    gv_httpc_free(&p);
    CHECK_INT(fetch("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", &p), 0);
    CHECK(body_is(&p, "piece0piece1piece2"));
    CHECK_STR(gv_httpc_header(&p, "transfer-encoding"), "chunked");
    gv_httpc_free(&p);
    CHECK_INT(fetch("GET /stream HTTP/1.0\r\n\r\n", &p), 0); /* close-delimited */
    CHECK(body_is(&p, "piece0piece1piece2"));
    gv_httpc_free(&p);
    CHECK_INT(fetch("GET /fixed HTTP/1.1\r\nHost: x\r\n\r\n", &p), 0);
    CHECK(body_is(&p, "piece0piece1piece2"));
    CHECK_STR(gv_httpc_header(&p, "content-length"), "18");
    gv_httpc_free(&p);
}

static void test_request_parts(void)
{
    struct gv_httpc p;
    CHECK_INT(fetch("GET http://x.test/target?a=b&c HTTP/1.1\r\nHost: x\r\n\r\n", &p), 0);
    CHECK(body_is(&p, "GET /target|a=b&c"));
    gv_httpc_free(&p);
    CHECK_INT(fetch("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", &p), 0);
    CHECK(body_is(&p, "OPTIONS *|"));
    gv_httpc_free(&p);
    CHECK_INT(fetch("POST /headers HTTP/1.1\r\nHost: x\r\nEmpty:\r\nTransfer-Encoding: "
                    "chunked\r\n\r\n1\r\nz\r\n0\r\nX-T: t\r\n\r\n",
                    &p),
              0);
    CHECK(body_is(&p, "Host=x;Empty=;Transfer-Encoding=chunked;X-T=t;"));
    gv_httpc_free(&p);
}

static void test_upgrade(void)
{
    char buf[1024];
    int fd = dial(); /* the first tunnel bytes come with the request */
    put(fd, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\nearly");
    CHECK(wait_for(fd, buf, sizeof(buf), "EARLY"));
    CHECK(strncmp(buf, "HTTP/1.1 101 Switching Protocols\r\n", 34) == 0);
    put(fd, "more bye");
    drain(fd, buf, sizeof(buf), 3000);
    CHECK_STR(buf, "MORE BYE");
    close(fd);

    fd = dial(); /* an upgrade the handler does not take: answered, closed */
    put(fd, "GET /hello HTTP/1.1\r\nHost: x\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n");
    drain(fd, buf, sizeof(buf), 3000);
    CHECK(strstr(buf, "Connection: close\r\n") != NULL && strstr(buf, "hello") != NULL);
    close(fd);
}

static void *clients(void *arg)
{
    test_pipelining();
    test_http10_and_continue();
    test_body_limits();
    test_head_limits_and_malformed();
    test_timeouts();
    test_connection_cap();
    test_held_and_streamed();
    test_request_parts();
    test_upgrade();
    uv_async_send(&finished);
    return NULL;
}

/* ---- the loop (main thread) ---- */

static void on_stopped(void *arg)
{
    stopped = true;
}

static void on_finished(uv_async_t *a)
{
    gv_httpd_stop(srv, false, on_stopped, NULL);
    uv_close((uv_handle_t *)a, NULL);
    uv_close((uv_handle_t *)&hold_timer, NULL);
}

static void test_server(void)
{
    struct sockaddr_in sin;
    struct sockaddr_storage ss;
    struct gv_httpd_config cfg = {
        .ops = &ops,
        .limits = {.max_head_bytes = 1024,
                   .max_headers = 10,
                   .max_body_bytes = 1000,
                   .head_timeout_ms = HEAD_TIMEOUT_MS,
                   .body_timeout_ms = HEAD_TIMEOUT_MS,
                   .idle_timeout_ms = IDLE_TIMEOUT_MS,
                   .max_conns = MAX_CONNS},
    };
    pthread_t t;
    uv_loop_init(&loop);
    uv_ip4_addr("127.0.0.1", 0, &sin);
    CHECK_INT(gv_httpd_start(&loop, (struct sockaddr *)&sin, &cfg, &srv), 0);
    CHECK_INT(gv_httpd_sockname(srv, &ss), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(((struct sockaddr_in *)&ss)->sin_port));
    uv_async_init(&loop, &finished, on_finished);
    uv_timer_init(&loop, &hold_timer);
    pthread_create(&t, NULL, clients, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(t, NULL);
    CHECK(stopped);
    CHECK_INT(uv_loop_close(&loop), 0);
}

static void test_reasons(void)
{
    CHECK_STR(gv_http_reason(413), "Content Too Large");
    CHECK_STR(gv_http_reason(799), "Unknown");
}

TEST_MAIN(TEST(test_server), TEST(test_reasons))
