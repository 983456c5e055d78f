/* replica_push.c - pushing entries to members point to point: the direct
 * spread of local writes (every live member gets them in one hop, gossip
 * and anti-entropy repair what it misses) and streamed transfers of large
 * differences (a joining node), a window of messages per ack. */
#include "cluster/replica_int.h"
#include "common/err.h"
#include "common/log.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

/* A paused stream (its member's send queue was full) retries this often. */
#define STREAM_RETRY_MS 20
/* Entries read per streamed chunk: about one message's worth. */
#define CHUNK_BYTES (CL_REPLICA_BATCH_BUDGET * 3 / 4)
#define CHUNK_MAX   2048

static void on_push(uv_timer_t *t);

static void arm_push(struct cl_replica *r, uint64_t ms)
{
    if (!uv_is_closing((uv_handle_t *)&r->push))
        uv_timer_start(&r->push, on_push, ms, 0);
}

/* ---- direct spread ---- */

void cl_replica_direct_queue(struct cl_replica *r, const struct cl_entry *e)
{
    if (!r->cfg.direct || r->direct == NULL)
        return;
    for (size_t i = 0; i < r->ndirect; i++)
        if (r->direct[i].kind == e->kind && strcmp(r->direct[i].name, e->name) == 0)
            return; /* the flush sends the newest version held */
    if (r->ndirect == CL_DIRECT_QUEUE) {
        r->stats.direct_skipped++;
        return;
    }
    struct cl_direct_key *k = &r->direct[r->ndirect++];
    k->kind = e->kind;
    snprintf(k->name, sizeof(k->name), "%s", e->name);
    arm_push(r, 0);
}

struct peers {
    char (*names)[CL_WIRE_MAX_NAME + 1];
    size_t n, cap;
};

/* Members worth a direct message: alive or suspected (maybe alive). */
static int add_peer(void *arg, const struct cl_member_info *m)
{
    struct peers *p = arg;
    if (m->is_self || (m->state != CL_STATE_ALIVE && m->state != CL_STATE_SUSPECT))
        return 0;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        void *v = realloc(p->names, cap * sizeof(*p->names));
        if (v == NULL)
            return GV_ENOMEM;
        p->names = v;
        p->cap = cap;
    }
    snprintf(p->names[p->n++], sizeof(p->names[0]), "%s", m->name);
    return 0;
}

/* Takes from the queue the entries that fit one message; returns how many. */
static size_t direct_take(struct cl_replica *r, const struct cl_entry **v)
{
    size_t n = 0, bytes = 0, used = 0;
    for (; used < r->ndirect; used++) {
        const struct cl_entry *e =
            cl_store_get(r->store, r->direct[used].kind, r->direct[used].name);
        if (e == NULL)
            continue;
        if (n > 0 && bytes + cl_replica_entry_size(e) > CL_REPLICA_BATCH_BUDGET)
            break;
        v[n++] = e;
        bytes += cl_replica_entry_size(e);
    }
    memmove(r->direct, r->direct + used, (r->ndirect - used) * sizeof(*r->direct));
    r->ndirect -= used;
    return n;
}

/* One ENTRIES message with the queued writes, to every live member. */
static void direct_flush(struct cl_replica *r)
{
    const struct cl_entry *v[CL_DIRECT_QUEUE];
    struct peers p = {0};
    struct gv_buf b;
    size_t n = direct_take(r, v);
    gv_buf_init(&b);
    if (n == 0 || cl_replica_pack_entries(&b, v, n) != 0 ||
        cl_swim_members(r->swim, add_peer, &p) != 0)
        goto done;
    for (size_t i = 0; i < p.n; i++) {
        if (cl_replica_send(r, p.names[i], &b) == 0)
            r->stats.direct_sent++;
        else
            r->stats.direct_failed++;
    }
done:
    free(p.names);
    gv_buf_free(&b);
}

/* ---- streamed transfers ---- */

struct chunk {
    const uint8_t *differ;
    const struct cl_entry **v;
    size_t n, cap, bytes;
    bool nomem;
};

/* Adds e when its bucket differs. A scan stops only at the end of a slot,
 * so the array grows past CHUNK_MAX when a slot's chain needs it. */
static int chunk_add(void *arg, const struct cl_entry *e)
{
    struct chunk *c = arg;
    if (!c->differ[cl_entry_bucket(e->kind, e->name)])
        return c->bytes >= CHUNK_BYTES || c->n >= CHUNK_MAX;
    if (c->n == c->cap) {
        const struct cl_entry **v = realloc(c->v, 2 * c->cap * sizeof(*v));
        if (v == NULL) {
            c->nomem = true;
            return 1;
        }
        c->v = v;
        c->cap *= 2;
    }
    c->v[c->n++] = e;
    c->bytes += cl_replica_entry_size(e);
    return c->bytes >= CHUNK_BYTES || c->n >= CHUNK_MAX;
}

