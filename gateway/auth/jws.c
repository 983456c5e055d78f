/* jws.c - JWT (compact JWS) verification; see jws.h. */
#include "gateway/auth/jws.h"
#include "common/err.h"
#include "common/util.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MALFORMED "malformed token"
#define NOMEM     "out of memory"

enum family { FAM_HS, FAM_RS, FAM_ES };

struct alg_info {
    const char *name;
    enum family fam;
    const EVP_MD *(*md)(void);
    int curve;       /* ES*: NID of the required curve */
    size_t half;     /* ES*: bytes of r, and of s, in the JWS signature */
    const char *why; /* RS*, ES*: why a public key does not fit */
};

static const struct alg_info algs[] = {
    [GW_JWS_HS256] = {"HS256", FAM_HS, EVP_sha256, 0, 0, NULL},
    [GW_JWS_HS384] = {"HS384", FAM_HS, EVP_sha384, 0, 0, NULL},
    [GW_JWS_HS512] = {"HS512", FAM_HS, EVP_sha512, 0, 0, NULL},
    [GW_JWS_RS256] = {"RS256", FAM_RS, EVP_sha256, 0, 0, "RS256 needs an RSA key of 2048+ bits"},
    [GW_JWS_RS384] = {"RS384", FAM_RS, EVP_sha384, 0, 0, "RS384 needs an RSA key of 2048+ bits"},
    [GW_JWS_RS512] = {"RS512", FAM_RS, EVP_sha512, 0, 0, "RS512 needs an RSA key of 2048+ bits"},
    [GW_JWS_ES256] = {"ES256", FAM_ES, EVP_sha256, NID_X9_62_prime256v1, 32,
                      "ES256 needs a P-256 key"},
    [GW_JWS_ES384] = {"ES384", FAM_ES, EVP_sha384, NID_secp384r1, 48, "ES384 needs a P-384 key"},
};

#define NALGS (sizeof(algs) / sizeof(algs[0]))

static const struct alg_info *alg_info(enum gw_jws_alg alg)
{
    return (unsigned)alg < NALGS ? &algs[alg] : NULL;
}

int gw_jws_alg_parse(const char *name, enum gw_jws_alg *out)
{
    if (name == NULL)
        return GV_EINVAL;
    for (size_t i = 0; i < NALGS; i++)
        if (strcmp(name, algs[i].name) == 0) {
            *out = (enum gw_jws_alg)i;
            return 0;
        }
    return GV_EINVAL;
}

const char *gw_jws_alg_name(enum gw_jws_alg alg)
{
    const struct alg_info *ai = alg_info(alg);
    return ai != NULL ? ai->name : "?";
}

/* ---- keys ------------------------------------------------------------------ */

/* The NID of an EC key's named curve, or NID_undef (explicit parameters, not EC). */
static int ec_curve(const EVP_PKEY *pkey)
{
    char group[80];
    size_t n = 0;
    if (!EVP_PKEY_is_a(pkey, "EC") || !EVP_PKEY_get_group_name(pkey, group, sizeof(group), &n))
        return NID_undef;
    int nid = OBJ_txt2nid(group);
    return nid != NID_undef ? nid : EC_curve_nist2nid(group);
}

/* HS*: keeps a copy of the secret. 0, or GV_EINVAL / GV_ENOMEM with *why. */
static int key_take_secret(struct gw_jws_key *k, const char *material, const char **why)
{
    size_t n = strlen(material);
    if (n == 0 || n > INT_MAX) { /* HMAC() takes an int length */
        *why = n == 0 ? "empty secret" : "secret too long";
        return GV_EINVAL;
    }
    if ((k->secret = malloc(n)) == NULL) {
        *why = NOMEM;
        return GV_ENOMEM;
    }
    memcpy(k->secret, material, n);
    k->secret_len = n;
    return 0;
}

/* RS*, ES*: reads the PEM public key and checks that the algorithm can use
 * it. 0, or GV_EINVAL / GV_ENOMEM with *why; k->pkey may be set either way. */
