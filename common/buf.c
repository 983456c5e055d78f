/* buf.c - growable byte buffer. */
#include "common/buf.h"
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gv_buf_init(struct gv_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void gv_buf_free(struct gv_buf *b)
{
    free(b->data);
    gv_buf_init(b);
}

void gv_buf_reset(struct gv_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

int gv_buf_reserve(struct gv_buf *b, size_t extra)
{
    /* One spare byte so the content can always be NUL-terminated. */
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return GV_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int gv_buf_append(struct gv_buf *b, const void *p, size_t n)
{
    int rv = gv_buf_reserve(b, n);
    if (rv != 0)
        return rv;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int gv_buf_puts(struct gv_buf *b, const char *s)
{
    return gv_buf_append(b, s, strlen(s));
}

int gv_buf_printf(struct gv_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return GV_EINVAL;
    int rv = gv_buf_reserve(b, (size_t)n);
    if (rv != 0)
        return rv;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int gv_buf_put_u64(struct gv_buf *b, unsigned long long v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return gv_buf_append(b, tmp + i, sizeof(tmp) - i);
}

int gv_buf_put2(struct gv_buf *b, const char *a, size_t alen, const char *c, size_t clen)
{
    int rv = gv_buf_reserve(b, alen + clen);
    if (rv != 0)
        return rv;
    if (alen > 0)
        memcpy(b->data + b->len, a, alen);
    if (clen > 0)
        memcpy(b->data + b->len + alen, c, clen);
    b->len += alen + clen;
    b->data[b->len] = '\0';
    return 0;
}

void gv_buf_consume(struct gv_buf *b, size_t n)
{
    if (n >= b->len) {
        gv_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *gv_buf_steal(struct gv_buf *b)
{
    if (gv_buf_reserve(b, 0) != 0)
        return NULL;
    b->data[b->len] = '\0';
    char *p = b->data;
    gv_buf_init(b);
    return p;
}

size_t gv_buf_read_at(struct gv_buf *b, size_t *off, void *dst, size_t cap, bool *drained)
{
    size_t avail = b->len - *off, n = avail < cap ? avail : cap;
    if (n > 0)
        memcpy(dst, b->data + *off, n);
    *off += n;
    *drained = *off == b->len;
    if (*drained) {
        *off = 0;
        gv_buf_reset(b);
    }
    return n;
}
