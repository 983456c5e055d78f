/* wire.c - msgpack encoding and strict decoding of gossip messages.
 *
 * msgpack-c allocates an array's element table from the declared count before
 * reading the elements, so a forged count could ask for gigabytes. Before
 * msgpack-c sees a body, cl_wire_skim() walks its tokens and checks that every
 * container's count fits in the bytes that remain (each element takes at
 * least one byte), which bounds what msgpack-c may allocate by the input size.
 */
#include "cluster/wire.h"
#include "cluster/transport.h"
#include "common/err.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

/* ---- decoding ---- */

static int read_be(const uint8_t *p, size_t avail, size_t n, uint64_t *v)
{
    if (n > avail)
        return GV_EPROTO;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = (x << 8) | p[i];
    *v = x;
    return 0;
}

/* What follows the head of a msgpack token whose first byte is 0xc0..0xdf.
 * (Below 0xc0 and from 0xe0 on, the first byte says it all: fixint, fixmap,
 * fixarray, fixstr.) */
enum skim_kind {
    SK_BAD,   /* 0xc1: never used */
    SK_FIXED, /* a payload of `width` bytes */
    SK_SIZED, /* a big-endian length of `width` bytes, then `extra` + that many bytes */
    SK_ARRAY, /* a big-endian count of `width` bytes, then that many objects */
    SK_MAP,   /* the same with twice that many objects */
};

struct skim_op {
    uint8_t kind;
    uint8_t width;
    uint8_t extra; /* ext: the type byte after the length */
};

static const struct skim_op skim_ops[0xe0 - 0xc0] = {
    [0xc0 - 0xc0] = {SK_FIXED, 0, 0},  /* nil */
    [0xc2 - 0xc0] = {SK_FIXED, 0, 0},  /* false */
    [0xc3 - 0xc0] = {SK_FIXED, 0, 0},  /* true */
    [0xc4 - 0xc0] = {SK_SIZED, 1, 0},  /* bin 8 */
    [0xc5 - 0xc0] = {SK_SIZED, 2, 0},  /* bin 16 */
    [0xc6 - 0xc0] = {SK_SIZED, 4, 0},  /* bin 32 */
    [0xc7 - 0xc0] = {SK_SIZED, 1, 1},  /* ext 8 */
    [0xc8 - 0xc0] = {SK_SIZED, 2, 1},  /* ext 16 */
    [0xc9 - 0xc0] = {SK_SIZED, 4, 1},  /* ext 32 */
    [0xca - 0xc0] = {SK_FIXED, 4, 0},  /* float 32 */
    [0xcb - 0xc0] = {SK_FIXED, 8, 0},  /* float 64 */
    [0xcc - 0xc0] = {SK_FIXED, 1, 0},  /* uint 8 */
    [0xcd - 0xc0] = {SK_FIXED, 2, 0},  /* uint 16 */
    [0xce - 0xc0] = {SK_FIXED, 4, 0},  /* uint 32 */
    [0xcf - 0xc0] = {SK_FIXED, 8, 0},  /* uint 64 */
    [0xd0 - 0xc0] = {SK_FIXED, 1, 0},  /* int 8 */
    [0xd1 - 0xc0] = {SK_FIXED, 2, 0},  /* int 16 */
    [0xd2 - 0xc0] = {SK_FIXED, 4, 0},  /* int 32 */
    [0xd3 - 0xc0] = {SK_FIXED, 8, 0},  /* int 64 */
    [0xd4 - 0xc0] = {SK_FIXED, 2, 0},  /* fixext 1 */
    [0xd5 - 0xc0] = {SK_FIXED, 3, 0},  /* fixext 2 */
    [0xd6 - 0xc0] = {SK_FIXED, 5, 0},  /* fixext 4 */
    [0xd7 - 0xc0] = {SK_FIXED, 9, 0},  /* fixext 8 */
    [0xd8 - 0xc0] = {SK_FIXED, 17, 0}, /* fixext 16 */
    [0xd9 - 0xc0] = {SK_SIZED, 1, 0},  /* str 8 */
    [0xda - 0xc0] = {SK_SIZED, 2, 0},  /* str 16 */
    [0xdb - 0xc0] = {SK_SIZED, 4, 0},  /* str 32 */
    [0xdc - 0xc0] = {SK_ARRAY, 2, 0},  /* array 16 */
    [0xdd - 0xc0] = {SK_ARRAY, 4, 0},  /* array 32 */
    [0xde - 0xc0] = {SK_MAP, 2, 0},    /* map 16 */
    [0xdf - 0xc0] = {SK_MAP, 4, 0},    /* map 32 */
};

