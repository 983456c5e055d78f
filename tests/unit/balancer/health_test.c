/* health_test.c - active health checks against a tiny libuv HTTP server in
 * this process: verdicts and transitions, timeouts, refused connections,
 * name resolution, reconfiguration and a clean stop. No sleeps: the loop
 * runs until a condition holds or a deadline passes. */
#include "balancer/health.h"
#include "common/err.h"
#include "common/util.h"
#include "test.h"

#include <stdlib.h>
#include <uv.h>

#define DEADLINE_MS 10000

enum srv_mode { SRV_OK, SRV_FAIL, SRV_HANG };

struct srv {
    uv_tcp_t listener;
    uint16_t port;
    enum srv_mode mode;
    int requests;
    char last_req[512];
};

struct srv_conn {
    uv_tcp_t tcp;
    uv_write_t w;
    struct srv *srv;
    char buf[2048];
    size_t len;
    bool answered;
};

static void conn_close_cb(uv_handle_t *h)
{
    free(h->data);
}

static void conn_close(struct srv_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
}

static void conn_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    struct srv_conn *c = h->data;
    *buf = uv_buf_init(c->buf + c->len, (unsigned)(sizeof(c->buf) - 1 - c->len));
}

static void conn_written(uv_write_t *w, int status)
{
    conn_close(w->data);
}

static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct srv_conn *c = s->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)nread;
    c->buf[c->len] = '\0';
    if (c->answered || strstr(c->buf, "\r\n\r\n") == NULL) {
        if (c->len == sizeof(c->buf) - 1)
            conn_close(c);
        return;
    }
    c->answered = true;
    c->srv->requests++;
    size_t n = GV_MIN(c->len, sizeof(c->srv->last_req) - 1);
    memcpy(c->srv->last_req, c->buf, n);
    c->srv->last_req[n] = '\0';
    if (c->srv->mode == SRV_HANG)
        return;
    static char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    static char fail[] =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nfail";
    char *r = c->srv->mode == SRV_OK ? ok : fail;
    uv_buf_t b = uv_buf_init(r, (unsigned)strlen(r));
    c->w.data = c;
    if (uv_write(&c->w, s, &b, 1, conn_written) < 0)
        conn_close(c);
}

static void on_conn(uv_stream_t *l, int status)
{
    struct srv *srv = l->data;
    if (status < 0)
        return;
    struct srv_conn *c = calloc(1, sizeof(*c));
    c->srv = srv;
    uv_tcp_init(l->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read);
}

static void srv_start(uv_loop_t *loop, struct srv *srv, enum srv_mode mode)
{
    struct sockaddr_in sa;
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    memset(srv, 0, sizeof(*srv));
    srv->mode = mode;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    CHECK_INT(uv_tcp_init(loop, &srv->listener), 0);
    srv->listener.data = srv;
    CHECK_INT(uv_tcp_bind(&srv->listener, (const struct sockaddr *)&sa, 0), 0);
    CHECK_INT(uv_listen((uv_stream_t *)&srv->listener, 64, on_conn), 0);
    CHECK_INT(uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &len), 0);
    srv->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void srv_stop(struct srv *srv)
{
    uv_close((uv_handle_t *)&srv->listener, NULL);
}

