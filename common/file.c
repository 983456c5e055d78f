/* file.c - whole-file reads and crash-safe whole-file writes. */
#include "common/file.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fsync_dir(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return GV_ENOMEM;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rv = fd < 0 ? -errno : 0;
    if (fd >= 0 && fsync(fd) != 0)
        rv = -errno;
    if (fd >= 0)
        close(fd);
    free(copy);
    return rv;
}

int gv_file_write_atomic(const char *path, const void *data, size_t len)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return GV_ERANGE;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rv = write_all(fd, data, len);
    if (rv == 0 && fsync(fd) != 0)
        rv = -errno;
    if (close(fd) != 0 && rv == 0)
        rv = -errno;
    if (rv == 0 && rename(tmp, path) != 0)
        rv = -errno;
    if (rv != 0) {
        unlink(tmp);
        return rv;
    }
    return fsync_dir(path);
}

int gv_file_read_fd(int fd, size_t max, struct gv_buf *out)
{
    size_t total = 0;
    for (;;) {
        int rv = gv_buf_reserve(out, 65536);
        if (rv != 0)
            return rv;
        ssize_t n = read(fd, out->data + out->len, out->cap - out->len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return 0;
        out->len += (size_t)n;
        if ((total += (size_t)n) > max)
            return GV_ERANGE;
    }
}

int gv_file_read(const char *path, size_t max, struct gv_buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rv = gv_file_read_fd(fd, max, out);
    close(fd);
    return rv;
}

int gv_mkdirs(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path))
        return GV_ERANGE;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}
