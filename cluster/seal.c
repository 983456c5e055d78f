/* seal.c - AES-256-GCM sealing of gossip messages with a rotatable keyring
 * and a bounded replay filter (see seal.h for the format and guarantees). */
#include "cluster/seal.h"

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <uv.h>

#define REPLAY_BUCKETS (CL_REPLAY_CACHE * 2)
#define REPLAY_NONE    UINT32_MAX
#define KEY_FILE_MAX   1024

static const uint8_t seal_magic[3] = {'G', 'V', 'S'};

struct cl_key_slot {
    uint8_t key[CL_KEY_LEN];
    char id[CL_KEY_ID_LEN + 1];
};

struct cl_replay_entry {
    uint8_t nonce[CL_SEAL_NONCE_LEN];
    uint32_t next; /* next entry in the same bucket, or REPLAY_NONE */
    uint64_t sent_ms;
};

struct cl_keyring {
    uv_mutex_t lock;
    EVP_CIPHER *cipher;
    EVP_CIPHER_CTX *ctx;
    struct cl_key_slot keys[CL_KEYRING_MAX];
    size_t nkeys;
    size_t primary;
    uint64_t window_ms;
    struct cl_seal_stats stats;
    /* Replay filter: entries in a ring (oldest overwritten first), indexed
     * by a chained hash on the nonce. */
    struct cl_replay_entry *ring;
    uint32_t *buckets;
    size_t ring_head;
    size_t ring_count;
    uint64_t horizon_ms; /* newest send time the ring has forgotten */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int cl_key_parse(const char *text, size_t len, uint8_t key[CL_KEY_LEN], char *err, size_t errlen)
{
    uint8_t out[CL_KEY_LEN];
    size_t start = 0, end = len, n;

    while (start < end && is_space((unsigned char)text[start]))
        start++;
    while (end > start && is_space((unsigned char)text[end - 1]))
        end--;
    n = end - start;
    if (n == 0) {
        set_err(err, errlen, "empty key: expected 44 base64 characters (32 bytes)");
        return GV_EINVAL;
    }
    if (n != CL_KEY_B64_LEN) {
        set_err(err, errlen, "expected 44 base64 characters (32 bytes), got %zu characters", n);
        return GV_EINVAL;
    }
    /* 32 bytes are 43 characters of data and exactly one '='. */
    for (size_t i = 0; i < CL_KEY_B64_LEN - 1; i++) {
        unsigned char c = (unsigned char)text[start + i];
        if (gv_base64_value(c, false) < 0) {
            set_err(err, errlen, "invalid base64 character 0x%02x at offset %zu", c, start + i);
            return GV_EINVAL;
        }
    }
    if (text[start + CL_KEY_B64_LEN - 1] != '=') {
        set_err(err, errlen, "expected '=' padding at offset %zu", start + CL_KEY_B64_LEN - 1);
        return GV_EINVAL;
    }
    if (gv_base64_decode(text + start, CL_KEY_B64_LEN, out, sizeof(out), false) != CL_KEY_LEN) {
        set_err(err, errlen, "non-canonical base64: unused bits set in the last character");
        return GV_EINVAL;
    }
    memcpy(key, out, CL_KEY_LEN);
    OPENSSL_cleanse(out, sizeof(out));
    return 0;
}

int cl_key_load_file(const char *path, uint8_t key[CL_KEY_LEN], char *err, size_t errlen)
{
    char text[KEY_FILE_MAX + 1];
    char why[160];
    struct stat st;
    size_t len = 0;
    int fd, rc;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        set_err(err, errlen, "%s: %s", path, gv_strerror(rc));
        return rc;
    }
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077))
        gv_warn("cluster key file %s is readable by group or others (mode %03o)", path,
                (unsigned)(st.st_mode & 0777));
    while (len < sizeof(text)) {
        ssize_t r = read(fd, text + len, sizeof(text) - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            set_err(err, errlen, "%s: %s", path, gv_strerror(rc));
            goto fail;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (len > KEY_FILE_MAX) {
        rc = GV_EINVAL;
        set_err(err, errlen, "%s: too large for a key (more than %d bytes)", path, KEY_FILE_MAX);
        goto fail;
    }
    rc = cl_key_parse(text, len, key, why, sizeof(why));
    if (rc < 0)
        set_err(err, errlen, "%s: %s", path, why);
fail:
    OPENSSL_cleanse(text, sizeof(text));
    close(fd);
    return rc;
}

void cl_key_encode(const uint8_t key[CL_KEY_LEN], char out[CL_KEY_B64_LEN + 1])
{
    gv_base64_encode(key, CL_KEY_LEN, out, false);
}

int cl_key_generate(uint8_t key[CL_KEY_LEN])
{
    return RAND_bytes(key, CL_KEY_LEN) == 1 ? 0 : GV_EIO;
}

void cl_key_id(const uint8_t key[CL_KEY_LEN], char out[CL_KEY_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t digest[SHA256_DIGEST_LENGTH];

    SHA256(key, CL_KEY_LEN, digest);
    for (size_t i = 0; i < CL_KEY_ID_LEN / 2; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[CL_KEY_ID_LEN] = '\0';
}

uint64_t cl_seal_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int cl_keyring_new(const uint8_t primary[CL_KEY_LEN], struct cl_keyring **out)
{
    struct cl_keyring *kr;
    int rc = GV_ENOMEM;

    kr = calloc(1, sizeof(*kr));
    if (kr == NULL)
        return GV_ENOMEM;
    kr->ring = calloc(CL_REPLAY_CACHE, sizeof(*kr->ring));
    kr->buckets = malloc(REPLAY_BUCKETS * sizeof(*kr->buckets));
    if (kr->ring == NULL || kr->buckets == NULL)
        goto fail;
    for (size_t i = 0; i < REPLAY_BUCKETS; i++)
        kr->buckets[i] = REPLAY_NONE;
    rc = GV_EIO;
    kr->cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    kr->ctx = EVP_CIPHER_CTX_new();
    if (kr->cipher == NULL || kr->ctx == NULL)
        goto fail;
    if (uv_mutex_init(&kr->lock) != 0)
        goto fail;
    memcpy(kr->keys[0].key, primary, CL_KEY_LEN);
    cl_key_id(primary, kr->keys[0].id);
    kr->nkeys = 1;
    kr->primary = 0;
    kr->window_ms = CL_REPLAY_WINDOW_MS;
    *out = kr;
    return 0;

fail:
    EVP_CIPHER_CTX_free(kr->ctx);
    EVP_CIPHER_free(kr->cipher);
    free(kr->buckets);
    free(kr->ring);
    free(kr);
    return rc;
}

void cl_keyring_free(struct cl_keyring *kr)
{
    if (kr == NULL)
        return;
    OPENSSL_cleanse(kr->keys, sizeof(kr->keys));
    EVP_CIPHER_CTX_free(kr->ctx);
    EVP_CIPHER_free(kr->cipher);
    uv_mutex_destroy(&kr->lock);
    free(kr->buckets);
    free(kr->ring);
    free(kr);
}

/* Index of the key with this id, or -1. Called with the lock held. */
static int find_id(const struct cl_keyring *kr, const char *id)
{
    for (size_t i = 0; i < kr->nkeys; i++)
        if (strcmp(kr->keys[i].id, id) == 0)
            return (int)i;
    return -1;
}

int cl_keyring_install(struct cl_keyring *kr, const uint8_t key[CL_KEY_LEN])
{
    char id[CL_KEY_ID_LEN + 1];
    int rc = 0, i;

    cl_key_id(key, id);
    uv_mutex_lock(&kr->lock);
    i = find_id(kr, id);
    if (i >= 0) {
        /* Same id: the same key is a no-op, a different one a collision. */
        if (CRYPTO_memcmp(kr->keys[i].key, key, CL_KEY_LEN) != 0)
            rc = GV_EEXIST;
        goto done;
    }
    if (kr->nkeys == CL_KEYRING_MAX) {
        rc = GV_ERANGE;
        goto done;
    }
    memcpy(kr->keys[kr->nkeys].key, key, CL_KEY_LEN);
    memcpy(kr->keys[kr->nkeys].id, id, sizeof(id));
    kr->nkeys++;
done:
    uv_mutex_unlock(&kr->lock);
    return rc;
}

int cl_keyring_use(struct cl_keyring *kr, const char *id)
{
    int i;

    uv_mutex_lock(&kr->lock);
    i = find_id(kr, id);
    if (i >= 0)
        kr->primary = (size_t)i;
    uv_mutex_unlock(&kr->lock);
    return i >= 0 ? 0 : GV_ENOENT;
}

int cl_keyring_remove(struct cl_keyring *kr, const char *id)
{
    int rc = 0, i;

    uv_mutex_lock(&kr->lock);
    i = find_id(kr, id);
    if (i < 0) {
        rc = GV_ENOENT;
        goto done;
    }
    if ((size_t)i == kr->primary) {
        rc = -EBUSY;
        goto done;
    }
    memmove(&kr->keys[i], &kr->keys[i + 1], (kr->nkeys - (size_t)i - 1) * sizeof(kr->keys[0]));
    kr->nkeys--;
    OPENSSL_cleanse(&kr->keys[kr->nkeys], sizeof(kr->keys[0]));
    if (kr->primary > (size_t)i)
        kr->primary--;
done:
    uv_mutex_unlock(&kr->lock);
    return rc;
}

size_t cl_keyring_list(struct cl_keyring *kr, struct cl_key_info *out, size_t max)
{
    size_t n;

    uv_mutex_lock(&kr->lock);
    n = kr->nkeys;
    for (size_t i = 0; i < n && i < max; i++) {
        memcpy(out[i].id, kr->keys[i].id, sizeof(out[i].id));
        out[i].primary = i == kr->primary;
    }
    uv_mutex_unlock(&kr->lock);
    return n;
}

void cl_keyring_set_replay_window(struct cl_keyring *kr, uint64_t ms)
{
    uv_mutex_lock(&kr->lock);
    kr->window_ms = GV_MAX(ms, 1000);
    uv_mutex_unlock(&kr->lock);
}

void cl_keyring_stats(struct cl_keyring *kr, struct cl_seal_stats *out)
{
    uv_mutex_lock(&kr->lock);
    *out = kr->stats;
    uv_mutex_unlock(&kr->lock);
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

int cl_seal_at(struct cl_keyring *kr, uint64_t now_ms, const uint8_t *in, size_t len, uint8_t *out,
               size_t outcap, size_t *outlen)
{
    uint8_t sent[CL_SEAL_TIME_LEN];
    uint8_t *nonce = out + CL_SEAL_HEADER_LEN;
    uint8_t *ct = nonce + CL_SEAL_NONCE_LEN;
    EVP_CIPHER_CTX *ctx = kr->ctx;
    int n, rc = GV_EIO;

    if (outcap < CL_SEAL_OVERHEAD || len > outcap - CL_SEAL_OVERHEAD || len > INT32_MAX)
        return -ENOBUFS;
    memcpy(out, seal_magic, sizeof(seal_magic));
    out[3] = CL_SEAL_VERSION;
    put_be64(sent, now_ms);
    if (RAND_bytes(nonce, CL_SEAL_NONCE_LEN) != 1)
        return GV_EIO;

    uv_mutex_lock(&kr->lock);
    if (EVP_EncryptInit_ex2(ctx, kr->cipher, kr->keys[kr->primary].key, nonce, NULL) != 1)
        goto fail;
    if (EVP_EncryptUpdate(ctx, NULL, &n, out, CL_SEAL_HEADER_LEN) != 1)
        goto fail;
    /* GCM is a stream mode: each update writes exactly as many bytes as it
     * reads, so the send time and the payload land back to back. */
    if (EVP_EncryptUpdate(ctx, ct, &n, sent, CL_SEAL_TIME_LEN) != 1 || n != CL_SEAL_TIME_LEN)
        goto fail;
    if (len > 0 &&
        (EVP_EncryptUpdate(ctx, ct + CL_SEAL_TIME_LEN, &n, in, (int)len) != 1 || (size_t)n != len))
        goto fail;
    if (EVP_EncryptFinal_ex(ctx, ct + CL_SEAL_TIME_LEN + len, &n) != 1 || n != 0)
        goto fail;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CL_SEAL_TAG_LEN,
                            ct + CL_SEAL_TIME_LEN + len) != 1)
        goto fail;
    kr->stats.sealed++;
    *outlen = len + CL_SEAL_OVERHEAD;
    rc = 0;
fail:
    uv_mutex_unlock(&kr->lock);
    return rc;
}

int cl_seal(struct cl_keyring *kr, const uint8_t *in, size_t len, uint8_t *out, size_t outcap,
            size_t *outlen)
{
    return cl_seal_at(kr, cl_seal_clock_ms(), in, len, out, outcap, outlen);
}

/* Tries to authenticate and decrypt with one key: returns 1 when the tag
 * verifies, 0 otherwise. Called with the lock held. */
static int try_key(struct cl_keyring *kr, const uint8_t *key, const uint8_t *in, size_t ctlen,
                   uint8_t sent[CL_SEAL_TIME_LEN], uint8_t *out)
{
    const uint8_t *nonce = in + CL_SEAL_HEADER_LEN;
    const uint8_t *ct = nonce + CL_SEAL_NONCE_LEN;
    uint8_t tag[CL_SEAL_TAG_LEN];
    size_t body = ctlen - CL_SEAL_TIME_LEN;
    EVP_CIPHER_CTX *ctx = kr->ctx;
    int n;

    memcpy(tag, ct + ctlen, CL_SEAL_TAG_LEN);
    if (EVP_DecryptInit_ex2(ctx, kr->cipher, key, nonce, NULL) != 1)
        return 0;
    if (EVP_DecryptUpdate(ctx, NULL, &n, in, CL_SEAL_HEADER_LEN) != 1)
        return 0;
    if (EVP_DecryptUpdate(ctx, sent, &n, ct, CL_SEAL_TIME_LEN) != 1)
        return 0;
    if (body > 0 && EVP_DecryptUpdate(ctx, out, &n, ct + CL_SEAL_TIME_LEN, (int)body) != 1)
        return 0;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CL_SEAL_TAG_LEN, tag) != 1)
        return 0;
    return EVP_DecryptFinal_ex(ctx, out + body, &n) == 1;
}

