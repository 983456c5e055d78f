/* addrset.h - the set of addresses a host name resolves to: built from a
 * resolver's answer, compared with the previous one, and written as the
 * "IP:PORT" addresses targets are known by.
 *
 * A resolver's answer is input from outside like any other: only IPv4 and
 * IPv6 addresses that can be connected to are kept (not 0.0.0.0, ::, or
 * multicast), duplicates are dropped, and at most LB_ADDRSET_MAX are kept.
 * A set is sorted, so the same addresses give the same set whatever order a
 * DNS server rotates them in, and every node keeps the same ones when an
 * answer is cut short.
 *
 * Pure functions on caller-owned memory; safe from any thread.
 */
#ifndef GV_BALANCER_ADDRSET_H
#define GV_BALANCER_ADDRSET_H

#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define LB_ADDRSET_MAX 64

/* One IP address without a port. */
struct lb_ip {
    uint8_t family;    /* AF_INET or AF_INET6 */
    uint8_t bytes[16]; /* network order; AF_INET uses the first 4 */
};

struct lb_addrset {
    size_t n;
    struct lb_ip ip[LB_ADDRSET_MAX]; /* sorted (family, then bytes); no duplicates */
};

/* Fills set from a getaddrinfo answer. Entries that are not IPv4/IPv6, are
 * malformed, unspecified or multicast are skipped. A name with IPv4
 * addresses stands for those, one with only IPv6 addresses for these (as
 * Envoy's V4_PREFERRED): "localhost" has both ::1 and 127.0.0.1 on most
 * systems, and an upstream listening on one family would otherwise fail
 * every other request. Of what is left the lowest LB_ADDRSET_MAX distinct
 * addresses are kept. Returns true when distinct addresses were left out
 * for want of room (the caller may warn). */
bool lb_addrset_from_addrinfo(struct lb_addrset *set, const struct addrinfo *ai);

/* Adds ip (kept sorted): 0, 1 when already there, or GV_ERANGE when the set is
 * full and ip is above all its addresses (nothing changed). A full set takes
 * a lower address by dropping its highest. GV_EINVAL for an address the set
 * never holds (see above). */
int lb_addrset_add(struct lb_addrset *set, const struct lb_ip *ip);

bool lb_addrset_equal(const struct lb_addrset *a, const struct lb_addrset *b);
/* The addresses of next that old lacks (added) and of old that next lacks
 * (removed); either out may be NULL. */
void lb_addrset_diff(const struct lb_addrset *old, const struct lb_addrset *next,
                     struct lb_addrset *added, struct lb_addrset *removed);

/* Parses a numeric IPv4 or IPv6 address (no brackets, no port): 0 or
 * GV_EINVAL. A host name is not numeric: that is how a target is told to be
 * resolved. */
int lb_ip_parse(const char *s, struct lb_ip *out);
/* "10.0.0.7:9001" or "[fd00::7]:9001"; with port 0, the address alone
 * ("10.0.0.7", "fd00::7"). Cut short to fit len bytes. */
void lb_ip_format(const struct lb_ip *ip, uint16_t port, char *buf, size_t len);
/* The socket address of ip:port. */
void lb_ip_sockaddr(const struct lb_ip *ip, uint16_t port, struct sockaddr_storage *out);
/* Every address of set, separated by ", " ("10.0.0.7, 10.0.0.8"; "none"
 * when empty), cut short to fit len bytes; for logs. */
void lb_addrset_format(const struct lb_addrset *set, char *buf, size_t len);

#endif
