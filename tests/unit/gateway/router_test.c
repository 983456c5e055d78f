/* router_test.c - route ranking, host/method/header filters, strip lengths,
 * build errors. */
#include "common/err.h"
#include "gateway/regex.h"
#include "gateway/router.h"
#include "test.h"

#include <llhttp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_ROUTES 24

/* Owns the specs it builds and the router compiled from them. */
struct fixture {
    struct gw_route_spec specs[MAX_ROUTES];
    size_t n;
    struct gw_router *router;
    char err[256];
};

static char **dup_list(const char *const *src, size_t *n)
{
    *n = 0;
    if (src == NULL)
        return NULL;
    while (src[*n] != NULL)
        (*n)++;
    char **out = calloc(*n + 1, sizeof(*out));
    for (size_t i = 0; i < *n; i++)
        out[i] = strdup(src[i]);
    return out;
}

/* Adds a route; hosts and paths are NULL-terminated lists (or NULL). */
static struct gw_route_spec *add(struct fixture *f, const char *name, enum gw_path_type type,
                                 const char *const *hosts, const char *const *paths)
{
    struct gw_route_spec *r = &f->specs[f->n++];
    memset(r, 0, sizeof(*r));
    r->name = strdup(name);
    r->service = strdup("svc");
    r->path_type = type;
    r->hosts = dup_list(hosts, &r->nhosts);
    r->paths = dup_list(paths, &r->npaths);
    return r;
}

static void add_header(struct gw_route_spec *r, const char *name, const char *value)
{
    r->headers = realloc(r->headers, (r->nheaders + 1) * sizeof(*r->headers));
    r->headers[r->nheaders].name = strdup(name);
    r->headers[r->nheaders].value = strdup(value);
    r->nheaders++;
}

static int build(struct fixture *f)
{
    return gw_router_build(f->specs, f->n, &f->router, f->err, sizeof(f->err));
}

static void fixture_free(struct fixture *f)
{
    gw_router_free(f->router);
    for (size_t i = 0; i < f->n; i++)
        gw_route_spec_free(&f->specs[i]);
    memset(f, 0, sizeof(*f));
}

/* Request headers for the header callback: "Name: value" pairs. */
struct headers {
    const char *const *pairs; /* name, value, name, value, ..., NULL */
};

static const char *get_header(void *ctx, const char *name, size_t *len)
{
    const struct headers *h = ctx;
    for (size_t i = 0; h->pairs != NULL && h->pairs[i] != NULL; i += 2) {
        if (strcasecmp(h->pairs[i], name) == 0) {
            *len = strlen(h->pairs[i + 1]);
            return h->pairs[i + 1];
        }
    }
    return NULL;
}

/* Index of the matched route, -1 when none; *strip gets strip_len. */
static long match_full(const struct fixture *f, int method, const char *host, const char *path,
                       const char *const *hdrs, size_t *strip)
{
    struct headers h = {hdrs};
    struct gw_request_view req = {
        .method = method,
        .host = host,
        .host_len = host ? strlen(host) : 0,
        .path = path,
        .path_len = strlen(path),
        .header = get_header,
        .header_ctx = &h,
    };
    struct gw_route_match m = {99, 99};
    if (!gw_router_match(f->router, &req, &m))
        return -1;
    if (strip != NULL)
        *strip = m.strip_len;
    return (long)m.route;
}

static long match(const struct fixture *f, const char *host, const char *path)
{
    return match_full(f, HTTP_GET, host, path, NULL, NULL);
}

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_exact_beats_prefix(void)
{
    struct fixture f = {0};
    add(&f, "prefix", GW_PATH_PREFIX, NULL, L("/users"));
    add(&f, "exact", GW_PATH_EXACT, NULL, L("/users"));
    CHECK_INT(build(&f), 0);
    CHECK_INT(match(&f, "a.com", "/users"), 1);
    CHECK_INT(match(&f, "a.com", "/users/1"), 0);
    CHECK_INT(match(&f, "a.com", "/usersx"), 0); /* plain string prefix */
    CHECK_INT(match(&f, "a.com", "/user"), -1);
    fixture_free(&f);
}

