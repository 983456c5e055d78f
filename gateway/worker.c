/* worker.c - proxy worker threads: loop, listener, config views, timeouts,
 * access log and graceful drain. */
#include "gateway/auth/cred_cache.h"
#include "gateway/pipeline.h"
#include "gateway/tls.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TICK_MS 250

void gw_link_init(struct gw_link *l)
{
    l->prev = l->next = l;
}

void gw_link_remove(struct gw_link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = l;
}

void gw_link_append(struct gw_link *head, struct gw_link *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}

bool gw_link_empty(const struct gw_link *head)
{
    return head->next == head;
}

int gw_listen_socket(const char *addr, int *fd_out)
{
    char host[256];
    uint16_t port;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t len;
    if (gv_split_hostport(addr, host, sizeof(host), &port) != 0)
        return GV_EINVAL;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        len = sizeof(*in4);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        len = sizeof(*in6);
    } else {
        return GV_EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0) {
        int rv = -errno;
        close(fd);
        return rv;
    }
    *fd_out = fd;
    return 0;
}

static void view_free(struct gw_view *v)
{
    if (v->balancers != NULL) {
        for (size_t i = 0; i < v->snap->nservices; i++)
            lb_balancer_free(v->balancers[i]);
        free(v->balancers);
    }
    gw_snapshot_unref(v->snap);
    free(v);
}

void gw_view_unref(struct gw_view *v)
{
    if (v != NULL && --v->refs == 0)
        view_free(v);
}

static struct gw_view *view_new(struct gw_snapshot *snap)
{
    struct gw_view *v = calloc(1, sizeof(*v));
    if (v == NULL)
        goto fail;
    v->snap = snap;
    v->refs = 1;
    v->balancers = calloc(snap->nservices ? snap->nservices : 1, sizeof(*v->balancers));
    if (v->balancers == NULL)
        goto fail;
    for (size_t i = 0; i < snap->nservices; i++)
        if (lb_balancer_new(&snap->services[i], snap->states[i], &v->balancers[i]) != 0)
            goto fail;
    return v;
fail:
    if (v != NULL)
        view_free(v);
    else
        gw_snapshot_unref(snap);
    return NULL;
}

struct gw_view *gw_worker_view(struct gw_worker *w)
{
    struct gw_snapshot_slot *slot = w->cfg.slot;
    uint64_t gen = atomic_load_explicit(&slot->generation, memory_order_acquire);
    if (w->view == NULL || w->view->snap->generation != gen) {
        struct gw_snapshot *snap = gw_snapshot_acquire(slot);
        if (snap != NULL) {
            struct gw_view *v = view_new(snap);
            if (v != NULL) {
                gw_view_unref(w->view);
                w->view = v;
                gw_pool_prune(w, snap);
            }
        }
    }
    if (w->view != NULL)
        w->view->refs++;
    return w->view;
}

void gw_worker_log(struct gw_worker *w, const char *line, size_t len)
{
    if (gv_buf_append(&w->log, line, len) != 0)
        return;
    if (w->log.len >= 32 * 1024) {
        ssize_t n = write(STDOUT_FILENO, w->log.data, w->log.len);
        (void)n;
        gv_buf_reset(&w->log);
    }
}

static void log_flush(struct gw_worker *w)
{
    if (w->log.len > 0) {
        ssize_t n = write(STDOUT_FILENO, w->log.data, w->log.len);
        (void)n;
        gv_buf_reset(&w->log);
    }
}

static void on_listener_closed(uv_handle_t *h)
{
    (void)h;
}

static void maybe_finish(struct gw_worker *w)
{
    if (!w->draining || w->nconns > 0)
        return;
    gw_pool_close_all(w);
    if (!uv_is_closing((uv_handle_t *)&w->ticker))
        uv_close((uv_handle_t *)&w->ticker, NULL);
    if (!uv_is_closing((uv_handle_t *)&w->wakeup))
        uv_close((uv_handle_t *)&w->wakeup, NULL);
}

void gw_worker_conn_gone(struct gw_worker *w)
{
    w->nconns--;
    atomic_fetch_sub_explicit(&w->cfg.metrics->conns, 1, memory_order_relaxed);
    maybe_finish(w);
}

static void start_drain(struct gw_worker *w)
{
    if (w->draining)
        return;
    w->draining = true;
    w->drain_deadline_ms = gv_now_ms() + GW_DRAIN_MS;
    if (!uv_is_closing((uv_handle_t *)&w->listener))
        uv_close((uv_handle_t *)&w->listener, on_listener_closed);
    if (w->cfg.tls != NULL && !uv_is_closing((uv_handle_t *)&w->tls_listener))
        uv_close((uv_handle_t *)&w->tls_listener, on_listener_closed);
    gw_conn_close_idle(w);
    maybe_finish(w);
}

