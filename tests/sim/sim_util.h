/* sim_util.h - what the simulations share: running the loop until a
 * condition holds (with a deadline), how far the loop fell behind meanwhile,
 * and percentiles. Header-only: each simulation is one executable. */
#ifndef GV_TESTS_SIM_UTIL_H
#define GV_TESTS_SIM_UTIL_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <uv.h>

#define SIM_TICK_MS 5

/* The most the loop fell behind its SIM_TICK_MS tick since set to 0: real
 * timers measure the machine too, and a busy one (other processes on its
 * cores) shows here, not as protocol behaviour. */
static uint64_t sim_lag_max_ms;
static uint64_t sim_tick_last; /* loop time of the last tick; 0: none yet */

static void sim_tick(uv_timer_t *t)
{
    uint64_t now = uv_now(t->loop);
    if (sim_tick_last != 0 && now > sim_tick_last + SIM_TICK_MS &&
        now - sim_tick_last - SIM_TICK_MS > sim_lag_max_ms)
        sim_lag_max_ms = now - sim_tick_last - SIM_TICK_MS;
    sim_tick_last = now;
}

/* Runs loop until pred(arg) holds or timeout_ms pass (pred NULL: just runs
 * for timeout_ms). Returns whether pred held. */
static inline bool sim_run_until(uv_loop_t *loop, bool (*pred)(void *), void *arg,
                                 uint64_t timeout_ms)
{
    uv_timer_t tick; /* wakes the loop to re-check pred */
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, sim_tick, SIM_TICK_MS, SIM_TICK_MS);
    sim_tick_last = 0;
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
