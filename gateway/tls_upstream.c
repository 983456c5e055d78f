/* tls_upstream.c - client TLS contexts for upstream services and their
 * per-target session cache. */
#include "gateway/tls_upstream.h"
#include "gateway/tls.h"
#include "common/err.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SESSION_SLOTS 64 /* targets whose last session is kept, per service */

struct session_slot {
    char *address;
    SSL_SESSION *sess;
};

struct gw_up_tls {
    _Atomic int refs;
    SSL_CTX *ctx;
    bool verify;
    char *server_name;
    pthread_mutex_t mu;
    struct session_slot slots[SESSION_SLOTS];
    size_t next_slot; /* round robin replacement when full */
};

static const unsigned char alpn_http11[] = "\x08http/1.1";
static int ex_index = -1; /* SSL ex_data: the connection's session cache key */
static pthread_once_t ex_once = PTHREAD_ONCE_INIT;

static void ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    free(ptr);
}

static void ex_init(void)
{
    ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, ex_free);
}

/* OpenSSL hands over each new session (TLS 1.3: each ticket); keep the last
 * one per target. Returns 1: the reference is ours. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct gw_up_tls *u = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    const char *address = SSL_get_ex_data(ssl, ex_index);
    if (u == NULL || address == NULL)
        return 0;
    pthread_mutex_lock(&u->mu);
    struct session_slot *slot = NULL;
    for (size_t i = 0; i < SESSION_SLOTS && slot == NULL; i++)
        if (u->slots[i].address != NULL && strcmp(u->slots[i].address, address) == 0)
            slot = &u->slots[i];
    for (size_t i = 0; i < SESSION_SLOTS && slot == NULL; i++)
        if (u->slots[i].address == NULL)
            slot = &u->slots[i];
    if (slot == NULL) {
        slot = &u->slots[u->next_slot++ % SESSION_SLOTS];
        free(slot->address);
        slot->address = NULL;
    }
    if (slot->address == NULL && (slot->address = strdup(address)) == NULL) {
        pthread_mutex_unlock(&u->mu);
        return 0;
    }
    SSL_SESSION_free(slot->sess);
    slot->sess = sess;
    pthread_mutex_unlock(&u->mu);
    return 1;
}

/* The last session for address with a new reference, or NULL. */
static SSL_SESSION *session_get(struct gw_up_tls *u, const char *address)
{
    SSL_SESSION *s = NULL;
    pthread_mutex_lock(&u->mu);
    for (size_t i = 0; i < SESSION_SLOTS; i++)
        if (u->slots[i].address != NULL && strcmp(u->slots[i].address, address) == 0) {
            s = u->slots[i].sess;
            if (s != NULL && SSL_SESSION_is_resumable(s))
                SSL_SESSION_up_ref(s);
            else
                s = NULL;
            break;
        }
    pthread_mutex_unlock(&u->mu);
    return s;
}

static void set_err(char *err, size_t errlen, const char *what, const char *path)
{
    unsigned long e = ERR_get_error();
    char ebuf[160] = "";
    if (e)
        ERR_error_string_n(e, ebuf, sizeof ebuf);
    snprintf(err, errlen, "%s%s%s%s", what, path, e ? ": " : "", ebuf);
    ERR_clear_error();
}

static void up_tls_free(struct gw_up_tls *u)
{
    for (size_t i = 0; i < SESSION_SLOTS; i++) {
        free(u->slots[i].address);
        SSL_SESSION_free(u->slots[i].sess);
    }
    SSL_CTX_free(u->ctx);
    free(u->server_name);
    pthread_mutex_destroy(&u->mu);
    free(u);
}

int gw_up_tls_new(const struct lb_tls_spec *spec, struct gw_up_tls **out, char *err, size_t errlen)
{
    pthread_once(&ex_once, ex_init);
    struct gw_up_tls *u = calloc(1, sizeof *u);
    if (u == NULL) {
        snprintf(err, errlen, "out of memory");
        return GV_ENOMEM;
    }
    atomic_init(&u->refs, 1);
    pthread_mutex_init(&u->mu, NULL);
    u->verify = spec->verify;
    if (spec->server_name != NULL && (u->server_name = strdup(spec->server_name)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if ((u->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
        set_err(err, errlen, "cannot create a TLS context", "");
        goto fail;
    }
    SSL_CTX_set_min_proto_version(u->ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(u->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(u->ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_alpn_protos(u->ctx, alpn_http11, sizeof alpn_http11 - 1);
    SSL_CTX_set_app_data(u->ctx, u);
    SSL_CTX_set_session_cache_mode(u->ctx,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(u->ctx, on_new_session);
    if (spec->verify) {
        SSL_CTX_set_verify(u->ctx, SSL_VERIFY_PEER, NULL);
        /* The bundle is read here, whole: a hashed directory would be read
         * lazily, during handshakes, on a worker loop. */
        const char *file = spec->ca_file;
        if (file == NULL) {
            file = getenv(X509_get_default_cert_file_env());
            if (file == NULL)
                file = X509_get_default_cert_file();
        }
        if (SSL_CTX_load_verify_file(u->ctx, file) != 1) {
            set_err(err, errlen, "cannot load CA file ", file);
            goto fail;
        }
    }
    *out = u;
    return 0;
fail:
    up_tls_free(u);
    return GV_EINVAL;
}

void gw_up_tls_ref(struct gw_up_tls *u)
{
    atomic_fetch_add_explicit(&u->refs, 1, memory_order_relaxed);
}

void gw_up_tls_unref(struct gw_up_tls *u)
{
    if (u != NULL && atomic_fetch_sub_explicit(&u->refs, 1, memory_order_acq_rel) == 1)
        up_tls_free(u);
}

static bool is_ip(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

struct gw_tls *gw_up_tls_client(struct gw_up_tls *u, const char *host, const char *address)
{
    const char *name = u->server_name ? u->server_name : host;
    const char *sni = is_ip(name) ? NULL : name; /* SNI carries DNS names only */
    SSL_SESSION *sess = session_get(u, address);
    struct gw_tls *t = gw_tls_new_client(u->ctx, sni, u->verify ? name : NULL, sess);
    SSL_SESSION_free(sess); /* the SSL holds its own reference */
    if (t == NULL)
        return NULL;
    char *key = strdup(address);
    if (key == NULL || SSL_set_ex_data(gw_tls_ssl(t), ex_index, key) != 1) {
        free(key);
        gw_tls_free(t);
        return NULL;
    }
    return t;
}

void gw_up_tls_offer_h2(struct gw_tls *t)
{
    static const unsigned char alpn_h2[] = "\x02h2";
    SSL_set_alpn_protos(gw_tls_ssl(t), alpn_h2, sizeof alpn_h2 - 1);
}
