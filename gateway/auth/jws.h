/* jws.h - JWT (compact JWS) verification for the JWT auth plugin: per-consumer
 * keys (HMAC secrets, RSA and EC public keys), signature and time checks, and
 * (verified tokens are remembered in gateway/auth/cred_cache.h).
 *
 * Threads: keys and key sets are built on the control thread at config load
 * and are read-only afterwards; gw_jws_verify may run on any number of
 * workers at once on the same key set.
 * Times ("now", "exp", "nbf", "skew") are seconds since the Unix epoch.
 */
#ifndef GV_GATEWAY_AUTH_JWS_H
#define GV_GATEWAY_AUTH_JWS_H

#include <openssl/evp.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_JWS_MAX_LEN 8192 /* longer tokens are rejected */

enum gw_jws_alg {
    GW_JWS_HS256,
    GW_JWS_HS384,
    GW_JWS_HS512,
    GW_JWS_RS256,
    GW_JWS_RS384,
    GW_JWS_RS512,
    GW_JWS_ES256,
    GW_JWS_ES384
};

/* "HS256".. "ES384" -> alg (exact, case-sensitive). 0 or GV_EINVAL (*out unchanged). */
int gw_jws_alg_parse(const char *name, enum gw_jws_alg *out);
/* "HS256".. "ES384"; "?" for a value outside the enum. Static, never NULL. */
const char *gw_jws_alg_name(enum gw_jws_alg alg);

struct gw_jws_key {
    char *issuer; /* owned */
    enum gw_jws_alg alg;
    unsigned char *secret; /* HS*: owned */
    size_t secret_len;
    EVP_PKEY *pkey; /* RS*, ES*: owned (public key) */
    int consumer;   /* caller's index of the consumer this key identifies */
};

/* Builds a key. HS*: material is the secret (at least 1 byte; used as raw bytes).
 * RS*: a PEM public key ("-----BEGIN PUBLIC KEY-----", PEM_read_bio_PUBKEY) that must be RSA of
 * at least 2048 bits. ES256: EC key on P-256; ES384: on P-384. Returns 0, or GV_EINVAL with
 * *why set to a static message ("not a PEM public key", "ES256 needs a P-256 key", ...) and
 * k left zeroed; GV_ENOMEM (*why "out of memory", k zeroed). Leaves the calling thread's
 * OpenSSL error queue as it found it. */
int gw_jws_key_init(struct gw_jws_key *k, const char *issuer, enum gw_jws_alg alg,
                    const char *material, int consumer, const char **why);
/* Frees what k owns (the secret is wiped first) and zeroes k. Safe on a zeroed key. */
void gw_jws_key_clear(struct gw_jws_key *k);

struct gw_jws_keys {
    struct gw_jws_key *v; /* issuers are unique (the config validator guarantees it) */
    size_t n;
    uint64_t gen; /* unique per key set, for the cache (gw_cred_cache_gen()) */
};

/* Verifies a compact JWS (header.payload.signature, base64url without padding; reject padding
 * '=' and any character outside the base64url alphabet; reject tokens over 8 KiB).
 * The header must be a JSON object whose "alg" is a string; the payload a JSON object with a
 * string "iss" naming one of ks's keys; the header's alg must EQUAL that key's alg exactly
 * (so alg "none", and algorithm confusion such as an HS256 token against an RS256 key whose
 * PEM was used as HMAC secret, are rejected). HS*: HMAC compared with CRYPTO_memcmp; RS*:
 * RSASSA-PKCS1-v1_5 via EVP_DigestVerify; ES*: the JWS raw r||s (64 bytes for ES256, 96 for
 * ES384, anything else rejected) converted to DER, then EVP_DigestVerify. "exp" and "nbf",
 * when present, must be numbers (integer or real; a real counts as its ceiling); the token is
 * expired when now >= exp + skew and not yet valid when now < nbf - skew (a negative skew
 * counts as 0; sums saturate). The signature is checked before the times, so the time
 * reasons are only given for authentic tokens. Base64url must be canonical (unused trailing
 * bits zero), JSON duplicate keys are rejected, and so is a header with "crit" (no
 * extension is understood).
 * Returns 0 with *key (an element of ks->v) and *exp (INT64_MAX when no exp) set, or
 * GV_EINVAL with *why set to a short static reason for the log and the 401 body:
 * "malformed token" (also: a missing or non-string "iss"), "unknown issuer",
 * "algorithm mismatch", "bad signature", "token expired", "token not yet valid"; or
 * GV_ENOMEM ("out of memory"). On error *key and *exp are unchanged. Never reads outside
 * [tok, tok+len) (tok need not be NUL-terminated). Thread-safe (no shared mutable state);
 * leaves the calling thread's OpenSSL error queue as it found it (a stale error there would
 * confuse SSL_get_error on the same worker). */
int gw_jws_verify(const struct gw_jws_keys *ks, const char *tok, size_t len, int64_t now,
                  int64_t skew, const struct gw_jws_key **key, int64_t *exp, const char **why);

#endif