static void test_longest_prefix(void)
{
    struct fixture f = {0};
    add(&f, "root", GW_PATH_PREFIX, NULL, L("/"));
    add(&f, "api", GW_PATH_PREFIX, NULL, L("/api"));
    add(&f, "apiv2", GW_PATH_PREFIX, NULL, L("/other", "/api/v2"));
    add(&f, "api-again", GW_PATH_PREFIX, NULL, L("/api"));
    CHECK_INT(build(&f), 0);
    CHECK_INT(match(&f, NULL, "/api/v2/x"), 2);
    CHECK_INT(match(&f, NULL, "/api/v1/x"), 1); /* tie goes to the first */
    CHECK_INT(match(&f, NULL, "/other"), 2);
    CHECK_INT(match(&f, NULL, "/x"), 0);
    CHECK_INT(match(&f, NULL, ""), -1);
    fixture_free(&f);
}

static void test_regex_file_order(void)
{
    struct fixture f = {0};
    add(&f, "any-number", GW_PATH_REGEX, NULL, L("/items/[0-9]+"));
    add(&f, "small-number", GW_PATH_REGEX, NULL, L("/items/[0-9]"));
    add(&f, "prefix", GW_PATH_PREFIX, NULL, L("/items/7"));
    add(&f, "alt", GW_PATH_REGEX, NULL, L("/a|/ab"));
    CHECK_INT(build(&f), 0);
    CHECK_INT(match(&f, NULL, "/items/5"), 0);
    CHECK_INT(match(&f, NULL, "/items/7"), 2);   /* prefix beats regex */
    CHECK_INT(match(&f, NULL, "/items/5x"), -1); /* whole path must match */
    CHECK_INT(match(&f, NULL, "/x/items/5"), -1);
    CHECK_INT(match(&f, NULL, "/ab"), 3);
    fixture_free(&f);
}

static void test_regex_not_nul_terminated(void)
{
    struct fixture f = {0};
    add(&f, "r", GW_PATH_REGEX, NULL, L("^/a$"));
    CHECK_INT(build(&f), 0);
    /* The path is a slice of a bigger buffer, as it is in a request line. */
    const char line[] = "/a?q=1";
    struct gw_request_view req = {.method = HTTP_GET, .path = line, .path_len = 2};
    struct gw_route_match m;
    CHECK(gw_router_match(f.router, &req, &m));
    req.path_len = 4;
    CHECK(!gw_router_match(f.router, &req, &m));
    fixture_free(&f);
}

static void test_host_beats_no_host(void)
{
    struct fixture f = {0};
    add(&f, "exact-any-host", GW_PATH_EXACT, NULL, L("/users"));
    add(&f, "host-prefix", GW_PATH_PREFIX, L("api.example.com"), L("/"));
    add(&f, "host-regex", GW_PATH_REGEX, L("api.example.com"), L("/r.*"));
    CHECK_INT(build(&f), 0);
    CHECK_INT(match(&f, "api.example.com", "/users"), 1);
    CHECK_INT(match(&f, "API.Example.com", "/users"), 1);
    CHECK_INT(match(&f, "api.example.com:8080", "/users"), 1);
    CHECK_INT(match(&f, "other.com", "/users"), 0);
    CHECK_INT(match(&f, NULL, "/users"), 0);
    CHECK_INT(match(&f, "other.com", "/x"), -1);
    fixture_free(&f);
}

