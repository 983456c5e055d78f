/* hlc_test.c - the packed hybrid logical clock: monotonic whatever the wall
 * clock does, ordered after observed stamps, the counter carrying into the
 * milliseconds, and stamps that stay exact as doubles for decades. */
#include "cluster/hlc.h"
#include "test.h"

#include <stdint.h>

#define T0 1767225600000ULL /* 2026-01-01T00:00:00Z */

static void test_wall_time_and_round_trip(void)
{
    struct cl_hlc c = {0};
    uint64_t s = cl_hlc_now(&c, T0);
    CHECK_INT(s, (T0 - CL_HLC_EPOCH_MS) << CL_HLC_LOGICAL_BITS);
    CHECK_INT(cl_hlc_unix_ms(s), T0);
    CHECK_INT(c.last, s);
    /* a later wall clock: the counter restarts at 0 in the new millisecond */
    uint64_t s2 = cl_hlc_now(&c, T0 + 1234);
    CHECK_INT(s2, (T0 + 1234 - CL_HLC_EPOCH_MS) << CL_HLC_LOGICAL_BITS);
    CHECK_INT(cl_hlc_unix_ms(s2), T0 + 1234);
    /* stamps made in the same millisecond read as that millisecond */
    uint64_t s3 = cl_hlc_now(&c, T0 + 1234);
    CHECK_INT(s3, s2 + 1);
    CHECK_INT(cl_hlc_unix_ms(s3), T0 + 1234);
    CHECK_INT(cl_hlc_unix_ms(0), 0);
    /* the epoch itself */
    CHECK_INT(cl_hlc_unix_ms(1), CL_HLC_EPOCH_MS);
    /* the real wall clock is after the epoch and round trips */
    struct cl_hlc w = {0};
    uint64_t now = cl_hlc_wall_ms();
    CHECK(now > CL_HLC_EPOCH_MS);
    CHECK_INT(cl_hlc_unix_ms(cl_hlc_now(&w, now)), now);
}

static void test_clock_going_backwards(void)
{
    struct cl_hlc c = {0};
    uint64_t prev = cl_hlc_now(&c, T0 + 10000);
    /* the wall clock steps back 10 s, then creeps forward: every stamp is
     * still above the one before, and the time read back never goes back */
    for (uint64_t t = T0; t < T0 + 12000; t += 7) {
        uint64_t s = cl_hlc_now(&c, t);
        CHECK(s > prev);
        CHECK(cl_hlc_unix_ms(s) >= cl_hlc_unix_ms(prev));
        prev = s;
    }
    /* once the wall clock passes the stamps again, it takes over */
    uint64_t s = cl_hlc_now(&c, T0 + 20000);
    CHECK_INT(cl_hlc_unix_ms(s), T0 + 20000);
    CHECK_INT(s & ((1u << CL_HLC_LOGICAL_BITS) - 1), 0);
    /* a wall clock before the epoch (a broken RTC) still gives rising stamps */
    struct cl_hlc z = {0};
    uint64_t a = cl_hlc_now(&z, 0), b = cl_hlc_now(&z, 1000);
    CHECK(a > 0); /* never 0: that is a seed */
    CHECK(b > a);
}

static void test_observe(void)
{
    struct cl_hlc c = {0};
    uint64_t mine = cl_hlc_now(&c, T0);
    /* a peer 5 s ahead: our next stamp orders after its stamp */
    uint64_t theirs = (T0 + 5000 - CL_HLC_EPOCH_MS) << CL_HLC_LOGICAL_BITS | 17;
    cl_hlc_observe(&c, theirs);
    CHECK_INT(c.last, theirs);
    uint64_t next = cl_hlc_now(&c, T0 + 1);
    CHECK_INT(next, theirs + 1);
    CHECK(next > mine);
    /* an older stamp changes nothing */
    cl_hlc_observe(&c, mine);
    cl_hlc_observe(&c, 0);
    CHECK_INT(c.last, next);
    /* observing the very same stamp still leaves the next one above it */
    cl_hlc_observe(&c, next);
    CHECK_INT(cl_hlc_now(&c, T0 + 2), next + 1);
}

static void test_counter_carry(void)
{
    struct cl_hlc c = {0};
    uint64_t first = cl_hlc_now(&c, T0), prev = first;
    uint64_t per_ms = 1u << CL_HLC_LOGICAL_BITS;
    /* 4096 stamps in one millisecond fill the counter; the next one carries */
    for (uint64_t i = 1; i < per_ms; i++) {
        uint64_t s = cl_hlc_now(&c, T0);
        CHECK_INT(s, prev + 1);
        CHECK_INT(cl_hlc_unix_ms(s), T0);
        prev = s;
    }
    uint64_t carried = cl_hlc_now(&c, T0);
    CHECK_INT(carried, first + per_ms);
    CHECK_INT(carried & (per_ms - 1), 0);
    CHECK_INT(cl_hlc_unix_ms(carried), T0 + 1);
    /* the wall clock catching up to the carried millisecond does not repeat it */
    uint64_t s = cl_hlc_now(&c, T0 + 1);
    CHECK_INT(s, carried + 1);
    s = cl_hlc_now(&c, T0 + 2);
    CHECK_INT(cl_hlc_unix_ms(s), T0 + 2);
}

static void test_fits_a_double(void)
{
    const uint64_t y2090 = 3786912000000ULL; /* 2090-01-01T00:00:00Z */
    const uint64_t y2091 = 3818448000000ULL; /* 2091-01-01T00:00:00Z */
    struct cl_hlc c = {0};
    uint64_t a = cl_hlc_now(&c, y2090), b = cl_hlc_now(&c, y2091 - 1);
    for (int i = 0; i < 5000; i++)
        b = cl_hlc_now(&c, y2091 - 1); /* with the counter in use */
    CHECK(a < (1ULL << 53));
    CHECK(b < (1ULL << 53));
    CHECK_INT(cl_hlc_unix_ms(a), y2090);
    /* exact through a double, as JSON and Prometheus carry it */
    CHECK((uint64_t)(double)b == b);
    CHECK_INT(cl_hlc_unix_ms((uint64_t)(double)a), y2090);
}

/* A stamp from far in the future (a buggy or hostile node, a damaged file)
 * is ignored by observe, and cl_hlc_now never wraps to 0 (the seed stamp) nor
 * leaves the range a double holds exactly. */
static void test_observe_far_future(void)
{
    struct cl_hlc c = {0};
    uint64_t prev = cl_hlc_now(&c, T0);
    cl_hlc_observe(&c, UINT64_MAX);
    uint64_t next = cl_hlc_now(&c, T0 + 1);
    CHECK(next != 0 && next > prev);
    struct cl_hlc d = {0};
    cl_hlc_observe(&d, 1ULL << 60);
    CHECK(cl_hlc_now(&d, T0) < (1ULL << 53));
}

TEST_MAIN(TEST(test_wall_time_and_round_trip), TEST(test_clock_going_backwards), TEST(test_observe),
          TEST(test_counter_carry), TEST(test_fits_a_double), TEST(test_observe_far_future))
