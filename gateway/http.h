/* http.h - HTTP/1.x helpers shared by the client and upstream sides:
 * header classification, token lists, cookies and error responses. */
#ifndef GV_GATEWAY_HTTP_H
#define GV_GATEWAY_HTTP_H

#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The headers of one message as llhttp delivers them: names and values are
 * bytes the caller keeps in its own buffer, referenced here by offset, so the
 * buffer may grow (and move) while the head arrives in pieces. */
struct gw_header {
    uint32_t name_off, name_len, value_off, value_len;
};

struct gw_headers {
    struct gw_header *v;
    uint32_t n, cap;
    bool open;     /* v[n] has been started */
    bool in_value; /* llhttp is inside v[n]'s value */
};

/* From on_header_field: len bytes of a name are about to be appended at
 * offset off of the caller's buffer. Returns 0, GV_ERANGE when a new header
 * would make more than max, or GV_ENOMEM (h unchanged). */
int gw_headers_on_field(struct gw_headers *h, uint32_t off, size_t len, uint32_t max);
/* From on_header_value: the same for len bytes of the current value. */
void gw_headers_on_value(struct gw_headers *h, uint32_t off, size_t len);
/* From on_headers_complete: closes the last header. */
void gw_headers_done(struct gw_headers *h);
/* Empties h for the next message, keeping its memory. */
void gw_headers_reset(struct gw_headers *h);
void gw_headers_free(struct gw_headers *h);

/* Case-insensitive equality of a length-delimited name with a C string. */
bool gw_name_eq(const char *name, size_t len, const char *lit);
/* True for headers that describe one connection, not the message (RFC 9110
 * 7.6.1): Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
 * Transfer-Encoding, Upgrade, Proxy-Authenticate, Proxy-Authorization. */
bool gw_is_hop_by_hop(const char *name, size_t len);
/* True when the comma-separated token list contains token (case-insensitive). */
bool gw_token_list_has(const char *list, size_t len, const char *token);
/* Finds cookie `name` in a Cookie header value; returns its value and length
 * or NULL. */
const char *gw_cookie_find(const char *hdr, size_t len, const char *name, size_t *vlen);
/* Reason phrase for a status code ("Not Found"); "Unknown" when unknown
 * (common/httpd.h's gv_http_reason, the one table). */
const char *gw_reason(int status);
/* Appends a complete JSON error response {"error": msg, "request_id": id,
 * "trace_id": trace} ("trace_id" left out when trace is ""). */
int gw_error_response(struct gv_buf *out, int status, const char *msg, const char *request_id,
                      const char *trace_id, bool close);

#endif
