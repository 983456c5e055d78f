/* sticky.c - signed session-persistence cookie values (format in sticky.h). */
#include "balancer/sticky.h"
#include "common/err.h"
#include "common/util.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#define STICKY_VERSION  1
#define STICKY_HEAD_LEN 17 /* version + expiry + id */
#define STICKY_TAG_LEN  16
#define STICKY_RAW_LEN  (STICKY_HEAD_LEN + STICKY_TAG_LEN)
/* Longest address signed: a 255-byte host, brackets, ':' and a port fit. */
#define STICKY_MAX_ADDR 512
/* Seed for the target id, so it is not the same hash other modules use. */
#define STICKY_ID_SEED 0x737469636b79ULL

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

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

static uint64_t address_id(const char *address, size_t len)
{
    return gv_hash64(address, len, STICKY_ID_SEED);
}

/* tag = HMAC-SHA256(key, head || address)[0..16). Returns 0 or GV_EINVAL. */
static int make_tag(const uint8_t *key, const uint8_t *head, const char *address, size_t alen,
                    uint8_t *tag)
{
    uint8_t msg[STICKY_HEAD_LEN + STICKY_MAX_ADDR];
    uint8_t full[EVP_MAX_MD_SIZE];
    unsigned int full_len = 0;

    if (alen > STICKY_MAX_ADDR)
        return GV_EINVAL;
    memcpy(msg, head, STICKY_HEAD_LEN);
    memcpy(msg + STICKY_HEAD_LEN, address, alen);
    if (HMAC(EVP_sha256(), key, LB_STICKY_KEY_LEN, msg, STICKY_HEAD_LEN + alen, full, &full_len) ==
            NULL ||
        full_len < STICKY_TAG_LEN)
        return GV_EINVAL;
    memcpy(tag, full, STICKY_TAG_LEN);
    OPENSSL_cleanse(full, sizeof(full));
    return 0;
}

/* Encodes n bytes (a multiple of 3) as base64url; out gets n/3*4 chars. */
static void b64url_encode(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = b64url[(v >> 18) & 63];
        *out++ = b64url[(v >> 12) & 63];
        *out++ = b64url[(v >> 6) & 63];
        *out++ = b64url[v & 63];
    }
}

/* Decodes exactly n chars (a multiple of 4) into n/4*3 bytes; GV_EINVAL on
 * any character outside the alphabet. */
static int b64url_decode(const char *in, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v = 0;
        for (size_t j = 0; j < 4; j++) {
            int d = gv_b64url_value(in[i + j]);
            if (d < 0)
                return GV_EINVAL;
            v = v << 6 | (uint32_t)d;
        }
        *out++ = (uint8_t)(v >> 16);
        *out++ = (uint8_t)(v >> 8);
        *out++ = (uint8_t)v;
    }
    return 0;
}

int lb_sticky_encode(const uint8_t key[LB_STICKY_KEY_LEN], const char *target_address,
                     uint64_t expires_unix_s, char *out, size_t outlen)
{
    uint8_t raw[STICKY_RAW_LEN];

    if (outlen < LB_STICKY_VALUE_MAX)
        return GV_ERANGE;
    if (target_address == NULL)
        return GV_EINVAL;
    size_t alen = strnlen(target_address, STICKY_MAX_ADDR + 1);
    if (alen == 0 || alen > STICKY_MAX_ADDR)
        return GV_EINVAL;
    raw[0] = STICKY_VERSION;
    put_be64(raw + 1, expires_unix_s);
    put_be64(raw + 9, address_id(target_address, alen));
    if (make_tag(key, raw, target_address, alen, raw + STICKY_HEAD_LEN) < 0)
        return GV_EINVAL;
    b64url_encode(raw, sizeof(raw), out);
    out[LB_STICKY_VALUE_LEN] = '\0';
    return 0;
}

int lb_sticky_decode(const uint8_t key[LB_STICKY_KEY_LEN], const char *value, uint64_t now_unix_s,
                     const struct lb_service_spec *spec, int *target_index)
{
    uint8_t raw[STICKY_RAW_LEN];
    uint8_t tag[STICKY_TAG_LEN];

    if (value == NULL || spec == NULL)
        return GV_EINVAL;
    if (strnlen(value, LB_STICKY_VALUE_MAX) != LB_STICKY_VALUE_LEN)
        return GV_EINVAL;
    if (b64url_decode(value, LB_STICKY_VALUE_LEN, raw) < 0)
        return GV_EINVAL;
    if (raw[0] != STICKY_VERSION)
        return GV_EINVAL;
    uint64_t id = get_be64(raw + 9);
    for (size_t i = 0; i < spec->ntargets && i <= (size_t)INT32_MAX; i++) {
        const char *addr = spec->targets[i].address;
        if (addr == NULL)
            continue;
        size_t alen = strnlen(addr, STICKY_MAX_ADDR + 1);
        if (alen == 0 || alen > STICKY_MAX_ADDR || address_id(addr, alen) != id)
            continue;
        if (make_tag(key, raw, addr, alen, tag) < 0)
            continue;
        if (CRYPTO_memcmp(tag, raw + STICKY_HEAD_LEN, STICKY_TAG_LEN) != 0)
            continue;
        /* Authentic; only now is the expiry worth believing. */
        if (now_unix_s >= get_be64(raw + 1))
            return GV_EINVAL;
        *target_index = (int)i;
        return 0;
    }
    return GV_EINVAL;
}
