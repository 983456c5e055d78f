/* request_fixture.h - requests made up without a socket, for the tests of the
 * request object and of the plugins: a head (method, target, headers) laid
 * out in one buffer as the HTTP/1.1 codec lays it out, a peer address, and
 * the request id the codec would have given it. */
#ifndef GV_TESTS_REQUEST_FIXTURE_H
#define GV_TESTS_REQUEST_FIXTURE_H

#include "gateway/request.h"
#include "test.h"

#include <arpa/inet.h>
#include <string.h>

/* The peer at ip (dotted IPv4 or IPv6 text); a failed check when it is
 * neither. */
static inline struct gw_peer fx_peer(const char *ip)
{
    struct gw_peer p;
    memset(&p, 0, sizeof(p));
    if (inet_pton(AF_INET, ip, p.addr) == 1)
        p.family = AF_INET;
    else if (inet_pton(AF_INET6, ip, p.addr) == 1)
        p.family = AF_INET6;
    CHECK(p.family != 0);
    return p;
}

/* Makes r a request from peer (which must outlive r): method is llhttp's
 * HTTP_*, hdrs "Name: value" strings up to a NULL (hdrs itself may be NULL).
 * Like the codec, the head buffer holds the target then each name and value,
 * referenced by offsets, and a valid X-Request-Id becomes the request id
 * (else a random one). Free with fx_request_free. */
static inline void fx_request(struct gw_request *r, const struct gw_peer *peer, int method,
                              const char *target, const char *const *hdrs)
{
    memset(r, 0, sizeof(*r));
    r->peer = peer;
    r->method = (uint8_t)method;
    r->http_major = r->http_minor = 1;
    r->route = 0;
    r->url_off = 0;
    r->url_len = (uint32_t)strlen(target);
    CHECK_INT(gv_buf_append(&r->head, target, r->url_len), 0);
    for (size_t i = 0; hdrs != NULL && hdrs[i] != NULL; i++) {
        const char *colon = strchr(hdrs[i], ':');
        CHECK(colon != NULL);
        if (colon == NULL)
            continue;
        size_t nl = (size_t)(colon - hdrs[i]);
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        CHECK_INT(gw_headers_on_field(&r->hdrs, (uint32_t)r->head.len, nl, 100), 0);
        CHECK_INT(gv_buf_append(&r->head, hdrs[i], nl), 0);
        gw_headers_on_value(&r->hdrs, (uint32_t)r->head.len, strlen(v));
        CHECK_INT(gv_buf_append(&r->head, v, strlen(v)), 0);
    }
    gw_headers_done(&r->hdrs);
    size_t n = 0;
    const char *id = gw_request_header(r, "x-request-id", &n);
    if (!gw_request_set_id(r, id, n))
        gw_request_new_id(r);
}

static inline void fx_request_free(struct gw_request *r)
{
    gv_buf_free(&r->head);
    gw_headers_free(&r->hdrs);
}

#endif
