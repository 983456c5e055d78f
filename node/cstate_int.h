/* cstate_int.h - what the parts of node_cstate share (not for other
 * modules). The parts:
 *   cstate.c         life (loading, seeding, closing), peers' changes, applying
 *                    the store with quarantine, reading;
 *   cstate_view.c    the store as the validator sees it: live entries plus
 *                    local changes on their way to disk, less quarantined
 *                    entries, as JSON;
 *   cstate_change.c  changes from the admin API: staged, validated, queued;
 *   cstate_jcache.c  stored values parsed (routes compiled) once per version;
 *   cstate_build.c   peers' changes: the state built off the control loop;
 *   cstate_save.c    the disk: local changes written (and fsync'd) before
 *                    they are stored, applied, spread and answered; peers'
 *                    changes written after; compaction.
 *
 * A local change's life: staged on the view and validated (refused with a
 * path and reason when the state would not validate), then a pending change
 * queued for the disk. Once its records are on disk it is merged into the
 * store, spread, its state published and its caller answered (0). When the
 * write fails, it and every change queued after it (staged on top of it)
 * are answered with the error and nothing of them is kept anywhere.
 */
#ifndef GV_NODE_CSTATE_INT_H
#define GV_NODE_CSTATE_INT_H

#include "cluster/hlc.h"
#include "cluster/statelog.h"
#include "cluster/store.h"
#include "common/buf.h"
#include "common/strmap.h"
#include "node/cstate.h"
#include "node/state.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define CS_REASON_MAX   200
#define CS_LOG_EACH_MAX 16 /* per apply, what is logged one per line; more is summed up */

/* A local change on its way to disk. Its entries' values are its own. */
struct cs_pending {
    struct cl_entry *entries;
    size_t n;
    struct node_state st; /* the state with the change, validated */
    bool has_st;          /* false: nothing to write, answered in turn */
    uint64_t remote_seen; /* cs->remote_merged when staged */
    char what[96];        /* "created routes/api", for the log */
    node_cstate_done_fn done;
    void *arg;
    struct cs_pending *next;
};

/* An entry left out of the applied state: its version, and why. */
struct cs_quarantined {
    uint8_t kind;
    uint64_t stamp;
    char name[CL_STORE_MAX_NAME + 1];
    char reason[CS_REASON_MAX];
    char key[CL_STORE_MAX_NAME + 2]; /* kind + 1 as a byte, then the name: the index's key */
    /* a route left out for naming a service the view lacked: that name
     * (else ""), so the next apply checks it again without parsing it */
    char service[CL_STORE_MAX_NAME + 1];
};

struct cs_arrival {
    uint8_t kind;
    bool deleted;
    uint64_t stamp;
    char name[CL_STORE_MAX_NAME + 1];
    char origin[CL_WIRE_MAX_NAME + 1];
};

/* Peers' changes stored since the last apply, for its log lines. */
struct cs_arrivals {
    struct cs_arrival *v;
    size_t n, cap, dropped; /* dropped: beyond what v can hold */
};

struct cs_build; /* cstate_build.c */

struct node_cstate {
    struct node *n;
    struct cl_store *store; /* what is on disk (or would be): spread, applied */
    struct cl_hlc clock;
    struct cl_replica *replica;
    uint64_t tombstone_ttl_ms;
    struct cl_statelog *log; /* NULL without data_dir */

    /* The disk (cstate_save.c): one job on the thread pool at a time. */
    uv_work_t work;
    bool writing, compacting, image_stale;
    struct cs_pending *queued, *queued_tail; /* waiting for the next batch */
    struct cs_pending *inflight;             /* in the batch being written */
    struct gv_buf batch, remote, image;      /* remote: peers' records not yet written */
    size_t remote_sent;                      /* of remote, the bytes in the job */
    int write_rv;
    bool backoff; /* the last write failed: peers' records wait for the timer */
    uv_timer_t retry_timer;

    /* Peers' changes: batched to the next loop turn, or later while
     * applying costs more than the loop's idle time since the last apply
     * (at most half the loop applies: a state streaming in in many
     * messages is applied a few times, not once per message). */
    uv_timer_t apply_timer, gc_timer;
    uv_timer_t trim_timer; /* gives freed memory back after a state is published */
    uint64_t trims;
    uint64_t apply_cost_ms, applied_at_ms; /* the last apply's cost; loop time at its end */
    struct cs_arrivals arrivals;
    struct cs_build *build; /* a state being built off the loop (cstate_build.c), or NULL */
    uint64_t loop_ms_last, loop_ms_max; /* of an apply, the part on the loop */
    uint64_t builds, builds_dropped;    /* applies built off the loop; dropped as superseded */
    uint64_t remote_merged;             /* peers' changes stored so far */
    bool invalid; /* the store does not validate: serving the last good state */
    uint64_t unknown_logged[256 / 64];

