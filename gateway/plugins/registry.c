/* registry.c - the one list of gateway plugins. Adding a plugin is adding its
 * file in this folder and its line below (docs/architecture.md, "How to add
 * a plugin"). The order they run in is each plugin's own `order`:
 * request_id 5 (so even a refused request carries its id), cors 7
 * (preflights come without credentials), ip_restriction 10, the auth plugins
 * 20-22, rate_limit 30 (after auth: it may key on the consumer),
 * request_size_limit 40, request_headers 60, response_headers 70. */
#include "gateway/plugins/plugin.h"
#include "common/err.h"

#include <pthread.h>
#include <string.h>

extern const struct gw_plugin_ops gw_plugin_request_id, gw_plugin_cors, gw_plugin_ip_restriction,
    gw_plugin_key_auth, gw_plugin_jwt, gw_plugin_basic_auth, gw_plugin_rate_limit,
    gw_plugin_request_size_limit, gw_plugin_request_headers, gw_plugin_response_headers;
/* Linked only into the test binary (tests/plugins/): weak, so NULL elsewhere. */
extern const struct gw_plugin_ops gw_plugin_test_stamp __attribute__((weak));

static const struct gw_plugin_ops *const registry[] = {
    &gw_plugin_request_id,
    &gw_plugin_cors,
    &gw_plugin_ip_restriction,
    &gw_plugin_key_auth,
    &gw_plugin_jwt,
    &gw_plugin_basic_auth,
    &gw_plugin_rate_limit,
    &gw_plugin_request_size_limit,
    &gw_plugin_request_headers,
    &gw_plugin_response_headers,
    &gw_plugin_test_stamp,
};

/* The registry without the weak entries that are not linked in. */
static const struct gw_plugin_ops *linked[sizeof(registry) / sizeof(registry[0])];
static size_t nlinked;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void collect_once(void)
{
    for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]); i++)
        if (registry[i] != NULL)
            linked[nlinked++] = registry[i];
}

static void collect(void)
{
    pthread_once(&once, collect_once);
}

const struct gw_plugin_ops *const *gw_plugin_list(void)
{
    collect();
    return linked;
}

size_t gw_plugin_count(void)
{
    collect();
    return nlinked;
}

const struct gw_plugin_ops *gw_plugin_find(const char *name, size_t len, int *slot)
{
    collect();
    for (size_t i = 0; i < nlinked; i++) {
        if (strlen(linked[i]->name) == len && memcmp(linked[i]->name, name, len) == 0) {
            if (slot != NULL)
                *slot = (int)i;
            return linked[i];
        }
    }
    return NULL;
}

int gw_plugin_ops_check(const struct gw_plugin_ops *ops, const char **why)
{
    const struct gw_plugin_credentials *c = ops->credentials;
    if (ops->name == NULL || ops->name[0] == '\0')
        *why = "has no name";
    else if (ops->schema == NULL)
        *why = "has no config schema";
    else if (ops->on_request == NULL && ops->on_body == NULL && ops->upstream_add == NULL &&
             ops->upstream_drop == NULL && ops->response_add == NULL && ops->response_drop == NULL)
        *why = "takes part in no phase";
    else if (c != NULL && (c->holder == NULL || c->holder->nfields != 1 || c->index == NULL ||
                           strcmp(c->holder->fields[0].name, ops->name) != 0))
        *why = "has credentials without one field named like it, or without an index";
    else if (ops->ctx_size > GW_CTX_BYTES / 4)
        *why = "needs too much per-request context";
    else
        return 0;
    return GV_EINVAL;
}

int gw_plugin_registry_check(const char **name, const char **why)
{
    size_t ctx = 0;
    collect();
    if (nlinked > GW_CTX_SLOTS) {
        *name = "";
        *why = "more plugins than context slots";
        return GV_EINVAL;
    }
    for (size_t i = 0; i < nlinked; i++) {
        *name = linked[i]->name;
        if (gw_plugin_ops_check(linked[i], why) != 0)
            return GV_EINVAL;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(linked[j]->name, linked[i]->name) == 0) {
                *why = "is registered twice";
                return GV_EINVAL;
            }
        }
        ctx += (linked[i]->ctx_size + 15) & ~(size_t)15;
    }
    if (ctx > GW_CTX_BYTES) {
        *name = "";
        *why = "the plugins' contexts do not fit GW_CTX_BYTES";
        return GV_EINVAL;
    }
    return 0;
}
