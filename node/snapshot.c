/* snapshot.c - the gateway snapshots a node serves.
 *
 * A config generation (the state, its router, plugin pipeline and upstream
 * TLS contexts) is built once per config change and shared by every
 * snapshot built from it. A snapshot adds the targets: each service's
 * targets expanded to the addresses their host names have now
 * (balancer/expand.h), with their states from the registry. When a name's
 * addresses change, node_republish builds a snapshot of the same generation:
 * the other services keep their targets and states, requests in flight keep
 * the snapshot they started with. Building a generation touches nothing of
 * the node (any thread: node/cstate_build.c builds peers' states off the
 * control loop); the rest runs on the control loop.
 */
#include "node/node.h"
#include "balancer/expand.h"
#include "balancer/resolver.h"
#include "gateway/plugins/chain.h"
#include "gateway/tls_upstream.h"
#include "node/gossip.h"
#include "common/err.h"
#include "common/log.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the snapshots of one config share; freed with the last of them. */
struct node_gen {
    _Atomic int refs;
    struct node_state state;
    int *route_service;
    struct gw_router *router;
    struct gw_pipeline *pipeline;
    struct gw_up_tls **up_tls; /* per service; NULL for a plain one */
};

/* A snapshot of a generation with the targets of the moment. */
struct node_snap {
    struct gw_snapshot base;
    struct node_gen *gen;
    struct lb_registry *registry;     /* holds each target's state once */
    struct lb_service_spec *services; /* the state's, targets expanded */
    size_t nservices;
    struct sockaddr_storage **addrs;
};

void node_gen_unref(struct node_gen *g)
{
    if (g == NULL || atomic_fetch_sub(&g->refs, 1) != 1)
        return;
    for (size_t i = 0; g->up_tls != NULL && i < g->state.nservices; i++)
        gw_up_tls_unref(g->up_tls[i]);
    free(g->up_tls);
    free(g->route_service);
    gw_router_free(g->router);
    gw_pipeline_free(g->pipeline);
    node_state_free(&g->state);
    free(g);
}

int node_gen_build(struct node_state *state, struct node_gen **out)
{
    char err[256];
    struct node_gen *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        node_state_free(state);
        return GV_ENOMEM;
    }
    atomic_init(&g->refs, 1);
    g->state = *state;
    memset(state, 0, sizeof(*state));
    const struct node_state *st = &g->state;
    g->route_service = calloc(st->nroutes + 1, sizeof(int));
    g->up_tls = calloc(st->nservices + 1, sizeof(*g->up_tls));
    int rv = GV_ENOMEM;
    if (g->route_service == NULL || g->up_tls == NULL)
        goto fail;
    for (size_t i = 0; i < st->nservices; i++) {
        /* A context that does not load leaves the service without one: its
         * requests then fail (502) rather than go out unverified. */
        const struct lb_service_spec *svc = &st->services[i];
        if (svc->tls.enabled && gw_up_tls_new(&svc->tls, &g->up_tls[i], err, sizeof(err)) != 0)
            gv_error("service %s: upstream TLS: %s", svc->name, err);
    }
    for (size_t r = 0; r < st->nroutes; r++)
        g->route_service[r] = node_state_find_service(st, st->routes[r].service);
    if ((rv = gw_router_build(st->routes, st->nroutes, &g->router, err, sizeof(err))) != 0) {
        gv_error("router: %s", err);
        goto fail;
    }
    rv = gw_pipeline_build(st->plugins, st->routes, st->nroutes, st->consumers, &g->pipeline);
    if (rv != 0)
        goto fail;
    *out = g;
    return 0;
fail:
    node_gen_unref(g);
    return rv;
}

static void snap_release(struct gw_snapshot *s)
{
    struct node_snap *ns = (struct node_snap *)s;
    for (size_t i = 0; i < ns->nservices; i++) {
        for (size_t t = 0; s->states[i] != NULL && t < ns->services[i].ntargets; t++)
            lb_registry_put(ns->registry, s->states[i][t]);
        lb_service_spec_free(&ns->services[i]);
        free(ns->addrs[i]);
        free(s->states[i]);
    }
    free(ns->services);
    free(ns->addrs);
    free(s->states);
    node_gen_unref(ns->gen);
    free(ns);
}

static const struct lb_addrset *lookup(void *arg, const char *host)
{
    const struct node *n = arg;
    return n->resolver != NULL ? lb_resolver_get(n->resolver, host) : NULL;
}

/* Service i of the generation with its targets expanded, and their states. */
static int expand_service(struct node *n, struct node_snap *ns, size_t i)
{
    const struct lb_service_spec *in = &ns->gen->state.services[i];
    struct lb_service_spec *svc = &ns->services[i];
    if (lb_service_expand(in, lookup, n, svc, &ns->addrs[i]) != 0)
        return GV_ENOMEM;
    ns->nservices = i + 1; /* from here on, released with the snapshot */
    struct lb_target_state **states = calloc(svc->ntargets + 1, sizeof(*states));
    if (states == NULL)
        return GV_ENOMEM;
    ns->base.states[i] = states;
    for (size_t t = 0; t < svc->ntargets; t++) {
        states[t] =
            lb_registry_get(n->registry, svc->name, svc->targets[t].address, svc->health.enabled);
        if (states[t] == NULL)
            return GV_ENOMEM;
    }
    return 0;
}

