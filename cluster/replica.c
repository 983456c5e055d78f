/* replica.c - spreading store changes over a swim channel, and the
 * anti-entropy exchange that repairs whatever the broadcasts missed. */
#include "cluster/replica_int.h"
#include "common/err.h"
#include "common/kinds.h"
#include "common/log.h"
#include "common/util.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#define MSG_CHANGE    CL_RMSG_CHANGE
#define MSG_NOTICE    CL_RMSG_NOTICE
#define MSG_FETCH     CL_RMSG_FETCH
#define MSG_ROOT      CL_RMSG_ROOT
#define MSG_SUMMARY   CL_RMSG_SUMMARY
#define MSG_ENTRIES   CL_RMSG_ENTRIES
#define MSG_MARK      CL_RMSG_MARK
#define MSG_ACK       CL_RMSG_ACK
#define SUMMARY_BYTES (CL_STORE_BUCKETS * 8)
#define BATCH_BUDGET  CL_REPLICA_BATCH_BUDGET
#define MAX_FETCH     256

void cl_replica_config_init(struct cl_replica_config *c)
{
    memset(c, 0, sizeof(*c));
    c->channel = 1;
    c->tick_ms = 1000;
    c->inline_max = 4096;
    c->direct = true;
    c->stream_window = 8;
    c->stream_timeout_ms = 2000;
    c->tombstone_ttl_ms = 30ULL * 24 * 3600 * 1000;
}

int cl_replica_buf_write(void *data, const char *p, size_t len)
{
    return gv_buf_append(data, p, len) == 0 ? 0 : -1;
}

/* ---- sending ---- */

int cl_replica_send(struct cl_replica *r, const char *member, const struct gv_buf *b)
{
    return cl_swim_send_to(r->swim, member, r->cfg.channel, (const uint8_t *)b->data, b->len);
}

static void pack_summary(struct cl_replica *r, msgpack_packer *pk, bool reply)
{
    uint64_t buckets[CL_STORE_BUCKETS];
    uint8_t raw[SUMMARY_BYTES];
    cl_store_buckets(r->store, buckets);
    for (size_t i = 0; i < CL_STORE_BUCKETS; i++)
        for (int k = 0; k < 8; k++)
            raw[i * 8 + k] = (uint8_t)(buckets[i] >> (8 * k));
    msgpack_pack_array(pk, 3);
    msgpack_pack_uint8(pk, MSG_SUMMARY);
    reply ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    msgpack_pack_bin_with_body(pk, raw, sizeof(raw));
}

static void send_summary(struct cl_replica *r, const char *member, bool reply)
{
    struct gv_buf b;
    msgpack_packer pk;
    gv_buf_init(&b);
    msgpack_packer_init(&pk, &b, cl_replica_buf_write);
    pack_summary(r, &pk, reply);
    if (b.len > 0 && cl_replica_send(r, member, &b) == 0)
        r->stats.summaries_sent++;
    gv_buf_free(&b);
}

size_t cl_replica_entry_size(const struct cl_entry *e)
{
    return e->value_len + strlen(e->name) + strlen(e->origin) + 40;
}

int cl_replica_pack_entries(struct gv_buf *b, const struct cl_entry **v, size_t n)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, b, cl_replica_buf_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, MSG_ENTRIES);
    msgpack_pack_array(&pk, (uint32_t)n);
    for (size_t k = 0; k < n; k++)
        if (cl_entry_pack(&pk, v[k]) != 0)
            return GV_ENOMEM;
    return b->len > 0 ? 0 : GV_ENOMEM;
}

