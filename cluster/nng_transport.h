/* nng_transport.h - the real gossip transport: nng push/pull over tcp://,
 * sealed with the cluster keyring when one is configured.
 *
 * Shape: one pull0 socket listens on the gossip address; one push0 socket per
 * peer address dials it (non-blocking, nng reconnects in the background and
 * resolves host names itself on every attempt, so docker compose service
 * names work and a restarted peer with a new IP is found again). Peers are
 * created on first send, cached by address, evicted after CL_NNG_PEER_IDLE_MS
 * without a send and capped at CL_NNG_MAX_PEERS (least recently used goes).
 * A send never blocks: it hands the message to nng without waiting, and each
 * push socket buffers at most CL_NNG_SENDBUF messages while its peer is
 * unreachable; beyond that the message is dropped and counted.
 *
 * Frame (what is sealed when a keyring is set, or sent as is):
 *     'G' 'V' 'T' VERSION | from length (1) | from (advertise "host:port") | payload
 * "from" is the sender's advertise address. Only the fault switch reads it;
 * membership carries its own identities inside the payload. With a keyring
 * it is inside the sealed part, so it is authenticated too.
 *
 * Threads and memory:
 *   - start, send, set_advertise and stop run on the cluster loop's thread;
 *     the receive callback is called on that thread (from a uv_async handle),
 *     with data valid only during the call.
 *   - nng calls back on its own threads: the receive aio callback only moves
 *     the nng message into a mutex-protected bounded queue and calls
 *     uv_async_send(); it never decrypts, decodes or calls user code.
 *   - nng_close() waits for nng's threads (and can hang in nng 1.5.2, see
 *     nng_transport.c), so evicted peers and, at stop, all sockets are
 *     closed by a background thread; nothing on the loop waits for it.
 *   - set_blocked and stats may be called from any thread.
 *   - The keyring is borrowed: the caller keeps it alive until the stop
 *     callback and may rotate its keys at any time (the keyring locks).
 */
#ifndef GV_CLUSTER_NNG_TRANSPORT_H
#define GV_CLUSTER_NNG_TRANSPORT_H

#include "cluster/seal.h"
#include "cluster/transport.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define CL_NNG_FRAME_VERSION 1
#define CL_NNG_MAX_ADDR      255
#define CL_NNG_FRAME_HEADER  5
/* Largest frame and largest message on the wire. */
#define CL_NNG_MAX_FRAME     (CL_NNG_FRAME_HEADER + CL_NNG_MAX_ADDR + CL_MAX_MESSAGE)
#define CL_NNG_MAX_WIRE      (CL_NNG_MAX_FRAME + CL_SEAL_OVERHEAD)
#define CL_NNG_SENDBUF       16
#define CL_NNG_MAX_PEERS     1024
#define CL_NNG_PEER_IDLE_MS  (5 * 60 * 1000)
#define CL_NNG_RECONN_MIN_MS 100
#define CL_NNG_RECONN_MAX_MS 2000
#define CL_NNG_RECV_QUEUE    4096

struct cl_nng_transport;

struct cl_nng_stats {
    struct {
        uint64_t messages; /* handed to nng */
        uint64_t bytes;    /* payload bytes of those */
        uint64_t dropped;  /* bad address, too large, send buffer full, stopped */
        uint64_t blocked;  /* dropped by the test fault switch */
    } out;
    struct {
        uint64_t messages;    /* delivered to the receive callback */
        uint64_t bytes;       /* payload bytes of those */
        uint64_t dropped;     /* receive queue full */
        uint64_t blocked;     /* dropped by the test fault switch */
        uint64_t auth_failed; /* no key opened it, or plain while a key is set */
        uint64_t malformed;   /* bad seal header or bad frame */
        uint64_t replayed;    /* outside the replay window, or seen before */
    } in;
    uint64_t peers; /* push sockets currently cached */
};

typedef void (*cl_nng_stopped_fn)(void *arg);

/* Starts listening on listen_addr ("host:port"; "0.0.0.0:7946" listens on
 * tcp://0.0.0.0:7946; port 0 picks a free port, see cl_nng_transport_port())
 * and delivers received payloads to receive(arg, ...) on loop's thread.
 * keyring may be NULL (then messages go unsealed, with a warning).
 * Returns 0 and sets *out, or GV_EINVAL (bad address), -EADDRINUSE,
 * -EACCES, GV_ENOMEM or GV_EIO, with a gv_error line naming the address. */
int cl_nng_transport_start(uv_loop_t *loop, const char *listen_addr, struct cl_keyring *keyring,
                           cl_receive_fn receive, void *arg, struct cl_nng_transport **out);

/* Stops receiving at once (no receive callback runs after it, and it is
 * safe to call from one), hands every socket to the background closer,
 * closes the loop handles and, once the loop has run their close callbacks,
 * frees the transport and calls done(arg) on the loop (done may be NULL). */
void cl_nng_transport_stop(struct cl_nng_transport *t, cl_nng_stopped_fn done, void *arg);

/* Sets the address sent as "from" (node.advertise). The default is the
 * listen address when it names a host (not 0.0.0.0 or ::), else empty.
 * Returns 0 or GV_EINVAL when longer than CL_NNG_MAX_ADDR. */
int cl_nng_transport_set_advertise(struct cl_nng_transport *t, const char *addr);
const char *cl_nng_transport_advertise(const struct cl_nng_transport *t);

/* Lowers the peer cache cap (1..CL_NNG_MAX_PEERS, the default), evicting the
 * least recently used peers now if needed. */
void cl_nng_transport_set_max_peers(struct cl_nng_transport *t, size_t max);

/* The TCP port the listener bound (useful after asking for port 0). */
uint16_t cl_nng_transport_port(const struct cl_nng_transport *t);

/* Sends len bytes (at most CL_MAX_MESSAGE) to addr without blocking.
 * Returns 0 when handed to nng, or a negative error when dropped (counted):
 * GV_EINVAL bad address, -EMSGSIZE too large, GV_EAGAIN buffer full or
 * blocked by the fault switch, -ESHUTDOWN after stop, GV_ENOMEM, GV_EIO. */
int cl_nng_transport_send(struct cl_nng_transport *t, const char *addr, const uint8_t *data,
                          size_t len);

/* The transport as the interface membership uses. */
extern const struct cl_transport_ops cl_nng_transport_ops;
struct cl_transport cl_nng_transport_iface(struct cl_nng_transport *t);

void cl_nng_transport_stats(struct cl_nng_transport *t, struct cl_nng_stats *out);

/* Test-only fault switch: from now on, drop every message sent to or
 * received from these addresses (compared as strings with the "from" of
 * received frames, i.e. the senders' advertise addresses, and with the
 * address given to send). Replaces the previous set; n == 0 heals. The node
 * exposes it only when test faults are enabled. Returns 0 or GV_ENOMEM
 * (the previous set stays). */
int cl_nng_set_blocked(struct cl_nng_transport *t, const char *const *addrs, size_t n);

/* Frame codec, exposed for tests and the fuzzer. encode writes the frame
 * into out (CL_NNG_FRAME_HEADER + strlen(from) + len bytes) and returns its
 * length, or -EMSGSIZE. decode never trusts a length: it returns 0 and
 * points into p, or GV_EPROTO. */
int cl_nng_frame_encode(const char *from, const uint8_t *data, size_t len, uint8_t *out,
                        size_t outcap);
int cl_nng_frame_decode(const uint8_t *p, size_t len, const char **from, size_t *from_len,
                        const uint8_t **payload, size_t *payload_len);

#endif
