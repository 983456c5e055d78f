/* timing.c - memberlist's timing formulas and profiles. */
#include "cluster/timing.h"
#include "common/err.h"

#include <math.h>
#include <string.h>

static void common_defaults(struct cl_timing *t)
{
    memset(t, 0, sizeof(*t));
    t->indirect_checks = 3;
    t->suspicion_max_timeout_mult = 6;
    t->awareness_max_mult = 8;
    t->gossip_nodes = 3;
    t->retransmit_mult = 4;
    t->broadcast_retransmit_mult = 8;
    t->dead_reap_ms = 60000;
    t->reconnect_interval_ms = 10000;
    t->reconnect_max_ms = 60000;
    t->join_retry_ms = 1000;
    t->join_retry_max_ms = 10000;
    t->seed_refresh_ms = 30000;
    t->leave_flush_ms = 1000;
}

void cl_timing_lan(struct cl_timing *t)
{
    common_defaults(t);
    t->probe_interval_ms = 1000;
    t->probe_timeout_ms = 500;
    t->suspicion_mult = 4;
    t->gossip_interval_ms = 200;
    t->gossip_to_the_dead_ms = 30000;
    t->push_pull_interval_ms = 30000;
    t->push_pull_early_ms = 2 * t->probe_interval_ms;
}

void cl_timing_local(struct cl_timing *t)
{
    common_defaults(t);
    t->probe_interval_ms = 1000;
    t->probe_timeout_ms = 200;
    t->indirect_checks = 1;
    t->suspicion_mult = 3;
    t->retransmit_mult = 2;
    t->broadcast_retransmit_mult = 4;
    t->gossip_interval_ms = 100;
    t->gossip_to_the_dead_ms = 15000;
    t->push_pull_interval_ms = 15000;
    t->push_pull_early_ms = 2 * t->probe_interval_ms;
    t->leave_flush_ms = 500;
}

void cl_timing_wan(struct cl_timing *t)
{
    common_defaults(t);
    t->probe_interval_ms = 5000;
    t->probe_timeout_ms = 3000;
    t->suspicion_mult = 6;
    t->gossip_interval_ms = 500;
    t->gossip_nodes = 4;
    t->gossip_to_the_dead_ms = 60000;
    t->push_pull_interval_ms = 60000;
    t->push_pull_early_ms = 2 * t->probe_interval_ms;
    t->reconnect_interval_ms = 30000;
    t->reconnect_max_ms = 300000;
    t->leave_flush_ms = 2500;
}

int cl_timing_profile(const char *name, struct cl_timing *t)
{
    if (name == NULL)
        return GV_EINVAL;
    if (strcmp(name, "lan") == 0)
        cl_timing_lan(t);
    else if (strcmp(name, "local") == 0)
        cl_timing_local(t);
    else if (strcmp(name, "wan") == 0)
        cl_timing_wan(t);
    else
        return GV_EINVAL;
    return 0;
}

static void scale_one(uint32_t *v, double f)
{
    double x = *v * f;
    *v = x < 1 ? 1 : (uint32_t)x;
}

void cl_timing_scale(struct cl_timing *t, double f)
{
    scale_one(&t->probe_interval_ms, f);
    scale_one(&t->probe_timeout_ms, f);
    scale_one(&t->gossip_interval_ms, f);
    scale_one(&t->gossip_to_the_dead_ms, f);
    scale_one(&t->push_pull_interval_ms, f);
    if (t->push_pull_early_ms > 0)
        scale_one(&t->push_pull_early_ms, f);
    scale_one(&t->dead_reap_ms, f);
    scale_one(&t->reconnect_interval_ms, f);
    scale_one(&t->reconnect_max_ms, f);
    scale_one(&t->join_retry_ms, f);
    scale_one(&t->join_retry_max_ms, f);
    if (t->seed_refresh_ms != 0)
        scale_one(&t->seed_refresh_ms, f);
    scale_one(&t->leave_flush_ms, f);
}

uint64_t cl_suspicion_min_ms(uint32_t suspicion_mult, size_t n, uint32_t probe_interval_ms)
{
    double scale = fmax(1.0, log10(fmax(1.0, (double)n)));
    /* memberlist truncates the scale to milliseconds of a second */
    uint64_t scale_milli = (uint64_t)(scale * 1000.0);
    return (uint64_t)suspicion_mult * scale_milli * probe_interval_ms / 1000;
}

uint64_t cl_suspicion_timeout_ms(uint64_t min_ms, uint64_t max_ms, uint32_t k, uint32_t c)
{
    if (k < 1 || max_ms <= min_ms)
        return min_ms;
    double frac = log((double)c + 1.0) / log((double)k + 1.0);
    double raw = (double)max_ms - frac * (double)(max_ms - min_ms);
    uint64_t t = raw <= (double)min_ms ? min_ms : (uint64_t)floor(raw);
    return t < min_ms ? min_ms : t;
}

uint32_t cl_retransmit_limit(uint32_t retransmit_mult, size_t n)
{
    return retransmit_mult * (uint32_t)ceil(log10((double)n + 1.0));
}

uint64_t cl_push_pull_scale(uint64_t interval_ms, size_t n)
{
    if (n <= 32)
        return interval_ms;
    double mult = ceil(log2((double)n) - log2(32.0)) + 1.0;
    return (uint64_t)(mult * (double)interval_ms);
}
