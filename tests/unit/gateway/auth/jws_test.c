/* jws_test.c - JWT verification against keys generated here: every algorithm,
 * tampering, times and skew, alg "none" and algorithm confusion, malformed
 * tokens, key refusals, and the per-thread cache of verified tokens. */
#include "common/err.h"
#include "gateway/auth/jws.h"
#include "gateway/auth/cred_cache.h"
#include "test.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW  1700000000LL
#define SKEW 60

static const char *const issuers[] = {"hs256", "hs384", "hs512", "rs256",
                                      "rs384", "rs512", "es256", "es384"};
static const char *const secrets[] = {"secret-256", "secret-384", "secret-512"};

static EVP_PKEY *rsa2048, *p256, *p384;
static char *pem_rsa2048, *pem_p256, *pem_p384;
static struct gw_jws_key keyv[8];
static struct gw_jws_keys keys;

static const EVP_MD *md_of(enum gw_jws_alg alg)
{
    switch (alg) {
    case GW_JWS_HS384:
    case GW_JWS_RS384:
    case GW_JWS_ES384:
        return EVP_sha384();
    case GW_JWS_HS512:
    case GW_JWS_RS512:
        return EVP_sha512();
    default:
        return EVP_sha256();
    }
}

static char *pem_of(EVP_PKEY *pk)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out;
    CHECK(PEM_write_bio_PUBKEY(b, pk) == 1);
    long n = BIO_get_mem_data(b, &data);
    out = malloc((size_t)n + 1);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    BIO_free(b);
    return out;
}

/* The fixture: a key of every algorithm, keyv[a] for issuers[a], and the
 * set over them. Each test that signs or verifies brings it up and down, so
 * no test depends on another having run. */
static void fixture_up(void)
{
    const char *why = NULL;
    rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    CHECK(rsa2048 != NULL && p256 != NULL && p384 != NULL);
    pem_rsa2048 = pem_of(rsa2048);
    pem_p256 = pem_of(p256);
    pem_p384 = pem_of(p384);
    for (int a = GW_JWS_HS256; a <= GW_JWS_ES384; a++) {
        const char *m = a <= GW_JWS_HS512   ? secrets[a]
                        : a <= GW_JWS_RS512 ? pem_rsa2048
                        : a == GW_JWS_ES256 ? pem_p256
                                            : pem_p384;
        CHECK_INT(gw_jws_key_init(&keyv[a], issuers[a], a, m, 100 + a, &why), 0);
    }
    keys.v = keyv;
    keys.n = 8;
    keys.gen = gw_cred_cache_gen();
}

static void fixture_down(void)
{
    for (int a = GW_JWS_HS256; a <= GW_JWS_ES384; a++)
        gw_jws_key_clear(&keyv[a]);
    EVP_PKEY_free(rsa2048);
    EVP_PKEY_free(p256);
    EVP_PKEY_free(p384);
    free(pem_rsa2048);
    free(pem_p256);
    free(pem_p384);
    rsa2048 = p256 = p384 = NULL;
    pem_rsa2048 = pem_p256 = pem_p384 = NULL;
    gw_cred_cache_reset();
}