/* Reads the head of the token at p[*off..len) and moves *off past it. Sets
 * *skip to the payload bytes that follow the head and *n to the objects the
 * token contains. GV_EPROTO when the head is cut short or the byte is
 * unused; neither *skip nor *n is checked against what remains. */
static int skim_head(const uint8_t *p, size_t len, size_t *off, uint64_t *skip, uint64_t *n)
{
    if (*off >= len)
        return GV_EPROTO;
    uint8_t b = p[(*off)++];
    uint64_t v;
    *skip = *n = 0;
    if (b <= 0x7f || b >= 0xe0) /* fixint */
        return 0;
    if (b <= 0x8f) { /* fixmap */
        *n = 2u * (b & 0x0f);
        return 0;
    }
    if (b <= 0x9f) { /* fixarray */
        *n = b & 0x0f;
        return 0;
    }
    if (b <= 0xbf) { /* fixstr */
        *skip = b & 0x1f;
        return 0;
    }
    const struct skim_op *op = &skim_ops[b - 0xc0];
    if (op->kind == SK_BAD)
        return GV_EPROTO;
    if (op->kind == SK_FIXED) {
        *skip = op->width;
        return 0;
    }
    if (read_be(p + *off, len - *off, op->width, &v) < 0)
        return GV_EPROTO;
    *off += op->width;
    if (op->kind == SK_SIZED)
        *skip = v + op->extra;
    else
        *n = op->kind == SK_MAP ? 2 * v : v;
    return 0;
}

/* Walks one msgpack object at p[0..len) without building it. Returns 0 and
 * the object's end in *end, or GV_EPROTO when a length or count cannot fit. */
int cl_wire_skim(const uint8_t *p, size_t len, size_t *end)
{
    size_t off = 0, pending = 1;
    while (pending > 0) {
        uint64_t skip, n;
        if (skim_head(p, len, &off, &skip, &n) < 0 || skip > len - off)
            return GV_EPROTO;
        off += (size_t)skip;
        pending--;
        /* every pending element needs at least one byte of its own */
        if (pending > len - off || n > len - off - pending)
            return GV_EPROTO;
        pending += (size_t)n;
    }
    *end = off;
    return 0;
}

static int get_uint(const msgpack_object *o, uint64_t max, uint64_t *v)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
        return GV_EPROTO;
    *v = o->via.u64;
    return 0;
}

/* A string of 1..max bytes with no NUL (names, addresses), or 0..max when
 * empty_ok. */
static int get_str(const msgpack_object *o, size_t max, bool empty_ok, struct cl_bytes *b)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > max ||
        (o->via.str.size == 0 && !empty_ok))
        return GV_EPROTO;
    if (o->via.str.size && memchr(o->via.str.ptr, 0, o->via.str.size) != NULL)
        return GV_EPROTO;
    b->p = (const uint8_t *)o->via.str.ptr;
    b->len = o->via.str.size;
    return 0;
}

/* A member name: what node.name allows ([A-Za-z0-9_.-]); anything else in
 * a name (a control byte, "\x02A") is junk that must never become a member. */
static int get_name(const msgpack_object *o, struct cl_bytes *b)
{
    if (get_str(o, CL_WIRE_MAX_NAME, false, b) < 0)
        return GV_EPROTO;
    for (size_t i = 0; i < b->len; i++) {
        uint8_t c = b->p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return GV_EPROTO;
    }
    return 0;
}

/* A member address: HOST:PORT in printable ASCII without spaces. */
static int get_addr(const msgpack_object *o, struct cl_bytes *b)
{
    bool colon = false;
    if (get_str(o, CL_WIRE_MAX_ADDR, false, b) < 0)
        return GV_EPROTO;
    for (size_t i = 0; i < b->len; i++) {
        if (b->p[i] <= ' ' || b->p[i] >= 0x7f)
            return GV_EPROTO;
        colon |= b->p[i] == ':';
    }
    return colon ? 0 : GV_EPROTO;
}

