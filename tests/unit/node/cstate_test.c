/* cstate_test.c - the replicated-state coordinator on a real loop and a real
 * data_dir, without the mesh: changes are answered in order and only once
 * written; a change staged on top of one still on its way to disk sees it;
 * an entry that does not validate is quarantined and a PUT replaces it; a
 * node reloads what it acknowledged, and keeps the seeds of other nodes'
 * files while replacing its own. */
#include "balancer/lb.h"
#include "cluster/store.h"
#include "common/err.h"
#include "common/kinds.h"
#include "node/cstate.h"
#include "node/cstate_int.h"
#include "node/node.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[64];

struct answers {
    int n;
    int order[16];
    int status[16];
};

struct ticket {
    struct answers *a;
    int id;
};

static void on_done(void *arg, int status)
{
    struct ticket *t = arg;
    t->a->order[t->a->n] = t->id;
    t->a->status[t->a->n++] = status;
}

static json_t *js(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (j == NULL)
        fprintf(stderr, "bad test JSON %s: %s\n", text, je.text);
    return j;
}

/* A node as cstate sees it: a loop, a registry, a snapshot slot, a name, a
 * data_dir and the file's state (file: JSON or NULL). */
static struct node *node_new(const char *name, const char *file)
{
    struct node *n = calloc(1, sizeof(*n));
    struct node_state_error err;
    CHECK(uv_loop_init(&n->loop) == 0);
    CHECK(lb_registry_new(&n->registry) == 0);
    gw_snapshot_slot_init(&n->slot);
    n->cfg.node.name = strdup(name);
    n->cfg.node.data_dir = strdup(dir);
    json_t *j = js(file ? file : "{}");
    CHECK_INT(node_state_from_json(j, &n->cfg.state, &err), 0);
    json_decref(j);
    return n;
}

static void closed(void *arg)
{
    *(bool *)arg = true;
}

static void node_free(struct node *n)
{
    bool done = false;
    if (n->cstate != NULL) {
        node_cstate_close(n->cstate, closed, &done);
        uv_run(&n->loop, UV_RUN_DEFAULT);
        CHECK(done);
    }
    gw_snapshot_slot_fini(&n->slot);
    node_gen_unref(n->gen);
    lb_registry_free(n->registry);
    CHECK_INT(uv_loop_close(&n->loop), 0);
    node_state_free(&n->cfg.state);
    free(n->cfg.node.name);
    free(n->cfg.node.data_dir);
    free(n);
}

static void run_until(struct node *n, const struct answers *a, int count)
{
    for (int i = 0; i < 1000 && a->n < count; i++)
        uv_run(&n->loop, UV_RUN_ONCE);
    CHECK_INT(a->n, count);
}

static int put(struct node *n, int kind, const char *name, const char *obj, struct ticket *t)
{
    json_t *stored = NULL, *o = js(obj);
    struct node_state_error err;
    bool created;
    int rv = node_cstate_put(n->cstate, kind, name, o, &stored, &created, &err, on_done, t);
    if (rv < 0)
        fprintf(stderr, "put %s: %s: %s\n", name, err.where, err.msg);
    json_decref(o);
    json_decref(stored);
    return rv;
}

static bool has(struct node *n, int kind, const char *name)
{
    json_t *j = node_cstate_get(n->cstate, kind, name);
    bool ok = j != NULL && !json_is_true(json_object_get(j, "invalid"));
    json_decref(j);
    return ok;
}

/* An object lands in n's store as a peer's (gw9's) change does, at stamp:
 * cl_store_merge's answer. */
static int merge_peer(struct node *n, int kind, const char *name, const char *value, uint64_t stamp)
{
    struct cl_entry e = {
        .kind = (uint8_t)kind, .stamp = stamp, .rank = kind == GV_KIND_ROUTES ? CL_RANK_NONE : 0};
    snprintf(e.name, sizeof(e.name), "%s", name);
    snprintf(e.origin, sizeof(e.origin), "gw9");
    e.value = (const uint8_t *)value;
    e.value_len = strlen(value);
    return cl_store_merge(n->cstate->store, &e);
}

