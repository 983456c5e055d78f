/* rlgossip_test.c - the rate-limit demand message: round trip, and garbage
 * (wrong magic, version, lengths, counts) rejected. */
#include "cluster/rlgossip.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static void test_round_trip(void)
{
    static uint8_t buf[CL_RLG_HEADER + CL_RLG_MAX * CL_RLG_ENTRY];
    struct cl_rlg_entry e[3] = {{1, 0}, {0xfedcba9876543210ULL, 123456}, {UINT64_MAX, UINT32_MAX}};
    size_t len = cl_rlg_encode(77, e, 3, buf);
    CHECK_INT((int)len, CL_RLG_HEADER + 3 * CL_RLG_ENTRY);
    uint32_t tick = 0;
    CHECK_INT(cl_rlg_decode(buf, len, &tick), 3);
    CHECK_INT((int)tick, 77);
    for (size_t i = 0; i < 3; i++) {
        struct cl_rlg_entry x = cl_rlg_entry_at(buf, i);
        CHECK(x.key == e[i].key && x.demand_milli == e[i].demand_milli);
    }
    CHECK_INT(cl_rlg_decode(buf, CL_RLG_HEADER, &tick), -1); /* count says 3 */
    len = cl_rlg_encode(1, e, 0, buf);
    CHECK_INT(cl_rlg_decode(buf, len, &tick), 0);
}

static void test_garbage(void)
{
    uint8_t buf[64];
    struct cl_rlg_entry e = {5, 6};
    size_t len = cl_rlg_encode(1, &e, 1, buf);
    uint32_t tick;
    CHECK_INT(cl_rlg_decode(buf, len - 1, &tick), -1);
    CHECK_INT(cl_rlg_decode(buf, len + 1, &tick), -1);
    CHECK_INT(cl_rlg_decode(buf, 3, &tick), -1);
    CHECK_INT(cl_rlg_decode(buf, 0, &tick), -1);
    buf[0] = 'X';
    CHECK_INT(cl_rlg_decode(buf, len, &tick), -1);
    buf[0] = 'R';
    buf[2] = 2;
    CHECK_INT(cl_rlg_decode(buf, len, &tick), -1);
    buf[2] = 1;
    buf[7] = 0xff; /* count beyond the maximum */
    CHECK_INT(cl_rlg_decode(buf, len, &tick), -1);
    /* random bytes never decode to something that reads out of bounds */
    srand(1);
    for (int i = 0; i < 100000; i++) {
        uint8_t r[40];
        size_t n = (size_t)(rand() % 40);
        for (size_t j = 0; j < n; j++)
            r[j] = (uint8_t)rand();
        if (n > 2 && i % 2) {
            r[0] = 'R';
            r[1] = 'L';
            r[2] = 1;
        }
        int c = cl_rlg_decode(r, n, &tick);
        CHECK(c < 0 || (size_t)(CL_RLG_HEADER + c * CL_RLG_ENTRY) == n);
    }
}

/* The counts message (channel 4): round trip; a later version's longer
 * entries are read for the fields this one knows; garbage is rejected. */
static void test_counts(void)
{
    static uint8_t buf[CL_RLC_HEADER + CL_RLC_MAX * CL_RLC_ENTRY];
    struct cl_rlc_entry e[2] = {{7, 1500, {1, 2, 3, 4}},
                                {UINT64_MAX, UINT32_MAX, {UINT32_MAX, 0, 0, 9}}};
    size_t len = cl_rlc_encode(9, 3, e, 2, buf), el = 0;
    struct cl_rlc_head h;
    uint32_t tick = 0;
    CHECK_INT((int)len, CL_RLC_HEADER + 2 * CL_RLC_ENTRY);
    CHECK_INT(cl_rlc_decode(buf, len, &h), 2);
    tick = h.tick;
    el = h.entry_len;
    CHECK_INT((int)tick, 9);
    CHECK_INT((int)h.part, 3);
    for (size_t i = 0; i < 2; i++) {
        struct cl_rlc_entry x = cl_rlc_entry_at(buf, el, i);
        CHECK(x.key == e[i].key && x.demand_milli == e[i].demand_milli);
        CHECK(memcmp(x.admitted, e[i].admitted, sizeof(x.admitted)) == 0);
    }
    /* version 2 with 4 more bytes per entry */
    uint8_t v2[CL_RLC_HEADER + 2 * (CL_RLC_ENTRY + 4)];
    memcpy(v2, buf, CL_RLC_HEADER);
    v2[2] = 2;
    v2[10] = CL_RLC_ENTRY + 4;
    for (size_t i = 0; i < 2; i++) {
        memcpy(v2 + CL_RLC_HEADER + i * (CL_RLC_ENTRY + 4), buf + CL_RLC_HEADER + i * CL_RLC_ENTRY,
               CL_RLC_ENTRY);
        memset(v2 + CL_RLC_HEADER + i * (CL_RLC_ENTRY + 4) + CL_RLC_ENTRY, 0xee, 4);
    }
    CHECK_INT(cl_rlc_decode(v2, sizeof(v2), &h), 2);
    el = h.entry_len;
    CHECK_INT((int)el, CL_RLC_ENTRY + 4);
    CHECK(cl_rlc_entry_at(v2, el, 1).key == UINT64_MAX);
    CHECK(cl_rlc_entry_at(v2, el, 1).admitted[3] == 9);
    /* garbage */
    CHECK_INT(cl_rlc_decode(buf, len - 1, &h), -1);
    CHECK_INT(cl_rlc_decode(buf, CL_RLC_HEADER - 1, &h), -1);
    buf[10] = CL_RLC_ENTRY - 1; /* entries shorter than this version reads */
    CHECK_INT(cl_rlc_decode(buf, len, &h), -1);
    buf[10] = CL_RLC_ENTRY;
    buf[7] = CL_RLC_PARTS; /* no such part */
    CHECK_INT(cl_rlc_decode(buf, len, &h), -1);
    buf[7] = 0;
    buf[2] = 0;
    CHECK_INT(cl_rlc_decode(buf, len, &h), -1);
    buf[2] = 1;
    buf[1] = 'L'; /* a demand message is not a counts message */
    CHECK_INT(cl_rlc_decode(buf, len, &h), -1);
    srand(2);
    for (int i = 0; i < 100000; i++) {
        uint8_t r[80];
        size_t n = (size_t)(rand() % 80);
        for (size_t j = 0; j < n; j++)
            r[j] = (uint8_t)rand();
        if (n > 2 && i % 2) {
            r[0] = 'R';
            r[1] = 'C';
        }
        int c = cl_rlc_decode(r, n, &h);
        CHECK(c < 0 || (h.entry_len >= CL_RLC_ENTRY && h.part < CL_RLC_PARTS &&
                        CL_RLC_HEADER + (size_t)c * h.entry_len == n));
    }
}

TEST_MAIN(TEST(test_round_trip), TEST(test_garbage), TEST(test_counts))
