/* httpc.h - a small HTTP/1.1 client core: a request head built one way, and
 * a response parser on llhttp (status, headers, a body up to a cap, chunked
 * or close-delimited) fed with bytes from wherever the caller reads them: a
 * libuv read callback (health probes) or a blocking socket (`grapevine ctl`,
 * through gv_httpc_connect/gv_httpc_exchange).
 *
 * Threads: no state of its own; a parser belongs to whoever holds it.
 * gv_httpc_connect and gv_httpc_exchange block, so they are never called on
 * a loop.
 *
 * Memory: the parser keeps headers and body in its own buffers, freed by
 * gv_httpc_free. One that keeps neither (head_only, no keep_headers)
 * allocates nothing and needs no gv_httpc_free.
 */
#ifndef GV_COMMON_HTTPC_H
#define GV_COMMON_HTTPC_H

#include "common/buf.h"

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>

struct gv_httpc_options {
    size_t max_head_bytes; /* status line, header names and values; 0: no limit */
    size_t max_body_bytes; /* kept body; 0: no limit */
    bool head_only;        /* done at the (final) head: the body is not read */
    bool keep_headers;     /* for gv_httpc_header */
    bool head_request;     /* the request was HEAD: no body follows */
};

struct gv_httpc {
    llhttp_t parser;
    struct gv_httpc_options opt;
    int status;        /* the final status once head_done */
    struct gv_buf hdr; /* kept headers: name NUL value NUL ... */
    struct gv_buf body;
    size_t head_bytes;
    int err;           /* once feed or finish failed: the error */
    const char *error; /* ... and why, when llhttp did not say */
    bool head_done;    /* the final head (not a 1xx) is in */
    bool done;         /* the response is complete (or its head, head_only) */
    bool in_value;
};

/* Readies p (memory that is zeroed, or freed with gv_httpc_free) for one
 * response. */
void gv_httpc_init(struct gv_httpc *p, const struct gv_httpc_options *opt);
void gv_httpc_free(struct gv_httpc *p);
/* Parses the next bytes. Returns 1 once the response is complete (its head,
 * head_only; 1xx heads are skipped), 0 when more is needed, or GV_EPROTO
 * (malformed), GV_ERANGE (head or body over its limit), GV_ENOMEM, with the
 * reason in gv_httpc_error. Bytes after a complete response are ignored. */
int gv_httpc_feed(struct gv_httpc *p, const char *data, size_t len);
/* The connection ended: returns 1 when the response is complete (a
 * close-delimited body ends so), else GV_EPROTO. */
int gv_httpc_finish(struct gv_httpc *p);
/* Why the last feed or finish failed; "" when it did not. */
const char *gv_httpc_error(const struct gv_httpc *p);
/* A kept header's value (the first named name, any case), or NULL. */
const char *gv_httpc_header(const struct gv_httpc *p, const char *name);

/* Appends "METHOD target HTTP/1.1", Host, the extra header lines
 * ("Name: value\r\n", or NULL), Content-Length when content_length >= 0, and
 * the empty line. 0 or GV_ENOMEM. */
int gv_httpc_put_request(struct gv_buf *b, const char *method, const char *target, const char *host,
                         const char *headers, long long content_length);

/* Connects a blocking socket to "host:port" (a name is resolved; each address
 * is tried), with timeout_ms on every send and receive. Returns the socket,
 * or a negative error with the reason in err. */
int gv_httpc_connect(const char *hostport, int timeout_ms, char *err, size_t errlen);
/* Sends len bytes of request on fd and parses the answer into p (inited by
 * the caller) until it is complete or the peer closes. Returns 0, or a
 * negative error with the reason in err. Does not close fd. */
int gv_httpc_exchange(int fd, const void *req, size_t len, struct gv_httpc *p, char *err,
                      size_t errlen);

#endif
