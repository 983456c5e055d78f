/* h2_fuzz.c - libFuzzer target for the HTTP/2 frontend (gateway/h2.c): the
 * input, after the client preface, is fed as frames to a connection of a
 * worker whose snapshot slot is empty, so every stream that completes its
 * head is routed and answered (503) through the HTTP/2 answer path. The
 * connection's socket is one end of a socketpair whose other end is drained.
 * Checked: nothing crashes or leaks (ASan), and the worker ends each input
 * with no connection and no request left.
 *   build-fuzz/tests/fuzz/h2_fuzz -max_total_time=60 -dict=tests/fuzz/h2_fuzz.dict
 */
#include "gateway/h2.h"
#include "gateway/pipeline.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
static struct gw_worker *w;
static struct gw_snapshot_slot slot;

static void setup(void)
{
    static struct gw_metrics *metrics;
    w = calloc(1, sizeof(*w));
    if (w == NULL || uv_loop_init(&w->loop) != 0 || gw_metrics_new(&metrics) != 0)
        abort();
    gw_snapshot_slot_init(&slot);
    w->cfg.node_name = "fuzz";
    w->cfg.max_header_bytes = 16384;
    w->cfg.max_headers = 100;
    w->cfg.header_timeout_ms = 10000;
    w->cfg.idle_timeout_ms = 10000;
    w->cfg.slot = &slot;
    w->cfg.metrics = metrics;
    gw_link_init(&w->idle_conns);
    gw_link_init(&w->head_conns);
    gw_link_init(&w->busy_conns);
    gw_link_init(&w->linger_conns);
    gw_link_init(&w->pool);
    gw_link_init(&w->h2_pool);
}

static void drain(int fd)
{
    char buf[65536];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2];
    if (w == NULL)
        setup();
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        abort();
    struct gw_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        abort();
    c->w = w;
    gw_link_init(&c->link);
    uv_tcp_init(&w->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_tcp_open(&c->tcp, sv[0]) != 0)
        abort();
    w->nconns++;
    gw_link_append(&w->idle_conns, &c->link);
    c->proto_known = true;
    if (gw_h2_start(c) != 0)
        abort();
    gw_h2_feed(c, preface, sizeof preface - 1);
    /* In two pieces, so a frame split across reads is exercised too. */
    size_t half = size / 2;
    if (!c->closing)
        gw_h2_feed(c, (const char *)data, half);
    drain(sv[1]);
    if (!c->closing)
        gw_h2_feed(c, (const char *)data + half, size - half);
    drain(sv[1]);
    gw_conn_close(c);
    uv_run(&w->loop, UV_RUN_NOWAIT);
    close(sv[1]);
    if (w->nconns != 0 || !gw_link_empty(&w->busy_conns) || !gw_link_empty(&w->idle_conns))
        abort();
    return 0;
}