static char *b64url(const unsigned char *in, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    int m = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (m > 0 && out[m - 1] == '=')
        m--;
    out[m] = '\0';
    for (char *p = out; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    return out;
}

/* "b64(header).b64(payload)" */
static char *signing_input(const char *header, const char *payload)
{
    char *h = b64url((const unsigned char *)header, strlen(header));
    char *p = b64url((const unsigned char *)payload, strlen(payload));
    size_t n = strlen(h) + strlen(p) + 2;
    char *out = malloc(n);
    snprintf(out, n, "%s.%s", h, p);
    free(h);
    free(p);
    return out;
}

/* A token with the given raw signature bytes. */
static char *with_sig(const char *header, const char *payload, const unsigned char *sig,
                      size_t siglen)
{
    char *in = signing_input(header, payload), *s = b64url(sig, siglen);
    size_t n = strlen(in) + strlen(s) + 2;
    char *out = malloc(n);
    snprintf(out, n, "%s.%s", in, s);
    free(in);
    free(s);
    return out;
}

/* Signs in[n] as alg would (HS: secret; RS, ES: pk). der: ES as DER instead of r||s. */
static size_t sign(enum gw_jws_alg alg, const char *secret, EVP_PKEY *pk, const char *in,
                   unsigned char *sig, int der)
{
    size_t n = strlen(in), len = 512;
    if (alg <= GW_JWS_HS512) {
        unsigned int l = 0;
        HMAC(md_of(alg), secret, (int)strlen(secret), (const unsigned char *)in, n, sig, &l);
        return l;
    }
    unsigned char buf[512];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    CHECK(EVP_DigestSignInit(ctx, NULL, md_of(alg), NULL, pk) == 1);
    CHECK(EVP_DigestSign(ctx, buf, &len, (const unsigned char *)in, n) == 1);
    EVP_MD_CTX_free(ctx);
    if (alg <= GW_JWS_RS512 || der) {
        memcpy(sig, buf, len);
        return len;
    }
    int half = alg == GW_JWS_ES256 ? 32 : 48;
    const unsigned char *p = buf;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(es, &r, &s);
    BN_bn2binpad(r, sig, half);
    BN_bn2binpad(s, sig + half, half);
    ECDSA_SIG_free(es);
    return (size_t)(2 * half);
}

static char *jws_full(enum gw_jws_alg alg, const char *secret, EVP_PKEY *pk, const char *header,
                      const char *payload, int der)
{
    unsigned char sig[512];
    char *in = signing_input(header, payload);
    size_t n = sign(alg, secret, pk, in, sig, der);
    free(in);
    return with_sig(header, payload, sig, n);
}

/* A token signed with the fixture's key material for alg. */
static char *jws(enum gw_jws_alg alg, const char *header, const char *payload)
{
    EVP_PKEY *pk = alg <= GW_JWS_RS512 ? rsa2048 : alg == GW_JWS_ES256 ? p256 : p384;
    return jws_full(alg, alg <= GW_JWS_HS512 ? secrets[alg] : NULL, pk, header, payload, 0);
}

static char *fmt(const char *f, ...)
{
    static char bufs[16][16384];
    static int next;
    char *b = bufs[next++ % 16];
    va_list ap;
    va_start(ap, f);
    vsnprintf(b, sizeof(bufs[0]), f, ap);
    va_end(ap);
    return b;
}

static char *hdr(enum gw_jws_alg alg)
{
    return fmt("{\"alg\":\"%s\",\"typ\":\"JWT\"}", gw_jws_alg_name(alg));
}

static const struct gw_jws_key *got_key;
static int64_t got_exp;

/* Verifies tok[len] from an exact-size copy (no NUL after it, so ASan sees any
 * read past the end); "ok" or the reason. */
static const char *outcome_n(const char *tok, size_t len, int64_t now)
{
    char *copy = malloc(len ? len : 1);
    const char *why = NULL;
    memcpy(copy, tok, len);
    got_key = NULL;
    got_exp = 0;
    int rc = gw_jws_verify(&keys, copy, len, now, SKEW, &got_key, &got_exp, &why);
    free(copy);
    CHECK(rc == 0 || rc == GV_EINVAL);
    CHECK(ERR_peek_error() == 0);
    if (rc == 0) {
        CHECK(why == NULL);
        return "ok";
    }
    CHECK(got_key == NULL);
    return why;
}

static const char *outcome(const char *tok)
{
    return outcome_n(tok, strlen(tok), NOW);
}

/* outcome() of a token, which is then freed. */
static const char *judge(char *tok)
{
    const char *r = outcome(tok);
    free(tok);
    return r;
}

static void test_alg_names(void)
{
    enum gw_jws_alg a;
    for (int i = GW_JWS_HS256; i <= GW_JWS_ES384; i++) {
        CHECK_INT(gw_jws_alg_parse(gw_jws_alg_name(i), &a), 0);
        CHECK_INT(a, i);
    }
    CHECK_STR(gw_jws_alg_name(GW_JWS_ES384), "ES384");
    CHECK_STR(gw_jws_alg_name((enum gw_jws_alg)42), "?");
    a = GW_JWS_RS512;
    CHECK_INT(gw_jws_alg_parse("none", &a), GV_EINVAL);
    CHECK_INT(gw_jws_alg_parse("hs256", &a), GV_EINVAL);
    CHECK_INT(gw_jws_alg_parse("HS256 ", &a), GV_EINVAL);
    CHECK_INT(gw_jws_alg_parse("PS256", &a), GV_EINVAL);
    CHECK_INT(gw_jws_alg_parse(NULL, &a), GV_EINVAL);
    CHECK_INT(a, GW_JWS_RS512);
}

static void refused(enum gw_jws_alg alg, const char *material, const char *want)
{
    struct gw_jws_key k, zero;
    const char *why = NULL;
    memset(&k, 0x5a, sizeof(k));
    memset(&zero, 0, sizeof(zero));
    CHECK_INT(gw_jws_key_init(&k, "iss", alg, material, 1, &why), GV_EINVAL);
    CHECK_STR(why, want);
    CHECK(memcmp(&k, &zero, sizeof(k)) == 0);
    CHECK(ERR_peek_error() == 0);
}

static void test_key_refusals(void)
{
    fixture_up();
    EVP_PKEY *rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    CHECK(rsa1024 != NULL);
    char *pem_rsa1024 = pem_of(rsa1024);
    refused(GW_JWS_RS256, pem_rsa1024, "RS256 needs an RSA key of 2048+ bits");
    free(pem_rsa1024);
    EVP_PKEY_free(rsa1024);
    refused(GW_JWS_RS512, pem_p256, "RS512 needs an RSA key of 2048+ bits");
    refused(GW_JWS_ES256, pem_p384, "ES256 needs a P-256 key");
    refused(GW_JWS_ES256, pem_rsa2048, "ES256 needs a P-256 key");
    refused(GW_JWS_ES384, pem_p256, "ES384 needs a P-384 key");
    refused(GW_JWS_RS256, "not a key at all", "not a PEM public key");
    refused(GW_JWS_ES256, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "not a PEM public key");
    refused(GW_JWS_HS256, "", "empty secret");
    refused((enum gw_jws_alg)8, "x", "unknown algorithm");

    /* A private key PEM is not a public key. */
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    CHECK(PEM_write_bio_PrivateKey(b, p256, NULL, NULL, 0, NULL, NULL) == 1);
    long n = BIO_get_mem_data(b, &data);
    char *priv = strndup(data, (size_t)n);
    refused(GW_JWS_ES256, priv, "not a PEM public key");
    free(priv);
    BIO_free(b);

    /* The fixture's keys, and a clear that leaves a zeroed key clearable again. */
    CHECK_STR(keyv[GW_JWS_RS256].issuer, "rs256");
    CHECK_INT(keyv[GW_JWS_HS384].secret_len, strlen(secrets[1]));
    CHECK(keyv[GW_JWS_HS384].pkey == NULL && keyv[GW_JWS_ES384].pkey != NULL);
    CHECK_INT(keyv[GW_JWS_ES256].consumer, 106);
    struct gw_jws_key k;
    const char *why;
    CHECK_INT(gw_jws_key_init(&k, "x", GW_JWS_HS256, "s", 0, &why), 0);
    gw_jws_key_clear(&k);
    CHECK(k.issuer == NULL && k.secret == NULL);
    gw_jws_key_clear(&k);
    fixture_down();
}

static void test_keys_gen(void)
{
    uint64_t a = gw_cred_cache_gen(), b = gw_cred_cache_gen();
    CHECK(a != 0 && b > a);
}

static void test_every_alg(void)
{
    fixture_up();
    for (int a = GW_JWS_HS256; a <= GW_JWS_ES384; a++) {
        char *t = jws(a, hdr(a), fmt("{\"iss\":\"%s\",\"exp\":%lld}", issuers[a], NOW + 300));
        CHECK_STR(outcome(t), "ok");
        CHECK(got_key == &keyv[a]);
        CHECK_INT(got_exp, NOW + 300);
        free(t);
    }
    fixture_down();
}

static void test_bad_signature(void)
{
    fixture_up();
    for (int a = GW_JWS_HS256; a <= GW_JWS_ES384; a++) {
        char *t = jws(a, hdr(a), fmt("{\"iss\":\"%s\"}", issuers[a]));
        char *s = strrchr(t, '.') + 1;
        *s = *s == 'A' ? 'B' : 'A'; /* the first signature byte */
        CHECK_STR(outcome(t), "bad signature");
        free(t);
    }
    /* A signature moved onto another payload. */
    for (int a = GW_JWS_HS256; a <= GW_JWS_ES384; a += 3) {
        char *good = jws(a, hdr(a), fmt("{\"iss\":\"%s\",\"exp\":%lld}", issuers[a], NOW + 9));
        char *other = jws(a, hdr(a), fmt("{\"iss\":\"%s\",\"exp\":%lld}", issuers[a], NOW + 99999));
        char *t = malloc(strlen(good) + strlen(other));
        *strrchr(other, '.') = '\0';
        sprintf(t, "%s%s", other, strrchr(good, '.'));
        CHECK_STR(outcome(t), "bad signature");
        free(good);
        free(other);
        free(t);
    }
    /* Signed by another key of the right type. */
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    CHECK_STR(
        judge(jws_full(GW_JWS_ES256, NULL, other, hdr(GW_JWS_ES256), "{\"iss\":\"es256\"}", 0)),
        "bad signature");
    EVP_PKEY_free(other);
    CHECK_STR(judge(jws_full(GW_JWS_HS256, "secret-25", NULL, hdr(GW_JWS_HS256),
                             "{\"iss\":\"hs256\"}", 0)),
              "bad signature");
    /* Empty signature on a known alg. */
    char *in = signing_input(hdr(GW_JWS_HS256), "{\"iss\":\"hs256\"}");
    CHECK_STR(outcome(fmt("%s.", in)), "bad signature");
    free(in);
    fixture_down();
}

static void test_es_signature_length(void)
{
    fixture_up();
    unsigned char sig[200];
    const char *pl = "{\"iss\":\"es256\"}";
    memset(sig, 0x41, sizeof(sig));
    size_t lens[] = {0, 63, 65, 72, 96};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
        CHECK_STR(judge(with_sig(hdr(GW_JWS_ES256), pl, sig, lens[i])), "bad signature");
    /* A real P-256 signature, one byte longer or as DER, is still refused. */
    char *in = signing_input(hdr(GW_JWS_ES256), pl);
    size_t n = sign(GW_JWS_ES256, NULL, p256, in, sig, 0);
    CHECK_INT(n, 64);
    CHECK_STR(judge(with_sig(hdr(GW_JWS_ES256), pl, sig, 64)), "ok");
    sig[64] = 0;
    CHECK_STR(judge(with_sig(hdr(GW_JWS_ES256), pl, sig, 65)), "bad signature");
    n = sign(GW_JWS_ES256, NULL, p256, in, sig, 1);
    CHECK(n >= 8 && n <= 72);
    CHECK_STR(judge(with_sig(hdr(GW_JWS_ES256), pl, sig, n)), "bad signature");
    free(in);
    /* ES384 wants 96 bytes. */
    memset(sig, 0x41, sizeof(sig));
    CHECK_STR(judge(with_sig(hdr(GW_JWS_ES384), "{\"iss\":\"es384\"}", sig, 64)), "bad signature");
    fixture_down();
}

static void test_times(void)
{
    fixture_up();
    /* Payload formats are filled with a, b. */
    struct {
        const char *payload;
        long long a, b;
        const char *want;
        int64_t exp;
    } cases[] = {
        {"{\"iss\":\"hs256\",\"exp\":%lld}", NOW - 61, 0, "token expired", 0},
        {"{\"iss\":\"hs256\",\"exp\":%lld}", NOW - SKEW, 0, "token expired",
         0},                                                               /* now == exp+skew */
        {"{\"iss\":\"hs256\",\"exp\":%lld}", NOW - 59, 0, "ok", NOW - 59}, /* inside the skew */
        {"{\"iss\":\"hs256\",\"nbf\":%lld}", NOW + 61, 0, "token not yet valid", 0},
        {"{\"iss\":\"hs256\",\"nbf\":%lld}", NOW + SKEW, 0, "ok", INT64_MAX}, /* inside the skew */
        {"{\"iss\":\"hs256\",\"nbf\":%lld,\"exp\":%lld}", NOW - 10, NOW + 10, "ok", NOW + 10},
        {"{\"iss\":\"hs256\",\"jti\":%lld}", 1, 0, "ok", INT64_MAX},
        /* Reals: a real counts as its ceiling. */
        {"{\"iss\":\"hs256\",\"exp\":%lld.5}", NOW + 10, 0, "ok", NOW + 11},
        {"{\"iss\":\"hs256\",\"exp\":%lld.5}", NOW - 61, 0, "token expired", 0}, /* NOW - 60.5 */
        {"{\"iss\":\"hs256\",\"exp\":%lld.5}", NOW - 60, 0, "ok", NOW - 59},     /* NOW - 59.5 */
        {"{\"iss\":\"hs256\",\"exp\":%lld.0e0}", NOW + 5, 0, "ok", NOW + 5},
        {"{\"iss\":\"hs256\",\"exp\":1e300}", 0, 0, "ok", INT64_MAX},
        {"{\"iss\":\"hs256\",\"exp\":-1e300}", 0, 0, "token expired", 0},
        {"{\"iss\":\"hs256\",\"nbf\":%lld.25}", NOW + 60, 0, "token not yet valid", 0},
        {"{\"iss\":\"hs256\",\"nbf\":%lld.75}", NOW + 59, 0, "ok", INT64_MAX},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *r = judge(
            jws(GW_JWS_HS256, hdr(GW_JWS_HS256), fmt(cases[i].payload, cases[i].a, cases[i].b)));
        CHECK_STR(r, cases[i].want);
        if (strcmp(r, "ok") == 0)
            CHECK_INT(got_exp, cases[i].exp);
        if (strcmp(r, cases[i].want) != 0)
            fprintf(stderr, "  case %zu\n", i);
    }
    /* Not numbers. */
    const char *bad[] = {",\"exp\":\"1999999999\"", ",\"exp\":true", ",\"nbf\":null",
                         ",\"exp\":[1]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_STR(judge(jws(GW_JWS_HS256, hdr(GW_JWS_HS256), fmt("{\"iss\":\"hs256\"%s}", bad[i]))),
                  "malformed token");
    /* Sums saturate rather than wrap. */
    char *t =
        jws(GW_JWS_HS256, hdr(GW_JWS_HS256), "{\"iss\":\"hs256\",\"exp\":9223372036854775807}");
    CHECK_STR(outcome_n(t, strlen(t), INT64_MAX - 1), "ok");
    free(t);
    t = jws(GW_JWS_HS256, hdr(GW_JWS_HS256), "{\"iss\":\"hs256\",\"nbf\":-9223372036854775807}");
    CHECK_STR(outcome_n(t, strlen(t), INT64_MIN + 1), "ok");
    free(t);
    fixture_down();
}

