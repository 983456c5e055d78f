/* health.c - active HTTP health checks on the control loop (see health.h). */
#include "balancer/health.h"
#include "common/buf.h"
#include "common/err.h"
#include "balancer/grpc_probe.h"
#include "common/httpc.h"
#include "common/log.h"
#include "common/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a probe is waiting for, to say what timed out. */
enum hc_phase { HC_RESOLVE, HC_CONNECT, HC_RESPONSE };

/* Copied settings of one checked target; replaced whole on lb_health_set. */
struct hc_conf {
    const char *service;
    const char *address;
    const char *host;
    const char *path;
    const char *connect;   /* what a probe connects to: host, or an expanded target's IP */
    const char *authority; /* the Host header: the address, or the name an IP stands for */
    uint16_t port;
    uint64_t interval_ms;
    uint64_t timeout_ms;
    int healthy;
    int unhealthy;
    bool tls;
    bool grpc;      /* probe with grpc.health.v1.Health/Check over HTTP/2, not GET path */
    char strings[]; /* the six strings above */
};

/* One checked target. Its two timers live as long as it does; the TCP
 * handle and the resolver request live for one probe. `handles` counts what
 * is open or in flight (timers, tcp, getaddrinfo), and the struct is freed
 * when it is retired and that count reaches zero. */
struct hc_target {
    struct lb_health *h;
    struct lb_target_state *st;
    struct hc_conf *conf;
    uv_timer_t tick;     /* every interval: start a probe */
    uv_timer_t deadline; /* this probe's timeout */
    uv_getaddrinfo_t gai;
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    struct gv_httpc resp;    /* this probe's answer, up to its head */
    struct addrinfo *ai;     /* resolved addresses of this probe */
    struct addrinfo *ai_cur; /* the one being tried */
    char *req;               /* this probe's request bytes */
    size_t req_len;
    struct lb_grpc_probe *grpc; /* this probe's HTTP/2 session (grpc services) */
    char rbuf[1024];
    char last_err[96]; /* cause of the previous failed connect attempt */
    int handles;
    enum hc_phase phase;
    bool probing;   /* a probe has started and has no verdict yet */
    bool gai_busy;  /* getaddrinfo request in flight */
    bool tcp_busy;  /* tcp initialised and not yet closed */
    bool reconnect; /* connect to ai_cur once the tcp handle has closed */
    bool retired;
    void *tls;        /* this probe's TLS engine (tls services), or NULL */
    bool tls_req_out; /* the request went into the TLS engine */
};

struct lb_health {
    uv_loop_t *loop;
    struct hc_target **targets; /* the checked set */
    size_t ntargets;
    size_t live;        /* allocated targets, retired ones included */
    uv_timer_t anchor;  /* never started: closing it makes "done" async */
    bool anchor_closed; /* its close callback has run */
    bool stopping;
    struct lb_health_hooks hooks;
    void *hooks_arg;
    const struct lb_probe_tls_ops *tls_ops;
    void *tls_arg;
    void (*done)(void *arg);
    void *done_arg;
};

