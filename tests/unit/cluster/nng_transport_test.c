/* nng_transport_test.c - the nng gossip transport on loopback: exchange, name
 * resolution, unreachable peers, sealing with matching and mismatched keys,
 * the fault switch, and the lifecycle. Every wait runs the loop until a
 * condition holds or a deadline passes. */
#include "cluster/nng_transport.h"
#include "cluster/seal.h"
#include "common/err.h"
#include "common/util.h"
#include "test.h"

#include <nng/nng.h>
#include <netdb.h>
#include <nng/protocol/pipeline0/push.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#define DEADLINE_MS 5000

struct inbox {
    int count;
    size_t last_len;
    uint8_t last[256];
    struct cl_nng_transport *stop_me; /* stop the transport from the callback */
    int stopped;
};

static void on_stopped(void *arg)
{
    (*(int *)arg)++;
}

static void on_receive(void *arg, const uint8_t *data, size_t len)
{
    struct inbox *in = arg;
    in->count++;
    in->last_len = len;
    memcpy(in->last, data, GV_MIN(len, sizeof(in->last)));
    if (in->stop_me) {
        struct cl_nng_transport *t = in->stop_me;
        in->stop_me = NULL;
        cl_nng_transport_stop(t, on_stopped, &in->stopped);
    }
}

static void tick(uv_timer_t *timer)
{
}

typedef int (*cond_fn)(void *arg);

/* Runs the loop until cond(arg) holds or the deadline passes; a ticking
 * timer guarantees the loop wakes to check. Returns cond's final value. */
