/* broadcast.h - dissemination: the transmit-limited update queue, the
 * duplicate filter, and the generic broadcast channels that later layers
 * (replicated config, health, rate limits) plug into.
 *
 * Threads and memory: everything here runs on the swim's loop thread. The
 * channel callbacks are called on that thread, during cl_swim_receive() or a
 * swim timer; the bytes they are given are only valid during the call. A
 * channel's ops and arg must outlive the swim (or its registration).
 */
#ifndef GV_CLUSTER_BROADCAST_H
#define GV_CLUSTER_BROADCAST_H

#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cl_swim;

/* ---- the broadcast queue (memberlist's TransmitLimitedQueue) ---- */

struct cl_bq_item;

struct cl_bqueue {
    struct cl_bq_item **items;
    size_t n, cap, max;
    uint64_t next_id;
    uint64_t dropped;  /* items pushed out because the queue was full */
    uint64_t replaced; /* items superseded by a newer one with the same key */
};

/* max bounds the number of queued items; when full the item sent most often
 * (the oldest on a tie) is dropped. */
void cl_bq_init(struct cl_bqueue *q, size_t max);
void cl_bq_free(struct cl_bqueue *q);
/* Queues an encoded update under key, to be sent limit times; an item with
 * the same key is replaced. Returns 0 or GV_ENOMEM (the queue is unchanged
 * then). */
int cl_bq_push(struct cl_bqueue *q, const char *key, const uint8_t *data, size_t len,
               uint32_t limit);
/* Appends to out[*out_len..cap) the updates sent fewest times first (newest
 * first among equals) whose total fits in budget bytes; an item larger than
 * budget goes only alone and only when it fits in cap. Each chosen item counts
 * one transmission and is dropped after its limit. Returns the number
 * appended. */
size_t cl_bq_fill(struct cl_bqueue *q, size_t budget, uint8_t *out, size_t cap, size_t *out_len);
size_t cl_bq_len(const struct cl_bqueue *q);
/* Drops every item (a node that leaves has nothing more to say). */
void cl_bq_clear(struct cl_bqueue *q);

/* ---- the duplicate filter for user broadcasts ---- */

/* Remembers between cap and 2*cap recent ids in two generations; an id older
 * than that may be seen again (delivery is at least once, rarely twice). */
struct cl_seen {
    uint64_t *gen[2];
    size_t cap, count;
};

int cl_seen_init(struct cl_seen *s, size_t cap);
void cl_seen_free(struct cl_seen *s);
/* Returns true when id is new (and records it), false when seen before. */
bool cl_seen_add(struct cl_seen *s, uint64_t id);

/* ---- broadcast channels ---- */

struct cl_channel_ops {
    /* A broadcast (or a direct message) on this channel arrived from member
     * origin; called once per broadcast, on every member but the origin. */
    void (*on_message)(void *arg, uint8_t channel, const uint8_t *payload, size_t len,
                       const char *origin);
    /* Optional: append this node's full state for the channel to out, for
     * push-pull anti-entropy. Return 0 or a negative error (nothing is sent). */
    int (*local_state)(void *arg, uint8_t channel, struct gv_buf *out);
    /* Optional: merge a peer's full state (from local_state on that peer).
     * join is true when the exchange is part of a join. */
    void (*merge_remote_state)(void *arg, uint8_t channel, const uint8_t *state, size_t len,
                               const char *from, bool join);
};

/* Largest payload cl_swim_broadcast and cl_swim_send_to accept. */
#define CL_SWIM_MAX_PAYLOAD (60 * 1024)

/* Registers ops for channel (any value 0..255). Returns 0, GV_EEXIST when the
 * channel is taken. */
int cl_swim_register_channel(struct cl_swim *s, uint8_t channel, const struct cl_channel_ops *ops,
                             void *arg);
void cl_swim_unregister_channel(struct cl_swim *s, uint8_t channel);

/* Broadcasts payload to every member (epidemic gossip, each member delivers it
 * once). A queued broadcast with the same channel and non-empty key is
 * replaced, so only the newest value of a key is spread; an empty key never
 * replaces. Returns 0, GV_ERANGE (payload or key too long), GV_EINVAL (not
 * running) or GV_ENOMEM. */
int cl_swim_broadcast(struct cl_swim *s, uint8_t channel, const char *key, const uint8_t *payload,
                      size_t len);
/* Sends payload to one member directly (best effort, not relayed). Returns 0,
 * GV_ENOENT (unknown member), GV_ERANGE or the transport's error. */
int cl_swim_send_to(struct cl_swim *s, const char *member, uint8_t channel, const uint8_t *payload,
                    size_t len);

#endif
