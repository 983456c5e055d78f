/* tls.c - TLS termination on OpenSSL 3: one SSL_CTX per certificate chosen
 * by SNI, and a memory-BIO engine per client connection. */
#include "gateway/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct gw_tls_cert {
    SSL_CTX *ctx;
    char **names; /* DNS names, lower case; "*.x" for wildcards */
    size_t nnames;
};

struct gw_tls_ctxset {
    _Atomic int refs;
    struct gw_tls_cert *certs;
    size_t ncerts;
};

struct gw_tls {
    SSL *ssl;
    BIO *rbio, *wbio;          /* ciphertext in, ciphertext out; owned by ssl */
    struct gw_tls_ctxset *set; /* server side only */
    char last_error[96];       /* the reason of the last GW_TLS_ERROR */
    bool client;
};

static const unsigned char alpn_http11[] = "\x08http/1.1";
/* The gateway's listeners prefer h2 (gw_tls_offer_h2); other servers on this
 * engine (the echo upstream) speak HTTP/1.1 only. */
static const unsigned char alpn_h2_http11[] = "\x02h2\x08http/1.1";

static void set_err(char *err, size_t errlen, const char *what, const char *path)
{
    unsigned long e = ERR_get_error();
    char ebuf[160] = "";
    if (e)
        ERR_error_string_n(e, ebuf, sizeof ebuf);
    snprintf(err, errlen, "%s %s%s%s", what, path, e ? ": " : "", ebuf);
    ERR_clear_error();
}

static int add_name(struct gw_tls_cert *c, const char *name, size_t len)
{
    char **nn = realloc(c->names, (c->nnames + 1) * sizeof *nn);
    if (!nn)
        return -1;
    c->names = nn;
    char *s = malloc(len + 1);
    if (!s)
        return -1;
    for (size_t i = 0; i < len; i++)
        s[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
    s[len] = 0;
    c->names[c->nnames++] = s;
    return 0;
}

/* SNI names of a certificate: its DNS SubjectAltNames, else its CN. */
static int collect_names(struct gw_tls_cert *c, X509 *x)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int rv = 0;
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && rv == 0; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_DNS)
            continue;
        const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
        int len = ASN1_STRING_length(g->d.dNSName);
        if (len > 0 && memchr(d, 0, (size_t)len) == NULL)
            rv = add_name(c, (const char *)d, (size_t)len);
    }
    GENERAL_NAMES_free(gens);
    if (rv == 0 && c->nnames == 0) {
        char cn[256];
        int len =
            X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
        if (len > 0)
            rv = add_name(c, cn, (size_t)len);
    }
    return rv;
}

static bool name_matches(const char *pattern, const char *name)
{
    if (strcasecmp(pattern, name) == 0)
        return true;
    if (pattern[0] != '*' || pattern[1] != '.')
        return false;
    /* "*.example.com" covers exactly one label before ".example.com". */
    const char *dot = strchr(name, '.');
    return dot && dot != name && strcasecmp(dot, pattern + 1) == 0;
}

int gw_tls_ctxset_lookup(const struct gw_tls_ctxset *s, const char *name)
{
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < s->ncerts; i++)
            for (size_t j = 0; j < s->certs[i].nnames; j++) {
                const char *p = s->certs[i].names[j];
                bool wild = p[0] == '*';
                if ((pass == 0 && !wild && strcasecmp(p, name) == 0) ||
                    (pass == 1 && wild && name_matches(p, name)))
                    return (int)i;
            }
    return -1;
}

static int on_servername(SSL *ssl, int *alert, void *arg)
{
    const struct gw_tls_ctxset *s = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name)
        return SSL_TLSEXT_ERR_NOACK;
    int i = gw_tls_ctxset_lookup(s, name);
    if (i > 0 && !SSL_set_SSL_CTX(ssl, s->certs[i].ctx))
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    return SSL_TLSEXT_ERR_OK; /* unknown names get the default certificate */
}

