/* resolver_test.c - following names on a real loop with the system
 * resolver: "localhost" (from /etc/hosts) resolves and is reported once;
 * literals are not followed; a name that does not resolve has no addresses
 * and says why; names dropped or a resolver stopped while lookups are in
 * flight free everything (ASan). Bounded by deadlines, no sleeps. */
#include "balancer/resolver.h"
#include "common/err.h"
#include "common/util.h"
#include "test.h"

#include <stdlib.h>
#include <uv.h>

#define DEADLINE_MS 20000

static int changes;

static void on_changed(void *arg)
{
    (void)arg;
    changes++;
}

static void on_deadline(uv_timer_t *t)
{
    (void)t;
}

/* Runs loop until cond(arg) holds or DEADLINE_MS pass. */
static bool run_until(uv_loop_t *loop, bool (*cond)(void *), void *arg)
{
    uv_timer_t deadline;
    uv_timer_init(loop, &deadline);
    uv_timer_start(&deadline, on_deadline, DEADLINE_MS, 0);
    while (!cond(arg) && uv_is_active((uv_handle_t *)&deadline))
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return cond(arg);
}

static void service(struct lb_service_spec *s, const char *const *addresses, size_t n)
{
    CHECK_INT(lb_service_spec_defaults(s), 0);
    s->name = strdup("svc");
    s->targets = calloc(n + 1, sizeof(*s->targets));
    s->ntargets = n;
    for (size_t i = 0; i < n; i++) {
        s->targets[i].address = strdup(addresses[i]);
        s->targets[i].weight = 1;
        gv_split_hostport(addresses[i], s->targets[i].host, sizeof(s->targets[i].host),
                          &s->targets[i].port);
    }
}

struct probe {
    struct lb_resolver *r;
    const char *host;
};

static bool known(void *arg)
{
    struct probe *p = arg;
    return lb_resolver_get(p->r, p->host) != NULL;
}

static bool failing(void *arg)
{
    struct probe *p = arg;
    return lb_resolver_error(p->r, p->host)[0] != '\0';
}

static void stopped(void *arg)
{
    *(bool *)arg = true;
}

static void stop(uv_loop_t *loop, struct lb_resolver *r)
{
    bool done = false;
    lb_resolver_stop(r, stopped, &done);
    CHECK(!done); /* never from inside the call */
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK(done);
    CHECK_INT(uv_loop_close(loop), 0);
}

static void test_localhost(void)
{
    uv_loop_t loop;
    struct lb_resolver *r;
    struct lb_service_spec s;
    const char *addresses[] = {"localhost:80", "10.0.0.1:80", "localhost:81"};
    CHECK_INT(uv_loop_init(&loop), 0);
    CHECK_INT(lb_resolver_start(&loop, on_changed, NULL, &r), 0);
    service(&s, addresses, 3);
    changes = 0;
    CHECK_INT(lb_resolver_set(r, &s, 1), 0);
    CHECK(lb_resolver_get(r, "localhost") == NULL); /* not before the loop runs */
    struct probe p = {r, "localhost"};
    CHECK(run_until(&loop, known, &p));
    const struct lb_addrset *set = lb_resolver_get(r, "localhost");
    struct lb_ip lo;
    lb_ip_parse("127.0.0.1", &lo);
    CHECK(set != NULL && set->n >= 1);
    bool has_lo = false;
    for (size_t i = 0; set != NULL && i < set->n; i++)
        has_lo |= memcmp(&set->ip[i], &lo, sizeof(lo)) == 0;
    CHECK(has_lo);
    CHECK_INT(changes, 1);
    CHECK_STR(lb_resolver_error(r, "localhost"), "");
    CHECK(lb_resolver_get(r, "10.0.0.1") == NULL); /* a literal is not followed */
    /* the same config again keeps the addresses; a nudge is harmless */
    CHECK_INT(lb_resolver_set(r, &s, 1), 0);
    CHECK(lb_resolver_get(r, "localhost") != NULL);
    lb_resolver_nudge(r, "localhost");
    lb_resolver_nudge(r, "not-followed");
    /* dropped with the service */
    CHECK_INT(lb_resolver_set(r, NULL, 0), 0);
    CHECK(lb_resolver_get(r, "localhost") == NULL);
    stop(&loop, r);
    lb_service_spec_free(&s);
}

static void test_unresolvable(void)
{
    uv_loop_t loop;
    struct lb_resolver *r;
    struct lb_service_spec s;
    const char *addresses[] = {"no-such-host.invalid:80"};
    CHECK_INT(uv_loop_init(&loop), 0);
    CHECK_INT(lb_resolver_start(&loop, on_changed, NULL, &r), 0);
    service(&s, addresses, 1);
    changes = 0;
    CHECK_INT(lb_resolver_set(r, &s, 1), 0);
    struct probe p = {r, "no-such-host.invalid"};
    CHECK(run_until(&loop, failing, &p));
    CHECK(lb_resolver_get(r, "no-such-host.invalid") == NULL);
    CHECK_INT(changes, 0);
    stop(&loop, r);
    lb_service_spec_free(&s);
}

/* Names dropped, and the resolver stopped, while lookups are in flight. */
static void test_stop_while_busy(void)
{
    uv_loop_t loop;
    struct lb_resolver *r;
    struct lb_service_spec s;
    const char *addresses[] = {"localhost:80", "a.invalid:80", "b.invalid:80", "c.invalid:80"};
    CHECK_INT(uv_loop_init(&loop), 0);
    CHECK_INT(lb_resolver_start(&loop, on_changed, NULL, &r), 0);
    service(&s, addresses, 4);
    CHECK_INT(lb_resolver_set(r, &s, 1), 0);
    uv_run(&loop, UV_RUN_NOWAIT); /* the first lookups start */
    CHECK_INT(lb_resolver_set(r, NULL, 0), 0);
    CHECK_INT(lb_resolver_set(r, &s, 1), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    stop(&loop, r);
    lb_service_spec_free(&s);
}

TEST_MAIN(TEST(test_localhost), TEST(test_unresolvable), TEST(test_stop_while_busy))
