/* healthplane_test.c - probe assignment (deterministic, at most two checkers,
 * minimal movement when a member goes) and the health report codec (round
 * trip, garbled input rejected, LWW order). */
#include "cluster/healthplane.h"
#include "cluster/hlc.h"
#include "common/err.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

static const char *const five[] = {"gw1", "gw2", "gw3", "gw4", "gw5"};

static void test_assign_deterministic_and_bounded(void)
{
    size_t a[CL_HP_CHECKERS], b[CL_HP_CHECKERS];
    const char *rev[] = {"gw5", "gw4", "gw3", "gw2", "gw1"};
    for (int t = 0; t < 50; t++) {
        char addr[32];
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", 9000 + t);
        size_t k = cl_hp_assign(five, 5, "svc", addr, a);
        CHECK_INT(k, 2);
        CHECK(a[0] != a[1]);
        /* the order of the member list does not matter */
        CHECK_INT(cl_hp_assign(rev, 5, "svc", addr, b), 2);
        CHECK_STR(five[a[0]], rev[b[0]]);
        CHECK_STR(five[a[1]], rev[b[1]]);
        CHECK(cl_hp_is_checker(five, 5, "svc", addr, five[a[0]]));
        int count = 0;
        for (int m = 0; m < 5; m++)
            count += cl_hp_is_checker(five, 5, "svc", addr, five[m]);
        CHECK_INT(count, 2);
    }
    CHECK_INT(cl_hp_assign(five, 1, "svc", "x:1", a), 1);
    CHECK_INT(a[0], 0);
    CHECK_INT(cl_hp_assign(five, 0, "svc", "x:1", a), 0);
}

static void test_assign_spreads_load(void)
{
    int load[5] = {0};
    size_t a[CL_HP_CHECKERS];
    for (int t = 0; t < 500; t++) {
        char addr[32];
        snprintf(addr, sizeof(addr), "10.0.%d.%d:80", t / 200, t % 200);
        size_t k = cl_hp_assign(five, 5, "svc", addr, a);
        for (size_t i = 0; i < k; i++)
            load[a[i]]++;
    }
    /* 1000 assignments over 5 members: 200 each on average */
    for (int m = 0; m < 5; m++)
        CHECK(load[m] > 120 && load[m] < 280);
}

static void test_assign_moves_minimally(void)
{
    const char *four[] = {"gw1", "gw2", "gw4", "gw5"}; /* gw3 died */
    size_t a[CL_HP_CHECKERS], b[CL_HP_CHECKERS];
    for (int t = 0; t < 200; t++) {
        char addr[32];
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", 9000 + t);
        cl_hp_assign(five, 5, "svc", addr, a);
        cl_hp_assign(four, 4, "svc", addr, b);
        bool had3 = strcmp(five[a[0]], "gw3") == 0 || strcmp(five[a[1]], "gw3") == 0;
        if (!had3) {
            /* untouched targets keep both checkers in the same order */
            CHECK_STR(five[a[0]], four[b[0]]);
            CHECK_STR(five[a[1]], four[b[1]]);
        } else {
            /* the surviving checker keeps its probes; one new one takes over */
            const char *kept = strcmp(five[a[0]], "gw3") == 0 ? five[a[1]] : five[a[0]];
            CHECK(strcmp(four[b[0]], kept) == 0 || strcmp(four[b[1]], kept) == 0);
        }
    }
}

static void test_codec_round_trip(void)
{
    struct cl_hp_report r = {.service = "users",
                             .address = "10.0.0.5:9001",
                             .reason = "http 503",
                             .checker = "gw2",
                             .healthy = false,
                             .stamp = 0x123456789abcULL};
    struct gv_buf b;
    gv_buf_init(&b);
    CHECK_INT(cl_hp_encode(&r, &b), 0);
    struct cl_hp_report d;
    CHECK_INT(cl_hp_decode((const uint8_t *)b.data, b.len, &d), 0);
    CHECK_STR(d.service, "users");
    CHECK_STR(d.address, "10.0.0.5:9001");
    CHECK_STR(d.reason, "http 503");
    CHECK_STR(d.checker, "gw2");
    CHECK(!d.healthy);
    CHECK(d.stamp == 0x123456789abcULL);

    /* every truncation and every single-byte corruption is rejected or
     * decodes to something still within limits (never crashes) */
    for (size_t n = 0; n < b.len; n++)
        CHECK_INT(cl_hp_decode((const uint8_t *)b.data, n, &d), GV_EPROTO);
    for (size_t i = 0; i < b.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            uint8_t copy[512];
            memcpy(copy, b.data, b.len);
            copy[i] ^= (uint8_t)(1u << bit);
            if (cl_hp_decode(copy, b.len, &d) == 0) {
                CHECK(strlen(d.service) <= CL_HP_MAX_SERVICE);
                CHECK(strlen(d.checker) > 0);
            }
        }
    }
    /* the magic is checked (first byte of the bin body) and trailing bytes */
    uint8_t copy[512];
    memcpy(copy, b.data, b.len);
    copy[3] = 'X';
    CHECK_INT(cl_hp_decode(copy, b.len, &d), GV_EPROTO);
    copy[3] = (uint8_t)b.data[3];
    copy[b.len] = 0xc0;
    CHECK_INT(cl_hp_decode(copy, b.len + 1, &d), GV_EPROTO);
    static const uint8_t garbage[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x00};
    CHECK_INT(cl_hp_decode(garbage, sizeof(garbage), &d), GV_EPROTO);
    gv_buf_free(&b);

    /* bad input to the encoder leaves the buffer alone */
    gv_buf_init(&b);
    struct cl_hp_report bad = r;
    bad.checker[0] = '\0';
    CHECK_INT(cl_hp_encode(&bad, &b), GV_EINVAL);
    CHECK_INT(b.len, 0);
    gv_buf_free(&b);
}

