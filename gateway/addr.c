/* addr.c - client addresses and CIDR prefixes; see addr.h. */
#include "gateway/addr.h"
#include "common/err.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* 16 raw IPv6 bytes to an address, unmapping ::ffff:a.b.c.d. */
static void from_v6(const uint8_t *b, struct gw_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (memcmp(b, v4mapped, sizeof(v4mapped)) == 0) {
        out->family = 4;
        memcpy(out->a, b + 12, 4);
    } else {
        out->family = 6;
        memcpy(out->a, b, 16);
    }
}

void gw_addr_from_peer(int family, const uint8_t *bytes, struct gw_addr *out)
{
    if (family == AF_INET6) {
        from_v6(bytes, out);
        return;
    }
    memset(out, 0, sizeof(*out));
    out->family = 4;
    memcpy(out->a, bytes, 4);
}

/* s is NUL-terminated. */
static int parse_plain(const char *s, struct gw_addr *out, bool *mapped)
{
    uint8_t b[16];
    *mapped = false;
    if (inet_pton(AF_INET, s, b) == 1) {
        memset(out, 0, sizeof(*out));
        out->family = 4;
        memcpy(out->a, b, 4);
        return 0;
    }
    if (inet_pton(AF_INET6, s, b) == 1) {
        from_v6(b, out);
        *mapped = out->family == 4;
        return 0;
    }
    return GV_EINVAL;
}

int gw_addr_parse(const char *s, size_t len, struct gw_addr *out)
{
    char buf[INET6_ADDRSTRLEN + 1];
    bool mapped;
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len > 0 && s[0] == '[') { /* "[v6]" or "[v6]:port" */
        const char *end = memchr(s, ']', len);
        if (end == NULL)
            return GV_EINVAL;
        s++;
        len = (size_t)(end - s);
    } else {
        const char *colon = memchr(s, ':', len);
        if (colon != NULL && memchr(colon + 1, ':', len - (size_t)(colon + 1 - s)) == NULL)
            len = (size_t)(colon - s); /* "v4:port" */
    }
    if (len == 0 || len >= sizeof(buf))
        return GV_EINVAL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return parse_plain(buf, out, &mapped);
}

static void clear_host_bits(struct gw_addr *a, unsigned bits)
{
    unsigned total = a->family == 4 ? 32 : 128;
    for (unsigned i = bits; i < total; i++)
        a->a[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
}

int gw_cidr_parse(const char *s, struct gw_cidr *out)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    struct gw_addr a;
    bool mapped;
    if (alen == 0 || alen >= sizeof(addr))
        return GV_EINVAL;
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    if (parse_plain(addr, &a, &mapped) != 0)
        return GV_EINVAL;
    unsigned max = (a.family == 4 && !mapped) ? 32 : 128, bits = max;
    if (slash != NULL) {
        const char *p = slash + 1;
        if (*p == '\0' || strlen(p) > 3)
            return GV_EINVAL;
        bits = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return GV_EINVAL;
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (bits > max)
            return GV_EINVAL;
    }
    if (mapped) { /* ::ffff:a.b.c.d/N is the v4 prefix /N-96 */
        if (bits < 96)
            return GV_EINVAL;
        bits -= 96;
    }
    clear_host_bits(&a, bits);
    out->net = a;
    out->bits = (uint8_t)bits;
    return 0;
}

bool gw_cidr_match(const struct gw_cidr *c, const struct gw_addr *a)
{
    if (c->net.family != a->family)
        return false;
    unsigned full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->net.a, a->a, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff00u >> rest);
    return (a->a[full] & mask) == c->net.a[full];
}

bool gw_cidr_list_match(const struct gw_cidr *v, size_t n, const struct gw_addr *a)
{
    for (size_t i = 0; i < n; i++)
        if (gw_cidr_match(&v[i], a))
            return true;
    return false;
}
