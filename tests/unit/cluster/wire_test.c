/* wire_test.c - round trips of every message type; the decoder rejects
 * truncated, garbled, oversized and forged input without reading out of
 * bounds (run under ASan). */
#include "cluster/transport.h"
#include "cluster/wire.h"
#include "common/err.h"
#include "test.h"

#include <stdlib.h>

static uint8_t buf[CL_MAX_MESSAGE];

static bool bytes_is(struct cl_bytes b, const char *s)
{
    return cl_bytes_eq(b, s);
}

static const uint8_t meta[] = {1, 2, 3, 0, 255};

static struct cl_wire_update sample_updates[4];

static void make_updates(void)
{
    sample_updates[0] = (struct cl_wire_update){
        .kind = CL_UPD_ALIVE,
        .name = cl_bytes_str("gw1"),
        .addr = cl_bytes_str("10.0.0.1:7946"),
        .incarnation = 1ULL << 40,
        .meta = {meta, sizeof(meta)},
    };
    sample_updates[1] = (struct cl_wire_update){.kind = CL_UPD_SUSPECT,
                                                .name = cl_bytes_str("gw2"),
                                                .incarnation = 7,
                                                .from = cl_bytes_str("gw1")};
    sample_updates[2] = (struct cl_wire_update){.kind = CL_UPD_DEAD,
                                                .name = cl_bytes_str("gw3"),
                                                .incarnation = 0,
                                                .from = cl_bytes_str("gw3")};
    sample_updates[3] = (struct cl_wire_update){
        .kind = CL_UPD_USER,
        .channel = 9,
        .key = cl_bytes_str("routes/users"),
        .from = cl_bytes_str("gw1"),
        .seq = 123456789,
        .payload = {meta, sizeof(meta)},
    };
}

static void check_updates(const struct cl_wire_msg *m)
{
    CHECK_INT(m->n_updates, 4);
    if (m->n_updates != 4)
        return;
    CHECK_INT(m->updates[0].kind, CL_UPD_ALIVE);
    CHECK(bytes_is(m->updates[0].name, "gw1"));
    CHECK(bytes_is(m->updates[0].addr, "10.0.0.1:7946"));
    CHECK(m->updates[0].incarnation == 1ULL << 40);
    CHECK(m->updates[0].meta.len == sizeof(meta) &&
          memcmp(m->updates[0].meta.p, meta, sizeof(meta)) == 0);
    CHECK_INT(m->updates[1].kind, CL_UPD_SUSPECT);
    CHECK(bytes_is(m->updates[1].from, "gw1"));
    CHECK_INT(m->updates[1].incarnation, 7);
    CHECK_INT(m->updates[2].kind, CL_UPD_DEAD);
    CHECK(bytes_is(m->updates[2].name, "gw3"));
    CHECK_INT(m->updates[3].kind, CL_UPD_USER);
    CHECK_INT(m->updates[3].channel, 9);
    CHECK(bytes_is(m->updates[3].key, "routes/users"));
    CHECK_INT(m->updates[3].seq, 123456789);
    CHECK_INT(m->updates[3].payload.len, sizeof(meta));
}

/* Encodes msg with 2 updates inline and 2 pre-encoded raw ones. */
static size_t encode_with_updates(struct cl_wire_msg *msg)
{
    uint8_t raw[1024];
    size_t raw_len = 0, l, len = 0;
    for (int i = 2; i < 4; i++) {
        CHECK_INT(
            cl_wire_encode_update(&sample_updates[i], raw + raw_len, sizeof(raw) - raw_len, &l), 0);
        raw_len += l;
    }
    msg->updates = sample_updates;
    msg->n_updates = 2;
    CHECK_INT(cl_wire_encode(msg, raw, raw_len, 2, buf, sizeof(buf), &len), 0);
    return len;
}

static struct cl_wire_member members[3];
static struct cl_wire_state states[2];

