/* broadcast.c - the transmit-limited queue, the duplicate filter and the
 * user broadcast channels riding on the swim's gossip. */
#include "cluster/broadcast.h"
#include "cluster/swim_int.h"
#include "common/err.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- queue ---- */

struct cl_bq_item {
    char *key;
    uint64_t khash;
    uint8_t *data;
    size_t len;
    uint32_t transmits, limit;
    uint64_t id;
};

void cl_bq_init(struct cl_bqueue *q, size_t max)
{
    memset(q, 0, sizeof(*q));
    q->max = max ? max : 1;
}

static void item_free(struct cl_bq_item *it)
{
    free(it->key);
    free(it->data);
    free(it);
}

void cl_bq_clear(struct cl_bqueue *q)
{
    for (size_t i = 0; i < q->n; i++)
        item_free(q->items[i]);
    q->n = 0;
}

void cl_bq_free(struct cl_bqueue *q)
{
    cl_bq_clear(q);
    free(q->items);
    q->items = NULL;
    q->cap = 0;
}

size_t cl_bq_len(const struct cl_bqueue *q)
{
    return q->n;
}

static void remove_at(struct cl_bqueue *q, size_t i)
{
    item_free(q->items[i]);
    q->items[i] = q->items[--q->n];
}

static struct cl_bq_item *find_key(const struct cl_bqueue *q, uint64_t h, const char *key)
{
    for (size_t i = 0; i < q->n; i++) {
        struct cl_bq_item *it = q->items[i];
        if (it->khash == h && strcmp(it->key, key) == 0)
            return it;
    }
    return NULL;
}

/* Makes room for one more item pointer. 0 or GV_ENOMEM (q unchanged). */
static int reserve_one(struct cl_bqueue *q)
{
    if (q->n < q->cap)
        return 0;
    size_t ncap = q->cap ? q->cap * 2 : 16;
    struct cl_bq_item **n = realloc(q->items, ncap * sizeof(*n));
    if (n == NULL)
        return GV_ENOMEM;
    q->items = n;
    q->cap = ncap;
    return 0;
}

/* A full queue drops what has been sent most (the oldest among equals). */
static void drop_most_sent(struct cl_bqueue *q)
{
    size_t worst = 0;
    for (size_t i = 1; i < q->n; i++) {
        struct cl_bq_item *a = q->items[i], *b = q->items[worst];
        if (a->transmits > b->transmits || (a->transmits == b->transmits && a->id < b->id))
            worst = i;
    }
    remove_at(q, worst);
    q->dropped++;
}

int cl_bq_push(struct cl_bqueue *q, const char *key, const uint8_t *data, size_t len,
               uint32_t limit)
{
    uint64_t h = gv_hash64(key, strlen(key), 0);
    uint8_t *copy = malloc(len ? len : 1);
    char *k = NULL;
    if (copy == NULL)
        return GV_ENOMEM;
    memcpy(copy, data, len);
    struct cl_bq_item *it = find_key(q, h, key);
    if (it != NULL) {
        /* a newer broadcast with the key replaces the queued one */
        free(it->data);
        q->replaced++;
    } else {
        it = calloc(1, sizeof(*it));
        k = strdup(key);
        if (it == NULL || k == NULL || reserve_one(q) < 0)
            goto fail;
        if (q->n >= q->max)
            drop_most_sent(q);
        it->key = k;
        it->khash = h;
        q->items[q->n++] = it;
    }
    it->data = copy;
    it->len = len;
    it->transmits = 0;
    it->limit = limit;
    it->id = q->next_id++;
    return 0;
fail:
    free(copy);
    free(k);
    free(it);
    return GV_ENOMEM;
}

static int item_cmp(const void *pa, const void *pb)
{
    const struct cl_bq_item *a = *(const struct cl_bq_item *const *)pa;
    const struct cl_bq_item *b = *(const struct cl_bq_item *const *)pb;
    if (a->transmits != b->transmits)
        return a->transmits < b->transmits ? -1 : 1;
    if (a->id != b->id)
        return a->id > b->id ? -1 : 1;
    return 0;
}

