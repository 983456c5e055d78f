/* request_fuzz.c - libFuzzer target for the request path before any
 * upstream: llhttp in the strict mode the gateway runs it in, the target
 * forms (origin, absolute), path normalisation both ways, and the router
 * over a route set of every path type (hosts, exact, prefix, segment
 * prefix, PCRE2 regexes). Invariants checked on every input: a normal
 * path starts with '/', holds no dot segment or double slash, is no longer
 * than its input and is a fixed point; a decoded path never keeps an
 * escaped slash; the router's strip length never exceeds the path.
 *   build-fuzz/tests/fuzz/request_fuzz -max_total_time=60 -dict=tests/fuzz/request_fuzz.dict
 */
#include "gateway/path.h"
#include "gateway/router.h"

#include <llhttp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_URL 8192

struct parsed {
    char url[MAX_URL];
    size_t url_len;
    char host[256];
    size_t host_len;
    bool in_host;
    int method;
};

static struct parsed cur;

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    (void)p;
    if (cur.url_len + n > sizeof(cur.url))
        return -1;
    memcpy(cur.url + cur.url_len, at, n);
    cur.url_len += n;
    return 0;
}

static int on_field(llhttp_t *p, const char *at, size_t n)
{
    (void)p;
    cur.in_host = n == 4 && strncasecmp(at, "host", 4) == 0;
    return 0;
}

static int on_value(llhttp_t *p, const char *at, size_t n)
{
    (void)p;
    if (cur.in_host && cur.host_len + n <= sizeof(cur.host)) {
        memcpy(cur.host + cur.host_len, at, n);
        cur.host_len += n;
    }
    return 0;
}

static void check_path(const char *path, size_t len)
{
    char out[MAX_URL + 1], again[MAX_URL + 1];
    unsigned flags, f2;
    for (int decode = 0; decode < 2; decode++) {
        long n = gw_path_normalize(path, len, out, sizeof(out), decode, &flags);
        if (n < 0)
            continue;
        if (n == 0 || out[0] != '/' || (size_t)n > len)
            abort();
        for (long i = 0; i + 1 < n; i++)
            if (out[i] == '/' && out[i + 1] == '/')
                abort();
        out[n] = '\0';
        if (strstr(out, "/../") || strstr(out, "/./") ||
            (n >= 3 && strcmp(out + n - 3, "/..") == 0) ||
            (n >= 2 && strcmp(out + n - 2, "/.") == 0))
            abort();
        if (decode && (strchr(out, '\\') || strstr(out, "%2F") || strstr(out, "%5C")))
            abort();
        long m = gw_path_normalize(out, (size_t)n, again, sizeof(again), decode, &f2);
        if (m != n || memcmp(out, again, (size_t)n) != 0)
            abort();
    }
}

static struct gw_router *router;

static void build_router(void)
{
    static char *hosts[] = {"api.example.com", "*.example.org"};
    static char *exact[] = {"/admin", "/"};
    static char *prefix[] = {"/api", "/static/"};
    static char *segs[] = {"/users"};
    static char *regex[] = {"/items/[0-9]+", "/(a|b)+/x{1,3}"};
    static struct gw_route_spec specs[] = {
        {.name = "h", .hosts = hosts, .nhosts = 2, .service = "s"},
        {.name = "e", .paths = exact, .npaths = 2, .path_type = GW_PATH_EXACT, .service = "s"},
        {.name = "p", .paths = prefix, .npaths = 2, .path_type = GW_PATH_PREFIX, .service = "s"},
        {.name = "g", .paths = segs, .npaths = 1, .path_type = GW_PATH_SEGMENTS, .service = "s"},
        {.name = "r", .paths = regex, .npaths = 2, .path_type = GW_PATH_REGEX, .service = "s"},
    };
    char err[256];
    if (gw_router_build(specs, sizeof(specs) / sizeof(specs[0]), &router, err, sizeof(err)) != 0)
        abort();
}

static void route(const char *host, size_t hlen, const char *path, size_t plen, int method)
{
    struct gw_request_view v = {
        .method = method, .host = host, .host_len = hlen, .path = path, .path_len = plen};
    struct gw_route_match m;
    if (gw_router_match(router, &v, &m) && m.strip_len > plen)
        abort();
}

/* One parsed request: its target forms, normal paths and route. */
static void judge_request(void)
{
    const char *url = cur.url, *host = cur.host;
    size_t ulen = cur.url_len, hlen = cur.host_len, aoff, alen, poff;
    if (gw_target_absolute(url, ulen, &aoff, &alen, &poff) == 0) {
        if (aoff + alen > ulen || poff > ulen || alen == 0)
            abort();
        host = url + aoff;
        hlen = alen;
        url += poff;
        ulen -= poff;
    }
    const char *q = memchr(url, '?', ulen);
    size_t plen = q ? (size_t)(q - url) : ulen;
    check_path(url, plen);
    char norm[MAX_URL + 1];
    unsigned flags;
    long n = gw_path_normalize(url, plen, norm, sizeof(norm), false, &flags);
    if (n > 0)
        route(host, hlen, norm, (size_t)n, cur.method);
}

static int on_headers_complete(llhttp_t *p)
{
    cur.method = llhttp_get_method(p);
    judge_request();
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    (void)p;
    memset(&cur, 0, sizeof(cur));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static llhttp_settings_t settings;
    static bool ready;
    if (!ready) {
        llhttp_settings_init(&settings);
        settings.on_message_begin = on_message_begin;
        settings.on_url = on_url;
        settings.on_header_field = on_field;
        settings.on_header_value = on_value;
        settings.on_headers_complete = on_headers_complete;
        build_router();
        ready = true;
    }
    llhttp_t parser;
    llhttp_init(&parser, HTTP_REQUEST, &settings);
    llhttp_execute(&parser, (const char *)data, size);
    /* and the bytes as a bare path, which is what most shapes are */
    if (size > 0 && size <= MAX_URL && data[0] == '/')
        check_path((const char *)data, size);
    return 0;
}
