/* password.c - PBKDF2-SHA256 password hashes; see password.h.
 * Hashing costs a few milliseconds at GW_PASSWORD_ITERATIONS: callers keep
 * what passed in gateway/auth/cred_cache.h. */
#include "gateway/auth/password.h"
#include "common/err.h"
#include "common/util.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SALT_LEN 16

int gw_password_hash(const char *password, const char *salt_seed, char *out, size_t outlen)
{
    uint8_t digest[SHA256_DIGEST_LENGTH], dk[32];
    char salt64[64], dk64[64];
    SHA256((const unsigned char *)salt_seed, strlen(salt_seed), digest);
    if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), digest, SALT_LEN, GW_PASSWORD_ITERATIONS,
                          EVP_sha256(), sizeof(dk), dk) != 1)
        return GV_EIO;
    gv_base64_encode(digest, SALT_LEN, salt64, false);
    gv_base64_encode(dk, sizeof(dk), dk64, false);
    int n = snprintf(out, outlen, "pbkdf2-sha256$%d$%s$%s", GW_PASSWORD_ITERATIONS, salt64, dk64);
    OPENSSL_cleanse(dk, sizeof(dk));
    return n > 0 && (size_t)n < outlen ? 0 : GV_ERANGE;
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
    long sl = gv_base64_decode(salt, (size_t)(d - salt), pw.salt, sizeof(pw.salt), false);
    long hl = gv_base64_decode(d + 1, strlen(d + 1), pw.hash, sizeof(pw.hash), false);
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