size_t cl_replica_send_entries(struct cl_replica *r, const char *member,
                               const struct cl_entry **entries, size_t n)
{
    struct gv_buf b;
    size_t failed = 0;
    gv_buf_init(&b);
    for (size_t i = 0; i < n;) {
        size_t j = i, bytes = 0;
        while (j < n && (j == i || bytes + cl_replica_entry_size(entries[j]) <= BATCH_BUDGET))
            bytes += cl_replica_entry_size(entries[j++]);
        gv_buf_reset(&b);
        if (cl_replica_pack_entries(&b, entries + i, j - i) == 0 &&
            cl_replica_send(r, member, &b) == 0)
            r->stats.entries_pushed += j - i;
        else
            failed++;
        i = j;
    }
    gv_buf_free(&b);
    return failed;
}

struct collect {
    const uint8_t *differ; /* per bucket: 1 when it differs */
    const struct cl_entry **v;
    size_t n;
};

static int collect_one(void *arg, const struct cl_entry *e)
{
    struct collect *c = arg;
    if (c->differ[cl_entry_bucket(e->kind, e->name)])
        c->v[c->n++] = e;
    return 0;
}

/* Pushes to member every entry in the buckets where its summary differs from
 * ours; returns how many buckets differ. */
static size_t push_differences(struct cl_replica *r, const char *member, const uint8_t *raw)
{
    uint64_t mine[CL_STORE_BUCKETS];
    uint8_t differ[CL_STORE_BUCKETS];
    size_t ndiff = 0;
    cl_store_buckets(r->store, mine);
    for (size_t i = 0; i < CL_STORE_BUCKETS; i++) {
        uint64_t theirs = 0;
        for (int k = 0; k < 8; k++)
            theirs |= (uint64_t)raw[i * 8 + k] << (8 * k);
        differ[i] = theirs != mine[i];
        ndiff += differ[i];
    }
    if (ndiff == 0 || cl_replica_stream_start(r, member, differ))
        return ndiff;
    struct collect c = {differ, malloc((cl_store_count(r->store) + 1) * sizeof(*c.v)), 0};
    if (c.v == NULL)
        return ndiff;
    cl_store_foreach(r->store, collect_one, &c);
    if (c.n > 0)
        cl_replica_send_entries(r, member, c.v, c.n);
    free(c.v);
    return ndiff;
}

int cl_replica_publish(struct cl_replica *r, const struct cl_entry *e)
{
    struct gv_buf b;
    msgpack_packer pk;
    char key[CL_WIRE_MAX_KEY + 1];
    int rv = 0;
    gv_buf_init(&b);
    msgpack_packer_init(&pk, &b, cl_replica_buf_write);
    if (e->value_len <= r->cfg.inline_max) {
        msgpack_pack_array(&pk, 2);
        msgpack_pack_uint8(&pk, MSG_CHANGE);
        rv = cl_entry_pack(&pk, e);
    } else {
        msgpack_pack_array(&pk, 5);
        msgpack_pack_uint8(&pk, MSG_NOTICE);
        msgpack_pack_uint8(&pk, e->kind);
        msgpack_pack_str_with_body(&pk, e->name, strlen(e->name));
        msgpack_pack_uint64(&pk, e->stamp);
        msgpack_pack_str_with_body(&pk, e->origin, strlen(e->origin));
    }
    /* the key makes a newer write replace an older one still queued */
    snprintf(key, sizeof(key), "%u/%016llx", e->kind,
             (unsigned long long)gv_hash64(e->name, strlen(e->name), 0));
    if (rv == 0)
        rv = b.len ? cl_swim_broadcast(r->swim, r->cfg.channel, key, (const uint8_t *)b.data, b.len)
                   : GV_ENOMEM;
    if (rv == 0)
        r->stats.published++;
    cl_replica_direct_queue(r, e);
    gv_buf_free(&b);
    return rv;
}

/* ---- receiving ---- */

/* Tombstones older than the TTL are not taken back (they were, or are about
 * to be, dropped everywhere). */
