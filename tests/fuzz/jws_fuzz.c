/* jws_fuzz.c - libFuzzer target for the JWT (JWS) verifier: any token must verify
 * or be refused with a reason, never crash, leak or read outside the token
 * (ASan), against a key set with an HMAC, an RSA and an EC credential. A
 * token that verifies is offered to the cache and looked up again. */
#include "gateway/auth/jws.h"
#include "gateway/auth/cred_cache.h"
#include "common/err.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static struct gw_jws_key keys[3];
static struct gw_jws_keys ks = {keys, 0, 0};

static char *public_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL, *out = NULL;
    if (b != NULL && PEM_write_bio_PUBKEY(b, k) == 1) {
        long n = BIO_get_mem_data(b, &p);
        if ((out = malloc((size_t)n + 1)) != NULL) {
            memcpy(out, p, (size_t)n);
            out[n] = '\0';
        }
    }
    BIO_free(b);
    return out;
}

static void init_keys(void)
{
    const char *why;
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    char *rsa_pem = public_pem(rsa), *ec_pem = public_pem(ec);
    if (rsa_pem == NULL || ec_pem == NULL ||
        gw_jws_key_init(&keys[0], "hs", GW_JWS_HS256, "fuzz-secret", 0, &why) != 0 ||
        gw_jws_key_init(&keys[1], "rs", GW_JWS_RS256, rsa_pem, 1, &why) != 0 ||
        gw_jws_key_init(&keys[2], "es", GW_JWS_ES256, ec_pem, 2, &why) != 0)
        abort();
    ks.n = 3;
    ks.gen = gw_cred_cache_gen();
    free(rsa_pem);
    free(ec_pem);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    if (ks.n == 0)
        init_keys();
    /* An exact-size copy: nothing after the token for the verifier to read. */
    char *tok = malloc(len ? len : 1);
    if (tok == NULL)
        return 0;
    memcpy(tok, data, len);
    const struct gw_jws_key *key = NULL;
    const char *why = NULL;
    int64_t exp = 0;
    int rv = gw_jws_verify(&ks, tok, len, 1700000000, 30, &key, &exp, &why);
    if (rv == 0) {
        size_t idx;
        if (key == NULL || key < keys || key >= keys + ks.n)
            abort();
        gw_cred_cache_put(ks.gen, tok, len, exp, (size_t)(key - keys));
        if (gw_cred_cache_get(ks.gen, tok, len, 1700000000, 30, &idx) &&
            idx != (size_t)(key - keys))
            abort();
    } else if (why == NULL || (rv != GV_EINVAL && rv != GV_ENOMEM)) {
        abort(); /* every refusal says why */
    }
    free(tok);
    gw_cred_cache_reset();
    return 0;
}
