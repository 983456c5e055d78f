/* tls_test.c - certificate sets, SNI choice, ALPN and protocol floor, driven
 * by an in-memory handshake between an OpenSSL client and gw_tls. */
#include "gateway/tls.h"
#include "test.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

/* Writes a self-signed P-256 certificate for cn (and SAN DNS:san when given)
 * to DIR/NAME.pem and DIR/NAME.key. false when a file cannot be written. */
static bool make_cert(const char *name, const char *cn, const char *san)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    bool ok = key != NULL && x != NULL;
    if (ok) {
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), -60);
        X509_gmtime_adj(X509_getm_notAfter(x), 86400);
        X509_set_pubkey(x, key);
        X509_NAME *n = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
        X509_set_issuer_name(x, n);
        if (san) {
            X509V3_CTX v3;
            X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
            X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
            ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
            X509_EXTENSION_free(ext);
        }
        ok = ok && X509_sign(x, key, EVP_sha256()) > 0;
    }
    char path[256];
    snprintf(path, sizeof path, "%s/%s.pem", dir, name);
    FILE *f = ok ? fopen(path, "w") : NULL;
    ok = f != NULL && PEM_write_X509(f, x) == 1;
    if (f != NULL)
        ok = fclose(f) == 0 && ok;
    snprintf(path, sizeof path, "%s/%s.key", dir, name);
    f = ok ? fopen(path, "w") : NULL;
    ok = f != NULL && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
    if (f != NULL)
        ok = fclose(f) == 0 && ok;
    X509_free(x);
    EVP_PKEY_free(key);
    return ok;
}

/* The fixture: certificates a.test, b.test (also exact.wild.test) and
 * *.wild.test in a fresh directory. false when any cannot be written. */
static bool certs_write(void)
{
    snprintf(dir, sizeof dir, "/tmp/gv_tls_test_XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        dir[0] = '\0';
        return false;
    }
    return make_cert("a", "a.test", "DNS:a.test") &&
           make_cert("b", "b.test", "DNS:b.test,DNS:exact.wild.test") &&
           make_cert("w", "wild", "DNS:*.wild.test");
}

static void certs_remove(void)
{
    const char *f[] = {"a.pem", "a.key", "b.pem", "b.key", "w.pem", "w.key"};
    char p[256];
    if (dir[0] == '\0')
        return;
    for (size_t i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, f[i]);
        unlink(p);
    }
    rmdir(dir);
    dir[0] = '\0';
}

static char paths[8][256];

static struct gw_tls_ctxset *load(const char *const *names, size_t n)
{
    struct gw_tls_certfile files[4];
    for (size_t i = 0; i < n; i++) {
        snprintf(paths[2 * i], sizeof paths[0], "%s/%s.pem", dir, names[i]);
        snprintf(paths[2 * i + 1], sizeof paths[0], "%s/%s.key", dir, names[i]);
        files[i].cert = paths[2 * i];
        files[i].key = paths[2 * i + 1];
    }
    struct gw_tls_ctxset *s = NULL;
    char err[256] = "";
    int rv = gw_tls_ctxset_load(files, n, &s, err, sizeof err);
    if (rv != 0)
        fprintf(stderr, "load: %s\n", err);
    return s;
}

static const char *const names_ab[] = {"a", "b", "w"};

/* Runs body over the fixture's first n certificates loaded as one set, which
 * body then owns. A fixture that cannot be written or loaded fails the
 * calling test instead of skipping it. */
static void with_certs(size_t n, void (*body)(struct gw_tls_ctxset *s))
{
    bool written = certs_write();
    struct gw_tls_ctxset *s = written ? load(names_ab, n) : NULL;
    CHECK(written);
    CHECK(s != NULL);
    if (s != NULL)
        body(s);
    certs_remove();
}

/* Moves pending bytes between an OpenSSL client (over a BIO pair) and the
 * server engine until neither side progresses. Returns the server's last
 * gw_tls_read() status. */
