/* replica_int.h - what replica.c (messages, anti-entropy) and replica_push.c
 * (direct spread of local writes, streamed transfers of large differences)
 * share. Threads: everything runs on the swim's loop, like the replica. */
#ifndef GV_CLUSTER_REPLICA_INT_H
#define GV_CLUSTER_REPLICA_INT_H

#include "cluster/replica.h"
#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cl_replica_msg {
    CL_RMSG_CHANGE = 1,
    CL_RMSG_NOTICE = 2,
    CL_RMSG_FETCH = 3,
    CL_RMSG_ROOT = 4,
    CL_RMSG_SUMMARY = 5,
    CL_RMSG_ENTRIES = 6,
    CL_RMSG_MARK = 7, /* [7, stream, seq]: a streamed window ends; ack it */
    CL_RMSG_ACK = 8,  /* [8, stream, seq]: the window before that mark is in */
};

/* Room for the message around the entries of one batch. */
#define CL_REPLICA_BATCH_BUDGET (CL_SWIM_MAX_PAYLOAD - 256)

/* Local writes waiting for the next loop turn to go to every member. */
#define CL_DIRECT_QUEUE 256
/* Transfers streamed out at once (to different members). */
#define CL_MAX_STREAMS 8

struct cl_direct_key {
    uint8_t kind;
    char name[CL_STORE_MAX_NAME + 1];
};

/* One streamed transfer: the entries of the buckets where a member differs,
 * read from the store piece by piece (a cursor, no copy), sent a window of
 * messages at a time; the next window goes when the member acks the last. */
struct cl_stream {
    bool active;
    bool waiting; /* a window is out, its mark not acked yet */
    bool paused;  /* the transport refused a chunk: retried soon */
    char member[CL_WIRE_MAX_NAME + 1];
    uint8_t differ[CL_STORE_BUCKETS];
    size_t slot, slots; /* store scan cursor, and the table size it is for */
    uint32_t id, seq;
    uint64_t since_ms; /* loop time the window went out (or the send failed) */
};

struct cl_replica {
    uv_loop_t *loop;
    uv_timer_t tick;
    uv_timer_t push; /* direct flush (next turn) and stream pacing */
    int open_handles;
    struct cl_swim *swim;
    struct cl_store *store;
    struct cl_hlc *clock;
    struct cl_replica_config cfg;
    struct cl_replica_stats stats;
    struct cl_direct_key *direct; /* CL_DIRECT_QUEUE slots */
    size_t ndirect;
    struct cl_stream streams[CL_MAX_STREAMS];
    uint32_t next_stream;
    void (*done)(void *arg);
    void *done_arg;
};

int cl_replica_buf_write(void *data, const char *p, size_t len);
/* About the bytes e takes in a message. */
size_t cl_replica_entry_size(const struct cl_entry *e);
/* Appends [ENTRIES, [entries...]] to b; 0 or GV_ENOMEM. */
int cl_replica_pack_entries(struct gv_buf *b, const struct cl_entry **v, size_t n);
int cl_replica_send(struct cl_replica *r, const char *member, const struct gv_buf *b);
/* Sends entries[0..n) in ENTRIES messages that each fit a payload; returns
 * how many messages the transport refused. */
size_t cl_replica_send_entries(struct cl_replica *r, const char *member,
                               const struct cl_entry **entries, size_t n);

/* replica_push.c */
void cl_replica_direct_queue(struct cl_replica *r, const struct cl_entry *e);
/* Streams the entries of the differing buckets to member; false when no
 * stream slot is free (the caller then pushes them at once). A member that
 * already has a stream running keeps it. */
bool cl_replica_stream_start(struct cl_replica *r, const char *member, const uint8_t *differ);
void cl_replica_on_mark(struct cl_replica *r, uint64_t id, uint64_t seq, const char *from);
void cl_replica_on_ack(struct cl_replica *r, uint64_t id, uint64_t seq, const char *from);

#endif
