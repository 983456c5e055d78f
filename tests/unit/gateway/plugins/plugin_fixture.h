/* plugin_fixture.h - what the plugin tests share: checking a plugin list as
 * the node's validator does, building it into a one-route chain, running
 * the phases over requests made up without a socket (../request_fixture.h),
 * the heads they produce as text, and a stand-in for the codec's answers.
 *
 * The answers (gw_request_fail, _fail_with, _answer) live in gateway/conn.c
 * with the connection they write to. This header defines them instead and
 * records what the plugin answered in fx_answer. A static library's member
 * is linked only to resolve a symbol still undefined, and nothing else a
 * plugin test links refers to conn.o, so the test's definitions are the only
 * ones linked (were conn.o ever pulled in, the link would fail on duplicate
 * symbols rather than run the real ones). Include this header from one file
 * per executable. */
#ifndef GV_TESTS_PLUGIN_FIXTURE_H
#define GV_TESTS_PLUGIN_FIXTURE_H

#include "../request_fixture.h"
#include "gateway/plugins/chain.h"
#include "gateway/router.h"
#include "common/err.h"
#include "test.h"

#include <jansson.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- answers ------------------------------------------------------------------ */

/* What the plugins answered since the last fx_request: the last answer,
 * and how many there were (a request is answered once at most). */
struct fx_answer {
    int count;
    int status;
    char msg[128];      /* the error message; "" from gw_request_answer */
    char headers[1024]; /* the extra headers as "Name: value\r\n" lines */
};
static struct fx_answer fx_answer;

static inline void fx_record(int status, const char *msg, const struct gw_hdr *extra, size_t n)
{
    size_t at = 0;
    fx_answer.count++;
    fx_answer.status = status;
    snprintf(fx_answer.msg, sizeof(fx_answer.msg), "%s", msg);
    fx_answer.headers[0] = '\0';
    for (size_t i = 0; i < n && at < sizeof(fx_answer.headers); i++)
        at += (size_t)snprintf(fx_answer.headers + at, sizeof(fx_answer.headers) - at, "%s: %s\r\n",
                               extra[i].name, extra[i].value);
}

void gw_request_fail_with(struct gw_request *r, int status, const char *msg,
                          const struct gw_hdr *extra, size_t n)
{
    r->status = status;
    fx_record(status, msg, extra, n);
}

void gw_request_fail(struct gw_request *r, int status, const char *msg)
{
    gw_request_fail_with(r, status, msg, NULL, 0);
}

void gw_request_answer(struct gw_request *r, int status, const struct gw_hdr *extra, size_t n)
{
    r->status = status;
    fx_record(status, "", extra, n);
}

/* ---- config --------------------------------------------------------------------- */

static inline json_t *fx_json(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (j == NULL)
        fprintf(stderr, "bad test JSON: %s: %s\n", e.text, text);
    CHECK(j != NULL);
    return j;
}

