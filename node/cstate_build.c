/* cstate_build.c - peers' changes: the state built off the control loop.
 *
 * Applying the store validates the whole state and builds its router and
 * plugin pipeline: tens of milliseconds at 10,000 routes on a quiet core,
 * seconds on two cores shared by a hundred nodes, while a large state
 * streams in. On the loop that held up probes, and a node busy applying was
 * suspected and sometimes declared dead. So for peers' changes the loop only
 * takes the view (the store as JSON, with the routes compiled before, and its
 * digest) and publishes what was built; compiling the routes new to it,
 * validation and the build of the generation (node_gen_build) run on libuv's
 * thread pool, one at a time. What the build compiled is kept for later
 * states (node/cstate_jcache.c), so each route is still compiled once per
 * version.
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
#include "common/util.h"
#include "node/cstate_int.h"
#include "node/cstate_jcache.h"
#include "node/node.h"

#include <stdlib.h>
#include <string.h>

struct cs_build {
    uv_work_t work;
    struct node_cstate *cs;
    /* in: */
    json_t *root;
    struct cs_reuse ru; /* with a hold on each spec */
    char digest[65];
    uint64_t version;
    uint64_t publishes; /* the node's count when the view was taken */
    struct cs_arrivals arrivals;
    uint64_t started_us, loop_us;
    /* out: */
    size_t compiled; /* deferred routes compiled (spec[k] set, held by the job) */
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
    json_decref(b->root);
    node_gen_unref(b->gen);
    free(b->arrivals.v);
    free(b);
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
    cs_digest(lists, counts, b->digest);
    cs_lists_free(lists);
    for (size_t i = 0; i < b->ru.n; i++)
        if (b->ru.spec[i] != NULL)
            gw_route_spec_retain(b->ru.spec[i]);
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
