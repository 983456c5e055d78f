/* sim_util.h - what the simulations share: running the loop until a
 * condition holds (with a deadline) and percentiles. Header-only: each
 * simulation is one executable. */
#ifndef GV_TESTS_SIM_UTIL_H
#define GV_TESTS_SIM_UTIL_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <uv.h>

static void sim_tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs loop until pred(arg) holds or timeout_ms pass (pred NULL: just runs
 * for timeout_ms). Returns whether pred held. */
static inline bool sim_run_until(uv_loop_t *loop, bool (*pred)(void *), void *arg,
                                 uint64_t timeout_ms)
{
    uv_timer_t tick; /* wakes the loop to re-check pred */
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, sim_tick, 5, 5);
    uv_update_time(loop);
    uint64_t end = uv_now(loop) + timeout_ms;
    bool ok;
    while (!(ok = pred ? pred(arg) : false) && uv_now(loop) < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static inline int sim_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The p-quantile (0..1) of v[0..n) by nearest rank; sorts v. NAN when n is 0. */
static inline double sim_pct(uint64_t *v, int n, double p)
{
    if (n == 0)
        return NAN;
    qsort(v, (size_t)n, sizeof(*v), sim_cmp_u64);
    int i = (int)ceil(p * n) - 1;
    return (double)v[i < 0 ? 0 : i];
}

#endif