static void test_alg_none_and_confusion(void)
{
    fixture_up();
    /* alg "none", empty signature, for an HS and an RS issuer. */
    char *in = signing_input("{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"iss\":\"hs256\"}");
    CHECK_STR(outcome(fmt("%s.", in)), "algorithm mismatch");
    free(in);
    in = signing_input("{\"alg\":\"none\"}", "{\"iss\":\"rs256\"}");
    CHECK_STR(outcome(fmt("%s.", in)), "algorithm mismatch");
    free(in);
    /* HS256 whose HMAC secret is the RS256 key's public PEM. */
    const char *pl = "{\"iss\":\"rs256\"}";
    char *t = jws_full(GW_JWS_HS256, pem_rsa2048, NULL, hdr(GW_JWS_HS256), pl, 0);
    CHECK_STR(outcome(t), "algorithm mismatch");
    /* The same token is well-formed: an HS256 key with that secret accepts it. */
    struct gw_jws_key k;
    const struct gw_jws_key *got;
    const char *why;
    int64_t e;
    struct gw_jws_keys ks = {&k, 1, gw_cred_cache_gen()};
    CHECK_INT(gw_jws_key_init(&k, "rs256", GW_JWS_HS256, pem_rsa2048, 0, &why), 0);
    CHECK_INT(gw_jws_verify(&ks, t, strlen(t), NOW, SKEW, &got, &e, &why), 0);
    gw_jws_key_clear(&k);
    free(t);
    /* Other mismatches: a sibling alg of the same family, and another family. */
    CHECK_STR(judge(jws(GW_JWS_RS384, hdr(GW_JWS_RS384), pl)), "algorithm mismatch");
    CHECK_STR(judge(jws(GW_JWS_ES256, hdr(GW_JWS_ES256), pl)), "algorithm mismatch");
    CHECK_STR(judge(jws(GW_JWS_HS256, "{\"alg\":\"rs256\"}", pl)), "algorithm mismatch");
    fixture_down();
}