static uint32_t replay_bucket(const uint8_t nonce[CL_SEAL_NONCE_LEN])
{
    return (uint32_t)(gv_hash64(nonce, CL_SEAL_NONCE_LEN, 0) & (REPLAY_BUCKETS - 1));
}

/* Whether the nonce is remembered. Called with the lock held. */
static int replay_seen(const struct cl_keyring *kr, const uint8_t nonce[CL_SEAL_NONCE_LEN])
{
    for (uint32_t i = kr->buckets[replay_bucket(nonce)]; i != REPLAY_NONE; i = kr->ring[i].next)
        if (memcmp(kr->ring[i].nonce, nonce, CL_SEAL_NONCE_LEN) == 0)
            return 1;
    return 0;
}

/* Remembers an accepted nonce, forgetting the oldest one when the ring is
 * full; the horizon then covers what was forgotten. Called with the lock
 * held. */
static void replay_remember(struct cl_keyring *kr, const uint8_t nonce[CL_SEAL_NONCE_LEN],
                            uint64_t sent_ms)
{
    uint32_t slot = (uint32_t)kr->ring_head;
    struct cl_replay_entry *e = &kr->ring[slot];
    uint32_t *link;

    if (kr->ring_count == CL_REPLAY_CACHE) {
        link = &kr->buckets[replay_bucket(e->nonce)];
        while (*link != slot)
            link = &kr->ring[*link].next;
        *link = e->next;
        kr->horizon_ms = GV_MAX(kr->horizon_ms, e->sent_ms);
    } else {
        kr->ring_count++;
    }
    memcpy(e->nonce, nonce, CL_SEAL_NONCE_LEN);
    e->sent_ms = sent_ms;
    link = &kr->buckets[replay_bucket(nonce)];
    e->next = *link;
    *link = slot;
    kr->ring_head = (kr->ring_head + 1) % CL_REPLAY_CACHE;
}

