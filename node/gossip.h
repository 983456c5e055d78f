/* gossip.h - the node's seat in the cluster: keyring, nng transport and SWIM
 * membership wired together, plus what the admin API shows of them.
 *
 * Threads: everything runs on the node's control loop (the transport hands
 * received messages over to it). Strings passed in are copied.
 */
#ifndef GV_NODE_GOSSIP_H
#define GV_NODE_GOSSIP_H

#include "common/buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct node_gossip;
struct cl_swim;

struct node_gossip_config {
    const char *name;
    const char *listen;    /* node.gossip */
    const char *advertise; /* node.advertise, or NULL: derived from listen, or
                              from $POD_IP when listen is a wildcard */
    const char *const *join;
    size_t njoin;
    uint64_t join_every_ms; /* node.join_every: seeds looked up again once joined */
    const char *key_file;   /* node.cluster_key_file or NULL */
    const char *profile;    /* "lan" (default), "local" or "wan" */
    bool test_faults;       /* GRAPEVINE_TEST_FAULTS=1: the fault switch is usable */
};

/* Starts the transport and membership on loop. Returns 0, or a negative
 * error after logging why (bad key file, address in use...). */
int node_gossip_start(uv_loop_t *loop, const struct node_gossip_config *cfg,
                      struct node_gossip **out);
/* Announces "left", flushes for a moment, stops everything, then calls
 * done(arg) from the loop. */
void node_gossip_stop(struct node_gossip *g, void (*done)(void *arg), void *arg);

/* The membership, for modules that plug a channel into it (the replicated
 * config). Valid until node_gossip_stop. */
struct cl_swim *node_gossip_swim(struct node_gossip *g);

/* This node's applied config, carried in its membership meta. */
void node_gossip_set_config(struct node_gossip *g, const char *digest, uint64_t version);

/* For the admin API. */
json_t *node_gossip_members_json(struct node_gossip *g);
/* {"alive":N,"suspect":N,"dead":N,"left":N} */
json_t *node_gossip_counts_json(struct node_gossip *g);
int node_gossip_metrics(struct node_gossip *g, struct gv_buf *out);

/* Keyring management (admin API). Each returns 0 or a negative error with a
 * message in err. */
json_t *node_gossip_keys_json(struct node_gossip *g);
int node_gossip_key_install(struct node_gossip *g, const char *b64, char *err, size_t errlen);
int node_gossip_key_use(struct node_gossip *g, const char *id, char *err, size_t errlen);
int node_gossip_key_remove(struct node_gossip *g, const char *id, char *err, size_t errlen);

/* Test-only fault switch: drop all traffic to and from these addresses.
 * GV_EINVAL unless test faults are enabled. */
int node_gossip_block(struct node_gossip *g, const char *const *addrs, size_t n);

#endif
