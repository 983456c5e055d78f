/* cstate_save.c - the replicated state on disk (cluster/statelog): local
 * changes are written and fsync'd before they are stored, spread, applied
 * and answered; peers' changes are written after they are stored (their
 * origin answered for them; a crash before the write loses nothing the
 * peers do not still hold). One job on libuv's thread pool at a time: an
 * append of every record waiting (group commit), or a compaction. */
#include "cluster/replica.h"
#include "common/err.h"
#include "common/log.h"
#include "node/cstate_int.h"
#include "node/node.h"

#include <stdlib.h>
#include <string.h>

#define REMOTE_MAX (8u * 1024u * 1024u) /* peers' records held while writes fail */
#define RETRY_MS   2000

void cs_pending_free(struct cs_pending *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++)
        free((void *)p->entries[i].value);
    free(p->entries);
    if (p->has_st)
        node_state_free(&p->st);
    free(p);
}

bool cs_save_busy(const struct node_cstate *cs)
{
    return cs->writing || cs->queued != NULL;
}

static void kick(struct node_cstate *cs);

/* ---- the job ------------------------------------------------------------------- */

static void write_work(uv_work_t *w)
{
    struct node_cstate *cs = w->data;
    if (cs->write_rv != 0 || cs->log == NULL)
        return; /* failed before it started (answered from the loop), or no disk */
    if (cs->compacting)
        cs->write_rv = cl_statelog_compact(cs->log, cs->image.data, cs->image.len);
    else
        cs->write_rv = cl_statelog_append(cs->log, cs->batch.data, cs->batch.len);
}

static void after_write(uv_work_t *w, int status);

/* Starts the job; rv != 0: it fails with rv without touching the disk (its
 * callers are still answered from the loop, after they returned). */
static void queue_job(struct node_cstate *cs, bool compacting, int rv)
{
    cs->writing = true;
    cs->compacting = compacting;
    cs->write_rv = rv;
    cs->work.data = cs;
    if (uv_queue_work(&cs->n->loop, &cs->work, write_work, after_write) != 0) {
        /* only on a bad argument: never with a live loop */
        gv_error("config: cannot queue a write on the thread pool");
        abort();
    }
}

/* The first n bytes of the peers' records are on disk (or in an image). */
static void remote_written(struct node_cstate *cs, size_t n)
{
    if (n == 0)
        return;
    memmove(cs->remote.data, cs->remote.data + n, cs->remote.len - n);
    cs->remote.len -= n;
}

/* ---- batches of records ------------------------------------------------------- */

/* A written change: stored, spread, applied, answered. */
static void finish(struct node_cstate *cs, struct cs_pending *p)
{
    struct node_state_error err;
    for (size_t i = 0; i < p->n; i++) /* 0: a peer's newer version came meanwhile */
        if (cl_store_merge(cs->store, &p->entries[i]) == 1 && cs->replica != NULL)
            cl_replica_publish(cs->replica, &p->entries[i]);
    if (p->has_st) {
        /* the state staged with the change is the store's unless a peer's
         * change landed since, or quarantine may lift: then build it anew */
        char digest[65];
        bool same = p->remote_seen == cs->remote_merged && cs->nquar == 0 && !cs->invalid;
        int rv = same && cs_store_digest(cs, digest) == 0
                     ? node_publish(cs->n, &p->st, cl_store_max_stamp(cs->store), digest)
                     : GV_EAGAIN;
        if (rv == 0) {
            p->has_st = false; /* the node owns it now */
            cs_trim_later(cs);
        } else
            rv = cs_apply_store(cs, &err);
        if (rv != 0)
            gv_error("config: %s: stored but not applied here: %s", p->what, gv_strerror(rv));
        cs->applied_local += p->n;
        gv_info("config: %s here", p->what);
    }
    p->done(p->arg, 0);
    cs_pending_free(p);
}

/* Answers every change of list with rv: nothing of them is kept. */
static void refuse(struct node_cstate *cs, struct cs_pending *list, int rv)
{
    while (list != NULL) {
        struct cs_pending *p = list;
        list = p->next;
        if (p->has_st) {
            cs->refused_unsaved++;
            gv_warn("config: refused (%s): the state log cannot be written", p->what);
        }
        p->done(p->arg, rv);
        cs_pending_free(p);
    }
}

static void batch_done(struct node_cstate *cs, int rv)
{
    struct cs_pending *list = cs->inflight;
    cs->inflight = NULL;
    if (cs->log != NULL)
        cs->saves++;
    if (rv == 0) {
        remote_written(cs, cs->remote_sent);
        cs->backoff = false;
        while (list != NULL) {
            struct cs_pending *p = list;
            list = p->next;
            finish(cs, p);
        }
        return;
    }
    cs->save_errors++;
    gv_error("config: cannot write %s's state log: %s; changes made here are refused until it "
             "can",
             cs->n->cfg.node.data_dir ? cs->n->cfg.node.data_dir : "?", gv_strerror(rv));
    /* the changes queued behind were staged on these: they go too */
    struct cs_pending *queued = cs->queued;
    cs->queued = cs->queued_tail = NULL;
    refuse(cs, list, rv);
    refuse(cs, queued, rv);
    cs->backoff = true;
}