static void test_wildcard_host(void)
{
    struct fixture f = {0};
    add(&f, "wild", GW_PATH_PREFIX, L("*.example.com"), L("/"));
    add(&f, "wild-api", GW_PATH_PREFIX, L("*.api.example.com"), L("/"));
    add(&f, "exact", GW_PATH_PREFIX, L("x.api.example.com"), L("/"));
    CHECK_INT(build(&f), 0);
    CHECK_INT(match(&f, "a.example.com", "/"), 0);
    CHECK_INT(match(&f, "a.b.example.com", "/"), 0);
    CHECK_INT(match(&f, "y.api.example.com", "/"), 1);
    CHECK_INT(match(&f, "x.api.example.com", "/"), 2);
    CHECK_INT(match(&f, "example.com", "/"), -1);
    CHECK_INT(match(&f, "xexample.com", "/"), -1);
    CHECK_INT(match(&f, ".example.com", "/"), -1);
    fixture_free(&f);
}

static void test_no_paths_catch_all(void)
{
    struct fixture f = {0};
    add(&f, "catch-all", GW_PATH_PREFIX, NULL, NULL);
    add(&f, "regex", GW_PATH_REGEX, NULL, L("/r/.*"));
    add(&f, "prefix", GW_PATH_PREFIX, NULL, L("/p"));
    f.specs[0].strip_prefix = true;
    CHECK_INT(build(&f), 0);
    size_t strip = 1;
    CHECK_INT(match_full(&f, HTTP_GET, NULL, "/anything", NULL, &strip), 0);
    CHECK_INT(strip, 0);
    CHECK_INT(match(&f, NULL, "/r/1"), 1);
    CHECK_INT(match(&f, NULL, "/p/1"), 2);
    fixture_free(&f);
}

static void test_methods(void)
{
    struct fixture f = {0};
    struct gw_route_spec *r = add(&f, "writes", GW_PATH_PREFIX, NULL, L("/users"));
    CHECK_INT(gw_method_bit("POST", &r->methods), 0);
    CHECK_INT(gw_method_bit("PUT", &r->methods), 0);
    add(&f, "reads", GW_PATH_PREFIX, NULL, L("/"));
    CHECK_INT(build(&f), 0);
    CHECK_INT(match_full(&f, HTTP_POST, NULL, "/users", NULL, NULL), 0);
    CHECK_INT(match_full(&f, HTTP_PUT, NULL, "/users", NULL, NULL), 0);
    CHECK_INT(match_full(&f, HTTP_GET, NULL, "/users", NULL, NULL), 1);
    CHECK_INT(match_full(&f, 200, NULL, "/users", NULL, NULL), 1);
    fixture_free(&f);
}

static void test_method_bit(void)
{
    uint64_t mask = 0;
    CHECK_INT(gw_method_bit("GET", &mask), 0);
    CHECK(mask == (uint64_t)1 << HTTP_GET);
    CHECK_INT(gw_method_bit("DELETE", &mask), 0);
    CHECK(mask == (((uint64_t)1 << HTTP_GET) | ((uint64_t)1 << HTTP_DELETE)));
    CHECK_INT(gw_method_bit("M-SEARCH", &mask), 0);
    CHECK(mask & ((uint64_t)1 << HTTP_MSEARCH));
    mask = 0;
    CHECK_INT(gw_method_bit("get", &mask), GV_EINVAL);
    CHECK_INT(gw_method_bit("FETCH", &mask), GV_EINVAL);
    CHECK_INT(gw_method_bit("", &mask), GV_EINVAL);
    CHECK_INT(gw_method_bit("<unknown>", &mask), GV_EINVAL);
    CHECK_INT(gw_method_bit(NULL, &mask), GV_EINVAL);
    CHECK(mask == 0);
}

static void test_headers(void)
{
    struct fixture f = {0};
    struct gw_route_spec *r = add(&f, "prod", GW_PATH_PREFIX, NULL, L("/"));
    add_header(r, "X-Env", "prod");
    add_header(r, "x-tier", "gold");
    add(&f, "fallback", GW_PATH_PREFIX, NULL, L("/"));
    CHECK_INT(build(&f), 0);
    CHECK_INT(match_full(&f, HTTP_GET, NULL, "/", L("x-env", "prod", "X-TIER", "gold"), NULL), 0);
    CHECK_INT(match_full(&f, HTTP_GET, NULL, "/", L("x-env", "prod"), NULL), 1);
    CHECK_INT(match_full(&f, HTTP_GET, NULL, "/", L("x-env", "Prod", "x-tier", "gold"), NULL), 1);
    CHECK_INT(match_full(&f, HTTP_GET, NULL, "/", L("x-env", "prod2", "x-tier", "gold"), NULL), 1);
    CHECK_INT(match_full(&f, HTTP_GET, NULL, "/", NULL, NULL), 1);
    fixture_free(&f);
}

