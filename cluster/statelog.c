/* statelog.c - the store on disk as an image plus an append-only log; see
 * statelog.h. */
#include "cluster/statelog.h"
#include "common/err.h"
#include "common/file.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IMAGE_FILE      "cluster-state.gvst"
#define LOG_FILE        "cluster-state.log"
#define REC_MAGIC       "GVLR"
#define REC_HEAD        8                 /* magic + length */
#define REC_MAC         32                /* HMAC-SHA256 or SHA-256 */
#define REC_MAX         (64 * 1024 + 512) /* one entry: a value is at most 56 KiB */
#define IMAGE_MAX       (1024u * 1024u * 1024u)
#define LOG_MIN_COMPACT (1024u * 1024u) /* no compaction below this much log */

struct cl_statelog {
    char *image_path, *log_path;
    int fd; /* the log, O_APPEND */
    bool keyed;
    bool had_log;        /* the log existed at open: files of this version */
    bool unsigned_image; /* loaded a 0.1 image without the key (upgrade) */
    uint8_t key[32];
    /* written by the one job on the thread pool, read for /status at any time */
    _Atomic size_t log_bytes, image_bytes;
};

void cl_statelog_file_key(const uint8_t cluster_key[32], uint8_t out[32])
{
    static const char label[] = "grapevine state files v1";
    unsigned int n = 0;
    HMAC(EVP_sha256(), cluster_key, 32, (const unsigned char *)label, sizeof(label) - 1, out, &n);
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int cl_statelog_open(const char *dir, const uint8_t *key, struct cl_statelog **out)
{
    struct cl_statelog *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return GV_ENOMEM;
    l->fd = -1;
    if (key != NULL) {
        memcpy(l->key, key, sizeof(l->key));
        l->keyed = true;
    }
    l->image_path = join(dir, IMAGE_FILE);
    l->log_path = join(dir, LOG_FILE);
    int rv = l->image_path && l->log_path ? 0 : GV_ENOMEM;
    l->had_log = rv == 0 && access(l->log_path, F_OK) == 0;
    if (rv == 0 && (l->fd = open(l->log_path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0)
        rv = -errno;
    if (rv != 0) {
        cl_statelog_close(l);
        return rv;
    }
    *out = l;
    return 0;
}

void cl_statelog_close(struct cl_statelog *l)
{
    if (l == NULL)
        return;
    if (l->fd >= 0)
        close(l->fd);
    free(l->image_path);
    free(l->log_path);
    OPENSSL_cleanse(l->key, sizeof(l->key));
    free(l);
}

const uint8_t *cl_statelog_key(const struct cl_statelog *l)
{
    return l->keyed ? l->key : NULL;
}

bool cl_statelog_unsigned_image(const struct cl_statelog *l)
{
    return l->unsigned_image;
}

size_t cl_statelog_log_bytes(const struct cl_statelog *l)
{
    return atomic_load_explicit(&l->log_bytes, memory_order_relaxed);
}

size_t cl_statelog_image_bytes(const struct cl_statelog *l)
{
    return atomic_load_explicit(&l->image_bytes, memory_order_relaxed);
}

/* ---- records ------------------------------------------------------------- */

static int mac(const struct cl_statelog *l, const void *data, size_t len, uint8_t out[REC_MAC])
{
    unsigned int n = 0;
    if (l->keyed)
        return HMAC(EVP_sha256(), l->key, sizeof(l->key), data, len, out, &n) ? 0 : GV_EIO;
    return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 ? 0 : GV_EIO;
}

int cl_statelog_encode(const struct cl_statelog *l, const struct cl_entry *e, struct gv_buf *out)
{
    size_t start = out->len;
    uint8_t head[REC_HEAD], sum[REC_MAC];
    int rv = gv_buf_append(out, "\0\0\0\0\0\0\0\0", REC_HEAD);
    rv = rv ? rv : cl_entry_encode(e, out);
    if (rv != 0) {
        out->len = start;
        return rv;
    }
    uint32_t len = (uint32_t)(out->len - start - REC_HEAD);
    memcpy(head, REC_MAGIC, 4);
    head[4] = (uint8_t)(len >> 24);
    head[5] = (uint8_t)(len >> 16);
    head[6] = (uint8_t)(len >> 8);
    head[7] = (uint8_t)len;
    memcpy(out->data + start, head, REC_HEAD);
    rv = mac(l, out->data + start, out->len - start, sum);
    rv = rv ? rv : gv_buf_append(out, sum, sizeof(sum));
    if (rv != 0)
        out->len = start;
    return rv;
}

/* The length of the valid record at data (n bytes left), or 0 when it is
 * short, oversized or fails its MAC: the end of what can be trusted. */
static size_t record_at(const struct cl_statelog *l, const uint8_t *data, size_t n)
{
    uint8_t sum[REC_MAC];
    if (n < REC_HEAD + REC_MAC || memcmp(data, REC_MAGIC, 4) != 0)
        return 0;
    size_t len =
        ((size_t)data[4] << 24) | ((size_t)data[5] << 16) | ((size_t)data[6] << 8) | data[7];
    if (len > REC_MAX || n < REC_HEAD + len + REC_MAC || mac(l, data, REC_HEAD + len, sum) != 0 ||
        CRYPTO_memcmp(sum, data + REC_HEAD + len, REC_MAC) != 0)
        return 0;
    return REC_HEAD + len + REC_MAC;
}

/* Merges the log's records into store; the size of the part that held. */
static size_t replay(const struct cl_statelog *l, const uint8_t *data, size_t n,
                     struct cl_store *store, size_t *records)
{
    size_t off = 0, rec;
    while (off < n && (rec = record_at(l, data + off, n - off)) > 0) {
        struct cl_entry e;
        size_t eoff = 0;
        if (cl_entry_decode(data + off + REC_HEAD, rec - REC_HEAD - REC_MAC, &eoff, &e) != 0 ||
            cl_store_merge(store, &e) < 0)
            break; /* a record that verifies but does not decode: stop trusting here */
        off += rec;
        (*records)++;
    }
    return off;
}

static int load_image(struct cl_statelog *l, struct cl_store *store, uint64_t *clock)
{
    struct gv_buf b;
    gv_buf_init(&b);
    int rv = gv_file_read(l->image_path, IMAGE_MAX, &b);
    if (rv == GV_ENOENT) {
        gv_buf_free(&b);
        return 0;
    }
    if (rv == 0)
        rv = cl_store_load_keyed(store, (const uint8_t *)b.data, b.len, cl_statelog_key(l), clock);
    /* 0.1 wrote a plain image even with a cluster key, and no log: that
     * one image is taken unsigned, once; the caller re-signs it */
    if (rv == GV_EPROTO && l->keyed && !l->had_log &&
        cl_store_load(store, (const uint8_t *)b.data, b.len, clock) == 0) {
        l->unsigned_image = true;
        rv = 0;
    }
    l->image_bytes = b.len;
    gv_buf_free(&b);
    return rv;
}

int cl_statelog_load(struct cl_statelog *l, struct cl_store *store, uint64_t *clock,
                     size_t *records, size_t *cut)
{
    struct gv_buf b;
    *clock = 0;
    *records = 0;
    *cut = 0;
    int rv = load_image(l, store, clock);
    if (rv != 0)
        return rv;
    gv_buf_init(&b);
    if ((rv = gv_file_read(l->log_path, IMAGE_MAX, &b)) != 0 && rv != GV_ENOENT) {
        gv_buf_free(&b);
        return rv;
    }
    size_t good = replay(l, (const uint8_t *)b.data, b.len, store, records);
    if (good < b.len) { /* a torn or damaged tail: later appends go after what held */
        *cut = b.len - good;
        if (ftruncate(l->fd, (off_t)good) != 0 || fsync(l->fd) != 0)
            rv = -errno;
    }
    l->log_bytes = good;
    gv_buf_free(&b);
    return rv;
}

int cl_statelog_append(struct cl_statelog *l, const void *records, size_t len)
{
    const char *p = records;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(l->fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int rv = w < 0 ? -errno : GV_EIO;
            /* what was written of a failed batch is cut, so nothing half
             * acknowledged stays (a crash here is a torn tail, cut on load) */
            if (ftruncate(l->fd, (off_t)l->log_bytes) == 0)
                (void)fsync(l->fd);
            return rv;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fdatasync(l->fd) != 0) {
        int rv = -errno;
        if (ftruncate(l->fd, (off_t)l->log_bytes) == 0)
            (void)fsync(l->fd);
        return rv;
    }
    l->log_bytes += len;
    return 0;
}

bool cl_statelog_wants_compaction(const struct cl_statelog *l)
{
    return l->log_bytes > LOG_MIN_COMPACT && l->log_bytes > l->image_bytes;
}

int cl_statelog_compact(struct cl_statelog *l, const void *image, size_t len)
{
    int rv = gv_file_write_atomic(l->image_path, image, len);
    if (rv != 0)
        return rv;
    l->image_bytes = len;
    if (ftruncate(l->fd, 0) != 0 || fsync(l->fd) != 0)
        return -errno; /* the image holds everything: a long log only costs time */
    l->log_bytes = 0;
    return 0;
}
