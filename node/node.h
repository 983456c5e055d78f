/* node.h - one grapevine process: config, workers, health checks, admin API.
 *
 * Threads: the node's main thread runs the control loop (admin API, health
 * checker, signals). Proxy workers run on their own threads and only see the
 * node through the published config snapshot and their metrics.
 */
#ifndef GV_NODE_NODE_H
#define GV_NODE_NODE_H

#include "balancer/health.h"
#include "gateway/metrics.h"
#include "gateway/snapshot.h"
#include "gateway/worker.h"
#include "node/config.h"

#include <uv.h>

struct node_admin;
struct node_gossip;
struct node_cstate;
struct node_gen;
struct lb_resolver;

struct node {
    struct node_config cfg;
    uv_loop_t loop;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_work_t pool_start; /* starts libuv's thread pool with the node */
    struct lb_registry *registry;
    struct gw_snapshot_slot slot;
    struct node_gen *gen;         /* the served config (snapshot.c), one reference */
    struct lb_resolver *resolver; /* follows the host names of targets (resolve.c) */
    uv_timer_t resolve_watch;     /* looks for failed connects to those names */
    uint64_t resolve_since_ms;
    struct lb_health *health;
    struct node_admin *admin;
    struct node_gossip *gossip;
    struct node_cstate *cstate;
    struct gw_worker **workers;
    struct gw_metrics **metrics;
    struct gw_tls_slot *tls; /* certificates for node.tls; NULL = off */
    int nworkers;
    int nmetrics; /* allocated metrics (>= nworkers if start-up failed) */
    uint8_t sticky_key[32];
    char config_digest[65];
    uint64_t config_version;
    uint64_t publishes; /* configs published so far */
    uint64_t started_ms;
    bool stopping;
    bool leaving;           /* SIGTERM came: not ready, serving on for shutdown_delay */
    uv_timer_t leave_timer; /* ends the shutdown_delay (initialised while leaving) */
    uv_timer_t drain_timer; /* while stopping: the admin API stays up until the workers drain */
};

/* Flags from the command line or GRAPEVINE_* environment; NULL = not given. */
struct node_run_opts {
    const char *config;
    const char *name, *listen, *admin, *gossip, *advertise, *join, *workers, *data_dir, *log_level;
};

/* Runs a node until SIGTERM/SIGINT; returns the process exit code. */
int node_run(const struct node_run_opts *opts);

/* snapshot.c: the snapshots the workers serve. */
/* The snapshot currently published (new reference) - for the admin API. */
struct gw_snapshot *node_snapshot(struct node *n);

/* Makes state (taken over: zeroed on success) the served config: builds and
 * publishes a snapshot, points the health checks at its targets and announces
 * digest and version to the cluster. digest: the config digest (64 hex
 * digits) when the caller knows it (node/cstate computes it from the stored
 * objects, cstate_digest), NULL to compute it from state. Returns 0 or a
 * negative error (nothing changed then). Control loop only. */
int node_publish(struct node *n, struct node_state *state, uint64_t version, const char *digest);
/* node_publish in two steps. node_gen_build: the generation of *state
 * (router, plugin pipeline, upstream TLS), which takes state over (zeroed
 * even on failure); any thread. node_publish_gen: makes gen the served
 * config, taking the caller's reference on success (on failure the caller
 * still holds it and nothing changed); digest as for node_publish, not NULL.
 * Control loop only. */
int node_gen_build(struct node_state *state, struct node_gen **out);
int node_publish_gen(struct node *n, struct node_gen *gen, uint64_t version, const char *digest);
/* Publishes the served config again with the addresses its host names have
 * now; digest and version stay. Returns 0 or GV_ENOMEM (nothing changed).
 * Control loop only. */
int node_republish(struct node *n);
/* Drops a reference to a config generation (NULL is fine). */
void node_gen_unref(struct node_gen *g);
/* health_tls.c: gives n->health the TLS engine for probes of tls services. */
void node_health_tls_init(struct node *n);

/* admin/server.c: the admin API on the node's control loop. */
int node_admin_start(struct node *n, const char *addr, struct node_admin **out);
void node_admin_stop(struct node_admin *a);

#endif
