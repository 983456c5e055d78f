/* nng_transport.c - gossip datagrams over nng push/pull (tcp://), sealed with
 * the cluster keyring; nng threads only enqueue and wake the cluster loop.
 *
 * Why push/pull and not pair1 in polyamorous mode: pair1 poly puts every peer
 * on one socket, so sending means tracking nng pipe ids per peer and mapping
 * accepted pipes (whose remote address is an ephemeral port) back to peer
 * addresses; a connection lost and redialed changes the pipe id, and the
 * mode is deprecated in nng 1.x and gone in 2.0. Push/pull gives each
 * direction its own connection, owned and redialed by the sender, with a
 * per-peer send buffer that bounds what waits for an unreachable peer: a
 * datagram service, which is what SWIM assumes. The cost is two TCP
 * connections per pair of nodes that talk, which is fine at 100 nodes.
 */
#include "cluster/nng_transport.h"

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

#define PEER_BUCKETS      (CL_NNG_MAX_PEERS * 2)
#define SWEEP_INTERVAL_MS 30000
#define DRAIN_BATCH       256
#define WARN_INTERVAL_MS  60000
#define URL_MAX           (CL_NNG_MAX_ADDR + 16)

static const uint8_t frame_magic[3] = {'G', 'V', 'T'};

struct cl_nng_peer {
    struct cl_nng_peer *hnext; /* hash chain */
    struct cl_nng_peer *prev;  /* recency list: head is the most recent */
    struct cl_nng_peer *next;
    nng_socket sock;
    uint64_t last_used_ms;
    bool kept; /* a live member's: not closed for being idle */
    char addr[];
};

struct cl_nng_counters {
    atomic_uint_fast64_t out_messages, out_bytes, out_dropped, out_blocked;
    atomic_uint_fast64_t in_messages, in_bytes, in_dropped, in_blocked;
    atomic_uint_fast64_t in_auth_failed, in_malformed, in_replayed, peers;
};

struct cl_nng_transport {
    uv_loop_t *loop;
    uv_async_t async;
    uv_timer_t sweep;
    int closing_handles;
    struct cl_keyring *keyring;
    cl_receive_fn receive;
    void *receive_arg;
    cl_nng_stopped_fn stopped;
    void *stopped_arg;
    int stopping; /* loop thread only */

    nng_socket pull;
    nng_aio *aio;
    uint16_t port;
    char advertise[CL_NNG_MAX_ADDR + 1];

    /* Shared with nng's threads and other callers, under lock. */
    uv_mutex_t lock;
    int closing;
    nng_msg *queue[CL_NNG_RECV_QUEUE];
    size_t qhead, qcount;
    char **blocked;
    size_t nblocked;

    /* Loop thread only. */
    struct cl_nng_peer *buckets[PEER_BUCKETS];
    struct cl_nng_peer *recent, *oldest;
    size_t npeers, max_peers;
    uint8_t scratch[CL_NNG_MAX_FRAME];
    uint64_t warned_auth_ms, warned_plain_ms;

    struct cl_nng_counters c;
};

