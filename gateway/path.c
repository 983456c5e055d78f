/* path.c - path normalisation; see path.h. */
#include "gateway/path.h"
#include "common/util.h"

#include <string.h>
#include <strings.h>

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

bool gw_path_needs_normalizing(const char *path, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c == '%' || c == '\\' || c < 0x20 || c == 0x7f)
            return true;
        if (c == '/' && i + 1 < len && (path[i + 1] == '/' || path[i + 1] == '.'))
            return true;
    }
    return false;
}

/* Pass 1: escapes. Decodes unreserved ones, upper-cases the others, turns
 * encoded slashes into '/' (decode) or flags them. -1 on a bad escape. */
static long decode_pass(const char *in, size_t len, char *out, bool decode_slashes, unsigned *flags)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x20 || c == 0x7f)
            return -1;
        if (c == '\\') {
            *flags |= GW_PATH_ESCAPED_SLASH;
            out[n++] = decode_slashes ? '/' : '\\';
            continue;
        }
        if (c != '%') {
            out[n++] = (char)c;
            continue;
        }
        int hi = i + 2 < len ? gv_hexval((unsigned char)in[i + 1]) : -1;
        int lo = hi < 0 ? -1 : gv_hexval((unsigned char)in[i + 2]);
        if (lo < 0)
            return -1;
        unsigned char v = (unsigned char)(hi * 16 + lo);
        if (v == 0 || v < 0x20 || v == 0x7f)
            return -1; /* an encoded NUL or control byte hides nothing we allow */
        i += 2;
        if (v == '/' || v == '\\') {
            *flags |= GW_PATH_ESCAPED_SLASH;
            if (decode_slashes) {
                out[n++] = '/';
                continue;
            }
        } else if (unreserved(v)) {
            out[n++] = (char)v;
            continue;
        }
        static const char hex[] = "0123456789ABCDEF";
        out[n++] = '%';
        out[n++] = hex[v >> 4];
        out[n++] = hex[v & 15];
    }
    return (long)n;
}

/* Pass 2, in place: merges slashes and removes dot segments. A segment is
 * what lies between two '/'; "." and ".." are judged whole, so "..." or
 * ".x" stay. */
static size_t segments_pass(char *p, size_t len)
{
    size_t w = 0, i = 0;
    while (i < len) {
        /* p[i] == '/' here: skip the run of slashes, then read one segment */
        while (i < len && p[i] == '/')
            i++;
        size_t start = i;
        while (i < len && p[i] != '/')
            i++;
        size_t seg = i - start;
        bool trailing = i >= len; /* no '/' after this segment */
        if (seg == 1 && p[start] == '.') {
            if (trailing)
                p[w++] = '/';
            continue;
        }
        if (seg == 2 && p[start] == '.' && p[start + 1] == '.') {
            while (w > 0 && p[w - 1] != '/')
                w--; /* drop the last segment written... */
            if (w > 0)
                w--; /* ...and its slash */
            if (trailing)
                p[w++] = '/';
            continue;
        }
        if (seg == 0) {
            if (trailing)
                p[w++] = '/'; /* "/a/" keeps its final slash */
            continue;
        }
        p[w++] = '/';
        memmove(p + w, p + start, seg);
        w += seg;
    }
    if (w == 0)
        p[w++] = '/';
    return w;
}

long gw_path_normalize(const char *path, size_t len, char *out, size_t cap, bool decode_slashes,
                       unsigned *flags)
{
    *flags = 0;
    if (len == 0 || path[0] != '/' || cap < len)
        return -1;
    long n = decode_pass(path, len, out, decode_slashes, flags);
    if (n < 0)
        return -1;
    size_t m = segments_pass(out, (size_t)n);
    if (m != len || memcmp(out, path, len) != 0)
        *flags |= GW_PATH_CHANGED;
    return (long)m;
}

int gw_target_absolute(const char *url, size_t len, size_t *auth_off, size_t *auth_len,
                       size_t *path_off)
{
    size_t skip;
    if (len >= 7 && strncasecmp(url, "http://", 7) == 0)
        skip = 7;
    else if (len >= 8 && strncasecmp(url, "https://", 8) == 0)
        skip = 8;
    else
        return -1;
    size_t end = skip;
    while (end < len && url[end] != '/' && url[end] != '?' && url[end] != '#')
        end++;
    if (end == skip || memchr(url + skip, '@', end - skip) != NULL)
        return -1; /* no host, or userinfo: nothing a client should send */
    *auth_off = skip;
    *auth_len = end - skip;
    *path_off = end;
    return 0;
}