static void probe_start(struct hc_target *t);
static void tls_pump(struct hc_target *t, const char *data, size_t len);
static void probe_finish(struct hc_target *t, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Frees h after lb_health_stop once nothing it owns is open. */
static void health_maybe_done(struct lb_health *h)
{
    if (!h->stopping || !h->anchor_closed || h->live > 0)
        return;
    void (*done)(void *) = h->done;
    void *arg = h->done_arg;
    free(h->targets);
    free(h);
    if (done != NULL)
        done(arg);
}

static void target_maybe_free(struct hc_target *t)
{
    if (!t->retired || t->handles > 0)
        return;
    struct lb_health *h = t->h;
    uv_freeaddrinfo(t->ai);
    free(t->req);
    lb_grpc_probe_free(t->grpc);
    free(t->conf);
    free(t);
    h->live--;
    health_maybe_done(h);
}

static void timer_close_cb(uv_handle_t *handle)
{
    struct hc_target *t = handle->data;
    t->handles--;
    target_maybe_free(t);
}

static void tcp_close_cb(uv_handle_t *handle)
{
    struct hc_target *t = GV_CONTAINER_OF((uv_tcp_t *)handle, struct hc_target, tcp);
    t->tcp_busy = false;
    t->handles--;
    if (t->reconnect && t->probing && !t->retired) {
        t->reconnect = false;
        probe_start(t);
        return;
    }
    t->reconnect = false;
    target_maybe_free(t);
}

/* The probe's TLS engine goes with its connection. */
static void tls_drop(struct hc_target *t)
{
    if (t->tls != NULL)
        t->h->tls_ops->close(t->tls);
    t->tls = NULL;
    t->tls_req_out = false;
}

static void tcp_close(struct hc_target *t)
{
    tls_drop(t);
    if (t->tcp_busy && !uv_is_closing((uv_handle_t *)&t->tcp))
        uv_close((uv_handle_t *)&t->tcp, tcp_close_cb);
}

static void notify(struct hc_target *t, bool healthy, const char *why)
{
    struct lb_health *h = t->h;
    if (h->hooks.on_transition != NULL)
        h->hooks.on_transition(h->hooks_arg, t->conf->service, t->conf->address, healthy, why);
}

/* Clears the verdict of the checks, or their pending first check; a
 * passive ejection keeps its own reason. */
static void reason_clear_checked(struct lb_target_state *st)
{
    int r = LB_REASON_HEALTH_CHECK;
    if (!atomic_compare_exchange_strong(&st->reason, &r, LB_REASON_NONE)) {
        r = LB_REASON_UNCHECKED;
        atomic_compare_exchange_strong(&st->reason, &r, LB_REASON_NONE);
    }
}

/* Applies one probe result to the shared state, logging transitions. */
static void record(struct hc_target *t, bool ok, const char *why)
{
    struct lb_target_state *st = t->st;
    const struct hc_conf *c = t->conf;
    int healthy = !st->own_down; /* this checker's verdict, whatever is routed on */
    int reason = atomic_load(&st->reason);

    atomic_store(&st->last_check_ms, gv_now_ms());
    if (ok) {
        st->check_failures = 0;
        if (st->check_successes < c->healthy)
            st->check_successes++;
        if (!healthy && st->check_successes >= c->healthy) {
            st->own_down = false;
            atomic_store(&st->active_healthy, 1);
            reason_clear_checked(st);
            gv_info("service %s target %s is now healthy", c->service, c->address);
            notify(t, true, "");
        } else if (healthy && reason == LB_REASON_UNCHECKED) {
            int r = LB_REASON_UNCHECKED;
            atomic_compare_exchange_strong(&st->reason, &r, LB_REASON_NONE);
            gv_info("service %s target %s is healthy (first check passed)", c->service, c->address);
            notify(t, true, "");
        }
        return;
    }
    st->check_successes = 0;
    if (st->check_failures < c->unhealthy)
        st->check_failures++;
    if (healthy && (reason == LB_REASON_UNCHECKED || st->check_failures >= c->unhealthy)) {
        st->own_down = true;
        atomic_store(&st->active_healthy, 0);
        atomic_store(&st->reason, LB_REASON_HEALTH_CHECK);
        gv_warn("service %s target %s is now unhealthy (%s)", c->service, c->address, why);
        notify(t, false, why);
    } else {
        gv_debug("service %s target %s failed a health check (%s)", c->service, c->address, why);
    }
}

/* Ends the current probe with a verdict: stops its timer, releases its
 * handles (their callbacks then see !probing and do nothing). */
static void probe_finish(struct hc_target *t, bool ok, const char *fmt, ...)
{
    char why[160];
    va_list ap;

    if (!t->probing)
        return;
    t->probing = false;
    t->reconnect = false;
    uv_timer_stop(&t->deadline);
    tcp_close(t);
    if (t->gai_busy)
        uv_cancel((uv_req_t *)&t->gai);
    uv_freeaddrinfo(t->ai);
    t->ai = t->ai_cur = NULL;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    record(t, ok, why);
}

/* Ends the current probe without a verdict (target retired). */
static void probe_abort(struct hc_target *t)
{
    t->probing = false;
    t->reconnect = false;
    uv_timer_stop(&t->deadline);
    tcp_close(t);
    if (t->gai_busy)
        uv_cancel((uv_req_t *)&t->gai);
    uv_freeaddrinfo(t->ai);
    t->ai = t->ai_cur = NULL;
}

/* Only the final head (1xx ones are skipped) is read; it keeps nothing, so
 * the parser needs no freeing. */
static const struct gv_httpc_options hc_response = {
    .max_head_bytes = 64 * 1024,
    .head_only = true,
};

static void verdict_from_status(struct hc_target *t)
{
    int status = t->resp.status;
    if (status >= 200 && status < 400)
        probe_finish(t, true, "status %d", status);
    else
        probe_finish(t, false, "status %d", status);
}

static void on_grpc_bytes(struct hc_target *t, const char *data, size_t len)
{
    char why[96];
    bool serving = false;
    int rc = lb_grpc_probe_feed(t->grpc, data, len, &serving, why, sizeof(why));
    if (rc > 0)
        probe_finish(t, serving, "grpc health: %s", why);
    else if (rc < 0)
        probe_finish(t, false, "grpc health: %s", why);
}

static void on_response_bytes(struct hc_target *t, const char *data, size_t len)
{
    if (t->grpc != NULL) {
        on_grpc_bytes(t, data, len);
        return;
    }
    int rc = gv_httpc_feed(&t->resp, data, len);
    if (rc > 0)
        verdict_from_status(t);
    else if (rc < 0)
        probe_finish(t, false, "bad response: %s", gv_httpc_error(&t->resp));
}

/* The connection ended (EOF, or TLS close_notify) before a head. */
static void on_response_end(struct hc_target *t)
{
    if (t->grpc == NULL && gv_httpc_finish(&t->resp) > 0)
        verdict_from_status(t);
    else
        probe_finish(t, false, "connection closed before a response");
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct hc_target *t = GV_CONTAINER_OF((uv_tcp_t *)handle, struct hc_target, tcp);
    *buf = uv_buf_init(t->rbuf, sizeof(t->rbuf));
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct hc_target *t = GV_CONTAINER_OF((uv_tcp_t *)stream, struct hc_target, tcp);

    if (!t->probing || nread == 0)
        return;
    if (nread > 0) {
        if (t->tls != NULL)
            tls_pump(t, buf->base, (size_t)nread);
        else
            on_response_bytes(t, buf->base, (size_t)nread);
        return;
    }
    if (nread == UV_EOF) {
        on_response_end(t);
        return;
    }
    probe_finish(t, false, "read: %s", uv_strerror((int)nread));
}

/* One write of TLS records; its bytes live with the request. */
struct hc_write {
    uv_write_t req;
    struct hc_target *t;
    char data[];
};

static void tls_write_cb(uv_write_t *req, int status)
{
    struct hc_write *w = GV_CONTAINER_OF(req, struct hc_write, req);
    struct hc_target *t = w->t;
    free(w);
    if (t->probing && status < 0 && status != UV_ECANCELED)
        probe_finish(t, false, "write: %s", uv_strerror(status));
}

/* Sends whatever records the engine has. false when the probe ended. */
static bool tls_flush(struct hc_target *t)
{
    const struct lb_probe_tls_ops *ops = t->h->tls_ops;
    char buf[16384];
    size_t n;
    while (t->tls != NULL && (n = ops->take_output(t->tls, buf, sizeof(buf))) > 0) {
        struct hc_write *w = malloc(sizeof(*w) + n);
        if (w == NULL) {
            probe_finish(t, false, "out of memory");
            return false;
        }
        w->t = t;
        memcpy(w->data, buf, n);
        uv_buf_t b = uv_buf_init(w->data, (unsigned int)n);
        int rc = uv_write(&w->req, (uv_stream_t *)&t->tcp, &b, 1, tls_write_cb);
        if (rc < 0) {
            free(w);
            probe_finish(t, false, "write: %s", uv_strerror(rc));
            return false;
        }
    }
    return true;
}

/* Feeds ciphertext (may be none: the first call starts the handshake),
 * sends the request once the handshake is done, parses what decrypts. */
static void tls_pump(struct hc_target *t, const char *data, size_t len)
{
    const struct lb_probe_tls_ops *ops = t->h->tls_ops;
    char plain[1024];
    if (len > 0 && ops->feed(t->tls, data, len) < 0) {
        probe_finish(t, false, "tls: %s", ops->failure(t->tls));
        return;
    }
    for (;;) {
        int n = ops->read(t->tls, plain, sizeof(plain));
        if (n > 0) {
            on_response_bytes(t, plain, (size_t)n);
            if (!t->probing)
                return;
            continue;
        }
        if (n == -1) { /* close_notify: the peer is done */
            on_response_end(t);
            return;
        }
        if (n < 0) {
            probe_finish(t, false, "tls: %s", ops->failure(t->tls));
            return;
        }
        if (!t->tls_req_out && ops->handshake_done(t->tls)) {
            t->tls_req_out = true;
            if (ops->write(t->tls, t->req, t->req_len) < 0) {
                probe_finish(t, false, "tls: %s", ops->failure(t->tls));
                return;
            }
            continue; /* nothing to read yet, but flush below */
        }
        break;
    }
    tls_flush(t);
}

static void write_cb(uv_write_t *req, int status)
{
    struct hc_target *t = GV_CONTAINER_OF(req, struct hc_target, write);
    if (t->probing && status < 0)
        probe_finish(t, false, "write: %s", uv_strerror(status));
}

/* The probe's bytes for a grpc service: a fresh HTTP/2 session's preface,
 * SETTINGS and the Health/Check call. */
static int build_grpc_request(struct hc_target *t, struct gv_buf *b)
{
    lb_grpc_probe_free(t->grpc);
    t->grpc = NULL;
    int rc = lb_grpc_probe_new(t->conf->authority, &t->grpc);
    return rc ? rc : lb_grpc_probe_output(t->grpc, b);
}

static int build_request(struct hc_target *t)
{
    struct gv_buf b;
    gv_buf_init(&b);
    if (t->conf->grpc) {
        if (build_grpc_request(t, &b) != 0) {
            gv_buf_free(&b);
            return GV_ENOMEM;
        }
    } else if (gv_buf_printf(&b,
                             "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: grapevine-health\r\n"
                             "Connection: close\r\nAccept: */*\r\n\r\n",
                             t->conf->path, t->conf->authority) < 0) {
        gv_buf_free(&b);
        return GV_ENOMEM;
    }
    free(t->req);
    t->req_len = b.len;
    t->req = gv_buf_steal(&b);
    return t->req != NULL ? 0 : GV_ENOMEM;
}

/* A failed connect moves on to the resolver's next address, on a fresh
 * handle; the last address failing fails the probe. */
static void connect_failed(struct hc_target *t, int status)
{
    if (t->ai_cur != NULL && t->ai_cur->ai_next != NULL) {
        snprintf(t->last_err, sizeof(t->last_err), "%s", uv_strerror(status));
        t->ai_cur = t->ai_cur->ai_next;
        t->reconnect = true;
        tcp_close(t);
        return;
    }
    probe_finish(t, false, "connect: %s", uv_strerror(status));
}

/* Opens the probe's TLS engine and sends its ClientHello; the request
 * follows the handshake (tls_pump). false when the probe ended. */
static bool tls_begin(struct hc_target *t)
{
    const struct lb_probe_tls_ops *ops = t->h->tls_ops;
    if (ops == NULL) {
        probe_finish(t, false, "tls: not available");
        return false;
    }
    t->tls = ops->open(t->h->tls_arg, t->conf->service, t->conf->host, t->conf->address);
    if (t->tls == NULL) {
        probe_finish(t, false, "tls: no context for this service");
        return false;
    }
    tls_pump(t, NULL, 0);
    return t->probing;
}

/* Writes the request in the clear. false when the probe ended. */
static bool plain_send(struct hc_target *t)
{
    uv_buf_t b = uv_buf_init(t->req, (unsigned int)t->req_len);
    int rc = uv_write(&t->write, (uv_stream_t *)&t->tcp, &b, 1, write_cb);
    if (rc < 0) {
        probe_finish(t, false, "write: %s", uv_strerror(rc));
        return false;
    }
    return true;
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct hc_target *t = GV_CONTAINER_OF(req, struct hc_target, connect);

    if (!t->probing || status == UV_ECANCELED)
        return;
    if (status < 0) {
        connect_failed(t, status);
        return;
    }
    t->phase = HC_RESPONSE;
    gv_httpc_init(&t->resp, &hc_response);
    if (!(t->conf->tls ? tls_begin(t) : plain_send(t)))
        return;
    int rc = uv_read_start((uv_stream_t *)&t->tcp, alloc_cb, read_cb);
    if (rc < 0)
        probe_finish(t, false, "read: %s", uv_strerror(rc));
}

static void connect_to(struct hc_target *t, const struct sockaddr *sa)
{
    t->phase = HC_CONNECT;
    int rc = uv_tcp_init(t->h->loop, &t->tcp);
    if (rc < 0) {
        probe_finish(t, false, "connect: %s", uv_strerror(rc));
        return;
    }
    t->tcp_busy = true;
    t->handles++;
    uv_tcp_nodelay(&t->tcp, 1);
    rc = uv_tcp_connect(&t->connect, &t->tcp, sa, connect_cb);
    if (rc < 0)
        probe_finish(t, false, "connect: %s", uv_strerror(rc));
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct hc_target *t = GV_CONTAINER_OF(req, struct hc_target, gai);

    t->gai_busy = false;
    t->handles--;
    if (!t->probing || t->retired) {
        uv_freeaddrinfo(res);
        target_maybe_free(t);
        return;
    }
    if (status < 0) {
        uv_freeaddrinfo(res);
        probe_finish(t, false, "resolve %s: %s", t->conf->host, uv_strerror(status));
        return;
    }
    t->ai = t->ai_cur = res;
    if (res == NULL) {
        probe_finish(t, false, "resolve %s: no address", t->conf->host);
        return;
    }
    connect_to(t, res->ai_addr);
}

/* Starts a probe, or (from tcp_close_cb) connects to the next address. */
static void probe_start(struct hc_target *t)
{
    const struct hc_conf *c = t->conf;
    struct sockaddr_storage ss;

    if (t->ai_cur != NULL) {
        connect_to(t, t->ai_cur->ai_addr);
        return;
    }
    if (uv_ip4_addr(c->connect, c->port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(c->connect, c->port, (struct sockaddr_in6 *)&ss) == 0) {
        connect_to(t, (const struct sockaddr *)&ss);
        return;
    }
    char port[8];
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    snprintf(port, sizeof(port), "%u", (unsigned)c->port);
    t->phase = HC_RESOLVE;
    int rc = uv_getaddrinfo(t->h->loop, &t->gai, gai_cb, c->connect, port, &hints);
    if (rc < 0) {
        probe_finish(t, false, "resolve %s: %s", c->host, uv_strerror(rc));
        return;
    }
    t->gai_busy = true;
    t->handles++;
}

static void deadline_cb(uv_timer_t *timer)
{
    struct hc_target *t = timer->data;
    static const char *const what[] = {
        [HC_RESOLVE] = "resolve",
        [HC_CONNECT] = "connect",
        [HC_RESPONSE] = "response",
    };
    if (t->phase == HC_CONNECT && t->last_err[0] != '\0')
        probe_finish(t, false, "connect: timed out (earlier address: %s)", t->last_err);
    else
        probe_finish(t, false, "%s: timed out after %llums", what[t->phase],
                     (unsigned long long)t->conf->timeout_ms);
}

static void tick_cb(uv_timer_t *timer)
{
    struct hc_target *t = timer->data;

    /* The previous probe is still running or its socket is still closing:
     * its deadline will give the verdict. */
    if (t->probing || t->tcp_busy)
        return;
    /* Another node probes this target: its reports set our state. */
    struct lb_health *h = t->h;
    if (h->hooks.should_probe != NULL &&
        !h->hooks.should_probe(h->hooks_arg, t->conf->service, t->conf->address))
        return;
    /* A resolver stuck past an earlier deadline still holds the request; a
     * name that cannot be resolved in time counts as a failure each round. */
    if (t->gai_busy) {
        t->probing = true;
        probe_finish(t, false, "resolve %s: timed out", t->conf->host);
        return;
    }
    if (build_request(t) < 0)
        return; /* out of memory is not the target's fault: no verdict */
    t->probing = true;
    t->last_err[0] = '\0';
    t->ai = t->ai_cur = NULL;
    uv_timer_start(&t->deadline, deadline_cb, t->conf->timeout_ms, 0);
    probe_start(t);
}

/* Starts (or restarts, for a new interval) the tick timer. The first probe
 * comes soon, spread over a little jitter so many targets do not all connect
 * in the same millisecond. */
static void schedule(struct hc_target *t)
{
    uint64_t iv = t->conf->interval_ms;
    uint64_t first = gv_rand64() % (GV_MIN(iv, 1000) / 4 + 1);
    uv_timer_start(&t->tick, tick_cb, first, iv);
}

static void target_retire(struct hc_target *t)
{
    t->retired = true;
    probe_abort(t);
    uv_close((uv_handle_t *)&t->tick, timer_close_cb);
    uv_close((uv_handle_t *)&t->deadline, timer_close_cb);
}

static bool path_ok(const char *p)
{
    if (p[0] != '/')
        return false;
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f)
            return false;
    }
    return true;
}

