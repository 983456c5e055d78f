/* rate_limit.c - the rate_limit plugin: `limit` requests per `window` (plus
 * `burst`), keyed by consumer, client address, route or a header; design in
 * docs/rate-limiting.md.
 *
 * Each decision is one lock-free take from the process-wide bounded table
 * (gateway/ratelimit/rl_table.h). scope node: the bucket is this node's.
 * scope cluster: this node admits from its view of the one cluster bucket,
 * within the allowance the cluster glue (gateway/ratelimit/rl_cluster.h,
 * driven by node/ratelimit.c) keeps in step with the other nodes' counts
 * and demand through the mesh; no cross-node call is ever made on the
 * request path. Responses carry RateLimit-Limit/-Remaining/-Reset; a refusal
 * is a 429 with Retry-After.
 */
#include "gateway/plugins/plugin.h"
#include "gateway/ratelimit/rl_table.h"
#include "common/util.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum rl_key { RL_CONSUMER, RL_IP, RL_ROUTE, RL_HEADER };
enum rl_scope { RL_CLUSTER, RL_NODE };

struct rl_conf {
    int64_t limit;
    uint64_t window_ms;
    int64_t burst; /* 0 = limit */
    int key;       /* enum rl_key */
    char *header;  /* RL_HEADER: the header name */
    int scope;     /* enum rl_scope */
    uint64_t seed; /* distinguishes plugin instances (global vs route) */
};

/* The last decision, echoed as RateLimit-* response headers. */
struct rl_ctx {
    bool set, limited;
    uint32_t limit, remaining, reset_s, retry_s;
};

static const char *const key_names[] = {"consumer", "ip", "route", "header:", NULL};
static const char *const scope_names[] = {"cluster", "node", NULL};

static const struct gv_field fields[] = {
    GV_FIELD_INT("limit", struct rl_conf, limit, 1, 1000000000, .flags = GV_F_REQUIRED,
                 .doc = "requests admitted per window"),
    GV_FIELD_DURATION("window", struct rl_conf, window_ms, 1, 0, .flags = GV_F_REQUIRED,
                      .doc = "the window the limit is counted over"),
    GV_FIELD_INT("burst", struct rl_conf, burst, 0, 1000000000,
                 .doc = "requests that may come at once (0: the limit)"),
    GV_FIELD_KEYED_ENUM("key", struct rl_conf, key, header, key_names, .def.s = "ip",
                        .doc = "what is counted: consumer (falls back to ip), ip, route or "
                               "header:NAME (falls back to ip)"),
    GV_FIELD_ENUM("scope", struct rl_conf, scope, scope_names, .def.s = "cluster",
                  .doc = "cluster: one limit for the whole cluster; node: per node"),
};
static const struct gv_schema schema = GV_SCHEMA("rate_limit", struct rl_conf, fields);

/* ---- grapevine_ratelimit_decisions_total{route,result} ----------------- */

#define DEC_SLOTS 512

struct dec_entry {
    _Atomic uint64_t hash; /* 0 = free */
    _Atomic int ready;
    char route[96];
    _Atomic uint64_t allowed, limited;
};

static struct dec_entry decisions[DEC_SLOTS];
static _Atomic uint64_t dec_dropped;