    struct cs_jcache *jcache; /* stored values parsed, per version */

    struct cs_quarantined *quar; /* left out of the applied state */
    size_t nquar, capquar;
    struct gv_strmap quar_index;            /* (kind, name) -> its place in quar */
    const struct cs_quarantined *quar_prev; /* while applying: the last set, */
    size_t nquar_prev;                      /* so each version is logged once */
    const struct gv_strmap *quar_prev_index;
    size_t quar_logged, quar_unlogged; /* in this apply: said one per line; beyond that */
    size_t quar_blamed;                /* of quar, left out because a validation named them */

    uint64_t applied_local, applied_remote, states_rejected, saves, save_errors, refused_unsaved;
    uint64_t remote_applies; /* validations of the state for peers' changes (batches) */
    uint64_t routes_compiled, routes_reused; /* stored routes compiled / taken compiled */
    uint64_t routes_parsed_off_loop;         /* routes new to a build's view, parsed by it */
    uint64_t
        last_delay_ms; /* the last batch of peers' changes: the oldest one's age when applied */
    uint64_t compactions;

    int open_handles;
    bool closing;
    void (*done)(void *arg);
    void *done_arg;
};

/* cstate.c */
const char *cs_plural(int kind);
const char *cs_element_name(int kind, const json_t *v);
void cs_copy_str(char *dst, size_t n, const char *src);
int cs_fail(struct node_state_error *err, const char *path, const char *msg);
const char *cs_self_name(const struct node_cstate *cs);
/* Builds the store's state (quarantining what does not validate) and
 * publishes it. 0, or an error with err filled (the last good state stays). */
int cs_apply_store(struct node_cstate *cs, struct node_state_error *err);
/* An apply starts with nothing left out, so what a change fixed applies
 * again: restart puts the last set aside (each version in it is not logged
 * again); end logs what left it (when applied) and drops it. */
struct cs_quar_saved {
    struct cs_quarantined *q;
    size_t n;
    struct gv_strmap index;
};
void cs_quarantine_restart(struct node_cstate *cs, struct cs_quar_saved *saved);
void cs_quarantine_end(struct node_cstate *cs, struct cs_quar_saved *saved, bool applied);
/* An apply of peers' changes (a, taken: emptied) ended with rv (err when
 * not 0); cost_ms from its start, loop_ms of it on the loop. Counts, logs,
 * and schedules the next apply when more changes came meanwhile. */
void cs_apply_done(struct node_cstate *cs, int rv, const struct node_state_error *err,
                   struct cs_arrivals *a, uint64_t cost_ms, uint64_t loop_ms);
/* Puts a's arrivals back in front of what came since (a emptied). */
void cs_arrivals_requeue(struct node_cstate *cs, struct cs_arrivals *a);
/* Schedules an apply of what has arrived (at once, or later while applying
 * costs more than the loop's idle time). */
void cs_apply_later(struct node_cstate *cs);
void cs_maybe_finish_close(struct node_cstate *cs);

/* cstate_view.c */
/* The live objects of kind in their order (rank, then name): the store's,
 * with pending changes over them when with_pending, less quarantined
 * versions. *out is malloc'd (the entries stay the store's or the pending
 * changes'). The count, or GV_ENOMEM. */
int cs_view_list(const struct node_cstate *cs, int kind, bool with_pending,
                 const struct cl_entry ***out);
/* The version of (kind, name) the view holds, tombstones included, or NULL. */
const struct cl_entry *cs_view_get(const struct node_cstate *cs, int kind, const char *name);
/* The routes of a materialized view, for the validator to take compiled
 * (ru->api, for node_state_from_json_reuse): route k of the view went into
 * "routes" as elems[k], a placeholder (its name as a JSON string) for the
 * compiled spec[k], or its JSON when it does not compile on its own (spec[k]
 * NULL). Elements are matched by identity, so a view edited after (an object
 * put, inserted or removed) takes only what it kept. Valid while the store
 * and the pending changes stay as they are; cs_reuse_free. */