/* A snapshot of gen (a new reference is taken) with the targets of now. */
static int snap_build(struct node *n, struct node_gen *gen, struct gw_snapshot **out)
{
    struct node_snap *ns = calloc(1, sizeof(*ns));
    if (ns == NULL)
        return GV_ENOMEM;
    struct gw_snapshot *s = &ns->base;
    atomic_fetch_add(&gen->refs, 1);
    ns->gen = gen;
    ns->registry = n->registry;
    s->release = snap_release;
    s->user = &gen->state;
    atomic_store(&s->refs, 1);
    size_t nsvc = gen->state.nservices;
    ns->services = calloc(nsvc + 1, sizeof(*ns->services));
    ns->addrs = calloc(nsvc + 1, sizeof(*ns->addrs));
    s->states = calloc(nsvc + 1, sizeof(*s->states));
    if (ns->services == NULL || ns->addrs == NULL || s->states == NULL)
        goto fail;
    for (size_t i = 0; i < nsvc; i++) {
        if (expand_service(n, ns, i) != 0)
            goto fail;
    }
    s->routes = gen->state.routes;
    s->nroutes = gen->state.nroutes;
    s->route_service = gen->route_service;
    s->services = ns->services;
    s->nservices = nsvc;
    s->addrs = (const struct sockaddr_storage *const *)ns->addrs;
    s->up_tls = (struct gw_up_tls *const *)gen->up_tls;
    s->router = gen->router;
    s->pipeline = gen->pipeline;
    *out = s;
    return 0;
fail:
    snap_release(s);
    return GV_ENOMEM;
}

/* Points the health checks at s's targets and hands s to the workers. When
 * the checks cannot follow, they stop (an empty set cannot fail): they must
 * not go on probing targets whose states go with the previous snapshot. */
static void serve(struct node *n, struct gw_snapshot *s)
{
    if (n->health != NULL) {
        int rv = lb_health_set(n->health, s->services, s->nservices,
                               (struct lb_target_state * *const *)s->states);
        if (rv != 0) {
            gv_error("health checks: %s; stopped until the next change", gv_strerror(rv));
            lb_health_set(n->health, NULL, 0, NULL);
        }
    }
    gw_snapshot_publish(&n->slot, s);
}

struct gw_snapshot *node_snapshot(struct node *n)
{
    return gw_snapshot_acquire(&n->slot);
}

/* The digest of the minimal canonical JSON of a state: what two converged
 * nodes share, whatever defaults their versions know. */
static void state_digest(const struct node_state *st, char out[65])
{
    json_t *j = node_state_to_json_min(st);
    char *text = j ? json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
    unsigned char md[32];
    unsigned int mdlen = 0;
    out[0] = '\0';
    if (text != NULL && EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL) == 1) {
        for (unsigned i = 0; i < mdlen; i++)
            snprintf(out + 2 * i, 3, "%02x", md[i]);
    }
    free(text);
    json_decref(j);
}

int node_publish(struct node *n, struct node_state *state, uint64_t version, const char *digest_in)
{
    char digest[65];
    struct node_gen *gen;
    if (digest_in != NULL)
        snprintf(digest, sizeof(digest), "%s", digest_in);
    else
        state_digest(state, digest);
    int rv = node_gen_build(state, &gen);
    if (rv != 0)
        return rv;
    if ((rv = node_publish_gen(n, gen, version, digest)) != 0)
        node_gen_unref(gen);
    return rv;
}

int node_publish_gen(struct node *n, struct node_gen *gen, uint64_t version, const char *digest)
{
    struct gw_snapshot *s;
    /* New names are looked up from now on: until they resolve they stand
     * for no target. Out of memory keeps following the old names. */
    if (n->resolver != NULL &&
        lb_resolver_set(n->resolver, gen->state.services, gen->state.nservices) != 0)
        gv_warn("target names: out of memory; following the previous ones");
    int rv = snap_build(n, gen, &s);
    if (rv != 0)
        return rv;
    node_gen_unref(n->gen);
    n->gen = gen;
    n->publishes++;
    serve(n, s);
    snprintf(n->config_digest, sizeof(n->config_digest), "%s", digest);
    n->config_version = version;
    if (n->gossip != NULL)
        node_gossip_set_config(n->gossip, n->config_digest, n->config_version);
    return 0;
}

int node_republish(struct node *n)
{
    struct gw_snapshot *s;
    if (n->gen == NULL)
        return 0;
    int rv = snap_build(n, n->gen, &s);
    if (rv != 0)
        return rv;
    serve(n, s);
    return 0;
}
