/* cstate_build.c - peers' changes: the state built off the control loop.
 *
 * Applying the store validates the whole state and builds its router and
 * plugin pipeline: tens of milliseconds at 10,000 routes on a quiet core,
 * seconds on two cores shared by a hundred nodes, while a large state
 * streams in. On the loop that held up probes, and a node busy applying was
 * suspected and sometimes declared dead. So for peers' changes the loop only
 * takes the view (the store as JSON, with the routes compiled before, and a
 * copy of the stored bytes, the digest's input) and publishes what was
 * built; parsing and checking the routes new to the view (as cs_materialize
 * would: what it leaves out, the loop quarantines once published), the
 * digest, compiling those routes, validation and the build of the
 * generation (node_gen_build) run on libuv's thread pool, one at a time.
 * What the build compiled is kept for later states (node/cstate_jcache.c),
 * so each route is still compiled once per version.
 *
 * The job owns what it reads: the JSON and one hold on each compiled route
 * it takes. The JSON shares values with the parse cache, which are immutable
 * once parsed; the build only reads them and the loop drops the job's
 * references when it is done (jansson's reference counts are atomic, but the
 * last decrement does not order the other thread's reads before the free:
 * counting stays on one thread). What came in meanwhile waits for the next
 * apply, paced as before (cstate.c).
 *
 * Left to the loop (cs_apply_store): a state that does not validate (entries
 * are left out one validation at a time, each naming what to leave out next)
 * and any apply while something a validation named is left out (each apply
 * tries those again). What the view leaves out itself (a value that is not
 * an object, a route before its service) it checks again in each build.
 * A build is superseded when the node published another state meanwhile (a
 * local change, which also holds what the build read); its changes are then
 * applied again from the store, so none is skipped.
 */
#include "common/err.h"
#include "common/kinds.h"
#include "common/log.h"
#include "common/util.h"
#include "node/cstate_int.h"
#include "node/cstate_jcache.h"
#include "node/node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A route new to the view that the build left out: the loop quarantines
 * that version once the state is published. */
struct cs_problem {
    char *name;
    uint64_t vid;
    char reason[CS_REASON_MAX];
    char *service; /* the one it named that the view lacks, or NULL */
};

struct cs_build {
    uv_work_t work;
    struct node_cstate *cs;
    /* in: */
    json_t *root;
    struct cs_reuse ru;  /* with a hold on each spec */
    struct gv_buf input; /* the digest's input: the stored bytes, raw routes' too */
    size_t *rec;         /* where route k's record starts in input (ru.n + 1) */
    uint64_t version;
    uint64_t publishes; /* the node's count when the view was taken */
    struct cs_arrivals arrivals;
    uint64_t started_us, loop_us;
    /* out: */
    char digest[65];
    struct cs_problem *problems;
    size_t nproblems;
    size_t compiled; /* deferred routes compiled (spec[k] set, held by the job) */
    size_t parsed;   /* raw routes parsed */
    int rv;
    struct node_gen *gen;
    struct node_state_error err;
};

static void build_free(struct cs_build *b)
{
    for (size_t i = 0; i < b->ru.n; i++)
        if (b->ru.spec[i] != NULL)
            gw_route_spec_release(b->ru.spec[i]);
    cs_reuse_free(&b->ru);
    for (size_t i = 0; i < b->nproblems; i++) {
        free(b->problems[i].name);
        free(b->problems[i].service);
    }
    free(b->problems);
    free(b->rec);
    gv_buf_free(&b->input);
    json_decref(b->root);
    node_gen_unref(b->gen);
    free(b->arrivals.v);
    free(b);
}

/* The services' names in the view's JSON (keys are the JSON's strings). */
static int service_names(const json_t *root, struct gv_strmap *out)
{
    const json_t *svcs = json_object_get(root, "services");
    for (size_t i = 0; i < json_array_size(svcs); i++) {
        const char *name = json_string_value(json_object_get(json_array_get(svcs, i), "name"));
        if (name != NULL && gv_strmap_put(out, name, strlen(name), (uint32_t)i) != 0)
            return GV_ENOMEM;
    }
    return 0;
}

/* Route k, raw in the view: its JSON parsed from the input in place of the
 * placeholder, or a problem that leaves it out (drop[k]). */
