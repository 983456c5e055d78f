/* tls_upstream_test.c - upstream TLS contexts: verification against a CA
 * file, the host name check (DNS name or IP address), verify off, a CA file
 * that does not load, and session resumption per target, driven by an
 * in-memory handshake between a gw_up_tls client and a gw_tls server. */
#include "gateway/tls.h"
#include "gateway/tls_upstream.h"
#include "test.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static char cert_path[256], key_path[256], other_path[256];
static struct gw_tls_ctxset *server; /* one set: its ticket keys resume sessions */

/* A self-signed P-256 certificate (its own CA) written as PEM. false when
 * it cannot be made or written. */
static bool make_cert(const char *cert, const char *key, const char *cn, const char *san)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    bool ok = k != NULL && x != NULL;
    if (ok) {
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), -60);
        X509_gmtime_adj(X509_getm_notAfter(x), 86400);
        X509_set_pubkey(x, k);
        X509_NAME *n = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
        X509_set_issuer_name(x, n);
        X509V3_CTX v3;
        X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
        ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
        X509_EXTENSION_free(ext);
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
        ok = ok && ext != NULL && X509_add_ext(x, ext, -1) == 1;
        X509_EXTENSION_free(ext);
        ok = ok && X509_sign(x, k, EVP_sha256()) > 0;
    }
    FILE *f = ok ? fopen(cert, "w") : NULL;
    ok = f != NULL && PEM_write_X509(f, x) == 1;
    if (f != NULL)
        ok = fclose(f) == 0 && ok;
    if (ok && key != NULL) {
        f = fopen(key, "w");
        ok = f != NULL && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1;
        if (f != NULL)
            ok = fclose(f) == 0 && ok;
    }
    X509_free(x);
    EVP_PKEY_free(k);
    return ok;
}

static struct gw_tls_ctxset *server_set(void)
{
    struct gw_tls_certfile f = {.cert = cert_path, .key = key_path};
    struct gw_tls_ctxset *s = NULL;
    char err[256] = "";
    if (gw_tls_ctxset_load(&f, 1, &s, err, sizeof err) != 0)
        fprintf(stderr, "server set: %s\n", err);
    return s;
}

/* Moves records between the engines until neither has anything to send.
 * Returns the client's last gw_tls_read() status. */
static int pump(struct gw_tls *cli, struct gw_tls *srv)
{
    char buf[32 * 1024], plain[1024];
    int cst = GW_TLS_WANT;
    for (int round = 0; round < 20; round++) {
        cst = gw_tls_read(cli, plain, sizeof plain);
        size_t moved = 0, n;
        while ((n = gw_tls_take_output(cli, buf, sizeof buf)) > 0) {
            gw_tls_feed(srv, buf, n);
            moved += n;
        }
        int sst = gw_tls_read(srv, plain, sizeof plain);
        while ((n = gw_tls_take_output(srv, buf, sizeof buf)) > 0) {
            gw_tls_feed(cli, buf, n);
            moved += n;
        }
        if (cst == GW_TLS_ERROR || sst == GW_TLS_ERROR || moved == 0)
            break;
    }
    return cst;
}

/* The fixture: the upstream's certificate (its own CA, for up.test and
 * 127.0.0.1) and key, another CA, and the server set made of the first.
 * false when any of it cannot be written or loaded. */
static bool fixture_up(void)
{
    snprintf(dir, sizeof dir, "/tmp/gv_up_tls_test_XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        dir[0] = '\0';
        return false;
    }
    snprintf(cert_path, sizeof cert_path, "%s/up.pem", dir);
    snprintf(key_path, sizeof key_path, "%s/up.key", dir);
    snprintf(other_path, sizeof other_path, "%s/other.pem", dir);
    if (!make_cert(cert_path, key_path, "up.test", "DNS:up.test,IP:127.0.0.1") ||
        !make_cert(other_path, NULL, "other CA", "DNS:other.test"))
        return false;
    server = server_set();
    return server != NULL;
}

static void fixture_down(void)
{
    gw_tls_ctxset_unref(server);
    server = NULL;
    if (dir[0] == '\0')
        return;
    unlink(cert_path);
    unlink(key_path);
    unlink(other_path);
    rmdir(dir);
    dir[0] = '\0';
}

/* Runs body with the fixture up; a fixture that cannot be made fails the
 * calling test instead of letting body judge a handshake with no server. */
static void with_fixture(void (*body)(void))
{
    bool up = fixture_up();
    CHECK(up);
    if (up)
        body();
    fixture_down();
}

struct result {
    bool done, resumed;
    char failure[128];
};