size_t cl_bq_fill(struct cl_bqueue *q, size_t budget, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t count = 0, used = 0;
    if (q->n == 0)
        return 0;
    if (q->n > 1)
        qsort(q->items, q->n, sizeof(*q->items), item_cmp);
    for (size_t i = 0; i < q->n && count < CL_WIRE_MAX_UPDATES; i++) {
        struct cl_bq_item *it = q->items[i];
        if (it->len > budget - used || it->len > cap - *out_len)
            continue;
        memcpy(out + *out_len, it->data, it->len);
        *out_len += it->len;
        used += it->len;
        it->transmits++;
        count++;
    }
    if (count == 0) {
        for (size_t i = 0; i < q->n; i++) {
            struct cl_bq_item *it = q->items[i];
            if (it->len <= cap - *out_len) {
                memcpy(out + *out_len, it->data, it->len);
                *out_len += it->len;
                it->transmits++;
                count++;
                break;
            }
        }
    }
    for (size_t i = q->n; i-- > 0;)
        if (q->items[i]->transmits >= q->items[i]->limit)
            remove_at(q, i);
    return count;
}

/* ---- duplicate filter ---- */

int cl_seen_init(struct cl_seen *s, size_t cap)
{
    memset(s, 0, sizeof(*s));
    s->cap = cap ? cap : 1;
    s->gen[0] = calloc(2 * s->cap, sizeof(uint64_t));
    s->gen[1] = calloc(2 * s->cap, sizeof(uint64_t));
    if (s->gen[0] == NULL || s->gen[1] == NULL) {
        cl_seen_free(s);
        return GV_ENOMEM;
    }
    return 0;
}

void cl_seen_free(struct cl_seen *s)
{
    free(s->gen[0]);
    free(s->gen[1]);
    s->gen[0] = s->gen[1] = NULL;
}

/* Open addressing at load <= 1/2, so a probe always ends on an empty slot. */
static uint64_t *seen_slot(uint64_t *tab, size_t cap, uint64_t id)
{
    size_t mask = 2 * cap, i = (size_t)(gv_mix64(id) % mask);
    while (tab[i] != 0 && tab[i] != id)
        i = (i + 1) % mask;
    return &tab[i];
}

bool cl_seen_add(struct cl_seen *s, uint64_t id)
{
    if (id == 0)
        id = 1;
    if (*seen_slot(s->gen[0], s->cap, id) == id || *seen_slot(s->gen[1], s->cap, id) == id)
        return false;
    if (s->count >= s->cap) {
        uint64_t *old = s->gen[1];
        s->gen[1] = s->gen[0];
        s->gen[0] = old;
        memset(old, 0, 2 * s->cap * sizeof(uint64_t));
        s->count = 0;
    }
    *seen_slot(s->gen[0], s->cap, id) = id;
    s->count++;
    return true;
}

/* ---- channels ---- */

static uint64_t bcast_id(const uint8_t *origin, size_t len, uint64_t seq)
{
    return gv_hash64(origin, len, gv_mix64(seq));
}

static void queue_key(char *out, size_t cap, const struct cl_wire_update *u)
{
    /* an empty key never replaces: make it unique per broadcast */
    if (u->key.len)
        snprintf(out, cap, "u:%u:%.*s", u->channel, (int)u->key.len, (const char *)u->key.p);
    else
        snprintf(out, cap, "u!%.*s:%llu", (int)u->from.len, (const char *)u->from.p,
                 (unsigned long long)u->seq);
}

static int queue_user(struct cl_swim *s, const struct cl_wire_update *u)
{
    char key[CL_WIRE_MAX_KEY + CL_WIRE_MAX_NAME + 32];
    size_t cap = u->payload.len + u->key.len + u->from.len + 64, len;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        return GV_ENOMEM;
    int rc = cl_wire_encode_update(u, buf, cap, &len);
    if (rc == 0) {
        queue_key(key, sizeof(key), u);
        rc = cl_bq_push(&s->q, key, buf, len, cl_swim_retransmit_limit(s, true));
    }
    free(buf);
    return rc;
}

int cl_swim_register_channel(struct cl_swim *s, uint8_t channel, const struct cl_channel_ops *ops,
                             void *arg)
{
    if (ops == NULL)
        return GV_EINVAL;
    if (s->channels[channel].ops != NULL)
        return GV_EEXIST;
    s->channels[channel].ops = ops;
    s->channels[channel].arg = arg;
    return 0;
}

void cl_swim_unregister_channel(struct cl_swim *s, uint8_t channel)
{
    s->channels[channel].ops = NULL;
    s->channels[channel].arg = NULL;
}

