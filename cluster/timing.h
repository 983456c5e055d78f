/* timing.h - memberlist's timing formulas: suspicion timeouts that scale with
 * log(N) and shrink with confirmations (Lifeguard), the retransmit limit, the
 * push-pull interval scaling and the timing profiles (LAN, local, WAN).
 * Pure functions, callable from any thread. */
#ifndef GV_CLUSTER_TIMING_H
#define GV_CLUSTER_TIMING_H

#include <stddef.h>
#include <stdint.h>

struct cl_timing {
    uint32_t probe_interval_ms;          /* one probe per interval */
    uint32_t probe_timeout_ms;           /* wait for a direct ack before going indirect */
    uint32_t indirect_checks;            /* k peers asked to probe on our behalf */
    uint32_t suspicion_mult;             /* min timeout = mult * log10(N) * probe_interval */
    uint32_t suspicion_max_timeout_mult; /* max timeout = this * min timeout */
    uint32_t awareness_max_mult;         /* Lifeguard local health: timeouts * up to this */
    uint32_t gossip_interval_ms;         /* gossip tick */
    uint32_t gossip_nodes;               /* fan-out per tick */
    uint32_t gossip_to_the_dead_ms;      /* keep gossiping to a dead member this long */
    uint32_t retransmit_mult;            /* an update is sent mult * ceil(log10(N+1)) times */
    uint32_t broadcast_retransmit_mult;  /* the same for user broadcasts (ours: 2 x) */
    uint32_t push_pull_interval_ms;      /* full-state sync with one random member */
    uint32_t push_pull_early_ms;         /* the first one this soon after start, then twice as
                                            late each time up to the interval (0: off): what
                                            a start storm's gossip lost is repaired in seconds */
    uint32_t dead_reap_ms;               /* dead/left members are forgotten after this */
    uint32_t reconnect_interval_ms;      /* dead members' addresses are retried this often */
    uint32_t reconnect_max_ms;           /* backoff cap for reaped addresses */
    uint32_t join_retry_ms;              /* first retry of unanswered seeds */
    uint32_t join_retry_max_ms;          /* seed retry backoff cap */
    uint32_t seed_refresh_ms;            /* once joined, seeds are looked up again this often
                                            (0: never): a name's new addresses get contacted */
    uint32_t leave_flush_ms;             /* after announcing "left", keep gossiping this long */
};

/* memberlist's DefaultLANConfig, DefaultLocalConfig and DefaultWANConfig
 * (the fields memberlist does not have are ours: reap, reconnect, join, leave). */
void cl_timing_lan(struct cl_timing *t);
void cl_timing_local(struct cl_timing *t);
void cl_timing_wan(struct cl_timing *t);
/* "lan", "local" or "wan"; returns 0, or GV_EINVAL and leaves *t unchanged. */
int cl_timing_profile(const char *name, struct cl_timing *t);
/* Multiplies every duration by f (simulations); never below 1 ms. */
void cl_timing_scale(struct cl_timing *t, double f);

/* Minimum suspicion timeout for n members:
 * suspicion_mult * max(1, log10(max(1, n))) * probe_interval. */
uint64_t cl_suspicion_min_ms(uint32_t suspicion_mult, size_t n, uint32_t probe_interval_ms);
/* Lifeguard: the timeout after c of k expected independent confirmations,
 * max - log(c+1)/log(k+1) * (max - min), never below min. With k < 1 (too
 * few members to expect confirmations) it is min. */
uint64_t cl_suspicion_timeout_ms(uint64_t min_ms, uint64_t max_ms, uint32_t k, uint32_t c);
/* retransmit_mult * ceil(log10(n + 1)) */
uint32_t cl_retransmit_limit(uint32_t retransmit_mult, size_t n);
/* memberlist pushPullScale: the interval, multiplied for clusters over 32. */
uint64_t cl_push_pull_scale(uint64_t interval_ms, size_t n);

#endif
