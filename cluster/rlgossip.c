/* rlgossip.c - see rlgossip.h. */
#include "cluster/rlgossip.h"

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

size_t cl_rlg_encode(uint32_t tick, const struct cl_rlg_entry *e, size_t n, uint8_t *out)
{
    if (n > CL_RLG_MAX)
        n = CL_RLG_MAX;
    out[0] = 'R';
    out[1] = 'L';
    out[2] = 1;
    put32(out + 3, tick);
    out[7] = (uint8_t)(n >> 8);
    out[8] = (uint8_t)n;
    uint8_t *p = out + CL_RLG_HEADER;
    for (size_t i = 0; i < n; i++, p += CL_RLG_ENTRY) {
        put32(p, (uint32_t)(e[i].key >> 32));
        put32(p + 4, (uint32_t)e[i].key);
        put32(p + 8, e[i].demand_milli);
    }
    return (size_t)(p - out);
}

int cl_rlg_decode(const uint8_t *p, size_t len, uint32_t *tick)
{
    if (len < CL_RLG_HEADER || p[0] != 'R' || p[1] != 'L' || p[2] != 1)
        return -1;
    size_t n = (size_t)p[7] << 8 | p[8];
    if (n > CL_RLG_MAX || len != CL_RLG_HEADER + n * CL_RLG_ENTRY)
        return -1;
    *tick = get32(p + 3);
    return (int)n;
}

struct cl_rlg_entry cl_rlg_entry_at(const uint8_t *p, size_t i)
{
    const uint8_t *q = p + CL_RLG_HEADER + i * CL_RLG_ENTRY;
    struct cl_rlg_entry e = {(uint64_t)get32(q) << 32 | get32(q + 4), get32(q + 8)};
    return e;
}

size_t cl_rlc_encode(uint32_t tick, unsigned part, const struct cl_rlc_entry *e, size_t n,
                     uint8_t *out)
{
    if (n > CL_RLC_MAX)
        n = CL_RLC_MAX;
    out[0] = 'R';
    out[1] = 'C';
    out[2] = 1;
    put32(out + 3, tick);
    out[7] = (uint8_t)(part % CL_RLC_PARTS);
    out[8] = (uint8_t)(n >> 8);
    out[9] = (uint8_t)n;
    out[10] = CL_RLC_ENTRY;
    uint8_t *p = out + CL_RLC_HEADER;
    for (size_t i = 0; i < n; i++, p += CL_RLC_ENTRY) {
        put32(p, (uint32_t)(e[i].key >> 32));
        put32(p + 4, (uint32_t)e[i].key);
        put32(p + 8, e[i].demand_milli);
        for (size_t j = 0; j < CL_RLC_TICKS; j++)
            put32(p + 12 + 4 * j, e[i].admitted[j]);
    }
    return (size_t)(p - out);
}

int cl_rlc_decode(const uint8_t *p, size_t len, struct cl_rlc_head *h)
{
    if (len < CL_RLC_HEADER || p[0] != 'R' || p[1] != 'C' || p[2] == 0 || p[7] >= CL_RLC_PARTS ||
        p[10] < CL_RLC_ENTRY)
        return -1;
    size_t n = (size_t)p[8] << 8 | p[9], el = p[10];
    if (n > CL_RLC_MAX || len != CL_RLC_HEADER + n * el)
        return -1;
    h->tick = get32(p + 3);
    h->part = p[7];
    h->entry_len = el;
    return (int)n;
}

struct cl_rlc_entry cl_rlc_entry_at(const uint8_t *p, size_t entry_len, size_t i)
{
    const uint8_t *q = p + CL_RLC_HEADER + i * entry_len;
    struct cl_rlc_entry e;
    e.key = (uint64_t)get32(q) << 32 | get32(q + 4);
    e.demand_milli = get32(q + 8);
    for (size_t j = 0; j < CL_RLC_TICKS; j++)
        e.admitted[j] = get32(q + 12 + 4 * j);
    return e;
}