static bool too_old(struct cl_replica *r, const struct cl_entry *e)
{
    uint64_t wall = cl_hlc_wall_ms();
    if (!e->deleted || wall < CL_HLC_EPOCH_MS + r->cfg.tombstone_ttl_ms)
        return false;
    return e->stamp < (wall - r->cfg.tombstone_ttl_ms - CL_HLC_EPOCH_MS) << CL_HLC_LOGICAL_BITS;
}

/* A stamp from a clock far ahead of ours would win over every later write of
 * the object and drag our clock along: refused (and counted) until our wall
 * clock catches up. */
static bool too_new(struct cl_replica *r, const struct cl_entry *e)
{
    uint64_t limit = cl_hlc_wall_ms() + CL_HLC_MAX_AHEAD_MS;
    return e->stamp >= CL_HLC_MAX || cl_hlc_unix_ms(e->stamp) > limit;
}

static void take(struct cl_replica *r, const struct cl_entry *e, const char *from)
{
    r->stats.received++;
    if (too_old(r, e))
        return;
    if (too_new(r, e)) {
        char kind[16];
        if (r->stats.from_future++ == 0)
            gv_warn("replica: %s/%s from %s is stamped %llu ms ahead of this clock; refused "
                    "(check NTP)",
                    gv_kind_label(e->kind, kind, sizeof(kind)), e->name, e->origin,
                    (unsigned long long)(cl_hlc_unix_ms(e->stamp) - cl_hlc_wall_ms()));
        return;
    }
    int rv = cl_store_merge(r->store, e);
    if (rv <= 0) {
        if (rv < 0)
            r->stats.malformed++;
        return;
    }
    r->stats.applied++;
    cl_hlc_observe(r->clock, e->stamp);
    if (r->cfg.on_change != NULL)
        r->cfg.on_change(r->cfg.arg, cl_store_get(r->store, e->kind, e->name), from);
}

static bool newer_than_held(struct cl_replica *r, uint8_t kind, const char *name, uint64_t stamp,
                            const char *origin)
{
    const struct cl_entry *cur = cl_store_get(r->store, kind, name);
    if (cur == NULL || stamp > cur->stamp)
        return true;
    return stamp == cur->stamp && strcmp(origin, cur->origin) > 0;
}

static void reply_fetch(struct cl_replica *r, const msgpack_object_array *list, const char *from)
{
    const struct cl_entry *found[MAX_FETCH];
    size_t n = 0;
    for (uint32_t i = 0; i < list->size && n < MAX_FETCH; i++) {
        const msgpack_object *k = &list->ptr[i];
        char name[CL_STORE_MAX_NAME + 1];
        if (k->type != MSGPACK_OBJECT_ARRAY || k->via.array.size != 2 ||
            k->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            k->via.array.ptr[0].via.u64 > UINT8_MAX ||
            k->via.array.ptr[1].type != MSGPACK_OBJECT_STR ||
            k->via.array.ptr[1].via.str.size == 0 ||
            k->via.array.ptr[1].via.str.size > CL_STORE_MAX_NAME) {
            r->stats.malformed++;
            return;
        }
        memcpy(name, k->via.array.ptr[1].via.str.ptr, k->via.array.ptr[1].via.str.size);
        name[k->via.array.ptr[1].via.str.size] = '\0';
        const struct cl_entry *e =
            cl_store_get(r->store, (uint8_t)k->via.array.ptr[0].via.u64, name);
        if (e != NULL)
            found[n++] = e;
    }
    if (n > 0)
        cl_replica_send_entries(r, from, found, n);
}

static void send_fetch(struct cl_replica *r, uint8_t kind, const char *name, const char *member)
{
    struct gv_buf b;
    msgpack_packer pk;
    gv_buf_init(&b);
    msgpack_packer_init(&pk, &b, cl_replica_buf_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, MSG_FETCH);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, kind);
    msgpack_pack_str_with_body(&pk, name, strlen(name));
    if (b.len > 0 && cl_replica_send(r, member, &b) == 0)
        r->stats.fetches++;
    gv_buf_free(&b);
}

