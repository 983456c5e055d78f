/* ip_restriction.c - the ip_restriction plugin (SPEC: `allow`/`deny` CIDR
 * lists, plus `trusted_proxies` whose X-Forwarded-For is believed) and the
 * CIDR helpers the validator shares. Denied: 403.
 *
 * Matching is a linear walk over prefixes (a byte compare and a mask per
 * rule): rule lists are short, and this keeps a rule list one allocation.
 */
#include "gateway/http_plugins.h"
#include "gateway/pipeline.h"
#include "common/err.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
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

int gw_ip_client(const struct gw_ip_restriction_conf *c, const struct gw_addr *peer,
                 const char *xff, size_t xff_len, struct gw_addr *client)
{
    *client = *peer;
    if (c->ntrusted == 0 || xff == NULL || !gw_cidr_list_match(c->trusted, c->ntrusted, peer))
        return 0;
    /* Right to left: each hop was appended by the one after it; a trusted
     * hop vouches for the entry to its left. */
    size_t end = xff_len;
    while (end > 0) {
        size_t start = end;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        const char *e = xff + start;
        size_t n = end - start;
        end = start > 0 ? start - 1 : 0;
        size_t blank = 0;
        while (blank < n && (e[blank] == ' ' || e[blank] == '\t'))
            blank++;
        if (blank == n) { /* empty element ("a,,b"): nothing to judge */
            if (start == 0)
                break;
            continue;
        }
        struct gw_addr hop;
        if (gw_addr_parse(e, n, &hop) != 0)
            return GV_EINVAL;
        *client = hop;
        if (!gw_cidr_list_match(c->trusted, c->ntrusted, &hop))
            return 0;
        if (start == 0)
            break;
    }
    return 0; /* every hop trusted: the leftmost */
}

bool gw_ip_allowed(const struct gw_ip_restriction_conf *c, const struct gw_addr *a)
{
    if (gw_cidr_list_match(c->deny, c->ndeny, a))
        return false;
    return c->nallow == 0 || gw_cidr_list_match(c->allow, c->nallow, a);
}

/* ---- the plugin --------------------------------------------------------- */

/* Every X-Forwarded-For value, joined in order ("a, b" then ", c"). A lone
 * header, the usual case, is returned in place. */
static const char *xff_of(const struct gw_request *r, struct gv_buf *tmp, size_t *len)
{
    const char *one = NULL;
    size_t onelen = 0, count = 0;
    for (uint32_t i = 0; i < r->hdrs.n; i++) {
        const struct gw_header *h = &r->hdrs.v[i];
        if (!gw_name_eq(r->head.data + h->name_off, h->name_len, "x-forwarded-for"))
            continue;
        const char *v = r->head.data + h->value_off;
        if (count++ == 0) {
            one = v;
            onelen = h->value_len;
            continue;
        }
        if (count == 2 && gv_buf_append(tmp, one, onelen) != 0)
            return NULL;
        if (gv_buf_put2(tmp, ", ", 2, v, h->value_len) != 0)
            return NULL;
    }
    if (count <= 1) {
        *len = onelen;
        return one;
    }
    *len = tmp->len;
    return tmp->data;
}

static enum gw_plugin_verdict ipr_request_headers(const void *conf, struct gw_request *r)
{
    const struct gw_ip_restriction_conf *c = conf;
    struct gw_addr peer, client;
    gw_addr_from_peer(r->conn->peer_family, r->conn->peer, &peer);
    int rv = 0;
    if (c->ntrusted > 0) {
        struct gv_buf tmp;
        size_t n = 0;
        gv_buf_init(&tmp);
        const char *xff = xff_of(r, &tmp, &n);
        rv = gw_ip_client(c, &peer, xff, n, &client);
        gv_buf_free(&tmp);
    } else {
        client = peer;
    }
    if (rv == 0 && gw_ip_allowed(c, &client))
        return GW_PLUGIN_NEXT;
    gw_request_fail(r, 403,
                    rv == 0 ? "forbidden by ip_restriction"
                            : "forbidden by ip_restriction: bad X-Forwarded-For");
    return GW_PLUGIN_ANSWERED;
}

static void ipr_free(void *conf)
{
    struct gw_ip_restriction_conf *c = conf;
    if (c != NULL)
        free(c->allow);
    free(c);
}

const struct gw_plugin_ops gw_plugin_ip_restriction = {
    .name = "ip_restriction",
    .order = 10,
    .on_request_headers = ipr_request_headers,
    .free_conf = ipr_free,
};