static int key_read_public(struct gw_jws_key *k, const struct alg_info *ai, const char *material,
                           const char **why)
{
    BIO *bio = BIO_new_mem_buf(material, -1);
    if (bio == NULL) {
        *why = NOMEM;
        return GV_ENOMEM;
    }
    k->pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (k->pkey == NULL) {
        *why = "not a PEM public key";
        return GV_EINVAL;
    }
    /* EVP_PKEY_is_a(.., "RSA") is false for RSA-PSS keys, which JWS RS* cannot use. */
    if ((ai->fam == FAM_RS &&
         (!EVP_PKEY_is_a(k->pkey, "RSA") || EVP_PKEY_get_bits(k->pkey) < 2048)) ||
        (ai->fam == FAM_ES && ec_curve(k->pkey) != ai->curve)) {
        *why = ai->why;
        return GV_EINVAL;
    }
    return 0;
}

int gw_jws_key_init(struct gw_jws_key *k, const char *issuer, enum gw_jws_alg alg,
                    const char *material, int consumer, const char **why)
{
    const struct alg_info *ai = alg_info(alg);
    int rc = GV_EINVAL;
    memset(k, 0, sizeof(*k));
    ERR_set_mark();
    if (ai == NULL) {
        *why = "unknown algorithm";
        goto fail;
    }
    if (issuer == NULL || material == NULL) {
        *why = "missing issuer or key";
        goto fail;
    }
    k->alg = alg;
    k->consumer = consumer;
    if ((k->issuer = strdup(issuer)) == NULL) {
        rc = GV_ENOMEM;
        *why = NOMEM;
        goto fail;
    }
    rc = ai->fam == FAM_HS ? key_take_secret(k, material, why)
                           : key_read_public(k, ai, material, why);
    if (rc != 0)
        goto fail;
    ERR_pop_to_mark();
    return 0;
fail:
    gw_jws_key_clear(k);
    ERR_pop_to_mark();
    return rc;
}

void gw_jws_key_clear(struct gw_jws_key *k)
{
    if (k == NULL)
        return;
    free(k->issuer);
    if (k->secret != NULL)
        OPENSSL_cleanse(k->secret, k->secret_len);
    free(k->secret);
    EVP_PKEY_free(k->pkey);
    memset(k, 0, sizeof(*k));
}

/* ---- verification ---------------------------------------------------------- */

/* Decodes n base64url characters into out (room for n / 4 * 3 + 3 bytes),
 * canonical only (see gv_base64_decode). 0 or GV_EINVAL. */
static int b64url_decode(const char *s, size_t n, unsigned char *out, size_t *outlen)
{
    long m = gv_base64_decode(s, n, out, n / 4 * 3 + 3, true);
    if (m < 0)
        return GV_EINVAL;
    *outlen = (size_t)m;
    return 0;
}

/* The JWS r||s (half bytes each) as a DER ECDSA-Sig-Value in der[cap].
 * Returns its length, GV_EINVAL or GV_ENOMEM. */
static int es_to_der(const unsigned char *sig, size_t half, unsigned char *der, size_t cap)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)half, NULL), *s = BN_bin2bn(sig + half, (int)half, NULL);
    int rc = GV_ENOMEM;
    if (es == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(es, r, s))
        goto fail;
    r = s = NULL; /* owned by es now */
    int n = i2d_ECDSA_SIG(es, NULL);
    if (n <= 0 || (size_t)n > cap) {
        rc = GV_EINVAL;
        goto fail;
    }
    unsigned char *p = der;
    rc = i2d_ECDSA_SIG(es, &p) == n ? n : GV_EINVAL;
fail:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return rc;
}