static int get_bin(const msgpack_object *o, size_t max, struct cl_bytes *b)
{
    if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size > max)
        return GV_EPROTO;
    b->p = (const uint8_t *)o->via.bin.ptr;
    b->len = o->via.bin.size;
    return 0;
}

static const msgpack_object *get_array(const msgpack_object *o, size_t want)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != want)
        return NULL;
    return o->via.array.ptr;
}

static int decode_update(const msgpack_object *o, struct cl_wire_update *u)
{
    uint64_t v;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 1)
        return GV_EPROTO;
    const msgpack_object *a = o->via.array.ptr;
    if (get_uint(&a[0], CL_UPD_USER, &v) < 0 || v < CL_UPD_ALIVE)
        return GV_EPROTO;
    memset(u, 0, sizeof(*u));
    u->kind = (enum cl_update_kind)v;
    switch (u->kind) {
    case CL_UPD_ALIVE:
        if (o->via.array.size != 5 || get_name(&a[1], &u->name) < 0 ||
            get_addr(&a[2], &u->addr) < 0 || get_uint(&a[3], UINT64_MAX, &u->incarnation) < 0 ||
            get_bin(&a[4], CL_WIRE_MAX_META, &u->meta) < 0)
            return GV_EPROTO;
        return 0;
    case CL_UPD_SUSPECT:
    case CL_UPD_DEAD:
        if (o->via.array.size != 4 || get_name(&a[1], &u->name) < 0 ||
            get_uint(&a[2], UINT64_MAX, &u->incarnation) < 0 || get_name(&a[3], &u->from) < 0)
            return GV_EPROTO;
        return 0;
    case CL_UPD_USER:
        if (o->via.array.size != 6 || get_uint(&a[1], UINT8_MAX, &v) < 0)
            return GV_EPROTO;
        u->channel = (uint8_t)v;
        if (get_str(&a[2], CL_WIRE_MAX_KEY, true, &u->key) < 0 || get_name(&a[3], &u->from) < 0 ||
            get_uint(&a[4], UINT64_MAX, &u->seq) < 0 ||
            get_bin(&a[5], CL_MAX_MESSAGE, &u->payload) < 0)
            return GV_EPROTO;
        return 0;
    }
    return GV_EPROTO;
}

static int decode_updates(const msgpack_object *o, struct cl_wire_msg *m)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > CL_WIRE_MAX_UPDATES)
        return GV_EPROTO;
    size_t n = o->via.array.size;
    if (n == 0)
        return 0;
    m->updates = calloc(n, sizeof(*m->updates));
    if (m->updates == NULL)
        return GV_ENOMEM;
    m->n_updates = n;
    for (size_t i = 0; i < n; i++)
        if (decode_update(&o->via.array.ptr[i], &m->updates[i]) < 0)
            return GV_EPROTO;
    return 0;
}

static int decode_members(const msgpack_object *o, struct cl_wire_msg *m)
{
    uint64_t v;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > CL_WIRE_MAX_MEMBERS)
        return GV_EPROTO;
    size_t n = o->via.array.size;
    if (n == 0)
        return 0;
    m->members = calloc(n, sizeof(*m->members));
    if (m->members == NULL)
        return GV_ENOMEM;
    m->n_members = n;
    for (size_t i = 0; i < n; i++) {
        struct cl_wire_member *w = &m->members[i];
        const msgpack_object *a = get_array(&o->via.array.ptr[i], 5);
        if (a == NULL || get_name(&a[0], &w->name) < 0 || get_addr(&a[1], &w->addr) < 0 ||
            get_uint(&a[2], UINT64_MAX, &w->incarnation) < 0 ||
            get_uint(&a[3], CL_STATE_LEFT, &v) < 0 ||
            get_bin(&a[4], CL_WIRE_MAX_META, &w->meta) < 0)
            return GV_EPROTO;
        w->state = (enum cl_member_state)v;
    }
    return 0;
}