/* A port on which nothing listens (bound, then closed). */
static uint16_t dead_port(uv_loop_t *loop)
{
    struct srv s;
    srv_start(loop, &s, SRV_OK);
    srv_stop(&s);
    uv_run(loop, UV_RUN_NOWAIT);
    return s.port;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void poke_cb(uv_timer_t *t)
{
}

/* Runs the loop until cond(arg) or the deadline; a ticking timer makes sure
 * each UV_RUN_ONCE returns even when nothing else happens. */
static bool run_until(uv_loop_t *loop, bool (*cond)(void *), void *arg)
{
    uv_timer_t poke;
    uv_timer_init(loop, &poke);
    uv_timer_start(&poke, poke_cb, 5, 5);
    uint64_t end = gv_now_ms() + DEADLINE_MS;
    bool ok;
    while (!(ok = cond(arg)) && gv_now_ms() < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&poke, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

struct waiter {
    struct lb_target_state *st;
    struct srv *srv;
    int requests;
    uint64_t until_ms;
    bool done;
};

static bool checked(void *arg)
{
    struct waiter *w = arg;
    return atomic_load(&w->st->last_check_ms) != 0;
}

static bool is_down(void *arg)
{
    struct waiter *w = arg;
    return !atomic_load(&w->st->active_healthy);
}

static bool is_up(void *arg)
{
    struct waiter *w = arg;
    return atomic_load(&w->st->active_healthy) && atomic_load(&w->st->reason) == LB_REASON_NONE;
}

static bool got_requests(void *arg)
{
    struct waiter *w = arg;
    return w->srv->requests >= w->requests;
}

static bool time_passed(void *arg)
{
    struct waiter *w = arg;
    return gv_now_ms() >= w->until_ms;
}

static bool is_done(void *arg)
{
    return ((struct waiter *)arg)->done;
}

static void stopped(void *arg)
{
    ((struct waiter *)arg)->done = true;
}

static void make_spec(struct lb_service_spec *s, const char *name, const char *host, uint16_t port)
{
    char addr[300];
    lb_service_spec_defaults(s);
    s->name = strdup(name);
    s->targets = calloc(1, sizeof(*s->targets));
    s->ntargets = 1;
    snprintf(addr, sizeof(addr), "%s:%u", host, (unsigned)port);
    s->targets[0].address = strdup(addr);
    snprintf(s->targets[0].host, sizeof(s->targets[0].host), "%s", host);
    s->targets[0].port = port;
    s->targets[0].weight = 1;
    s->health.enabled = true;
    s->health.interval_ms = 50;
    s->health.timeout_ms = 500;
    s->health.healthy = 2;
    s->health.unhealthy = 3;
}

/* Stops the checker and the server and checks that every handle closed. */
static void finish(uv_loop_t *loop, struct lb_health *h, struct srv *srv)
{
    struct waiter w = {0};
    lb_health_stop(h, stopped, &w);
    CHECK(!w.done); /* never from inside lb_health_stop */
    if (srv != NULL)
        srv_stop(srv);
    CHECK(run_until(loop, is_done, &w));
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(loop), 0);
}

static void test_transitions(void)
{
    uv_loop_t loop;
    struct srv srv;
    struct lb_registry *reg;
    struct lb_health *h;
    struct lb_service_spec spec;
    char want[128];

    uv_loop_init(&loop);
    srv_start(&loop, &srv, SRV_OK);
    CHECK_INT(lb_registry_new(&reg), 0);
    make_spec(&spec, "users", "127.0.0.1", srv.port);
    struct lb_target_state *st = lb_registry_get(reg, "users", spec.targets[0].address, true);
    struct lb_target_state *row[] = {st};
    struct lb_target_state **states[] = {row};
    struct waiter w = {.st = st, .srv = &srv};

    CHECK_INT(lb_health_start(&loop, &h), 0);
    CHECK_INT(lb_health_set(h, &spec, 1, states), 0);
    CHECK_INT(atomic_load(&st->reason), LB_REASON_UNCHECKED);
    CHECK(lb_target_available(st, gv_now_ms()));

    /* First verdict: healthy. */
    CHECK(run_until(&loop, checked, &w));
    CHECK_INT(atomic_load(&st->active_healthy), 1);
    CHECK_INT(atomic_load(&st->reason), LB_REASON_NONE);
    CHECK(starts_with(srv.last_req, "GET /healthz HTTP/1.1\r\n"));
    snprintf(want, sizeof(want), "\r\nHost: 127.0.0.1:%u\r\n", (unsigned)srv.port);
    CHECK(strstr(srv.last_req, want) != NULL);
    CHECK(strstr(srv.last_req, "\r\nUser-Agent: grapevine-health\r\n") != NULL);
    CHECK(strstr(srv.last_req, "\r\nConnection: close\r\n") != NULL);

    /* 503 three times in a row: unhealthy. */
    srv.mode = SRV_FAIL;
    int r0 = srv.requests;
    CHECK(run_until(&loop, is_down, &w));
    CHECK(srv.requests - r0 >= 3);
    CHECK_INT(atomic_load(&st->reason), LB_REASON_HEALTH_CHECK);
    CHECK_INT(lb_target_reason(st, gv_now_ms()), LB_REASON_HEALTH_CHECK);
    CHECK(!lb_target_available(st, gv_now_ms()));

    /* 200 twice in a row: healthy again. */
    srv.mode = SRV_OK;
    r0 = srv.requests;
    CHECK(run_until(&loop, is_up, &w));
    CHECK(srv.requests - r0 >= 2);
    CHECK(lb_target_available(st, gv_now_ms()));

    /* A new path on the same target takes effect without a restart. */
    free(spec.health.path);
    spec.health.path = strdup("/ready?deep=1");
    CHECK_INT(lb_health_set(h, &spec, 1, states), 0);
    CHECK_INT(atomic_load(&st->reason), LB_REASON_NONE); /* kept, not unchecked */
    w.requests = srv.requests + 2;
    CHECK(run_until(&loop, got_requests, &w));
    CHECK(starts_with(srv.last_req, "GET /ready?deep=1 HTTP/1.1\r\n"));

    /* Bad settings change nothing. */
    free(spec.health.path);
    spec.health.path = strdup("/a b");
    CHECK_INT(lb_health_set(h, &spec, 1, states), GV_EINVAL);
    free(spec.health.path);
    spec.health.path = strdup("healthz");
    CHECK_INT(lb_health_set(h, &spec, 1, states), GV_EINVAL);
    free(spec.health.path);
    spec.health.path = strdup("/x\r\nEvil: 1");
    CHECK_INT(lb_health_set(h, &spec, 1, states), GV_EINVAL);
    free(spec.health.path);
    spec.health.path = NULL; /* the default */
    spec.health.interval_ms = 0;
    CHECK_INT(lb_health_set(h, &spec, 1, states), GV_EINVAL);
    spec.health.interval_ms = 50;
    w.requests = srv.requests + 2;
    CHECK(run_until(&loop, got_requests, &w));
    CHECK(starts_with(srv.last_req, "GET /ready?deep=1 "));
    CHECK_INT(lb_health_set(h, &spec, 1, states), 0);
    w.requests = srv.requests + 2;
    CHECK(run_until(&loop, got_requests, &w));
    CHECK(starts_with(srv.last_req, "GET /healthz "));

    /* Turning checks off releases a target they held down, and stops
     * probing it. */
    srv.mode = SRV_FAIL;
    CHECK(run_until(&loop, is_down, &w));
    spec.health.enabled = false;
    CHECK_INT(lb_health_set(h, &spec, 1, states), 0);
    CHECK_INT(atomic_load(&st->active_healthy), 1);
    CHECK_INT(atomic_load(&st->reason), LB_REASON_NONE);
    r0 = srv.requests;
    w.until_ms = gv_now_ms() + 300;
    run_until(&loop, time_passed, &w);
    CHECK(srv.requests <= r0 + 1); /* at most a probe already on the wire */
    CHECK_INT(atomic_load(&st->active_healthy), 1);

    finish(&loop, h, &srv);
    lb_service_spec_free(&spec);
    lb_registry_free(reg);
}

/* An unchecked target is decided by its first probe. */
static void test_refused_first_verdict(void)
{
    uv_loop_t loop;
    struct lb_registry *reg;
    struct lb_health *h;
    struct lb_service_spec spec;

    uv_loop_init(&loop);
    CHECK_INT(lb_registry_new(&reg), 0);
    make_spec(&spec, "users", "127.0.0.1", dead_port(&loop));
    struct lb_target_state *st = lb_registry_get(reg, "users", spec.targets[0].address, true);
    struct lb_target_state *row[] = {st};
    struct lb_target_state **states[] = {row};
    struct waiter w = {.st = st};

    CHECK_INT(lb_health_start(&loop, &h), 0);
    CHECK_INT(lb_health_set(h, &spec, 1, states), 0);
    CHECK(run_until(&loop, checked, &w));
    CHECK_INT(atomic_load(&st->active_healthy), 0);
    CHECK_INT(atomic_load(&st->reason), LB_REASON_HEALTH_CHECK);
    finish(&loop, h, NULL);
    lb_service_spec_free(&spec);
    lb_registry_free(reg);
}

static void test_timeout(void)
{
    uv_loop_t loop;
    struct srv srv;
    struct lb_registry *reg;
    struct lb_health *h;
    struct lb_service_spec spec;

    uv_loop_init(&loop);
    srv_start(&loop, &srv, SRV_HANG);
    CHECK_INT(lb_registry_new(&reg), 0);
    make_spec(&spec, "slow", "127.0.0.1", srv.port);
    spec.health.timeout_ms = 30;
    struct lb_target_state *st = lb_registry_get(reg, "slow", spec.targets[0].address, true);
    struct lb_target_state *row[] = {st};
    struct lb_target_state **states[] = {row};
    struct waiter w = {.st = st, .srv = &srv};

    CHECK_INT(lb_health_start(&loop, &h), 0);
    CHECK_INT(lb_health_set(h, &spec, 1, states), 0);
    CHECK(run_until(&loop, is_down, &w));
    CHECK(srv.requests >= 1); /* it connected and asked; no answer came */
    CHECK_INT(atomic_load(&st->reason), LB_REASON_HEALTH_CHECK);
    finish(&loop, h, &srv);
    lb_service_spec_free(&spec);
    lb_registry_free(reg);
}

/* Host names go through the resolver. */
static void test_resolve(void)
{
    uv_loop_t loop;
    struct srv srv;
    struct lb_registry *reg;
    struct lb_health *h;
    struct lb_service_spec spec;

    uv_loop_init(&loop);
    srv_start(&loop, &srv, SRV_OK);
    CHECK_INT(lb_registry_new(&reg), 0);
    make_spec(&spec, "named", "localhost", srv.port);
    struct lb_target_state *st = lb_registry_get(reg, "named", spec.targets[0].address, true);
    struct lb_target_state *row[] = {st};
    struct lb_target_state **states[] = {row};
    struct waiter w = {.st = st, .srv = &srv};

    CHECK_INT(lb_health_start(&loop, &h), 0);
    CHECK_INT(lb_health_set(h, &spec, 1, states), 0);
    CHECK(run_until(&loop, checked, &w));
    CHECK_INT(atomic_load(&st->active_healthy), 1);
    CHECK_INT(atomic_load(&st->reason), LB_REASON_NONE);
    CHECK(strstr(srv.last_req, "\r\nHost: localhost:") != NULL);
    finish(&loop, h, &srv);
    lb_service_spec_free(&spec);
    lb_registry_free(reg);
}

/* Stopping with a probe waiting on the wire frees everything, gives no
 * verdict. Several services, one without checks, share the checker. */
static void test_stop_in_flight(void)
{
    uv_loop_t loop;
    struct srv srv;
    struct lb_registry *reg;
    struct lb_health *h;
    struct lb_service_spec spec[3];

    uv_loop_init(&loop);
    srv_start(&loop, &srv, SRV_HANG);
    CHECK_INT(lb_registry_new(&reg), 0);
    make_spec(&spec[0], "a", "127.0.0.1", srv.port);
    make_spec(&spec[1], "b", "127.0.0.1", srv.port);
    make_spec(&spec[2], "c", "127.0.0.1", srv.port);
    spec[2].health.enabled = false;
    struct lb_target_state *row[3], **states[3];
    for (int i = 0; i < 3; i++) {
        spec[i].health.timeout_ms = 5000;
        row[i] =
            lb_registry_get(reg, spec[i].name, spec[i].targets[0].address, spec[i].health.enabled);
        states[i] = &row[i];
    }
    struct waiter w = {.srv = &srv, .requests = 2};

    CHECK_INT(lb_health_start(&loop, &h), 0);
    CHECK_INT(lb_health_set(h, spec, 3, states), 0);
    CHECK(run_until(&loop, got_requests, &w));
    CHECK_INT(srv.requests, 2); /* a and b, not c */
    finish(&loop, h, &srv);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(atomic_load(&row[i]->last_check_ms), 0);
        CHECK_INT(atomic_load(&row[i]->active_healthy), 1);
        lb_service_spec_free(&spec[i]);
    }
    lb_registry_free(reg);
}

/* A checker that never checked anything stops cleanly too. */
static void test_stop_idle(void)
{
    uv_loop_t loop;
    struct lb_health *h;
    uv_loop_init(&loop);
    CHECK_INT(lb_health_start(&loop, &h), 0);
    CHECK_INT(lb_health_set(h, NULL, 0, NULL), 0);
    finish(&loop, h, NULL);
}

TEST_MAIN(TEST(test_transitions), TEST(test_refused_first_verdict), TEST(test_timeout),
          TEST(test_resolve), TEST(test_stop_in_flight), TEST(test_stop_idle))
