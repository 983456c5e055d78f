/* trace.h - W3C Trace Context (traceparent) for proxied requests: each
 * request is a span; a valid incoming traceparent is continued (same trace
 * id, this hop's own span id), anything else starts a new trace. The
 * upstream gets "traceparent: 00-TRACE-SPAN-FLAGS" naming this hop's span as
 * its parent; the trace id goes into the access log and error bodies.
 *
 * Cost: one header lookup and, when the header is there, a 55-byte check;
 * a new trace draws two random numbers, every span one.
 *
 * Threads: the request's worker only; no state of its own.
 */
#ifndef GV_GATEWAY_TRACE_H
#define GV_GATEWAY_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_TRACEPARENT_LEN 55 /* "00-" 32 "-" 16 "-" 2 */

struct gw_trace {
    char trace_id[33];  /* 32 lower-case hex digits, not all zero */
    char span_id[17];   /* this hop's span: 16 hex digits, not all zero */
    char parent_id[17]; /* the client's span when continued, else "" */
    uint8_t flags;      /* trace-flags (bit 0: sampled) */
    bool continued;     /* the client's traceparent was valid and is continued */
};

/* Fills t from the value of an incoming traceparent header (v, len; v NULL
 * when absent): continued when valid, else a new trace (flags 01). Always a
 * new span id. */
void gw_trace_begin(struct gw_trace *t, const char *v, size_t len);
/* The traceparent header value to send upstream, into out (at least
 * GW_TRACEPARENT_LEN + 1 bytes, NUL-terminated). */
void gw_trace_header(const struct gw_trace *t, char *out);

#endif
