/* expand_test.c - a service's targets as addresses: literals stay, a name is
 * one target per address (weight, host and port kept), an unresolved name
 * is none, an address met twice is one target; and what follows an address
 * across lookups: its registry state (health verdict, ejection) and its
 * health checker (counters, schedule), while an address that left is no
 * longer checked and a new one starts unchecked. An expanded target is
 * probed at its address with the name in Host. */
#include "balancer/expand.h"
#include "balancer/health.h"
#include "common/err.h"
#include "common/util.h"
#include "test.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

/* What the fake resolver answers: host -> addresses. */
struct fake_dns {
    const char *host[4];
    struct lb_addrset set[4];
    size_t n;
};

static void dns_put(struct fake_dns *d, const char *host, const char *const *ips, size_t n)
{
    size_t i = 0;
    while (i < d->n && strcmp(d->host[i], host) != 0)
        i++;
    if (i == d->n)
        d->host[d->n++] = host;
    d->set[i].n = 0;
    for (size_t k = 0; k < n; k++) {
        struct lb_ip ip;
        CHECK_INT(lb_ip_parse(ips[k], &ip), 0);
        lb_addrset_add(&d->set[i], &ip);
    }
}

static const struct lb_addrset *dns_lookup(void *arg, const char *host)
{
    struct fake_dns *d = arg;
    for (size_t i = 0; i < d->n; i++) {
        if (strcmp(d->host[i], host) == 0)
            return &d->set[i];
    }
    return NULL;
}

static void add_target(struct lb_service_spec *s, const char *address, int weight)
{
    s->targets = realloc(s->targets, (s->ntargets + 1) * sizeof(*s->targets));
    struct lb_target_spec *t = &s->targets[s->ntargets++];
    memset(t, 0, sizeof(*t));
    t->address = strdup(address);
    t->weight = weight;
    CHECK_INT(gv_split_hostport(address, t->host, sizeof(t->host), &t->port), 0);
}

static void service(struct lb_service_spec *s, const char *name)
{
    CHECK_INT(lb_service_spec_defaults(s), 0);
    s->name = strdup(name);
}

