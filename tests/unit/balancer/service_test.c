/* service_test.c - spec defaults and copies, reason names, availability, passive
 * ejection and recovery, the latency EWMA, the target registry. */
#include "balancer/lb.h"
#include "balancer/service.h"
#include "common/err.h"
#include "test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void test_defaults(void)
{
    struct lb_service_spec s;
    memset(&s, 0xa5, sizeof(s)); /* defaults must not trust the old contents */
    lb_service_spec_defaults(&s);
    CHECK(s.name == NULL && s.targets == NULL && s.ntargets == 0 && s.hash_key == NULL);
    CHECK(s.algo == lb_algo_default() && s.algo != NULL);
    CHECK_INT(s.hash_on, LB_HASH_IP);
    CHECK(!s.health.enabled);
    CHECK_STR(s.health.path, "/healthz");
    CHECK_INT(s.health.interval_ms, 2000);
    CHECK_INT(s.health.timeout_ms, 1000);
    CHECK_INT(s.health.healthy, 2);
    CHECK_INT(s.health.unhealthy, 3);
    CHECK_INT(s.passive.failures, 5);
    CHECK_INT(s.passive.eject_for_ms, 30000);
    CHECK(!s.sticky.enabled);
    CHECK_STR(s.sticky.cookie, "GV_STICKY");
    CHECK_INT(s.sticky.ttl_ms, 3600000);
    CHECK_INT(s.retries, 2);
    CHECK_INT(s.timeouts.connect_ms, 1000);
    CHECK_INT(s.timeouts.read_ms, 30000);
    CHECK_INT(s.timeouts.write_ms, 30000);
    lb_service_spec_free(&s);
    lb_service_spec_free(&s); /* idempotent */
    lb_service_spec_free(NULL);
}

static void test_copy(void)
{
    struct lb_service_spec a, b;
    lb_service_spec_defaults(&a);
    a.name = strdup("users");
    a.hash_key = strdup("X-User");
    a.hash_on = LB_HASH_HEADER;
    a.algo = lb_algo_find("consistent_hash");
    a.retries = 4;
    a.ntargets = 2;
    a.targets = calloc(2, sizeof(*a.targets));
    a.targets[0].address = strdup("10.0.0.5:9001");
    snprintf(a.targets[0].host, sizeof(a.targets[0].host), "10.0.0.5");
    a.targets[0].port = 9001;
    a.targets[0].weight = 1;
    a.targets[1].address = strdup("users-2:9001");
    a.targets[1].weight = 2;

    memset(&b, 0, sizeof(b));
    CHECK_INT(lb_service_spec_copy(&b, &a), 0);
    CHECK_STR(b.name, "users");
    CHECK(b.name != a.name);
    CHECK_STR(b.hash_key, "X-User");
    CHECK(b.hash_key != a.hash_key);
    CHECK_STR(b.health.path, "/healthz");
    CHECK(b.health.path != a.health.path);
    CHECK_STR(b.sticky.cookie, "GV_STICKY");
    CHECK(b.algo == a.algo && b.algo != NULL);
    CHECK_INT(b.retries, 4);
    CHECK_INT(b.ntargets, 2);
    CHECK(b.targets != a.targets);
    CHECK_STR(b.targets[0].address, "10.0.0.5:9001");
    CHECK(b.targets[0].address != a.targets[0].address);
    CHECK_STR(b.targets[0].host, "10.0.0.5");
    CHECK_INT(b.targets[0].port, 9001);
    CHECK_INT(b.targets[1].weight, 2);
    lb_service_spec_free(&a);
    CHECK_STR(b.targets[1].address, "users-2:9001"); /* still valid: deep */
    lb_service_spec_free(&b);

    /* NULL strings stay NULL. */
    struct lb_service_spec c, d;
    memset(&c, 0, sizeof(c));
    CHECK_INT(lb_service_spec_copy(&d, &c), 0);
    CHECK(d.name == NULL && d.targets == NULL && d.health.path == NULL);
    lb_service_spec_free(&d);
}

static void test_names(void)
{
    CHECK_STR(lb_reason_name(LB_REASON_NONE), "");
    CHECK_STR(lb_reason_name(LB_REASON_HEALTH_CHECK), "health_check");
    CHECK_STR(lb_reason_name(LB_REASON_PASSIVE), "passive");
    CHECK_STR(lb_reason_name(LB_REASON_UNCHECKED), "unchecked");
}