static int merge_peer_route(struct node *n, const char *name, const char *value, uint64_t stamp)
{
    return merge_peer(n, GV_KIND_ROUTES, name, value, stamp);
}

static void fresh_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/gv-cstate-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_INT(system(cmd), 0);
}

#define TARGETS          "\"targets\":[{\"address\":\"127.0.0.1:9\"}]"
#define SVC              "{" TARGETS "}"
#define ROUTE(path, svc) "{\"match\":{\"paths\":[\"" path "\"]},\"service\":\"" svc "\"}"

/* A node on a fresh data_dir whose file holds service s, its cstate open. */
static struct node *open_with_service_s(void)
{
    fresh_dir();
    struct node *n = node_new("gw1", "{\"services\":[{\"name\":\"s\"," TARGETS "}]}");
    CHECK_INT(node_cstate_open(n, &n->cstate), 0);
    return n;
}

/* Two changes made before the loop runs: the second (a route) names the
 * service the first creates, still on its way to disk; nothing is applied
 * before it is written; both answered in order; both reload. */
static void test_staged_changes_answer_in_order_and_reload(void)
{
    struct answers a = {0};
    struct ticket t1 = {&a, 1}, t2 = {&a, 2}, t3 = {&a, 3};
    fresh_dir();
    struct node *n = node_new("gw1", NULL);
    CHECK_INT(node_cstate_open(n, &n->cstate), 0);
    CHECK_INT(put(n, GV_KIND_SERVICES, "s", SVC, &t1), 0);
    CHECK_INT(put(n, GV_KIND_ROUTES, "r", ROUTE("/r", "s"), &t2), 0);
    CHECK(!has(n, GV_KIND_SERVICES, "s"));                            /* not before it is written */
    CHECK_INT(put(n, GV_KIND_ROUTES, "r", ROUTE("/r", "s"), &t3), 1); /* the same: no write */
    run_until(n, &a, 3);
    CHECK_INT(a.order[0], 1);
    CHECK_INT(a.order[1], 2);
    CHECK_INT(a.order[2], 3);
    CHECK(a.status[0] == 0 && a.status[1] == 0 && a.status[2] == 0);
    CHECK(has(n, GV_KIND_ROUTES, "r") && has(n, GV_KIND_SERVICES, "s"));
    node_free(n);
    n = node_new("gw1", NULL);
    CHECK_INT(node_cstate_open(n, &n->cstate), 0);
    CHECK(has(n, GV_KIND_ROUTES, "r") && has(n, GV_KIND_SERVICES, "s"));
    node_free(n);
    remove_dir();
}

/* A route naming a missing service lands in the store (as from a peer): it
 * is left out, the rest applies, other changes go through, and a PUT of
 * the same name replaces it. */
static void test_quarantine_and_replace(void)
{
    struct answers a = {0};
    struct ticket t1 = {&a, 1}, t2 = {&a, 2};
    struct node_state_error err;
    struct node *n = open_with_service_s();
    static const char bad[] = "{\"match\":{\"paths\":[\"/x\"]},\"name\":\"orphan\","
                              "\"service\":\"nope\"}";
    CHECK_INT(merge_peer_route(n, "orphan", bad, 1ULL << 40), 1);
    CHECK_INT(cs_apply_store(n->cstate, &err), 0);
    json_t *q = node_cstate_get(n->cstate, GV_KIND_ROUTES, "orphan");
    CHECK(q != NULL && json_is_true(json_object_get(q, "invalid")));
    CHECK(q && strstr(json_string_value(json_object_get(q, "reason")), "nope") != NULL);
    json_decref(q);
    CHECK_INT(put(n, GV_KIND_ROUTES, "other", ROUTE("/o", "s"), &t1), 0);
    CHECK_INT(put(n, GV_KIND_ROUTES, "orphan", ROUTE("/x", "s"), &t2), 0);
    run_until(n, &a, 2);
    CHECK(has(n, GV_KIND_ROUTES, "orphan") && has(n, GV_KIND_ROUTES, "other"));
    CHECK_INT(n->cstate->nquar, 0);
    node_free(n);
    remove_dir();
}

/* gw2's file names only s2; it learned s1 from gw1's file (a seed). On a
 * restart alone it keeps s1 and takes its own file's s2 as now written. */
