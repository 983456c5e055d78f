/* hlc.c - the packed hybrid logical clock. */
#include "cluster/hlc.h"

#include <time.h>

uint64_t cl_hlc_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t cl_hlc_now(struct cl_hlc *c, uint64_t unix_ms)
{
    uint64_t pt =
        unix_ms > CL_HLC_EPOCH_MS ? (unix_ms - CL_HLC_EPOCH_MS) << CL_HLC_LOGICAL_BITS : 0;
    c->last = pt > c->last ? pt : c->last + 1;
    if (c->last >= CL_HLC_MAX) /* unreachable before 2094 unless observe was bypassed */
        c->last = CL_HLC_MAX - 1;
    if (c->last == 0)
        c->last = 1;
    return c->last;
}

void cl_hlc_observe(struct cl_hlc *c, uint64_t stamp)
{
    if (stamp > c->last && stamp < CL_HLC_MAX)
        c->last = stamp;
}

uint64_t cl_hlc_unix_ms(uint64_t stamp)
{
    return stamp == 0 ? 0 : (stamp >> CL_HLC_LOGICAL_BITS) + CL_HLC_EPOCH_MS;
}
