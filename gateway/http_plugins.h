/* http_plugins.h - the non-auth request plugins: ip_restriction, cors,
 * request_headers / response_headers, request_size_limit and request_id
 * (docs/plugins.md). Their typed configs are built once per snapshot on the
 * control thread (node/plugins_http.c) and only read by workers; the helpers
 * below are pure functions over them, shared with the validator and tests.
 */
#ifndef GV_GATEWAY_HTTP_PLUGINS_H
#define GV_GATEWAY_HTTP_PLUGINS_H

#include "common/buf.h"
#include "gateway/plugin.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern const struct gw_plugin_ops gw_plugin_ip_restriction;
extern const struct gw_plugin_ops gw_plugin_cors;
extern const struct gw_plugin_ops gw_plugin_request_headers;
extern const struct gw_plugin_ops gw_plugin_response_headers;
extern const struct gw_plugin_ops gw_plugin_request_size_limit;
extern const struct gw_plugin_ops gw_plugin_request_id;

/* ---- addresses and CIDRs (ip_restriction.c) ---------------------------- */

/* An address as 16 bytes: IPv4 (and IPv4-mapped IPv6, ::ffff:a.b.c.d) is
 * kept as v4 so a v4 rule matches a mapped peer and the other way round. */
struct gw_addr {
    uint8_t family; /* 4 or 6 */
    uint8_t a[16];  /* v4: the first 4 bytes */
};

struct gw_cidr {
    struct gw_addr net; /* host bits cleared */
    uint8_t bits;
};

/* Parses "10.0.0.0/8", "2001:db8::/32", "::ffff:10.0.0.0/104" or a bare
 * address (one host) with inet_pton. Returns 0 or GV_EINVAL (*out unchanged). */
int gw_cidr_parse(const char *s, struct gw_cidr *out);
/* Parses one address, tolerating "[v6]:port" and "v4:port" (X-Forwarded-For
 * entries); s need not be NUL-terminated. Returns 0 or GV_EINVAL. */
int gw_addr_parse(const char *s, size_t len, struct gw_addr *out);
/* From a socket peer (family AF_INET/AF_INET6, raw bytes). */
void gw_addr_from_peer(int family, const uint8_t *bytes, struct gw_addr *out);
bool gw_cidr_match(const struct gw_cidr *c, const struct gw_addr *a);
bool gw_cidr_list_match(const struct gw_cidr *v, size_t n, const struct gw_addr *a);

struct gw_ip_restriction_conf {
    struct gw_cidr *allow, *deny, *trusted; /* one allocation, in this order */
    size_t nallow, ndeny, ntrusted;
};

/* The client address the rules judge: the peer, unless the peer is a trusted
 * proxy; then X-Forwarded-For is walked from the right, skipping trusted
 * proxies, and the first untrusted hop is the client (all trusted: the
 * leftmost). xff is every X-Forwarded-For value joined by ", " in order (NULL
 * when none). Returns 0, or GV_EINVAL when the hop that would be the client
 * is not an address (the request is then denied). */
int gw_ip_client(const struct gw_ip_restriction_conf *c, const struct gw_addr *peer,
                 const char *xff, size_t xff_len, struct gw_addr *client);
/* true when the rules admit a: deny wins; a non-empty allow list must match. */
bool gw_ip_allowed(const struct gw_ip_restriction_conf *c, const struct gw_addr *a);

/* ---- header edits (headers.c) ------------------------------------------ */

struct gw_hdr_kv {
    const char *name, *value;
    uint32_t name_len, value_len;
};

/* request_headers / response_headers: `remove` drops every header of those
 * names, `set` replaces (drops all, then adds one), `add` appends another.
 * All strings live in one allocation owned by the config. */
struct gw_hdr_edits {
    struct gw_hdr_kv *set, *add, *remove; /* remove: value unused */
    size_t nset, nadd, nremove;
};

/* true when a header of this name is dropped from the message (removed or
 * replaced by a `set`). */
bool gw_hdr_edits_drops(const struct gw_hdr_edits *e, const char *name, size_t len);
/* Appends the `set` and `add` lines ("Name: value\r\n"). 0 or GV_ENOMEM. */
int gw_hdr_edits_append(const struct gw_hdr_edits *e, struct gv_buf *b);
void gw_hdr_edits_free(void *conf);

/* ---- cors (cors.c) ------------------------------------------------------ */

struct gw_cors_conf {
    char **origins; /* exact origins ("https://a.example:8443"); NULL-terminated */
    bool any_origin;
    bool credentials;
    char *methods;       /* "GET, POST", Access-Control-Allow-Methods */
    char *headers;       /* allowed request headers, NULL: echo what is asked */
    char *expose;        /* Access-Control-Expose-Headers, or NULL */
    long long max_age_s; /* -1: not sent */
};

/* true when origin (len bytes) is allowed by c. */
bool gw_cors_origin_ok(const struct gw_cors_conf *c, const char *origin, size_t len);
void gw_cors_free(void *conf);

/* ---- request_size_limit (size_limit.c) --------------------------------- */

struct gw_size_limit_conf {
    uint64_t max_bytes;
};

/* The accounting: true when a request that announced content_length (when
 * has_length) and has sent `seen` body bytes so far is over the limit. */
bool gw_size_over(const struct gw_size_limit_conf *c, bool has_length, uint64_t content_length,
                  uint64_t seen);

/* ---- request_id (request_id.c) ----------------------------------------- */

struct gw_request_id_conf {
    char header[128];  /* the header name, "X-Request-Id" by default */
    bool pass_through; /* keep a valid incoming id (default true) */
    bool echo;         /* send it back on the response (default true) */
    bool conn_rule;    /* X-Request-Id with pass_through: what conn.c does for
                        * every request, so the plugin need not redo it */
};

/* A client-supplied id is kept when it is 1..32 bytes of [A-Za-z0-9._-]. */
bool gw_request_id_valid(const char *v, size_t len);

#endif