static void test_header_filter_falls_through(void)
{
    /* A longer prefix whose header does not match must not hide a shorter one. */
    struct fixture f = {0};
    struct gw_route_spec *r = add(&f, "canary", GW_PATH_PREFIX, NULL, L("/api/users"));
    add_header(r, "x-canary", "1");
    add(&f, "api", GW_PATH_PREFIX, NULL, L("/api"));
    CHECK_INT(build(&f), 0);
    CHECK_INT(match_full(&f, HTTP_GET, NULL, "/api/users", NULL, NULL), 1);
    CHECK_INT(match_full(&f, HTTP_GET, NULL, "/api/users", L("x-canary", "1"), NULL), 0);
    fixture_free(&f);
}

static void test_strip_prefix(void)
{
    struct fixture f = {0};
    add(&f, "p", GW_PATH_PREFIX, NULL, L("/svc", "/svc/v1"))->strip_prefix = true;
    add(&f, "e", GW_PATH_EXACT, NULL, L("/exact"))->strip_prefix = true;
    add(&f, "r", GW_PATH_REGEX, NULL, L("/re/.*"))->strip_prefix = true;
    add(&f, "nostrip", GW_PATH_PREFIX, NULL, L("/keep"));
    CHECK_INT(build(&f), 0);
    size_t strip = 99;
    CHECK_INT(match_full(&f, HTTP_GET, NULL, "/svc/v1/users", NULL, &strip), 0);
    CHECK_INT(strip, 7);
    CHECK_INT(match_full(&f, HTTP_GET, NULL, "/svc/users", NULL, &strip), 0);
    CHECK_INT(strip, 4);
    CHECK_INT(match_full(&f, HTTP_GET, NULL, "/exact", NULL, &strip), 1);
    CHECK_INT(strip, 6);
    CHECK_INT(match_full(&f, HTTP_GET, NULL, "/re/x", NULL, &strip), 2);
    CHECK_INT(strip, 0);
    CHECK_INT(match_full(&f, HTTP_GET, NULL, "/keep/x", NULL, &strip), 3);
    CHECK_INT(strip, 0);
    fixture_free(&f);
}

static void test_no_match(void)
{
    struct fixture f = {0};
    CHECK_INT(build(&f), 0);
    CHECK_INT(match(&f, "a.com", "/"), -1);
    fixture_free(&f);

    add(&f, "hosted", GW_PATH_PREFIX, L("a.com"), L("/"));
    CHECK_INT(build(&f), 0);
    CHECK_INT(match(&f, "b.com", "/"), -1);
    CHECK_INT(match(&f, NULL, "/"), -1);
    CHECK_INT(match(&f, "a.com", "/"), 0);
    fixture_free(&f);
}

static void test_bad_regex(void)
{
    struct fixture f = {0};
    add(&f, "ok", GW_PATH_REGEX, NULL, L("/fine/.*"));
    add(&f, "bad", GW_PATH_REGEX, NULL, L("/broken/(", "/also/ok"));
    f.router = (struct gw_router *)&f; /* must stay untouched on failure */
    CHECK_INT(build(&f), GV_EINVAL);
    CHECK(f.router == (struct gw_router *)&f);
    CHECK(strncmp(f.err, "routes[1].match.paths[0]: ", 26) == 0);
    CHECK(strlen(f.err) > 26);
    f.router = NULL;
    fixture_free(&f);
}

