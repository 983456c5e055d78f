/* store.h - the replicated cluster state: a map of last-writer-wins registers,
 * one per object (kind, name), with tombstones for deletes.
 *
 * Each entry carries the hybrid-logical-clock stamp of its write and the name
 * of the node that wrote it; of two versions of an object the one with the
 * larger (stamp, origin, deleted, rank, value) wins, so every node that has seen
 * the same writes holds the same state whatever the order they arrived in.
 * Seeds from a config file have stamp 0 and origin "" and lose to any write.
 * Kinds (0..255) and values (the object's JSON text) are opaque: the store
 * does not judge them, and keeps, spreads, saves and collects an entry of a
 * kind this version does not know like any other, so a newer node's new kind
 * survives a rolling upgrade. The node validates the state it builds from
 * the kinds it knows before applying it.
 *
 * For anti-entropy the store keeps, per bucket of the key space, the XOR of
 * the identity hashes of its entries, so two stores compare in 2 KiB and a
 * difference narrows down to the buckets that differ.
 *
 * Memory: the store copies what it is given; entries it hands out are valid
 * until the store is next changed. No threads: one owner at a time.
 */
#ifndef GV_CLUSTER_STORE_H
#define GV_CLUSTER_STORE_H

#include "cluster/wire.h"
#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CL_STORE_MAX_NAME  128
#define CL_STORE_MAX_VALUE (56 * 1024) /* one object fits one direct message */
#define CL_STORE_BUCKETS   256
#define CL_RANK_NONE       UINT32_MAX /* objects created through the API */

struct cl_entry {
    uint8_t kind;   /* what the object is (common/kinds.h names them) */
    bool deleted;   /* a tombstone: value is empty */
    uint32_t rank;  /* ordering among objects of a kind (file order for seeds) */
    uint64_t stamp; /* hybrid logical clock of the write; 0 = seed */
    char name[CL_STORE_MAX_NAME + 1];
    char origin[CL_WIRE_MAX_NAME + 1]; /* node that wrote it; "" for seeds */
    const uint8_t *value;              /* the object's JSON text */
    size_t value_len;
};

struct cl_store;

/* Checks an entry's shape: name 1..128 bytes without control
 * characters, origin, value size, tombstones without a value. 0 or GV_EINVAL. */
int cl_entry_check(const struct cl_entry *e);
/* Which of two versions of one object wins: > 0 when a wins, < 0 when b
 * does, 0 when they are the same version. */
int cl_entry_cmp(const struct cl_entry *a, const struct cl_entry *b);
/* The bucket of an object (by kind and name). */
unsigned cl_entry_bucket(uint8_t kind, const char *name);

int cl_store_new(struct cl_store **out);
void cl_store_free(struct cl_store *s);

/* The current version of (kind, name), tombstone included, or NULL. */
const struct cl_entry *cl_store_get(const struct cl_store *s, uint8_t kind, const char *name);
/* Keeps e (copied) if it wins over the version held. Returns 1 when stored,
 * 0 when the held version wins or is the same, GV_EINVAL (bad shape) or
 * GV_ENOMEM (nothing changed then). */
int cl_store_merge(struct cl_store *s, const struct cl_entry *e);
/* Drops tombstones whose stamp is below before (made more than a TTL ago);
 * returns how many. */
size_t cl_store_gc(struct cl_store *s, uint64_t before);
/* Drops the seed of (kind, name), if that is what is held: a node seeding
 * its config file replaces what it saved of the same object from a file,
 * and keeps the seeds other nodes' files spread to it, so that restarted
 * alone it serves what it served before. True when one was dropped. */
bool cl_store_drop_seed(struct cl_store *s, uint8_t kind, const char *name);

/* Entries, tombstones included. */
size_t cl_store_count(const struct cl_store *s);
/* Calls fn for every entry (any order; tombstones included) until it returns
 * non-zero, and returns that value (else 0). fn must not change the store. */
int cl_store_foreach(const struct cl_store *s, int (*fn)(void *arg, const struct cl_entry *e),
                     void *arg);
/* Resumable scan for streaming a large store out in pieces: calls fn for the
 * entries of the table's slots from `from` on, and stops at the end of the
 * first slot after which fn returned non-zero. Returns the slot to resume
 * from, or cl_store_slots() when the scan is complete. A resume is exact only
 * while cl_store_slots() is unchanged (the table grows as entries are added:
 * scan again from 0 then). fn must not change the store. */
size_t cl_store_scan(const struct cl_store *s, size_t from,
                     int (*fn)(void *arg, const struct cl_entry *e), void *arg);
size_t cl_store_slots(const struct cl_store *s);
/* The live (not deleted) objects of kind in their order: rank, then name.
 * *out is a malloc'd array of pointers (free it; the entries stay the
 * store's). Returns the count or GV_ENOMEM. */
int cl_store_list(const struct cl_store *s, uint8_t kind, const struct cl_entry ***out);
/* The largest stamp of any entry (0 when only seeds). */
uint64_t cl_store_max_stamp(const struct cl_store *s);

/* The anti-entropy digest: per bucket the XOR of entry identities, and one
 * root hash over all buckets (equal roots: equal stores). */
void cl_store_buckets(const struct cl_store *s, uint64_t out[CL_STORE_BUCKETS]);
uint64_t cl_store_root(const struct cl_store *s);

/* ---- encoding (msgpack), shared by the gossip messages and the disk file ----
 * An entry is [kind, name, stamp, origin, rank, deleted, value(bin)]. */
int cl_entry_encode(const struct cl_entry *e, struct gv_buf *out);
/* Decodes one entry at data[*off..len), advancing *off; the entry's value
 * points into data. GV_EPROTO when malformed or out of limits. */
int cl_entry_decode(const uint8_t *data, size_t len, size_t *off, struct cl_entry *e);
/* The same on msgpack-c objects, for decoders of larger messages (which run
 * cl_wire_skim on their input first): pack one entry, or read one from an
 * unpacked object (its value then points where the object's bin does). */
struct msgpack_packer;
struct msgpack_object;
int cl_entry_pack(struct msgpack_packer *pk, const struct cl_entry *e);
int cl_entry_unpack(const struct msgpack_object *o, struct cl_entry *e);

/* The whole store as a file image: "GVST", version, the clock, a count, the
 * entries, and a SHA-256 of all that (version 1), or with key (32 bytes) an
 * HMAC-SHA256 under it (version 2). */
#define CL_STORE_KEY_LEN 32
int cl_store_save(const struct cl_store *s, uint64_t clock, struct gv_buf *out);
int cl_store_save_keyed(const struct cl_store *s, uint64_t clock, const uint8_t *key,
                        struct gv_buf *out);
/* Loads a file image into an empty store. GV_EPROTO when the image is
 * damaged (nothing is loaded then), GV_ENOMEM. */
int cl_store_load(struct cl_store *s, const uint8_t *data, size_t len, uint64_t *clock);
/* With key, only a version 2 image whose HMAC verifies under it loads; a
 * plain one (anyone could have written it) is GV_EPROTO too. */
int cl_store_load_keyed(struct cl_store *s, const uint8_t *data, size_t len, const uint8_t *key,
                        uint64_t *clock);

#endif
