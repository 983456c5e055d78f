/* util.c - durations, addresses, hashing, time. */
#include "common/util.h"
#include "common/err.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int gv_parse_duration(const char *s, uint64_t *ms)
{
    if (s == NULL || !isdigit((unsigned char)s[0]))
        return GV_EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0)
        return GV_EINVAL;
    uint64_t mult;
    if (*end == '\0' || strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "m") == 0)
        mult = 60 * 1000;
    else if (strcmp(end, "h") == 0)
        mult = 3600 * 1000;
    else
        return GV_EINVAL;
    if (v > UINT64_MAX / mult)
        return GV_EINVAL;
    *ms = v * mult;
    return 0;
}

int gv_split_hostport(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon;
    const char *hs = s;
    size_t hl;
    if (s == NULL || hostlen == 0)
        return GV_EINVAL;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':')
            return GV_EINVAL;
        hs = s + 1;
        hl = (size_t)(rb - hs);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return GV_EINVAL;
        hl = (size_t)(colon - s);
        if (memchr(s, ':', hl) != NULL) /* bare IPv6 needs brackets */
            return GV_EINVAL;
    }
    if (hl == 0 || hl >= hostlen)
        return GV_EINVAL;
    const char *ps = colon + 1;
    if (*ps == '\0' || strlen(ps) > 5)
        return GV_EINVAL;
    unsigned long p = 0;
    for (const char *c = ps; *c; c++) {
        if (!isdigit((unsigned char)*c))
            return GV_EINVAL;
        p = p * 10 + (unsigned long)(*c - '0');
    }
    if (p == 0 || p > 65535)
        return GV_EINVAL;
    memcpy(host, hs, hl);
    host[hl] = '\0';
    *port = (uint16_t)p;
    return 0;
}

uint64_t gv_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t gv_hash64(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ULL ^ gv_mix64(seed);
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return gv_mix64(h);
}

uint64_t gv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t gv_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t gv_rand64(void)
{
    static _Thread_local uint64_t state;
    if (state == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        state = gv_mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
                         (uint64_t)(uintptr_t)&state) |
                1;
    }
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545F4914F6CDD1DULL;
}

void gv_hex64(uint64_t v, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--, v >>= 4)
        out[i] = digits[v & 15];
}

int gv_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int gv_b64url_value(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int gv_base64_value(int c, bool url)
{
    if (url)
        return gv_b64url_value(c);
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return (c == '-' || c == '_') ? -1 : gv_b64url_value(c);
}

size_t gv_base64_encode(const void *in, size_t n, char *out, bool url)
{
    static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char web[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *alpha = url ? web : std;
    const uint8_t *p = in;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        size_t left = n - i;
        if (left > 1)
            v |= (uint32_t)p[i + 1] << 8;
        if (left > 2)
            v |= p[i + 2];
        out[o++] = alpha[(v >> 18) & 63];
        out[o++] = alpha[(v >> 12) & 63];
        if (left > 1)
            out[o++] = alpha[(v >> 6) & 63];
        else if (!url)
            out[o++] = '=';
        if (left > 2)
            out[o++] = alpha[v & 63];
        else if (!url)
            out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

long gv_base64_decode(const char *s, size_t len, void *out, size_t cap, bool url)
{
    uint8_t *o = out;
    size_t n = 0, data = len;
    uint32_t acc = 0;
    int bits = 0;
    if (!url) { /* standard: padded to a multiple of 4 with at most two '=' */
        if (len % 4 != 0)
            return -1;
        while (data > 0 && len - data < 2 && s[data - 1] == '=')
            data--;
    }
    if (data % 4 == 1)
        return -1;
    for (size_t i = 0; i < data; i++) {
        int v = gv_base64_value((unsigned char)s[i], url);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap)
                return -1;
            o[n++] = (uint8_t)(acc >> bits);
        }
    }
    /* Unused trailing bits must be zero: every byte string has one encoding. */
    if ((acc & ((1u << bits) - 1)) != 0)
        return -1;
    return (long)n;
}

long gv_percent_decode(const char *in, size_t len, char *out, size_t cap, bool plus_is_space)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = in[i];
        if (ch == '%') {
            int hi = i + 2 < len ? gv_hexval((unsigned char)in[i + 1]) : -1;
            int lo = hi < 0 ? -1 : gv_hexval((unsigned char)in[i + 2]);
            if (lo < 0 || (hi == 0 && lo == 0))
                return -1;
            ch = (char)(hi * 16 + lo);
            i += 2;
        } else if (ch == '+' && plus_is_space) {
            ch = ' ';
        }
        if (n == cap)
            return -1;
        out[n++] = ch;
    }
    return (long)n;
}

const char *gv_rfc3339_ms(uint64_t unix_ms, char *out, size_t n)
{
    time_t secs = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(unix_ms % 1000));
    return out;
}
