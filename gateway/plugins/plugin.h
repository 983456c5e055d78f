/* plugin.h - what a gateway plugin is.
 *
 * A plugin is one file in gateway/plugins/ exporting one
 * `const struct gw_plugin_ops`, plus one line in registry.c. The ops hold
 * everything about it: its name and place in the order, its config schema
 * (common/schema.h: how its JSON becomes a typed config, with error paths,
 * and the canonical JSON and docs), the credentials it adds to consumers (auth
 * plugins), the per-request state it needs, and the phases it takes part in.
 * The core (router, codecs, proxy) never names a plugin: it runs phases.
 *
 * Life of a config: the node validates cluster state by parsing every plugin
 * config through its schema and `prepare` (control thread); a snapshot holds
 * one chain per route: the global plugins merged with the route's own (a
 * route's plugin replaces a global one of the same name), sorted by order.
 * Typed configs are immutable once prepared and freed with the snapshot.
 *
 * Life of a request (worker thread; phases never block or lock):
 *   on_request   the head is complete and routed; a plugin may answer (401,
 *                429, a CORS preflight), which stops the chain;
 *   on_body      each chunk of request body, before it is forwarded;
 *   upstream_*   the head sent upstream: drop client headers, add headers;
 *   response_*   every response head to the client, proxied or made by the
 *                gateway (an error, a preflight): drop upstream headers,
 *                add headers. Only plugins whose on_request ran take part.
 * Per-request state lives in the plugin's context slot (ctx_size bytes,
 * zeroed before on_request), like nginx's r->ctx[]; the request itself
 * carries nothing per plugin.
 */
#ifndef GV_GATEWAY_PLUGINS_PLUGIN_H
#define GV_GATEWAY_PLUGINS_PLUGIN_H

#include "common/schema.h"
#include "gateway/request.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_PLUGIN_MAX 32 /* registered plugins, at most */

enum gw_plugin_verdict {
    GW_PLUGIN_NEXT,     /* go on with the next plugin, then the proxy */
    GW_PLUGIN_ANSWERED, /* the plugin answered the request (e.g. 429) */
};

/* What prepare() may use besides its config (control thread). */
struct gw_plugin_env {
    uint64_t seed;     /* distinguishes instances: a global plugin's vs a route's */
    const char *route; /* the route's name; NULL for a global plugin (and when validating) */
    /* The plugin's credential index built from the consumers (credentials
     * below), or NULL when it adds none. Outlives the config. */
    const void *index;
};

struct gw_consumer_set;

/* An auth plugin's credentials in consumer objects: the consumer field named
 * like the plugin ("NAME": [...]) is parsed through `holder`, a schema
 * whose one field has the plugin's name; each consumer keeps its holder
 * struct in its creds[slot]. */
struct gw_plugin_credentials {
    const struct gv_schema *holder;
    /* Rewrites the parsed credentials once (a password replaced by
     * its hash, seeded by the consumer's name). path is the consumer's.
     * May be NULL. */
    int (*normalize)(void *holder, const char *consumer, const char *path,
                     struct gv_schema_error *err);
    /* Builds the lookup index over every consumer's credentials. Refuses a
     * credential that two consumers claim, with its path
     * ("consumers[i].NAME[j]"). 0, or GV_EINVAL/GV_ENOMEM with err filled. */
    int (*index)(const struct gw_consumer_set *set, int slot, void **out,
                 struct gv_schema_error *err);
    void (*index_free)(void *index);
};

struct gw_plugin_ops {
    const char *name;
    int order; /* lower runs first; see registry.c for the order of all */
    const char *doc;
    /* The config: a struct of schema->size bytes. */
    const struct gv_schema *schema;
    /* Finishes a parsed config (derive, compile, point at the index).
     * Control thread. 0, or GV_EINVAL/GV_ENOMEM with err filled (the config
     * is then refused). May be NULL. */
    int (*prepare)(void *conf, const struct gw_plugin_env *env, struct gv_schema_error *err);
    /* Frees what prepare added (the schema frees the fields). May be NULL. */
    void (*release)(void *conf);
    const struct gw_plugin_credentials *credentials; /* auth plugins; else NULL */
    size_t ctx_size;                                 /* per-request state; 0: none */

    enum gw_plugin_verdict (*on_request)(const void *conf, struct gw_request *r, void *ctx);
    enum gw_plugin_verdict (*on_body)(const void *conf, struct gw_request *r, void *ctx,
                                      const char *data, size_t len);
    /* true: the client's header `name` is not sent upstream. */
    bool (*upstream_drop)(const void *conf, const struct gw_request *r, const void *ctx,
                          const char *name, size_t len);
    int (*upstream_add)(const void *conf, struct gw_request *r, const void *ctx,
                        struct gw_hdr_out *out);
    /* true: the upstream's response header `name` is not sent to the client. */
    bool (*response_drop)(const void *conf, const struct gw_request *r, const void *ctx,
                          const char *name, size_t len);
    int (*response_add)(const void *conf, struct gw_request *r, const void *ctx,
                        struct gw_hdr_out *out);
    /* Appends the plugin's metrics (Prometheus text) to /metrics. May be NULL. */
    int (*metrics)(struct gv_buf *out);
};

/* ---- the registry (registry.c) --------------------------------------------- */

/* Every registered plugin, and how many. A plugin's slot is its index. Any
 * thread. */
const struct gw_plugin_ops *const *gw_plugin_list(void);
size_t gw_plugin_count(void);
/* The plugin called name (len bytes), or NULL; *slot is its index. */
const struct gw_plugin_ops *gw_plugin_find(const char *name, size_t len, int *slot);
/* Checks that an ops table is complete enough to be registered: a name, a
 * schema, at least one phase, credentials with their index. 0 or GV_EINVAL
 * with why. The registry checks itself at start-up (gw_plugin_registry_check). */
int gw_plugin_ops_check(const struct gw_plugin_ops *ops, const char **why);
int gw_plugin_registry_check(const char **name, const char **why);

#endif
