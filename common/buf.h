/* buf.h - a growable byte buffer for building messages and bodies.
 *
 * Not thread-safe; owned by whoever holds it. On allocation failure the
 * append functions return GV_ENOMEM and leave the buffer as it was.
 */
#ifndef GV_COMMON_BUF_H
#define GV_COMMON_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct gv_buf {
    char *data;
    size_t len;
    size_t cap;
};

void gv_buf_init(struct gv_buf *b);
void gv_buf_free(struct gv_buf *b);
void gv_buf_reset(struct gv_buf *b);
int gv_buf_reserve(struct gv_buf *b, size_t extra);
int gv_buf_append(struct gv_buf *b, const void *p, size_t n);
int gv_buf_puts(struct gv_buf *b, const char *s);
int gv_buf_printf(struct gv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends the decimal digits of v (no printf on hot paths). */
int gv_buf_put_u64(struct gv_buf *b, unsigned long long v);
/* Appends a, then b (either may be NULL); for "Name: " value pairs. */
int gv_buf_put2(struct gv_buf *b, const char *a, size_t alen, const char *c, size_t clen);
/* Drops the first n bytes. */
void gv_buf_consume(struct gv_buf *b, size_t n);
/* Hands the memory to the caller (NUL-terminated), leaving b empty. */
char *gv_buf_steal(struct gv_buf *b);
/* Reads b from *off on (a reader's offset, so the bytes are not moved for
 * each read): copies up to cap bytes to dst, advances *off, and once
 * everything is read resets b and *off. Returns the bytes copied; *drained
 * tells whether b is empty now. */
size_t gv_buf_read_at(struct gv_buf *b, size_t *off, void *dst, size_t cap, bool *drained);

#endif