static size_t encode_type(enum cl_msg_type t)
{
    struct cl_wire_msg msg = {.type = t, .seq = 4000000000u, .from = cl_bytes_str("gw1")};
    size_t len = 0;
    switch (t) {
    case CL_MSG_PING:
        msg.from_addr = cl_bytes_str("gw1:7946");
        msg.target = cl_bytes_str("gw2");
        return encode_with_updates(&msg);
    case CL_MSG_PING_REQ:
        msg.from_addr = cl_bytes_str("gw1:7946");
        msg.target = cl_bytes_str("gw2");
        msg.target_addr = cl_bytes_str("[::1]:7946");
        return encode_with_updates(&msg);
    case CL_MSG_ACK:
    case CL_MSG_NACK:
    case CL_MSG_GOSSIP:
        return encode_with_updates(&msg);
    case CL_MSG_PUSH_PULL:
        for (int i = 0; i < 3; i++) {
            members[i] = (struct cl_wire_member){.name = cl_bytes_str(i ? "b" : "a"),
                                                 .addr = cl_bytes_str("h:1"),
                                                 .incarnation = (uint64_t)i,
                                                 .state = (enum cl_member_state)i,
                                                 .meta = {meta, (size_t)i}};
        }
        states[0] = (struct cl_wire_state){.channel = 1, .data = {meta, 3}};
        states[1] = (struct cl_wire_state){.channel = 200, .data = {NULL, 0}};
        msg.from_addr = cl_bytes_str("gw1:7946");
        msg.flags = CL_PP_REPLY | CL_PP_JOIN;
        msg.members = members;
        msg.n_members = 3;
        msg.states = states;
        msg.n_states = 2;
        CHECK_INT(cl_wire_encode(&msg, NULL, 0, 0, buf, sizeof(buf), &len), 0);
        return len;
    case CL_MSG_USER:
        msg.channel = 3;
        msg.payload = (struct cl_bytes){meta, sizeof(meta)};
        CHECK_INT(cl_wire_encode(&msg, NULL, 0, 0, buf, sizeof(buf), &len), 0);
        return len;
    }
    return 0;
}

static void test_round_trip(void)
{
    make_updates();
    for (int t = CL_MSG_PING; t <= CL_MSG_TYPE_MAX; t++) {
        size_t len = encode_type((enum cl_msg_type)t);
        struct cl_wire_msg m;
        CHECK_INT(buf[0], 'G');
        CHECK_INT(buf[1], 'V');
        CHECK_INT(buf[2], CL_WIRE_VERSION);
        CHECK_INT(cl_wire_decode(buf, len, &m), 0);
        CHECK_INT(m.type, t);
        CHECK(bytes_is(m.from, "gw1"));
        switch (t) {
        case CL_MSG_PING:
        case CL_MSG_PING_REQ:
            CHECK(bytes_is(m.from_addr, "gw1:7946"));
            CHECK(bytes_is(m.target, "gw2"));
            if (t == CL_MSG_PING_REQ)
                CHECK(bytes_is(m.target_addr, "[::1]:7946"));
            /* fall through */
        case CL_MSG_ACK:
        case CL_MSG_NACK:
            CHECK(m.seq == 4000000000u);
            check_updates(&m);
            break;
        case CL_MSG_GOSSIP:
            check_updates(&m);
            break;
        case CL_MSG_PUSH_PULL:
            CHECK_INT(m.flags, CL_PP_REPLY | CL_PP_JOIN);
            CHECK_INT(m.n_members, 3);
            CHECK_INT(m.n_states, 2);
            if (m.n_members == 3 && m.n_states == 2) {
                CHECK_INT(m.members[2].state, CL_STATE_DEAD);
                CHECK_INT(m.members[2].incarnation, 2);
                CHECK_INT(m.members[2].meta.len, 2);
                CHECK(bytes_is(m.members[1].name, "b"));
                CHECK_INT(m.states[1].channel, 200);
                CHECK_INT(m.states[1].data.len, 0);
                CHECK_INT(m.states[0].data.len, 3);
            }
            break;
        case CL_MSG_USER:
            CHECK_INT(m.channel, 3);
            CHECK_INT(m.payload.len, sizeof(meta));
            break;
        }
        cl_wire_msg_free(&m);
    }
}