static void test_seeds_of_other_files_survive_a_restart(void)
{
    fresh_dir();
    struct node *n = node_new("gw2", "{\"services\":[{\"name\":\"s2\"," TARGETS "}]}");
    CHECK_INT(node_cstate_open(n, &n->cstate), 0);
    static const char s1[] = "{\"name\":\"s1\",\"targets\":[{\"address\":\"127.0.0.1:8\"}]}";
    struct cl_entry e = {.kind = GV_KIND_SERVICES, .rank = 0};
    snprintf(e.name, sizeof(e.name), "s1");
    e.value = (const uint8_t *)s1;
    e.value_len = strlen(s1);
    CHECK_INT(cl_store_merge(n->cstate->store, &e), 1);
    cs_save_remote(n->cstate, &e); /* as a peer's change is written */
    node_free(n);
    n = node_new("gw2", "{\"services\":[{\"name\":\"s2\",\"targets\":[{\"address\":"
                        "\"127.0.0.1:7\"}]}]}");
    CHECK_INT(node_cstate_open(n, &n->cstate), 0);
    CHECK(has(n, GV_KIND_SERVICES, "s1"));
    json_t *s2 = node_cstate_get(n->cstate, GV_KIND_SERVICES, "s2");
    const char *addr = json_string_value(
        json_object_get(json_array_get(json_object_get(s2, "targets"), 0), "address"));
    CHECK_STR(addr, "127.0.0.1:7");
    json_decref(s2);
    node_free(n);
    remove_dir();
}

/* The route names of the applied state, in order, joined by ",". */
static void applied_routes(struct node *n, char *out, size_t len)
{
    json_t *routes = node_cstate_get(n->cstate, GV_KIND_ROUTES, NULL);
    size_t i;
    json_t *v;
    out[0] = '\0';
    json_array_foreach(routes, i, v)
    {
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s%s", i ? "," : "",
                 json_string_value(json_object_get(v, "name")));
    }
    json_decref(routes);
}

/* A stored route is compiled once per version: later states take it as it
 * is, checked against them (its service must still exist), whether they are
 * staged for a change made here or built for peers' changes. */
static void test_routes_are_compiled_once_per_version(void)
{
    struct answers a = {0};
    struct ticket t[8] = {{&a, 1}, {&a, 2}, {&a, 3}, {&a, 4}, {&a, 5}, {&a, 6}, {&a, 7}, {&a, 8}};
    struct node_state_error err;
    char names[256];
    struct node *n = open_with_service_s();
    static const char *const rn[] = {"r1", "r2", "r3", "r4"};
    for (int i = 0; i < 4; i++) {
        CHECK_INT(put(n, GV_KIND_ROUTES, rn[i], ROUTE("/p", "s"), &t[i]), 0);
        run_until(n, &a, i + 1);
    }
    /* each PUT staged the state with the earlier routes: each was compiled
     * the first time, and taken compiled after that */
    uint64_t compiled = n->cstate->routes_compiled, reused = n->cstate->routes_reused;
    CHECK(reused >= 3);
    CHECK_INT(put(n, GV_KIND_ROUTES, "r2", ROUTE("/changed", "s"), &t[4]), 0);
    run_until(n, &a, 5);
    CHECK(n->cstate->routes_reused - reused >= 2);     /* r1, r3 at least */
    CHECK(n->cstate->routes_compiled - compiled <= 2); /* r4 (the new r2 is the change) */
    json_t *r2 = node_cstate_get(n->cstate, GV_KIND_ROUTES, "r2");
    CHECK_STR(json_string_value(
                  json_array_get(json_object_get(json_object_get(r2, "match"), "paths"), 0)),
              "/changed");
    json_decref(r2);
    applied_routes(n, names, sizeof(names));
    CHECK_STR(names, "r1,r2,r3,r4");

    /* the service the kept routes name cannot go: the reused routes are
     * checked against the state without it, and named in the refusal */
    int rv = node_cstate_delete(n->cstate, GV_KIND_SERVICES, "s", &err, on_done, &t[5]);
    CHECK_INT(rv, GV_EINVAL);
    CHECK(strstr(err.msg, "no service named \"s\"") != NULL);
    CHECK(strstr(err.msg, "routes[r1]") != NULL);

    /* peers' changes: a build from the store takes every route it has
     * compiled, and compiles only the new one */
    static const char r5[] =
        "{\"match\":{\"paths\":[\"/five\"]},\"name\":\"r5\",\"service\":\"s\"}";
    CHECK_INT(cs_apply_store(n->cstate, &err), 0); /* warms what the PUTs left uncompiled */
    CHECK_INT(merge_peer_route(n, "r5", r5, 1ULL << 50), 1);
    compiled = n->cstate->routes_compiled;
    reused = n->cstate->routes_reused;
    CHECK_INT(cs_apply_store(n->cstate, &err), 0);
    CHECK_INT(n->cstate->routes_compiled - compiled, 1);
    CHECK_INT(n->cstate->routes_reused - reused, 4);
    applied_routes(n, names, sizeof(names));
    CHECK_STR(names, "r1,r2,r3,r4,r5");
    node_free(n);
    remove_dir();
}

