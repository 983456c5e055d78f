/* tls_conn.c - TLS as a client-connection transport: the glue between the
 * socket reads and writes of gateway/conn.c and the gw_tls engine. */
#include "gateway/pipeline.h"
#include "gateway/tls.h"
#include "common/err.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Plaintext of one socket read; a worker thread handles one read at a time
 * and conn.c copies what it keeps. Larger than one read (64 KiB) plus one
 * partial record left from the last, so every complete record is decrypted
 * at once and nothing waits in OpenSSL for a socket read that may not come. */
static _Thread_local char plain_buf[96 * 1024];

static int flush_out(struct gw_conn *c)
{
    char buf[16 * 1024];
    size_t n;
    int rv = 0;
    c->tls_raw = true;
    while (rv == 0 && (n = gw_tls_take_output(c->tls, buf, sizeof buf)) > 0)
        rv = gw_conn_write(c, buf, n);
    c->tls_raw = false;
    return rv;
}

long gw_tls_conn_decrypt(struct gw_conn *c, const char *data, size_t len, const char **plain)
{
    *plain = plain_buf;
    if (gw_tls_feed(c->tls, data, len) != 0)
        return UV_ENOMEM;
    size_t got = 0;
    int st = GW_TLS_WANT;
    while (got < sizeof plain_buf) {
        st = gw_tls_read(c->tls, plain_buf + got, sizeof plain_buf - got);
        if (st <= 0)
            break;
        got += (size_t)st;
    }
    int frv = flush_out(c); /* handshake records, alerts, session tickets */
    if (got > 0)
        return (long)got;
    if (st == GW_TLS_CLOSED)
        return UV_EOF;
    if (st == GW_TLS_ERROR || frv < 0)
        return UV_EPROTO; /* a failed handshake ends this connection only */
    return 0;
}

int gw_tls_conn_encrypt(struct gw_conn *c, const void *data, size_t len)
{
    if (gw_tls_write(c->tls, data, len) != 0)
        return UV_EPROTO;
    return flush_out(c);
}

/* ---- the slot new connections take their set from ---------------------- */

struct gw_tls_slot {
    pthread_mutex_t mu;
    struct gw_tls_ctxset *set;
    struct gw_tls_certfile *files;
    size_t n;
};

void gw_tls_slot_free(struct gw_tls_slot *slot)
{
    if (slot == NULL)
        return;
    for (size_t i = 0; i < slot->n; i++) {
        free((char *)slot->files[i].cert);
        free((char *)slot->files[i].key);
    }
    free(slot->files);
    gw_tls_ctxset_unref(slot->set);
    pthread_mutex_destroy(&slot->mu);
    free(slot);
}

int gw_tls_slot_new(const struct gw_tls_certfile *files, size_t n, struct gw_tls_slot **out,
                    char *err, size_t errlen)
{
    struct gw_tls_slot *slot = calloc(1, sizeof *slot);
    if (slot == NULL || (slot->files = calloc(n ? n : 1, sizeof *slot->files)) == NULL) {
        free(slot);
        snprintf(err, errlen, "out of memory");
        return GV_ENOMEM;
    }
    pthread_mutex_init(&slot->mu, NULL);
    for (size_t i = 0; i < n; i++, slot->n++) {
        slot->files[i].cert = strdup(files[i].cert);
        slot->files[i].key = strdup(files[i].key);
        if (!slot->files[i].cert || !slot->files[i].key) {
            slot->n++;
            snprintf(err, errlen, "out of memory");
            gw_tls_slot_free(slot);
            return GV_ENOMEM;
        }
    }
    if (gw_tls_ctxset_load(slot->files, slot->n, &slot->set, err, errlen) != 0) {
        gw_tls_slot_free(slot);
        return GV_EINVAL;
    }
    *out = slot;
    return 0;
}

int gw_tls_slot_reload(struct gw_tls_slot *slot, char *err, size_t errlen)
{
    struct gw_tls_ctxset *fresh = NULL;
    if (gw_tls_ctxset_load(slot->files, slot->n, &fresh, err, errlen) != 0)
        return GV_EINVAL;
    pthread_mutex_lock(&slot->mu);
    struct gw_tls_ctxset *old = slot->set;
    slot->set = fresh;
    pthread_mutex_unlock(&slot->mu);
    gw_tls_ctxset_unref(old); /* connections using it hold their own refs */
    return 0;
}

struct gw_tls_ctxset *gw_tls_slot_get(struct gw_tls_slot *slot)
{
    pthread_mutex_lock(&slot->mu);
    struct gw_tls_ctxset *s = slot->set;
    gw_tls_ctxset_ref(s);
    pthread_mutex_unlock(&slot->mu);
    return s;
}