/* 0 when sig signs in[inlen] under k, GV_EINVAL when not, GV_ENOMEM. */
static int check_sig(const struct gw_jws_key *k, const unsigned char *in, size_t inlen,
                     const unsigned char *sig, size_t siglen)
{
    const struct alg_info *ai = &algs[k->alg];
    const EVP_MD *md = ai->md();
    unsigned char der[160];
    if (ai->fam == FAM_HS) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int maclen = 0;
        if (HMAC(md, k->secret, (int)k->secret_len, in, inlen, mac, &maclen) == NULL)
            return GV_EINVAL;
        return maclen == siglen && CRYPTO_memcmp(mac, sig, siglen) == 0 ? 0 : GV_EINVAL;
    }
    if (ai->fam == FAM_ES) {
        if (siglen != 2 * ai->half)
            return GV_EINVAL;
        int n = es_to_der(sig, ai->half, der, sizeof(der));
        if (n < 0)
            return n;
        sig = der;
        siglen = (size_t)n;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int rc = GV_EINVAL;
    if (ctx == NULL)
        return GV_ENOMEM;
    if (EVP_DigestVerifyInit(ctx, &pctx, md, NULL, k->pkey) == 1 &&
        (ai->fam != FAM_RS || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1) &&
        EVP_DigestVerify(ctx, sig, siglen, in, inlen) == 1)
        rc = 0;
    EVP_MD_CTX_free(ctx);
    return rc;
}

static int64_t sat_add(int64_t a, int64_t b) /* b >= 0 */
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int64_t sat_sub(int64_t a, int64_t b) /* b >= 0 */
{
    return a < INT64_MIN + b ? INT64_MIN : a - b;
}

/* A NumericDate claim (a JSON number) as whole seconds: a real counts as its
 * ceiling, which keeps "now >= exp" and "now < nbf" exact for an integer now. */
static int64_t claim_time(const json_t *v)
{
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    double d = ceil(json_real_value(v));
    if (!(d < 9223372036854775808.0))
        return INT64_MAX;
    if (d < -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)d;
}

static const struct gw_jws_key *find_key(const struct gw_jws_keys *ks, const char *iss)
{
    for (size_t i = 0; i < ks->n; i++)
        if (strcmp(ks->v[i].issuer, iss) == 0)
            return &ks->v[i];
    return NULL;
}

/* Decodes one base64url segment and parses it as a JSON object (duplicate
 * names rejected, so "alg" and "iss" mean one thing); NULL when it is not. */
