/* echo.c - `grapevine echo`: the test upstream on common/httpd.h, answering
 * each request with a JSON description of it (see echo.h); its WebSocket is
 * ws.c. */
#include "node/echo/echo.h"
#include "node/echo/echo_int.h"
#include "gateway/tls.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/httpd.h"
#include "common/log.h"
#include "common/util.h"

#include <jansson.h>
#include <llhttp.h>
#include <uv.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_LISTEN "127.0.0.1:9001"
#define DEFAULT_NAME   "echo"
#define MAX_HEAD_BYTES (64 * 1024)
#define PIECE_SIZE     (64 * 1024)
#define MAX_DELAY_MS   600000
#define BACKLOG        511

struct echo_server {
    uv_loop_t loop;
    struct gv_httpd *http;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    const char *name;
    bool failing; /* POST /fail .. POST /recover */
    /* GET /stats: how many GET /healthz (probes) and other requests came,
     * so a test can count the health probes a target receives. */
    uint64_t healthz_hits;
    uint64_t requests;
    /* --tls-cert/--tls-key: every connection is TLS; /stats counts the
     * handshakes (and the resumed ones) so a test can see connection reuse. */
    struct gw_tls_ctxset *tls;
    uint64_t tls_handshakes;
    uint64_t tls_resumed;
};

/* Per request, in the core's request memory. */
struct echo_req {
    uint64_t body_bytes; /* counted as it streams in, never kept */
    uint64_t left, sent; /* /bytes/N: body bytes still to send, and sent */
};

/* /bytes/N bodies are "abc...xyzabc..." without a break: a piece that
 * starts at body offset o is read from piece_data + o % 26. */
static char piece_data[PIECE_SIZE + 26];

/* ---- small helpers ---- */

/* A JSON string from bytes that may not be UTF-8: invalid input is retried
 * with every non-ASCII byte replaced by '?', so an answer is always built. */
static json_t *json_bytes(const char *p, size_t n)
{
    json_t *s = json_stringn(p, n);
    if (s != NULL || n == 0)
        return s != NULL ? s : json_string("");
    char *copy = malloc(n);
    if (copy == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        copy[i] = (unsigned char)p[i] < 0x80 ? p[i] : '?';
    s = json_stringn(copy, n);
    free(copy);
    return s;
}

/* Parses a decimal number of at most max; returns 0 or GV_EINVAL. */
static int parse_u64(const char *p, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 20)
        return GV_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return GV_EINVAL;
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (max - d) / 10)
            return GV_EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* True when the &-separated query has "name" or "name=1"/"name=true". */
static bool query_flag(const char *q, size_t qlen, const char *name)
{
    size_t nlen = strlen(name);
    size_t i = 0;
    while (i < qlen) {
        const char *amp = memchr(q + i, '&', qlen - i);
        size_t end = amp != NULL ? (size_t)(amp - q) : qlen;
        const char *item = q + i;
        size_t ilen = end - i;
        if (ilen >= nlen && memcmp(item, name, nlen) == 0) {
            const char *v = item + nlen;
            size_t vlen = ilen - nlen;
            if (vlen == 0 || (vlen == 2 && memcmp(v, "=1", 2) == 0) ||
                (vlen == 5 && memcmp(v, "=true", 5) == 0))
                return true;
        }
        i = end + 1;
    }
    return false;
}

/* ---- TLS: gateway's engine as the core's transport ---- */

struct echo_tls {
    struct gw_tls *tls;
    struct echo_server *srv;
    bool counted; /* its handshake is in tls_handshakes */
};

static void *tls_open(void *arg)
{
    struct echo_server *srv = arg;
    struct echo_tls *e = calloc(1, sizeof(*e));
    if (e != NULL && (e->tls = gw_tls_new(srv->tls)) == NULL) {
        free(e);
        e = NULL;
    }
    if (e != NULL)
        e->srv = srv;
    return e;
}

static int tls_feed(void *eng, const void *data, size_t len)
{
    return gw_tls_feed(((struct echo_tls *)eng)->tls, data, len) == 0 ? 0 : GV_EPROTO;
}

/* Decrypts, counting the handshake once it is done. */
static int tls_read(void *eng, void *buf, size_t cap)
{
    struct echo_tls *e = eng;
    int n = gw_tls_read(e->tls, buf, cap);
    if (!e->counted && gw_tls_handshake_done(e->tls)) {
        e->counted = true;
        e->srv->tls_handshakes++;
        if (gw_tls_session_reused(e->tls))
            e->srv->tls_resumed++;
    }
    return n;
}