static int encode_batch(struct node_cstate *cs)
{
    gv_buf_reset(&cs->batch);
    cs->remote_sent = cs->remote.len;
    if (cs->log == NULL)
        return 0;
    int rv = gv_buf_append(&cs->batch, cs->remote.data, cs->remote.len);
    for (struct cs_pending *p = cs->queued; rv == 0 && p != NULL; p = p->next)
        for (size_t i = 0; rv == 0 && i < p->n; i++)
            rv = cl_statelog_encode(cs->log, &p->entries[i], &cs->batch);
    return rv;
}

static void start_batch(struct node_cstate *cs)
{
    int rv = encode_batch(cs);
    cs->inflight = cs->queued;
    cs->queued = cs->queued_tail = NULL;
    queue_job(cs, false, rv);
}

/* ---- compaction ---------------------------------------------------------------- */

static void start_compaction(struct node_cstate *cs)
{
    gv_buf_reset(&cs->image);
    /* the store holds only what is written (pending changes are not in it)
     * and every peer's change: the image covers the records waiting too */
    cs->remote_sent = cs->remote.len;
    queue_job(cs, true,
              cl_store_save_keyed(cs->store, cs->clock.last, cl_statelog_key(cs->log), &cs->image));
}

static void compaction_done(struct node_cstate *cs, int rv)
{
    if (rv == 0) {
        cs->compactions++;
        cs->image_stale = false;
        cs->backoff = false;
        remote_written(cs, cs->remote_sent);
    } else {
        cs->save_errors++;
        cs->backoff = true;
        gv_error("config: cannot write a new state image in %s: %s (the old one and the log "
                 "stand)",
                 cs->n->cfg.node.data_dir ? cs->n->cfg.node.data_dir : "?", gv_strerror(rv));
    }
    gv_buf_free(&cs->image); /* as large as the state: not kept between compactions */
    gv_buf_init(&cs->image);
}

/* ---- scheduling ---------------------------------------------------------------- */

static bool wants_image(const struct node_cstate *cs)
{
    return cs->log != NULL && (cs->image_stale || cl_statelog_wants_compaction(cs->log));
}

static void on_retry(uv_timer_t *t)
{
    struct node_cstate *cs = t->data;
    cs->backoff = false;
    kick(cs);
}

static void kick(struct node_cstate *cs)
{
    if (cs->writing)
        return;
    if (cs->queued != NULL) /* callers wait: try even after a failure */
        start_batch(cs);
    else if (cs->backoff && cs->closing)
        cs_maybe_finish_close(cs); /* peers' records stay unwritten: the peers hold them */
    else if (cs->backoff && !uv_is_active((uv_handle_t *)&cs->retry_timer))
        uv_timer_start(&cs->retry_timer, on_retry, RETRY_MS, 0);
    else if (cs->backoff)
        return;
    else if (wants_image(cs))
        start_compaction(cs);
    else if (cs->remote.len > 0)
        start_batch(cs);
    else
        cs_maybe_finish_close(cs);
}

static void after_write(uv_work_t *w, int status)
{
    struct node_cstate *cs = w->data;
    int rv = status != 0 ? status : cs->write_rv;
    cs->writing = false;
    if (cs->compacting)
        compaction_done(cs, rv);
    else
        batch_done(cs, rv);
    kick(cs);
}

void cs_save_submit(struct node_cstate *cs, struct cs_pending *p)
{
    p->next = NULL;
    if (cs->queued_tail != NULL)
        cs->queued_tail->next = p;
    else
        cs->queued = p;
    cs->queued_tail = p;
    kick(cs);
}

void cs_save_remote(struct node_cstate *cs, const struct cl_entry *e)
{
    if (cs->log == NULL)
        return;
    if (cs->remote.len > REMOTE_MAX || cl_statelog_encode(cs->log, e, &cs->remote) != 0) {
        /* too much waits (the disk has failed for long): the next write is
         * a whole image instead */
        gv_buf_reset(&cs->remote);
        cs->image_stale = true;
    }
    kick(cs);
}

void cs_save_flush(struct node_cstate *cs)
{
    kick(cs);
}

void cs_save_image_later(struct node_cstate *cs)
{
    if (cs->log == NULL)
        return;
    cs->image_stale = true;
    kick(cs);
}

int cs_save_open(struct node_cstate *cs, const char *dir, const uint8_t *key)
{
    gv_buf_init(&cs->batch);
    gv_buf_init(&cs->remote);
    gv_buf_init(&cs->image);
    return dir != NULL ? cl_statelog_open(dir, key, &cs->log) : 0;
}

void cs_save_close(struct node_cstate *cs)
{
    cl_statelog_close(cs->log);
    cs->log = NULL;
    gv_buf_free(&cs->batch);
    gv_buf_free(&cs->remote);
    gv_buf_free(&cs->image);
}
