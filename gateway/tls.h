/* tls.h - TLS termination for client connections: certificate sets chosen by
 * SNI, and a per-connection TLS engine over memory BIOs that the connection
 * code drives with the bytes it reads and writes (OpenSSL does all crypto).
 *
 * Threads and ownership: a gw_tls_ctxset is immutable once loaded and
 * refcounted (atomically), so a reload builds a new set and swaps it in for
 * new connections while existing connections keep the set they started with.
 * A gw_tls belongs to one connection on one worker thread and holds one
 * reference on its set until gw_tls_free().
 */
#ifndef GV_GATEWAY_TLS_H
#define GV_GATEWAY_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct gw_tls_ctxset;
struct gw_tls;

struct gw_tls_certfile {
    const char *cert; /* PEM chain, leaf first */
    const char *key;  /* PEM private key */
};

/* Loads one SSL_CTX per certificate (TLS 1.2+, ALPN http/1.1, SNI by the
 * certificate's DNS SubjectAltNames, or its CN when it has none; the first
 * certificate is the default). Returns 0 and a set with one reference, or a
 * negative error with a message in err; *out is unchanged on error. */
int gw_tls_ctxset_load(const struct gw_tls_certfile *files, size_t n, struct gw_tls_ctxset **out,
                       char *err, size_t errlen);
void gw_tls_ctxset_ref(struct gw_tls_ctxset *s);
void gw_tls_ctxset_unref(struct gw_tls_ctxset *s);
/* Index of the certificate that serves `name` (exact, then "*.domain"
 * wildcard, case-insensitive), or -1 when none does. */
int gw_tls_ctxset_lookup(const struct gw_tls_ctxset *s, const char *name);

/* A server-side TLS engine for one connection; takes a reference on s.
 * Returns NULL when out of memory. */
struct gw_tls *gw_tls_new(struct gw_tls_ctxset *s);
void gw_tls_free(struct gw_tls *t);

/* A client-side TLS engine (upstream connections) on ctx: sends sni when not
 * NULL, checks the peer's certificate against check_host (a DNS name or an
 * IP address) when not NULL (the ctx decides whether the chain is verified),
 * and offers session for resumption when not NULL. The handshake starts at
 * the first gw_tls_read(). Returns NULL when out of memory or a name is
 * refused. */
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_session_st SSL_SESSION;
typedef struct ssl_st SSL;
struct gw_tls *gw_tls_new_client(SSL_CTX *ctx, const char *sni, const char *check_host,
                                 SSL_SESSION *session);
SSL *gw_tls_ssl(struct gw_tls *t);
/* Why the handshake failed: the certificate verification error when there
 * is one, else the last OpenSSL reason. Never NULL. */
const char *gw_tls_failure(const struct gw_tls *t);
/* Whether the handshake resumed an earlier session. */
bool gw_tls_session_reused(const struct gw_tls *t);

/* Result codes besides byte counts. */
#define GW_TLS_WANT   0  /* needs more input (or nothing to do yet) */
#define GW_TLS_CLOSED -1 /* the peer sent close_notify */
#define GW_TLS_ERROR  -2 /* handshake or record failure: close the connection */

/* Hands ciphertext read from the socket to the engine. Returns 0 or
 * GW_TLS_ERROR. */
int gw_tls_feed(struct gw_tls *t, const void *data, size_t len);
/* Drives the handshake and decrypts: returns the number of plaintext bytes
 * put in buf (> 0), GW_TLS_WANT, GW_TLS_CLOSED or GW_TLS_ERROR. After each
 * call the caller sends what gw_tls_take_output() gives (handshake records,
 * alerts). */
int gw_tls_read(struct gw_tls *t, void *buf, size_t cap);
/* Encrypts len bytes (all of them, or GW_TLS_ERROR; fails before the
 * handshake is done). Ciphertext then comes from gw_tls_take_output(). */
int gw_tls_write(struct gw_tls *t, const void *data, size_t len);
/* Queues a close_notify alert (send it with gw_tls_take_output()). */
void gw_tls_shutdown(struct gw_tls *t);
/* Moves up to cap bytes of ciphertext to send into buf; returns the count
 * (0 when there is nothing to send). */
size_t gw_tls_take_output(struct gw_tls *t, void *buf, size_t cap);
size_t gw_tls_output_pending(const struct gw_tls *t);

bool gw_tls_handshake_done(const struct gw_tls *t);
/* The SNI name the client sent, or NULL. */
const char *gw_tls_servername(const struct gw_tls *t);
/* Index of the certificate chosen for this connection. */
int gw_tls_cert_index(const struct gw_tls *t);
/* Makes the engine offer h2 before http/1.1 in ALPN (the gateway's
 * listeners; call before the handshake). */
void gw_tls_offer_h2(struct gw_tls *t);
/* Whether h2 was negotiated by ALPN. */
bool gw_tls_alpn_h2(const struct gw_tls *t);
/* Whether http/1.1 was negotiated by ALPN. */
bool gw_tls_alpn_http11(const struct gw_tls *t);

/* The certificate set that new connections use, replaced on reload. Any
 * thread may call gw_tls_slot_get(); reload and free belong to the owner. */
struct gw_tls_slot;
/* Loads the files (paths are copied). Returns 0, or a negative error with a
 * message in err. */
int gw_tls_slot_new(const struct gw_tls_certfile *files, size_t n, struct gw_tls_slot **out,
                    char *err, size_t errlen);
/* Re-reads the same files; on error the current set stays and err says why. */
int gw_tls_slot_reload(struct gw_tls_slot *slot, char *err, size_t errlen);
/* The current set with a new reference (drop it with gw_tls_ctxset_unref). */
struct gw_tls_ctxset *gw_tls_slot_get(struct gw_tls_slot *slot);
void gw_tls_slot_free(struct gw_tls_slot *slot);

/* Glue for gateway/conn.c (worker thread). A TLS client connection has
 * c->tls set; what the socket reads goes through gw_tls_conn_decrypt() and
 * what gw_conn_write() is given goes through gw_tls_conn_encrypt(). */
struct gw_conn;
/* Feeds ciphertext; sends handshake records; points *plain at the decrypted
 * bytes (valid until the next call on this thread). Returns their count, 0
 * when there are none yet, UV_EOF on close_notify, or a negative error. */
long gw_tls_conn_decrypt(struct gw_conn *c, const char *data, size_t len, const char **plain);
/* Encrypts and writes through gw_conn_write(). Returns 0 or a negative error. */
int gw_tls_conn_encrypt(struct gw_conn *c, const void *data, size_t len);

#endif