static void test_truncation_and_flips(void)
{
    make_updates();
    static uint8_t copy[CL_MAX_MESSAGE];
    uint64_t rng = 88172645463325252ULL;
    for (int t = CL_MSG_PING; t <= CL_MSG_TYPE_MAX; t++) {
        size_t len = encode_type((enum cl_msg_type)t);
        /* every truncation is rejected; the copy is exactly sized for ASan */
        for (size_t cut = 0; cut < len; cut++) {
            uint8_t *p = malloc(cut ? cut : 1);
            memcpy(p, buf, cut);
            struct cl_wire_msg m;
            CHECK_INT(cl_wire_decode(p, cut, &m), GV_EPROTO);
            free(p);
        }
        /* random bit flips: may decode (a flipped payload byte) but never crash */
        for (int round = 0; round < 3000; round++) {
            memcpy(copy, buf, len);
            int flips = 1 + (int)(rng % 4);
            for (int f = 0; f < flips; f++) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                copy[(rng >> 8) % len] ^= (uint8_t)(1u << (rng % 8));
            }
            uint8_t *p = malloc(len);
            memcpy(p, copy, len);
            struct cl_wire_msg m;
            if (cl_wire_decode(p, len, &m) == 0)
                cl_wire_msg_free(&m);
            free(p);
        }
        /* random garbage after a valid header */
        for (int round = 0; round < 500; round++) {
            size_t n = 4 + (size_t)(rng % 200);
            uint8_t *p = malloc(n);
            memcpy(p, buf, 4);
            for (size_t i = 4; i < n; i++) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                p[i] = (uint8_t)rng;
            }
            struct cl_wire_msg m;
            if (cl_wire_decode(p, n, &m) == 0)
                cl_wire_msg_free(&m);
            free(p);
        }
    }
}

static void test_header_and_limits(void)
{
    make_updates();
    struct cl_wire_msg m;
    size_t len = encode_type(CL_MSG_GOSSIP);
    buf[0] = 'X';
    CHECK_INT(cl_wire_decode(buf, len, &m), GV_EPROTO);
    buf[0] = 'G';
    buf[2] = 2;
    CHECK_INT(cl_wire_decode(buf, len, &m), GV_EPROTO);
    buf[2] = CL_WIRE_VERSION;
    buf[3] = 0;
    CHECK_INT(cl_wire_decode(buf, len, &m), GV_EPROTO);
    buf[3] = CL_MSG_TYPE_MAX + 1;
    CHECK_INT(cl_wire_decode(buf, len, &m), GV_EPROTO);
    buf[3] = CL_MSG_PING; /* a gossip body is not a ping body */
    CHECK_INT(cl_wire_decode(buf, len, &m), GV_EPROTO);
    buf[3] = CL_MSG_GOSSIP;
    CHECK_INT(cl_wire_decode(buf, len, &m), 0);
    cl_wire_msg_free(&m);
    /* trailing bytes */
    buf[len] = 0xc0;
    CHECK_INT(cl_wire_decode(buf, len + 1, &m), GV_EPROTO);
    /* oversized */
    CHECK_INT(cl_wire_decode(buf, CL_MAX_MESSAGE + 1, &m), GV_EPROTO);
    CHECK_INT(cl_wire_decode(NULL, 0, &m), GV_EPROTO);

    /* forged counts: an array32 of 4 billion, a map32, a str32 past the end */
    const uint8_t forged[][12] = {
        {'G', 'V', 1, CL_MSG_GOSSIP, 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0},
        {'G', 'V', 1, CL_MSG_GOSSIP, 0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0},
        {'G', 'V', 1, CL_MSG_GOSSIP, 0x92, 0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'},
        {'G', 'V', 1, CL_MSG_GOSSIP, 0x92, 0xa1, 'a', 0xdd, 0x00, 0x10, 0x00, 0x00},
        {'G', 'V', 1, CL_MSG_GOSSIP, 0x92, 0xa1, 'a', 0xc1},
    };
    for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++)
        CHECK_INT(cl_wire_decode(forged[i], sizeof(forged[i]), &m), GV_EPROTO);

    /* a name over 64 bytes, an update kind out of range, a NUL in a name */
    char longname[70];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[69] = '\0';
    struct cl_wire_msg msg = {.type = CL_MSG_GOSSIP, .from = cl_bytes_str(longname)};
    CHECK_INT(cl_wire_encode(&msg, NULL, 0, 0, buf, sizeof(buf), &len), GV_EINVAL);
    const uint8_t badkind[] = {'G', 'V', 1, CL_MSG_GOSSIP, 0x92, 0xa1, 'a', 0x91, 0x91, 0x09};
    CHECK_INT(cl_wire_decode(badkind, sizeof(badkind), &m), GV_EPROTO);
    const uint8_t nul[] = {'G', 'V', 1, CL_MSG_GOSSIP, 0x92, 0xa2, 'a', 0, 0x90};
    CHECK_INT(cl_wire_decode(nul, sizeof(nul), &m), GV_EPROTO);
    const uint8_t ok[] = {'G', 'V', 1, CL_MSG_GOSSIP, 0x92, 0xa1, 'a', 0x90};
    CHECK_INT(cl_wire_decode(ok, sizeof(ok), &m), 0);
    cl_wire_msg_free(&m);
    /* negative integer where a seq belongs */
    const uint8_t neg[] = {'G', 'V', 1, CL_MSG_ACK, 0x93, 0xff, 0xa1, 'a', 0x90};
    CHECK_INT(cl_wire_decode(neg, sizeof(neg), &m), GV_EPROTO);
}