static void healthy_state(struct lb_target_state *st)
{
    memset(st, 0, sizeof(*st));
    atomic_init(&st->active_healthy, 1);
}

static void test_available(void)
{
    struct lb_target_state st;
    healthy_state(&st);
    CHECK(lb_target_available(&st, 0));
    atomic_store(&st.ejected_until_ms, 100);
    CHECK(!lb_target_available(&st, 99));
    CHECK(lb_target_available(&st, 100));
    atomic_store(&st.active_healthy, 0);
    CHECK(!lb_target_available(&st, 100));
    CHECK_INT(lb_target_reason(&st, 100), LB_REASON_HEALTH_CHECK);
}

static void test_passive_ejection(void)
{
    struct lb_target_state st;
    struct lb_passive_spec p = {.failures = 3, .eject_for_ms = 1000};
    healthy_state(&st);

    CHECK(!lb_target_report(&st, &p, false, 0, 10));
    CHECK(!lb_target_report(&st, &p, false, 0, 11));
    CHECK(lb_target_available(&st, 12));
    CHECK_INT(atomic_load(&st.consecutive_failures), 2);
    CHECK(lb_target_report(&st, &p, false, 0, 12)); /* this one ejects: said once */
    CHECK(!lb_target_available(&st, 12));
    CHECK_INT(atomic_load(&st.ejected_until_ms), 1012);
    CHECK_INT(atomic_load(&st.reason), LB_REASON_PASSIVE);
    CHECK_INT(lb_target_reason(&st, 500), LB_REASON_PASSIVE);
    CHECK_INT(atomic_load(&st.consecutive_failures), 0);
    CHECK(!lb_target_available(&st, 1011));
    /* Recovery after eject_for. */
    CHECK(lb_target_available(&st, 1012));
    CHECK_INT(lb_target_reason(&st, 1012), LB_REASON_NONE);
    CHECK(!lb_target_report(&st, &p, true, 0, 1013));
    CHECK_INT(atomic_load(&st.reason), LB_REASON_NONE);

    /* A success in between resets the count. */
    lb_target_report(&st, &p, false, 0, 2000);
    lb_target_report(&st, &p, false, 0, 2001);
    lb_target_report(&st, &p, true, 0, 2002);
    lb_target_report(&st, &p, false, 0, 2003);
    lb_target_report(&st, &p, false, 0, 2004);
    CHECK(lb_target_available(&st, 2005));
    lb_target_report(&st, &p, false, 0, 2005);
    CHECK(!lb_target_available(&st, 2005));
    CHECK(lb_target_available(&st, 3005));

    /* failures = 0 turns passive ejection off. */
    struct lb_passive_spec off = {.failures = 0, .eject_for_ms = 1000};
    healthy_state(&st);
    for (int i = 0; i < 100; i++)
        lb_target_report(&st, &off, false, 0, 10);
    CHECK(lb_target_available(&st, 10));

    /* An ejection does not hide an active-check verdict. */
    healthy_state(&st);
    atomic_store(&st.reason, LB_REASON_UNCHECKED);
    for (int i = 0; i < 3; i++)
        lb_target_report(&st, &p, false, 0, 10);
    CHECK(!lb_target_available(&st, 10));
    CHECK_INT(atomic_load(&st.reason), LB_REASON_UNCHECKED);
    CHECK_INT(lb_target_reason(&st, 10), LB_REASON_PASSIVE);
    CHECK_INT(lb_target_reason(&st, 2000), LB_REASON_UNCHECKED);
}

static void test_ewma(void)
{
    struct lb_target_state st;
    struct lb_passive_spec p = {.failures = 5, .eject_for_ms = 1000};
    healthy_state(&st);
    lb_target_report(&st, &p, true, 0, 1); /* not measured */
    CHECK_INT(atomic_load(&st.ewma_us), 0);
    lb_target_report(&st, &p, true, 1000, 1);
    CHECK_INT(atomic_load(&st.ewma_us), 1000);
    lb_target_report(&st, &p, true, 2000, 1);
    CHECK_INT(atomic_load(&st.ewma_us), 1300);
    /* A fast failure does not make the target look better ... */
    lb_target_report(&st, &p, false, 10, 1);
    CHECK_INT(atomic_load(&st.ewma_us), 1300);
    /* ... a slow one makes it look worse. */
    lb_target_report(&st, &p, false, 11300, 1);
    CHECK_INT(atomic_load(&st.ewma_us), 4300);
    /* Converges to a steady latency. */
    for (int i = 0; i < 100; i++)
        lb_target_report(&st, &p, true, 500, 1);
    CHECK(atomic_load(&st.ewma_us) >= 500 && atomic_load(&st.ewma_us) <= 502);
    /* Absurd samples are clamped, never overflow. */
    lb_target_report(&st, &p, true, UINT64_MAX, 1);
    CHECK(atomic_load(&st.ewma_us) <= 3600ULL * 1000 * 1000);
}