/* v as compact JSON with sorted keys (malloc'd), or NULL. */
static inline char *fx_dump(const json_t *v)
{
    return v ? json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

/* Checks consumers (JSON text) at "consumers". 0 with *canonical their
 * canonical JSON text (free it; canonical may be NULL), or the error with
 * err filled. */
static inline int fx_consumers(const char *consumers, char **canonical, struct gv_schema_error *err)
{
    json_t *in = fx_json(consumers), *out = NULL;
    int rv = gw_consumers_check(in, "consumers", &out, NULL, err);
    if (rv == 0 && canonical != NULL)
        *canonical = fx_dump(out);
    json_decref(out);
    json_decref(in);
    return rv;
}

/* Checks a plugin list (JSON text) at "plugins", looking credentials up in
 * consumers (JSON text; NULL: none), as the node's validator does. 0 with
 * *canonical the list's canonical JSON text (free it; canonical may be
 * NULL), or the error with err filled. */
static inline int fx_check(const char *list, const char *consumers, char **canonical,
                           struct gv_schema_error *err)
{
    struct gw_consumer_set *set = NULL;
    json_t *in = fx_json(list), *out = NULL, *cs = consumers ? fx_json(consumers) : NULL;
    int rv = consumers ? gw_consumers_check(cs, "consumers", NULL, &set, err) : 0;
    if (rv == 0)
        rv = gw_plugins_check(in, "plugins", set, &out, err);
    if (rv == 0 && canonical != NULL)
        *canonical = fx_dump(out);
    json_decref(out);
    json_decref(in);
    json_decref(cs);
    gw_consumer_set_free(set);
    return rv;
}

/* The pipeline of one route named "r" with the plugin list (JSON text) and
 * consumers (JSON text; NULL: none); a failed check and NULL when it does
 * not build. Free with gw_pipeline_free. */
static inline struct gw_pipeline *fx_pipeline(const char *list, const char *consumers)
{
    json_t *route = fx_json(list), *cs = consumers ? fx_json(consumers) : NULL;
    struct gw_route_spec routes[1] = {{.name = "r", .plugins = route}};
    struct gw_pipeline *p = NULL;
    CHECK_INT(gw_pipeline_build(NULL, routes, 1, cs, &p), 0);
    CHECK(p != NULL);
    json_decref(route);
    json_decref(cs);
    return p;
}

/* ---- requests --------------------------------------------------------------------- */

/* fx_request (see ../request_fixture.h) routed to p's route, with no
 * answer recorded yet. */
static inline void fx_routed(struct gw_request *r, const struct gw_pipeline *p,
                             const struct gw_peer *peer, int method, const char *target,
                             const char *const *hdrs)
{
    fx_request(r, peer, method, target, hdrs);
    r->chain = p != NULL ? &p->routes[0] : NULL;
    memset(&fx_answer, 0, sizeof(fx_answer));
}

/* ---- heads as text ---------------------------------------------------------------- */

/* Texts returned by the head helpers: each lives until 8 more were made. */
static inline char *fx_text(void)
{
    static char texts[8][2048];
    static unsigned next;
    char *t = texts[next++ % 8];
    t[0] = '\0';
    return t;
}

static inline void fx_append(char *t, const char *s, size_t n)
{
    size_t at = strlen(t);
    CHECK(at + n < 2048);
    if (at + n < 2048) {
        memcpy(t + at, s, n);
        t[at + n] = '\0';
    }
}

/* The headers the chain adds (upstream: to the head sent upstream; else to
 * the response), as "Name: value\r\n" lines. */
static inline const char *fx_added(struct gw_request *r, bool upstream)
{
    struct gv_buf b;
    struct gw_hdr_out out;
    char *t = fx_text();
    gv_buf_init(&b);
    gw_hdr_out_h1(&out, &b);
    CHECK_INT(upstream ? gw_chain_upstream_add(r, &out) : gw_chain_response_add(r, &out), 0);
    fx_append(t, b.data ? b.data : "", b.len);
    gv_buf_free(&b);
    return t;
}

/* The headers of the head the proxy would send upstream, as "Name:
 * value\r\n" lines: the client's that the chain keeps, then those it adds. */
static inline const char *fx_upstream_head(struct gw_request *r)
{
    char *t = fx_text();
    for (uint32_t i = 0; i < r->hdrs.n; i++) {
        const struct gw_header *h = &r->hdrs.v[i];
        const char *name = r->head.data + h->name_off;
        if (gw_chain_upstream_drop(r, name, h->name_len))
            continue;
        fx_append(t, name, h->name_len);
        fx_append(t, ": ", 2);
        fx_append(t, r->head.data + h->value_off, h->value_len);
        fx_append(t, "\r\n", 2);
    }
    const char *added = fx_added(r, true);
    fx_append(t, added, strlen(added));
    return t;
}

/* The headers of the response head the client would get, as "Name:
 * value\r\n" lines: the upstream's ("Name: value" strings up to a NULL;
 * NULL for an answer of the gateway's own) that the chain keeps, then
 * those it adds. */
static inline const char *fx_response_head(struct gw_request *r, const char *const *upstream)
{
    char *t = fx_text();
    for (size_t i = 0; upstream != NULL && upstream[i] != NULL; i++) {
        const char *colon = strchr(upstream[i], ':');
        if (colon == NULL || gw_chain_response_drop(r, upstream[i], (size_t)(colon - upstream[i])))
            continue;
        fx_append(t, upstream[i], strlen(upstream[i]));
        fx_append(t, "\r\n", 2);
    }
    const char *added = fx_added(r, false);
    fx_append(t, added, strlen(added));
    return t;
}

#endif