/* ---- the index against a plain scan -------------------------------------------------
 * The oracle is the router as it was before it had an index: every route
 * scored (host rank, path kind, matched length), the best score winning and
 * ties going to the earlier route. Random route sets over small pools of
 * hosts and paths (so they overlap and tie a lot) and random requests must
 * get the same route and strip length from both. */

struct oracle_score {
    size_t host;
    int kind; /* 0 any, 1 regex, 2 prefix, 3 exact */
    size_t len;
};

static size_t oracle_host(const struct gw_route_spec *r, const char *host)
{
    size_t best = 0, len = host ? strlen(host) : 0;
    for (size_t i = 0; i < r->nhosts; i++) {
        const char *h = r->hosts[i];
        if (h[0] == '*' && h[1] == '.') {
            size_t sl = strlen(h + 1);
            if (len > sl && strcasecmp(host + len - sl, h + 1) == 0 && host[len - sl - 1] != '.' &&
                sl > best)
                best = sl;
        } else if (host != NULL && strcasecmp(host, h) == 0) {
            return (size_t)-1;
        }
    }
    return best;
}

/* Whether r's paths match; *kind and *len get the score's path part. */
static bool oracle_path(const struct gw_route_spec *r, const char *path, int *kind, size_t *len)
{
    size_t plen = strlen(path);
    long best = -1;
    *len = 0;
    *kind = r->npaths == 0                  ? 0
            : r->path_type == GW_PATH_REGEX ? 1
            : r->path_type == GW_PATH_EXACT ? 3
                                            : 2;
    if (*kind == 0)
        return true;
    for (size_t i = 0; i < r->npaths; i++) {
        const char *p = r->paths[i];
        size_t n = strlen(p);
        if (*kind == 1) {
            struct gw_regex *re;
            char why[128];
            CHECK_INT(gw_regex_compile(p, &re, why, sizeof(why)), 0);
            bool ok = gw_regex_match(re, path, plen);
            gw_regex_free(re);
            if (ok)
                return true;
            continue;
        }
        if (*kind == 3 ? plen != n : plen < n)
            continue;
        if (r->path_type == GW_PATH_SEGMENTS && plen > n && p[n - 1] != '/' && path[n] != '/')
            continue;
        if (memcmp(path, p, n) == 0 && (long)n > best)
            best = (long)n;
    }
    if (*kind == 1 || best < 0)
        return false;
    *len = (size_t)best;
    return true;
}

static int oracle_cmp(const struct oracle_score *a, const struct oracle_score *b)
{
    if (a->host != b->host)
        return a->host > b->host ? 1 : -1;
    if (a->kind != b->kind)
        return a->kind > b->kind ? 1 : -1;
    if (a->len != b->len)
        return a->len > b->len ? 1 : -1;
    return 0;
}

static long oracle_match(const struct fixture *f, int method, const char *host, const char *path,
                         const char *const *hdrs, size_t *strip)
{
    struct headers h = {hdrs};
    struct oracle_score best = {0}, s;
    long found = -1;
    for (size_t i = 0; i < f->n; i++) {
        const struct gw_route_spec *r = &f->specs[i];
        if (r->methods != 0 && !(r->methods & ((uint64_t)1 << method)))
            continue;
        s.host = oracle_host(r, host);
        if (r->nhosts > 0 && s.host == 0)
            continue;
        if (!oracle_path(r, path, &s.kind, &s.len))
            continue;
        bool hdr_ok = true;
        for (size_t k = 0; k < r->nheaders; k++) {
            size_t vlen = 0;
            const char *v = get_header(&h, r->headers[k].name, &vlen);
            hdr_ok = hdr_ok && v != NULL && strcmp(v, r->headers[k].value) == 0;
        }
        if (!hdr_ok || (found >= 0 && oracle_cmp(&s, &best) <= 0))
            continue;
        best = s;
        found = (long)i;
        *strip = r->strip_prefix && s.kind >= 2 ? s.len : 0;
    }
    return found;
}

static unsigned rnd_state = 12345;

static unsigned rnd(unsigned n)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 8) % n;
}