static json_t *load_segment(const char *s, size_t n, unsigned char *buf)
{
    size_t m;
    if (b64url_decode(s, n, buf, &m) != 0)
        return NULL;
    json_t *v = json_loadb((const char *)buf, m, JSON_REJECT_DUPLICATES, NULL);
    if (v != NULL && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

/* Finds the two dots of header.payload.signature, checking that every other
 * character is base64url and that the header and payload are not empty. 0
 * or GV_EINVAL. */
static int split_token(const char *tok, size_t len, size_t *dot1, size_t *dot2)
{
    size_t dots = 0;
    for (size_t i = 0; i < len; i++) {
        if (tok[i] == '.') {
            if (++dots > 2)
                return GV_EINVAL;
            *(dots == 1 ? dot1 : dot2) = i;
        } else if (gv_b64url_value((unsigned char)tok[i]) < 0) {
            return GV_EINVAL;
        }
    }
    return dots == 2 && *dot1 != 0 && *dot2 != *dot1 + 1 ? 0 : GV_EINVAL;
}

/* What verification reads from the header and the payload. */
struct jws_parts {
    json_t *hdr, *pl; /* owned */
    const char *alg, *iss;
    const json_t *exp, *nbf; /* NULL when absent */
};

/* Decodes the header and the payload and picks out the fields verification
 * needs. 0 or GV_EINVAL (malformed); p->hdr and p->pl are the caller's to
 * release either way. */
static int load_parts(const char *tok, size_t dot1, size_t dot2, unsigned char *buf,
                      struct jws_parts *p)
{
    if ((p->hdr = load_segment(tok, dot1, buf)) == NULL ||
        (p->pl = load_segment(tok + dot1 + 1, dot2 - dot1 - 1, buf)) == NULL)
        return GV_EINVAL;
    /* json_string_value is NULL for anything but a string. Strings cannot hold
     * NUL (no JSON_ALLOW_NUL), so strcmp sees the whole value. */
    p->alg = json_string_value(json_object_get(p->hdr, "alg"));
    p->iss = json_string_value(json_object_get(p->pl, "iss"));
    p->exp = json_object_get(p->pl, "exp");
    p->nbf = json_object_get(p->pl, "nbf");
    if (p->alg == NULL || json_object_get(p->hdr, "crit") != NULL || p->iss == NULL ||
        (p->exp != NULL && !json_is_number(p->exp)) || (p->nbf != NULL && !json_is_number(p->nbf)))
        return GV_EINVAL;
    return 0;
}

/* The issuer's key, when the header's algorithm is the key's: the key
 * decides the algorithm; the header may only agree with it. 0, or GV_EINVAL
 * with *reason. */
static int pick_key(const struct gw_jws_keys *ks, const struct jws_parts *p,
                    const struct gw_jws_key **out, const char **reason)
{
    const struct gw_jws_key *k = find_key(ks, p->iss);
    enum gw_jws_alg alg;
    if (k == NULL) {
        *reason = "unknown issuer";
        return GV_EINVAL;
    }
    if (gw_jws_alg_parse(p->alg, &alg) != 0 || alg != k->alg) {
        *reason = "algorithm mismatch";
        return GV_EINVAL;
    }
    *out = k;
    return 0;
}

/* Checks the signature after the second dot over everything before it. 0,
 * or GV_EINVAL / GV_ENOMEM with *reason. */
static int verify_signature(const struct gw_jws_key *k, const char *tok, size_t len, size_t dot2,
                            unsigned char *buf, const char **reason)
{
    size_t n;
    int rc;
    if (b64url_decode(tok + dot2 + 1, len - dot2 - 1, buf, &n) != 0)
        return GV_EINVAL; /* *reason stays "malformed token" */
    if ((rc = check_sig(k, (const unsigned char *)tok, dot2, buf, n)) != 0)
        *reason = rc == GV_ENOMEM ? NOMEM : "bad signature";
    return rc;
}

/* Checks "exp" and "nbf" against now, each widened by skew (>= 0). 0 with
 * *exp (INT64_MAX without an "exp"), or GV_EINVAL with *reason. */
static int check_times(const struct jws_parts *p, int64_t now, int64_t skew, int64_t *exp,
                       const char **reason)
{
    int64_t e = p->exp != NULL ? claim_time(p->exp) : INT64_MAX;
    if (p->exp != NULL && now >= sat_add(e, skew)) {
        *reason = "token expired";
        return GV_EINVAL;
    }
    if (p->nbf != NULL && now < sat_sub(claim_time(p->nbf), skew)) {
        *reason = "token not yet valid";
        return GV_EINVAL;
    }
    *exp = e;
    return 0;
}

int gw_jws_verify(const struct gw_jws_keys *ks, const char *tok, size_t len, int64_t now,
                  int64_t skew, const struct gw_jws_key **key, int64_t *exp, const char **why)
{
    unsigned char buf[GW_JWS_MAX_LEN / 4 * 3 + 3]; /* one decoded segment at a time */
    struct jws_parts p = {0};
    const struct gw_jws_key *k = NULL;
    const char *reason = MALFORMED;
    size_t dot1 = 0, dot2 = 0;
    int64_t e = INT64_MAX;
    int rc = GV_EINVAL;

    ERR_set_mark();
    if (skew < 0)
        skew = 0;
    if (ks == NULL || tok == NULL || len == 0 || len > GW_JWS_MAX_LEN ||
        split_token(tok, len, &dot1, &dot2) != 0 || load_parts(tok, dot1, dot2, buf, &p) != 0)
        goto fail;
    /* The signature is checked before the times, so the time reasons are
     * only given for authentic tokens. */
    if ((rc = pick_key(ks, &p, &k, &reason)) != 0 ||
        (rc = verify_signature(k, tok, len, dot2, buf, &reason)) != 0 ||
        (rc = check_times(&p, now, skew, &e, &reason)) != 0)
        goto fail;
    *key = k;
    *exp = e;
fail:
    if (rc != 0)
        *why = reason;
    json_decref(p.hdr);
    json_decref(p.pl);
    ERR_pop_to_mark();
    return rc;
}