static int take_raw(struct cs_build *b, size_t k, json_t *routes, const struct gv_strmap *services,
                    bool *drop)
{
    const char *name = b->ru.names[k];
    size_t at = b->rec[k] + 1 + strlen(name) + 1; /* kind, name, NUL: then the value */
    json_error_t je;
    json_t *v = json_loadb(b->input.data + at, b->rec[k + 1] - 1 - at, JSON_DECODE_ANY, &je);
    if (v == NULL && je.text[0] == '\0')
        return GV_ENOMEM;
    char why[CS_REASON_MAX];
    const char *orphan = NULL;
    if (!cs_value_problem(GV_KIND_ROUTES, name, v, &je, why, sizeof(why))) {
        const char *service = json_string_value(json_object_get(v, "service"));
        if (!cs_route_orphan(service, services, why, sizeof(why))) {
            b->ru.elems[k] = v;
            return json_array_set_new(routes, k, v) == 0 ? 0 : GV_ENOMEM;
        }
        orphan = service;
    }
    struct cs_problem *p = &b->problems[b->nproblems];
    p->name = strdup(name);
    p->service = orphan ? strdup(orphan) : NULL;
    json_decref(v);
    if (p->name == NULL || (orphan != NULL && p->service == NULL)) {
        free(p->name);
        free(p->service);
        return GV_ENOMEM;
    }
    p->vid = b->ru.vids[k];
    snprintf(p->reason, sizeof(p->reason), "%s", why);
    b->nproblems++;
    drop[k] = true;
    return 0;
}

/* The view's routes less those left out, in order (reuse matches elements
 * by place, give or take one). */
static int drop_routes(struct cs_build *b, json_t *routes, const bool *drop)
{
    json_t *kept = json_array();
    size_t m = 0;
    if (kept == NULL)
        return GV_ENOMEM;
    for (size_t k = 0; k < b->ru.n; k++) {
        if (drop[k]) {
            free(b->ru.names[k]);
            continue;
        }
        if (json_array_append(kept, json_array_get(routes, k)) != 0) {
            json_decref(kept);
            return GV_ENOMEM;
        }
        b->ru.elems[m] = b->ru.elems[k];
        b->ru.spec[m] = b->ru.spec[k];
        b->ru.names[m] = b->ru.names[k];
        b->ru.vids[m] = b->ru.vids[k];
        b->ru.raw[m] = b->ru.raw[k];
        m++;
    }
    for (size_t k = m; k < b->ru.n; k++)
        b->ru.names[k] = NULL;
    b->ru.n = m;
    return json_object_set_new(b->root, "routes", kept) == 0 ? 0 : GV_ENOMEM;
}

/* The routes the view took raw: parsed and checked as the loop would have
 * (cs_materialize), and those with a problem left out of the state and its
 * digest; then the digest. */
static int take_raw_routes(struct cs_build *b)
{
    json_t *routes = json_object_get(b->root, "routes");
    struct gv_strmap services = {0};
    size_t n = b->ru.n, nraw = 0;
    for (size_t k = 0; k < n; k++)
        nraw += b->ru.raw[k];
    bool *drop = calloc(n + 1, sizeof(*drop));
    b->problems = calloc(nraw + 1, sizeof(*b->problems));
    b->parsed = nraw;
    int rv = drop && b->problems ? service_names(b->root, &services) : GV_ENOMEM;
    for (size_t k = 0; rv == 0 && k < n; k++)
        if (b->ru.raw[k])
            rv = take_raw(b, k, routes, &services, drop);
    if (rv == 0)
        cs_digest_hex(&b->input, b->rec, drop, n, b->digest);
    if (rv == 0 && b->nproblems > 0)
        rv = drop_routes(b, routes, drop);
    gv_strmap_free(&services);
    free(drop);
    return rv;
}

/* The routes the view left to the build, compiled on their own as the
 * loop would have (one that does not, or no memory: the validator compiles
 * it and says why). */
static void compile_deferred(struct cs_build *b)
{
    for (size_t k = 0; k < b->ru.n; k++) {
        struct gw_route_spec r;
        if (b->ru.names[k] == NULL || node_state_route_compile(b->ru.elems[k], &r) != 0)
            continue;
        if ((b->ru.spec[k] = gw_route_spec_share(&r)) == NULL)
            gw_route_spec_free(&r);
        else
            b->compiled++;
    }
}

/* On the thread pool: touches nothing but the job, and its JSON read-only. */
static void build_work(uv_work_t *w)
{
    struct cs_build *b = w->data;
    struct node_state st;
    if ((b->rv = take_raw_routes(b)) != 0) {
        cs_fail(&b->err, "", gv_strerror(b->rv));
        return;
    }
    compile_deferred(b);
    b->rv = node_state_from_json_reuse(b->root, &b->ru.api, &st, &b->err);
    if (b->rv == 0 && (b->rv = node_gen_build(&st, &b->gen)) != 0)
        cs_fail(&b->err, "", gv_strerror(b->rv));
}

/* What the build compiled, kept for the versions it was compiled from
 * (routes changed meanwhile are compiled again when next seen). */