static int tls_write(void *eng, const void *data, size_t len)
{
    return gw_tls_write(((struct echo_tls *)eng)->tls, data, len) == 0 ? 0 : GV_EPROTO;
}

static size_t tls_pending(void *eng)
{
    return gw_tls_output_pending(((struct echo_tls *)eng)->tls);
}

static size_t tls_take(void *eng, void *buf, size_t cap)
{
    return gw_tls_take_output(((struct echo_tls *)eng)->tls, buf, cap);
}

static void tls_close(void *eng)
{
    struct echo_tls *e = eng;
    gw_tls_free(e->tls);
    free(e);
}

static const struct gv_httpd_transport tls_transport = {
    .open = tls_open,
    .feed = tls_feed,
    .read = tls_read,
    .write = tls_write,
    .pending = tls_pending,
    .take_output = tls_take,
    .close = tls_close,
};

/* ---- answers ---- */

/* Answers with body as JSON (taken over); a 204 or 304 carries nothing. */
static void send_json(struct gv_httpd_req *r, int status, json_t *body)
{
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) {
        gv_httpd_respond(r, 500, NULL, "", 0);
        return;
    }
    bool bodiless = status == 204 || status == 304;
    gv_httpd_respond(r, status, bodiless ? NULL : "Content-Type: application/json\r\n", text,
                     strlen(text));
    free(text);
}

static void send_error(struct gv_httpd_req *r, int status, const char *msg)
{
    send_json(r, status, json_pack("{ss}", "error", msg));
}

/* Appends header i's value to what o holds under its lower-case name
 * (joined with ", "). A value that is not UTF-8 gets '?'s; a name that is
 * not is dropped. */
static int add_header(json_t *o, struct gv_httpd_req *r, size_t i, struct gv_buf *name,
                      struct gv_buf *value)
{
    const char *n, *v;
    size_t nl, vl;
    gv_httpd_header_at(r, i, &n, &nl, &v, &vl);
    gv_buf_reset(name);
    gv_buf_reset(value);
    if (gv_buf_append(name, n, nl + 1) != 0)
        return GV_ENOMEM;
    for (size_t k = 0; k < nl; k++)
        name->data[k] = (char)tolower((unsigned char)name->data[k]);
    const char *old = json_string_value(json_object_get(o, name->data));
    if (old != NULL && (gv_buf_puts(value, old) != 0 || gv_buf_puts(value, ", ") != 0))
        return GV_ENOMEM;
    if (gv_buf_append(value, v, vl) != 0)
        return GV_ENOMEM;
    json_object_set_new(o, name->data, json_bytes(value->data, value->len));
    return 0;
}

/* The request's headers (and trailers) as {"name": "value"}. */
static json_t *headers_json(struct gv_httpd_req *r)
{
    json_t *o = json_object();
    struct gv_buf name, value;
    gv_buf_init(&name);
    gv_buf_init(&value);
    for (size_t i = 0; o != NULL && i < gv_httpd_nheaders(r); i++) {
        if (add_header(o, r, i, &name, &value) != 0) {
            json_decref(o);
            o = NULL;
        }
    }
    gv_buf_free(&name);
    gv_buf_free(&value);
    return o;
}

static void answer_echo(struct gv_httpd_req *r, int status)
{
    struct echo_server *srv = gv_httpd_arg(r);
    struct echo_req *x = gv_httpd_ctx(r);
    size_t plen, qlen;
    const char *path = gv_httpd_path(r, &plen), *query = gv_httpd_query(r, &qlen);
    json_t *body = json_object();
    if (body != NULL) {
        json_object_set_new(body, "name", json_string(srv->name));
        json_object_set_new(body, "method", json_string(gv_httpd_method_name(r)));
        json_object_set_new(body, "path", json_bytes(path, plen));
        json_object_set_new(body, "query", json_bytes(query, qlen));
        json_object_set_new(body, "headers", headers_json(r));
        json_object_set_new(body, "body_bytes", json_integer((json_int_t)x->body_bytes));
    }
    if (body != NULL && json_object_size(body) != 6) {
        json_decref(body);
        body = NULL;
    }
    send_json(r, status, body);
}

static void answer_delayed(struct gv_httpd_req *r)
{
    answer_echo(r, 200);
}