/* Whether in[0..len) has a sealed message's header and room for its
 * overhead, and a body small enough for the cipher's int lengths. */
static bool sealed_shape_ok(const uint8_t *in, size_t len)
{
    return len >= CL_SEAL_OVERHEAD && memcmp(in, seal_magic, sizeof(seal_magic)) == 0 &&
           in[3] == CL_SEAL_VERSION && len - CL_SEAL_OVERHEAD <= INT32_MAX;
}

/* Tries every key, the primary first: it is what peers most likely sealed
 * with. Returns 1 when one authenticates. Called with the lock held. */
static int try_keys(struct cl_keyring *kr, const uint8_t *in, size_t ctlen,
                    uint8_t sent[CL_SEAL_TIME_LEN], uint8_t *out)
{
    int ok = try_key(kr, kr->keys[kr->primary].key, in, ctlen, sent, out);
    for (size_t i = 0; !ok && i < kr->nkeys; i++)
        if (i != kr->primary)
            ok = try_key(kr, kr->keys[i].key, in, ctlen, sent, out);
    return ok;
}

/* Accepts an authentic message once, and only when sent within the window
 * around now and after what the replay filter has forgotten. Returns 0 (the
 * nonce is then remembered), GV_ETIMEDOUT or GV_EEXIST. Called with the lock
 * held. */