/* More routes than the quarantine's runs (32) name a service not stored yet,
 * as when a peer's bulk change streams in routes first: the apply leaves them
 * all out in one pass and publishes the rest (it used to give up after 32
 * validations and keep the old state); once the service comes they apply. */
static void test_routes_before_their_service_are_left_out_in_one_pass(void)
{
    struct node_state_error err;
    char name[16], value[160];
    struct node *n = open_with_service_s();
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof(name), "w%d", i);
        snprintf(value, sizeof(value),
                 "{\"match\":{\"paths\":[\"/w%d\"]},\"name\":\"%s\",\"service\":\"later\"}", i,
                 name);
        CHECK_INT(merge_peer_route(n, name, value, (1ULL << 40) + (uint64_t)i), 1);
    }
    static const char ok[] = "{\"match\":{\"paths\":[\"/ok\"]},\"name\":\"ok\",\"service\":\"s\"}";
    CHECK_INT(merge_peer_route(n, "ok", ok, 1ULL << 41), 1);
    CHECK_INT(cs_apply_store(n->cstate, &err), 0);
    CHECK_INT(n->cstate->nquar, 40);
    CHECK(has(n, GV_KIND_ROUTES, "ok") && !has(n, GV_KIND_ROUTES, "w7"));
    json_t *w = node_cstate_get(n->cstate, GV_KIND_ROUTES, "w7");
    CHECK(w && strstr(json_string_value(json_object_get(w, "reason")), "later") != NULL);
    json_decref(w);

    static const char later[] = "{\"name\":\"later\"," TARGETS "}";
    CHECK_INT(merge_peer(n, GV_KIND_SERVICES, "later", later, 1ULL << 42), 1);
    CHECK_INT(cs_apply_store(n->cstate, &err), 0);
    CHECK_INT(n->cstate->nquar, 0);
    CHECK(has(n, GV_KIND_ROUTES, "w0") && has(n, GV_KIND_ROUTES, "w39"));
    node_free(n);
    remove_dir();
}

/* A peer's change as the replica's callback notes it (counted, not named). */
static void note_peer_change(struct node *n)
{
    n->cstate->arrivals.dropped++;
}

static void run_while_building(struct node *n)
{
    for (int i = 0; i < 100000 && n->cstate->build != NULL; i++)
        uv_run(&n->loop, UV_RUN_ONCE);
    CHECK(n->cstate->build == NULL);
}

/* One apply of peers' changes, built off the loop, to its end. */
static void build_once(struct node *n)
{
    note_peer_change(n);
    CHECK_INT(cs_build_start(n->cstate), 0);
    run_while_building(n);
}

/* Peers' changes are built off the loop and published by it; a build that
 * another publish overtook is dropped and its changes applied again from the
 * store (none skipped); a node closes with a build in flight. */
