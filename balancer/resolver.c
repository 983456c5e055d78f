/* resolver.c - following the host names of targets with uv_getaddrinfo on
 * the control loop (see resolver.h). */
#include "balancer/resolver.h"
#include "balancer/expand.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RS_MAX_INFLIGHT 2    /* lookups at once: the thread pool is shared */
#define RS_RETRY_MS     1000 /* a failed lookup is tried again this soon */
#define RS_NUDGE_GAP_MS 1000 /* connect failures look a name up at most this often */

/* One followed name. While a lookup is in flight the struct belongs to it:
 * a name dropped meanwhile is freed when the lookup returns. */
struct rs_name {
    struct lb_resolver *r;
    uv_getaddrinfo_t req;
    struct lb_addrset set; /* valid when known */
    bool known;            /* resolved at least once */
    bool busy;             /* a lookup in flight */
    bool dropped;          /* no longer followed */
    bool failing;          /* the last lookup failed */
    uint64_t every_ms;
    uint64_t due_ms;     /* when the next lookup starts */
    uint64_t started_ms; /* when the last one started */
    char error[96];      /* why the last lookup failed */
    char host[];
};

struct lb_resolver {
    uv_loop_t *loop;
    uv_timer_t timer; /* fires when the next lookup is due */
    struct rs_name **names;
    size_t nnames;
    int inflight; /* lookups running, those of dropped names included */
    bool stopping;
    bool timer_closed;
    void (*changed)(void *arg);
    void *arg;
    void (*done)(void *arg);
    void *done_arg;
};

static void on_timer(uv_timer_t *t);

int lb_resolver_start(uv_loop_t *loop, void (*changed)(void *arg), void *arg,
                      struct lb_resolver **out)
{
    struct lb_resolver *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return GV_ENOMEM;
    r->loop = loop;
    r->changed = changed;
    r->arg = arg;
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    *out = r;
    return 0;
}

static struct rs_name *find(struct rs_name *const *v, size_t n, const char *host)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i]->host, host) == 0)
            return v[i];
    }
    return NULL;
}

/* Sets the timer for the earliest lookup due; none while the in-flight
 * limit is reached (a lookup that returns calls this again). */
static void arm(struct lb_resolver *r)
{
    uint64_t next = UINT64_MAX, now = gv_now_ms();
    if (r->stopping)
        return;
    for (size_t i = 0; i < r->nnames && r->inflight < RS_MAX_INFLIGHT; i++) {
        if (!r->names[i]->busy)
            next = GV_MIN(next, r->names[i]->due_ms);
    }
    if (next == UINT64_MAX)
        uv_timer_stop(&r->timer);
    else
        uv_timer_start(&r->timer, on_timer, next > now ? next - now : 0, 0);
}

/* Frees r after lb_resolver_stop once nothing of it is open. */
static void maybe_done(struct lb_resolver *r)
{
    if (!r->stopping || !r->timer_closed || r->inflight > 0)
        return;
    void (*done)(void *) = r->done;
    void *arg = r->done_arg;
    free(r);
    if (done != NULL)
        done(arg);
}

static void failed(struct rs_name *nm, const char *why)
{
    char had[256];
    snprintf(nm->error, sizeof(nm->error), "%s", why);
    nm->due_ms = gv_now_ms() + GV_MIN(nm->every_ms, RS_RETRY_MS);
    if (nm->failing)
        return;
    nm->failing = true;
    if (nm->known) {
        lb_addrset_format(&nm->set, had, sizeof(had));
        gv_warn("target name %s: lookup failed (%s); keeping %s", nm->host, why, had);
    } else {
        gv_warn("target name %s does not resolve (%s); trying again", nm->host, why);
    }
}