static int decode_states(const msgpack_object *o, struct cl_wire_msg *m)
{
    uint64_t v;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > CL_WIRE_MAX_STATES)
        return GV_EPROTO;
    size_t n = o->via.array.size;
    if (n == 0)
        return 0;
    m->states = calloc(n, sizeof(*m->states));
    if (m->states == NULL)
        return GV_ENOMEM;
    m->n_states = n;
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *a = get_array(&o->via.array.ptr[i], 2);
        if (a == NULL || get_uint(&a[0], UINT8_MAX, &v) < 0 ||
            get_bin(&a[1], CL_MAX_MESSAGE, &m->states[i].data) < 0)
            return GV_EPROTO;
        m->states[i].channel = (uint8_t)v;
    }
    return 0;
}

/* One decoder per message type (the bodies are listed in wire.h); each
 * checks the body's shape and fills m. */

/* ping_req is a ping with the target's address before the updates. */
static int decode_ping(const msgpack_object *body, struct cl_wire_msg *m)
{
    const msgpack_object *a;
    uint64_t v;
    size_t n = m->type == CL_MSG_PING ? 5 : 6;
    if ((a = get_array(body, n)) == NULL || get_uint(&a[0], UINT32_MAX, &v) < 0 ||
        get_name(&a[1], &m->from) < 0 || get_addr(&a[2], &m->from_addr) < 0 ||
        get_name(&a[3], &m->target) < 0)
        return GV_EPROTO;
    m->seq = (uint32_t)v;
    if (m->type == CL_MSG_PING_REQ && get_addr(&a[4], &m->target_addr) < 0)
        return GV_EPROTO;
    return decode_updates(&a[n - 1], m);
}

/* ack and nack share a body. */
static int decode_ack(const msgpack_object *body, struct cl_wire_msg *m)
{
    const msgpack_object *a;
    uint64_t v;
    if ((a = get_array(body, 3)) == NULL || get_uint(&a[0], UINT32_MAX, &v) < 0 ||
        get_name(&a[1], &m->from) < 0)
        return GV_EPROTO;
    m->seq = (uint32_t)v;
    return decode_updates(&a[2], m);
}

static int decode_gossip(const msgpack_object *body, struct cl_wire_msg *m)
{
    const msgpack_object *a;
    if ((a = get_array(body, 2)) == NULL || get_name(&a[0], &m->from) < 0)
        return GV_EPROTO;
    return decode_updates(&a[1], m);
}

static int decode_push_pull(const msgpack_object *body, struct cl_wire_msg *m)
{
    const msgpack_object *a;
    uint64_t v;
    int rc;
    if ((a = get_array(body, 5)) == NULL || get_uint(&a[0], CL_PP_REPLY | CL_PP_JOIN, &v) < 0 ||
        get_name(&a[1], &m->from) < 0 || get_addr(&a[2], &m->from_addr) < 0)
        return GV_EPROTO;
    m->flags = (uint8_t)v;
    if ((rc = decode_members(&a[3], m)) < 0)
        return rc;
    return decode_states(&a[4], m);
}

static int decode_user(const msgpack_object *body, struct cl_wire_msg *m)
{
    const msgpack_object *a;
    uint64_t v;
    if ((a = get_array(body, 3)) == NULL || get_name(&a[0], &m->from) < 0 ||
        get_uint(&a[1], UINT8_MAX, &v) < 0 || get_bin(&a[2], CL_MAX_MESSAGE, &m->payload) < 0)
        return GV_EPROTO;
    m->channel = (uint8_t)v;
    return 0;
}

static int (*const decoders[CL_MSG_TYPE_MAX + 1])(const msgpack_object *, struct cl_wire_msg *) = {
    [CL_MSG_PING] = decode_ping,     [CL_MSG_PING_REQ] = decode_ping,
    [CL_MSG_ACK] = decode_ack,       [CL_MSG_NACK] = decode_ack,
    [CL_MSG_GOSSIP] = decode_gossip, [CL_MSG_PUSH_PULL] = decode_push_pull,
    [CL_MSG_USER] = decode_user,
};