static void send_mark(struct cl_replica *r, const char *member, uint8_t type, uint64_t id,
                      uint64_t seq)
{
    struct gv_buf b;
    msgpack_packer pk;
    gv_buf_init(&b);
    msgpack_packer_init(&pk, &b, cl_replica_buf_write);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, type);
    msgpack_pack_uint64(&pk, id);
    msgpack_pack_uint64(&pk, seq);
    if (b.len > 0)
        cl_replica_send(r, member, &b);
    gv_buf_free(&b);
}

static void stream_end(struct cl_replica *r, struct cl_stream *st, bool done)
{
    st->active = false;
    if (done)
        r->stats.streams_done++;
    else
        r->stats.streams_lost++;
}

/* Sends the next chunk; returns 1 when sent, 0 at the end, -1 when the
 * transport refused it or memory ran out (the cursor stays: it goes again). */
static int stream_chunk(struct cl_replica *r, struct cl_stream *st, struct chunk *c)
{
    c->n = c->bytes = 0;
    size_t next = cl_store_scan(r->store, st->slot, chunk_add, c);
    if (c->nomem || (c->n > 0 && cl_replica_send_entries(r, st->member, c->v, c->n) > 0))
        return -1;
    st->slot = next;
    return c->n > 0;
}

/* Retried by the push timer until it goes, or ends when it has not for
 * stream_timeout_ms. */
static void stream_pause(struct cl_replica *r, struct cl_stream *st)
{
    if (!st->paused)
        st->since_ms = uv_now(r->loop);
    st->paused = true;
}

/* Sends a window of chunks and its mark, or ends the stream. */
static void stream_pump(struct cl_replica *r, struct cl_stream *st)
{
    struct chunk c = {st->differ, malloc(CHUNK_MAX * sizeof(*c.v)), 0, CHUNK_MAX, 0, false};
    uint32_t sent = 0;
    if (c.v == NULL) {
        stream_pause(r, st);
        return;
    }
    if (cl_store_slots(r->store) != st->slots) { /* the table grew: again from the start */
        st->slot = 0;
        st->slots = cl_store_slots(r->store);
    }
    while (sent < r->cfg.stream_window && st->slot < st->slots) {
        int rv = stream_chunk(r, st, &c);
        if (rv < 0) {
            stream_pause(r, st);
            goto out;
        }
        sent += (uint32_t)rv;
    }
    st->paused = false;
    if (st->slot >= st->slots) {
        stream_end(r, st, true);
    } else {
        send_mark(r, st->member, CL_RMSG_MARK, st->id, st->seq);
        st->waiting = true;
        st->since_ms = uv_now(r->loop);
    }
out:
    free(c.v);
}

bool cl_replica_stream_start(struct cl_replica *r, const char *member, const uint8_t *differ)
{
    struct cl_stream *st = NULL;
    for (size_t i = 0; i < CL_MAX_STREAMS; i++) {
        if (r->streams[i].active && strcmp(r->streams[i].member, member) == 0)
            return true;
        if (!r->streams[i].active && st == NULL)
            st = &r->streams[i];
    }
    if (st == NULL)
        return false;
    memset(st, 0, sizeof(*st));
    st->active = true;
    snprintf(st->member, sizeof(st->member), "%s", member);
    memcpy(st->differ, differ, sizeof(st->differ));
    st->slots = cl_store_slots(r->store);
    st->id = ++r->next_stream;
    r->stats.streams++;
    /* the first window goes next loop turn, after whatever answer is being
     * made now (a join's push-pull reply, which introduces this node) */
    st->paused = true;
    st->since_ms = uv_now(r->loop);
    arm_push(r, 0);
    return true;
}

void cl_replica_on_mark(struct cl_replica *r, uint64_t id, uint64_t seq, const char *from)
{
    send_mark(r, from, CL_RMSG_ACK, id, seq);
}

void cl_replica_on_ack(struct cl_replica *r, uint64_t id, uint64_t seq, const char *from)
{
    for (size_t i = 0; i < CL_MAX_STREAMS; i++) {
        struct cl_stream *st = &r->streams[i];
        if (!st->active || !st->waiting || st->id != id || st->seq != seq ||
            strcmp(st->member, from) != 0)
            continue;
        st->waiting = false;
        st->seq++;
        stream_pump(r, st);
        return;
    }
}

/* Gives up on streams whose window went unacked (a member of an older
 * version, or gone), retries paused ones; true while any is left. */
static bool streams_service(struct cl_replica *r)
{
    bool any = false;
    uint64_t now = uv_now(r->loop);
    for (size_t i = 0; i < CL_MAX_STREAMS; i++) {
        struct cl_stream *st = &r->streams[i];
        if (!st->active)
            continue;
        if ((st->waiting || st->paused) && now - st->since_ms > r->cfg.stream_timeout_ms)
            stream_end(r, st, false);
        else if (st->paused)
            stream_pump(r, st);
        any |= st->active;
    }
    return any;
}

static void on_push(uv_timer_t *t)
{
    struct cl_replica *r = t->data;
    if (r->ndirect > 0)
        direct_flush(r);
    bool streaming = streams_service(r);
    if (r->ndirect > 0)
        arm_push(r, 0);
    else if (streaming)
        arm_push(r, STREAM_RETRY_MS);
}