int cl_swim_broadcast(struct cl_swim *s, uint8_t channel, const char *key, const uint8_t *payload,
                      size_t len)
{
    if (s->stopping)
        return GV_EINVAL;
    if (key == NULL)
        key = "";
    if (strlen(key) > CL_WIRE_MAX_KEY || len > CL_SWIM_MAX_PAYLOAD)
        return GV_ERANGE;
    struct cl_wire_update u = {
        .kind = CL_UPD_USER,
        .channel = channel,
        .key = cl_bytes_str(key),
        .from = cl_bytes_str(s->name),
        .seq = ++s->bcast_seq,
        .payload = {payload, len},
    };
    cl_seen_add(&s->seen, bcast_id(u.from.p, u.from.len, u.seq));
    int rc = queue_user(s, &u);
    if (rc == 0)
        cl_swim_gossip_soon(s);
    return rc;
}

int cl_swim_send_to(struct cl_swim *s, const char *member, uint8_t channel, const uint8_t *payload,
                    size_t len)
{
    if (s->stopping)
        return GV_EINVAL;
    if (len > CL_SWIM_MAX_PAYLOAD)
        return GV_ERANGE;
    struct cl_member *m = cl_swim_find(s, member);
    if (m == NULL)
        return GV_ENOENT;
    struct cl_wire_msg msg = {
        .type = CL_MSG_USER,
        .from = cl_bytes_str(s->name),
        .channel = channel,
        .payload = {payload, len},
    };
    return cl_swim_send_msg(s, m->addr, &msg, false);
}

static void deliver(struct cl_swim *s, uint8_t channel, struct cl_bytes payload,
                    struct cl_bytes origin)
{
    struct cl_channel *ch = &s->channels[channel];
    char from[CL_WIRE_MAX_NAME + 1];
    if (ch->ops == NULL || ch->ops->on_message == NULL ||
        cl_bytes_copy(origin, from, sizeof(from)) < 0)
        return;
    s->stats.broadcasts_delivered++;
    ch->ops->on_message(ch->arg, channel, payload.p, payload.len, from);
}

void cl_bcast_on_update(struct cl_swim *s, const struct cl_wire_update *u)
{
    if (!cl_seen_add(&s->seen, bcast_id(u->from.p, u->from.len, u->seq)))
        return;
    if (cl_bytes_eq(u->from, s->name))
        return;
    /* pass it on before the handler runs: the handler may stop the swim */
    if (!s->leaving) {
        if (queue_user(s, u) < 0)
            s->stats.queue_dropped++;
        else
            cl_swim_gossip_soon(s);
    }
    deliver(s, u->channel, u->payload, u->from);
}

void cl_bcast_on_user(struct cl_swim *s, const struct cl_wire_msg *m)
{
    deliver(s, m->channel, m->payload, m->from);
}

size_t cl_bcast_local_states(struct cl_swim *s, struct gv_buf **bufs, struct cl_wire_state **states)
{
    size_t n = 0;
    *bufs = NULL;
    *states = NULL;
    for (int c = 0; c < 256; c++)
        if (s->channels[c].ops && s->channels[c].ops->local_state)
            n++;
    if (n == 0)
        return 0;
    *bufs = calloc(n, sizeof(**bufs));
    *states = calloc(n, sizeof(**states));
    if (*bufs == NULL || *states == NULL) {
        free(*bufs);
        free(*states);
        *bufs = NULL;
        *states = NULL;
        return 0;
    }
    size_t k = 0;
    for (int c = 0; c < 256 && k < n; c++) {
        struct cl_channel *ch = &s->channels[c];
        if (ch->ops == NULL || ch->ops->local_state == NULL)
            continue;
        struct gv_buf *b = &(*bufs)[k];
        gv_buf_init(b);
        if (ch->ops->local_state(ch->arg, (uint8_t)c, b) < 0 || b->len > CL_SWIM_MAX_PAYLOAD) {
            gv_buf_free(b);
            continue;
        }
        (*states)[k].channel = (uint8_t)c;
        (*states)[k].data.p = (const uint8_t *)b->data;
        (*states)[k].data.len = b->len;
        k++;
    }
    return k;
}

void cl_bcast_states_free(struct gv_buf *bufs, struct cl_wire_state *states, size_t n)
{
    for (size_t i = 0; bufs && i < n; i++)
        gv_buf_free(&bufs[i]);
    free(bufs);
    free(states);
}

void cl_bcast_merge_states(struct cl_swim *s, const struct cl_wire_msg *m, const char *from)
{
    for (size_t i = 0; i < m->n_states; i++) {
        struct cl_channel *ch = &s->channels[m->states[i].channel];
        if (ch->ops == NULL || ch->ops->merge_remote_state == NULL)
            continue;
        ch->ops->merge_remote_state(ch->arg, m->states[i].channel, m->states[i].data.p,
                                    m->states[i].data.len, from, (m->flags & CL_PP_JOIN) != 0);
    }
}