static void test_encode_bounds(void)
{
    make_updates();
    static uint8_t big[CL_MAX_MESSAGE];
    struct cl_wire_msg msg = {
        .type = CL_MSG_USER, .from = cl_bytes_str("gw1"), .payload = {big, CL_MAX_MESSAGE - 100}};
    size_t len = 0;
    CHECK_INT(cl_wire_encode(&msg, NULL, 0, 0, buf, 1000, &len), GV_ERANGE);
    CHECK_INT(cl_wire_encode(&msg, NULL, 0, 0, buf, sizeof(buf), &len), 0);
    struct cl_wire_msg m;
    CHECK_INT(cl_wire_decode(buf, len, &m), 0);
    CHECK_INT(m.payload.len, CL_MAX_MESSAGE - 100);
    cl_wire_msg_free(&m);
    msg.payload.len = CL_MAX_MESSAGE;
    CHECK_INT(cl_wire_encode(&msg, NULL, 0, 0, buf, sizeof(buf), &len), GV_ERANGE);
    /* every prefix capacity either fits or says GV_ERANGE, never overruns */
    size_t full = encode_type(CL_MSG_PING_REQ);
    for (size_t cap = 0; cap < full; cap++) {
        uint8_t *p = malloc(cap ? cap : 1);
        struct cl_wire_msg r = {.type = CL_MSG_NACK,
                                .seq = 1,
                                .from = cl_bytes_str("gw1"),
                                .updates = sample_updates,
                                .n_updates = 4};
        int rc = cl_wire_encode(&r, NULL, 0, 0, p, cap, &len);
        CHECK(rc == GV_ERANGE || (rc == 0 && len <= cap));
        free(p);
    }
    CHECK_STR(cl_msg_type_name(CL_MSG_PING_REQ), "ping_req");
    CHECK_STR(cl_state_name(CL_STATE_LEFT), "left");
}

/* A member name or address that is not one (what a fuzzer or a hostile peer
 * with the key sends) makes the whole message malformed: never a member. */
static void test_junk_names_refused(void)
{
    static const char *const names[] = {"\002A", "a b", "gw1\n", "a/b", "\xc3\xa9"};
    static const char *const addrs[] = {"h 1:2", "h\x01:2", "nocolon", "h:1\r\n"};
    struct cl_wire_msg m;
    size_t len;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct cl_wire_msg msg = {.type = CL_MSG_PING,
                                  .from = cl_bytes_str(names[i]),
                                  .from_addr = cl_bytes_str("gw1:7946"),
                                  .target = cl_bytes_str("gw2")};
        CHECK_INT(cl_wire_encode(&msg, NULL, 0, 0, buf, sizeof(buf), &len), 0);
        CHECK_INT(cl_wire_decode(buf, len, &m), GV_EPROTO);
    }
    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
        struct cl_wire_msg msg = {.type = CL_MSG_PING,
                                  .from = cl_bytes_str("gw1"),
                                  .from_addr = cl_bytes_str(addrs[i]),
                                  .target = cl_bytes_str("gw2")};
        CHECK_INT(cl_wire_encode(&msg, NULL, 0, 0, buf, sizeof(buf), &len), 0);
        CHECK_INT(cl_wire_decode(buf, len, &m), GV_EPROTO);
    }
    struct cl_wire_msg ok = {.type = CL_MSG_PING,
                             .from = cl_bytes_str("gw-1.a_b"),
                             .from_addr = cl_bytes_str("[::1]:7946"),
                             .target = cl_bytes_str("gw2")};
    CHECK_INT(cl_wire_encode(&ok, NULL, 0, 0, buf, sizeof(buf), &len), 0);
    CHECK_INT(cl_wire_decode(buf, len, &m), 0);
}

TEST_MAIN(TEST(test_junk_names_refused), TEST(test_round_trip), TEST(test_truncation_and_flips),
          TEST(test_header_and_limits), TEST(test_encode_bounds))