static void count(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* nng error codes to grapevine's negated errno values. */
static int nng_to_gv(int rv)
{
    switch (rv) {
    case 0:
        return 0;
    case NNG_ENOMEM:
        return GV_ENOMEM;
    case NNG_EADDRINUSE:
        return -EADDRINUSE;
    case NNG_EADDRINVAL:
    case NNG_EINVAL:
        return GV_EINVAL;
    case NNG_EPERM:
        return -EACCES;
    case NNG_EAGAIN:
        return GV_EAGAIN;
    case NNG_ETIMEDOUT:
        return GV_ETIMEDOUT;
    default:
        return GV_EIO;
    }
}

/* Builds "tcp://HOST:PORT" from "host:port" ("[v6]:port" kept bracketed).
 * A listener may ask for port 0 (any free port), which gv_split_hostport()
 * refuses, so that case is checked with a stand-in port. Returns 0 or
 * GV_EINVAL. */
static int make_url(const char *addr, int listener, char *url, size_t urllen, char *host,
                    size_t hostlen, uint16_t *port)
{
    char probe[CL_NNG_MAX_ADDR + 2];
    size_t n = strlen(addr);
    int any = 0;

    if (n == 0 || n > CL_NNG_MAX_ADDR)
        return GV_EINVAL;
    if (listener && n > 2 && strcmp(addr + n - 2, ":0") == 0 && addr[n - 3] != ':') {
        snprintf(probe, sizeof(probe), "%.*s:1", (int)(n - 2), addr);
        addr = probe;
        any = 1;
    }
    if (gv_split_hostport(addr, host, hostlen, port) < 0)
        return GV_EINVAL;
    if (any)
        *port = 0;
    if (strchr(host, ':'))
        snprintf(url, urllen, "tcp://[%s]:%u", host, (unsigned)*port);
    else
        snprintf(url, urllen, "tcp://%s:%u", host, (unsigned)*port);
    return 0;
}

int cl_nng_frame_encode(const char *from, const uint8_t *data, size_t len, uint8_t *out,
                        size_t outcap)
{
    size_t flen = strlen(from);

    if (flen > CL_NNG_MAX_ADDR || len > CL_MAX_MESSAGE || outcap < CL_NNG_FRAME_HEADER + flen + len)
        return -EMSGSIZE;
    memcpy(out, frame_magic, sizeof(frame_magic));
    out[3] = CL_NNG_FRAME_VERSION;
    out[4] = (uint8_t)flen;
    memcpy(out + CL_NNG_FRAME_HEADER, from, flen);
    if (len > 0)
        memcpy(out + CL_NNG_FRAME_HEADER + flen, data, len);
    return (int)(CL_NNG_FRAME_HEADER + flen + len);
}

int cl_nng_frame_decode(const uint8_t *p, size_t len, const char **from, size_t *from_len,
                        const uint8_t **payload, size_t *payload_len)
{
    size_t flen;

    if (len < CL_NNG_FRAME_HEADER || memcmp(p, frame_magic, sizeof(frame_magic)) != 0 ||
        p[3] != CL_NNG_FRAME_VERSION)
        return GV_EPROTO;
    flen = p[4];
    if (len - CL_NNG_FRAME_HEADER < flen)
        return GV_EPROTO;
    if (len - CL_NNG_FRAME_HEADER - flen > CL_MAX_MESSAGE)
        return GV_EPROTO;
    /* An address is printable ASCII without spaces; anything else is noise. */
    for (size_t i = 0; i < flen; i++)
        if (p[CL_NNG_FRAME_HEADER + i] <= ' ' || p[CL_NNG_FRAME_HEADER + i] > '~')
            return GV_EPROTO;
    *from = (const char *)p + CL_NNG_FRAME_HEADER;
    *from_len = flen;
    *payload = p + CL_NNG_FRAME_HEADER + flen;
    *payload_len = len - CL_NNG_FRAME_HEADER - flen;
    return 0;
}

/* Whether addr (not necessarily NUL-terminated) is blocked by the fault
 * switch. */
static int is_blocked(struct cl_nng_transport *t, const char *addr, size_t len)
{
    int hit = 0;

    uv_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->nblocked && !hit; i++)
        hit = strlen(t->blocked[i]) == len && memcmp(t->blocked[i], addr, len) == 0;
    uv_mutex_unlock(&t->lock);
    return hit;
}

static void warn_limited(struct cl_nng_transport *t, uint64_t *last, const char *what)
{
    uint64_t now = uv_now(t->loop);

    if (*last != 0 && now - *last < WARN_INTERVAL_MS)
        return;
    *last = now ? now : 1;
    gv_warn("gossip: %s", what);
}

/* ---- peers (loop thread) ---- */

static uint32_t peer_bucket(const char *addr)
{
    return (uint32_t)(gv_hash64(addr, strlen(addr), 0) & (PEER_BUCKETS - 1));
}

static void recent_unlink(struct cl_nng_transport *t, struct cl_nng_peer *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        t->recent = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        t->oldest = p->prev;
    p->prev = p->next = NULL;
}