static void test_issuer(void)
{
    fixture_up();
    CHECK_STR(judge(jws(GW_JWS_HS256, hdr(GW_JWS_HS256), "{\"iss\":\"nobody\"}")),
              "unknown issuer");
    CHECK_STR(judge(jws(GW_JWS_HS256, hdr(GW_JWS_HS256), "{\"iss\":\"HS256\"}")), "unknown issuer");
    CHECK_STR(judge(jws(GW_JWS_HS256, hdr(GW_JWS_HS256), "{\"sub\":\"hs256\"}")),
              "malformed token");
    CHECK_STR(judge(jws(GW_JWS_HS256, hdr(GW_JWS_HS256), "{\"iss\":7}")), "malformed token");
    CHECK_STR(judge(jws(GW_JWS_HS256, hdr(GW_JWS_HS256), "{\"iss\":\"hs\\u0000256\"}")),
              "malformed token");
    /* Duplicate names: which "iss" counts would be ambiguous. */
    CHECK_STR(judge(jws(GW_JWS_HS256, hdr(GW_JWS_HS256), "{\"iss\":\"nobody\",\"iss\":\"hs256\"}")),
              "malformed token");
    /* An empty key set knows nobody. */
    struct gw_jws_keys none = {NULL, 0, 1};
    const struct gw_jws_key *k;
    const char *why;
    int64_t e;
    char *t = jws(GW_JWS_HS256, hdr(GW_JWS_HS256), "{\"iss\":\"hs256\"}");
    CHECK_INT(gw_jws_verify(&none, t, strlen(t), NOW, SKEW, &k, &e, &why), GV_EINVAL);
    CHECK_STR(why, "unknown issuer");
    free(t);
    fixture_down();
}