static const char *addr_text(const struct sockaddr_storage *ss)
{
    static char text[64];
    char ip[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        snprintf(text, sizeof(text), "[%s]:%u", ip, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        snprintf(text, sizeof(text), "%s:%u", ip, ntohs(a->sin_port));
    }
    return text;
}

static void test_literals_and_names(void)
{
    struct lb_service_spec in, out;
    struct sockaddr_storage *addrs;
    struct fake_dns dns = {0};
    const char *users[] = {"10.0.0.8", "10.0.0.7"};
    dns_put(&dns, "users-2", users, 2);
    service(&in, "users");
    in.retries = 4;
    add_target(&in, "10.0.0.5:9001", 1);
    add_target(&in, "users-2:9001", 3);
    add_target(&in, "[::1]:9002", 1);
    add_target(&in, "not-yet:80", 1);
    CHECK(!lb_target_is_name(&in.targets[0]) && lb_target_is_name(&in.targets[1]));
    CHECK(!lb_target_is_name(&in.targets[2]) && lb_target_is_name(&in.targets[3]));

    CHECK_INT(lb_service_expand(&in, dns_lookup, &dns, &out, &addrs), 0);
    CHECK_STR(out.name, "users");
    CHECK(out.name != in.name && out.retries == 4 && out.algo == in.algo);
    CHECK_INT(out.ntargets, 4);
    const char *want[] = {"10.0.0.5:9001", "10.0.0.7:9001", "10.0.0.8:9001", "[::1]:9002"};
    const int weight[] = {1, 3, 3, 1};
    const bool named[] = {false, true, true, false};
    for (size_t i = 0; i < 4 && i < out.ntargets; i++) {
        CHECK_STR(out.targets[i].address, want[i]);
        CHECK_STR(addr_text(&addrs[i]), want[i]);
        CHECK_INT(out.targets[i].weight, weight[i]);
        CHECK_INT(out.targets[i].from_name, named[i]);
    }
    /* an expanded target keeps the name for TLS and probes */
    CHECK_STR(out.targets[1].host, "users-2");
    CHECK_INT(out.targets[1].port, 9001);
    CHECK_STR(out.targets[3].host, "::1");
    lb_service_spec_free(&out);
    free(addrs);
    lb_service_spec_free(&in);
}

static void test_address_met_twice(void)
{
    struct lb_service_spec in, out;
    struct sockaddr_storage *addrs;
    struct fake_dns dns = {0};
    const char *a[] = {"10.0.0.7", "10.0.0.9"};
    const char *b[] = {"10.0.0.9", "10.0.0.7"};
    dns_put(&dns, "a", a, 2);
    dns_put(&dns, "b", b, 2);
    service(&in, "s");
    add_target(&in, "10.0.0.9:80", 5);
    add_target(&in, "a:80", 2);
    add_target(&in, "b:80", 1);
    add_target(&in, "b:81", 1); /* another port: other targets */
    CHECK_INT(lb_service_expand(&in, dns_lookup, &dns, &out, &addrs), 0);
    CHECK_INT(out.ntargets, 4);
    CHECK_STR(out.targets[0].address, "10.0.0.9:80");
    CHECK_INT(out.targets[0].weight, 5);
    CHECK(!out.targets[0].from_name);
    CHECK_STR(out.targets[1].address, "10.0.0.7:80");
    CHECK_INT(out.targets[1].weight, 2);
    CHECK_STR(out.targets[2].address, "10.0.0.7:81");
    CHECK_STR(out.targets[3].address, "10.0.0.9:81");
    lb_service_spec_free(&out);
    free(addrs);
    lb_service_spec_free(&in);
}

static void test_unresolved_is_no_target(void)
{
    struct lb_service_spec in, out;
    struct sockaddr_storage *addrs = NULL;
    struct fake_dns dns = {0};
    service(&in, "s");
    add_target(&in, "later:80", 1);
    CHECK_INT(lb_service_expand(&in, dns_lookup, &dns, &out, &addrs), 0);
    CHECK_INT(out.ntargets, 0);
    CHECK(addrs != NULL);
    lb_service_spec_free(&out);
    free(addrs);
    /* once it resolves, it is there */
    const char *ip[] = {"127.0.0.2"};
    dns_put(&dns, "later", ip, 1);
    CHECK_INT(lb_service_expand(&in, dns_lookup, &dns, &out, &addrs), 0);
    CHECK_INT(out.ntargets, 1);
    CHECK_STR(out.targets[0].address, "127.0.0.2:80");
    lb_service_spec_free(&out);
    free(addrs);
    lb_service_spec_free(&in);
}

/* The registry states of out's targets, as the node's snapshot takes them. */
static struct lb_target_state **states_of(struct lb_registry *reg, const struct lb_service_spec *s)
{
    struct lb_target_state **st = calloc(s->ntargets + 1, sizeof(*st));
    for (size_t i = 0; i < s->ntargets; i++)
        st[i] = lb_registry_get(reg, s->name, s->targets[i].address, s->health.enabled);
    return st;
}

static void stopped(void *arg)
{
    *(bool *)arg = true;
}

/* A name moves from {A, B} to {A, C}: A keeps its verdict and its checker's
 * counters, B is no longer checked, C starts unchecked. */
static void test_state_follows_the_address(void)
{
    struct lb_service_spec in, one, two;
    struct sockaddr_storage *addrs1, *addrs2;
    struct fake_dns dns = {0};
    struct lb_registry *reg;
    uv_loop_t loop;
    struct lb_health *h;
    CHECK_INT(uv_loop_init(&loop), 0);
    CHECK_INT(lb_registry_new(&reg), 0);
    CHECK_INT(lb_health_start(&loop, &h), 0);
    service(&in, "svc");
    in.health.enabled = true;
    in.health.interval_ms = 60000; /* no probe runs during the test */
    add_target(&in, "svc-name:80", 1);

    const char *first[] = {"10.0.0.1", "10.0.0.2"};
    dns_put(&dns, "svc-name", first, 2);
    CHECK_INT(lb_service_expand(&in, dns_lookup, &dns, &one, &addrs1), 0);
    struct lb_target_state **st1 = states_of(reg, &one);
    CHECK_INT(lb_health_set(h, &one, 1, &st1), 0);
    /* A failed its checks; its checker counted */
    atomic_store(&st1[0]->active_healthy, 0);
    atomic_store(&st1[0]->reason, LB_REASON_HEALTH_CHECK);
    atomic_store(&st1[0]->last_check_ms, 1);
    st1[0]->check_failures = 3;
    CHECK_INT(lb_health_apply(h, "svc", "10.0.0.2:80", true), 0);

    const char *second[] = {"10.0.0.3", "10.0.0.1"};
    dns_put(&dns, "svc-name", second, 2);
    CHECK_INT(lb_service_expand(&in, dns_lookup, &dns, &two, &addrs2), 0);
    struct lb_target_state **st2 = states_of(reg, &two);
    CHECK_INT(lb_health_set(h, &two, 1, &st2), 0);
    CHECK_STR(two.targets[0].address, "10.0.0.1:80");
    CHECK_STR(two.targets[1].address, "10.0.0.3:80");
    CHECK(st2[0] == st1[0]); /* the address that stays: the same state */
    CHECK(!lb_target_available(st2[0], gv_now_ms()));
    CHECK_INT(lb_target_reason(st2[0], gv_now_ms()), LB_REASON_HEALTH_CHECK);
    CHECK_INT(st2[0]->check_failures, 3); /* a checker kept, not restarted */
    CHECK(st2[1] != st1[1]);
    CHECK_INT(lb_target_reason(st2[1], gv_now_ms()), LB_REASON_UNCHECKED);
    CHECK(lb_target_available(st2[1], gv_now_ms()));
    /* the address that left is not checked any more */
    CHECK_INT(lb_health_apply(h, "svc", "10.0.0.2:80", true), GV_ENOENT);
    CHECK_INT(lb_health_apply(h, "svc", "10.0.0.3:80", true), 0);

    bool done = false;
    lb_health_stop(h, stopped, &done);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(done);
    CHECK_INT(uv_loop_close(&loop), 0);
    free(st1);
    free(st2);
    free(addrs1);
    free(addrs2);
    lb_service_spec_free(&one);
    lb_service_spec_free(&two);
    lb_service_spec_free(&in);
    lb_registry_free(reg);
}

/* A one-shot HTTP server on 127.0.0.1 that answers 200 and keeps the
 * request head it read. */
struct probe_srv {
    uv_tcp_t listener, conn;
    uv_write_t w;
    char req[1024];
    size_t len;
    bool answered, conn_open;
};

static void srv_alloc(uv_handle_t *hd, size_t size, uv_buf_t *buf)
{
    struct probe_srv *s = hd->data;
    *buf = uv_buf_init(s->req + s->len, (unsigned)(sizeof(s->req) - 1 - s->len));
}

static void srv_closed(uv_handle_t *hd)
{
    ((struct probe_srv *)hd->data)->conn_open = false;
}

static void srv_written(uv_write_t *w, int status)
{
    uv_close((uv_handle_t *)w->handle, srv_closed);
}

static void srv_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    static char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    struct probe_srv *s = st->data;
    if (nread <= 0) {
        if (nread < 0 && !uv_is_closing((uv_handle_t *)st))
            uv_close((uv_handle_t *)st, srv_closed);
        return;
    }
    s->len += (size_t)nread;
    s->req[s->len] = '\0';
    if (s->answered || strstr(s->req, "\r\n\r\n") == NULL)
        return;
    s->answered = true;
    uv_buf_t b = uv_buf_init(ok, sizeof(ok) - 1);
    uv_write(&s->w, st, &b, 1, srv_written);
}