static void count_decision(const char *route, bool allowed)
{
    size_t n = strlen(route);
    uint64_t h = gw_rl_hash(route, n, 0x5eed);
    for (size_t i = 0; i < DEC_SLOTS; i++) {
        struct dec_entry *e = &decisions[(h + i) % DEC_SLOTS];
        uint64_t k = atomic_load_explicit(&e->hash, memory_order_acquire);
        if (k == 0) {
            if (!atomic_compare_exchange_strong(&e->hash, &k, h) && k != h)
                continue;
            if (k == 0) {
                snprintf(e->route, sizeof(e->route), "%s", route);
                atomic_store_explicit(&e->ready, 1, memory_order_release);
            }
        } else if (k != h) {
            continue;
        }
        atomic_fetch_add_explicit(allowed ? &e->allowed : &e->limited, 1, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&dec_dropped, 1, memory_order_relaxed);
}

static int metrics(struct gv_buf *out)
{
    int rv = gv_buf_puts(out, "# HELP grapevine_ratelimit_decisions_total Rate-limit decisions.\n"
                              "# TYPE grapevine_ratelimit_decisions_total counter\n");
    for (size_t i = 0; i < DEC_SLOTS && rv == 0; i++) {
        struct dec_entry *e = &decisions[i];
        if (!atomic_load_explicit(&e->ready, memory_order_acquire))
            continue;
        uint64_t a = atomic_load_explicit(&e->allowed, memory_order_relaxed);
        uint64_t l = atomic_load_explicit(&e->limited, memory_order_relaxed);
        rv = gv_buf_printf(out,
                           "grapevine_ratelimit_decisions_total{route=\"%s\",result=\"allowed\"} "
                           "%llu\n"
                           "grapevine_ratelimit_decisions_total{route=\"%s\",result=\"limited\"} "
                           "%llu\n",
                           e->route, (unsigned long long)a, e->route, (unsigned long long)l);
    }
    return rv;
}

/* ---- the plugin --------------------------------------------------------- */

static int prepare(void *conf, const struct gw_plugin_env *env, struct gv_schema_error *err)
{
    struct rl_conf *c = conf;
    (void)err;
    c->seed = env->seed;
    return 0;
}

static uint64_t key_of(const struct rl_conf *rl, const struct gw_request *r, const char *route)
{
    uint64_t h = rl->seed;
    size_t len;
    const char *v;
    switch (rl->key) {
    case RL_ROUTE:
        return gw_rl_hash(route, strlen(route), h ^ 0x726f757465ULL);
    case RL_HEADER:
        v = gw_request_header(r, rl->header, &len);
        if (v != NULL)
            return gw_rl_hash(v, len, h ^ 0x686561646572ULL);
        break;        /* no such header: the client's address */
    case RL_CONSUMER: /* set by an auth plugin; none ran: the client's address */
        if (r->consumer != NULL)
            return gw_rl_hash(r->consumer, strlen(r->consumer), h ^ 0x636f6e73ULL);
        break;
    }
    size_t n = r->peer->family == 2 /* AF_INET */ ? 4 : 16;
    return gw_rl_hash(r->peer->addr, n, h ^ 0x6970ULL);
}

static enum gw_plugin_verdict on_request(const void *conf, struct gw_request *r, void *ctx)
{
    const struct rl_conf *rl = conf;
    struct rl_ctx *x = ctx;
    struct gw_rl_table *t = gw_rl_table_shared();
    if (t == NULL)
        return GW_PLUGIN_NEXT; /* no memory at start: fail open */
    const char *route = gw_request_route_name(r);
    struct gw_rl_result res;
    uint64_t key = key_of(rl, r, route), now = gv_now_us(), window_us = rl->window_ms * 1000;
    uint64_t remaining, limit = (uint64_t)rl->limit, burst = (uint64_t)rl->burst;
    if (rl->scope == RL_CLUSTER) {
        /* remaining: this node's view of the cluster bucket */
        gw_rl_take_cluster(t, key, limit, window_us, burst, now, &res);
        remaining = res.remaining;
    } else {
        gw_rl_take(t, key, limit, window_us, burst, now, &res);
        remaining = res.remaining;
    }
    uint64_t shown = burst ? burst : limit;
    uint64_t retry = (res.retry_ms + 999) / 1000;
    *x = (struct rl_ctx){
        .set = true,
        .limited = !res.allowed,
        .limit = (uint32_t)limit,
        .remaining = (uint32_t)(res.allowed ? (remaining > shown ? shown : remaining) : 0),
        .reset_s = (uint32_t)((res.reset_ms + 999) / 1000),
        .retry_s = (uint32_t)(retry ? retry : 1),
    };
    count_decision(route, res.allowed);
    if (res.allowed)
        return GW_PLUGIN_NEXT;
    if (x->reset_s < x->retry_s)
        x->reset_s = x->retry_s;
    gw_request_fail(r, 429, "rate limit exceeded");
    return GW_PLUGIN_ANSWERED;
}

static int response_add(const void *conf, struct gw_request *r, const void *ctx,
                        struct gw_hdr_out *out)
{
    const struct rl_ctx *x = ctx;
    char v[3][24];
    int rv = 0;
    (void)conf;
    (void)r;
    if (x == NULL || !x->set)
        return 0;
    int n0 = snprintf(v[0], sizeof(v[0]), "%u", x->limit);
    int n1 = snprintf(v[1], sizeof(v[1]), "%u", x->remaining);
    int n2 = snprintf(v[2], sizeof(v[2]), "%u", x->limited ? x->retry_s : x->reset_s);
    if (x->limited)
        rv = gw_hdr_add(out, "Retry-After", 11, v[2], (size_t)n2);
    rv = rv ? rv : gw_hdr_add(out, "RateLimit-Limit", 15, v[0], (size_t)n0);
    rv = rv ? rv : gw_hdr_add(out, "RateLimit-Remaining", 19, v[1], (size_t)n1);
    rv = rv ? rv : gw_hdr_add(out, "RateLimit-Reset", 15, v[2], (size_t)n2);
    return rv;
}

const struct gw_plugin_ops gw_plugin_rate_limit = {
    .name = "rate_limit",
    .order = 30,
    .doc = "limit requests per window, per node or for the whole cluster; 429 beyond",
    .schema = &schema,
    .prepare = prepare,
    .ctx_size = sizeof(struct rl_ctx),
    .on_request = on_request,
    .response_add = response_add,
    .metrics = metrics,
};
