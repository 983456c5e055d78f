/* trace.c - W3C Trace Context: parsing an incoming traceparent and making
 * this hop's span; see trace.h. */
#include "gateway/trace.h"
#include "common/util.h"

#include <string.h>

static bool lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* n lower-case hex digits, not all zero. */
static bool hex_id(const char *s, size_t n)
{
    bool nonzero = false;
    for (size_t i = 0; i < n; i++) {
        if (!lower_hex(s[i]))
            return false;
        nonzero |= s[i] != '0';
    }
    return nonzero;
}

/* A traceparent we can continue: version 00 exactly as specified, or a later
 * version (not ff) whose first 55 bytes have the version 00 layout
 * (W3C Trace Context, "Versioning of traceparent"). */
static bool parse(const char *v, size_t len, struct gw_trace *t)
{
    if (v == NULL || len < GW_TRACEPARENT_LEN || !lower_hex(v[0]) || !lower_hex(v[1]))
        return false;
    bool v00 = v[0] == '0' && v[1] == '0';
    if ((v[0] == 'f' && v[1] == 'f') || (v00 && len != GW_TRACEPARENT_LEN) ||
        (!v00 && len > GW_TRACEPARENT_LEN && v[GW_TRACEPARENT_LEN] != '-'))
        return false;
    if (v[2] != '-' || v[35] != '-' || v[52] != '-' || !hex_id(v + 3, 32) || !hex_id(v + 36, 16))
        return false;
    if (!lower_hex(v[53]) || !lower_hex(v[54]))
        return false;
    memcpy(t->trace_id, v + 3, 32);
    t->trace_id[32] = '\0';
    memcpy(t->parent_id, v + 36, 16);
    t->parent_id[16] = '\0';
    t->flags = (uint8_t)(gv_hexval(v[53]) << 4 | gv_hexval(v[54]));
    return true;
}

/* 16 hex digits of a random number that is not zero. */
static void random_id(char *out)
{
    uint64_t x = gv_rand64();
    gv_hex64(x != 0 ? x : 1, out);
}

void gw_trace_begin(struct gw_trace *t, const char *v, size_t len)
{
    t->continued = parse(v, len, t);
    if (!t->continued) {
        t->parent_id[0] = '\0';
        random_id(t->trace_id);
        random_id(t->trace_id + 16);
        t->trace_id[32] = '\0';
        t->flags = 1;
    }
    random_id(t->span_id);
    t->span_id[16] = '\0';
}

void gw_trace_header(const struct gw_trace *t, char *out)
{
    static const char hex[] = "0123456789abcdef";
    /* on every proxied request: copies, not printf */
    memcpy(out, "00-", 3);
    memcpy(out + 3, t->trace_id, 32);
    out[35] = '-';
    memcpy(out + 36, t->span_id, 16);
    out[52] = '-';
    out[53] = hex[t->flags >> 4];
    out[54] = hex[t->flags & 15];
    out[55] = '\0';
}
