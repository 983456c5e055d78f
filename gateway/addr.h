/* addr.h - client addresses and CIDR prefixes: parsing ("10.0.0.0/8",
 * "2001:db8::/32", "[v6]:port" from X-Forwarded-For) and matching. IPv4 and
 * IPv4-mapped IPv6 (::ffff:a.b.c.d) are one family, so a v4 rule matches a
 * mapped peer and the other way round. Pure functions, any thread. */
#ifndef GV_GATEWAY_ADDR_H
#define GV_GATEWAY_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

#endif