/* A lookup's answer: true when the name's addresses changed. */
static bool resolved(struct rs_name *nm, const struct addrinfo *res)
{
    struct lb_addrset next;
    char now[256], was[256];
    bool cut = lb_addrset_from_addrinfo(&next, res);
    if (next.n == 0) {
        failed(nm, "no usable address");
        return false;
    }
    nm->due_ms = gv_now_ms() + nm->every_ms;
    nm->failing = false;
    nm->error[0] = '\0';
    if (nm->known && lb_addrset_equal(&nm->set, &next))
        return false;
    lb_addrset_format(&next, now, sizeof(now));
    if (nm->known) {
        lb_addrset_format(&nm->set, was, sizeof(was));
        gv_info("target name %s now resolves to %s (was %s)", nm->host, now, was);
    } else {
        gv_info("target name %s resolves to %s", nm->host, now);
    }
    if (cut)
        gv_warn("target name %s: more than %d addresses; the lowest %d are used", nm->host,
                LB_ADDRSET_MAX, LB_ADDRSET_MAX);
    nm->set = next;
    nm->known = true;
    return true;
}

static void on_lookup(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct rs_name *nm = req->data;
    struct lb_resolver *r = nm->r;
    bool changed = false;
    nm->busy = false;
    r->inflight--;
    if (nm->dropped) {
        free(nm);
    } else if (status < 0 || res == NULL) {
        failed(nm, status < 0 ? uv_strerror(status) : "no address");
    } else {
        changed = resolved(nm, res);
    }
    uv_freeaddrinfo(res);
    if (r->stopping) {
        maybe_done(r);
        return;
    }
    arm(r);
    if (changed && r->changed != NULL)
        r->changed(r->arg);
}

static void lookup(struct rs_name *nm)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    nm->started_ms = gv_now_ms();
    nm->req.data = nm;
    int rv = uv_getaddrinfo(nm->r->loop, &nm->req, on_lookup, nm->host, NULL, &hints);
    if (rv < 0) {
        failed(nm, uv_strerror(rv));
        return;
    }
    nm->busy = true;
    nm->r->inflight++;
}

static void on_timer(uv_timer_t *t)
{
    struct lb_resolver *r = t->data;
    uint64_t now = gv_now_ms();
    for (size_t i = 0; i < r->nnames && r->inflight < RS_MAX_INFLIGHT; i++) {
        struct rs_name *nm = r->names[i];
        if (!nm->busy && nm->due_ms <= now)
            lookup(nm);
    }
    arm(r);
}

/* Lets go of a name: now, or when its lookup returns. */
static void drop(struct rs_name *nm)
{
    if (!nm->busy) {
        free(nm);
        return;
    }
    nm->dropped = true;
    uv_cancel((uv_req_t *)&nm->req);
}

/* The names a set of services follows, built aside so that a failure leaves
 * the followed names unchanged. */
struct rs_plan {
    struct rs_name **v;
    uint64_t *every; /* the smallest interval asking for v[i] */
    bool *fresh;     /* v[i] is new: freed if the plan is not committed */
    size_t k;
};

static long index_of(struct rs_name *const *v, size_t n, const char *host)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i]->host, host) == 0)
            return (long)i;
    }
    return -1;
}

static int plan_add(struct lb_resolver *r, struct rs_plan *p, const char *host, uint64_t every)
{
    long at = index_of(p->v, p->k, host);
    if (at >= 0) {
        p->every[at] = GV_MIN(p->every[at], every);
        return 0;
    }
    struct rs_name *nm = find(r->names, r->nnames, host);
    p->fresh[p->k] = nm == NULL;
    if (nm == NULL) {
        size_t len = strlen(host) + 1;
        if ((nm = calloc(1, sizeof(*nm) + len)) == NULL)
            return GV_ENOMEM;
        nm->r = r;
        memcpy(nm->host, host, len);
    }
    p->v[p->k] = nm;
    p->every[p->k++] = every;
    return 0;
}

