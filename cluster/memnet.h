/* memnet.h - an in-memory network of cl_transport endpoints on one uv loop,
 * for unit tests and simulations: loss, latency with jitter, endpoints that
 * go down, and partitions by group.
 *
 * Threads: everything on the loop's thread. Messages are copied on send and
 * delivered from a loop timer (never inside send), so a receive callback may
 * send. Memory: the net owns its endpoints; cl_memnet_close frees all of it in
 * its timer's close callback.
 */
#ifndef GV_CLUSTER_MEMNET_H
#define GV_CLUSTER_MEMNET_H

#include "cluster/transport.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct cl_memnet;
struct cl_memnet_ep;

struct cl_memnet_stats {
    uint64_t sent, delivered, lost, blocked, unknown;
};

int cl_memnet_new(uv_loop_t *loop, uint64_t seed, struct cl_memnet **out);
/* Drops queued messages, frees everything once the timer is closed, then
 * calls done (may be NULL). */
void cl_memnet_close(struct cl_memnet *net, void (*done)(void *arg), void *arg);

/* Loss probability for every message (0..1). */
void cl_memnet_set_loss(struct cl_memnet *net, double loss);
/* Inbox mode: messages whose time has come are handed over in the loop's
 * poll phase, after every due timer, as nng_transport's are (its threads
 * queue them and wake the loop): a loop that was held up runs its late
 * timers before it reads what arrived meanwhile. Off: delivered from a
 * timer, in time order with the other timers. */
void cl_memnet_set_inbox(struct cl_memnet *net, bool on);
/* Each message takes min_ms plus a uniform 0..jitter_ms extra. */
void cl_memnet_set_latency(struct cl_memnet *net, uint32_t min_ms, uint32_t jitter_ms);
const struct cl_memnet_stats *cl_memnet_stats(const struct cl_memnet *net);

/* Adds an endpoint reachable at addr. Returns 0, GV_EEXIST or GV_ENOMEM. */
int cl_memnet_attach(struct cl_memnet *net, const char *addr, struct cl_memnet_ep **out);
/* The transport that sends from this endpoint. */
struct cl_transport *cl_memnet_transport(struct cl_memnet_ep *ep);
void cl_memnet_set_receiver(struct cl_memnet_ep *ep, cl_receive_fn fn, void *arg);
/* Whether ep's transport was asked to keep a connection to addr (and has not
 * been told to forget it since). */
bool cl_memnet_keeps(const struct cl_memnet_ep *ep, const char *addr);
/* A down endpoint neither sends nor receives (a killed process). */
void cl_memnet_set_down(struct cl_memnet_ep *ep, bool down);
/* Messages between endpoints of different groups are dropped (default 0). */
void cl_memnet_set_group(struct cl_memnet_ep *ep, int group);
/* Every endpoint back in group 0. */
void cl_memnet_heal(struct cl_memnet *net);

#endif