static void test_malformed(void)
{
    fixture_up();
    const char *pl = "{\"iss\":\"hs256\"}";
    char *good = jws(GW_JWS_HS256, hdr(GW_JWS_HS256), pl);
    CHECK_STR(outcome(good), "ok");
    size_t n = strlen(good);

    /* Header: alg not a string, missing, not an object, not JSON, "crit". */
    const char *hdrs[] = {"{\"alg\":256}",
                          "{\"alg\":null}",
                          "{\"typ\":\"JWT\"}",
                          "[\"HS256\"]",
                          "\"HS256\"",
                          "{\"alg\":\"HS256\"",
                          "{\"alg\":\"HS256\"} x",
                          "",
                          "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
                          "{\"alg\":\"RS256\",\"alg\":\"HS256\"}"};
    for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++)
        CHECK_STR(judge(jws(GW_JWS_HS256, hdrs[i], pl)), "malformed token");
    CHECK_STR(judge(jws(GW_JWS_HS256, hdr(GW_JWS_HS256), "[1]")), "malformed token");
    CHECK_STR(judge(jws(GW_JWS_HS256, hdr(GW_JWS_HS256), "not json")), "malformed token");

    /* Shape: empty, 2 parts, 4 parts, empty parts. */
    CHECK_STR(outcome(""), "malformed token");
    CHECK_STR(outcome("."), "malformed token");
    CHECK_STR(outcome(".."), "malformed token");
    char *two = strdup(good);
    *strrchr(two, '.') = '\0';
    CHECK_STR(outcome(two), "malformed token");
    CHECK_STR(outcome(fmt("%s.", good)), "malformed token");
    CHECK_STR(outcome(fmt("%s.AAAA", good)), "malformed token");
    CHECK_STR(outcome(fmt("%s", strchr(good, '.'))), "malformed token");
    CHECK_STR(outcome(fmt("%.*s.%s", (int)(strchr(good, '.') - good), good, strrchr(good, '.'))),
              "malformed token");
    free(two);

    /* Padding and characters outside the alphabet, anywhere. */
    CHECK_STR(outcome(fmt("%s=", good)), "malformed token");
    CHECK_STR(outcome(fmt("%s==", good)), "malformed token");
    const char bad[] = {'=', '+', '/', ' ', '\n', '!', '\0', '\x80', '\xff'};
    size_t where[] = {0, 5, n - 1};
    for (size_t i = 0; i < sizeof(bad); i++)
        for (size_t j = 0; j < 3; j++) {
            char *t = strdup(good);
            t[where[j]] = bad[i];
            CHECK_STR(outcome_n(t, n, NOW), "malformed token");
            free(t);
        }
    /* Base64 with padding kept inside the header. */
    char padded[64];
    EVP_EncodeBlock((unsigned char *)padded, (const unsigned char *)"{\"alg\":\"HS256\" }", 16);
    CHECK(strchr(padded, '=') != NULL);
    CHECK_STR(outcome(fmt("%s.%s", padded, strchr(good, '.') + 1)), "malformed token");
    /* A non-canonical last character: the signature is 43 characters, so the
     * last one's low 2 bits are unused; setting one decodes to the same bytes. */
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *t = strdup(good);
    CHECK_INT(strlen(strrchr(t, '.') + 1), 43);
    t[n - 1] = alphabet[(strchr(alphabet, t[n - 1]) - alphabet) ^ 1];
    CHECK_STR(outcome(t), "malformed token");
    free(t);
    /* Likewise with 86 characters (an ES256 signature): 4 unused bits. */
    t = jws(GW_JWS_ES256, hdr(GW_JWS_ES256), "{\"iss\":\"es256\"}");
    CHECK_STR(outcome(t), "ok");
    CHECK_INT(strlen(strrchr(t, '.') + 1), 86);
    t[strlen(t) - 1] = alphabet[(strchr(alphabet, t[strlen(t) - 1]) - alphabet) ^ 8];
    CHECK_STR(outcome(t), "malformed token");
    free(t);
    /* 45 characters: a lone character in the last group cannot encode a byte. */
    CHECK_STR(outcome(fmt("%sAA", good)), "malformed token");

    /* Length: 9 KiB refused; a signed 8000-byte token accepted. */
    char *big = malloc(9 * 1024 + 1);
    memset(big, 'A', 9 * 1024);
    big[9 * 1024] = '\0';
    big[100] = big[200] = '.';
    CHECK_STR(outcome(big), "malformed token");
    free(big);
    char *filler = malloc(7000);
    memset(filler, 'x', 6999);
    filler[6999] = '\0';
    t = jws(GW_JWS_HS256, hdr(GW_JWS_HS256), fmt("{\"iss\":\"hs256\",\"x\":\"%s\"}", filler));
    CHECK(strlen(t) > 8192);
    CHECK_STR(outcome(t), "malformed token");
    free(t);
    filler[5700] = '\0';
    t = jws(GW_JWS_RS256, hdr(GW_JWS_RS256), fmt("{\"iss\":\"rs256\",\"x\":\"%s\"}", filler));
    CHECK(strlen(t) > 8000 && strlen(t) <= 8192);
    CHECK_STR(outcome(t), "ok");
    free(t);
    free(filler);

    /* Only [tok, tok+len) counts: what follows is not looked at. */
    t = fmt("%s.garbage", good);
    CHECK_STR(outcome_n(t, n, NOW), "ok");
    free(good);
    fixture_down();
}