static int replay_check(struct cl_keyring *kr, uint64_t now_ms,
                        const uint8_t nonce[CL_SEAL_NONCE_LEN], uint64_t sent_ms)
{
    if ((now_ms > kr->window_ms && sent_ms < now_ms - kr->window_ms) ||
        (sent_ms > now_ms && sent_ms - now_ms > kr->window_ms) || sent_ms <= kr->horizon_ms) {
        kr->stats.replay_rejected++;
        return GV_ETIMEDOUT;
    }
    if (replay_seen(kr, nonce)) {
        kr->stats.replay_rejected++;
        return GV_EEXIST;
    }
    replay_remember(kr, nonce, sent_ms);
    return 0;
}

int cl_open_at(struct cl_keyring *kr, uint64_t now_ms, const uint8_t *in, size_t len, uint8_t *out,
               size_t outcap, size_t *outlen)
{
    uint8_t sent[CL_SEAL_TIME_LEN];
    size_t ctlen, body, wipe = 0;
    int rc;

    uv_mutex_lock(&kr->lock);
    if (!sealed_shape_ok(in, len)) {
        kr->stats.malformed++;
        rc = GV_EPROTO;
        goto fail;
    }
    ctlen = len - CL_SEAL_HEADER_LEN - CL_SEAL_NONCE_LEN - CL_SEAL_TAG_LEN;
    body = ctlen - CL_SEAL_TIME_LEN;
    if (outcap < body) {
        rc = -ENOBUFS;
        goto fail;
    }
    /* From here on out may hold plaintext that must not outlive a failure. */
    wipe = body;
    if (!try_keys(kr, in, ctlen, sent, out)) {
        kr->stats.auth_failed++;
        rc = GV_EINVAL;
        goto fail;
    }
    if ((rc = replay_check(kr, now_ms, in + CL_SEAL_HEADER_LEN, get_be64(sent))) < 0)
        goto fail;
    kr->stats.opened++;
    uv_mutex_unlock(&kr->lock);
    *outlen = body;
    return 0;

fail:
    uv_mutex_unlock(&kr->lock);
    /* Never leave unauthenticated or rejected plaintext behind. */
    if (wipe > 0)
        OPENSSL_cleanse(out, wipe);
    return rc;
}

int cl_open(struct cl_keyring *kr, const uint8_t *in, size_t len, uint8_t *out, size_t outcap,
            size_t *outlen)
{
    return cl_open_at(kr, cl_seal_clock_ms(), in, len, out, outcap, outlen);
}