struct cs_reuse {
    const json_t **elems;
    const struct gw_route_spec **spec;
    size_t n;
    struct node_state_reuse api;
    /* Materialized with defer (for a build off the loop), a route not
     * compiled yet goes in as its JSON and the build compiles it: names[k]
     * (else NULL) and vids[k], its stored value's id (cs_jcache_value_id),
     * say which version, so the loop can keep what the build compiled
     * (spec[k]) for it. */
    char **names;
    uint64_t *vids;
    /* raw[k]: a route new to the view goes in as a placeholder (its name)
     * too, unparsed: the build parses and checks it from the digest's input
     * (cs_digest_input), unless the last apply left that version out. */
    bool *raw;
};
/* The JSON the validator takes, from the view; lists[k] gets each kind's
 * entries in the order of the JSON arrays (free with cs_lists_free). A value
 * that is not a JSON object is quarantined and left out. With ru, routes
 * compiled before are placeholders described in *ru (else ru is NULL and
 * every value is JSON), and the others are compiled now, or with defer left
 * to the caller (ru->names). NULL: no memory. */
json_t *cs_materialize(struct node_cstate *cs, bool with_pending, const struct cl_entry **lists[],
                       int counts[], struct cs_reuse *ru, bool defer);
void cs_lists_free(const struct cl_entry **lists[]);
/* Whether a stored value cannot be an element of kind's list (why says
 * why): not a JSON object (v NULL: je says why it did not parse), or naming
 * another object than its own name. Any thread. */
bool cs_value_problem(int kind, const char *name, const json_t *v, const json_error_t *je,
                      char *why, size_t len);
/* Whether a route naming service cannot be applied: services (their names)
 * lacks it (why says so). Any thread. */
bool cs_route_orphan(const char *service, const struct gv_strmap *services, char *why, size_t len);
void cs_reuse_free(struct cs_reuse *ru);
/* The digest's input for the view lists[] (kind, name, NUL, value, NUL per
 * entry, in order) appended to out; route_rec, when not NULL, gets where
 * each route's record starts, and [counts[routes]] where the last ends.
 * 0 or GV_ENOMEM. */
int cs_digest_input(const struct cl_entry **lists[], const int counts[], struct gv_buf *out,
                    size_t *route_rec);
/* The digest (hex SHA-256) of in, less the records of the routes i with
 * drop[i] (drop NULL: all of it). Any thread. */
void cs_digest_hex(const struct gv_buf *in, const size_t *route_rec, const bool *drop,
                   size_t nroutes, char out[65]);
/* A state was published: freed memory is given back to the system soon
 * (see cstate.c). */
void cs_trim_later(struct node_cstate *cs);
const struct cs_quarantined *cs_quarantine_find(const struct node_cstate *cs, int kind,
                                                const char *name);
bool cs_is_quarantined(const struct node_cstate *cs, const struct cl_entry *e);
/* Quarantines e's version with reason (logged once per version, one per
 * line up to CS_LOG_EACH_MAX, then counted); service: the one a route named
 * that the view lacked, else NULL. 0 or GV_ENOMEM. */
int cs_quarantine(struct node_cstate *cs, const struct cl_entry *e, const char *reason,
                  const char *service);
/* Logs how many were quarantined beyond those said one per line; the count
 * starts again. At the end of an apply or a staging. */
void cs_quarantine_said(struct node_cstate *cs);

/* The config digest of the objects in lists (what they would apply). */
void cs_digest(const struct cl_entry **lists[], const int counts[], char out[65]);
/* The same for the store's live objects less quarantine. 0 or GV_ENOMEM. */
int cs_store_digest(const struct node_cstate *cs, char out[65]);

/* cstate_build.c */
/* Starts building the store's state off the loop (published when built,
 * with cs->arrivals taken for its log). 0, or an error (nothing started:
 * apply on the loop). */
int cs_build_start(struct node_cstate *cs);
/* At close: cancels the build if it has not started (it ends either way). */
void cs_build_cancel(struct node_cstate *cs);

/* cstate_save.c */
/* Opens the log in dir (none when dir is NULL). The retry timer is the
 * caller's to init before any change. */
int cs_save_open(struct node_cstate *cs, const char *dir, const uint8_t *key);
/* Queues a staged change: written, then stored, spread, applied, answered. */
void cs_save_submit(struct node_cstate *cs, struct cs_pending *p);
/* A peer's change now in the store: written with the next batch. */
void cs_save_remote(struct node_cstate *cs, const struct cl_entry *e);
/* The store changed other than by a record (tombstones collected, loaded
 * from an old image): the next write is a whole image. */
void cs_save_image_later(struct node_cstate *cs);
/* Writes what waits (at close). */
void cs_save_flush(struct node_cstate *cs);
void cs_pending_free(struct cs_pending *p);
bool cs_save_busy(const struct node_cstate *cs);
void cs_save_close(struct node_cstate *cs);

#endif