static const char *const host_pool[] = {"a.com", "b.a.com", "*.a.com", "*.b.a.com",
                                        "x.org", "*.org",   "A.com"};
static const char *const path_pool[] = {"/",     "/api", "/api/",    "/api/v1",
                                        "/apix", "/b",   "/api/v1/x"};
static const char *const regex_pool[] = {"/api/.*", "/b", "/[a-z]+", "/api/v[0-9]+"};
static const char *const req_hosts[] = {"a.com",    "b.a.com", "c.b.a.com",  "x.org",
                                        "y.x.org",  "A.COM",   "a.com:8080", "z.net",
                                        "c..a.com", ".a.com",  NULL};
static const char *const req_paths[] = {"/",     "/api", "/api/",   "/api/v1", "/api/v1/x",
                                        "/apix", "/b",   "/api/v2", "/c",      "/api/v1/"};

static void random_route(struct fixture *f, size_t i)
{
    static const enum gw_path_type types[] = {GW_PATH_PREFIX, GW_PATH_EXACT, GW_PATH_REGEX,
                                              GW_PATH_SEGMENTS};
    const char *hosts[4] = {0}, *paths[4] = {0};
    char name[16];
    enum gw_path_type t = types[rnd(4)];
    for (unsigned k = 0, n = rnd(3); k < n; k++)
        hosts[k] = host_pool[rnd(6)]; /* lower-case, as the schema gives them */
    for (unsigned k = 0, n = rnd(4); k < n; k++)
        paths[k] = t == GW_PATH_REGEX ? regex_pool[rnd(4)] : path_pool[rnd(7)];
    snprintf(name, sizeof(name), "r%zu", i);
    struct gw_route_spec *r = add(f, name, t, hosts, paths);
    if (rnd(4) == 0)
        r->methods = (uint64_t)1 << HTTP_POST;
    if (rnd(5) == 0)
        add_header(r, "X-Env", rnd(2) ? "prod" : "dev");
    r->strip_prefix = rnd(2);
}

static void test_index_agrees_with_a_plain_scan(void)
{
    static const char *const hdrs[][3] = {{NULL}, {"X-Env", "prod", NULL}, {"X-Env", "dev", NULL}};
    for (int round = 0; round < 400; round++) {
        struct fixture f = {0};
        for (size_t i = 0, n = 1 + rnd(MAX_ROUTES); i < n; i++)
            random_route(&f, i);
        CHECK_INT(build(&f), 0);
        for (int q = 0; q < 200; q++) {
            int method = rnd(2) ? HTTP_GET : HTTP_POST;
            const char *host = req_hosts[rnd(11)], *path = req_paths[rnd(10)];
            const char *const *h = hdrs[rnd(3)];
            size_t s1 = 0, s2 = 0;
            long want = oracle_match(&f, method, host && strchr(host, ':') ? "a.com" : host, path,
                                     h[0] ? h : NULL, &s2);
            long got = match_full(&f, method, host, path, h[0] ? h : NULL, &s1);
            if (got != want || (got >= 0 && s1 != s2)) {
                fprintf(stderr, "round %d: %s %s%s: got r%ld (strip %zu), want r%ld (strip %zu)\n",
                        round, method == HTTP_GET ? "GET" : "POST", host ? host : "-", path, got,
                        s1, want, s2);
                CHECK(false);
                round = 400;
                break;
            }
        }
        fixture_free(&f);
    }
}

TEST_MAIN(TEST(test_index_agrees_with_a_plain_scan), TEST(test_exact_beats_prefix),
          TEST(test_longest_prefix), TEST(test_regex_file_order),
          TEST(test_regex_not_nul_terminated), TEST(test_host_beats_no_host),
          TEST(test_wildcard_host), TEST(test_no_paths_catch_all), TEST(test_methods),
          TEST(test_method_bit), TEST(test_headers), TEST(test_header_filter_falls_through),
          TEST(test_strip_prefix), TEST(test_no_match), TEST(test_bad_regex))