/* The next piece of /bytes/N, once the previous one has gone. */
static void pull_bytes(struct gv_httpd_req *r)
{
    struct echo_req *x = gv_httpd_ctx(r);
    if (x->left == 0) {
        gv_httpd_stream_end(r);
        return;
    }
    size_t len = (size_t)GV_MIN(x->left, (uint64_t)PIECE_SIZE);
    const char *piece = piece_data + x->sent % 26;
    x->left -= len;
    x->sent += len;
    gv_httpd_stream_write(r, piece, len);
}

static void send_bytes(struct gv_httpd_req *r, uint64_t n, bool chunked)
{
    struct echo_req *x = gv_httpd_ctx(r);
    x->left = n;
    gv_httpd_stream(r, 200, "Content-Type: application/octet-stream\r\n", chunked ? -1 : (int64_t)n,
                    pull_bytes);
}

/* ---- requests ---- */

/* For paths like "/delay/MS": 1 with *n set when path is prefix and a
 * number in min..max, -1 when it is prefix and something else, 0 when it does
 * not start with prefix. */
static int path_number(const char *path, size_t plen, const char *prefix, uint64_t min,
                       uint64_t max, uint64_t *n)
{
    size_t pl = strlen(prefix);
    if (plen < pl || memcmp(path, prefix, pl) != 0)
        return 0;
    if (parse_u64(path + pl, plen - pl, max, n) != 0 || *n < min)
        return -1;
    return 1;
}

static bool path_is(const char *path, size_t plen, const char *s)
{
    return plen == strlen(s) && memcmp(path, s, plen) == 0;
}

static void answer_stats(struct echo_server *srv, struct gv_httpd_req *r)
{
    json_t *st = json_pack("{sssIsI}", "name", srv->name, "healthz", (json_int_t)srv->healthz_hits,
                           "requests", (json_int_t)srv->requests);
    if (st != NULL && srv->tls != NULL) {
        json_object_set_new(st, "tls_handshakes", json_integer((json_int_t)srv->tls_handshakes));
        json_object_set_new(st, "tls_resumed", json_integer((json_int_t)srv->tls_resumed));
    }
    send_json(r, 200, st);
}

/* The test endpoints that take a number (/bytes/N, /delay/MS,
 * /status/CODE); false when path is none of them. */
static bool answer_numbered(struct gv_httpd_req *r, const char *path, size_t plen)
{
    size_t qlen;
    const char *query = gv_httpd_query(r, &qlen);
    uint64_t n = 0;
    int num = path_number(path, plen, "/bytes/", 0, INT64_MAX, &n);
    if (num > 0)
        send_bytes(r, n, query_flag(query, qlen, "chunked"));
    else if (num < 0)
        send_error(r, 400, "/bytes/N: N must be a byte count");
    if (num != 0)
        return true;
    num = path_number(path, plen, "/delay/", 0, MAX_DELAY_MS, &n);
    if (num > 0)
        gv_httpd_defer(r, n, answer_delayed);
    else if (num < 0)
        send_error(r, 400, "/delay/MS: MS must be 0..600000");
    if (num != 0)
        return true;
    num = path_number(path, plen, "/status/", 200, 599, &n);
    if (num > 0)
        answer_echo(r, (int)n);
    else if (num < 0)
        send_error(r, 400, "/status/CODE: CODE must be 200..599");
    return num != 0;
}

static void on_request(struct gv_httpd_req *r)
{
    struct echo_server *srv = gv_httpd_arg(r);
    int method = gv_httpd_method(r), status;
    size_t plen;
    const char *path = gv_httpd_path(r, &plen);
    /* Upgrades elsewhere (and CONNECT) are answered; the core then closes. */
    if (gv_httpd_wants_upgrade(r) && path_is(path, plen, "/ws")) {
        if ((status = echo_ws_accept(r)) != 0)
            send_error(r, status, "bad WebSocket handshake");
        return;
    }
    if (path_is(path, plen, "/stats") && method == HTTP_GET) {
        answer_stats(srv, r);
        return;
    }
    if (path_is(path, plen, "/healthz") && (method == HTTP_GET || method == HTTP_HEAD)) {
        srv->healthz_hits++;
        const char *st = srv->failing ? "failing" : "ok";
        send_json(r, srv->failing ? 503 : 200, json_pack("{ss}", "status", st));
        return;
    }
    srv->requests++;
    if (path_is(path, plen, "/fail") && method == HTTP_POST)
        srv->failing = true;
    if (path_is(path, plen, "/recover") && method == HTTP_POST)
        srv->failing = false;
    if (!answer_numbered(r, path, plen))
        answer_echo(r, 200);
}

