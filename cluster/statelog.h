/* statelog.h - the replicated store on disk: a base image (cl_store_save)
 * plus an append-only log of entries, so that saving a change costs the
 * change (one record appended and fsync'd), not a rewrite of the whole state.
 * The log is folded into a new image when it outgrows it (compaction).
 *
 * Files in the data directory: "cluster-state.gvst" (the image) and
 * "cluster-state.log" (records). A record is "GVLR", a big-endian u32
 * length, one msgpack entry (cl_entry_encode) and a 32-byte MAC over all
 * that: HMAC-SHA256 under the file key when the cluster has a key, SHA-256
 * otherwise. The image carries the same kind of sum. Loading stops at the
 * first record that is short or fails its MAC (a write torn by a crash) and
 * cuts the log there; a damaged image is refused whole.
 *
 * Crash safety: an append is written and fsync'd before it is acknowledged;
 * a compaction writes the new image atomically (write, fsync, rename, fsync
 * the directory) before it empties the log, so a crash between the two
 * leaves records that are already in the image: merging them again changes
 * nothing (last writer wins).
 *
 * Threads: cl_statelog_open and _load at start-up; _append and _compact
 * block (fsync) and run on libuv's thread pool, one at a time: the caller
 * serializes them. Encoding runs wherever the caller likes.
 */
#ifndef GV_CLUSTER_STATELOG_H
#define GV_CLUSTER_STATELOG_H

#include "cluster/store.h"
#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cl_statelog;

/* Opens (creating) the files in dir. key: the cluster key's file key (32
 * bytes, cl_statelog_file_key) or NULL. 0, or a negative errno. */
int cl_statelog_open(const char *dir, const uint8_t *key, struct cl_statelog **out);
void cl_statelog_close(struct cl_statelog *l);

/* The key files are sealed under: derived from the cluster key, so a node's
 * files are checked with what every node of the cluster holds. */
void cl_statelog_file_key(const uint8_t cluster_key[32], uint8_t out[32]);

/* Loads the image, then the log's records, into store (empty). *clock: the
 * image's clock (the largest stamp seen when it was written). *records: how
 * many log records were read; *cut: bytes of a torn or damaged tail cut off
 * the log. GV_EPROTO when the image is damaged (nothing loaded), 0 when
 * there are no files yet. */
int cl_statelog_load(struct cl_statelog *l, struct cl_store *store, uint64_t *clock,
                     size_t *records, size_t *cut);

/* Appends one record for e to out. 0 or GV_ENOMEM. */
int cl_statelog_encode(const struct cl_statelog *l, const struct cl_entry *e, struct gv_buf *out);
/* Appends encoded records to the log and fsyncs it (blocking). 0 or -errno;
 * on failure the log is cut back to where it was. */
int cl_statelog_append(struct cl_statelog *l, const void *records, size_t len);
/* True when the log has outgrown the image (time to compact). */
bool cl_statelog_wants_compaction(const struct cl_statelog *l);
/* Makes image (cl_store_save_keyed's output, with this log's key) the new
 * base and empties the log (blocking). 0 or -errno (the old files stand). */
int cl_statelog_compact(struct cl_statelog *l, const void *image, size_t len);
/* The key the image must be saved with (NULL: none). */
const uint8_t *cl_statelog_key(const struct cl_statelog *l);

/* True when load took an unsigned image because this is the first start
 * after an upgrade from 0.1 (a plain image and no log yet) on a node with a
 * key: the caller compacts at once, so the image gets signed. Any later
 * unsigned image is refused. */
bool cl_statelog_unsigned_image(const struct cl_statelog *l);

/* Sizes, for stats: the log's bytes and the last image's. */
size_t cl_statelog_log_bytes(const struct cl_statelog *l);
size_t cl_statelog_image_bytes(const struct cl_statelog *l);

#endif
