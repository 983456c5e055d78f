/* addrset_test.c - address sets from resolver answers: what is kept (IPv4
 * first, no duplicates, no unusable addresses, at most LB_ADDRSET_MAX, the
 * same whatever the order), comparing and diffing sets, formatting. */
#include "balancer/addrset.h"
#include "common/err.h"
#include "test.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>

/* A getaddrinfo-like answer of the given addresses, in order. */
struct answer {
    struct addrinfo ai[300];
    struct sockaddr_storage ss[300];
};

static const struct addrinfo *answer_of(struct answer *a, const char *const *ips, size_t n)
{
    memset(a, 0, sizeof(*a));
    for (size_t i = 0; i < n; i++) {
        struct addrinfo *ai = &a->ai[i];
        struct sockaddr_in *in4 = (struct sockaddr_in *)&a->ss[i];
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss[i];
        if (inet_pton(AF_INET, ips[i], &in4->sin_addr) == 1) {
            in4->sin_family = AF_INET;
            ai->ai_addrlen = sizeof(*in4);
        } else if (inet_pton(AF_INET6, ips[i], &in6->sin6_addr) == 1) {
            in6->sin6_family = AF_INET6;
            ai->ai_addrlen = sizeof(*in6);
        }
        ai->ai_family = a->ss[i].ss_family;
        ai->ai_addr = (struct sockaddr *)&a->ss[i];
        ai->ai_next = i + 1 < n ? &a->ai[i + 1] : NULL;
    }
    return n > 0 ? a->ai : NULL;
}

static struct answer ans;

/* The set of an answer, formatted ("10.0.0.1, 10.0.0.2"). */
static const char *set_text(const char *const *ips, size_t n, bool *cut)
{
    static char text[4096];
    struct lb_addrset set;
    bool c = lb_addrset_from_addrinfo(&set, answer_of(&ans, ips, n));
    if (cut != NULL)
        *cut = c;
    lb_addrset_format(&set, text, sizeof(text));
    return text;
}

static void test_sorted_without_duplicates(void)
{
    const char *ips[] = {"10.0.0.9", "10.0.0.1", "10.0.0.9", "10.0.0.10", "10.0.0.1"};
    bool cut = true;
    CHECK_STR(set_text(ips, 5, &cut), "10.0.0.1, 10.0.0.9, 10.0.0.10");
    CHECK(!cut);
    /* a DNS server rotating its answer gives the same set */
    const char *rotated[] = {"10.0.0.10", "10.0.0.9", "10.0.0.1"};
    CHECK_STR(set_text(rotated, 3, NULL), "10.0.0.1, 10.0.0.9, 10.0.0.10");
    CHECK_STR(set_text(NULL, 0, NULL), "none");
}

static void test_ipv4_preferred(void)
{
    const char *both[] = {"::1", "127.0.0.1"};
    CHECK_STR(set_text(both, 2, NULL), "127.0.0.1");
    const char *v6[] = {"fd00::2", "fd00::1", "fd00::2"};
    CHECK_STR(set_text(v6, 3, NULL), "fd00::1, fd00::2");
}

static void test_unusable_skipped(void)
{
    const char *ips[] = {"0.0.0.0", "224.0.0.1", "239.1.2.3", "10.0.0.1", "255.255.255.255"};
    CHECK_STR(set_text(ips, 5, NULL), "10.0.0.1, 255.255.255.255");
    const char *v6[] = {"::", "ff02::1", "fe80::1"};
    CHECK_STR(set_text(v6, 3, NULL), "fe80::1");
    /* an entry of another family, or one too short, is skipped */
    struct answer a;
    const char *one[] = {"10.0.0.1", "10.0.0.2"};
    answer_of(&a, one, 2);
    a.ai[0].ai_addrlen = 2;
    a.ss[1].ss_family = AF_UNIX;
    struct lb_addrset set;
    lb_addrset_from_addrinfo(&set, a.ai);
    CHECK_INT(set.n, 0);
}

