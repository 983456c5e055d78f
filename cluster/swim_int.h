/* swim_int.h - the swim's private state, shared only by swim.c and
 * broadcast.c (membership and dissemination are one module split in two
 * files). Nothing outside cluster/swim.c and cluster/broadcast.c includes it.
 */
#ifndef GV_CLUSTER_SWIM_INT_H
#define GV_CLUSTER_SWIM_INT_H

#include "cluster/swim.h"

struct cl_suspicion;
struct cl_relay;
struct cl_dns_req;
struct cl_seed_answer;

struct cl_member {
    char name[CL_WIRE_MAX_NAME + 1];
    char addr[CL_WIRE_MAX_ADDR + 1];
    uint64_t incarnation;
    enum cl_member_state state;
    uint8_t meta[CL_WIRE_MAX_META];
    size_t meta_len;
    uint64_t change_ms, change_unix_ms;
    uint64_t next_retry_ms; /* dead: when to try its address again */
    struct cl_suspicion *susp;
    bool kept; /* the transport was asked to keep a connection to addr */
    struct cl_member *hnext;
    size_t idx; /* position in swim->members */
};

/* An address remembered after its dead member was reaped, retried with
 * backoff so a long partition still heals. */
struct cl_reaped {
    char name[CL_WIRE_MAX_NAME + 1];
    char addr[CL_WIRE_MAX_ADDR + 1];
    uint64_t next_ms, delay_ms;
};

struct cl_channel {
    const struct cl_channel_ops *ops;
    void *arg;
};

enum cl_probe_phase { CL_PROBE_IDLE, CL_PROBE_DIRECT, CL_PROBE_INDIRECT };

struct cl_swim {
    uv_loop_t *loop;
    struct cl_transport *tr;
    char name[CL_WIRE_MAX_NAME + 1];
    char addr[CL_WIRE_MAX_ADDR + 1];
    struct cl_timing t;
    size_t budget;
    cl_member_fn on_member;
    void *on_member_arg;
    char **seeds;
    size_t n_seeds;
    struct cl_seed_answer **answers; /* per seed: its last lookup's addresses (or NULL) */

    struct cl_member *self;
    struct cl_member **members; /* probe order (shuffled) */
    size_t n_members, cap_members;
    struct cl_member **tmp; /* scratch of cap_members for random picks */
    struct cl_member **buckets;
    size_t n_buckets;
    size_t probe_index;
    size_t keep_index; /* where keep_some goes on */

    struct cl_bqueue q;
    struct cl_seen seen;
    uint64_t bcast_seq;
    struct cl_channel channels[256];

    struct {
        enum cl_probe_phase phase;
        uint32_t seq;
        char target[CL_WIRE_MAX_NAME + 1];
        uint64_t start_ms;
        uint64_t due_ms; /* when the probe timer is due (held_up) */
        uint32_t expected_nacks, nacks;
    } probe;
    uint32_t next_seq;
    uint32_t awareness;

    uv_timer_t probe_timer, gossip_timer, pp_timer, maint_timer, join_timer, leave_timer;
    uint64_t last_gossip_ms;
    uint64_t pp_early_ms; /* the last early push-pull's delay; 0 once regular */
    uint64_t join_delay_ms;
    bool join_active;

    struct cl_relay *relays;
    size_t n_relays;
    struct cl_dns_req *dns;
    struct cl_reaped *reaped;
    size_t n_reaped;

    int open_handles;
    int dns_inflight;
    bool started, leaving, stopping, freed;
    bool joined;
    bool refreshing; /* joined: join_timer looks the seeds up every seed_refresh_ms */
    cl_swim_done_fn leave_cb, stop_cb;
    void *leave_arg, *stop_arg;

    struct cl_swim_stats stats;
    uint8_t *out; /* CL_MAX_MESSAGE bytes: the message being encoded */
    uint8_t *raw; /* piggybacked updates being gathered */
};

/* swim.c, for broadcast.c */
struct cl_member *cl_swim_find(struct cl_swim *s, const char *name);
/* Encodes m (adding queued updates when piggyback) and sends it to addr,
 * counting it. Returns 0 or a negative error. */
int cl_swim_send_msg(struct cl_swim *s, const char *addr, struct cl_wire_msg *m, bool piggyback);
/* How many times an update is sent: retransmit_mult (membership) or
 * broadcast_retransmit_mult (user) times ceil(log10(N+1)). */
uint32_t cl_swim_retransmit_limit(struct cl_swim *s, bool user);
/* Brings the next gossip round forward (new user broadcasts). */
void cl_swim_gossip_soon(struct cl_swim *s);

/* broadcast.c, for swim.c */
void cl_bcast_on_update(struct cl_swim *s, const struct cl_wire_update *u);
void cl_bcast_on_user(struct cl_swim *s, const struct cl_wire_msg *m);
/* Gathers the registered channels' local states; *bufs must be freed with
 * cl_bcast_states_free. Returns the number of states. */
size_t cl_bcast_local_states(struct cl_swim *s, struct gv_buf **bufs,
                             struct cl_wire_state **states);
void cl_bcast_states_free(struct gv_buf *bufs, struct cl_wire_state *states, size_t n);
void cl_bcast_merge_states(struct cl_swim *s, const struct cl_wire_msg *m, const char *from);

#endif
