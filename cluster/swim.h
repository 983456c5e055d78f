/* swim.h - cluster membership and failure detection: SWIM with the Lifeguard
 * refinements, after HashiCorp memberlist (its behaviour and defaults).
 *
 * Threads: a swim lives on one uv_loop_t (the node's cluster loop). Every
 * function here, every callback it makes (member changes, channel handlers,
 * done callbacks) and the transport's receive callback run on that loop's
 * thread. Nothing is locked.
 * Memory: the swim copies its config (strings and meta included). Member
 * infos handed to callbacks or iterators are valid only during the call.
 * Life: cl_swim_new, cl_swim_start, then cl_swim_leave (optional, announces
 * "left") and cl_swim_stop, which closes every libuv handle and frees the swim
 * in the close callbacks before calling done. Detach the transport's receive
 * path before done is called; after cl_swim_stop, received messages are
 * ignored.
 */
#ifndef GV_CLUSTER_SWIM_H
#define GV_CLUSTER_SWIM_H

#include "cluster/broadcast.h"
#include "cluster/timing.h"
#include "cluster/transport.h"
#include "cluster/wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct cl_swim;

struct cl_member_info {
    const char *name;
    const char *addr;
    uint64_t incarnation;
    enum cl_member_state state;
    const uint8_t *meta;
    size_t meta_len;
    uint64_t state_change_ms;      /* loop time (uv_now) of the last state change */
    uint64_t state_change_unix_ms; /* wall clock of the same */
    bool is_self;
};

/* Called when a member changes state, incarnation, address or meta (also this
 * node's own changes), and when one is first learned (first set, old_state
 * then meaningless). Not called when a dead member is reaped. */
typedef void (*cl_member_fn)(void *arg, struct cl_swim *s, const struct cl_member_info *m,
                             enum cl_member_state old_state, bool first);
typedef void (*cl_swim_done_fn)(void *arg);

struct cl_swim_config {
    const char *name;      /* unique in the cluster, 1..64 bytes */
    const char *advertise; /* "host:port" the others reach this node at */
    const char *const *seeds;
    size_t n_seeds;
    struct cl_timing timing; /* cl_timing_lan() unless changed */
    const uint8_t *meta;     /* up to CL_WIRE_MAX_META bytes, may be NULL */
    size_t meta_len;
    /* Starting incarnation; 0 means the wall clock in seconds, so a restarted
     * node normally starts above its old self (and refutes if not). */
    uint64_t incarnation;
    /* Bytes of piggybacked updates per message (a larger single update is
     * still sent, alone). */
    size_t packet_budget;
    size_t queue_max; /* broadcast queue bound */
    cl_member_fn on_member;
    void *on_member_arg;
};

struct cl_swim_stats {
    uint64_t sent[CL_MSG_TYPE_MAX + 1];     /* by enum cl_msg_type */
    uint64_t received[CL_MSG_TYPE_MAX + 1]; /* well-formed messages by type */
    uint64_t send_failed;                   /* the transport refused */
    uint64_t malformed;                     /* failed to decode: dropped */
    uint64_t ignored;                       /* well-formed but not for us or stale */
    uint64_t queue_dropped;                 /* updates pushed out of a full queue */
    uint64_t probes, probe_failures, refutes, suspicions, deaths;
    uint64_t held_up; /* verdicts put off: this node's loop was held up (held_up in swim.c) */
    uint64_t broadcasts_delivered;
};

/* Fills c with the defaults: LAN timings, budget 16 KiB, queue 4096. */
void cl_swim_config_init(struct cl_swim_config *c);

/* Creates a swim (not started). t must outlive it. Returns 0, GV_EINVAL (bad
 * name, address, meta or timing) or GV_ENOMEM. */
int cl_swim_new(uv_loop_t *loop, const struct cl_swim_config *cfg, struct cl_transport *t,
                struct cl_swim **out);
/* Starts probing, gossip, push-pull and joining the seeds. Returns 0 or a
 * libuv error. */
int cl_swim_start(struct cl_swim *s);
/* Adds seeds at run time and contacts them now (and again with backoff until
 * one answers). Returns 0, GV_EINVAL or GV_ENOMEM. */
int cl_swim_join(struct cl_swim *s, const char *const *addrs, size_t n);
/* Feeds one received message (transport receive target). Malformed messages
 * are counted and dropped; nothing else happens. */
void cl_swim_receive(struct cl_swim *s, const uint8_t *data, size_t len);
/* The same with the signature of cl_receive_fn (arg is the swim). */
void cl_swim_on_receive(void *swim, const uint8_t *data, size_t len);
/* Graceful leave: stops probing, spreads "left" about this node and keeps
 * gossiping for timing.leave_flush_ms, then calls done. Returns 0 or
 * GV_EINVAL (not running or already leaving). */
int cl_swim_leave(struct cl_swim *s, cl_swim_done_fn done, void *arg);
/* Stops everything; frees the swim once all libuv handles are closed, then
 * calls done (may be NULL). Safe to call from any swim callback. */
void cl_swim_stop(struct cl_swim *s, cl_swim_done_fn done, void *arg);

/* Replaces this node's meta and spreads it (alive with a bumped incarnation).
 * Returns 0 or GV_EINVAL (too long). */
int cl_swim_set_meta(struct cl_swim *s, const uint8_t *meta, size_t len);

/* Observability. */
const char *cl_swim_name(const struct cl_swim *s);
uint64_t cl_swim_incarnation(const struct cl_swim *s);
/* Calls fn for every known member, this node included; stops early and
 * returns fn's value when it is non-zero, else 0. */
int cl_swim_members(struct cl_swim *s, int (*fn)(void *arg, const struct cl_member_info *m),
                    void *arg);
/* Looks a member up; returns 0 and fills *out (valid until the next loop
 * callback), or GV_ENOENT. */
int cl_swim_member(struct cl_swim *s, const char *name, struct cl_member_info *out);
/* counts[state] for every state, this node included. */
void cl_swim_counts(const struct cl_swim *s, size_t counts[CL_STATE_COUNT]);
const struct cl_swim_stats *cl_swim_stats(const struct cl_swim *s);
/* Lifeguard local health score (0 = healthy; timeouts are scaled by score+1). */
uint32_t cl_swim_health_score(const struct cl_swim *s);
/* The suspicion timeout memberlist computes for the current live count:
 * the minimum (all confirmations in) and the maximum (none). */
uint64_t cl_swim_suspicion_min_ms(const struct cl_swim *s);
uint64_t cl_swim_suspicion_max_ms(const struct cl_swim *s);
/* True once some other member has answered (a join succeeded). */
bool cl_swim_joined(const struct cl_swim *s);

#endif
