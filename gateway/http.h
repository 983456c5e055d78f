/* http.h - HTTP/1.x helpers shared by the client and upstream sides:
 * header classification, token lists, cookies and error responses. */
#ifndef GV_GATEWAY_HTTP_H
#define GV_GATEWAY_HTTP_H

#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>

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
/* Reason phrase for a status code ("Not Found"); "Unknown" when unknown. */
const char *gw_reason(int status);
/* Appends a complete JSON error response {"error": msg, "request_id": id}. */
int gw_error_response(struct gv_buf *out, int status, const char *msg, const char *request_id,
                      bool close);

#endif
