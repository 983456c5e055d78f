/* plugin.h - the plugin pipeline.
 *
 * A plugin is one file in gateway/ exporting a const gw_plugin_ops: its name,
 * its place in the fixed order below and a function per phase it takes part
 * in. Its config is validated as part of the cluster state (node/state.c)
 * and turned into a typed struct once per snapshot by node/plugins.c, so
 * workers never parse JSON. A snapshot carries one chain per route: the
 * global plugins (top-level `plugins:`) merged with the route's own, where a
 * route's plugin replaces a global one of the same name, sorted by order.
 *
 * Fixed order (lower runs first): request_id 5 (so even a refused request
 * carries its id), cors 7 (browsers send preflights without credentials, so
 * they are answered before auth), ip_restriction 10, key_auth 20, jwt 21,
 * basic_auth 22, rate_limit 30 (after auth: it may key on the consumer),
 * request_size_limit 40, request_headers 60, response_headers 70. A plugin answering
 * a request (401, 403, 413, 429, a CORS preflight) stops the chain.
 *
 * Phases run on the worker thread and must not block or lock.
 */
#ifndef GV_GATEWAY_PLUGIN_H
#define GV_GATEWAY_PLUGIN_H

#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw_request;

enum gw_plugin_verdict {
    GW_PLUGIN_NEXT,     /* go on with the next plugin, then the proxy */
    GW_PLUGIN_ANSWERED, /* the plugin answered the request (e.g. 429) */
};

struct gw_plugin_ops {
    const char *name;
    int order;
    /* The request head is complete and routed. */
    enum gw_plugin_verdict (*on_request_headers)(const void *conf, struct gw_request *r);
    /* A chunk of request body (may be NULL). */
    enum gw_plugin_verdict (*on_request_body)(const void *conf, struct gw_request *r,
                                              const char *data, size_t len);
    /* Appends header lines ("Name: value\r\n") to the response head going to
     * the client (may be NULL). Returns 0 or a negative error. */
    int (*on_response_headers)(const void *conf, struct gw_request *r, struct gv_buf *head);
    void (*free_conf)(void *conf);
};

struct gw_plugin {
    const struct gw_plugin_ops *ops;
    void *conf; /* owned */
};

struct gw_chain {
    struct gw_plugin *v;
    size_t n;
};

/* One chain per route of a snapshot. */
struct gw_consumers;
struct gw_pipeline {
    struct gw_chain *routes;
    size_t nroutes;
    struct gw_consumers *consumers; /* the auth plugins' table (gateway/auth.h); owned */
};

/* Building (control thread). A new pipeline with nroutes empty chains. */
struct gw_pipeline *gw_pipeline_new(size_t nroutes);
/* Adds a plugin to a route's chain, replacing one of the same name (a route
 * plugin over a global one), keeping the fixed order. Takes conf. */
int gw_chain_put(struct gw_chain *c, const struct gw_plugin_ops *ops, void *conf);
void gw_pipeline_free(struct gw_pipeline *p);

/* Request path (worker thread). */
enum gw_plugin_verdict gw_pipeline_request_headers(struct gw_request *r);
enum gw_plugin_verdict gw_pipeline_request_body(struct gw_request *r, const char *data, size_t len);
int gw_pipeline_response_headers(struct gw_request *r, struct gv_buf *head);

/* The plugins that exist. */
extern const struct gw_plugin_ops gw_plugin_rate_limit;

/* rate_limit's typed config. */
enum gw_rl_key { GW_RL_CONSUMER, GW_RL_IP, GW_RL_ROUTE, GW_RL_HEADER };

struct gw_rate_limit_conf {
    uint64_t limit;
    uint64_t window_us;
    uint64_t burst; /* 0 = limit */
    enum gw_rl_key key;
    char header[128]; /* GW_RL_HEADER: the header name */
    bool cluster;     /* scope cluster */
    uint64_t seed;    /* distinguishes plugin instances (global vs route) */
};

/* Process-wide rate-limit state (created on first use, fixed size). */
#define GW_RL_CAPACITY (1u << 17)
struct gw_rl_table;
struct gw_rl_table *gw_rate_limit_table(void);
/* Appends grapevine_ratelimit_decisions_total. */
int gw_rate_limit_metrics(struct gv_buf *out);

#endif
