/* file.h - whole-file reads and crash-safe whole-file writes.
 *
 * Blocking: call from a thread that may block (start-up, or libuv's thread
 * pool), never from a loop that serves traffic.
 */
#ifndef GV_COMMON_FILE_H
#define GV_COMMON_FILE_H

#include "common/buf.h"

#include <stddef.h>

/* Replaces path with data so that after a crash at any point the file holds
 * either the old or the new contents: writes path.tmp, fsyncs it, renames it
 * over path and fsyncs the directory. Mode 0600. Returns 0 or a negative
 * errno (path is untouched then). */
int gv_file_write_atomic(const char *path, const void *data, size_t len);
/* Appends the whole file to out. Returns 0, GV_ENOENT, GV_ERANGE (larger than
 * max) or another negative errno. */
int gv_file_read(const char *path, size_t max, struct gv_buf *out);
/* The same from an open descriptor (read to its end; not closed). */
int gv_file_read_fd(int fd, size_t max, struct gv_buf *out);
/* Creates dir (and its parents) with mode 0700 when missing. 0 or -errno. */
int gv_mkdirs(const char *dir);

#endif