static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    unsigned char *sel;
    bool h2 = SSL_get_app_data(ssl) != NULL;
    const unsigned char *ours = h2 ? alpn_h2_http11 : alpn_http11;
    unsigned int ourlen = h2 ? sizeof alpn_h2_http11 - 1 : sizeof alpn_http11 - 1;
    (void)arg;
    if (SSL_select_next_proto(&sel, outlen, ours, ourlen, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* e.g. h2 only: carry on without ALPN */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *new_ctx(const struct gw_tls_certfile *f, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        set_err(err, errlen, "cannot create TLS context for", f->cert);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    /* Idle keep-alive connections hold no record buffers. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, f->cert) != 1) {
        set_err(err, errlen, "cannot load certificate", f->cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, f->key, SSL_FILETYPE_PEM) != 1) {
        set_err(err, errlen, "cannot load key", f->key);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        set_err(err, errlen, "key does not match certificate", f->cert);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

static void set_free(struct gw_tls_ctxset *s)
{
    for (size_t i = 0; i < s->ncerts; i++) {
        SSL_CTX_free(s->certs[i].ctx);
        for (size_t j = 0; j < s->certs[i].nnames; j++)
            free(s->certs[i].names[j]);
        free(s->certs[i].names);
    }
    free(s->certs);
    free(s);
}

int gw_tls_ctxset_load(const struct gw_tls_certfile *files, size_t n, struct gw_tls_ctxset **out,
                       char *err, size_t errlen)
{
    if (n == 0) {
        snprintf(err, errlen, "no certificates");
        return -1;
    }
    struct gw_tls_ctxset *s = calloc(1, sizeof *s);
    if (!s || !(s->certs = calloc(n, sizeof *s->certs))) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    atomic_init(&s->refs, 1);
    for (size_t i = 0; i < n; i++) {
        struct gw_tls_cert *c = &s->certs[i];
        if (!(c->ctx = new_ctx(&files[i], err, errlen)))
            goto fail;
        s->ncerts = i + 1;
        if (collect_names(c, SSL_CTX_get0_certificate(c->ctx)) != 0) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        SSL_CTX_set_tlsext_servername_callback(c->ctx, on_servername);
        SSL_CTX_set_tlsext_servername_arg(c->ctx, s);
    }
    *out = s;
    return 0;
fail:
    set_free(s);
    return -1;
}

void gw_tls_ctxset_ref(struct gw_tls_ctxset *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void gw_tls_ctxset_unref(struct gw_tls_ctxset *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        set_free(s);
}

static struct gw_tls *engine_new(SSL_CTX *ctx)
{
    struct gw_tls *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ssl = SSL_new(ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        SSL_free(t->ssl);
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        free(t);
        return NULL;
    }
    /* An empty memory BIO means "retry later", not end of file. */
    BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    return t;
}

struct gw_tls *gw_tls_new_client(SSL_CTX *ctx, const char *sni, const char *check_host,
                                 SSL_SESSION *session)
{
    struct gw_tls *t = engine_new(ctx);
    if (!t)
        return NULL;
    SSL_set_connect_state(t->ssl);
    t->client = true;
    if ((sni != NULL && SSL_set_tlsext_host_name(t->ssl, sni) != 1) ||
        (check_host != NULL && SSL_set1_host(t->ssl, check_host) != 1) ||
        (session != NULL && SSL_set_session(t->ssl, session) != 1)) {
        ERR_clear_error();
        gw_tls_free(t);
        return NULL;
    }
    return t;
}

SSL *gw_tls_ssl(struct gw_tls *t)
{
    return t->ssl;
}

const char *gw_tls_failure(const struct gw_tls *t)
{
    long v = SSL_get_verify_result(t->ssl);
    if (v != X509_V_OK)
        return X509_verify_cert_error_string(v);
    return t->last_error[0] ? t->last_error : "handshake failed";
}

bool gw_tls_session_reused(const struct gw_tls *t)
{
    return SSL_session_reused(t->ssl) == 1;
}

struct gw_tls *gw_tls_new(struct gw_tls_ctxset *s)
{
    struct gw_tls *t = engine_new(s->certs[0].ctx);
    if (!t)
        return NULL;
    SSL_set_accept_state(t->ssl);
    gw_tls_ctxset_ref(s);
    t->set = s;
    return t;
}

void gw_tls_free(struct gw_tls *t)
{
    if (!t)
        return;
    /* A client session stays resumable although the connection ends without
     * close_notify (OpenSSL would mark it "bad"), unless it failed. */
    if (t->client && t->last_error[0] == '\0' && SSL_is_init_finished(t->ssl))
        SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN);
    SSL_free(t->ssl);
    gw_tls_ctxset_unref(t->set);
    free(t);
}

int gw_tls_feed(struct gw_tls *t, const void *data, size_t len)
{
    if (len > 0x7fffffff || BIO_write(t->rbio, data, (int)len) != (int)len)
        return GW_TLS_ERROR;
    return 0;
}

static int status_of(struct gw_tls *t, int rv)
{
    int e = SSL_get_error(t->ssl, rv);
    if (e == SSL_ERROR_SSL) {
        unsigned long code = ERR_peek_last_error();
        const char *why = code ? ERR_reason_error_string(code) : NULL;
        snprintf(t->last_error, sizeof t->last_error, "%s", why ? why : "protocol error");
    }
    ERR_clear_error(); /* errors of one connection never leak into another's */
    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return GW_TLS_WANT;
    case SSL_ERROR_ZERO_RETURN:
        return GW_TLS_CLOSED;
    default:
        return GW_TLS_ERROR;
    }
}

