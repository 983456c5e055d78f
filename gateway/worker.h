/* worker.h - a proxy worker: one thread, one libuv loop, one SO_REUSEPORT
 * listener, its own upstream connection pool and metrics.
 *
 * Threads: gw_worker_start() and gw_worker_join() are called by the node's
 * main thread; gw_worker_drain() may be called from any thread (it only
 * signals the worker through uv_async_send). Everything else runs on the
 * worker's own thread. The config snapshot slot, the metrics and the sticky
 * key belong to the caller and must outlive the worker.
 */
#ifndef GV_GATEWAY_WORKER_H
#define GV_GATEWAY_WORKER_H

#include "gateway/metrics.h"
#include "gateway/snapshot.h"

#include <stdbool.h>
#include <stdint.h>

struct gw_worker_config {
    int id;
    int listen_fd; /* from gw_listen_socket(); the worker takes it over */
    const char *node_name;
    bool access_log;
    uint64_t header_timeout_ms;
    uint64_t idle_timeout_ms;
    uint32_t max_header_bytes;
    uint32_t max_headers;
    struct gw_snapshot_slot *slot;
    struct gw_metrics *metrics;
    const uint8_t *sticky_key; /* 32 bytes */
    struct gw_tls_slot *tls;   /* certificates; NULL = no TLS listener */
    int tls_listen_fd;         /* from gw_listen_socket() when tls is set */
};

struct gw_worker;
struct gw_tls_slot;

/* Creates a TCP socket bound to addr ("0.0.0.0:8080") with SO_REUSEPORT, so
 * that each worker can bind its own and the kernel spreads connections.
 * Returns 0 and the fd, or a negative error. */
int gw_listen_socket(const char *addr, int *fd_out);

/* Starts the worker thread. Returns 0 or a negative error (nothing started). */
int gw_worker_start(const struct gw_worker_config *cfg, struct gw_worker **out);
/* Stops accepting, closes idle connections, lets in-flight requests finish
 * and then ends the thread. Safe from any thread, idempotent. */
void gw_worker_drain(struct gw_worker *w);
/* True once a drained worker's thread has finished its work (any thread). */
bool gw_worker_finished(struct gw_worker *w);
/* Waits for the thread to end and frees the worker. */
void gw_worker_join(struct gw_worker *w);

#endif
