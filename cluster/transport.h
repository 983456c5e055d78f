/* transport.h - how the gossip layer sends and receives datagrams.
 *
 * Variation is a table: the real transport is nng (push/pull over tcp://,
 * sealed with AES-256-GCM when a cluster key is set, see nng_transport.c);
 * simulations and unit tests plug in an in-memory transport with loss and
 * partitions. Membership code only ever sees this interface.
 *
 * Semantics are datagram-like: send() is best effort and never blocks; a
 * message to an unreachable peer is dropped, never queued without bound.
 * Threads: send() is called on the cluster loop's thread. A transport delivers
 * received messages by calling the receive callback on that same thread
 * (an nng transport hands messages over with uv_async_send). The data passed
 * to receive is only valid during the call.
 */
#ifndef GV_CLUSTER_TRANSPORT_H
#define GV_CLUSTER_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

typedef void (*cl_receive_fn)(void *arg, const uint8_t *data, size_t len);

struct cl_transport_ops {
    const char *name;
    /* Sends len bytes to the peer at addr ("host:port"). Returns 0 when the
     * message was handed over, or a negative error when it was dropped. */
    int (*send)(void *transport, const char *addr, const uint8_t *data, size_t len);
    /* Optional: drops any connection state kept for addr, so the next send
     * dials it afresh (resolving a name again). Called when the member at
     * addr is declared dead or has left: a peer that comes back, maybe under
     * a new IP behind the same name, must not be sent to through a TCP
     * connection to where it used to be. */
    void (*forget)(void *transport, const char *addr);
    /* Optional: a live member is at addr: connect ahead of the first send
     * and keep the connection while idle, until forget. The first message
     * of a config change goes to every member at once; without this it
     * waits for a TCP connect to each member the node had not yet talked
     * to (about half of them at N = 100 after a minute: idle nodes only
     * probe one member a second). */
    void (*keep)(void *transport, const char *addr);
};

struct cl_transport {
    const struct cl_transport_ops *ops;
    void *impl;
};

static inline int cl_transport_send(struct cl_transport *t, const char *addr, const uint8_t *data,
                                    size_t len)
{
    return t->ops->send(t->impl, addr, data, len);
}

static inline void cl_transport_forget(struct cl_transport *t, const char *addr)
{
    if (t->ops->forget != NULL)
        t->ops->forget(t->impl, addr);
}

static inline void cl_transport_keep(struct cl_transport *t, const char *addr)
{
    if (t->ops->keep != NULL)
        t->ops->keep(t->impl, addr);
}

/* Largest message any transport carries (before sealing). */
#define CL_MAX_MESSAGE (64 * 1024)

#endif