static int pump(SSL *cli, BIO *cli_net, struct gw_tls *srv, char *plain, size_t *nplain)
{
    int last = GW_TLS_WANT;
    for (int round = 0; round < 50; round++) {
        SSL_do_handshake(cli);
        char buf[16384];
        bool moved = false;
        int n;
        while ((n = BIO_read(cli_net, buf, sizeof buf)) > 0) {
            moved = true;
            if (gw_tls_feed(srv, buf, (size_t)n) != 0)
                return GW_TLS_ERROR;
        }
        last = gw_tls_read(srv, buf, sizeof buf);
        if (last > 0 && plain) {
            memcpy(plain + *nplain, buf, (size_t)last);
            *nplain += (size_t)last;
            moved = true;
        }
        size_t out;
        while ((out = gw_tls_take_output(srv, buf, sizeof buf)) > 0) {
            moved = true;
            BIO_write(cli_net, buf, (int)out);
        }
        if (last == GW_TLS_ERROR || last == GW_TLS_CLOSED)
            return last;
        if (!moved && round > 2)
            break;
    }
    return last;
}

struct client {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *net;
};

static void client_new(struct client *c, const char *sni, const char *alpn, int max_version)
{
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (max_version) {
        /* Allow the old protocol on our side so the refusal is the server's. */
        SSL_CTX_set_security_level(c->ctx, 0);
        SSL_CTX_set_cipher_list(c->ctx, "DEFAULT:@SECLEVEL=0");
        SSL_CTX_set_min_proto_version(c->ctx, 0);
        SSL_CTX_set_max_proto_version(c->ctx, max_version);
    }
    c->ssl = SSL_new(c->ctx);
    BIO *inner;
    BIO_new_bio_pair(&inner, 0, &c->net, 0);
    SSL_set_bio(c->ssl, inner, inner);
    SSL_set_connect_state(c->ssl);
    if (sni)
        SSL_set_tlsext_host_name(c->ssl, sni);
    if (alpn)
        SSL_set_alpn_protos(c->ssl, (const unsigned char *)alpn, (unsigned)strlen(alpn));
}

static void client_free(struct client *c)
{
    SSL_free(c->ssl);
    BIO_free(c->net);
    SSL_CTX_free(c->ctx);
}

static void peer_cn(SSL *ssl, char *cn, size_t len)
{
    X509 *x = SSL_get1_peer_certificate(ssl);
    cn[0] = 0;
    if (x)
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, (int)len);
    X509_free(x);
}

static void test_load_errors(void)
{
    struct gw_tls_certfile f = {"/nonexistent.pem", "/nonexistent.key"};
    struct gw_tls_ctxset *s = (void *)1;
    char err[256] = "";
    CHECK(gw_tls_ctxset_load(&f, 1, &s, err, sizeof err) < 0);
    CHECK(s == (void *)1);
    CHECK(strstr(err, "/nonexistent.pem") != NULL);
    /* A key that does not belong to the certificate: both files exist, so
     * the refusal is the mismatch, not a missing file. */
    CHECK(certs_write());
    char c[256], k[256];
    snprintf(c, sizeof c, "%s/a.pem", dir);
    snprintf(k, sizeof k, "%s/b.key", dir);
    f.cert = c;
    f.key = k;
    err[0] = '\0';
    CHECK(gw_tls_ctxset_load(&f, 1, &s, err, sizeof err) < 0);
    CHECK(s == (void *)1);
    CHECK(strstr(err, "b.key") != NULL);
    certs_remove();
}

static void lookup(struct gw_tls_ctxset *s)
{
    CHECK_INT(gw_tls_ctxset_lookup(s, "a.test"), 0);
    CHECK_INT(gw_tls_ctxset_lookup(s, "A.TEST"), 0);
    CHECK_INT(gw_tls_ctxset_lookup(s, "b.test"), 1);
    CHECK_INT(gw_tls_ctxset_lookup(s, "x.wild.test"), 2);
    CHECK_INT(gw_tls_ctxset_lookup(s, "exact.wild.test"), 1); /* exact beats wildcard */
    CHECK_INT(gw_tls_ctxset_lookup(s, "wild.test"), -1);
    CHECK_INT(gw_tls_ctxset_lookup(s, "y.x.wild.test"), -1);
    CHECK_INT(gw_tls_ctxset_lookup(s, "c.test"), -1);
    gw_tls_ctxset_unref(s);
}

static void test_lookup(void)
{
    with_certs(3, lookup);
}