/* Copies a msgpack string of 1..max bytes into dst[max + 1]; false when o
 * is not one. */
static bool copy_name(const msgpack_object *o, size_t max, char *dst)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 || o->via.str.size > max)
        return false;
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = '\0';
    return true;
}

/* One handler per message type. Each gets the message's elements (their
 * number already checked) and returns 0 or GV_EPROTO. */

/* [CHANGE, entry]: a write small enough to travel whole. */
static int on_change(struct cl_replica *r, const msgpack_object *a, const char *from,
                     bool in_push_pull)
{
    struct cl_entry e;
    if (cl_entry_unpack(&a[1], &e) < 0)
        return GV_EPROTO;
    take(r, &e, from);
    return 0;
}

/* [NOTICE, kind, name, stamp, origin]: a write too big to broadcast; the
 * entry is fetched from its origin when newer than ours. */
static int on_notice(struct cl_replica *r, const msgpack_object *a, const char *from,
                     bool in_push_pull)
{
    char name[CL_STORE_MAX_NAME + 1], origin[CL_WIRE_MAX_NAME + 1];
    if (a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[1].via.u64 > UINT8_MAX ||
        a[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        !copy_name(&a[2], CL_STORE_MAX_NAME, name) || !copy_name(&a[4], CL_WIRE_MAX_NAME, origin))
        return GV_EPROTO;
    if (newer_than_held(r, (uint8_t)a[1].via.u64, name, a[3].via.u64, origin))
        send_fetch(r, (uint8_t)a[1].via.u64, name, origin);
    return 0;
}

/* [FETCH, [[kind, name]...]]: someone wants these entries. */
static int on_fetch(struct cl_replica *r, const msgpack_object *a, const char *from,
                    bool in_push_pull)
{
    if (a[1].type != MSGPACK_OBJECT_ARRAY)
        return GV_EPROTO;
    reply_fetch(r, &a[1].via.array, from);
    return 0;
}

/* [ROOT, hash]: a peer's store root; a different one starts a summary
 * exchange. */
static int on_root(struct cl_replica *r, const msgpack_object *a, const char *from,
                   bool in_push_pull)
{
    if (a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return GV_EPROTO;
    if (a[1].via.u64 != cl_store_root(r->store))
        send_summary(r, from, true);
    return 0;
}

/* [SUMMARY, reply, buckets]: we push what differs, and send our summary
 * back when asked so the peer pushes its side (in a push-pull exchange the
 * peer gets ours anyway). */
static int on_summary(struct cl_replica *r, const msgpack_object *a, const char *from,
                      bool in_push_pull)
{
    if (a[1].type != MSGPACK_OBJECT_BOOLEAN || a[2].type != MSGPACK_OBJECT_BIN ||
        a[2].via.bin.size != SUMMARY_BYTES)
        return GV_EPROTO;
    if (push_differences(r, from, (const uint8_t *)a[2].via.bin.ptr) > 0 && a[1].via.boolean &&
        !in_push_pull)
        send_summary(r, from, false);
    return 0;
}

/* [ENTRIES, [entry...]]: a batch pushed or fetched; nothing is taken from
 * a damaged batch. */
static int on_entries(struct cl_replica *r, const msgpack_object *a, const char *from,
                      bool in_push_pull)
{
    const msgpack_object_array *list = &a[1].via.array;
    struct cl_entry e;
    if (a[1].type != MSGPACK_OBJECT_ARRAY)
        return GV_EPROTO;
    for (uint32_t i = 0; i < list->size; i++)
        if (cl_entry_unpack(&list->ptr[i], &e) < 0)
            return GV_EPROTO;
    for (uint32_t i = 0; i < list->size; i++) {
        cl_entry_unpack(&list->ptr[i], &e);
        take(r, &e, from);
    }
    return 0;
}

/* [MARK, stream, seq]: a streamed window ends; the entries before it are in
 * (one ordered connection), so it is acked at once. */
static int on_mark(struct cl_replica *r, const msgpack_object *a, const char *from,
                   bool in_push_pull)
{
    if (a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        a[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return GV_EPROTO;
    cl_replica_on_mark(r, a[1].via.u64, a[2].via.u64, from);
    return 0;
}

/* [ACK, stream, seq]: the member took a window; the next goes. */
static int on_ack(struct cl_replica *r, const msgpack_object *a, const char *from,
                  bool in_push_pull)
{
    if (a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        a[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return GV_EPROTO;
    cl_replica_on_ack(r, a[1].via.u64, a[2].via.u64, from);
    return 0;
}

static const struct {
    uint32_t size;     /* elements, the type included */
    bool in_push_pull; /* may come in a push-pull state exchange */
    int (*fn)(struct cl_replica *r, const msgpack_object *a, const char *from, bool in_push_pull);
} handlers[] = {
    [MSG_CHANGE] = {2, false, on_change},  [MSG_NOTICE] = {5, false, on_notice},
    [MSG_FETCH] = {2, false, on_fetch},    [MSG_ROOT] = {2, false, on_root},
    [MSG_SUMMARY] = {3, true, on_summary}, [MSG_ENTRIES] = {2, false, on_entries},
    [MSG_MARK] = {3, false, on_mark},      [MSG_ACK] = {3, false, on_ack},
};

static int handle(struct cl_replica *r, const msgpack_object *m, const char *from,
                  bool in_push_pull)
{
    if (m->type != MSGPACK_OBJECT_ARRAY || m->via.array.size < 2 ||
        m->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return GV_EPROTO;
    uint64_t type = m->via.array.ptr[0].via.u64;
    if (type >= GV_ARRAY_LEN(handlers) || handlers[type].fn == NULL ||
        m->via.array.size != handlers[type].size || (in_push_pull && !handlers[type].in_push_pull))
        return GV_EPROTO;
    return handlers[type].fn(r, m->via.array.ptr, from, in_push_pull);
}

static void receive(struct cl_replica *r, const uint8_t *p, size_t len, const char *from,
                    bool in_push_pull)
{
    size_t end, off = 0;
    if (cl_wire_skim(p, len, &end) < 0 || end != len) {
        r->stats.malformed++;
        return;
    }
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    if (msgpack_unpack_next(&up, (const char *)p, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != len || handle(r, &up.data, from, in_push_pull) < 0)
        r->stats.malformed++;
    msgpack_unpacked_destroy(&up);
}

static void on_message(void *arg, uint8_t channel, const uint8_t *payload, size_t len,
                       const char *origin)
{
    (void)channel;
    receive(arg, payload, len, origin, false);
}

static int local_state(void *arg, uint8_t channel, struct gv_buf *out)
{
    struct cl_replica *r = arg;
    msgpack_packer pk;
    (void)channel;
    msgpack_packer_init(&pk, out, cl_replica_buf_write);
    size_t before = out->len;
    pack_summary(r, &pk, false);
    if (out->len == before)
        return GV_ENOMEM;
    r->stats.summaries_sent++;
    return 0;
}

static void merge_remote_state(void *arg, uint8_t channel, const uint8_t *state, size_t len,
                               const char *from, bool join)
{
    (void)channel;
    (void)join;
    /* The peer gets our summary in the same exchange and pushes its side. */
    receive(arg, state, len, from, true);
}

static const struct cl_channel_ops replica_ops = {
    .on_message = on_message,
    .local_state = local_state,
    .merge_remote_state = merge_remote_state,
};

/* ---- the anti-entropy tick ---- */

struct pick {
    const char *chosen;
    char name[CL_WIRE_MAX_NAME + 1];
    uint64_t seen;
};

/* Reservoir sampling: one alive member other than this node, uniformly. */
static int pick_one(void *arg, const struct cl_member_info *m)
{
    struct pick *p = arg;
    if (m->is_self || m->state != CL_STATE_ALIVE)
        return 0;
    if (gv_rand64() % ++p->seen == 0) {
        snprintf(p->name, sizeof(p->name), "%s", m->name);
        p->chosen = p->name;
    }
    return 0;
}

static void send_root(struct cl_replica *r, const char *member)
{
    struct gv_buf b;
    msgpack_packer pk;
    gv_buf_init(&b);
    msgpack_packer_init(&pk, &b, cl_replica_buf_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, MSG_ROOT);
    msgpack_pack_uint64(&pk, cl_store_root(r->store));
    if (b.len > 0 && cl_replica_send(r, member, &b) == 0)
        r->stats.roots_sent++;
    gv_buf_free(&b);
}

static void on_tick(uv_timer_t *t)
{
    struct cl_replica *r = t->data;
    struct pick p = {0};
    cl_swim_members(r->swim, pick_one, &p);
    if (p.chosen != NULL)
        send_root(r, p.chosen);
}

int cl_replica_sync_with(struct cl_replica *r, const char *member)
{
    struct cl_member_info m;
    if (cl_swim_member(r->swim, member, &m) != 0 || m.is_self)
        return GV_ENOENT;
    send_summary(r, member, true);
    return 0;
}

/* ---- life ---- */

static void on_closed(uv_handle_t *h)
{
    struct cl_replica *r = h->data;
    if (--r->open_handles > 0)
        return;
    void (*done)(void *) = r->done;
    void *arg = r->done_arg;
    free(r->direct);
    free(r);
    if (done != NULL)
        done(arg);
}

static void close_handles(struct cl_replica *r)
{
    uv_timer_stop(&r->tick);
    uv_timer_stop(&r->push);
    uv_close((uv_handle_t *)&r->tick, on_closed);
    uv_close((uv_handle_t *)&r->push, on_closed);
}

static void apply_defaults(struct cl_replica_config *c)
{
    if (c->tick_ms == 0)
        c->tick_ms = 1000;
    if (c->stream_window == 0)
        c->stream_window = 8;
    if (c->stream_timeout_ms == 0)
        c->stream_timeout_ms = 2000;
}

int cl_replica_new(uv_loop_t *loop, struct cl_swim *swim, struct cl_store *store,
                   struct cl_hlc *clock, const struct cl_replica_config *cfg,
                   struct cl_replica **out)
{
    struct cl_replica *r = calloc(1, sizeof(*r));
    int rv;
    if (r == NULL || (r->direct = calloc(CL_DIRECT_QUEUE, sizeof(*r->direct))) == NULL) {
        free(r);
        return GV_ENOMEM;
    }
    r->loop = loop;
    r->swim = swim;
    r->store = store;
    r->clock = clock;
    r->cfg = *cfg;
    apply_defaults(&r->cfg);
    uv_timer_init(loop, &r->tick); /* cannot fail for timers */
    uv_timer_init(loop, &r->push);
    r->tick.data = r->push.data = r;
    r->open_handles = 2;
    if ((rv = cl_swim_register_channel(swim, cfg->channel, &replica_ops, r)) != 0) {
        close_handles(r); /* frees r; done is NULL */
        return rv;
    }
    /* jitter the first tick so members do not probe in lockstep */
    uv_timer_start(&r->tick, on_tick, r->cfg.tick_ms / 2 + gv_rand64() % r->cfg.tick_ms,
                   r->cfg.tick_ms);
    *out = r;
    return 0;
}

const struct cl_replica_stats *cl_replica_stats(const struct cl_replica *r)
{
    return &r->stats;
}

void cl_replica_close(struct cl_replica *r, void (*done)(void *arg), void *arg)
{
    r->done = done;
    r->done_arg = arg;
    cl_swim_unregister_channel(r->swim, r->cfg.channel);
    close_handles(r);
}
