/* hlc.h - a hybrid logical clock packed into one 64-bit number, so stamps of
 * replicated changes order causally and still read as wall-clock time.
 *
 * A stamp is (milliseconds since 2025-01-01 UTC) << 12 plus a 12-bit counter;
 * when the counter overflows it carries into the milliseconds, which keeps the
 * clock monotonic. Stamps stay below 2^53 for ~70 years, so they survive JSON
 * and Prometheus (doubles) exactly. Stamp 0 means "seeded from a config file"
 * and loses to every real change. No threads, no state beyond the struct.
 */
#ifndef GV_CLUSTER_HLC_H
#define GV_CLUSTER_HLC_H

#include <stdint.h>

#define CL_HLC_EPOCH_MS     1735689600000ULL /* 2025-01-01T00:00:00Z */
#define CL_HLC_LOGICAL_BITS 12
/* Stamps stay below this (2^53): larger ones are never issued or observed. */
#define CL_HLC_MAX (1ULL << 53)
/* A peer's stamp more than this ahead of the local wall clock is refused. */
#define CL_HLC_MAX_AHEAD_MS (3600ULL * 1000)

struct cl_hlc {
    uint64_t last; /* the largest stamp issued or observed */
};

/* A new stamp for a local event at wall time unix_ms: above every stamp
 * issued or observed so far, and never 0 (stays below CL_HLC_MAX). */
uint64_t cl_hlc_now(struct cl_hlc *c, uint64_t unix_ms);
/* Records a stamp seen from a peer (or loaded from disk), so later local
 * stamps order after it. Stamps at or above CL_HLC_MAX are ignored. */
void cl_hlc_observe(struct cl_hlc *c, uint64_t stamp);
/* The wall-clock time a stamp was made at (unix ms); 0 for stamp 0. */
uint64_t cl_hlc_unix_ms(uint64_t stamp);
/* The current wall clock in unix ms. */
uint64_t cl_hlc_wall_ms(void);

#endif