struct thread_arg {
    const char *tok;
    int ok;
    bool cached;
};

static void *verify_loop(void *p)
{
    struct thread_arg *a = p;
    size_t idx;
    a->cached = gw_cred_cache_get(keys.gen, a->tok, strlen(a->tok), NOW, SKEW, &idx);
    for (int i = 0; i < 50; i++) {
        const struct gw_jws_key *k;
        const char *why;
        int64_t e;
        a->ok += gw_jws_verify(&keys, a->tok, strlen(a->tok), NOW, SKEW, &k, &e, &why) == 0;
    }
    gw_cred_cache_reset();
    return NULL;
}

static void test_threads(void)
{
    fixture_up();
    char *t1 = jws(GW_JWS_RS256, hdr(GW_JWS_RS256), "{\"iss\":\"rs256\"}");
    char *t2 = jws(GW_JWS_ES256, hdr(GW_JWS_ES256), "{\"iss\":\"es256\"}");
    struct thread_arg a1 = {t1, 0, false}, a2 = {t2, 0, false};
    pthread_t th1, th2;
    /* The cache is per thread: what this thread put, the others do not see. */
    gw_cred_cache_put(keys.gen, t1, strlen(t1), INT64_MAX, GW_JWS_RS256);
    CHECK(pthread_create(&th1, NULL, verify_loop, &a1) == 0);
    CHECK(pthread_create(&th2, NULL, verify_loop, &a2) == 0);
    pthread_join(th1, NULL);
    pthread_join(th2, NULL);
    CHECK_INT(a1.ok, 50);
    CHECK_INT(a2.ok, 50);
    CHECK(!a1.cached);
    size_t idx = 0;
    CHECK(gw_cred_cache_get(keys.gen, t1, strlen(t1), NOW, SKEW, &idx));
    CHECK_INT(idx, GW_JWS_RS256);
    gw_cred_cache_reset();
    free(t1);
    free(t2);
    fixture_down();
}