/* Copies strs[0..n) one after the other into c's tail, pointing dst at them. */
static void conf_strings(struct hc_conf *c, const char *const *strs, const char **const *dst,
                         size_t n)
{
    char *w = c->strings;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(strs[i]) + 1;
        *dst[i] = memcpy(w, strs[i], len);
        w += len;
    }
}

/* Copies one target's check settings; GV_EINVAL / GV_ENOMEM. A target that
 * stands for one address of a host name (balancer/expand.h) is probed at
 * that address and named by the name, as the proxy's requests are. */
static int conf_new(const struct lb_service_spec *s, const struct lb_target_spec *ts,
                    struct hc_conf **out)
{
    const char *path = s->health.path != NULL ? s->health.path : LB_DEFAULT_HEALTH_PATH;
    char host[256], connect[256], authority[272];
    uint16_t port = ts->port, ip_port;

    if (s->name == NULL || ts->address == NULL || !path_ok(path) || s->health.interval_ms == 0 ||
        s->health.timeout_ms == 0)
        return GV_EINVAL;
    if (ts->host[0] != '\0' && port != 0) {
        snprintf(host, sizeof(host), "%s", ts->host);
    } else if (gv_split_hostport(ts->address, host, sizeof(host), &port) < 0) {
        return GV_EINVAL;
    }
    snprintf(connect, sizeof(connect), "%s", host);
    snprintf(authority, sizeof(authority), "%s", ts->address);
    if (ts->from_name) {
        if (gv_split_hostport(ts->address, connect, sizeof(connect), &ip_port) < 0)
            return GV_EINVAL;
        snprintf(authority, sizeof(authority), "%s:%u", host, (unsigned)port);
    }
    const char *strs[] = {s->name, ts->address, host, path, connect, authority};
    size_t total = 0;
    for (size_t i = 0; i < GV_ARRAY_LEN(strs); i++)
        total += strlen(strs[i]) + 1;
    struct hc_conf *c = malloc(sizeof(*c) + total);
    if (c == NULL)
        return GV_ENOMEM;
    const char **const dst[] = {&c->service, &c->address, &c->host,
                                &c->path,    &c->connect, &c->authority};
    conf_strings(c, strs, dst, GV_ARRAY_LEN(strs));
    c->port = port;
    c->interval_ms = s->health.interval_ms;
    c->timeout_ms = s->health.timeout_ms;
    c->healthy = GV_MAX(1, s->health.healthy);
    c->unhealthy = GV_MAX(1, s->health.unhealthy);
    c->tls = s->tls.enabled;
    c->grpc = s->protocol == LB_PROTO_GRPC;
    *out = c;
    return 0;
}