/* Bodies are counted as they stream in, never kept. */
static int on_body(struct gv_httpd_req *r, const char *data, size_t len)
{
    ((struct echo_req *)gv_httpd_ctx(r))->body_bytes += len;
    return 0;
}

static const struct gv_httpd_ops echo_ops = {
    .ctx_size = sizeof(struct echo_req),
    .on_body = on_body,
    .on_request = on_request,
};

/* ---- the command ---- */

static void on_stop_signal(uv_signal_t *sig, int signum)
{
    struct echo_server *srv = sig->data;
    gv_info("echo %s: signal %d, stopping", srv->name, signum);
    gv_httpd_stop(srv->http, true, NULL, NULL);
    uv_close((uv_handle_t *)&srv->sigterm, NULL);
    uv_close((uv_handle_t *)&srv->sigint, NULL);
}

static void usage(void)
{
    fprintf(stderr, "usage: grapevine echo [--listen ADDR:PORT] [--name NAME]\n"
                    "                      [--tls-cert PEM --tls-key PEM]\n"
                    "  --listen    default " DEFAULT_LISTEN "\n"
                    "  --name      default " DEFAULT_NAME "\n"
                    "  --tls-cert  serve TLS with this certificate chain (and --tls-key)\n");
}

/* Resolves "host:port" (port 0 allowed) into a socket address. */
static int resolve_listen(const char *spec, struct sockaddr_storage *ss)
{
    char host[256];
    uint16_t port = 0;
    char tmp[300];
    size_t len = strlen(spec);
    /* gv_split_hostport refuses port 0; here it means "any free port". */
    if (len >= 2 && len < sizeof(tmp) && strcmp(spec + len - 2, ":0") == 0) {
        memcpy(tmp, spec, len + 1);
        tmp[len - 1] = '1';
        if (gv_split_hostport(tmp, host, sizeof(host), &port) != 0)
            return GV_EINVAL;
        port = 0;
    } else if (gv_split_hostport(spec, host, sizeof(host), &port) != 0) {
        return GV_EINVAL;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL)
        return GV_ENOENT;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    return 0;
}

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port;
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, sizeof(ip));
        port = ntohs(a->sin6_port);
        snprintf(out, outlen, "[%s]:%d", ip, port);
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, ip, sizeof(ip));
        port = ntohs(a->sin_port);
        snprintf(out, outlen, "%s:%d", ip, port);
    }
}

struct echo_args {
    const char *listen, *name, *tls_cert, *tls_key;
};

/* The option argv[*i] names, with its value (from "--opt=VALUE" or the next
 * argument, which *i then skips). 0, or 2 after a message (exit status). */
static int take_option(int argc, char **argv, int *i, struct echo_args *a)
{
    static const struct {
        const char *name;
        size_t off;
    } opts[] = {{"--listen", offsetof(struct echo_args, listen)},
                {"--name", offsetof(struct echo_args, name)},
                {"--tls-cert", offsetof(struct echo_args, tls_cert)},
                {"--tls-key", offsetof(struct echo_args, tls_key)}};
    const char *arg = argv[*i];
    for (size_t k = 0; k < GV_ARRAY_LEN(opts); k++) {
        size_t n = strlen(opts[k].name);
        if (strncmp(arg, opts[k].name, n) != 0 || (arg[n] != '\0' && arg[n] != '='))
            continue;
        const char **dst = (const char **)((char *)a + opts[k].off);
        if (arg[n] == '=') {
            *dst = arg + n + 1;
        } else if (*i + 1 < argc) {
            *dst = argv[++*i];
        } else {
            fprintf(stderr, "grapevine echo: %s needs a value\n", arg);
            return 2;
        }
        return 0;
    }
    fprintf(stderr, "grapevine echo: unknown argument \"%s\"\n", arg);
    usage();
    return 2;
}

/* The command line into a; -1 for --help (done), 0, or 2 (usage). */
static int parse_args(int argc, char **argv, struct echo_args *a)
{
    *a = (struct echo_args){.listen = DEFAULT_LISTEN, .name = DEFAULT_NAME};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage();
            return -1;
        }
        if (take_option(argc, argv, &i, a) != 0)
            return 2;
    }
    if (a->name[0] == '\0' || strpbrk(a->name, "\r\n") != NULL) {
        fprintf(stderr, "grapevine echo: --name must be one non-empty line\n");
        return 2;
    }
    if ((a->tls_cert == NULL) != (a->tls_key == NULL)) {
        fprintf(stderr, "grapevine echo: --tls-cert and --tls-key go together\n");
        return 2;
    }
    return 0;
}

