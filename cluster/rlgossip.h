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

/* Channel 4: the admission counts message (docs/rate-limiting.md), sent
 * every tick to every live member beside the demand message above (which
 * nodes of earlier versions still read; they have no channel 4 handler and
 * drop this one unread):
 *
 *   "RC" version | u32 tick | u8 part | u16 count | u8 entry_len |
 *   count x (u64 key, u32 demand_milli, CL_RLC_TICKS x u32 admitted)
 *
 * admitted[j] is the sender's admissions for key in its tick (tick - j).
 * A tick with more keys than one message holds goes in parts 0, 1, ...
 * (< CL_RLC_PARTS): a receiver applies each (tick, part) once.
 * A reader takes the first CL_RLC_ENTRY bytes of each entry and skips the
 * rest, so a later version may append fields (entry_len > CL_RLC_ENTRY, any
 * version >= 1) without breaking this one. */
#define CL_RLC_CHANNEL 4
#define CL_RLC_TICKS   4
#define CL_RLC_HEADER  11
#define CL_RLC_ENTRY   (12 + 4 * CL_RLC_TICKS)
#define CL_RLC_MAX     2048
#define CL_RLC_PARTS   64

struct cl_rlc_entry {
    uint64_t key;
    uint32_t demand_milli;
    uint32_t admitted[CL_RLC_TICKS];
};

struct cl_rlc_head {
    uint32_t tick;
    unsigned part;
    size_t entry_len;
};

/* Writes a message of n (<= CL_RLC_MAX) entries; returns its length. */
size_t cl_rlc_encode(uint32_t tick, unsigned part, const struct cl_rlc_entry *e, size_t n,
                     uint8_t *out);
/* The entry count (and *h) of a well-formed message, else -1. */
int cl_rlc_decode(const uint8_t *p, size_t len, struct cl_rlc_head *h);
struct cl_rlc_entry cl_rlc_entry_at(const uint8_t *p, size_t entry_len, size_t i);

#endif
