/* lb_fixture.h - shared set-up for the balancing algorithm tests: a service
 * spec with N weighted targets, their states, a balancer, and helpers that
 * count picks and compare the shares with the weights. */
#ifndef GV_TESTS_LB_FIXTURE_H
#define GV_TESTS_LB_FIXTURE_H

#include "balancer/lb.h"
#include "common/err.h"
#include "common/util.h"
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define FX_MAX 16

struct fx {
    struct lb_service_spec spec;
    struct lb_target_state st[FX_MAX];
    struct lb_target_state *states[FX_MAX];
    struct lb_balancer *b;
};

/* algo: the algorithm's name, found through the registry as a config would. */
static inline void fx_init(struct fx *f, const char *algo, const int *weights, int n)
{
    memset(f, 0, sizeof(*f));
    lb_service_spec_defaults(&f->spec);
    f->spec.name = strdup("svc");
    f->spec.algo = lb_algo_find(algo);
    CHECK(f->spec.algo != NULL);
    f->spec.targets = calloc((size_t)n + 1, sizeof(*f->spec.targets));
    f->spec.ntargets = (size_t)n;
    for (int i = 0; i < n; i++) {
        char addr[64];
        snprintf(addr, sizeof(addr), "10.0.0.%d:9001", i + 1);
        f->spec.targets[i].address = strdup(addr);
        snprintf(f->spec.targets[i].host, sizeof(f->spec.targets[i].host), "10.0.0.%d", i + 1);
        f->spec.targets[i].port = 9001;
        f->spec.targets[i].weight = weights[i];
        atomic_init(&f->st[i].active_healthy, 1);
        f->states[i] = &f->st[i];
    }
    CHECK_INT(lb_balancer_new(&f->spec, f->states, &f->b), 0);
}

static inline void fx_free(struct fx *f)
{
    lb_balancer_free(f->b);
    lb_service_spec_free(&f->spec);
}

static inline struct lb_pick_ctx fx_ctx(uint64_t now_ms)
{
    struct lb_pick_ctx c = {.now_ms = now_ms};
    return c;
}

/* Compares counts with the weights; prints the shares and returns the
 * largest relative error (|observed - expected| / expected). */
static inline double fx_shares(const char *label, const long *counts, const int *weights, int n)
{
    long total = 0, wsum = 0;
    double worst = 0, worst_abs = 0;
    for (int i = 0; i < n; i++) {
        total += counts[i];
        wsum += weights[i];
    }
    printf("  %-28s", label);
    for (int i = 0; i < n; i++) {
        double want = (double)weights[i] / (double)wsum;
        double got = total ? (double)counts[i] / (double)total : 0;
        double rel = fabs(got - want) / want;
        printf(" %.4f/%.4f", got, want);
        if (rel > worst)
            worst = rel;
        if (fabs(got - want) > worst_abs)
            worst_abs = fabs(got - want);
    }
    printf("  max rel err %.2f%%, max abs err %.2f pts\n", worst * 100, worst_abs * 100);
    return worst;
}

/* Picks `picks` times with `concurrency` requests in flight, every request
 * taking the same time: each pick adds an in-flight request to its target
 * and, once `concurrency` are in flight, the oldest one completes. Equal
 * service times are the premise under which in-flight counts should follow
 * the weights. */
static inline void fx_simulate(struct fx *f, long picks, int concurrency, long *counts)
{
    int n = (int)f->spec.ntargets;
    int *window = calloc((size_t)concurrency, sizeof(*window));
    long live = 0;
    struct lb_pick_ctx c = fx_ctx(1);
    for (long k = 0; k < picks; k++) {
        int i = lb_pick(f->b, &c);
        CHECK(i >= 0 && i < n);
        if (i < 0)
            break;
        counts[i]++;
        atomic_fetch_add(&f->st[i].inflight, 1);
        if (live == concurrency)
            atomic_fetch_sub(&f->st[window[k % concurrency]].inflight, 1);
        else
            live++;
        window[k % concurrency] = i;
    }
    free(window);
}

/* Unhealthy, ejected and tried targets are never picked; none left -> -1. */
static inline void fx_check_exclusion(const char *algo)
{
    static const int w[] = {1, 2, 3, 1, 2};
    struct fx f;
    fx_init(&f, algo, w, 5);
    atomic_store(&f.st[1].active_healthy, 0);
    atomic_store(&f.st[3].ejected_until_ms, 5000);
    int tried[] = {4};
    struct lb_pick_ctx c = {.now_ms = 1000, .tried = tried, .ntried = 1, .has_hash = true};
    long counts[5] = {0};
    for (int k = 0; k < 20000; k++) {
        c.hash = gv_rand64();
        int i = lb_pick(f.b, &c);
        CHECK(i == 0 || i == 2);
        if (i >= 0 && i < 5) {
            counts[i]++;
            /* Load-aware algorithms would keep to the cheapest otherwise. */
            atomic_fetch_add(&f.st[i].inflight, 1);
        }
    }
    CHECK(counts[0] > 0 && counts[2] > 0);
    /* The ejection ends at 5000: target 3 is back. */
    c.now_ms = 5000;
    bool saw3 = false;
    for (int k = 0; k < 20000 && !saw3; k++) {
        c.hash = gv_rand64();
        saw3 = lb_pick(f.b, &c) == 3;
    }
    CHECK(saw3);
    /* Nothing left. */
    atomic_store(&f.st[0].active_healthy, 0);
    atomic_store(&f.st[2].active_healthy, 0);
    atomic_store(&f.st[3].active_healthy, 0);
    for (int k = 0; k < 100; k++) {
        c.hash = gv_rand64();
        CHECK_INT(lb_pick(f.b, &c), -1);
    }
    c.ntried = 0; /* only target 4 remains */
    for (int k = 0; k < 100; k++) {
        c.hash = gv_rand64();
        CHECK_INT(lb_pick(f.b, &c), 4);
    }
    c.has_hash = false;
    CHECK_INT(lb_pick(f.b, &c), 4);
    fx_free(&f);

    /* A service without targets. */
    struct lb_service_spec empty;
    struct lb_balancer *b = NULL;
    lb_service_spec_defaults(&empty);
    empty.algo = lb_algo_find(algo);
    CHECK_INT(lb_balancer_new(&empty, NULL, &b), 0);
    if (b != NULL) {
        struct lb_pick_ctx e = {.now_ms = 1, .has_hash = true, .hash = 42};
        CHECK_INT(lb_pick(b, &e), -1);
        e.has_hash = false;
        CHECK_INT(lb_pick(b, &e), -1);
    }
    lb_balancer_free(b);
    lb_service_spec_free(&empty);
}

#endif