static void test_peers_changes_are_built_off_the_loop(void)
{
    struct node_state_error err;
    struct node *n = open_with_service_s();
    static const char r1[] = "{\"match\":{\"paths\":[\"/1\"]},\"name\":\"r1\",\"service\":\"s\"}";
    static const char r2[] = "{\"match\":{\"paths\":[\"/2\"]},\"name\":\"r2\",\"service\":\"s\"}";
    static const char r3[] = "{\"match\":{\"paths\":[\"/3\"]},\"name\":\"r3\",\"service\":\"s\"}";
    CHECK_INT(merge_peer_route(n, "r1", r1, 1ULL << 40), 1);
    note_peer_change(n);
    uint64_t published = n->publishes, compiled = n->cstate->routes_compiled;
    CHECK_INT(cs_build_start(n->cstate), 0);
    CHECK(n->cstate->build != NULL);
    CHECK(!has(n, GV_KIND_ROUTES, "r1")); /* not before the loop publishes it */
    run_while_building(n);
    CHECK(has(n, GV_KIND_ROUTES, "r1"));
    CHECK_INT(n->publishes, published + 1);
    CHECK_INT(n->cstate->remote_applies, 1);
    CHECK_INT(n->cstate->applied_remote, 1);
    /* the build compiled r1 and the loop kept it: the next build takes it */
    CHECK_INT(n->cstate->routes_compiled - compiled, 1);
    uint64_t reused = n->cstate->routes_reused;
    build_once(n);
    CHECK_INT(n->cstate->routes_compiled - compiled, 1);
    CHECK_INT(n->cstate->routes_reused - reused, 1);
    CHECK_INT(n->cstate->remote_applies, 2);

    /* overtaken: the loop publishes (here an apply of the store) before the
     * build is done; r3 lands after both read the store */
    CHECK_INT(merge_peer_route(n, "r2", r2, 1ULL << 41), 1);
    note_peer_change(n);
    CHECK_INT(cs_build_start(n->cstate), 0);
    CHECK_INT(cs_apply_store(n->cstate, &err), 0);
    CHECK_INT(merge_peer_route(n, "r3", r3, 1ULL << 42), 1);
    run_while_building(n);
    CHECK_INT(n->cstate->builds_dropped, 1);
    for (int i = 0; i < 100000 && n->cstate->remote_applies < 3; i++)
        uv_run(&n->loop, UV_RUN_ONCE);
    run_while_building(n);
    CHECK_INT(n->cstate->remote_applies, 3);
    CHECK(has(n, GV_KIND_ROUTES, "r2") && has(n, GV_KIND_ROUTES, "r3"));

    /* routes before their service: a build leaves them out (no validation
     * named them, so the next apply is built off the loop too) and takes
     * them in once the service comes */
    static const char w1[] = "{\"match\":{\"paths\":[\"/w\"]},\"name\":\"w1\","
                             "\"service\":\"later\"}";
    static const char later[] = "{\"name\":\"later\"," TARGETS "}";
    CHECK_INT(merge_peer_route(n, "w1", w1, 1ULL << 43), 1);
    uint64_t builds = n->cstate->builds, applies = n->cstate->remote_applies;
    note_peer_change(n);
    cs_apply_later(n->cstate);
    for (int i = 0; i < 100000 && n->cstate->remote_applies == applies; i++)
        uv_run(&n->loop, UV_RUN_ONCE);
    CHECK_INT(n->cstate->builds, builds + 1);
    CHECK(n->cstate->nquar == 1 && n->cstate->quar_blamed == 0 && !has(n, GV_KIND_ROUTES, "w1"));
    CHECK_INT(merge_peer(n, GV_KIND_SERVICES, "later", later, 1ULL << 44), 1);
    note_peer_change(n);
    cs_apply_later(n->cstate);
    for (int i = 0; i < 100000 && n->cstate->remote_applies == applies + 1; i++)
        uv_run(&n->loop, UV_RUN_ONCE);
    run_while_building(n);
    CHECK_INT(n->cstate->builds, builds + 2);
    CHECK(n->cstate->nquar == 0 && has(n, GV_KIND_ROUTES, "w1"));

    /* closing waits for a build in flight */
    note_peer_change(n);
    CHECK_INT(cs_build_start(n->cstate), 0);
    node_free(n);
    remove_dir();
}

/* The routes new to a build's view are parsed and checked by the build, not
 * the loop: what does not parse or names another object is left out, and so
 * is a route whose service has not come, as the loop would have it (same
 * quarantine, same digest); such a route is left out again by the next build
 * without a parse, and taken in once its service comes. */