int gw_tls_read(struct gw_tls *t, void *buf, size_t cap)
{
    if (!SSL_is_init_finished(t->ssl)) {
        int rv = SSL_do_handshake(t->ssl);
        if (rv != 1)
            return status_of(t, rv);
    }
    size_t n = 0;
    int rv = SSL_read_ex(t->ssl, buf, cap, &n);
    return rv == 1 ? (int)n : status_of(t, rv);
}

int gw_tls_write(struct gw_tls *t, const void *data, size_t len)
{
    if (!SSL_is_init_finished(t->ssl))
        return GW_TLS_ERROR;
    size_t n = 0;
    /* The write BIO is a growing memory buffer, so SSL_write takes it all. */
    if (len == 0)
        return 0;
    if (SSL_write_ex(t->ssl, data, len, &n) != 1 || n != len) {
        ERR_clear_error();
        return GW_TLS_ERROR;
    }
    return 0;
}

void gw_tls_shutdown(struct gw_tls *t)
{
    if (SSL_is_init_finished(t->ssl))
        SSL_shutdown(t->ssl);
    ERR_clear_error();
}

size_t gw_tls_take_output(struct gw_tls *t, void *buf, size_t cap)
{
    size_t n = 0;
    if (cap == 0 || BIO_read_ex(t->wbio, buf, cap, &n) != 1)
        return 0;
    return n;
}

size_t gw_tls_output_pending(const struct gw_tls *t)
{
    return BIO_ctrl_pending(t->wbio);
}

bool gw_tls_handshake_done(const struct gw_tls *t)
{
    return SSL_is_init_finished(t->ssl);
}

const char *gw_tls_servername(const struct gw_tls *t)
{
    return SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
}

int gw_tls_cert_index(const struct gw_tls *t)
{
    SSL_CTX *ctx = SSL_get_SSL_CTX(t->ssl);
    for (size_t i = 0; i < t->set->ncerts; i++)
        if (t->set->certs[i].ctx == ctx)
            return (int)i;
    return -1;
}

void gw_tls_offer_h2(struct gw_tls *t)
{
    SSL_set_app_data(t->ssl, t);
}

bool gw_tls_alpn_h2(const struct gw_tls *t)
{
    const unsigned char *p;
    unsigned int len;
    SSL_get0_alpn_selected(t->ssl, &p, &len);
    return len == 2 && memcmp(p, "h2", 2) == 0;
}

bool gw_tls_alpn_http11(const struct gw_tls *t)
{
    const unsigned char *p;
    unsigned int len;
    SSL_get0_alpn_selected(t->ssl, &p, &len);
    return len == 8 && memcmp(p, "http/1.1", 8) == 0;
}