static void test_registry(void)
{
    struct lb_registry *r = NULL;
    CHECK_INT(lb_registry_new(&r), 0);
    if (r == NULL)
        return;
    struct lb_target_state *a = lb_registry_get(r, "users", "10.0.0.5:9001", false);
    struct lb_target_state *b = lb_registry_get(r, "users", "10.0.0.6:9001", true);
    struct lb_target_state *c = lb_registry_get(r, "orders", "10.0.0.5:9001", false);
    CHECK(a != NULL && b != NULL && c != NULL);
    CHECK(a != b && a != c && b != c);
    CHECK(lb_registry_get(r, "users", "10.0.0.5:9001", false) == a);
    /* "users" + "x:1" and "usersx" + ":1"-style keys must not collide. */
    CHECK(lb_registry_get(r, "u", "sers10.0.0.5:9001", false) != a);

    CHECK(lb_target_available(a, 0));
    CHECK_INT(atomic_load(&a->reason), LB_REASON_NONE);
    /* Checked targets start usable but unchecked. */
    CHECK(lb_target_available(b, 0));
    CHECK_INT(atomic_load(&b->reason), LB_REASON_UNCHECKED);
    CHECK_INT(lb_target_reason(b, 0), LB_REASON_UNCHECKED);

    /* Turning checks on for a known, never-checked target. */
    CHECK(lb_registry_get(r, "users", "10.0.0.5:9001", true) == a);
    CHECK_INT(atomic_load(&a->reason), LB_REASON_UNCHECKED);
    /* A target held down by checks is released when checks are turned off;
     * passive state is kept. */
    atomic_store(&b->active_healthy, 0);
    atomic_store(&b->reason, LB_REASON_HEALTH_CHECK);
    atomic_store(&b->last_check_ms, 5);
    atomic_store(&b->ejected_until_ms, 77);
    CHECK(lb_registry_get(r, "users", "10.0.0.6:9001", false) == b);
    CHECK_INT(atomic_load(&b->active_healthy), 1);
    CHECK_INT(atomic_load(&b->reason), LB_REASON_NONE);
    CHECK_INT(atomic_load(&b->ejected_until_ms), 77);
    /* A target already checked keeps its verdict when asked for again. */
    atomic_store(&b->last_check_ms, 5);
    CHECK(lb_registry_get(r, "users", "10.0.0.6:9001", true) == b);
    CHECK_INT(atomic_load(&b->reason), LB_REASON_NONE);

    /* Many entries: pointers stay put while the table grows. */
    struct lb_target_state *many[2000];
    char addr[64];
    for (int i = 0; i < 2000; i++) {
        snprintf(addr, sizeof(addr), "10.1.%d.%d:80", i / 250, i % 250);
        many[i] = lb_registry_get(r, "big", addr, false);
        CHECK(many[i] != NULL);
        if (many[i] != NULL)
            atomic_store(&many[i]->inflight, i);
    }
    for (int i = 0; i < 2000; i++) {
        snprintf(addr, sizeof(addr), "10.1.%d.%d:80", i / 250, i % 250);
        CHECK(lb_registry_get(r, "big", addr, false) == many[i]);
        CHECK_INT(atomic_load(&many[i]->inflight), i);
    }
    CHECK(lb_registry_get(r, "users", "10.0.0.5:9001", false) == a);
    lb_registry_free(r);
    lb_registry_free(NULL);
}

/* A state lives as long as it is held: an address a name went through and
 * left does not stay in memory, one that stays keeps its state. */
