/* basic_auth.c - the basic_auth plugin ({realm?, forward_credentials?}) and
 * the password hashes consumers' basic_auth credentials are stored as.
 *
 * PBKDF2-HMAC-SHA256 at GW_PASSWORD_ITERATIONS costs a few milliseconds, far
 * too much per request; a credential that passed is remembered per worker
 * thread (gateway/cred_cache.h, keyed by the consumer table's users_gen and
 * the exact header value), so a client that repeats
 * it costs a lookup. A wrong password always pays the full hash.
 */
#include "gateway/auth.h"
#include "gateway/cred_cache.h"
#include "gateway/pipeline.h"
#include "common/err.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SALT_LEN 16

int gw_password_hash(const char *password, const char *salt_seed, char *out, size_t outlen)
{
    uint8_t digest[SHA256_DIGEST_LENGTH], dk[32];
    unsigned char salt64[64], dk64[64];
    SHA256((const unsigned char *)salt_seed, strlen(salt_seed), digest);
    if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), digest, SALT_LEN, GW_PASSWORD_ITERATIONS,
                          EVP_sha256(), sizeof(dk), dk) != 1)
        return GV_EIO;
    EVP_EncodeBlock(salt64, digest, SALT_LEN);
    EVP_EncodeBlock(dk64, dk, sizeof(dk));
    int n = snprintf(out, outlen, "pbkdf2-sha256$%d$%s$%s", GW_PASSWORD_ITERATIONS, salt64, dk64);
    OPENSSL_cleanse(dk, sizeof(dk));
    return n > 0 && (size_t)n < outlen ? 0 : GV_ERANGE;
}

/* Standard base64 of [s, s+len) into out (cap bytes); the decoded length or -1. */
static long b64_decode(const char *s, size_t len, uint8_t *out, size_t cap)
{
    unsigned char tmp[128];
    if (len == 0 || len % 4 != 0 || len / 4 * 3 > sizeof(tmp))
        return -1;
    int n = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)len);
    if (n < 0)
        return -1;
    n -= (s[len - 1] == '=') + (s[len - 2] == '=');
    if ((size_t)n > cap)
        return -1;
    memcpy(out, tmp, (size_t)n);
    return n;
}

int gw_password_parse(const char *stored, struct gw_password *out)
{
    static const char prefix[] = "pbkdf2-sha256$";
    struct gw_password pw = {0};
    if (strlen(stored) > GW_PASSWORD_MAX || strncmp(stored, prefix, sizeof(prefix) - 1) != 0)
        return GV_EINVAL;
    const char *p = stored + sizeof(prefix) - 1;
    char *end;
    unsigned long it = strtoul(p, &end, 10);
    if (end == p || *end != '$' || it < 1000 || it > 10000000)
        return GV_EINVAL;
    const char *salt = end + 1, *d = strchr(salt, '$');
    if (d == NULL || strchr(d + 1, '$') != NULL)
        return GV_EINVAL;
    long sl = b64_decode(salt, (size_t)(d - salt), pw.salt, sizeof(pw.salt));
    long hl = b64_decode(d + 1, strlen(d + 1), pw.hash, sizeof(pw.hash));
    if (sl < 8 || hl != (long)sizeof(pw.hash))
        return GV_EINVAL;
    pw.iterations = (uint32_t)it;
    pw.salt_len = (size_t)sl;
    *out = pw;
    return 0;
}

bool gw_password_check(const struct gw_password *p, const char *password, size_t len)
{
    uint8_t dk[32];
    if (PKCS5_PBKDF2_HMAC(password, (int)len, p->salt, (int)p->salt_len, (int)p->iterations,
                          EVP_sha256(), sizeof(dk), dk) != 1)
        return false;
    bool ok = CRYPTO_memcmp(dk, p->hash, sizeof(dk)) == 0;
    OPENSSL_cleanse(dk, sizeof(dk));
    return ok;
}

static enum gw_plugin_verdict deny(const struct gw_auth_conf *c, struct gw_request *r,
                                   const char *why)
{
    char extra[192];
    snprintf(extra, sizeof(extra), "WWW-Authenticate: Basic realm=\"%s\", charset=\"UTF-8\"\r\n",
             c->realm);
    gw_request_fail_with(r, 401, why, extra);
    return GW_PLUGIN_ANSWERED;
}

static enum gw_plugin_verdict ba_request_headers(const void *conf, struct gw_request *r)
{
    const struct gw_auth_conf *c = conf;
    size_t len;
    const char *v = gw_request_header(r, "authorization", &len);
    if (v == NULL || len < 6 || strncasecmp(v, "Basic ", 6) != 0)
        return deny(c, r, "missing basic credentials");
    size_t idx;
    if (gw_cred_cache_get(c->consumers->users_gen, v, len, 0, 0, &idx) &&
        idx < c->consumers->nusers) {
        gw_auth_identified(c, r, c->consumers->users[idx].consumer, "authorization", NULL);
        return GW_PLUGIN_NEXT;
    }
    const char *b = v + 6;
    size_t bl = len - 6;
    while (bl > 0 && b[0] == ' ') {
        b++;
        bl--;
    }
    uint8_t plain[96];
    long n = b64_decode(b, bl, plain, sizeof(plain) - 1);
    const uint8_t *colon = n > 0 ? memchr(plain, ':', (size_t)n) : NULL;
    if (colon == NULL)
        return deny(c, r, "malformed basic credentials");
    size_t ulen = (size_t)(colon - plain);
    const struct gw_cred *cred = gw_consumers_by_user(c->consumers, (const char *)plain, ulen);
    /* An unknown user pays the same hash as a wrong password, so the
     * answer's timing does not tell which user names exist. */
    static const struct gw_password nobody = {.iterations = GW_PASSWORD_ITERATIONS, .salt_len = 16};
    bool ok = gw_password_check(cred != NULL ? &cred->pw : &nobody, (const char *)colon + 1,
                                (size_t)n - ulen - 1) &&
              cred != NULL;
    OPENSSL_cleanse(plain, sizeof(plain));
    if (!ok)
        return deny(c, r, "invalid basic credentials");
    gw_cred_cache_put(c->consumers->users_gen, v, len, INT64_MAX,
                      (size_t)(cred - c->consumers->users));
    gw_auth_identified(c, r, cred->consumer, "authorization", NULL);
    return GW_PLUGIN_NEXT;
}

const struct gw_plugin_ops gw_plugin_basic_auth = {
    .name = "basic_auth",
    .order = 22,
    .on_request_headers = ba_request_headers,
    .free_conf = gw_auth_conf_free,
};
