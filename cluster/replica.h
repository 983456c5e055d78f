/* replica.h - spreading the replicated store through the gossip mesh, and
 * anti-entropy so a node that missed changes (down, partitioned, lost
 * packets) catches up.
 *
 * On one swim channel:
 *   change  [1, entry]                 broadcast: a write, value carried when small
 *   notice  [2, kind, name, stamp, origin]  broadcast: a large write; fetched
 *   fetch   [3, [[kind, name], ...]]   direct: send me your versions of these
 *   root    [4, root_hash]             direct, every anti-entropy tick: are we equal?
 *   summary [5, reply, bucket_hashes]  direct or in push-pull: where we differ
 *   entries [6, [entry, ...]]          direct: versions for differing buckets
 *   mark    [7, stream, seq]           direct: a streamed window ends, ack it
 *   ack     [8, stream, seq]           direct: the answer to a mark
 * A local write also goes straight to every live member it knows (one
 * ENTRIES message per member, batched per loop turn; gossip and anti-entropy
 * repair what that misses), so a change reaches N members in one hop.
 * Every tick (default 1 s) a node sends its root hash to one random live
 * member; a member whose root differs answers with its bucket summary, and
 * each side then pushes the entries of the buckets that differ. The same
 * summary rides every push-pull (joins included), so a node that comes back
 * has everything after one exchange. Large differences (a node joining a
 * cluster of 10,000 objects) are streamed point to point: ENTRIES messages
 * of at most CL_SWIM_MAX_PAYLOAD read from the store with a cursor, a
 * window at a time, each window closed by a mark the receiver acks before
 * the next goes out; never through the gossip queue. Nodes of an older
 * version take the ENTRIES messages as they always did and drop marks and
 * acks as unknown (the stream then stops after its first window and
 * anti-entropy carries the rest, as before).
 *
 * Threads and memory: everything runs on the swim's loop. The store and the
 * clock are the caller's and must outlive the replica; the replica changes
 * the store only inside cl_swim_receive() and its own timer, and calls
 * on_change for each entry that won, while the entry is valid.
 */
#ifndef GV_CLUSTER_REPLICA_H
#define GV_CLUSTER_REPLICA_H

#include "cluster/hlc.h"
#include "cluster/store.h"
#include "cluster/swim.h"

#include <stdint.h>
#include <uv.h>

struct cl_replica;

/* e won in the store (valid during the call); from is the member that sent
 * it (e->origin is the member that wrote it). */
typedef void (*cl_replica_change_fn)(void *arg, const struct cl_entry *e, const char *from);

struct cl_replica_config {
    uint8_t channel;
    uint32_t tick_ms;           /* anti-entropy probe interval; default 1000 */
    size_t inline_max;          /* values up to this ride in the broadcast; default 4096 */
    bool direct;                /* also send local writes to every member; default on */
    uint32_t stream_window;     /* messages per streamed window; default 8 */
    uint32_t stream_timeout_ms; /* an unacked window ends its stream; default 2000 */
    uint64_t tombstone_ttl_ms;  /* older tombstones are not taken; default 30 days */
    cl_replica_change_fn on_change;
    void *arg;
};

struct cl_replica_stats {
    uint64_t published;      /* local writes broadcast */
    uint64_t received;       /* entries decoded from peers */
    uint64_t applied;        /* entries that won in the store */
    uint64_t fetches;        /* fetch requests sent */
    uint64_t roots_sent;     /* anti-entropy probes */
    uint64_t summaries_sent; /* bucket summaries sent */
    uint64_t entries_pushed; /* entries sent point to point */
    uint64_t malformed;      /* messages dropped as malformed */
    uint64_t from_future;    /* entries refused: stamped too far ahead */
    uint64_t direct_sent;    /* direct-spread messages handed to the transport */
    uint64_t direct_failed;  /* ... refused by it (the member's queue was full) */
    uint64_t direct_skipped; /* local writes left to gossip: direct queue full */
    uint64_t streams;        /* streamed transfers started */
    uint64_t streams_done;   /* ... that sent everything */
    uint64_t streams_lost;   /* ... given up: a window was not acked in time */
};

void cl_replica_config_init(struct cl_replica_config *c);
/* Registers the channel on swim and starts the tick. Returns 0, GV_EEXIST
 * (channel taken), GV_ENOMEM or a libuv error. */
int cl_replica_new(uv_loop_t *loop, struct cl_swim *swim, struct cl_store *store,
                   struct cl_hlc *clock, const struct cl_replica_config *cfg,
                   struct cl_replica **out);
/* Spreads a local write already merged into the store. Returns 0 or the
 * broadcast's error (the anti-entropy still spreads it then). */
int cl_replica_publish(struct cl_replica *r, const struct cl_entry *e);
/* Starts an anti-entropy exchange with member now (0 or GV_ENOENT). */
int cl_replica_sync_with(struct cl_replica *r, const char *member);
const struct cl_replica_stats *cl_replica_stats(const struct cl_replica *r);
/* Unregisters the channel and closes the timer; the replica is freed once
 * the timer is closed, then done(arg) is called (done may be NULL). Call it
 * before the swim is stopped. */
void cl_replica_close(struct cl_replica *r, void (*done)(void *arg), void *arg);

#endif
