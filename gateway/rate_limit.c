/* rate_limit.c - the rate_limit plugin (SPEC: {limit, window, burst?, key,
 * scope}); design in docs/rate-limiting.md.
 *
 * Each decision is one lock-free take from the process-wide bounded table
 * (rl_table.h). scope node: the bucket is this node's. scope cluster: this
 * node enforces its share of the cluster limit, limit / live members (the
 * member count comes from the node's membership view), so the cluster as a
 * whole admits about `limit` per window when traffic is spread evenly and
 * each side of a partition keeps enforcing its share; no cross-node call is
 * ever made on the request path.
 */
#include "gateway/pipeline.h"
#include "gateway/plugin.h"
#include "gateway/rl_table.h"
#include "gateway/snapshot.h"
#include "common/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct gw_rl_table *table;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
    if (gw_rl_table_new(GW_RL_CAPACITY, &table) != 0)
        table = NULL;
}

struct gw_rl_table *gw_rate_limit_table(void)
{
    pthread_once(&table_once, table_init);
    return table;
}

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

int gw_rate_limit_metrics(struct gv_buf *out)
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

static uint64_t key_of(const struct gw_rate_limit_conf *rl, const struct gw_request *r,
                       const char *route)
{
    uint64_t h = rl->seed;
    size_t len;
    const char *v;
    switch (rl->key) {
    case GW_RL_ROUTE:
        return gw_rl_hash(route, strlen(route), h ^ 0x726f757465ULL);
    case GW_RL_HEADER:
        v = gw_request_header(r, rl->header, &len);
        if (v != NULL)
            return gw_rl_hash(v, len, h ^ 0x686561646572ULL);
        break;           /* no such header: the client's address */
    case GW_RL_CONSUMER: /* set by an auth plugin; none ran: the client's address */
        if (r->consumer != NULL)
            return gw_rl_hash(r->consumer, strlen(r->consumer), h ^ 0x636f6e73ULL);
        break;
    case GW_RL_IP:
        break;
    }
    const struct gw_conn *c = r->conn;
    size_t n = c->peer_family == 2 /* AF_INET */ ? 4 : 16;
    return gw_rl_hash(c->peer, n, h ^ 0x6970ULL);
}

static enum gw_plugin_verdict rl_request_headers(const void *conf, struct gw_request *r)
{
    const struct gw_rate_limit_conf *rl = conf;
    struct gw_rl_table *t = gw_rate_limit_table();
    if (t == NULL)
        return GW_PLUGIN_NEXT; /* no memory at start: fail open */
    const struct gw_snapshot *s = r->view->snap;
    const char *route = s->routes[r->route].name;
    struct gw_rl_result res;
    uint64_t key = key_of(rl, r, route), now = gv_now_us();
    uint64_t remaining;
    if (rl->cluster) {
        uint32_t ppm = gw_rl_take_shared(t, key, rl->limit, rl->window_us, rl->burst, now, &res);
        /* This node's remaining tokens, scaled to a cluster-wide estimate. */
        remaining = ppm ? res.remaining * 1000000ULL / ppm : res.remaining;
    } else {
        gw_rl_take(t, key, rl->limit, rl->window_us, rl->burst, now, &res);
        remaining = res.remaining;
    }
    uint64_t shown = rl->burst ? rl->burst : rl->limit;
    if (remaining > shown)
        remaining = shown;
    r->rl_set = true;
    r->rl_limit = (uint32_t)rl->limit;
    r->rl_remaining = (uint32_t)remaining;
    r->rl_reset_s = (uint32_t)((res.reset_ms + 999) / 1000);
    count_decision(route, res.allowed);
    if (res.allowed)
        return GW_PLUGIN_NEXT;
    char extra[256];
    uint64_t retry = (res.retry_ms + 999) / 1000;
    snprintf(extra, sizeof(extra),
             "Retry-After: %llu\r\nRateLimit-Limit: %u\r\nRateLimit-Remaining: 0\r\n"
             "RateLimit-Reset: %llu\r\n",
             (unsigned long long)(retry ? retry : 1), r->rl_limit,
             (unsigned long long)(retry ? retry : 1));
    gw_request_fail_with(r, 429, "rate limit exceeded", extra);
    return GW_PLUGIN_ANSWERED;
}

static int rl_response_headers(const void *conf, struct gw_request *r, struct gv_buf *head)
{
    (void)conf;
    if (!r->rl_set)
        return 0;
    return gv_buf_printf(
        head, "RateLimit-Limit: %u\r\nRateLimit-Remaining: %u\r\nRateLimit-Reset: %u\r\n",
        r->rl_limit, r->rl_remaining, r->rl_reset_s);
}

static void rl_free(void *conf)
{
    free(conf);
}

const struct gw_plugin_ops gw_plugin_rate_limit = {
    .name = "rate_limit",
    .order = 30,
    .on_request_headers = rl_request_headers,
    .on_response_headers = rl_response_headers,
    .free_conf = rl_free,
};