static void handshake_case(struct gw_tls_ctxset *s, const char *sni, const char *want_cn,
                           int want_index)
{
    struct client c;
    client_new(&c, sni, "\x02h2\x08http/1.1", 0);
    struct gw_tls *t = gw_tls_new(s);
    int st = pump(c.ssl, c.net, t, NULL, NULL);
    CHECK(st == GW_TLS_WANT);
    CHECK(gw_tls_handshake_done(t));
    CHECK(SSL_is_init_finished(c.ssl));
    char cn[128];
    peer_cn(c.ssl, cn, sizeof cn);
    CHECK_STR(cn, want_cn);
    CHECK_INT(gw_tls_cert_index(t), want_index);
    CHECK(gw_tls_alpn_http11(t));
    CHECK(SSL_version(c.ssl) >= TLS1_2_VERSION);

    /* Application data both ways. */
    const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(SSL_write(c.ssl, req, (int)strlen(req)) == (int)strlen(req));
    char plain[1024];
    size_t np = 0;
    pump(c.ssl, c.net, t, plain, &np);
    CHECK_INT(np, strlen(req));
    CHECK(np == strlen(req) && memcmp(plain, req, np) == 0);
    CHECK_INT(gw_tls_write(t, "HTTP/1.1 200 OK\r\n\r\n", 19), 0);
    char buf[4096];
    size_t out = gw_tls_take_output(t, buf, sizeof buf);
    BIO_write(c.net, buf, (int)out);
    int n = SSL_read(c.ssl, buf, sizeof buf);
    CHECK_INT(n, 19);

    /* close_notify from the client. */
    SSL_shutdown(c.ssl);
    CHECK_INT(pump(c.ssl, c.net, t, NULL, NULL), GW_TLS_CLOSED);
    gw_tls_free(t);
    client_free(&c);
}

static void sni(struct gw_tls_ctxset *s)
{
    handshake_case(s, "a.test", "a.test", 0);
    handshake_case(s, "b.test", "b.test", 1);
    handshake_case(s, "foo.wild.test", "wild", 2);
    handshake_case(s, "unknown.test", "a.test", 0); /* default: first */
    handshake_case(s, NULL, "a.test", 0);
    gw_tls_ctxset_unref(s);
}

static void test_sni(void)
{
    with_certs(3, sni);
}

static void no_alpn(struct gw_tls_ctxset *s)
{
    struct client c;
    client_new(&c, "a.test", "\x02h2", 0); /* only h2 offered: no ALPN, still served */
    struct gw_tls *t = gw_tls_new(s);
    pump(c.ssl, c.net, t, NULL, NULL);
    CHECK(gw_tls_handshake_done(t));
    CHECK(!gw_tls_alpn_http11(t));
    gw_tls_free(t);
    client_free(&c);
    gw_tls_ctxset_unref(s);
}

static void test_no_alpn(void)
{
    with_certs(1, no_alpn);
}

static void old_protocol_refused(struct gw_tls_ctxset *s)
{
    struct client c;
    client_new(&c, "a.test", NULL, TLS1_1_VERSION);
    struct gw_tls *t = gw_tls_new(s);
    CHECK_INT(pump(c.ssl, c.net, t, NULL, NULL), GW_TLS_ERROR);
    CHECK(!gw_tls_handshake_done(t));
    CHECK(gw_tls_write(t, "x", 1) == GW_TLS_ERROR);
    gw_tls_free(t);
    client_free(&c);
    gw_tls_ctxset_unref(s);
}

static void test_old_protocol_refused(void)
{
    with_certs(1, old_protocol_refused);
}

static void garbage(struct gw_tls_ctxset *s)
{
    struct gw_tls *t = gw_tls_new(s);
    const char junk[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    CHECK_INT(gw_tls_feed(t, junk, strlen(junk)), 0);
    char buf[256];
    CHECK_INT(gw_tls_read(t, buf, sizeof buf), GW_TLS_ERROR);
    gw_tls_free(t);
    gw_tls_ctxset_unref(s);
}

static void test_garbage(void)
{
    with_certs(1, garbage);
}

/* A connection keeps its set after the owner dropped it (reload). */
static void set_outlives_reload(struct gw_tls_ctxset *s)
{
    struct client c;
    client_new(&c, "b.test", NULL, 0);
    struct gw_tls *t = gw_tls_new(s);
    gw_tls_ctxset_unref(s); /* swapped out for new connections */
    pump(c.ssl, c.net, t, NULL, NULL);
    CHECK(gw_tls_handshake_done(t));
    CHECK_INT(gw_tls_cert_index(t), 1);
    gw_tls_free(t);
    client_free(&c);
}

static void test_set_outlives_reload(void)
{
    with_certs(2, set_outlives_reload);
}

TEST_MAIN(TEST(test_load_errors), TEST(test_lookup), TEST(test_sni), TEST(test_no_alpn),
          TEST(test_old_protocol_refused), TEST(test_garbage), TEST(test_set_outlives_reload))
