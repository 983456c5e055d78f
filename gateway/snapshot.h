/* snapshot.h - one immutable generation of the routing and service config.
 *
 * The node builds a snapshot from the cluster state and publishes it; every
 * worker reads the current one with an atomic load and never locks. A snapshot
 * is reference counted: the publisher holds one reference, each worker's view
 * holds one, and it is freed (through its release callback, on whichever
 * thread drops the last reference) when the last holder lets go. Everything
 * it points to is read-only for its whole life.
 */
#ifndef GV_GATEWAY_SNAPSHOT_H
#define GV_GATEWAY_SNAPSHOT_H

#include "balancer/service.h"
#include "gateway/router.h"

#include <pthread.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct gw_pipeline;
struct gw_up_tls;

struct gw_snapshot {
    _Atomic int refs;
    uint64_t generation; /* increases with every published snapshot */
    const struct gw_route_spec *routes;
    size_t nroutes;
    const int *route_service; /* route i -> index into services */
    const struct lb_service_spec *services;
    size_t nservices;
    struct lb_target_state ***states; /* states[s][t], from the registry */
    /* addrs[s][t]: the target's resolved address; ss_family is AF_UNSPEC
     * when its name did not resolve (it then fails like a refused connect). */
    const struct sockaddr_storage *const *addrs;
    /* up_tls[s]: the TLS client context of service s, NULL when it is plain
     * (gateway/tls_upstream.h); the snapshot holds a reference on each. */
    struct gw_up_tls *const *up_tls;
    struct gw_router *router;
    struct gw_pipeline *pipeline; /* plugin chain per route (gateway/plugins/chain.h), or NULL */
    void *user;                   /* the builder's own data (the node: the node_state) */
    /* Frees everything the snapshot owns, including itself. */
    void (*release)(struct gw_snapshot *s);
};

static inline void gw_snapshot_ref(struct gw_snapshot *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

static inline void gw_snapshot_unref(struct gw_snapshot *s)
{
    if (s != NULL && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        s->release(s);
}

/* The slot through which the node publishes and workers read. Workers compare
 * `generation` (one atomic load per request) with the generation they hold and
 * only call gw_snapshot_acquire(), which takes the slot's mutex, when it
 * changed: the request path never locks. */
struct gw_snapshot_slot {
    pthread_mutex_t lock;
    struct gw_snapshot *current; /* under lock */
    _Atomic uint64_t generation;
};

void gw_snapshot_slot_init(struct gw_snapshot_slot *slot);
/* Drops the slot's reference; the slot is unusable afterwards. */
void gw_snapshot_slot_fini(struct gw_snapshot_slot *slot);
/* Publishes s, taking over the caller's reference, and drops the slot's
 * reference to the previous snapshot. s->generation is set here. */
void gw_snapshot_publish(struct gw_snapshot_slot *slot, struct gw_snapshot *s);
/* Returns the current snapshot with a new reference, or NULL if none. */
struct gw_snapshot *gw_snapshot_acquire(struct gw_snapshot_slot *slot);

#endif