static int plan_build(struct lb_resolver *r, struct rs_plan *p, const struct lb_service_spec *specs,
                      size_t n)
{
    size_t total = 1;
    for (size_t s = 0; s < n; s++)
        total += specs[s].ntargets;
    p->v = calloc(total, sizeof(*p->v));
    p->every = calloc(total, sizeof(*p->every));
    p->fresh = calloc(total, sizeof(*p->fresh));
    if (p->v == NULL || p->every == NULL || p->fresh == NULL)
        return GV_ENOMEM;
    for (size_t s = 0; s < n; s++) {
        uint64_t every = GV_MAX(specs[s].resolve_every_ms, 100);
        for (size_t t = 0; t < specs[s].ntargets; t++) {
            const struct lb_target_spec *ts = &specs[s].targets[t];
            if (lb_target_is_name(ts) && plan_add(r, p, ts->host, every) != 0)
                return GV_ENOMEM;
        }
    }
    return 0;
}

static void plan_free(struct rs_plan *p)
{
    for (size_t i = 0; i < p->k; i++) {
        if (p->fresh[i])
            free(p->v[i]);
    }
    free(p->v);
    free(p->every);
    free(p->fresh);
}

/* Drops the names the plan leaves out and schedules the planned ones: a new
 * name now, a kept one by its (maybe shorter) new interval. */
static void plan_commit(struct lb_resolver *r, struct rs_plan *p)
{
    uint64_t now = gv_now_ms();
    for (size_t i = 0; i < r->nnames; i++) {
        if (index_of(p->v, p->k, r->names[i]->host) < 0)
            drop(r->names[i]);
    }
    for (size_t i = 0; i < p->k; i++) {
        struct rs_name *nm = p->v[i];
        nm->every_ms = p->every[i];
        if (p->fresh[i])
            nm->due_ms = now;
        else if (!nm->failing)
            nm->due_ms = GV_MIN(nm->due_ms, nm->started_ms + nm->every_ms);
    }
    free(r->names);
    r->names = p->v;
    r->nnames = p->k;
    free(p->every);
    free(p->fresh);
}

int lb_resolver_set(struct lb_resolver *r, const struct lb_service_spec *specs, size_t n)
{
    struct rs_plan p = {0};
    if (r->stopping)
        return GV_EINVAL;
    if (plan_build(r, &p, specs, n) != 0) {
        plan_free(&p);
        return GV_ENOMEM;
    }
    plan_commit(r, &p);
    arm(r);
    return 0;
}

const struct lb_addrset *lb_resolver_get(const struct lb_resolver *r, const char *host)
{
    const struct rs_name *nm = find(r->names, r->nnames, host);
    return nm != NULL && nm->known ? &nm->set : NULL;
}

const char *lb_resolver_error(const struct lb_resolver *r, const char *host)
{
    const struct rs_name *nm = find(r->names, r->nnames, host);
    return nm != NULL && nm->failing ? nm->error : "";
}

void lb_resolver_nudge(struct lb_resolver *r, const char *host)
{
    struct rs_name *nm = find(r->names, r->nnames, host);
    if (nm == NULL || r->stopping)
        return;
    uint64_t at = GV_MAX(gv_now_ms(), nm->started_ms + RS_NUDGE_GAP_MS);
    if (at >= nm->due_ms)
        return;
    gv_debug("target name %s: a connect failed; looking it up again", host);
    nm->due_ms = at;
    arm(r);
}

static void timer_closed(uv_handle_t *h)
{
    struct lb_resolver *r = h->data;
    r->timer_closed = true;
    maybe_done(r);
}

void lb_resolver_stop(struct lb_resolver *r, void (*done)(void *arg), void *arg)
{
    if (r == NULL || r->stopping)
        return;
    r->stopping = true;
    r->done = done;
    r->done_arg = arg;
    for (size_t i = 0; i < r->nnames; i++)
        drop(r->names[i]);
    free(r->names);
    r->names = NULL;
    r->nnames = 0;
    uv_close((uv_handle_t *)&r->timer, timer_closed);
}
