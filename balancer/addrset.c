/* addrset.c - address sets of resolved host names (see addrset.h). */
#include "balancer/addrset.h"
#include "common/err.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* Orders by family, then bytes; 0 when equal. */
static int ip_cmp(const struct lb_ip *a, const struct lb_ip *b)
{
    if (a->family != b->family)
        return a->family < b->family ? -1 : 1;
    return memcmp(a->bytes, b->bytes, sizeof(a->bytes));
}

/* Addresses a target can never usefully be: "any" and multicast. */
static bool ip_usable(const struct lb_ip *ip)
{
    static const uint8_t zero[16];
    if (ip->family == AF_INET)
        return memcmp(ip->bytes, zero, 4) != 0 && (ip->bytes[0] & 0xf0) != 0xe0;
    if (ip->family == AF_INET6)
        return memcmp(ip->bytes, zero, 16) != 0 && ip->bytes[0] != 0xff;
    return false;
}

/* The lb_ip of a socket address; false for another family or a short one. */
static bool ip_from_sockaddr(const struct sockaddr *sa, size_t len, struct lb_ip *out)
{
    memset(out, 0, sizeof(*out));
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        out->family = AF_INET;
        memcpy(out->bytes, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        out->family = AF_INET6;
        memcpy(out->bytes, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return true;
    }
    return false;
}

int lb_addrset_add(struct lb_addrset *set, const struct lb_ip *ip)
{
    if (!ip_usable(ip))
        return GV_EINVAL;
    size_t i = 0;
    while (i < set->n && ip_cmp(&set->ip[i], ip) < 0)
        i++;
    if (i < set->n && ip_cmp(&set->ip[i], ip) == 0)
        return 1;
    if (i == LB_ADDRSET_MAX)
        return GV_ERANGE;
    size_t keep = set->n < LB_ADDRSET_MAX ? set->n : LB_ADDRSET_MAX - 1;
    memmove(&set->ip[i + 1], &set->ip[i], (keep - i) * sizeof(set->ip[0]));
    set->ip[i] = *ip;
    set->n = keep + 1;
    return 0;
}

/* Adds the addresses of one family; true when one was left out for room. */
static bool add_family(struct lb_addrset *set, const struct addrinfo *ai, int family)
{
    bool cut = false;
    for (; ai != NULL; ai = ai->ai_next) {
        struct lb_ip ip;
        if (!ip_from_sockaddr(ai->ai_addr, ai->ai_addrlen, &ip) || ip.family != family)
            continue;
        /* A full set that takes a lower address has dropped another one. */
        size_t before = set->n;
        int rv = lb_addrset_add(set, &ip);
        if (rv == GV_ERANGE || (rv == 0 && before == LB_ADDRSET_MAX))
            cut = true;
    }
    return cut;
}

bool lb_addrset_from_addrinfo(struct lb_addrset *set, const struct addrinfo *ai)
{
    set->n = 0;
    bool cut = add_family(set, ai, AF_INET);
    if (set->n == 0)
        cut = add_family(set, ai, AF_INET6);
    return cut;
}

bool lb_addrset_equal(const struct lb_addrset *a, const struct lb_addrset *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        if (ip_cmp(&a->ip[i], &b->ip[i]) != 0)
            return false;
    }
    return true;
}

/* Appends without sorting: a merge walk meets addresses in order. */
static void push(struct lb_addrset *set, const struct lb_ip *ip)
{
    if (set != NULL && set->n < LB_ADDRSET_MAX)
        set->ip[set->n++] = *ip;
}

void lb_addrset_diff(const struct lb_addrset *old, const struct lb_addrset *next,
                     struct lb_addrset *added, struct lb_addrset *removed)
{
    size_t i = 0, j = 0;
    if (added != NULL)
        added->n = 0;
    if (removed != NULL)
        removed->n = 0;
    while (i < old->n || j < next->n) {
        int c = i == old->n ? 1 : j == next->n ? -1 : ip_cmp(&old->ip[i], &next->ip[j]);
        if (c < 0)
            push(removed, &old->ip[i++]);
        else if (c > 0)
            push(added, &next->ip[j++]);
        else {
            i++;
            j++;
        }
    }
}

int lb_ip_parse(const char *s, struct lb_ip *out)
{
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, s, out->bytes) == 1) {
        out->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, s, out->bytes) == 1) {
        out->family = AF_INET6;
        return 0;
    }
    memset(out, 0, sizeof(*out));
    return GV_EINVAL;
}

void lb_ip_format(const struct lb_ip *ip, uint16_t port, char *buf, size_t len)
{
    char text[INET6_ADDRSTRLEN];
    bool v6 = ip->family == AF_INET6;
    if (inet_ntop(v6 ? AF_INET6 : AF_INET, ip->bytes, text, sizeof(text)) == NULL)
        snprintf(text, sizeof(text), "?");
    if (port == 0)
        snprintf(buf, len, "%s", text);
    else
        snprintf(buf, len, v6 ? "[%s]:%u" : "%s:%u", text, (unsigned)port);
}

void lb_ip_sockaddr(const struct lb_ip *ip, uint16_t port, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof(*out));
    if (ip->family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        memcpy(&in6->sin6_addr, ip->bytes, 16);
    } else {
        struct sockaddr_in *in4 = (struct sockaddr_in *)out;
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        memcpy(&in4->sin_addr, ip->bytes, 4);
    }
}

void lb_addrset_format(const struct lb_addrset *set, char *buf, size_t len)
{
    if (len == 0)
        return;
    snprintf(buf, len, "%s", set->n == 0 ? "none" : "");
    for (size_t i = 0; i < set->n; i++) {
        char one[INET6_ADDRSTRLEN];
        size_t used = strlen(buf);
        if (used + 1 >= len)
            break;
        lb_ip_format(&set->ip[i], 0, one, sizeof(one));
        snprintf(buf + used, len - used, "%s%s", i ? ", " : "", one);
    }
}
