/* rlgossip.h - the rate-limit demand message of cluster channel 3
 * (docs/rate-limiting.md). Each node sends, every 100 ms, to every live
 * member, its recent demand (an EWMA of requests per 100 ms tick, in
 * thousandths) for each scope-cluster key it saw traffic for:
 *
 *   "RL" 0x01 | u32 tick | u16 count | count x (u64 key, u32 demand_milli)
 *
 * big-endian, at most CL_RLG_MAX entries per message (more keys go in more
 * messages with the same tick). No gateway types here. */
#ifndef GV_CLUSTER_RLGOSSIP_H
#define GV_CLUSTER_RLGOSSIP_H

#include <stddef.h>
#include <stdint.h>

#define CL_RLG_CHANNEL 3
#define CL_RLG_MAX     4096
#define CL_RLG_HEADER  9
#define CL_RLG_ENTRY   12

struct cl_rlg_entry {
    uint64_t key;
    uint32_t demand_milli;
};

/* Writes a message of n (<= CL_RLG_MAX) entries into out (at least
 * CL_RLG_HEADER + n * CL_RLG_ENTRY bytes); returns its length. */
size_t cl_rlg_encode(uint32_t tick, const struct cl_rlg_entry *e, size_t n, uint8_t *out);
/* Checks a message; returns its entry count and sets *tick, or -1 when it
 * is not a well-formed message. Entries are then read with cl_rlg_entry(). */
int cl_rlg_decode(const uint8_t *p, size_t len, uint32_t *tick);
struct cl_rlg_entry cl_rlg_entry_at(const uint8_t *p, size_t i);

#endif