/* A hostile answer of 256 addresses keeps the lowest 64, whatever the order. */
static void test_capped(void)
{
    static char bufs[256][16];
    const char *ips[256];
    for (int i = 0; i < 256; i++) {
        snprintf(bufs[i], sizeof(bufs[i]), "10.0.%d.%d", (255 - i) / 16, (i * 7) % 256);
        ips[i] = bufs[i];
    }
    struct lb_addrset set;
    CHECK(lb_addrset_from_addrinfo(&set, answer_of(&ans, ips, 256)));
    CHECK_INT(set.n, LB_ADDRSET_MAX);
    for (size_t i = 1; i < set.n; i++)
        CHECK(memcmp(set.ip[i - 1].bytes, set.ip[i].bytes, 4) < 0);
    /* reversed order, same set */
    const char *rev[256];
    for (int i = 0; i < 256; i++)
        rev[i] = ips[255 - i];
    struct lb_addrset again;
    lb_addrset_from_addrinfo(&again, answer_of(&ans, rev, 256));
    CHECK(lb_addrset_equal(&set, &again));
    /* exactly 64 is not cut */
    CHECK(!lb_addrset_from_addrinfo(&again, answer_of(&ans, ips, 64)));
}

static void test_add(void)
{
    struct lb_addrset set = {0};
    struct lb_ip a, b, any;
    CHECK_INT(lb_ip_parse("10.0.0.2", &a), 0);
    CHECK_INT(lb_ip_parse("10.0.0.1", &b), 0);
    CHECK_INT(lb_ip_parse("0.0.0.0", &any), 0);
    CHECK_INT(lb_addrset_add(&set, &a), 0);
    CHECK_INT(lb_addrset_add(&set, &b), 0);
    CHECK_INT(lb_addrset_add(&set, &a), 1);
    CHECK_INT(lb_addrset_add(&set, &any), GV_EINVAL);
    CHECK_INT(set.n, 2);
    CHECK(memcmp(&set.ip[0], &b, sizeof(b)) == 0);
}

static struct lb_addrset set_of(const char *const *ips, size_t n)
{
    struct lb_addrset set;
    lb_addrset_from_addrinfo(&set, answer_of(&ans, ips, n));
    return set;
}

static void test_equal_and_diff(void)
{
    const char *old_ips[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3"};
    const char *new_ips[] = {"10.0.0.4", "10.0.0.2", "10.0.0.1"};
    struct lb_addrset old = set_of(old_ips, 3), next = set_of(new_ips, 3),
                      same = set_of(old_ips, 3);
    struct lb_addrset added, removed;
    char text[256];
    CHECK(lb_addrset_equal(&old, &same));
    CHECK(!lb_addrset_equal(&old, &next));
    lb_addrset_diff(&old, &next, &added, &removed);
    lb_addrset_format(&added, text, sizeof(text));
    CHECK_STR(text, "10.0.0.4");
    lb_addrset_format(&removed, text, sizeof(text));
    CHECK_STR(text, "10.0.0.3");
    lb_addrset_diff(&old, &same, &added, NULL);
    CHECK_INT(added.n, 0);
    /* a name that moved entirely: all out, all in */
    const char *moved_ips[] = {"127.0.0.3"};
    const char *was_ips[] = {"127.0.0.2"};
    struct lb_addrset was = set_of(was_ips, 1), moved = set_of(moved_ips, 1);
    lb_addrset_diff(&was, &moved, &added, &removed);
    CHECK_INT(added.n, 1);
    CHECK_INT(removed.n, 1);
}

static void test_format_and_sockaddr(void)
{
    struct lb_ip ip;
    char text[64];
    CHECK_INT(lb_ip_parse("fd00::7", &ip), 0);
    lb_ip_format(&ip, 9001, text, sizeof(text));
    CHECK_STR(text, "[fd00::7]:9001");
    lb_ip_format(&ip, 0, text, sizeof(text));
    CHECK_STR(text, "fd00::7");
    CHECK_INT(lb_ip_parse("users-2", &ip), GV_EINVAL);
    CHECK_INT(lb_ip_parse("10.0.0.7", &ip), 0);
    lb_ip_format(&ip, 9001, text, sizeof(text));
    CHECK_STR(text, "10.0.0.7:9001");
    struct sockaddr_storage ss;
    lb_ip_sockaddr(&ip, 9001, &ss);
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)&ss;
    CHECK_INT(in4->sin_family, AF_INET);
    CHECK_INT(ntohs(in4->sin_port), 9001);
    CHECK_INT(in4->sin_addr.s_addr, htonl(0x0a000007));
    /* cut short, still terminated */
    lb_ip_format(&ip, 9001, text, 5);
    CHECK_STR(text, "10.0");
}

TEST_MAIN(TEST(test_sorted_without_duplicates), TEST(test_ipv4_preferred),
          TEST(test_unusable_skipped), TEST(test_capped), TEST(test_add), TEST(test_equal_and_diff),
          TEST(test_format_and_sockaddr))
