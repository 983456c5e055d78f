/* wire.h - the gossip wire format: every message is the magic "GV", a protocol
 * version, a type byte and one msgpack array holding the body.
 *
 * Decoding never trusts a length: every type, size and count is checked
 * against the limits below before anything is used, and anything malformed is
 * GV_EPROTO. A decoded message holds views (pointer + length, not
 * NUL-terminated) into the input buffer plus arrays owned by the message;
 * the views are valid while the input is, cl_wire_msg_free() releases the
 * arrays. Encoding writes into a caller-supplied bounded buffer and reports
 * GV_ERANGE when the message does not fit. No state, no threads: safe to call
 * from anywhere.
 *
 * Bodies (msgpack arrays, positional):
 *   ping      [seq, from, from_addr, target, updates]
 *   ack       [seq, from, updates]
 *   ping_req  [seq, from, from_addr, target, target_addr, updates]
 *   nack      [seq, from, updates]
 *   gossip    [from, updates]
 *   push_pull [flags, from, from_addr, members, channel_states]
 *   user      [from, channel, payload]
 * An update is [1, name, addr, incarnation, meta] (alive),
 * [2, name, incarnation, from] (suspect), [3, name, incarnation, from] (dead;
 * "left" when from == name) or [4, channel, key, origin, seq, payload] (a user
 * broadcast). A member is [name, addr, incarnation, state, meta]; a channel
 * state is [channel, bytes].
 */
#ifndef GV_CLUSTER_WIRE_H
#define GV_CLUSTER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CL_WIRE_MAGIC0      0x47 /* 'G' */
#define CL_WIRE_MAGIC1      0x56 /* 'V' */
#define CL_WIRE_VERSION     1
#define CL_WIRE_HEADER      4
#define CL_WIRE_MAX_NAME    64
#define CL_WIRE_MAX_ADDR    255
#define CL_WIRE_MAX_META    512
#define CL_WIRE_MAX_KEY     128
#define CL_WIRE_MAX_MEMBERS 4096
#define CL_WIRE_MAX_UPDATES 1024
#define CL_WIRE_MAX_STATES  256

/* push_pull flags */
#define CL_PP_REPLY 0x01 /* the sender wants our state back */
#define CL_PP_JOIN  0x02 /* the sender is joining */

enum cl_msg_type {
    CL_MSG_PING = 1,
    CL_MSG_ACK = 2,
    CL_MSG_PING_REQ = 3,
    CL_MSG_NACK = 4,
    CL_MSG_GOSSIP = 5,
    CL_MSG_PUSH_PULL = 6,
    CL_MSG_USER = 7,
};
#define CL_MSG_TYPE_MAX 7

enum cl_member_state {
    CL_STATE_ALIVE = 0,
    CL_STATE_SUSPECT = 1,
    CL_STATE_DEAD = 2,
    CL_STATE_LEFT = 3,
};
#define CL_STATE_COUNT 4

enum cl_update_kind {
    CL_UPD_ALIVE = 1,
    CL_UPD_SUSPECT = 2,
    CL_UPD_DEAD = 3,
    CL_UPD_USER = 4,
};

/* A view into a buffer; for strings, not NUL-terminated. */
struct cl_bytes {
    const uint8_t *p;
    size_t len;
};

struct cl_wire_member {
    struct cl_bytes name, addr, meta;
    uint64_t incarnation;
    enum cl_member_state state;
};

struct cl_wire_update {
    enum cl_update_kind kind;
    struct cl_bytes name; /* alive, suspect, dead: the member */
    struct cl_bytes addr; /* alive */
    struct cl_bytes meta; /* alive */
    uint64_t incarnation; /* alive, suspect, dead */
    struct cl_bytes from; /* suspect, dead: who says so; user: the origin */
    uint8_t channel;      /* user */
    struct cl_bytes key;  /* user: replacement key, may be empty */
    uint64_t seq;         /* user: the origin's broadcast number */
    struct cl_bytes payload;
};

struct cl_wire_state {
    uint8_t channel;
    struct cl_bytes data;
};

struct cl_wire_msg {
    enum cl_msg_type type;
    uint32_t seq;                /* ping, ack, ping_req, nack */
    struct cl_bytes from;        /* every type: the sender's name */
    struct cl_bytes from_addr;   /* ping, ping_req, push_pull */
    struct cl_bytes target;      /* ping, ping_req: who is probed */
    struct cl_bytes target_addr; /* ping_req */
    uint8_t flags;               /* push_pull: CL_PP_* */
    uint8_t channel;             /* user */
    struct cl_bytes payload;     /* user */
    struct cl_wire_update *updates;
    size_t n_updates;
    struct cl_wire_member *members;
    size_t n_members;
    struct cl_wire_state *states;
    size_t n_states;
};

/* Decodes one message. Returns 0 and fills *m (free it with cl_wire_msg_free),
 * GV_EPROTO for anything malformed, over a limit, of an unknown version or
 * type, or GV_ENOMEM; on error *m holds nothing to free. */
int cl_wire_decode(const uint8_t *data, size_t len, struct cl_wire_msg *m);
void cl_wire_msg_free(struct cl_wire_msg *m);

/* Encodes m into out[0..cap). The updates of m are written first, then
 * n_raw updates already encoded by cl_wire_encode_update and concatenated in
 * raw[0..raw_len). Returns 0 and sets *len, GV_ERANGE when it does not fit in
 * cap (or CL_MAX_MESSAGE), GV_EINVAL when a field is over its limit. */
int cl_wire_encode(const struct cl_wire_msg *m, const uint8_t *raw, size_t raw_len, size_t n_raw,
                   uint8_t *out, size_t cap, size_t *len);

/* Encodes one update (for the broadcast queue). Same returns as above. */
int cl_wire_encode_update(const struct cl_wire_update *u, uint8_t *out, size_t cap, size_t *len);

/* Walks one msgpack object at p[0..len) without building it, checking that
 * every length and count fits in the bytes that remain, so msgpack-c cannot be
 * made to allocate more than the input's size. Returns 0 and the object's end
 * in *end, or GV_EPROTO. Every msgpack decoder runs this first. */
int cl_wire_skim(const uint8_t *p, size_t len, size_t *end);

/* Makes a view of a NUL-terminated string. */
struct cl_bytes cl_bytes_str(const char *s);
/* Copies a string view into dst[0..cap) NUL-terminated; returns 0 or GV_ERANGE. */
int cl_bytes_copy(struct cl_bytes b, char *dst, size_t cap);
bool cl_bytes_eq(struct cl_bytes b, const char *s);

const char *cl_msg_type_name(enum cl_msg_type t);
const char *cl_state_name(enum cl_member_state s);

#endif