static void keep_compiled(struct node_cstate *cs, struct cs_build *b)
{
    for (size_t k = 0; b->compiled > 0 && k < b->ru.n; k++) {
        if (b->ru.names[k] == NULL || b->ru.spec[k] == NULL)
            continue;
        const struct cl_entry *e = cl_store_get(cs->store, GV_KIND_ROUTES, b->ru.names[k]);
        if (e != NULL && !e->deleted &&
            cs_jcache_keep_compiled(cs->jcache, e, b->ru.vids[k], b->ru.spec[k]))
            cs->routes_compiled++;
    }
}

/* Leaves out what the build did (the versions it read; a newer one is
 * applied next). Said as the loop says it (cs_quarantine). */
static void leave_out_problems(struct node_cstate *cs, const struct cs_build *b)
{
    for (size_t i = 0; i < b->nproblems; i++) {
        const struct cs_problem *p = &b->problems[i];
        const struct cl_entry *e = cl_store_get(cs->store, GV_KIND_ROUTES, p->name);
        if (e != NULL && !e->deleted && cs_jcache_value_id(e) == p->vid &&
            cs_quarantine(cs, e, p->reason, p->service) != 0)
            gv_warn("config: routes/%s: out of memory leaving it out (the state went without it)",
                    p->name);
    }
    cs_quarantine_said(cs);
}

static void build_done(uv_work_t *w, int status)
{
    struct cs_build *b = w->data;
    struct node_cstate *cs = b->cs;
    uint64_t t0 = gv_now_us();
    struct node_state_error err = b->err;
    int rv = b->rv;
    cs->build = NULL;
    if (status != 0 || cs->closing) {
        build_free(b);
        cs_maybe_finish_close(cs);
        return;
    }
    keep_compiled(cs, b);
    cs->routes_parsed_off_loop += b->parsed;
    if (cs->n->publishes != b->publishes) {
        cs->builds_dropped++;
        cs_arrivals_requeue(cs, &b->arrivals);
        build_free(b);
        cs_apply_later(cs);
        return;
    }
    if (rv == 0 && (rv = node_publish_gen(cs->n, b->gen, b->version, b->digest)) == 0) {
        b->gen = NULL; /* the node's now */
        cs->invalid = false;
        leave_out_problems(cs, b);
        cs_trim_later(cs);
    } else {
        rv = cs_apply_store(cs, &err);
    }
    uint64_t now = gv_now_us();
    cs_apply_done(cs, rv, &err, &b->arrivals, (now - b->started_us) / 1000,
                  (b->loop_us + now - t0) / 1000);
    build_free(b);
}

int cs_build_start(struct node_cstate *cs)
{
    const struct cl_entry **lists[GV_KIND_COUNT];
    int counts[GV_KIND_COUNT];
    struct cs_build *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return GV_ENOMEM;
    struct cs_quar_saved saved;
    b->started_us = gv_now_us();
    /* The view leaves out again what it must (its own checks, no
     * validation). What it no longer leaves out is logged as released now,
     * before the build validates: if the build fails, the apply on the loop
     * that follows says so again. */
    cs_quarantine_restart(cs, &saved);
    b->root = cs_materialize(cs, false, lists, counts, &b->ru, true);
    cs_quarantine_end(cs, &saved, b->root != NULL);
    if (b->root == NULL) {
        free(b);
        return GV_ENOMEM;
    }
    for (size_t i = 0; i < b->ru.n; i++)
        if (b->ru.spec[i] != NULL)
            gw_route_spec_retain(b->ru.spec[i]);
    /* ru.n routes are counts[routes] of the view: record k is route k's */
    gv_buf_init(&b->input);
    b->rec = calloc(b->ru.n + 1, sizeof(*b->rec));
    int rv = b->rec != NULL ? cs_digest_input(lists, counts, &b->input, b->rec) : GV_ENOMEM;
    cs_lists_free(lists);
    if (rv != 0) {
        build_free(b);
        return rv;
    }
    b->version = cl_store_max_stamp(cs->store);
    b->publishes = cs->n->publishes;
    b->cs = cs;
    b->work.data = b;
    if (uv_queue_work(&cs->n->loop, &b->work, build_work, build_done) != 0) {
        build_free(b);
        return GV_EIO;
    }
    b->arrivals = cs->arrivals; /* logged when published */
    memset(&cs->arrivals, 0, sizeof(cs->arrivals));
    cs->build = b;
    cs->builds++;
    b->loop_us = gv_now_us() - b->started_us;
    return 0;
}

void cs_build_cancel(struct node_cstate *cs)
{
    if (cs->build != NULL)
        uv_cancel((uv_req_t *)&cs->build->work); /* build_done runs either way */
}