static void srv_accept(uv_stream_t *l, int status)
{
    struct probe_srv *s = l->data;
    if (status < 0 || s->conn_open)
        return;
    uv_tcp_init(l->loop, &s->conn);
    s->conn.data = s;
    s->conn_open = true;
    if (uv_accept(l, (uv_stream_t *)&s->conn) == 0)
        uv_read_start((uv_stream_t *)&s->conn, srv_alloc, srv_read);
}

static uint16_t srv_start(uv_loop_t *loop, struct probe_srv *s)
{
    struct sockaddr_in sa;
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    CHECK_INT(uv_tcp_bind(&s->listener, (const struct sockaddr *)&sa, 0), 0);
    CHECK_INT(uv_listen((uv_stream_t *)&s->listener, 8, srv_accept), 0);
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
    return ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void on_deadline(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* The probe of a target standing for 127.0.0.1 of the name "svc.invalid"
 * (which no resolver knows) connects to 127.0.0.1 and says Host: the name. */
static void test_probe_goes_to_the_address(void)
{
    uv_loop_t loop;
    uv_timer_t deadline;
    struct probe_srv srv = {0};
    struct lb_health *h;
    struct lb_service_spec s;
    struct lb_target_state st;
    struct lb_target_state *states[1] = {&st}, **rows[1] = {states};
    char host_line[64];
    memset(&st, 0, sizeof(st));
    atomic_init(&st.active_healthy, 1);
    CHECK_INT(uv_loop_init(&loop), 0);
    uint16_t port = srv_start(&loop, &srv);
    service(&s, "svc");
    s.health.enabled = true;
    s.health.timeout_ms = 5000;
    s.targets = calloc(1, sizeof(*s.targets));
    s.ntargets = 1;
    char address[32];
    snprintf(address, sizeof(address), "127.0.0.1:%u", port);
    s.targets[0] = (struct lb_target_spec){
        .address = strdup(address), .port = port, .weight = 1, .from_name = true};
    snprintf(s.targets[0].host, sizeof(s.targets[0].host), "svc.invalid");
    CHECK_INT(lb_health_start(&loop, &h), 0);
    CHECK_INT(lb_health_set(h, &s, 1, rows), 0);
    uv_timer_init(&loop, &deadline);
    uv_timer_start(&deadline, on_deadline, 10000, 0);
    while (atomic_load(&st.last_check_ms) == 0 && uv_is_active((uv_handle_t *)&deadline))
        uv_run(&loop, UV_RUN_ONCE);
    CHECK(atomic_load(&st.last_check_ms) != 0);
    CHECK_INT(atomic_load(&st.reason), LB_REASON_NONE); /* the first check passed */
    snprintf(host_line, sizeof(host_line), "\r\nHost: svc.invalid:%u\r\n", port);
    CHECK(strstr(srv.req, host_line) != NULL);
    bool done = false;
    lb_health_stop(h, stopped, &done);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_close((uv_handle_t *)&srv.listener, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(done);
    CHECK_INT(uv_loop_close(&loop), 0);
    lb_service_spec_free(&s);
}

TEST_MAIN(TEST(test_literals_and_names), TEST(test_address_met_twice),
          TEST(test_unresolved_is_no_target), TEST(test_state_follows_the_address),
          TEST(test_probe_goes_to_the_address))