static void test_registry_put(void)
{
    struct lb_registry *r = NULL;
    char addr[64];
    CHECK_INT(lb_registry_new(&r), 0);
    if (r == NULL)
        return;
    struct lb_target_state *kept = lb_registry_get(r, "s", "10.0.0.1:80", true);
    atomic_store(&kept->active_healthy, 0);
    /* two snapshots hold it; the older lets go */
    CHECK(lb_registry_get(r, "s", "10.0.0.1:80", true) == kept);
    lb_registry_put(r, kept);
    CHECK(lb_registry_get(r, "s", "10.0.0.1:80", true) == kept);
    CHECK_INT(atomic_load(&kept->active_healthy), 0);
    lb_registry_put(r, kept);
    /* a name going through many addresses, each held by one snapshot */
    for (int i = 0; i < 3000; i++) {
        snprintf(addr, sizeof(addr), "10.3.%d.%d:80", i / 250, i % 250);
        struct lb_target_state *st = lb_registry_get(r, "churn", addr, false);
        CHECK(st != NULL);
        atomic_store(&st->inflight, 9);
        lb_registry_put(r, st);
    }
    /* let go entirely, it comes back afresh */
    lb_registry_put(r, kept);
    struct lb_target_state *again = lb_registry_get(r, "s", "10.0.0.1:80", true);
    CHECK(again != NULL && atomic_load(&again->active_healthy) == 1);
    CHECK_INT(atomic_load(&again->reason), LB_REASON_UNCHECKED);
    snprintf(addr, sizeof(addr), "10.3.0.1:80");
    struct lb_target_state *fresh = lb_registry_get(r, "churn", addr, false);
    CHECK(fresh != NULL && atomic_load(&fresh->inflight) == 0);
    lb_registry_put(r, NULL);
    lb_registry_free(r); /* frees what is still held */
}

/* Many threads at once: one state per key, one ejection per streak. */
struct race {
    struct lb_registry *r;
    struct lb_target_state *seen[8];
    struct lb_target_state *st;
    struct lb_passive_spec passive;
};

static void *race_thread(void *arg)
{
    struct race *rc = arg;
    char addr[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(addr, sizeof(addr), "10.2.0.%d:80", i % 8);
        struct lb_target_state *st = lb_registry_get(rc->r, "race", addr, false);
        if (st == NULL || (rc->seen[i % 8] != NULL && rc->seen[i % 8] != st))
            return (void *)1;
    }
    for (int i = 0; i < 1000; i++)
        lb_target_report(rc->st, &rc->passive, false, 100, 1);
    return NULL;
}

static void test_threads(void)
{
    struct race rc = {.passive = {.failures = 1000000, .eject_for_ms = 50}};
    struct lb_target_state st;
    pthread_t th[8];
    char addr[32];
    healthy_state(&st);
    rc.st = &st;
    CHECK_INT(lb_registry_new(&rc.r), 0);
    for (int i = 0; i < 8; i++) {
        snprintf(addr, sizeof(addr), "10.2.0.%d:80", i);
        rc.seen[i] = lb_registry_get(rc.r, "race", addr, false);
    }
    for (int i = 0; i < 8; i++)
        CHECK_INT(pthread_create(&th[i], NULL, race_thread, &rc), 0);
    for (int i = 0; i < 8; i++) {
        void *ret = NULL;
        pthread_join(th[i], &ret);
        CHECK(ret == NULL);
    }
    /* 8000 failures against a threshold of a million: counted exactly. */
    CHECK_INT(atomic_load(&st.consecutive_failures), 8000);
    CHECK(lb_target_available(&st, 1));
    CHECK_INT(atomic_load(&st.ewma_us), 100);

    /* Threshold 1000 over 8000 concurrent failures: every streak that
     * reaches it ejects and restarts, so the count never passes it. */
    healthy_state(&st);
    rc.passive.failures = 1000;
    for (int i = 0; i < 8; i++)
        CHECK_INT(pthread_create(&th[i], NULL, race_thread, &rc), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    CHECK(atomic_load(&st.consecutive_failures) < 1000);
    CHECK(!lb_target_available(&st, 1));
    CHECK(lb_target_available(&st, 51));
    lb_registry_free(rc.r);
}

TEST_MAIN(TEST(test_defaults), TEST(test_copy), TEST(test_names), TEST(test_available),
          TEST(test_passive_ejection), TEST(test_ewma), TEST(test_registry),
          TEST(test_registry_put), TEST(test_threads))