int cl_wire_decode(const uint8_t *data, size_t len, struct cl_wire_msg *m)
{
    memset(m, 0, sizeof(*m));
    if (data == NULL || len < CL_WIRE_HEADER + 1 || len > CL_MAX_MESSAGE ||
        data[0] != CL_WIRE_MAGIC0 || data[1] != CL_WIRE_MAGIC1 || data[2] != CL_WIRE_VERSION ||
        data[3] < CL_MSG_PING || data[3] > CL_MSG_TYPE_MAX)
        return GV_EPROTO;
    m->type = (enum cl_msg_type)data[3];
    const uint8_t *body = data + CL_WIRE_HEADER;
    size_t blen = len - CL_WIRE_HEADER, end;
    if (cl_wire_skim(body, blen, &end) < 0 || end != blen)
        return GV_EPROTO;

    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    int rc = GV_EPROTO;
    if (msgpack_unpack_next(&up, (const char *)body, blen, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != blen)
        goto fail;
    /* strings and bins point into body, so the zone can go right after */
    if ((rc = decoders[m->type](&up.data, m)) < 0)
        goto fail;
    msgpack_unpacked_destroy(&up);
    return 0;
fail:
    msgpack_unpacked_destroy(&up);
    cl_wire_msg_free(m);
    return rc;
}

void cl_wire_msg_free(struct cl_wire_msg *m)
{
    free(m->updates);
    free(m->members);
    free(m->states);
    memset(m, 0, sizeof(*m));
}

/* ---- encoding ---- */

struct wbuf {
    uint8_t *p;
    size_t cap, len;
};

static int wbuf_write(void *data, const char *buf, size_t len)
{
    struct wbuf *w = data;
    if (len == 0)
        return 0;
    if (len > w->cap - w->len)
        return -1;
    memcpy(w->p + w->len, buf, len);
    w->len += len;
    return 0;
}

static int pack_str(msgpack_packer *pk, struct cl_bytes b, size_t max, bool empty_ok)
{
    if (b.len > max || (b.len == 0 && !empty_ok) || (b.len && b.p == NULL))
        return GV_EINVAL;
    if (msgpack_pack_str(pk, b.len) < 0 || msgpack_pack_str_body(pk, b.p, b.len) < 0)
        return GV_ERANGE;
    return 0;
}

static int pack_bin(msgpack_packer *pk, struct cl_bytes b, size_t max)
{
    if (b.len > max || (b.len && b.p == NULL))
        return GV_EINVAL;
    if (msgpack_pack_bin(pk, b.len) < 0 || msgpack_pack_bin_body(pk, b.p, b.len) < 0)
        return GV_ERANGE;
    return 0;
}

#define PK(expr)                                                                                   \
    do {                                                                                           \
        if ((expr) < 0) {                                                                          \
            rc = GV_ERANGE;                                                                        \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)
#define CHK(expr)                                                                                  \
    do {                                                                                           \
        if ((rc = (expr)) < 0)                                                                     \
            goto fail;                                                                             \
    } while (0)

static int pack_update(msgpack_packer *pk, const struct cl_wire_update *u)
{
    int rc = 0;
    switch (u->kind) {
    case CL_UPD_ALIVE:
        PK(msgpack_pack_array(pk, 5));
        PK(msgpack_pack_uint8(pk, CL_UPD_ALIVE));
        CHK(pack_str(pk, u->name, CL_WIRE_MAX_NAME, false));
        CHK(pack_str(pk, u->addr, CL_WIRE_MAX_ADDR, false));
        PK(msgpack_pack_uint64(pk, u->incarnation));
        CHK(pack_bin(pk, u->meta, CL_WIRE_MAX_META));
        return 0;
    case CL_UPD_SUSPECT:
    case CL_UPD_DEAD:
        PK(msgpack_pack_array(pk, 4));
        PK(msgpack_pack_uint8(pk, (uint8_t)u->kind));
        CHK(pack_str(pk, u->name, CL_WIRE_MAX_NAME, false));
        PK(msgpack_pack_uint64(pk, u->incarnation));
        CHK(pack_str(pk, u->from, CL_WIRE_MAX_NAME, false));
        return 0;
    case CL_UPD_USER:
        PK(msgpack_pack_array(pk, 6));
        PK(msgpack_pack_uint8(pk, CL_UPD_USER));
        PK(msgpack_pack_uint8(pk, u->channel));
        CHK(pack_str(pk, u->key, CL_WIRE_MAX_KEY, true));
        CHK(pack_str(pk, u->from, CL_WIRE_MAX_NAME, false));
        PK(msgpack_pack_uint64(pk, u->seq));
        CHK(pack_bin(pk, u->payload, CL_MAX_MESSAGE));
        return 0;
    }
    return GV_EINVAL;
fail:
    return rc;
}

int cl_wire_encode_update(const struct cl_wire_update *u, uint8_t *out, size_t cap, size_t *len)
{
    struct wbuf w = {out, cap, 0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &w, wbuf_write);
    int rc = pack_update(&pk, u);
    if (rc < 0)
        return rc;
    *len = w.len;
    return 0;
}

/* One message being encoded: the packer writing into its buffer, and the
 * updates the caller encoded beforehand, which follow the message's own. */
struct enc {
    struct wbuf w;
    msgpack_packer pk;
    const uint8_t *raw;
    size_t raw_len, n_raw;
};

static int pack_updates(struct enc *e, const struct cl_wire_msg *m)
{
    int rc = 0;
    if (m->n_updates + e->n_raw > CL_WIRE_MAX_UPDATES)
        return GV_EINVAL;
    PK(msgpack_pack_array(&e->pk, m->n_updates + e->n_raw));
    for (size_t i = 0; i < m->n_updates; i++)
        CHK(pack_update(&e->pk, &m->updates[i]));
    if (e->raw_len)
        PK(wbuf_write(&e->w, (const char *)e->raw, e->raw_len));
    return 0;
fail:
    return rc;
}

/* One encoder per message type, writing the body (listed in wire.h). */

/* ping_req is a ping with the target's address before the updates. */
static int encode_ping(struct enc *e, const struct cl_wire_msg *m)
{
    msgpack_packer *pk = &e->pk;
    int rc = 0;
    PK(msgpack_pack_array(pk, m->type == CL_MSG_PING ? 5 : 6));
    PK(msgpack_pack_uint32(pk, m->seq));
    CHK(pack_str(pk, m->from, CL_WIRE_MAX_NAME, false));
    CHK(pack_str(pk, m->from_addr, CL_WIRE_MAX_ADDR, false));
    CHK(pack_str(pk, m->target, CL_WIRE_MAX_NAME, false));
    if (m->type == CL_MSG_PING_REQ)
        CHK(pack_str(pk, m->target_addr, CL_WIRE_MAX_ADDR, false));
    return pack_updates(e, m);
fail:
    return rc;
}

/* ack and nack share a body. */
static int encode_ack(struct enc *e, const struct cl_wire_msg *m)
{
    msgpack_packer *pk = &e->pk;
    int rc = 0;
    PK(msgpack_pack_array(pk, 3));
    PK(msgpack_pack_uint32(pk, m->seq));
    CHK(pack_str(pk, m->from, CL_WIRE_MAX_NAME, false));
    return pack_updates(e, m);
fail:
    return rc;
}

static int encode_gossip(struct enc *e, const struct cl_wire_msg *m)
{
    msgpack_packer *pk = &e->pk;
    int rc = 0;
    PK(msgpack_pack_array(pk, 2));
    CHK(pack_str(pk, m->from, CL_WIRE_MAX_NAME, false));
    return pack_updates(e, m);
fail:
    return rc;
}

static int pack_member(msgpack_packer *pk, const struct cl_wire_member *mb)
{
    int rc = 0;
    if (mb->state > CL_STATE_LEFT)
        return GV_EINVAL;
    PK(msgpack_pack_array(pk, 5));
    CHK(pack_str(pk, mb->name, CL_WIRE_MAX_NAME, false));
    CHK(pack_str(pk, mb->addr, CL_WIRE_MAX_ADDR, false));
    PK(msgpack_pack_uint64(pk, mb->incarnation));
    PK(msgpack_pack_uint8(pk, (uint8_t)mb->state));
    CHK(pack_bin(pk, mb->meta, CL_WIRE_MAX_META));
    return 0;
fail:
    return rc;
}

static int pack_state(msgpack_packer *pk, const struct cl_wire_state *st)
{
    int rc = 0;
    PK(msgpack_pack_array(pk, 2));
    PK(msgpack_pack_uint8(pk, st->channel));
    CHK(pack_bin(pk, st->data, CL_MAX_MESSAGE));
    return 0;
fail:
    return rc;
}

static int encode_push_pull(struct enc *e, const struct cl_wire_msg *m)
{
    msgpack_packer *pk = &e->pk;
    int rc = 0;
    if (m->n_members > CL_WIRE_MAX_MEMBERS || m->n_states > CL_WIRE_MAX_STATES ||
        (m->flags & ~(CL_PP_REPLY | CL_PP_JOIN)))
        return GV_EINVAL;
    PK(msgpack_pack_array(pk, 5));
    PK(msgpack_pack_uint8(pk, m->flags));
    CHK(pack_str(pk, m->from, CL_WIRE_MAX_NAME, false));
    CHK(pack_str(pk, m->from_addr, CL_WIRE_MAX_ADDR, false));
    PK(msgpack_pack_array(pk, m->n_members));
    for (size_t i = 0; i < m->n_members; i++)
        CHK(pack_member(pk, &m->members[i]));
    PK(msgpack_pack_array(pk, m->n_states));
    for (size_t i = 0; i < m->n_states; i++)
        CHK(pack_state(pk, &m->states[i]));
    return 0;
fail:
    return rc;
}

static int encode_user(struct enc *e, const struct cl_wire_msg *m)
{
    msgpack_packer *pk = &e->pk;
    int rc = 0;
    PK(msgpack_pack_array(pk, 3));
    CHK(pack_str(pk, m->from, CL_WIRE_MAX_NAME, false));
    PK(msgpack_pack_uint8(pk, m->channel));
    CHK(pack_bin(pk, m->payload, CL_MAX_MESSAGE));
    return 0;
fail:
    return rc;
}

static int (*const encoders[CL_MSG_TYPE_MAX + 1])(struct enc *, const struct cl_wire_msg *) = {
    [CL_MSG_PING] = encode_ping,     [CL_MSG_PING_REQ] = encode_ping,
    [CL_MSG_ACK] = encode_ack,       [CL_MSG_NACK] = encode_ack,
    [CL_MSG_GOSSIP] = encode_gossip, [CL_MSG_PUSH_PULL] = encode_push_pull,
    [CL_MSG_USER] = encode_user,
};

int cl_wire_encode(const struct cl_wire_msg *m, const uint8_t *raw, size_t raw_len, size_t n_raw,
                   uint8_t *out, size_t cap, size_t *len)
{
    if (m->type < CL_MSG_PING || m->type > CL_MSG_TYPE_MAX)
        return GV_EINVAL;
    if (cap > CL_MAX_MESSAGE)
        cap = CL_MAX_MESSAGE;
    if (cap < CL_WIRE_HEADER)
        return GV_ERANGE;
    out[0] = CL_WIRE_MAGIC0;
    out[1] = CL_WIRE_MAGIC1;
    out[2] = CL_WIRE_VERSION;
    out[3] = (uint8_t)m->type;
    struct enc e = {
        .w = {out, cap, CL_WIRE_HEADER}, .raw = raw, .raw_len = raw_len, .n_raw = n_raw};
    msgpack_packer_init(&e.pk, &e.w, wbuf_write);
    int rc = encoders[m->type](&e, m);
    if (rc < 0)
        return rc;
    *len = e.w.len;
    return 0;
}

struct cl_bytes cl_bytes_str(const char *s)
{
    struct cl_bytes b = {(const uint8_t *)s, s ? strlen(s) : 0};
    return b;
}

int cl_bytes_copy(struct cl_bytes b, char *dst, size_t cap)
{
    if (b.len >= cap)
        return GV_ERANGE;
    if (b.len)
        memcpy(dst, b.p, b.len);
    dst[b.len] = '\0';
    return 0;
}

bool cl_bytes_eq(struct cl_bytes b, const char *s)
{
    size_t n = strlen(s);
    return n == b.len && (n == 0 || memcmp(b.p, s, n) == 0);
}

const char *cl_msg_type_name(enum cl_msg_type t)
{
    static const char *const names[] = {
        [CL_MSG_PING] = "ping", [CL_MSG_ACK] = "ack",       [CL_MSG_PING_REQ] = "ping_req",
        [CL_MSG_NACK] = "nack", [CL_MSG_GOSSIP] = "gossip", [CL_MSG_PUSH_PULL] = "push_pull",
        [CL_MSG_USER] = "user",
    };
    if ((int)t < CL_MSG_PING || t > CL_MSG_TYPE_MAX)
        return "unknown";
    return names[t];
}

const char *cl_state_name(enum cl_member_state s)
{
    static const char *const names[] = {"alive", "suspect", "dead", "left"};
    if ((int)s < 0 || s > CL_STATE_LEFT)
        return "unknown";
    return names[s];
}