int lb_health_start(uv_loop_t *loop, struct lb_health **out)
{
    struct lb_health *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return GV_ENOMEM;
    h->loop = loop;
    uv_timer_init(loop, &h->anchor);
    h->anchor.data = h;
    *out = h;
    return 0;
}

static struct hc_target *find_target(struct hc_target **v, size_t n,
                                     const struct lb_target_state *st)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i] != NULL && v[i]->st == st)
            return v[i];
    }
    return NULL;
}

/* The checked set lb_health_set builds aside before it commits it. */
struct hc_plan {
    struct hc_target **next; /* the new set */
    struct hc_conf **confs;  /* next[i]'s new settings, until committed */
    bool *fresh;             /* next[i] was allocated for this set */
    size_t k;                /* entries filled */
};

/* Frees what a plan that is not committed holds. */
static void plan_free(struct hc_plan *p)
{
    for (size_t i = 0; i < p->k; i++) {
        free(p->confs[i]);
        if (p->fresh[i])
            free(p->next[i]);
    }
    free(p->next);
    free(p->confs);
    free(p->fresh);
}

/* Adds one target of a checked service: its new settings, and the running
 * target for its state or a new one. GV_EINVAL / GV_ENOMEM; the plan then
 * holds only whole entries. */
static int plan_add_target(struct lb_health *h, struct hc_plan *p, const struct lb_service_spec *sp,
                           const struct lb_target_spec *ts, struct lb_target_state *st)
{
    if (st == NULL)
        return GV_EINVAL;
    /* The same state twice (a repeated address) is checked once. */
    if (find_target(p->next, p->k, st) != NULL)
        return 0;
    struct hc_conf *c;
    int rc = conf_new(sp, ts, &c);
    if (rc < 0)
        return rc;
    struct hc_target *t = find_target(h->targets, h->ntargets, st);
    if (t == NULL) {
        t = calloc(1, sizeof(*t));
        if (t == NULL) {
            free(c);
            return GV_ENOMEM;
        }
        t->h = h;
        t->st = st;
        p->fresh[p->k] = true;
    }
    p->confs[p->k] = c;
    p->next[p->k++] = t;
    return 0;
}