static int run_until(uv_loop_t *loop, cond_fn cond, void *arg, uint64_t ms)
{
    uv_timer_t timer;
    uint64_t end;
    int ok;

    uv_update_time(loop);
    end = uv_now(loop) + ms;
    uv_timer_init(loop, &timer);
    uv_timer_start(&timer, tick, 5, 5);
    while (!(ok = cond(arg)) && uv_now(loop) < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static int got_one(void *arg)
{
    return ((struct inbox *)arg)->count > 0;
}

static int flag_set(void *arg)
{
    return *(int *)arg != 0;
}

static void stop_and_wait(uv_loop_t *loop, struct cl_nng_transport *t)
{
    int done = 0;
    cl_nng_transport_stop(t, on_stopped, &done);
    CHECK(run_until(loop, flag_set, &done, DEADLINE_MS));
    CHECK_INT(done, 1);
}

static struct cl_nng_transport *start_at(uv_loop_t *loop, const char *addr, struct cl_keyring *kr,
                                         struct inbox *in)
{
    struct cl_nng_transport *t = NULL;
    CHECK_INT(cl_nng_transport_start(loop, addr, kr, on_receive, in, &t), 0);
    CHECK(t != NULL);
    CHECK(cl_nng_transport_port(t) != 0);
    return t;
}

/* The loopback address "localhost" names first here: ::1 on a stock Debian
 * /etc/hosts (where IPv6 is up), 127.0.0.1 elsewhere. */
static const char *localhost_listen(void)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    const char *addr = "127.0.0.1:0";
    if (getaddrinfo("localhost", "1", &hints, &res) == 0 && res != NULL &&
        res->ai_family == AF_INET6)
        addr = "[::1]:0";
    freeaddrinfo(res);
    return addr;
}

static struct cl_nng_transport *start(uv_loop_t *loop, struct cl_keyring *kr, struct inbox *in)
{
    struct cl_nng_transport *t = NULL;
    CHECK_INT(cl_nng_transport_start(loop, "127.0.0.1:0", kr, on_receive, in, &t), 0);
    CHECK(t != NULL);
    CHECK(cl_nng_transport_port(t) != 0);
    return t;
}

/* A loopback port nobody listens on: bound (never listening) and released.
 * Transports close their sockets in the background, so stopping one does
 * not free its port at once. */
static uint16_t dead_port(uv_loop_t *loop)
{
    uv_tcp_t tcp;
    struct sockaddr_in sin;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uint16_t port = 0;

    uv_ip4_addr("127.0.0.1", 0, &sin);
    CHECK_INT(uv_tcp_init(loop, &tcp), 0);
    CHECK_INT(uv_tcp_bind(&tcp, (const struct sockaddr *)&sin, 0), 0);
    CHECK_INT(uv_tcp_getsockname(&tcp, (struct sockaddr *)&ss, &len), 0);
    port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    uv_close((uv_handle_t *)&tcp, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return port;
}

static const char *addr_of(struct cl_nng_transport *t, char *buf, size_t len)
{
    snprintf(buf, len, "127.0.0.1:%u", (unsigned)cl_nng_transport_port(t));
    return buf;
}

static void test_exchange(void)
{
    uv_loop_t loop;
    struct inbox ia = {0}, ib = {0};
    struct cl_nng_transport *a, *b;
    struct cl_transport iface;
    struct cl_nng_stats st;
    char aaddr[64], baddr[64];

    uv_loop_init(&loop);
    a = start(&loop, NULL, &ia);
    b = start(&loop, NULL, &ib);
    /* A listen address naming a host is the default advertise address. */
    CHECK_STR(cl_nng_transport_advertise(a), addr_of(a, aaddr, sizeof(aaddr)));
    addr_of(b, baddr, sizeof(baddr));

    iface = cl_nng_transport_iface(a);
    CHECK_STR(iface.ops->name, "nng");
    CHECK_INT(cl_transport_send(&iface, baddr, (const uint8_t *)"hello b", 7), 0);
    CHECK(run_until(&loop, got_one, &ib, DEADLINE_MS));
    CHECK_INT(ib.count, 1);
    CHECK_INT(ib.last_len, 7);
    CHECK(memcmp(ib.last, "hello b", 7) == 0);

    CHECK_INT(cl_nng_transport_send(b, aaddr, (const uint8_t *)"hello a", 7), 0);
    CHECK(run_until(&loop, got_one, &ia, DEADLINE_MS));
    CHECK(memcmp(ia.last, "hello a", 7) == 0);

    /* An empty payload is a message too. */
    ib.count = 0;
    CHECK_INT(cl_nng_transport_send(a, baddr, NULL, 0), 0);
    CHECK(run_until(&loop, got_one, &ib, DEADLINE_MS));
    CHECK_INT(ib.last_len, 0);

    cl_nng_transport_stats(a, &st);
    CHECK_INT(st.out.messages, 2);
    CHECK_INT(st.out.bytes, 7);
    CHECK_INT(st.peers, 1);
    cl_nng_transport_stats(b, &st);
    CHECK_INT(st.in.messages, 2);
    CHECK_INT(st.in.malformed, 0);

    stop_and_wait(&loop, a);
    stop_and_wait(&loop, b);
    CHECK_INT(uv_loop_close(&loop), 0);
}

static int all_received(void *arg)
{
    int *v = arg; /* v[0] received so far, v[1] expected */
    return v[0] >= v[1];
}

static void count_receive(void *arg, const uint8_t *data, size_t len)
{
    int *v = arg;
    CHECK_INT(len, 1000);
    v[0]++;
}

/* Every message a send accepted arrives, even in a burst much larger than
 * the send buffer; what the buffer cannot take is refused at once. */
static void test_burst(void)
{
    uv_loop_t loop;
    struct inbox ia = {0};
    struct cl_nng_transport *a, *b = NULL;
    int v[2] = {0, 1}, refused = 0;
    uint8_t msg[1000];
    char baddr[64];

    uv_loop_init(&loop);
    a = start(&loop, NULL, &ia);
    CHECK_INT(cl_nng_transport_start(&loop, "127.0.0.1:0", NULL, count_receive, v, &b), 0);
    addr_of(b, baddr, sizeof(baddr));
    memset(msg, 7, sizeof(msg));
    /* Warm the connection up, then burst. */
    CHECK_INT(cl_nng_transport_send(a, baddr, msg, sizeof(msg)), 0);
    CHECK(run_until(&loop, all_received, v, DEADLINE_MS));
    for (int i = 0; i < 2000; i++) {
        if (cl_nng_transport_send(a, baddr, msg, sizeof(msg)) == 0)
            v[1]++;
        else
            refused++;
    }
    CHECK(run_until(&loop, all_received, v, DEADLINE_MS));
    CHECK_INT(v[0], v[1]);
    printf("     burst of 2000: %d accepted and delivered, %d refused\n", v[1] - 1, refused);
    stop_and_wait(&loop, a);
    stop_and_wait(&loop, b);
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* nng's tcp dialer resolves host names itself (docker compose services). */
static void test_host_name(void)
{
    uv_loop_t loop;
    struct inbox ia = {0}, ib = {0};
    struct cl_nng_transport *a, *b;
    char name[64];

    uv_loop_init(&loop);
    a = start(&loop, NULL, &ia);
    b = start_at(&loop, localhost_listen(), NULL, &ib);
    snprintf(name, sizeof(name), "localhost:%u", (unsigned)cl_nng_transport_port(b));
    CHECK_INT(cl_nng_transport_send(a, name, (const uint8_t *)"by name", 7), 0);
    CHECK(run_until(&loop, got_one, &ib, DEADLINE_MS));
    CHECK(memcmp(ib.last, "by name", 7) == 0);
    stop_and_wait(&loop, a);
    stop_and_wait(&loop, b);
    CHECK_INT(uv_loop_close(&loop), 0);
}

static void test_unreachable(void)
{
    uv_loop_t loop;
    struct inbox ia = {0};
    struct cl_nng_transport *a;
    struct cl_nng_stats st;
    char dead[64];
    int accepted = 0, dropped = 0;
    uint64_t t0, took;

    uv_loop_init(&loop);
    snprintf(dead, sizeof(dead), "127.0.0.1:%u", (unsigned)dead_port(&loop));
    a = start(&loop, NULL, &ia);

    t0 = gv_now_us();
    for (int i = 0; i < 500; i++) {
        int rc = cl_nng_transport_send(a, dead, (const uint8_t *)"anyone?", 7);
        if (rc == 0)
            accepted++;
        else {
            CHECK_INT(rc, GV_EAGAIN);
            dropped++;
        }
    }
    took = gv_now_us() - t0;
    /* Bounded: the peer's send buffer, and nothing more, waits. */
    CHECK(accepted <= CL_NNG_SENDBUF + 1);
    CHECK_INT(accepted + dropped, 500);
    CHECK(took < 500 * 1000);
    printf("     unreachable: 500 sends in %llu us, %d buffered, %d dropped\n",
           (unsigned long long)took, accepted, dropped);
    cl_nng_transport_stats(a, &st);
    CHECK_INT(st.out.dropped, (uint64_t)dropped);

    /* Malformed destinations and oversize messages are refused and counted. */
    CHECK_INT(cl_nng_transport_send(a, "nohost", (const uint8_t *)"x", 1), GV_EINVAL);
    CHECK_INT(cl_nng_transport_send(a, "a:0", (const uint8_t *)"x", 1), GV_EINVAL);
    {
        uint8_t *big = calloc(1, CL_MAX_MESSAGE + 1);
        CHECK_INT(cl_nng_transport_send(a, dead, big, CL_MAX_MESSAGE + 1), -EMSGSIZE);
        free(big);
    }
    cl_nng_transport_stats(a, &st);
    CHECK_INT(st.out.dropped, (uint64_t)dropped + 3);

    t0 = gv_now_us();
    stop_and_wait(&loop, a);
    printf("     stop with a backlog: %llu us\n", (unsigned long long)(gv_now_us() - t0));
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* A node started before its seeds: what was buffered for the seed arrives
 * once it comes up, because nng keeps redialing in the background. */
static void test_peer_comes_up(void)
{
    uv_loop_t loop;
    struct inbox ia = {0}, ib = {0};
    struct cl_nng_transport *a, *b;
    char baddr[64];

    uv_loop_init(&loop);
    snprintf(baddr, sizeof(baddr), "127.0.0.1:%u", (unsigned)dead_port(&loop));
    a = start(&loop, NULL, &ia);
    CHECK_INT(cl_nng_transport_send(a, baddr, (const uint8_t *)"early", 5), 0);
    /* Let the first dial fail, then bring the peer up on that port. */
    CHECK(!run_until(&loop, got_one, &ib, 150));
    /* The port can be briefly taken by one of a's own redials (or another
     * process's connection), so listening is retried for a while. */
    b = NULL;
    for (int i = 0; i < 50; i++) {
        int rc = cl_nng_transport_start(&loop, baddr, NULL, on_receive, &ib, &b);
        if (rc != -EADDRINUSE) {
            CHECK_INT(rc, 0);
            break;
        }
        run_until(&loop, got_one, &ib, 20);
    }
    CHECK(b != NULL);
    CHECK(run_until(&loop, got_one, &ib, DEADLINE_MS));
    CHECK(memcmp(ib.last, "early", 5) == 0);
    stop_and_wait(&loop, a);
    if (b)
        stop_and_wait(&loop, b);
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* A raw TCP listener standing in for a peer: it answers nng's handshake as
 * a pull socket would and counts connections opened and closed. */
struct raw_peer {
    uv_tcp_t server;
    uv_tcp_t conn[4];
    int accepted, closed;
};

static void raw_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    static char scratch[256];
    *buf = uv_buf_init(scratch, sizeof(scratch));
}

static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct raw_peer *rp = s->data;
    if (n < 0) {
        rp->closed++;
        uv_read_stop(s);
    }
}

static void raw_written(uv_write_t *w, int status)
{
    free(w);
}

static void raw_accept(uv_stream_t *server, int status)
{
    static const char pull_header[8] = {0, 'S', 'P', 0, 0, 0x51, 0, 0}; /* SP: pull0 */
    struct raw_peer *rp = server->data;
    if (status != 0 || rp->accepted == 4)
        return;
    uv_tcp_t *c = &rp->conn[rp->accepted++];
    uv_tcp_init(server->loop, c);
    c->data = rp;
    CHECK_INT(uv_accept(server, (uv_stream_t *)c), 0);
    uv_write_t *w = malloc(sizeof(*w));
    uv_buf_t b = uv_buf_init((char *)pull_header, sizeof(pull_header));
    CHECK_INT(uv_write(w, (uv_stream_t *)c, &b, 1, raw_written), 0);
    uv_read_start((uv_stream_t *)c, raw_alloc, raw_read);
}

static int raw_accepted(void *arg)
{
    return ((struct raw_peer *)arg)->accepted > 0;
}

static int raw_closed(void *arg)
{
    return ((struct raw_peer *)arg)->closed > 0;
}

/* keep dials a live member before anything is sent to it, and forget
 * closes that connection. */
static void test_keep_connects_ahead(void)
{
    uv_loop_t loop;
    struct inbox ia = {0};
    struct raw_peer rp = {0};
    struct sockaddr_in sin;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char addr[64];

    uv_loop_init(&loop);
    uv_ip4_addr("127.0.0.1", 0, &sin);
    uv_tcp_init(&loop, &rp.server);
    rp.server.data = &rp;
    CHECK_INT(uv_tcp_bind(&rp.server, (const struct sockaddr *)&sin, 0), 0);
    CHECK_INT(uv_listen((uv_stream_t *)&rp.server, 8, raw_accept), 0);
    CHECK_INT(uv_tcp_getsockname(&rp.server, (struct sockaddr *)&ss, &len), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u",
             (unsigned)ntohs(((struct sockaddr_in *)&ss)->sin_port));

    struct cl_nng_transport *a = start(&loop, NULL, &ia);
    struct cl_transport tr = cl_nng_transport_iface(a);
    struct cl_nng_stats st;
    cl_transport_keep(&tr, addr);
    cl_transport_keep(&tr, addr); /* once is enough: the same socket */
    CHECK(run_until(&loop, raw_accepted, &rp, DEADLINE_MS));
    cl_nng_transport_stats(a, &st);
    CHECK_INT(st.peers, 1);
    CHECK_INT(st.out.messages, 0);
    CHECK_INT(rp.closed, 0);
    cl_transport_forget(&tr, addr);
    CHECK(run_until(&loop, raw_closed, &rp, DEADLINE_MS));
    cl_nng_transport_stats(a, &st);
    CHECK_INT(st.peers, 0);

    stop_and_wait(&loop, a);
    for (int i = 0; i < rp.accepted; i++)
        uv_close((uv_handle_t *)&rp.conn[i], NULL);
    uv_close((uv_handle_t *)&rp.server, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* The peer cache is capped: the least recently used peer makes room. */
static void test_peer_cap(void)
{
    uv_loop_t loop;
    struct inbox ia = {0};
    struct cl_nng_transport *a;
    struct cl_nng_stats st;
    char addr[64], first[64];
    uint16_t port;

    uv_loop_init(&loop);
    /* Distinct loopback addresses on a port nobody listens on. */
    port = dead_port(&loop);
    a = start(&loop, NULL, &ia);
    cl_nng_transport_set_max_peers(a, 8);
    for (int i = 0; i < 12; i++) {
        snprintf(addr, sizeof(addr), "127.0.0.%d:%u", 2 + i, (unsigned)port);
        if (i == 0)
            memcpy(first, addr, sizeof(first));
        CHECK_INT(cl_nng_transport_send(a, addr, (const uint8_t *)"x", 1), 0);
        /* Keep the first one recently used: it must survive. */
        CHECK_INT(cl_nng_transport_send(a, first, (const uint8_t *)"x", 1), 0);
    }
    cl_nng_transport_stats(a, &st);
    CHECK_INT(st.peers, 8);
    /* Each send to a cached peer fills its (bounded) buffer; a new socket
     * would have taken this one instead of refusing it. */
    for (int i = 0; i < CL_NNG_SENDBUF; i++)
        cl_nng_transport_send(a, first, (const uint8_t *)"x", 1);
    CHECK_INT(cl_nng_transport_send(a, first, (const uint8_t *)"x", 1), GV_EAGAIN);
    cl_nng_transport_set_max_peers(a, 3);
    cl_nng_transport_stats(a, &st);
    CHECK_INT(st.peers, 3);
    stop_and_wait(&loop, a);
    CHECK_INT(uv_loop_close(&loop), 0);
}

static int auth_failed_seen(void *arg)
{
    struct cl_nng_stats st;
    cl_nng_transport_stats(arg, &st);
    return st.in.auth_failed > 0;
}

static int malformed_seen(void *arg)
{
    struct cl_nng_stats st;
    cl_nng_transport_stats(arg, &st);
    return st.in.malformed > 0;
}

static void test_sealed(void)
{
    uv_loop_t loop;
    uint8_t k1[CL_KEY_LEN], k2[CL_KEY_LEN];
    struct cl_keyring *ka, *kb, *kc;
    struct inbox ia = {0}, ib = {0}, ic = {0}, ip = {0};
    struct cl_nng_transport *a, *b, *c, *plain;
    struct cl_nng_stats st;
    struct cl_seal_stats ss;
    char aaddr[64], baddr[64], caddr[64], paddr[64];

    CHECK_INT(cl_key_generate(k1), 0);
    CHECK_INT(cl_key_generate(k2), 0);
    CHECK_INT(cl_keyring_new(k1, &ka), 0);
    CHECK_INT(cl_keyring_new(k1, &kb), 0);
    CHECK_INT(cl_keyring_new(k2, &kc), 0);
    uv_loop_init(&loop);
    a = start(&loop, ka, &ia);
    b = start(&loop, kb, &ib);
    c = start(&loop, kc, &ic);
    plain = start(&loop, NULL, &ip);
    addr_of(a, aaddr, sizeof(aaddr));
    addr_of(b, baddr, sizeof(baddr));
    addr_of(c, caddr, sizeof(caddr));
    addr_of(plain, paddr, sizeof(paddr));

    /* Matching keys. */
    CHECK_INT(cl_nng_transport_send(a, baddr, (const uint8_t *)"sealed", 6), 0);
    CHECK(run_until(&loop, got_one, &ib, DEADLINE_MS));
    CHECK(memcmp(ib.last, "sealed", 6) == 0);
    cl_keyring_stats(kb, &ss);
    CHECK_INT(ss.opened, 1);

    /* Mismatched keys: dropped and counted, never delivered. */
    CHECK_INT(cl_nng_transport_send(a, caddr, (const uint8_t *)"wrong key", 9), 0);
    CHECK(run_until(&loop, auth_failed_seen, c, DEADLINE_MS));
    CHECK_INT(ic.count, 0);
    cl_keyring_stats(kc, &ss);
    CHECK_INT(ss.auth_failed, 1);

    /* Plain into a keyed node: unauthenticated, dropped. */
    CHECK_INT(cl_nng_transport_send(plain, baddr, (const uint8_t *)"plain", 5), 0);
    ib.count = 0;
    CHECK(run_until(&loop, auth_failed_seen, b, DEADLINE_MS));
    CHECK_INT(ib.count, 0);

    /* Sealed into a keyless node: cannot be read, dropped. */
    CHECK_INT(cl_nng_transport_send(a, paddr, (const uint8_t *)"secret", 6), 0);
    CHECK(run_until(&loop, malformed_seen, plain, DEADLINE_MS));
    CHECK_INT(ip.count, 0);

    /* Rotation across live transports: install k2 on a and b, use it on a,
     * messages still flow; c (k2 only) now hears a. */
    CHECK_INT(cl_keyring_install(ka, k2), 0);
    CHECK_INT(cl_keyring_install(kb, k2), 0);
    {
        char id2[CL_KEY_ID_LEN + 1];
        cl_key_id(k2, id2);
        CHECK_INT(cl_keyring_use(ka, id2), 0);
    }
    ib.count = 0;
    CHECK_INT(cl_nng_transport_send(a, baddr, (const uint8_t *)"rotated", 7), 0);
    CHECK(run_until(&loop, got_one, &ib, DEADLINE_MS));
    CHECK_INT(cl_nng_transport_send(a, caddr, (const uint8_t *)"now ok", 6), 0);
    CHECK(run_until(&loop, got_one, &ic, DEADLINE_MS));
    CHECK(memcmp(ic.last, "now ok", 6) == 0);
    CHECK_INT(cl_nng_transport_send(b, aaddr, (const uint8_t *)"b to a", 6), 0);
    CHECK(run_until(&loop, got_one, &ia, DEADLINE_MS));

    cl_nng_transport_stats(c, &st);
    CHECK_INT(st.in.auth_failed, 1);
    CHECK_INT(st.in.messages, 1);

    stop_and_wait(&loop, a);
    stop_and_wait(&loop, b);
    stop_and_wait(&loop, c);
    stop_and_wait(&loop, plain);
    CHECK_INT(uv_loop_close(&loop), 0);
    cl_keyring_free(ka);
    cl_keyring_free(kb);
    cl_keyring_free(kc);
}

static uint64_t want_blocked;

struct wanted {
    struct cl_nng_transport *t;
    uint64_t malformed, auth_failed, replayed;
};

static int counted(void *arg)
{
    struct wanted *w = arg;
    struct cl_nng_stats st;
    cl_nng_transport_stats(w->t, &st);
    return st.in.malformed >= w->malformed && st.in.auth_failed >= w->auth_failed &&
           st.in.replayed >= w->replayed;
}

/* Raw bytes from a hostile or broken peer: garbage, truncated and tampered
 * seals, a replay and a stale message are dropped and counted; only the one
 * genuine message is delivered. */
static void test_hostile_input(void)
{
    uv_loop_t loop;
    uint8_t key[CL_KEY_LEN], frame[64], sealed[64 + CL_SEAL_OVERHEAD], bad[sizeof(sealed)];
    struct cl_keyring *kr;
    struct inbox ib = {0};
    struct cl_nng_transport *b;
    struct cl_nng_stats st;
    struct wanted w = {0};
    nng_socket raw;
    char url[64];
    size_t slen, n;
    int flen;

    CHECK_INT(cl_key_generate(key), 0);
    CHECK_INT(cl_keyring_new(key, &kr), 0);
    uv_loop_init(&loop);
    b = start(&loop, kr, &ib);
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", (unsigned)cl_nng_transport_port(b));
    CHECK_INT(nng_push0_open(&raw), 0);
    CHECK_INT(nng_dial(raw, url, NULL, 0), 0);

    flen = cl_nng_frame_encode("evil:1", (const uint8_t *)"genuine", 7, frame, sizeof(frame));
    CHECK(flen > 0);
    CHECK_INT(cl_seal(kr, frame, (size_t)flen, sealed, sizeof(sealed), &slen), 0);

    CHECK_INT(nng_send(raw, "garbage!", 8, 0), 0);    /* malformed */
    CHECK_INT(nng_send(raw, sealed, 3, 0), 0);        /* malformed */
    CHECK_INT(nng_send(raw, sealed, slen - 1, 0), 0); /* auth */
    memcpy(bad, sealed, slen);
    bad[slen / 2] ^= 0x20;
    CHECK_INT(nng_send(raw, bad, slen, 0), 0);           /* auth */
    CHECK_INT(nng_send(raw, frame, (size_t)flen, 0), 0); /* auth: plain */
    CHECK_INT(nng_send(raw, sealed, slen, 0), 0);        /* delivered */
    CHECK_INT(nng_send(raw, sealed, slen, 0), 0);        /* replayed */
    CHECK_INT(cl_seal_at(kr, cl_seal_clock_ms() - 2 * CL_REPLAY_WINDOW_MS, frame, (size_t)flen,
                         sealed, sizeof(sealed), &n),
              0);
    CHECK_INT(nng_send(raw, sealed, n, 0), 0); /* replayed: stale */
    w.t = b;
    w.malformed = 2;
    w.auth_failed = 3;
    w.replayed = 2;
    CHECK(run_until(&loop, counted, &w, DEADLINE_MS));
    cl_nng_transport_stats(b, &st);
    CHECK_INT(st.in.malformed, 2);
    CHECK_INT(st.in.auth_failed, 3);
    CHECK_INT(st.in.replayed, 2);
    CHECK_INT(st.in.messages, 1);
    CHECK_INT(ib.count, 1);
    CHECK(memcmp(ib.last, "genuine", 7) == 0);

    nng_close(raw);
    stop_and_wait(&loop, b);
    CHECK_INT(uv_loop_close(&loop), 0);
    cl_keyring_free(kr);
}

static int blocked_in_seen(void *arg)
{
    struct cl_nng_stats st;
    cl_nng_transport_stats(arg, &st);
    return st.in.blocked >= want_blocked;
}

static void test_blocked(void)
{
    uv_loop_t loop;
    struct inbox ia = {0}, ib = {0};
    struct cl_nng_transport *a, *b;
    struct cl_nng_stats st;
    char aaddr[64], baddr[64];
    const char *block[1];

    uv_loop_init(&loop);
    a = start(&loop, NULL, &ia);
    b = start(&loop, NULL, &ib);
    addr_of(a, aaddr, sizeof(aaddr));
    addr_of(b, baddr, sizeof(baddr));

    /* a blocks b: a's sends to b fail, b's messages to a are dropped. */
    block[0] = baddr;
    CHECK_INT(cl_nng_set_blocked(a, block, 1), 0);
    CHECK_INT(cl_nng_transport_send(a, baddr, (const uint8_t *)"x", 1), GV_EAGAIN);
    CHECK_INT(cl_nng_transport_send(b, aaddr, (const uint8_t *)"y", 1), 0);
    want_blocked = 1;
    CHECK(run_until(&loop, blocked_in_seen, a, DEADLINE_MS));
    CHECK_INT(ia.count, 0);
    cl_nng_transport_stats(a, &st);
    CHECK_INT(st.out.blocked, 1);
    CHECK_INT(st.in.blocked, 1);

    /* Heal. */
    CHECK_INT(cl_nng_set_blocked(a, NULL, 0), 0);
    CHECK_INT(cl_nng_transport_send(a, baddr, (const uint8_t *)"x", 1), 0);
    CHECK(run_until(&loop, got_one, &ib, DEADLINE_MS));
    CHECK_INT(cl_nng_transport_send(b, aaddr, (const uint8_t *)"y", 1), 0);
    CHECK(run_until(&loop, got_one, &ia, DEADLINE_MS));

    /* "from" is the advertise address: change b's, and blocking that name
     * drops b's messages at a. */
    CHECK_INT(cl_nng_transport_set_advertise(b, "gw-b:7946"), 0);
    block[0] = "gw-b:7946";
    CHECK_INT(cl_nng_set_blocked(a, block, 1), 0);
    ia.count = 0;
    CHECK_INT(cl_nng_transport_send(b, aaddr, (const uint8_t *)"z", 1), 0);
    CHECK_INT(cl_nng_transport_send(b, aaddr, (const uint8_t *)"z", 1), 0);
    want_blocked = 3;
    CHECK(run_until(&loop, blocked_in_seen, a, DEADLINE_MS));
    CHECK_INT(ia.count, 0);

    stop_and_wait(&loop, a);
    stop_and_wait(&loop, b);
    CHECK_INT(uv_loop_close(&loop), 0);
}

static void test_lifecycle(void)
{
    uv_loop_t loop;
    struct inbox ia = {0}, ib = {0};
    struct cl_nng_transport *a, *b, *dup = NULL;
    char baddr[64];
    int done = 0;

    uv_loop_init(&loop);
    b = start(&loop, NULL, &ib);
    addr_of(b, baddr, sizeof(baddr));
    CHECK_INT(cl_nng_transport_start(&loop, baddr, NULL, on_receive, &ib, &dup), -EADDRINUSE);
    CHECK(dup == NULL);
    CHECK_INT(cl_nng_transport_start(&loop, "nohost", NULL, on_receive, &ib, &dup), GV_EINVAL);
    CHECK_INT(cl_nng_transport_start(&loop, "", NULL, on_receive, &ib, &dup), GV_EINVAL);
    CHECK_INT(cl_nng_transport_start(&loop, "127.0.0.1:99999", NULL, on_receive, &ib, &dup),
              GV_EINVAL);

    /* A wildcard listener has no default advertise address. */
    CHECK_INT(cl_nng_transport_start(&loop, "0.0.0.0:0", NULL, on_receive, &ia, &a), 0);
    CHECK_STR(cl_nng_transport_advertise(a), "");
    CHECK_INT(cl_nng_transport_set_advertise(a, "gw1:7946"), 0);
    CHECK_STR(cl_nng_transport_advertise(a), "gw1:7946");

    /* Stopping from inside the receive callback. (Only one message: one
     * arriving while a pull socket closes can leak inside nng 1.5.2.) */
    ib.stop_me = b;
    CHECK_INT(cl_nng_transport_send(a, baddr, (const uint8_t *)"bye", 3), 0);
    CHECK(run_until(&loop, got_one, &ib, DEADLINE_MS));
    CHECK(run_until(&loop, flag_set, &ib.stopped, DEADLINE_MS));
    CHECK_INT(ib.count, 1);
    /* Sends after stop are refused. */
    cl_nng_transport_stop(a, on_stopped, &done);
    CHECK_INT(cl_nng_transport_send(a, baddr, (const uint8_t *)"x", 1), -ESHUTDOWN);
    CHECK(run_until(&loop, flag_set, &done, DEADLINE_MS));
    CHECK_INT(ib.count, 1);
    CHECK_INT(uv_loop_close(&loop), 0);
}

static void test_frame_codec(void)
{
    uint8_t buf[64];
    const char *from;
    const uint8_t *payload;
    size_t flen, plen;
    int n;

    n = cl_nng_frame_encode("gw1:7946", (const uint8_t *)"abc", 3, buf, sizeof(buf));
    CHECK_INT(n, CL_NNG_FRAME_HEADER + 8 + 3);
    CHECK_INT(cl_nng_frame_decode(buf, (size_t)n, &from, &flen, &payload, &plen), 0);
    CHECK_INT(flen, 8);
    CHECK(memcmp(from, "gw1:7946", 8) == 0);
    CHECK_INT(plen, 3);
    CHECK(memcmp(payload, "abc", 3) == 0);
    for (int len = 0; len < CL_NNG_FRAME_HEADER + 8; len++)
        CHECK_INT(cl_nng_frame_decode(buf, (size_t)len, &from, &flen, &payload, &plen), GV_EPROTO);
    buf[4] = 200; /* from length past the end */
    CHECK_INT(cl_nng_frame_decode(buf, (size_t)n, &from, &flen, &payload, &plen), GV_EPROTO);
    buf[4] = 8;
    buf[3] = 9; /* version */
    CHECK_INT(cl_nng_frame_decode(buf, (size_t)n, &from, &flen, &payload, &plen), GV_EPROTO);
    buf[3] = CL_NNG_FRAME_VERSION;
    buf[6] = '\n'; /* not an address */
    CHECK_INT(cl_nng_frame_decode(buf, (size_t)n, &from, &flen, &payload, &plen), GV_EPROTO);
    CHECK_INT(cl_nng_frame_encode("gw1", (const uint8_t *)"abc", 3, buf, 7), -EMSGSIZE);
}

TEST_MAIN(TEST(test_exchange), TEST(test_burst), TEST(test_host_name), TEST(test_unreachable),
          TEST(test_keep_connects_ahead), TEST(test_peer_comes_up), TEST(test_peer_cap),
          TEST(test_sealed), TEST(test_hostile_input), TEST(test_blocked), TEST(test_lifecycle),
          TEST(test_frame_codec))