static void on_wakeup(uv_async_t *a)
{
    struct gw_worker *w = a->data;
    if (atomic_load(&w->drain_requested))
        start_drain(w);
}

static void on_tick(uv_timer_t *t)
{
    struct gw_worker *w = t->data;
    uint64_t now = gv_now_ms();
    gw_conn_tick(w, now);
    /* A new snapshot is taken up between requests too, so pooled connections
     * to addresses that left close without waiting for a request. */
    if (w->view != NULL)
        gw_view_unref(gw_worker_view(w));
    gw_pool_tick(w, now);
    log_flush(w);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct gw_worker *w = server->data;
    if (status < 0) {
        gv_warn("worker %d: accept: %s", w->cfg.id, uv_strerror(status));
        return;
    }
    gw_conn_accept(w, server, NULL);
}

static void on_tls_connection(uv_stream_t *server, int status)
{
    struct gw_worker *w = server->data;
    if (status < 0) {
        gv_warn("worker %d: accept: %s", w->cfg.id, uv_strerror(status));
        return;
    }
    struct gw_tls_ctxset *set = gw_tls_slot_get(w->cfg.tls);
    gw_conn_accept(w, server, set);
    gw_tls_ctxset_unref(set);
}

static void *worker_main(void *arg)
{
    struct gw_worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    log_flush(w);
    gw_request_cache_clear(w);
    gv_buf_free(&w->cork);
    gw_view_unref(w->view);
    w->view = NULL;
    gw_cred_cache_reset(); /* this thread's verified tokens and passwords */
    /* Close whatever is left (nothing, normally) so the loop can close. */
    uv_run(&w->loop, UV_RUN_NOWAIT);
    atomic_store(&w->finished, 1);
    return NULL;
}

int gw_worker_start(const struct gw_worker_config *cfg, struct gw_worker **out)
{
    struct gw_worker *w = calloc(1, sizeof(*w));
    int rv;
    if (w == NULL)
        return GV_ENOMEM;
    w->cfg = *cfg;
    gw_link_init(&w->idle_conns);
    gw_link_init(&w->head_conns);
    gw_link_init(&w->busy_conns);
    gw_link_init(&w->linger_conns);
    gw_link_init(&w->pool);
    gw_link_init(&w->h2_pool);
    gv_buf_init(&w->log);
    if ((rv = uv_loop_init(&w->loop)) != 0)
        goto fail_free;
    uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    if ((rv = uv_tcp_open(&w->listener, cfg->listen_fd)) != 0 ||
        (rv = uv_listen((uv_stream_t *)&w->listener, 1024, on_connection)) != 0)
        goto fail_loop;
    if (cfg->tls != NULL) {
        uv_tcp_init(&w->loop, &w->tls_listener);
        w->tls_listener.data = w;
        if ((rv = uv_tcp_open(&w->tls_listener, cfg->tls_listen_fd)) != 0 ||
            (rv = uv_listen((uv_stream_t *)&w->tls_listener, 1024, on_tls_connection)) != 0)
            goto fail_loop;
    }
    uv_async_init(&w->loop, &w->wakeup, on_wakeup);
    w->wakeup.data = w;
    uv_timer_init(&w->loop, &w->ticker);
    w->ticker.data = w;
    uv_timer_start(&w->ticker, on_tick, TICK_MS, TICK_MS);
    if ((rv = -pthread_create(&w->thread, NULL, worker_main, w)) != 0)
        goto fail_loop_handles;
    *out = w;
    return 0;
fail_loop_handles:
    uv_close((uv_handle_t *)&w->wakeup, NULL);
    uv_close((uv_handle_t *)&w->ticker, NULL);
fail_loop:
    uv_close((uv_handle_t *)&w->listener, NULL);
    if (w->tls_listener.loop == &w->loop) /* initialised */
        uv_close((uv_handle_t *)&w->tls_listener, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
fail_free:
    free(w);
    return rv;
}

void gw_worker_drain(struct gw_worker *w)
{
    atomic_store(&w->drain_requested, 1);
    uv_async_send(&w->wakeup);
}

bool gw_worker_finished(struct gw_worker *w)
{
    return atomic_load(&w->finished) != 0;
}

void gw_worker_join(struct gw_worker *w)
{
    pthread_join(w->thread, NULL);
    if (uv_loop_close(&w->loop) != 0)
        gv_warn("worker %d: loop closed with handles open", w->cfg.id);
    gv_buf_free(&w->log);
    free(w);
}