static void test_builds_parse_new_routes_off_the_loop(void)
{
    struct node_state_error err;
    char digest[65];
    struct node *n = open_with_service_s();
    static const char ok[] = "{\"match\":{\"paths\":[\"/ok\"]},\"name\":\"ok\",\"service\":\"s\"}";
    static const char w[] = "{\"match\":{\"paths\":[\"/w\"]},\"name\":\"w\",\"service\":\"later\"}";
    static const char y[] = "{\"match\":{\"paths\":[\"/y\"]},\"name\":\"z\",\"service\":\"s\"}";
    CHECK_INT(merge_peer_route(n, "ok", ok, 1ULL << 40), 1);
    CHECK_INT(merge_peer_route(n, "w", w, 1ULL << 40), 1);
    CHECK_INT(merge_peer_route(n, "x", "[1,", 1ULL << 40), 1);
    CHECK_INT(merge_peer_route(n, "y", y, 1ULL << 40), 1);
    /* a kind after routes in the digest's input: a raw route's bytes end
     * where the routes end, not the input */
    CHECK_INT(merge_peer(n, GV_KIND_CONSUMERS, "zoe", "{\"name\":\"zoe\"}", 1ULL << 40), 1);
    uint64_t parsed = n->cstate->routes_parsed_off_loop;
    build_once(n);
    CHECK_INT(n->cstate->routes_parsed_off_loop - parsed, 4);
    CHECK(has(n, GV_KIND_ROUTES, "ok") && !has(n, GV_KIND_ROUTES, "w"));
    CHECK(has(n, GV_KIND_CONSUMERS, "zoe"));
    CHECK(n->cstate->nquar == 3 && n->cstate->quar_blamed == 0);
    const struct cs_quarantined *q = cs_quarantine_find(n->cstate, GV_KIND_ROUTES, "w");
    CHECK(q != NULL && strcmp(q->service, "later") == 0 && strstr(q->reason, "later") != NULL);
    q = cs_quarantine_find(n->cstate, GV_KIND_ROUTES, "x");
    CHECK(q != NULL && strstr(q->reason, "not a JSON object") != NULL);
    q = cs_quarantine_find(n->cstate, GV_KIND_ROUTES, "y");
    CHECK(q != NULL && strstr(q->reason, "names \"z\"") != NULL);
    CHECK_INT(cs_store_digest(n->cstate, digest), 0); /* the loop's, over what it applies */
    CHECK_STR(node_cstate_digest(n->cstate), digest);

    /* again: w is not parsed (its service is still missing), the values
     * that do not parse are checked on the loop; nothing changes */
    build_once(n);
    CHECK_INT(n->cstate->routes_parsed_off_loop - parsed, 4);
    CHECK_INT(n->cstate->nquar, 3);
    CHECK_STR(node_cstate_digest(n->cstate), digest);

    static const char later[] = "{\"name\":\"later\"," TARGETS "}";
    CHECK_INT(merge_peer(n, GV_KIND_SERVICES, "later", later, 1ULL << 41), 1);
    build_once(n);
    CHECK_INT(n->cstate->routes_parsed_off_loop - parsed, 5);
    CHECK(n->cstate->nquar == 2 && has(n, GV_KIND_ROUTES, "w"));
    CHECK_INT(cs_store_digest(n->cstate, digest), 0);
    CHECK_STR(node_cstate_digest(n->cstate), digest);
    CHECK_INT(cs_apply_store(n->cstate, &err), 0); /* the loop's own apply agrees */
    CHECK_STR(node_cstate_digest(n->cstate), digest);
    CHECK_INT(n->cstate->nquar, 2);
    node_free(n);
    remove_dir();
}

TEST_MAIN(TEST(test_staged_changes_answer_in_order_and_reload), TEST(test_quarantine_and_replace),
          TEST(test_seeds_of_other_files_survive_a_restart),
          TEST(test_routes_are_compiled_once_per_version),
          TEST(test_routes_before_their_service_are_left_out_in_one_pass),
          TEST(test_peers_changes_are_built_off_the_loop),
          TEST(test_builds_parse_new_routes_off_the_loop))