static void test_decode_sequence(void)
{
    struct cl_hp_report r = {.service = "s", .address = "a:1", .checker = "gw1", .stamp = 7};
    struct gv_buf b;
    gv_buf_init(&b);
    for (int i = 0; i < 3; i++) {
        r.healthy = i != 1;
        r.stamp = 7 + (uint64_t)i;
        CHECK_INT(cl_hp_encode(&r, &b), 0);
    }
    const uint8_t *p = (const uint8_t *)b.data;
    size_t left = b.len, used = 0;
    struct cl_hp_report d;
    for (int i = 0; i < 3; i++) {
        CHECK_INT(cl_hp_decode_first(p, left, &used, &d), 0);
        CHECK(used > 0 && used <= left);
        CHECK(d.stamp == 7 + (uint64_t)i);
        CHECK(d.healthy == (i != 1));
        p += used;
        left -= used;
    }
    CHECK_INT(left, 0);
    CHECK_INT(cl_hp_decode_first(p, 0, &used, &d), GV_EPROTO);
    /* a cut in the middle of the second report is caught */
    CHECK_INT(cl_hp_decode_first((const uint8_t *)b.data, b.len, &used, &d), 0);
    CHECK_INT(cl_hp_decode_first((const uint8_t *)b.data + used, used - 1, &used, &d), GV_EPROTO);
    /* a well-formed msgpack object that is not a report */
    static const uint8_t other[] = {0x92, 0x01, 0x02, 0xc0};
    CHECK_INT(cl_hp_decode_first(other, sizeof(other), &used, &d), GV_EPROTO);
    gv_buf_free(&b);
}

static void test_passive(void)
{
    struct cl_hp_report r = {.reason = CL_HP_REASON_PASSIVE};
    CHECK(cl_hp_is_passive(&r));
    r.healthy = true;
    CHECK(!cl_hp_is_passive(&r));
    r.healthy = false;
    snprintf(r.reason, sizeof(r.reason), "health_check: status 503");
    CHECK(!cl_hp_is_passive(&r));

    uint64_t wall = CL_HLC_EPOCH_MS + 1000000;
    uint64_t stamp = (wall - CL_HLC_EPOCH_MS) << CL_HLC_LOGICAL_BITS;
    CHECK(cl_hlc_unix_ms(stamp) == wall);
    CHECK(cl_hp_passive_left(stamp, 30000, wall) == 30000);
    CHECK(cl_hp_passive_left(stamp, 30000, wall + 12000) == 18000);
    CHECK(cl_hp_passive_left(stamp, 30000, wall + 30000) == 0);
    CHECK(cl_hp_passive_left(stamp, 30000, wall + 999999) == 0);
    /* a sender ahead of us: never longer than eject_for */
    CHECK(cl_hp_passive_left(stamp, 30000, wall - 5000) == 30000);
}

static void test_lww(void)
{
    struct cl_hp_report a = {.checker = "gw1", .stamp = 10}, b = {.checker = "gw2", .stamp = 9};
    CHECK(cl_hp_newer(&a, &b));
    CHECK(!cl_hp_newer(&b, &a));
    b.stamp = 10;
    CHECK(cl_hp_newer(&b, &a));
    CHECK(!cl_hp_newer(&a, &a));
}

TEST_MAIN({"assign_deterministic_and_bounded", test_assign_deterministic_and_bounded},
          {"assign_spreads_load", test_assign_spreads_load},
          {"assign_moves_minimally", test_assign_moves_minimally},
          {"codec_round_trip", test_codec_round_trip}, {"decode_sequence", test_decode_sequence},
          {"passive", test_passive}, {"lww", test_lww})