static void recent_push(struct cl_nng_transport *t, struct cl_nng_peer *p)
{
    p->prev = NULL;
    p->next = t->recent;
    if (t->recent)
        t->recent->prev = p;
    else
        t->oldest = p;
    t->recent = p;
}

/* Sockets are closed by one background thread per process. nng_close()
 * waits for nng's threads to let go of the socket, which takes about a
 * millisecond and far longer when nng is busy with many dialers; and in nng
 * 1.5.2 closing a pull socket while a message is arriving can leak that
 * message and wedge nng's reaper, so that close (and every later one) never
 * returns (the pull protocol was rewritten upstream since). Neither the loop
 * nor stop() may wait for that, and libuv's thread pool must not be pinned
 * by it either. */
struct cl_nng_closer {
    struct cl_nng_closer *next;
    size_t n;
    nng_socket socks[];
};

static struct {
    pthread_once_t once;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct cl_nng_closer *head, *tail;
    int running;
} closer = {
    .once = PTHREAD_ONCE_INIT, .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static void *closer_main(void *arg)
{
    for (;;) {
        struct cl_nng_closer *c;

        pthread_mutex_lock(&closer.lock);
        while (closer.head == NULL)
            pthread_cond_wait(&closer.wake, &closer.lock);
        c = closer.head;
        closer.head = c->next;
        if (closer.head == NULL)
            closer.tail = NULL;
        pthread_mutex_unlock(&closer.lock);
        for (size_t i = 0; i < c->n; i++)
            nng_close(c->socks[i]);
        free(c);
    }
    return NULL;
}

static void closer_init(void)
{
    pthread_t thread;

    if (pthread_create(&thread, NULL, closer_main, NULL) == 0) {
        pthread_detach(thread);
        closer.running = 1;
    }
}

/* Takes c (n sockets filled in) and has them closed in the background, or
 * here when no thread could be started. */
static void close_later(struct cl_nng_closer *c)
{
    pthread_once(&closer.once, closer_init);
    if (!closer.running) {
        for (size_t i = 0; i < c->n; i++)
            nng_close(c->socks[i]);
        free(c);
        return;
    }
    c->next = NULL;
    pthread_mutex_lock(&closer.lock);
    if (closer.tail)
        closer.tail->next = c;
    else
        closer.head = c;
    closer.tail = c;
    pthread_cond_signal(&closer.wake);
    pthread_mutex_unlock(&closer.lock);
}

/* Forgets a peer without closing its socket. */
static void peer_unlink(struct cl_nng_transport *t, struct cl_nng_peer *p)
{
    struct cl_nng_peer **link = &t->buckets[peer_bucket(p->addr)];

    while (*link != p)
        link = &(*link)->hnext;
    *link = p->hnext;
    recent_unlink(t, p);
    t->npeers--;
    atomic_store_explicit(&t->c.peers, t->npeers, memory_order_relaxed);
}

static void close_socket_later(nng_socket sock)
{
    struct cl_nng_closer *c = malloc(sizeof(*c) + sizeof(nng_socket));

    if (c == NULL) {
        nng_close(sock);
        return;
    }
    c->n = 1;
    c->socks[0] = sock;
    close_later(c);
}

/* Forgets a peer and closes its socket, discarding what is still buffered
 * for it. */
static void peer_close(struct cl_nng_transport *t, struct cl_nng_peer *p)
{
    peer_unlink(t, p);
    close_socket_later(p->sock);
    free(p);
}

static struct cl_nng_peer *peer_find(struct cl_nng_transport *t, const char *addr)
{
    for (struct cl_nng_peer *p = t->buckets[peer_bucket(addr)]; p; p = p->hnext)
        if (strcmp(p->addr, addr) == 0)
            return p;
    return NULL;
}

/* Opens a push socket dialing addr in the background. Returns 0 or a
 * negative error; *out is unchanged on error. */
static int peer_open(struct cl_nng_transport *t, const char *addr, struct cl_nng_peer **out)
{
    char url[URL_MAX], host[CL_NNG_MAX_ADDR + 1];
    struct cl_nng_peer *p;
    size_t len = strlen(addr);
    uint16_t port;
    uint32_t b;
    int rv;

    if (make_url(addr, 0, url, sizeof(url), host, sizeof(host), &port) < 0)
        return GV_EINVAL;
    p = calloc(1, sizeof(*p) + len + 1);
    if (p == NULL)
        return GV_ENOMEM;
    memcpy(p->addr, addr, len + 1);
    if ((rv = nng_push0_open(&p->sock)) != 0) {
        free(p);
        return nng_to_gv(rv);
    }
    if ((rv = nng_socket_set_int(p->sock, NNG_OPT_SENDBUF, CL_NNG_SENDBUF)) != 0 ||
        (rv = nng_socket_set_ms(p->sock, NNG_OPT_RECONNMINT, CL_NNG_RECONN_MIN_MS)) != 0 ||
        (rv = nng_socket_set_ms(p->sock, NNG_OPT_RECONNMAXT, CL_NNG_RECONN_MAX_MS)) != 0 ||
        (rv = nng_dial(p->sock, url, NULL, NNG_FLAG_NONBLOCK)) != 0)
        goto fail;

    while (t->npeers >= t->max_peers)
        peer_close(t, t->oldest);
    b = peer_bucket(addr);
    p->hnext = t->buckets[b];
    t->buckets[b] = p;
    recent_push(t, p);
    t->npeers++;
    atomic_store_explicit(&t->c.peers, t->npeers, memory_order_relaxed);
    *out = p;
    return 0;

fail:
    close_socket_later(p->sock);
    free(p);
    return nng_to_gv(rv);
}

static void sweep_cb(uv_timer_t *timer)
{
    struct cl_nng_transport *t = GV_CONTAINER_OF(timer, struct cl_nng_transport, sweep);
    uint64_t now = uv_now(t->loop);

    /* kept peers go back to the head as if used now, so the walk goes on */
    size_t kept = 0;
    while (t->oldest && now - t->oldest->last_used_ms >= CL_NNG_PEER_IDLE_MS && kept < t->npeers) {
        struct cl_nng_peer *p = t->oldest;
        if (!p->kept) {
            peer_close(t, p);
            continue;
        }
        p->last_used_ms = now;
        recent_unlink(t, p);
        recent_push(t, p);
        kept++;
    }
}

/* ---- send (loop thread) ---- */

/* The peer for addr, opened on first use, made the most recent. Returns 0
 * or a negative error. */
static int peer_use(struct cl_nng_transport *t, const char *addr, struct cl_nng_peer **out)
{
    struct cl_nng_peer *p = peer_find(t, addr);
    int rc;

    if (p == NULL && (rc = peer_open(t, addr, &p)) < 0)
        return rc;
    p->last_used_ms = uv_now(t->loop);
    recent_unlink(t, p);
    recent_push(t, p);
    *out = p;
    return 0;
}

/* Frames data as from this node and seals it when keyed, into a new nng
 * message. Returns 0 or a negative error; *out is unchanged on error. */
static int frame_msg(struct cl_nng_transport *t, const uint8_t *data, size_t len, nng_msg **out)
{
    size_t wire = CL_NNG_FRAME_HEADER + strlen(t->advertise) + len;
    nng_msg *msg;
    int n, rc;

    if (t->keyring)
        wire += CL_SEAL_OVERHEAD;
    if (nng_msg_alloc(&msg, wire) != 0)
        return GV_ENOMEM;
    if (t->keyring) {
        n = cl_nng_frame_encode(t->advertise, data, len, t->scratch, sizeof(t->scratch));
        rc = n < 0 ? n : cl_seal(t->keyring, t->scratch, (size_t)n, nng_msg_body(msg), wire, &wire);
    } else {
        n = cl_nng_frame_encode(t->advertise, data, len, nng_msg_body(msg), wire);
        rc = n < 0 ? n : 0;
    }
    if (rc < 0) {
        nng_msg_free(msg);
        return rc;
    }
    *out = msg;
    return 0;
}

int cl_nng_transport_send(struct cl_nng_transport *t, const char *addr, const uint8_t *data,
                          size_t len)
{
    struct cl_nng_peer *p;
    nng_msg *msg = NULL;
    int rc;

    if (t->stopping) {
        rc = -ESHUTDOWN;
        goto fail;
    }
    if (len > CL_MAX_MESSAGE) {
        rc = -EMSGSIZE;
        goto fail;
    }
    if (is_blocked(t, addr, strlen(addr))) {
        count(&t->c.out_blocked, 1);
        return GV_EAGAIN;
    }
    if ((rc = peer_use(t, addr, &p)) < 0 || (rc = frame_msg(t, data, len, &msg)) < 0)
        goto fail;
    /* Non-blocking: fails with NNG_EAGAIN once the peer's buffer is full. */
    if ((rc = nng_sendmsg(p->sock, msg, NNG_FLAG_NONBLOCK)) != 0) {
        rc = nng_to_gv(rc);
        goto fail;
    }
    count(&t->c.out_messages, 1);
    count(&t->c.out_bytes, len);
    return 0;

fail:
    if (msg)
        nng_msg_free(msg);
    count(&t->c.out_dropped, 1);
    return rc;
}

static int ops_send(void *impl, const char *addr, const uint8_t *data, size_t len)
{
    return cl_nng_transport_send(impl, addr, data, len);
}

static void ops_forget(void *impl, const char *addr)
{
    struct cl_nng_transport *t = impl;
    struct cl_nng_peer *p = peer_find(t, addr);
    if (p != NULL)
        peer_close(t, p);
}

/* Dials addr now (in the background) unless a socket to it is open. */
static void ops_keep(void *impl, const char *addr)
{
    struct cl_nng_transport *t = impl;
    struct cl_nng_peer *p;
    if (t->stopping || is_blocked(t, addr, strlen(addr)) || peer_use(t, addr, &p) < 0)
        return;
    p->kept = true;
}

const struct cl_transport_ops cl_nng_transport_ops = {
    .name = "nng",
    .send = ops_send,
    .forget = ops_forget,
    .keep = ops_keep,
};

struct cl_transport cl_nng_transport_iface(struct cl_nng_transport *t)
{
    return (struct cl_transport){.ops = &cl_nng_transport_ops, .impl = t};
}

/* ---- receive ---- */

/* nng thread: hands the message to the loop and asks for the next one. */
static void recv_cb(void *arg)
{
    struct cl_nng_transport *t = arg;
    int rv = nng_aio_result(t->aio);
    nng_msg *msg = rv == 0 ? nng_aio_get_msg(t->aio) : NULL;
    int closing;

    /* Taken: stop() frees only what a stopped aio still holds. */
    nng_aio_set_msg(t->aio, NULL);

    uv_mutex_lock(&t->lock);
    closing = t->closing;
    if (!closing && msg) {
        if (t->qcount < CL_NNG_RECV_QUEUE) {
            t->queue[(t->qhead + t->qcount) % CL_NNG_RECV_QUEUE] = msg;
            t->qcount++;
            msg = NULL;
        } else {
            count(&t->c.in_dropped, 1);
        }
        uv_async_send(&t->async);
    }
    uv_mutex_unlock(&t->lock);
    if (msg)
        nng_msg_free(msg);
    if (closing || rv == NNG_ECLOSED || rv == NNG_ECANCELED)
        return;
    nng_recv_aio(t->pull, t->aio);
}

/* Authenticates and decrypts a keyed message into t->scratch, counting and
 * (rate-limited) warning about what it drops. false when dropped. */
static bool unseal(struct cl_nng_transport *t, const uint8_t **body, size_t *len)
{
    int rc;

    if (*len >= 3 && memcmp(*body, frame_magic, sizeof(frame_magic)) == 0) {
        count(&t->c.in_auth_failed, 1);
        warn_limited(t, &t->warned_plain_ms,
                     "dropping unencrypted messages: a peer has no cluster key");
        return false;
    }
    rc = cl_open(t->keyring, *body, *len, t->scratch, sizeof(t->scratch), len);
    if (rc == GV_EINVAL) {
        count(&t->c.in_auth_failed, 1);
        warn_limited(t, &t->warned_auth_ms,
                     "dropping messages that fail authentication: do the cluster keys match?");
        return false;
    }
    if (rc == GV_ETIMEDOUT || rc == GV_EEXIST) {
        count(&t->c.in_replayed, 1);
        return false;
    }
    if (rc < 0) {
        count(&t->c.in_malformed, 1);
        return false;
    }
    *body = t->scratch;
    return true;
}

/* Opens (when keyed), decodes and filters one message, then hands its
 * payload to the receive callback. */
static void deliver(struct cl_nng_transport *t, nng_msg *msg)
{
    const uint8_t *body = nng_msg_body(msg), *payload;
    size_t len = nng_msg_len(msg), flen, plen;
    const char *from;

    if (t->keyring && !unseal(t, &body, &len))
        return;
    if (cl_nng_frame_decode(body, len, &from, &flen, &payload, &plen) < 0) {
        count(&t->c.in_malformed, 1);
        if (!t->keyring && len >= 3 && memcmp(body, "GVS", 3) == 0)
            warn_limited(t, &t->warned_plain_ms,
                         "dropping encrypted messages: set node.cluster_key_file");
        return;
    }
    if (flen > 0 && is_blocked(t, from, flen)) {
        count(&t->c.in_blocked, 1);
        return;
    }
    count(&t->c.in_messages, 1);
    count(&t->c.in_bytes, plen);
    t->receive(t->receive_arg, payload, plen);
}

/* Loop thread: drains a batch of queued messages; asks again for the rest
 * so one busy peer cannot hold the loop. */
static void async_cb(uv_async_t *async)
{
    struct cl_nng_transport *t = GV_CONTAINER_OF(async, struct cl_nng_transport, async);
    nng_msg *batch[DRAIN_BATCH];
    size_t n = 0, i;
    int more;

    uv_mutex_lock(&t->lock);
    while (n < DRAIN_BATCH && t->qcount > 0) {
        batch[n++] = t->queue[t->qhead];
        t->qhead = (t->qhead + 1) % CL_NNG_RECV_QUEUE;
        t->qcount--;
    }
    more = t->qcount > 0;
    uv_mutex_unlock(&t->lock);

    for (i = 0; i < n; i++) {
        /* The callback may have stopped the transport. */
        if (!t->stopping)
            deliver(t, batch[i]);
        nng_msg_free(batch[i]);
    }
    if (more && !t->stopping)
        uv_async_send(&t->async);
}

/* ---- lifecycle ---- */

static int is_wildcard(const char *host)
{
    return host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 ||
           strcmp(host, "*") == 0;
}

/* Opens the pull socket, listening on url, and learns the bound port.
 * Returns 0 or an nng error; the socket is closed again on error. */
static int pull_listen(struct cl_nng_transport *t, const char *url)
{
    nng_listener listener;
    int rv, bound = 0;

    if ((rv = nng_pull0_open(&t->pull)) != 0)
        return rv;
    /* A message larger than any peer could send closes that connection. */
    if ((rv = nng_socket_set_size(t->pull, NNG_OPT_RECVMAXSZ, CL_NNG_MAX_WIRE)) != 0 ||
        (rv = nng_listener_create(&listener, t->pull, url)) != 0 ||
        (rv = nng_listener_start(listener, 0)) != 0 ||
        (rv = nng_listener_get_int(listener, NNG_OPT_TCP_BOUND_PORT, &bound)) != 0) {
        nng_close(t->pull);
        return rv;
    }
    t->port = (uint16_t)bound;
    return 0;
}

/* The nng side of receiving: the listening pull socket and the aio reading
 * from it. Returns 0 or a negative error, logged; nothing stays open on
 * error. */
static int recv_open(struct cl_nng_transport *t, const char *listen_addr, const char *url)
{
    int rv = pull_listen(t, url);

    if (rv == 0 && (rv = nng_aio_alloc(&t->aio, recv_cb, t)) != 0)
        nng_close(t->pull);
    if (rv != 0) {
        gv_error("gossip: cannot listen on %s: %s", listen_addr, nng_strerror(rv));
        return nng_to_gv(rv);
    }
    return 0;
}

/* Sweeps idle peers from now on; that alone must not keep the loop alive. */
static void sweep_start(struct cl_nng_transport *t)
{
    uv_timer_init(t->loop, &t->sweep);
    uv_timer_start(&t->sweep, sweep_cb, SWEEP_INTERVAL_MS, SWEEP_INTERVAL_MS);
    uv_unref((uv_handle_t *)&t->sweep);
}

/* Makes the listen address the default advertise address when it names a
 * host (a wildcard leaves it empty), and says where gossip listens. */
static void announce(struct cl_nng_transport *t, const char *host)
{
    char adv[URL_MAX];

    if (!is_wildcard(host)) {
        /* The bound port replaces a requested 0; the length fits, as the
         * listen address itself did. */
        snprintf(adv, sizeof(adv), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
                 (unsigned)t->port);
        cl_nng_transport_set_advertise(t, adv);
    }
    if (t->keyring == NULL)
        gv_warn("gossip is not encrypted: set node.cluster_key_file");
    gv_info("gossip: listening on tcp://%s%s%s:%u", strchr(host, ':') ? "[" : "", host,
            strchr(host, ':') ? "]" : "", (unsigned)t->port);
}

int cl_nng_transport_start(uv_loop_t *loop, const char *listen_addr, struct cl_keyring *keyring,
                           cl_receive_fn receive, void *arg, struct cl_nng_transport **out)
{
    char url[URL_MAX], host[CL_NNG_MAX_ADDR + 1];
    struct cl_nng_transport *t;
    uint16_t port;
    int rc;

    if (make_url(listen_addr, 1, url, sizeof(url), host, sizeof(host), &port) < 0) {
        gv_error("gossip: bad listen address \"%s\": expected host:port", listen_addr);
        return GV_EINVAL;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return GV_ENOMEM;
    t->loop = loop;
    t->keyring = keyring;
    t->receive = receive;
    t->receive_arg = arg;
    t->max_peers = CL_NNG_MAX_PEERS;
    rc = GV_EIO;
    if (uv_mutex_init(&t->lock) != 0)
        goto fail_free;
    if ((rc = recv_open(t, listen_addr, url)) < 0)
        goto fail_lock;
    if ((rc = uv_async_init(loop, &t->async, async_cb)) < 0)
        goto fail_recv;
    sweep_start(t);
    announce(t, host);
    nng_recv_aio(t->pull, t->aio);
    *out = t;
    return 0;

fail_recv:
    nng_aio_free(t->aio);
    nng_close(t->pull);
fail_lock:
    uv_mutex_destroy(&t->lock);
fail_free:
    free(t);
    return rc;
}

static void free_blocked(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static void handle_closed(uv_handle_t *h)
{
    struct cl_nng_transport *t = h->data;
    cl_nng_stopped_fn done;
    void *arg;

    if (--t->closing_handles > 0)
        return;
    done = t->stopped;
    arg = t->stopped_arg;
    free_blocked(t->blocked, t->nblocked);
    uv_mutex_destroy(&t->lock);
    free(t);
    if (done)
        done(arg);
}

static void close_handles(struct cl_nng_transport *t)
{
    t->closing_handles = 2;
    t->async.data = t;
    t->sweep.data = t;
    uv_close((uv_handle_t *)&t->async, handle_closed);
    uv_close((uv_handle_t *)&t->sweep, handle_closed);
}

/* Stops receiving: no receive callback runs after this, and what was
 * received but not delivered is dropped. */
static void recv_stop(struct cl_nng_transport *t)
{
    uv_mutex_lock(&t->lock);
    t->closing = 1;
    uv_mutex_unlock(&t->lock);
    /* Waits for a running receive callback; none starts after this. */
    nng_aio_stop(t->aio);
    /* A receive that completed as the aio stopped never reached recv_cb. */
    if (nng_aio_get_msg(t->aio) != NULL)
        nng_msg_free(nng_aio_get_msg(t->aio));
    nng_aio_free(t->aio);
    t->aio = NULL;

    while (t->qcount > 0) {
        nng_msg_free(t->queue[t->qhead]);
        t->qhead = (t->qhead + 1) % CL_NNG_RECV_QUEUE;
        t->qcount--;
    }
}

/* Forgets every peer. The listener and the peers' sockets close in the
 * background; nothing here waits for them (see close_later()). */
static void sockets_close(struct cl_nng_transport *t)
{
    struct cl_nng_closer *c = malloc(sizeof(*c) + (t->npeers + 1) * sizeof(nng_socket));
    size_t n = 0;

    if (c)
        c->socks[n++] = t->pull;
    else
        nng_close(t->pull);
    while (t->recent) {
        struct cl_nng_peer *p = t->recent;
        peer_unlink(t, p);
        if (c)
            c->socks[n++] = p->sock;
        else
            nng_close(p->sock);
        free(p);
    }
    if (c) {
        c->n = n;
        close_later(c);
    }
}

void cl_nng_transport_stop(struct cl_nng_transport *t, cl_nng_stopped_fn done, void *arg)
{
    if (t->stopping)
        return;
    t->stopping = 1;
    t->stopped = done;
    t->stopped_arg = arg;
    uv_timer_stop(&t->sweep);
    recv_stop(t);
    sockets_close(t);
    close_handles(t);
}

int cl_nng_transport_set_advertise(struct cl_nng_transport *t, const char *addr)
{
    size_t n = strlen(addr);

    if (n > CL_NNG_MAX_ADDR)
        return GV_EINVAL;
    memcpy(t->advertise, addr, n + 1);
    return 0;
}

void cl_nng_transport_set_max_peers(struct cl_nng_transport *t, size_t max)
{
    t->max_peers = GV_MAX(GV_MIN(max, (size_t)CL_NNG_MAX_PEERS), (size_t)1);
    while (t->npeers > t->max_peers)
        peer_close(t, t->oldest);
}

const char *cl_nng_transport_advertise(const struct cl_nng_transport *t)
{
    return t->advertise;
}

uint16_t cl_nng_transport_port(const struct cl_nng_transport *t)
{
    return t->port;
}

void cl_nng_transport_stats(struct cl_nng_transport *t, struct cl_nng_stats *out)
{
    const struct cl_nng_counters *c = &t->c;

    out->out.messages = atomic_load_explicit(&c->out_messages, memory_order_relaxed);
    out->out.bytes = atomic_load_explicit(&c->out_bytes, memory_order_relaxed);
    out->out.dropped = atomic_load_explicit(&c->out_dropped, memory_order_relaxed);
    out->out.blocked = atomic_load_explicit(&c->out_blocked, memory_order_relaxed);
    out->in.messages = atomic_load_explicit(&c->in_messages, memory_order_relaxed);
    out->in.bytes = atomic_load_explicit(&c->in_bytes, memory_order_relaxed);
    out->in.dropped = atomic_load_explicit(&c->in_dropped, memory_order_relaxed);
    out->in.blocked = atomic_load_explicit(&c->in_blocked, memory_order_relaxed);
    out->in.auth_failed = atomic_load_explicit(&c->in_auth_failed, memory_order_relaxed);
    out->in.malformed = atomic_load_explicit(&c->in_malformed, memory_order_relaxed);
    out->in.replayed = atomic_load_explicit(&c->in_replayed, memory_order_relaxed);
    out->peers = atomic_load_explicit(&c->peers, memory_order_relaxed);
}

int cl_nng_set_blocked(struct cl_nng_transport *t, const char *const *addrs, size_t n)
{
    char **list = NULL, **old;
    size_t i, nold;

    if (n > 0) {
        list = calloc(n, sizeof(*list));
        if (list == NULL)
            return GV_ENOMEM;
        for (i = 0; i < n; i++) {
            list[i] = strdup(addrs[i]);
            if (list[i] == NULL) {
                free_blocked(list, i);
                return GV_ENOMEM;
            }
        }
    }
    uv_mutex_lock(&t->lock);
    old = t->blocked;
    nold = t->nblocked;
    t->blocked = list;
    t->nblocked = n;
    uv_mutex_unlock(&t->lock);
    free_blocked(old, nold);
    if (n > 0)
        gv_warn("gossip: test fault switch blocks %zu peer address(es)", n);
    return 0;
}