/* The listen address and the TLS certificates; 0, or 2 after a message. */
static int prepare(const struct echo_args *a, struct sockaddr_storage *addr,
                   struct gw_tls_ctxset **tls)
{
    int rc = resolve_listen(a->listen, addr);
    if (rc != 0) {
        fprintf(stderr, "grapevine echo: --listen %s: %s\n", a->listen,
                rc == GV_EINVAL ? "expected ADDR:PORT" : "cannot resolve the address");
        return 2;
    }
    *tls = NULL;
    if (a->tls_cert != NULL) {
        char err[256];
        struct gw_tls_certfile f = {.cert = a->tls_cert, .key = a->tls_key};
        if (gw_tls_ctxset_load(&f, 1, tls, err, sizeof(err)) != 0) {
            fprintf(stderr, "grapevine echo: %s\n", err);
            return 2;
        }
    }
    return 0;
}

/* Listens and logs where; 0 or a negative error (logged). */
static int listen_on(struct echo_server *srv, const struct sockaddr_storage *addr,
                     const char *listen)
{
    char headers[256 + 64], where[INET6_ADDRSTRLEN + 16];
    snprintf(headers, sizeof(headers), "Server: grapevine-echo\r\nX-Echo-Name: %s\r\n", srv->name);
    struct gv_httpd_config cfg = {
        .ops = &echo_ops,
        .arg = srv,
        .transport = srv->tls != NULL ? &tls_transport : NULL,
        .transport_arg = srv,
        .limits = {.max_head_bytes = MAX_HEAD_BYTES},
        .extra_headers = headers,
        .backlog = BACKLOG,
    };
    /* libuv sets SO_REUSEADDR on the socket before it binds. */
    int rc = gv_httpd_start(&srv->loop, (const struct sockaddr *)addr, &cfg, &srv->http);
    if (rc != 0) {
        gv_error("echo %s: cannot listen on %s: %s", srv->name, listen, uv_strerror(rc));
        return rc;
    }
    struct sockaddr_storage bound;
    if (gv_httpd_sockname(srv->http, &bound) == 0)
        format_addr(&bound, where, sizeof(where));
    else
        snprintf(where, sizeof(where), "%s", listen);
    gv_info("echo %s listening on %s", srv->name, where);
    return 0;
}

/* Serves until SIGTERM or SIGINT; the process exit status. */
static int serve(struct echo_server *srv, const struct sockaddr_storage *addr, const char *listen)
{
    int rc = uv_loop_init(&srv->loop);
    if (rc != 0) {
        gv_error("echo: loop: %s", uv_strerror(rc));
        return 1;
    }
    uv_signal_init(&srv->loop, &srv->sigterm);
    uv_signal_init(&srv->loop, &srv->sigint);
    srv->sigterm.data = srv->sigint.data = srv;
    /* watched before the port opens: a SIGTERM as soon as it answers is a
     * clean stop (exit 0), not the default action's kill */
    uv_signal_start(&srv->sigterm, on_stop_signal, SIGTERM);
    uv_signal_start(&srv->sigint, on_stop_signal, SIGINT);
    int status = listen_on(srv, addr, listen) == 0 ? 0 : 1;
    if (status != 0) {
        uv_close((uv_handle_t *)&srv->sigterm, NULL);
        uv_close((uv_handle_t *)&srv->sigint, NULL);
    }
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    uv_loop_close(&srv->loop);
    return status;
}

int node_echo_main(int argc, char **argv)
{
    struct echo_args a;
    struct sockaddr_storage addr;
    struct gw_tls_ctxset *tls;
    int rc = parse_args(argc, argv, &a);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if ((rc = prepare(&a, &addr, &tls)) != 0)
        return rc;
    for (size_t i = 0; i < sizeof(piece_data); i++)
        piece_data[i] = (char)('a' + i % 26);
    /* A client that goes away mid-write must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    struct echo_server *srv = calloc(1, sizeof(*srv));
    int status = 1;
    if (srv != NULL) {
        srv->name = a.name;
        srv->tls = tls;
        status = serve(srv, &addr, a.listen);
    }
    gw_tls_ctxset_unref(tls);
    free(srv);
    return status;
}
