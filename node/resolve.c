/* resolve.c - following the host names of targets on the node (see
 * resolve.h). */
#include "node/resolve.h"
#include "node/node.h"
#include "balancer/expand.h"
#include "balancer/resolver.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#define WATCH_MS 500 /* how often failed connects are looked for */

/* A name's addresses changed: the same config, with the targets of now. */
static void on_changed(void *arg)
{
    struct node *n = arg;
    int rv = node_republish(n);
    if (rv != 0)
        gv_error("target names: cannot serve the new addresses: %s", gv_strerror(rv));
}

/* Names with an address whose connect failed since the last look are looked
 * up again (the resolver keeps that to once a second per name): a restarted
 * container's new address is found without waiting for resolve_every. */
static void on_watch(uv_timer_t *t)
{
    struct node *n = t->data;
    uint64_t since = n->resolve_since_ms;
    n->resolve_since_ms = gv_now_ms();
    struct gw_snapshot *s = node_snapshot(n);
    for (size_t i = 0; s != NULL && i < s->nservices; i++) {
        const struct lb_service_spec *svc = &s->services[i];
        for (size_t k = 0; k < svc->ntargets; k++) {
            uint64_t failed = atomic_load(&s->states[i][k]->connect_failed_ms);
            if (svc->targets[k].from_name && failed >= since && failed != 0)
                lb_resolver_nudge(n->resolver, svc->targets[k].host);
        }
    }
    gw_snapshot_unref(s);
}

int node_resolve_start(struct node *n)
{
    if (lb_resolver_start(&n->loop, on_changed, n, &n->resolver) != 0)
        return GV_ENOMEM;
    uv_timer_init(&n->loop, &n->resolve_watch);
    n->resolve_watch.data = n;
    n->resolve_since_ms = gv_now_ms();
    uv_timer_start(&n->resolve_watch, on_watch, WATCH_MS, WATCH_MS);
    return 0;
}

void node_resolve_stop(struct node *n)
{
    if (n->resolver == NULL)
        return;
    lb_resolver_stop(n->resolver, NULL, NULL);
    n->resolver = NULL;
    uv_close((uv_handle_t *)&n->resolve_watch, NULL);
}

void node_resolve_pending_json(const struct node *n, const struct gw_snapshot *s, size_t i,
                               json_t *arr)
{
    const struct node_state *st = s->user;
    if (n->resolver == NULL || st == NULL || i >= st->nservices)
        return;
    const struct lb_service_spec *svc = &st->services[i];
    for (size_t k = 0; k < svc->ntargets; k++) {
        const struct lb_target_spec *t = &svc->targets[k];
        if (!lb_target_is_name(t) || lb_resolver_get(n->resolver, t->host) != NULL)
            continue;
        json_array_append_new(arr, json_pack("{s:s,s:s,s:i,s:b,s:s,s:s,s:[],s:i}", "address",
                                             t->address, "target", t->address, "weight", t->weight,
                                             "healthy", 0, "reason", "unresolved", "error",
                                             lb_resolver_error(n->resolver, t->host), "checked_by",
                                             "inflight", 0));
    }
}