static struct result connect_once(struct gw_up_tls *u, const char *host, const char *address)
{
    struct result res = {0};
    struct gw_tls_ctxset *set = server;
    struct gw_tls *srv = gw_tls_new(set);
    struct gw_tls *cli = gw_up_tls_client(u, host, address);
    CHECK(srv != NULL && cli != NULL);
    if (srv == NULL || cli == NULL)
        goto out;
    int st = pump(cli, srv);
    res.done = st != GW_TLS_ERROR && gw_tls_handshake_done(cli) && gw_tls_handshake_done(srv);
    res.resumed = gw_tls_session_reused(cli);
    if (!res.done)
        snprintf(res.failure, sizeof res.failure, "%s", gw_tls_failure(cli));
    if (res.done) {
        /* Data both ways, and the server's session tickets reach the client. */
        char plain[64];
        CHECK_INT(gw_tls_write(cli, "ping", 4), 0);
        pump(cli, srv);
        CHECK_INT(gw_tls_write(srv, "pong", 4), 0);
        char buf[4096];
        size_t n = gw_tls_take_output(srv, buf, sizeof buf);
        gw_tls_feed(cli, buf, n);
        CHECK_INT(gw_tls_read(cli, plain, sizeof plain), 4);
        CHECK(memcmp(plain, "pong", 4) == 0);
    }
out:
    gw_tls_free(cli);
    gw_tls_free(srv);
    return res;
}

static struct gw_up_tls *ctx(bool verify, const char *ca, const char *name)
{
    struct lb_tls_spec spec = {
        .enabled = true, .verify = verify, .ca_file = (char *)ca, .server_name = (char *)name};
    struct gw_up_tls *u = NULL;
    char err[256] = "";
    int rv = gw_up_tls_new(&spec, &u, err, sizeof err);
    CHECK_INT(rv, 0);
    if (rv != 0)
        fprintf(stderr, "ctx: %s\n", err);
    return u;
}

static void verified(void)
{
    struct gw_up_tls *u = ctx(true, cert_path, "up.test");
    struct result r = connect_once(u, "10.9.9.9", "10.9.9.9:443");
    CHECK(r.done);
    gw_up_tls_unref(u);
    /* No server_name: the target's host is checked, here an IP address. */
    u = ctx(true, cert_path, NULL);
    r = connect_once(u, "127.0.0.1", "127.0.0.1:443");
    CHECK(r.done);
    r = connect_once(u, "127.0.0.2", "127.0.0.2:443");
    CHECK(!r.done);
    CHECK(strstr(r.failure, "mismatch") != NULL);
    gw_up_tls_unref(u);
}

static void test_verified(void)
{
    with_fixture(verified);
}

static void refused(void)
{
    struct gw_up_tls *u = ctx(true, cert_path, "other.test");
    struct result r = connect_once(u, "127.0.0.1", "127.0.0.1:443");
    CHECK(!r.done);
    CHECK_STR(r.failure, "hostname mismatch");
    gw_up_tls_unref(u);
    /* Another CA: the chain does not verify. */
    u = ctx(true, other_path, "up.test");
    r = connect_once(u, "127.0.0.1", "127.0.0.1:443");
    CHECK(!r.done);
    CHECK(strstr(r.failure, "certificate") != NULL);
    gw_up_tls_unref(u);
    /* Verification off: any certificate, any name. */
    u = ctx(false, NULL, "other.test");
    r = connect_once(u, "127.0.0.1", "127.0.0.1:443");
    CHECK(r.done);
    gw_up_tls_unref(u);
}

static void test_refused(void)
{
    with_fixture(refused);
}

static void test_bad_ca_file(void)
{
    struct lb_tls_spec spec = {.enabled = true, .verify = true, .ca_file = "/nonexistent/ca.pem"};
    struct gw_up_tls *u = NULL;
    char err[256] = "";
    CHECK(gw_up_tls_new(&spec, &u, err, sizeof err) < 0);
    CHECK(u == NULL);
    CHECK(strstr(err, "/nonexistent/ca.pem") != NULL);
}

static void resumption(void)
{
    struct gw_up_tls *u = ctx(true, cert_path, "up.test");
    struct result r = connect_once(u, "h", "h:443");
    CHECK(r.done && !r.resumed);
    r = connect_once(u, "h", "h:443");
    CHECK(r.done && r.resumed);
    /* Another target has no session yet. */
    r = connect_once(u, "h2", "h2:443");
    CHECK(r.done && !r.resumed);
    gw_up_tls_unref(u);
}

static void test_resumption(void)
{
    with_fixture(resumption);
}

TEST_MAIN(TEST(test_verified), TEST(test_refused), TEST(test_bad_ca_file), TEST(test_resumption))
