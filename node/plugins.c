/* plugins.c - see plugins.h. Adding a plugin: its ops in gateway/, its
 * typed-config builder in the table below. */
#include "node/plugins.h"
#include "gateway/auth.h"
#include "gateway/http_plugins.h"
#include "gateway/rl_table.h"
#include "node/plugins_int.h"
#include "common/err.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *build_rate_limit(const json_t *conf, uint64_t seed, const struct gw_pipeline *p)
{
    (void)p;
    struct gw_rate_limit_conf *rl = calloc(1, sizeof(*rl));
    uint64_t window_ms = 1000;
    if (rl == NULL)
        return NULL;
    rl->limit = (uint64_t)json_integer_value(json_object_get(conf, "limit"));
    rl->burst = (uint64_t)json_integer_value(json_object_get(conf, "burst"));
    if (node_json_duration(json_object_get(conf, "window"), &window_ms) != 0 || window_ms == 0)
        window_ms = 1000;
    rl->window_us = window_ms * 1000;
    const char *key = json_string_value(json_object_get(conf, "key"));
    const char *scope = json_string_value(json_object_get(conf, "scope"));
    if (key == NULL || strcmp(key, "ip") == 0)
        rl->key = GW_RL_IP;
    else if (strcmp(key, "consumer") == 0)
        rl->key = GW_RL_CONSUMER;
    else if (strcmp(key, "route") == 0)
        rl->key = GW_RL_ROUTE;
    else {
        rl->key = GW_RL_HEADER;
        snprintf(rl->header, sizeof(rl->header), "%s", key + strlen("header:"));
    }
    rl->cluster = scope == NULL || strcmp(scope, "cluster") == 0;
    rl->seed = seed;
    return rl;
}

static const struct {
    const struct gw_plugin_ops *ops;
    node_plugin_build_fn *build;
} builders[] = {
    {&gw_plugin_rate_limit, build_rate_limit},
    {&gw_plugin_key_auth, node_build_key_auth},
    {&gw_plugin_jwt, node_build_jwt},
    {&gw_plugin_basic_auth, node_build_basic_auth},
    {&gw_plugin_ip_restriction, node_build_ip_restriction},
    {&gw_plugin_cors, node_build_cors},
    {&gw_plugin_request_headers, node_build_headers},
    {&gw_plugin_response_headers, node_build_headers},
    {&gw_plugin_request_size_limit, node_build_size_limit},
    {&gw_plugin_request_id, node_build_request_id},
};

/* Adds every known plugin of list [{NAME: {...}}] to chain c. */
static int add_list(struct gw_chain *c, const json_t *list, uint64_t seed,
                    const struct gw_pipeline *p)
{
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *item = json_array_get(list, i);
        const char *name;
        const json_t *conf;
        json_object_foreach((json_t *)item, name, conf)
        {
            for (size_t b = 0; b < sizeof(builders) / sizeof(builders[0]); b++) {
                if (strcmp(builders[b].ops->name, name) != 0)
                    continue;
                void *typed = builders[b].build(conf, seed, p);
                if (typed == NULL)
                    return GV_ENOMEM;
                int rv = gw_chain_put(c, builders[b].ops, typed);
                if (rv != 0)
                    return rv;
            }
        }
    }
    return 0;
}

int node_plugins_build(const struct node_state *st, struct gw_pipeline **out)
{
    *out = NULL;
    bool any = json_array_size(st->plugins) > 0;
    for (size_t r = 0; r < st->nroutes && !any; r++)
        any = st->route_plugins != NULL && json_array_size(st->route_plugins[r]) > 0;
    if (!any)
        return 0;
    struct gw_pipeline *p = gw_pipeline_new(st->nroutes);
    if (p == NULL)
        return GV_ENOMEM;
    int crv = node_build_consumers(st->consumers, &p->consumers);
    if (crv != 0) {
        gw_pipeline_free(p);
        return crv;
    }
    for (size_t r = 0; r < st->nroutes; r++) {
        /* A global plugin keeps one state for all routes; a route's own is
         * seeded by the route's name. */
        const char *name = st->routes[r].name;
        int rv = add_list(&p->routes[r], st->plugins, 0x676c6f62616cULL, p);
        if (rv == 0 && st->route_plugins != NULL)
            rv = add_list(&p->routes[r], st->route_plugins[r],
                          gw_rl_hash(name, strlen(name), 0x726f757465ULL), p);
        if (rv != 0) {
            gw_pipeline_free(p);
            return rv;
        }
    }
    *out = p;
    return 0;
}