/* Plans the checked set for specs[0..n): every target of a service with
 * checks. Returns 0, GV_EINVAL or GV_ENOMEM; plan_free releases the plan
 * either way until it is committed. */
static int plan_build(struct lb_health *h, struct hc_plan *p, const struct lb_service_spec *specs,
                      size_t n, struct lb_target_state **const *states)
{
    size_t total = 0;
    for (size_t s = 0; s < n; s++) {
        if (specs[s].health.enabled)
            total += specs[s].ntargets;
    }
    if (total > 0) {
        p->next = calloc(total, sizeof(*p->next));
        p->confs = calloc(total, sizeof(*p->confs));
        p->fresh = calloc(total, sizeof(*p->fresh));
        if (p->next == NULL || p->confs == NULL || p->fresh == NULL)
            return GV_ENOMEM;
    }
    for (size_t s = 0; s < n; s++) {
        const struct lb_service_spec *sp = &specs[s];
        if (!sp->health.enabled)
            continue;
        if (sp->ntargets > 0 && states[s] == NULL)
            return GV_EINVAL;
        for (size_t i = 0; i < sp->ntargets; i++) {
            int rc = plan_add_target(h, p, sp, &sp->targets[i], states[s][i]);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* Starts checking a target new to the set. A target that serves and was
 * never checked is marked unchecked until its first verdict. */
static void target_start(struct lb_health *h, struct hc_target *t)
{
    uv_timer_init(h->loop, &t->tick);
    uv_timer_init(h->loop, &t->deadline);
    t->tick.data = t->deadline.data = t;
    t->handles = 2;
    h->live++;
    t->st->check_successes = 0;
    t->st->check_failures = 0;
    int r = LB_REASON_NONE;
    if (atomic_load(&t->st->active_healthy) && atomic_load(&t->st->last_check_ms) == 0)
        atomic_compare_exchange_strong(&t->st->reason, &r, LB_REASON_UNCHECKED);
    schedule(t);
}

/* Commit: retires the running targets the plan leaves out, hands every
 * planned target its settings and starts the new ones. Cannot fail. */
static void plan_commit(struct lb_health *h, struct hc_plan *p)
{
    for (size_t i = 0; i < h->ntargets; i++) {
        if (find_target(p->next, p->k, h->targets[i]->st) == NULL)
            target_retire(h->targets[i]);
    }
    for (size_t i = 0; i < p->k; i++) {
        struct hc_target *t = p->next[i];
        struct hc_conf *old = t->conf;
        t->conf = p->confs[i];
        p->confs[i] = NULL;
        if (p->fresh[i])
            target_start(h, t);
        else if (old->interval_ms != t->conf->interval_ms)
            schedule(t);
        free(old);
    }
    free(h->targets);
    h->targets = p->next;
    h->ntargets = p->k;
    free(p->confs);
    free(p->fresh);
}

/* Targets whose service has no checks (any more) are not held down by an
 * old verdict. Runs after plan_commit: h's set is the new one. */
static void release_unchecked(const struct lb_health *h, const struct lb_service_spec *specs,
                              size_t n, struct lb_target_state **const *states)
{
    for (size_t s = 0; s < n; s++) {
        if (specs[s].health.enabled || states[s] == NULL)
            continue;
        for (size_t i = 0; i < specs[s].ntargets; i++) {
            struct lb_target_state *st = states[s][i];
            if (st == NULL || find_target(h->targets, h->ntargets, st) != NULL)
                continue;
            st->check_successes = 0;
            st->check_failures = 0;
            st->own_down = false;
            atomic_store(&st->last_check_ms, 0);
            atomic_store(&st->active_healthy, 1);
            reason_clear_checked(st);
        }
    }
}

/* The new set is built aside (settings copied, new targets allocated but no
 * handle started) so that any failure leaves the running set untouched; the
 * commit after it cannot fail. */
int lb_health_set(struct lb_health *h, const struct lb_service_spec *specs, size_t n,
                  struct lb_target_state **const *states)
{
    struct hc_plan p = {0};

    if (h->stopping)
        return GV_EINVAL;
    int rc = plan_build(h, &p, specs, n, states);
    if (rc < 0)
        goto fail;
    plan_commit(h, &p);
    release_unchecked(h, specs, n, states);
    return 0;

fail:
    plan_free(&p);
    return rc;
}

void lb_health_set_tls(struct lb_health *h, const struct lb_probe_tls_ops *ops, void *arg)
{
    h->tls_ops = ops;
    h->tls_arg = arg;
}

void lb_health_set_hooks(struct lb_health *h, const struct lb_health_hooks *hooks, void *arg)
{
    if (hooks != NULL) {
        h->hooks = *hooks;
        h->hooks_arg = arg;
    } else {
        memset(&h->hooks, 0, sizeof(h->hooks));
        h->hooks_arg = NULL;
    }
}

static struct hc_target *find_checked(struct lb_health *h, const char *service, const char *address)
{
    for (size_t i = 0; i < h->ntargets; i++) {
        const struct hc_conf *c = h->targets[i]->conf;
        if (strcmp(c->service, service) == 0 && strcmp(c->address, address) == 0)
            return h->targets[i];
    }
    return NULL;
}

/* The verdict routed on, and its reason. */
static void set_routed(struct lb_target_state *st, bool healthy)
{
    atomic_store(&st->active_healthy, healthy ? 1 : 0);
    if (healthy)
        reason_clear_checked(st);
    else
        atomic_store(&st->reason, LB_REASON_HEALTH_CHECK);
}

int lb_health_apply(struct lb_health *h, const char *service, const char *address, bool healthy)
{
    struct hc_target *t = find_checked(h, service, address);
    if (t == NULL)
        return GV_ENOENT;
    struct lb_target_state *st = t->st;
    atomic_store(&st->last_check_ms, gv_now_ms());
    st->check_successes = healthy ? t->conf->healthy : 0;
    st->check_failures = healthy ? 0 : t->conf->unhealthy;
    st->own_down = !healthy;
    set_routed(st, healthy);
    return 0;
}

int lb_health_route(struct lb_health *h, const char *service, const char *address, bool healthy)
{
    struct hc_target *t = find_checked(h, service, address);
    if (t == NULL)
        return GV_ENOENT;
    set_routed(t->st, healthy);
    return 0;
}

static void anchor_close_cb(uv_handle_t *handle)
{
    struct lb_health *h = handle->data;
    h->anchor_closed = true;
    health_maybe_done(h);
}

void lb_health_stop(struct lb_health *h, void (*done)(void *arg), void *arg)
{
    if (h == NULL || h->stopping)
        return;
    h->stopping = true;
    h->done = done;
    h->done_arg = arg;
    for (size_t i = 0; i < h->ntargets; i++)
        target_retire(h->targets[i]);
    h->ntargets = 0;
    uv_close((uv_handle_t *)&h->anchor, anchor_close_cb);
}