/* The cache alone: an HS256 token needs no generated key. */
static void test_cache(void)
{
    char *t = jws(GW_JWS_HS256, hdr(GW_JWS_HS256), "{\"iss\":\"hs256\"}");
    size_t n = strlen(t), idx = 99;
    uint64_t gen = gw_cred_cache_gen();

    CHECK(!gw_cred_cache_get(gen, t, n, NOW, SKEW, &idx)); /* nothing yet */
    gw_cred_cache_put(gen, t, n, NOW + 100, 3);
    CHECK(gw_cred_cache_get(gen, t, n, NOW, SKEW, &idx));
    CHECK_INT(idx, 3);
    CHECK(gw_cred_cache_get(gen, t, n, NOW + 159, SKEW, &idx)); /* inside the skew */
    CHECK(!gw_cred_cache_get(gen + 1, t, n, NOW, SKEW, &idx));  /* another key set */
    CHECK(!gw_cred_cache_get(gen, t, n - 1, NOW, SKEW, &idx));  /* a prefix */

    /* Other tokens of the same length miss, whichever slot they hash to (about
     * 1 in 256 shares this one). */
    int hits = 0;
    for (int i = 0; i < 2000; i++) {
        char *o = strdup(t);
        snprintf(o + n - 8, 9, "%08d", i);
        hits += gw_cred_cache_get(gen, o, n, NOW, SKEW, &idx);
        free(o);
    }
    CHECK_INT(hits, 0);

    /* Expired: missed and dropped. */
    CHECK(!gw_cred_cache_get(gen, t, n, NOW + 160, SKEW, &idx));
    CHECK(!gw_cred_cache_get(gen, t, n, NOW, SKEW, &idx));

    /* Re-put under a new generation replaces the entry. */
    gw_cred_cache_put(gen, t, n, NOW + 100, 1);
    gw_cred_cache_put(gen + 1, t, n, NOW + 100, 2);
    CHECK(!gw_cred_cache_get(gen, t, n, NOW, SKEW, &idx));
    CHECK(gw_cred_cache_get(gen + 1, t, n, NOW, SKEW, &idx));
    CHECK_INT(idx, 2);

    /* 1 KiB is cached, 1 KiB + 1 is not; empty is not. */
    char *big = malloc(1025);
    memset(big, 'a', 1025);
    gw_cred_cache_put(gen, big, 1024, INT64_MAX, 4);
    CHECK(gw_cred_cache_get(gen, big, 1024, NOW, SKEW, &idx));
    CHECK_INT(idx, 4);
    gw_cred_cache_put(gen, big, 1025, INT64_MAX, 5);
    CHECK(!gw_cred_cache_get(gen, big, 1025, NOW, SKEW, &idx));
    gw_cred_cache_put(gen, big, 0, INT64_MAX, 6);
    CHECK(!gw_cred_cache_get(gen, big, 0, NOW, SKEW, &idx));
    free(big);

    /* No exp: never expires (saturating). */
    gw_cred_cache_put(gen, "a.b.c", 5, INT64_MAX, 7);
    CHECK(gw_cred_cache_get(gen, "a.b.c", 5, INT64_MAX - 1, SKEW, &idx));

    /* Reset forgets everything and is repeatable. */
    gw_cred_cache_reset();
    CHECK(!gw_cred_cache_get(gen + 1, t, n, NOW, SKEW, &idx));
    gw_cred_cache_reset();
    free(t);
}

TEST_MAIN(TEST(test_alg_names), TEST(test_key_refusals), TEST(test_keys_gen), TEST(test_every_alg),
          TEST(test_bad_signature), TEST(test_es_signature_length), TEST(test_times),
          TEST(test_alg_none_and_confusion), TEST(test_issuer), TEST(test_malformed),
          TEST(test_threads), TEST(test_cache))
