/* cstate.c - the node's replicated cluster state: validating changes,
 * storing and spreading them, saving them to data_dir, and applying every new
 * valid state to the data plane. */
#include "node/cstate.h"
#include "cluster/hlc.h"
#include "cluster/replica.h"
#include "cluster/store.h"
#include "cluster/swim.h"
#include "common/err.h"
#include "common/file.h"
#include "common/kinds.h"
#include "common/log.h"
#include "common/util.h"
#include "node/node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_FILE     "cluster-state.gvst"
#define STATE_FILE_MAX (1024u * 1024u * 1024u)
#define CONFIG_CHANNEL 1
#define GC_INTERVAL_MS (3600u * 1000u)
#define LOG_EACH_MAX   16 /* applied changes logged one per line; more are summed up */

struct waiter {
    uint64_t gen; /* answered once a write of this generation is on disk */
    node_cstate_done_fn done;
    void *arg;
};

struct arrival {
    uint8_t kind;
    bool deleted;
    uint64_t stamp;
    char name[CL_STORE_MAX_NAME + 1];
    char origin[CL_WIRE_MAX_NAME + 1];
};

struct node_cstate {
    struct node *n;
    struct cl_store *store;
    struct cl_hlc clock;
    struct cl_replica *replica;
    uint64_t tombstone_ttl_ms;
    char *path; /* the state file, or NULL without data_dir */

    /* Saving: one write in flight on the thread pool; changes that land
     * meanwhile are saved by the next one (group commit). */
    uv_work_t work;
    bool writing;
    uint64_t gen_wanted, gen_inflight, gen_saved;
    struct gv_buf image;
    int write_rv;
    struct waiter *waiters;
    size_t nwaiters, capwaiters;

    /* Applying changes from peers: batched to the next loop turn. */
    uv_timer_t apply_timer, gc_timer;
    struct arrival *arrivals;
    size_t narrivals, caparrivals, arrivals_dropped;
    bool invalid; /* the store's state does not validate: serving the last good one */
    /* Kinds met in the store that this version does not know (a newer
     * node's): kept and spread, never applied; logged once each. */
    uint64_t unknown_logged[256 / 64];

    uint64_t applied_local, applied_remote, states_rejected, saves, save_errors;

    int open_handles;
    bool closing;
    void (*done)(void *arg);
    void *done_arg;
};

/* Copies src into dst[0..n), cut short when longer (paths and names only
 * shorten a message). */
static void copy_str(char *dst, size_t n, const char *src)
{
    size_t len = strlen(src); /* src is always terminated; a bound here
                               * makes gcc -O2 warn when src is shorter */
    if (len > n - 1)
        len = n - 1;
    memmove(dst, src, len);
    dst[len] = '\0';
}

/* The plural of a kind this version knows ("services"). */
static const char *plural(int kind)
{
    const struct gv_kind *k = gv_kind_by_id((unsigned)kind);
    return k ? k->plural : "?";
}

static const char *self_name(struct node_cstate *cs)
{
    return cs->n->cfg.node.name;
}

/* ---- kinds this version does not know ---------------------------------------- */

/* An entry of an unknown kind stays in the store, so it is saved, spread and
 * collected like any other (a newer node in a rolling upgrade wrote it), but
 * the state built here leaves it out. Said once per kind. */
static void note_unknown_kind(struct node_cstate *cs, uint8_t kind)
{
    uint64_t bit = 1ULL << (kind % 64);
    if (gv_kind_by_id(kind) != NULL || (cs->unknown_logged[kind / 64] & bit))
        return;
    cs->unknown_logged[kind / 64] |= bit;
    gv_warn("config: keeping objects of kind %u, which this version does not know (from a newer "
            "node?): they are saved and passed on, not applied",
            kind);
}

static int note_if_unknown(void *arg, const struct cl_entry *e)
{
    note_unknown_kind(arg, e->kind);
    return 0;
}

static int count_unknown(void *arg, const struct cl_entry *e)
{
    *(size_t *)arg += gv_kind_by_id(e->kind) == NULL;
    return 0;
}

/* Entries (tombstones included) of kinds this version does not know. */
static size_t unknown_kind_entries(const struct node_cstate *cs)
{
    size_t n = 0;
    cl_store_foreach(cs->store, count_unknown, &n);
    return n;
}

/* ---- materializing the store as the JSON the validator takes ------------- */

/* The name an element of a kind's list goes by (plugins: their only key). */
static const char *element_name(int kind, const json_t *v)
{
    if (kind == GV_KIND_PLUGINS) {
        void *it = json_object_iter((json_t *)v);
        return it ? json_object_iter_key(it) : NULL;
    }
    return json_string_value(json_object_get(v, "name"));
}

/* {"services":[...],"routes":[...],"consumers":[...],"plugins":[...]} from
 * the live entries, each kind in (rank, name) order. NULL with err filled
 * when a stored value is not a JSON object. */
static json_t *materialize(struct node_cstate *cs, struct node_state_error *err)
{
    json_t *root = json_object();
    for (int k = 0; root != NULL && k < GV_KIND_COUNT; k++) {
        const struct cl_entry **list;
        int n = cl_store_list(cs->store, (uint8_t)k, &list);
        json_t *arr = json_array();
        if (n < 0 || arr == NULL) {
            json_decref(arr);
            json_decref(root);
            return NULL;
        }
        for (int i = 0; i < n; i++) {
            json_error_t je;
            json_t *v = json_loadb((const char *)list[i]->value, list[i]->value_len, 0, &je);
            if (!json_is_object(v)) {
                char p[sizeof(err->path) + CL_STORE_MAX_NAME + 16];
                snprintf(p, sizeof(p), "%s[%s]", plural(k), list[i]->name);
                copy_str(err->path, sizeof(err->path), p);
                copy_str(err->where, sizeof(err->where), p);
                snprintf(err->msg, sizeof(err->msg), "stored value is not a JSON object");
                json_decref(v);
                json_decref(arr);
                json_decref(root);
                free(list);
                return NULL;
            }
            json_array_append_new(arr, v);
        }
        free(list);
        json_object_set_new(root, plural(k), arr);
    }
    return root;
}

/* Rewrites "KIND[i]rest" in p: the changed object itself becomes "rest"
 * (relative to the request body), any other becomes "KIND[name]rest". */
static void rewrite_path(char *p, size_t len, const json_t *root, int kind, long self)
{
    char kname[16], rest[256], out[512];
    long idx;
    int used = 0;
    if (sscanf(p, "%15[a-z][%ld]%n", kname, &idx, &used) != 2 || used == 0)
        return;
    const struct gv_kind *kd = gv_kind_by_name(kname);
    if (kd == NULL)
        return;
    int k = kd->id;
    copy_str(rest, sizeof(rest), p + used);
    if (k == kind && idx == self) {
        copy_str(p, len, rest[0] == '.' ? rest + 1 : rest);
        return;
    }
    const char *name = element_name(k, json_array_get(json_object_get(root, kname), (size_t)idx));
    if (name != NULL) {
        snprintf(out, sizeof(out), "%s[%.128s]%s", kname, name, rest);
        copy_str(p, len, out);
    }
}

static int fail(struct node_state_error *err, const char *path, const char *msg)
{
    copy_str(err->path, sizeof(err->path), path);
    copy_str(err->where, sizeof(err->where), path);
    copy_str(err->msg, sizeof(err->msg), msg);
    return GV_EINVAL;
}

/* ---- saving ---------------------------------------------------------------- */

static void write_work(uv_work_t *w)
{
    struct node_cstate *cs = w->data;
    cs->write_rv = gv_file_write_atomic(cs->path, cs->image.data, cs->image.len);
}

static void start_write(struct node_cstate *cs);

static void answer_waiters(struct node_cstate *cs, uint64_t upto, int status)
{
    size_t keep = 0;
    /* copy out first: a done callback may start another change */
    struct waiter *ready = malloc((cs->nwaiters + 1) * sizeof(*ready));
    size_t nready = 0;
    for (size_t i = 0; i < cs->nwaiters; i++) {
        if (cs->waiters[i].gen <= upto && ready != NULL)
            ready[nready++] = cs->waiters[i];
        else
            cs->waiters[keep++] = cs->waiters[i];
    }
    cs->nwaiters = keep;
    for (size_t i = 0; i < nready; i++)
        ready[i].done(ready[i].arg, status);
    free(ready);
}

static void maybe_finish_close(struct node_cstate *cs);

static void write_done(uv_work_t *w, int status)
{
    struct node_cstate *cs = w->data;
    int rv = status != 0 ? status : cs->write_rv;
    cs->writing = false;
    if (cs->path != NULL) {
        cs->saves++;
        if (rv != 0) {
            cs->save_errors++;
            gv_error("config: cannot save %s: %s", cs->path, gv_strerror(rv));
        } else {
            cs->gen_saved = cs->gen_inflight;
        }
    }
    answer_waiters(cs, cs->gen_inflight, rv);
    if (cs->gen_wanted > cs->gen_inflight)
        start_write(cs);
    else
        maybe_finish_close(cs);
}

static void noop_work(uv_work_t *w)
{
    (void)w;
}

static void start_write(struct node_cstate *cs)
{
    if (cs->writing)
        return;
    cs->gen_inflight = cs->gen_wanted;
    cs->write_rv = 0;
    gv_buf_reset(&cs->image);
    if (cs->path != NULL && cl_store_save(cs->store, cs->clock.last, &cs->image) != 0)
        cs->write_rv = GV_ENOMEM;
    cs->work.data = cs;
    cs->writing = true;
    if (uv_queue_work(&cs->n->loop, &cs->work,
                      cs->path && cs->write_rv == 0 ? write_work : noop_work, write_done) != 0) {
        /* cannot happen with a live loop; answer rather than hang */
        cs->writing = false;
        answer_waiters(cs, cs->gen_inflight, GV_EIO);
    }
}

/* Makes room for one more waiter, so that queueing it later cannot fail:
 * every change calls this before it changes anything. 0 or GV_ENOMEM. */
static int reserve_waiter(struct node_cstate *cs)
{
    if (cs->nwaiters < cs->capwaiters)
        return 0;
    size_t cap = cs->capwaiters ? cs->capwaiters * 2 : 8;
    struct waiter *w = realloc(cs->waiters, cap * sizeof(*w));
    if (w == NULL)
        return GV_ENOMEM;
    cs->waiters = w;
    cs->capwaiters = cap;
    return 0;
}

/* Asks for the store to be saved; done (if any, with a slot reserved) is
 * called once it is. */
static void request_save(struct node_cstate *cs, node_cstate_done_fn done, void *arg)
{
    cs->gen_wanted++;
    if (done != NULL)
        cs->waiters[cs->nwaiters++] = (struct waiter){cs->gen_wanted, done, arg};
    start_write(cs);
}

/* ---- applying ------------------------------------------------------------- */

static uint64_t delay_ms(uint64_t stamp)
{
    uint64_t made = cl_hlc_unix_ms(stamp), now = cl_hlc_wall_ms();
    return stamp == 0 || now < made ? 0 : now - made;
}

/* Builds, validates and publishes the state the store holds. */
static int apply_store(struct node_cstate *cs, struct node_state_error *err)
{
    struct node_state st;
    json_t *root = materialize(cs, err);
    int rv = root ? node_state_from_json(root, &st, err) : GV_EINVAL;
    json_decref(root);
    if (rv != 0)
        return rv;
    rv = node_publish(cs->n, &st, cl_store_max_stamp(cs->store));
    if (rv != 0) {
        node_state_free(&st);
        fail(err, "", gv_strerror(rv));
    }
    return rv;
}

static void log_arrivals(struct node_cstate *cs, bool applied, const struct node_state_error *err)
{
    size_t n = cs->narrivals;
    for (size_t i = 0; i < n && i < LOG_EACH_MAX; i++) {
        const struct arrival *a = &cs->arrivals[i];
        char kind[16];
        gv_info("config: %s %s/%s from %s, %llu ms after it was made%s",
                applied ? "applied" : "stored", gv_kind_label(a->kind, kind, sizeof(kind)), a->name,
                a->origin[0] ? a->origin : "a config file", (unsigned long long)delay_ms(a->stamp),
                a->deleted ? " (deleted)" : "");
    }
    if (n + cs->arrivals_dropped > LOG_EACH_MAX)
        gv_info("config: ... and %zu more changes", n + cs->arrivals_dropped - LOG_EACH_MAX);
    if (!applied)
        gv_warn("config: the state does not validate (%s%s%s); serving the last good one until a "
                "change fixes it",
                err->where, err->where[0] ? ": " : "", err->msg);
}

static void on_apply_timer(uv_timer_t *t)
{
    struct node_cstate *cs = t->data;
    struct node_state_error err = {0};
    if (cs->narrivals == 0 && cs->arrivals_dropped == 0)
        return;
    int rv = apply_store(cs, &err);
    if (rv == 0) {
        cs->applied_remote += cs->narrivals + cs->arrivals_dropped;
        cs->invalid = false;
    } else {
        cs->states_rejected++;
        cs->invalid = true;
    }
    log_arrivals(cs, rv == 0, &err);
    cs->narrivals = 0;
    cs->arrivals_dropped = 0;
}

/* A peer's change won in the store: note it and apply on the next turn, so
 * a batch of entries is validated and published once. */
static void on_change(void *arg, const struct cl_entry *e, const char *from)
{
    struct node_cstate *cs = arg;
    (void)from;
    if (gv_kind_by_id(e->kind) == NULL) { /* nothing to apply: just keep it */
        note_unknown_kind(cs, e->kind);
        request_save(cs, NULL, NULL);
        return;
    }
    if (cs->narrivals == cs->caparrivals) {
        size_t cap = cs->caparrivals ? cs->caparrivals * 2 : 16;
        struct arrival *a = cap <= 4096 ? realloc(cs->arrivals, cap * sizeof(*a)) : NULL;
        if (a != NULL) {
            cs->arrivals = a;
            cs->caparrivals = cap;
        }
    }
    if (cs->narrivals < cs->caparrivals) {
        struct arrival *a = &cs->arrivals[cs->narrivals++];
        a->kind = e->kind;
        a->deleted = e->deleted;
        a->stamp = e->stamp;
        copy_str(a->name, sizeof(a->name), e->name);
        copy_str(a->origin, sizeof(a->origin), e->origin);
    } else {
        cs->arrivals_dropped++;
    }
    request_save(cs, NULL, NULL);
    if (!uv_is_active((uv_handle_t *)&cs->apply_timer))
        uv_timer_start(&cs->apply_timer, on_apply_timer, 0, 0);
}

static void on_gc_timer(uv_timer_t *t)
{
    struct node_cstate *cs = t->data;
    uint64_t wall = cl_hlc_wall_ms();
    if (wall < CL_HLC_EPOCH_MS + cs->tombstone_ttl_ms)
        return;
    uint64_t before = (wall - cs->tombstone_ttl_ms - CL_HLC_EPOCH_MS) << CL_HLC_LOGICAL_BITS;
    size_t dropped = cl_store_gc(cs->store, before);
    if (dropped > 0) {
        gv_info("config: dropped %zu tombstones older than the TTL", dropped);
        request_save(cs, NULL, NULL);
    }
}

/* ---- changes from the admin API --------------------------------------------- */

/* Stores a local write, spreads it and queues the save. */
static void commit(struct node_cstate *cs, struct cl_entry *e, node_cstate_done_fn done, void *arg)
{
    int rv = cl_store_merge(cs->store, e);
    if (rv != 1)
        gv_error("config: %s/%s: local write not stored (%s)", plural(e->kind), e->name,
                 rv < 0 ? gv_strerror(rv) : "an equal or newer version is held");
    if (cs->replica != NULL && rv == 1)
        cl_replica_publish(cs->replica, e);
    request_save(cs, done, arg);
}

static void init_entry(struct node_cstate *cs, struct cl_entry *e, int kind, const char *name)
{
    memset(e, 0, sizeof(*e));
    e->kind = (uint8_t)kind;
    e->stamp = cl_hlc_now(&cs->clock, cl_hlc_wall_ms());
    snprintf(e->name, sizeof(e->name), "%s", name);
    snprintf(e->origin, sizeof(e->origin), "%s", self_name(cs));
}

/* Where an object named name goes in a kind's list (ordered by rank, then
 * name), and its index when present (else -1). */
static long position(struct node_cstate *cs, int kind, const char *name, uint32_t rank,
                     long *present)
{
    const struct cl_entry **list;
    int n = cl_store_list(cs->store, (uint8_t)kind, &list);
    long at = n < 0 ? 0 : n;
    *present = -1;
    for (int i = 0; i < n; i++) {
        if (strcmp(list[i]->name, name) == 0) {
            *present = i;
            at = i;
            break;
        }
        if (at == n &&
            (list[i]->rank > rank || (list[i]->rank == rank && strcmp(list[i]->name, name) > 0)))
            at = i;
    }
    free(list);
    return at;
}

static int check_name(int kind, const char *name, struct node_state_error *err)
{
    char kinds[128], msg[160];
    if (kind < 0 || gv_kind_by_id((unsigned)kind) == NULL) {
        snprintf(msg, sizeof(msg), "unknown kind (%s)", gv_kinds_text(kinds, sizeof(kinds), ", "));
        return fail(err, "", msg);
    }
    size_t n = strlen(name);
    if (n == 0 || n > CL_STORE_MAX_NAME)
        return fail(err, "name", "name must be 1..128 characters");
    return 0;
}

/* Validates root (the state a change would make); on failure rewrites the
 * error's paths relative to the changed object at kind[self]. */
static int validate(const json_t *root, int kind, long self, struct node_state *st,
                    struct node_state_error *err)
{
    int rv = node_state_from_json(root, st, err);
    if (rv == 0 && (rv = node_state_check_files(st, err)) != 0)
        node_state_free(st);
    if (rv != 0 && kind >= 0) {
        rewrite_path(err->path, sizeof(err->path), root, kind, self);
        rewrite_path(err->where, sizeof(err->where), root, kind, self);
    }
    return rv;
}

static void done_later(struct node_cstate *cs, node_cstate_done_fn done, void *arg)
{
    /* nothing to write, but the contract says "after the call returned" and
     * in order with earlier changes: ride the save queue without a change
     * (the slot was reserved) */
    cs->waiters[cs->nwaiters++] = (struct waiter){cs->gen_wanted, done, arg};
    if (!cs->writing)
        start_write(cs);
}

/* The element obj becomes in its kind's list: {NAME: obj} for a plugin,
 * obj with its name for the others (a name in the body must be the URL's). */
static int put_element(int kind, const char *name, const json_t *obj, json_t **out,
                       struct node_state_error *err)
{
    if (!json_is_object(obj))
        return fail(err, "", "must be a JSON object");
    if (kind == GV_KIND_PLUGINS) {
        *out = json_pack("{s:O}", name, (json_t *)obj);
        return *out ? 0 : GV_ENOMEM;
    }
    const json_t *given = json_object_get(obj, "name");
    if (given != NULL && (!json_is_string(given) || strcmp(json_string_value(given), name) != 0))
        return fail(err, "name", "must be the name in the URL");
    if ((*out = json_deep_copy(obj)) == NULL)
        return GV_ENOMEM;
    if (json_object_set_new(*out, "name", json_string(name)) != 0) {
        json_decref(*out);
        return GV_ENOMEM;
    }
    return 0;
}

/* The state with elem put at its place (replacing the object held, or
 * inserted at its rank), validated into *st; *at is its index in its list. */
static int stage_put(struct node_cstate *cs, int kind, const char *name, json_t *elem,
                     uint32_t rank, struct node_state *st, long *at, struct node_state_error *err)
{
    long present;
    json_t *root = NULL;
    *at = position(cs, kind, name, rank, &present);
    if ((root = materialize(cs, err)) == NULL) {
        json_decref(elem);
        return err->msg[0] ? GV_EINVAL : GV_ENOMEM;
    }
    json_t *arr = json_object_get(root, plural(kind));
    if (present >= 0)
        json_array_set_new(arr, (size_t)present, elem);
    else
        json_array_insert_new(arr, (size_t)*at, elem);
    int rv = validate(root, kind, *at, st, err);
    json_decref(root);
    return rv;
}

/* The object at index at of its kind in st: as the client sees it (every
 * default, *shown) and as the store keeps it (minimal form, *value). */
static int object_forms(const struct node_state *st, int kind, long at, const char *name,
                        json_t **shown, char **value)
{
    json_t *canon = node_state_to_json(st), *mins = node_state_to_json_min(st);
    json_t *cobj = json_array_get(json_object_get(canon, plural(kind)), (size_t)at);
    json_t *mobj = json_array_get(json_object_get(mins, plural(kind)), (size_t)at);
    *value = cobj && mobj ? json_dumps(mobj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    *shown =
        *value ? json_incref(kind == GV_KIND_PLUGINS ? json_object_get(cobj, name) : cobj) : NULL;
    json_decref(canon);
    json_decref(mins);
    return *value ? 0 : GV_ENOMEM;
}

static int too_large(const char *value, const char *where, struct node_state_error *err)
{
    char msg[128];
    if (strlen(value) <= CL_STORE_MAX_VALUE)
        return 0;
    snprintf(msg, sizeof(msg), "object is %zu bytes; the limit is %d", strlen(value),
             CL_STORE_MAX_VALUE);
    return fail(err, where, msg);
}

int node_cstate_put(struct node_cstate *cs, int kind, const char *name, const json_t *obj,
                    json_t **stored, bool *created, struct node_state_error *err,
                    node_cstate_done_fn done, void *arg)
{
    struct node_state st;
    json_t *elem = NULL;
    char *value = NULL;
    long at;
    int rv;
    memset(err, 0, sizeof(*err));
    *stored = NULL;
    *created = false;
    if ((rv = check_name(kind, name, err)) != 0 || (rv = reserve_waiter(cs)) != 0 ||
        (rv = put_element(kind, name, obj, &elem, err)) != 0)
        return rv;
    const struct cl_entry *cur = cl_store_get(cs->store, (uint8_t)kind, name);
    bool exists = cur != NULL && !cur->deleted;
    uint32_t rank = exists ? cur->rank : CL_RANK_NONE;
    if ((rv = stage_put(cs, kind, name, elem, rank, &st, &at, err)) != 0)
        return rv;
    if ((rv = object_forms(&st, kind, at, name, stored, &value)) != 0 ||
        (rv = too_large(value, "", err)) != 0)
        goto fail;
    if (exists && cur->value_len == strlen(value) &&
        memcmp(cur->value, value, cur->value_len) == 0) {
        node_state_free(&st);
        free(value);
        done_later(cs, done, arg);
        return 1; /* the same object is held: nothing to write */
    }
    struct cl_entry e;
    init_entry(cs, &e, kind, name);
    e.rank = rank;
    e.value = (const uint8_t *)value;
    e.value_len = strlen(value);
    if ((rv = node_publish(cs->n, &st, GV_MAX(e.stamp, cl_store_max_stamp(cs->store)))) != 0) {
        fail(err, "", gv_strerror(rv));
        goto fail;
    }
    *created = !exists;
    cs->applied_local++;
    cs->invalid = false;
    gv_info("config: %s %s/%s here", exists ? "updated" : "created", plural(kind), name);
    commit(cs, &e, done, arg);
    free(value);
    return 0;
fail:
    json_decref(*stored);
    *stored = NULL;
    node_state_free(&st);
    free(value);
    return rv;
}

int node_cstate_delete(struct node_cstate *cs, int kind, const char *name,
                       struct node_state_error *err, node_cstate_done_fn done, void *arg)
{
    struct node_state st;
    int rv;
    memset(err, 0, sizeof(*err));
    if ((rv = check_name(kind, name, err)) != 0)
        return rv;
    const struct cl_entry *cur = cl_store_get(cs->store, (uint8_t)kind, name);
    if (cur == NULL || cur->deleted)
        return GV_ENOENT;
    if (reserve_waiter(cs) != 0)
        return GV_ENOMEM;
    long present;
    position(cs, kind, name, cur->rank, &present);
    json_t *root = materialize(cs, err);
    if (root == NULL)
        return err->msg[0] ? GV_EINVAL : GV_ENOMEM;
    json_array_remove(json_object_get(root, plural(kind)), (size_t)present);
    if ((rv = validate(root, kind, -1, &st, err)) != 0) {
        /* another object still needs this one: say which, at its path */
        char msg[sizeof(err->msg)];
        snprintf(msg, sizeof(msg), "%s/%s is still needed: %.128s: %.96s", plural(kind), name,
                 err->where, err->msg);
        copy_str(err->msg, sizeof(err->msg), msg);
        json_decref(root);
        return rv;
    }
    json_decref(root);
    struct cl_entry e;
    init_entry(cs, &e, kind, name);
    e.deleted = true;
    e.rank = cur->rank;
    if ((rv = node_publish(cs->n, &st, GV_MAX(e.stamp, cl_store_max_stamp(cs->store)))) != 0) {
        node_state_free(&st);
        return fail(err, "", gv_strerror(rv));
    }
    cs->applied_local++;
    cs->invalid = false;
    gv_info("config: deleted %s/%s here", plural(kind), name);
    commit(cs, &e, done, arg);
    return 0;
}

struct replace_ctx {
    const json_t *canon;
    struct cl_entry *gone;
    size_t ngone;
};

static int find_gone(void *arg, const struct cl_entry *e)
{
    struct replace_ctx *c = arg;
    /* a kind the new state cannot name (unknown here) is not replaced */
    if (e->deleted || gv_kind_by_id(e->kind) == NULL)
        return 0;
    const json_t *arr = json_object_get(c->canon, plural(e->kind));
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *nm = element_name(e->kind, v);
        if (nm != NULL && strcmp(nm, e->name) == 0)
            return 0;
    }
    c->gone[c->ngone++] = *e;
    return 0;
}

/* What PUT /config writes: tombstones for what the new state no longer
 * names, and an entry per object that is new or changed, with the changes
 * listed for the answer. The entries' values point at strings kept in
 * values (freed by the caller). */
struct replace_plan {
    struct cl_entry *writes;
    size_t nwrites;
    char **values;
    size_t nvalues;
    json_t *created, *updated, *deleted;
};

static void plan_free(struct replace_plan *p)
{
    for (size_t i = 0; i < p->nvalues; i++)
        free(p->values[i]);
    free(p->values);
    free(p->writes);
    json_decref(p->created);
    json_decref(p->updated);
    json_decref(p->deleted);
}

static int plan_tombstones(struct node_cstate *cs, const json_t *canon, struct replace_plan *p)
{
    struct replace_ctx ctx = {canon, p->writes, 0};
    char label[200];
    cl_store_foreach(cs->store, find_gone, &ctx);
    p->nwrites = ctx.ngone;
    for (size_t i = 0; i < p->nwrites; i++) {
        struct cl_entry *e = &p->writes[i];
        char nm[CL_STORE_MAX_NAME + 1];
        snprintf(nm, sizeof(nm), "%s", e->name);
        uint32_t rank = e->rank;
        init_entry(cs, e, e->kind, nm);
        e->deleted = true;
        e->rank = rank;
        snprintf(label, sizeof(label), "%s/%s", plural(e->kind), nm);
        if (json_array_append_new(p->deleted, json_string(label)) != 0)
            return GV_ENOMEM;
    }
    return 0;
}

/* An entry for object v (index i of kind k) unless the store holds it as is. */
static int plan_object(struct node_cstate *cs, int k, size_t i, const json_t *v,
                       struct replace_plan *p, struct node_state_error *err)
{
    char label[200];
    const char *nm = element_name(k, v);
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    if (nm == NULL || text == NULL) {
        free(text);
        return GV_ENOMEM;
    }
    p->values[p->nvalues++] = text;
    snprintf(label, sizeof(label), "%s[%zu]", plural(k), i);
    int rv = too_large(text, label, err);
    if (rv != 0)
        return rv;
    const struct cl_entry *cur = cl_store_get(cs->store, (uint8_t)k, nm);
    bool exists = cur != NULL && !cur->deleted;
    if (exists && cur->rank == i && cur->value_len == strlen(text) &&
        memcmp(cur->value, text, cur->value_len) == 0)
        return 0;
    struct cl_entry *e = &p->writes[p->nwrites++];
    init_entry(cs, e, k, nm);
    e->rank = (uint32_t)i;
    e->value = (const uint8_t *)text;
    e->value_len = strlen(text);
    snprintf(label, sizeof(label), "%s/%s", plural(k), nm);
    return json_array_append_new(exists ? p->updated : p->created, json_string(label)) == 0
               ? 0
               : GV_ENOMEM;
}

static int plan_replace(struct node_cstate *cs, const json_t *canon, struct replace_plan *p,
                        struct node_state_error *err)
{
    size_t total = 0;
    for (int k = 0; k < GV_KIND_COUNT; k++)
        total += json_array_size(json_object_get(canon, plural(k)));
    p->writes = calloc(cl_store_count(cs->store) + total + 1, sizeof(*p->writes));
    p->values = calloc(total + 1, sizeof(*p->values));
    p->created = json_array();
    p->updated = json_array();
    p->deleted = json_array();
    if (p->writes == NULL || p->values == NULL || p->created == NULL || p->updated == NULL ||
        p->deleted == NULL)
        return GV_ENOMEM;
    /* tombstones first: everything held that the new state does not name */
    int rv = plan_tombstones(cs, canon, p);
    for (int k = 0; k < GV_KIND_COUNT && rv == 0; k++) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(canon, plural(k)), i, v)
        {
            if (rv == 0)
                rv = plan_object(cs, k, i, v, p, err);
        }
    }
    return rv;
}

int node_cstate_replace(struct node_cstate *cs, const json_t *state, json_t **changes,
                        struct node_state_error *err, node_cstate_done_fn done, void *arg)
{
    struct node_state st;
    struct replace_plan p = {0};
    int rv;
    memset(err, 0, sizeof(*err));
    *changes = NULL;
    if (!json_is_object(state))
        return fail(err, "", "must be a JSON object");
    if ((rv = reserve_waiter(cs)) != 0 || (rv = validate(state, -1, -1, &st, err)) != 0)
        return rv;
    json_t *canon = node_state_to_json_min(&st); /* what is stored */
    rv = canon ? plan_replace(cs, canon, &p, err) : GV_ENOMEM;
    json_decref(canon);
    if (rv != 0)
        goto fail;
    if (p.nwrites == 0) {
        node_state_free(&st);
        done_later(cs, done, arg);
    } else {
        uint64_t top = GV_MAX(p.writes[p.nwrites - 1].stamp, cl_store_max_stamp(cs->store));
        if ((rv = node_publish(cs->n, &st, top)) != 0) {
            fail(err, "", gv_strerror(rv));
            goto fail;
        }
        cs->applied_local += p.nwrites;
        cs->invalid = false;
        gv_info("config: replaced the whole state here (%zu changes)", p.nwrites);
        for (size_t i = 0; i < p.nwrites; i++)
            commit(cs, &p.writes[i], i + 1 == p.nwrites ? done : NULL, arg);
    }
    *changes = json_pack("{s:O,s:O,s:O}", "created", p.created, "updated", p.updated, "deleted",
                         p.deleted);
    plan_free(&p);
    return 0;
fail:
    node_state_free(&st);
    plan_free(&p);
    return rv;
}

/* ---- reading ---------------------------------------------------------------- */

json_t *node_cstate_get(struct node_cstate *cs, int kind, const char *name)
{
    struct gw_snapshot *s = node_snapshot(cs->n);
    json_t *all = s ? node_state_to_json((const struct node_state *)s->user) : NULL;
    json_t *out = NULL;
    gw_snapshot_unref(s);
    if (all == NULL)
        return NULL;
    if (kind < 0) {
        json_object_set_new(all, "digest", json_string(cs->n->config_digest));
        json_object_set_new(all, "version", json_integer((json_int_t)cs->n->config_version));
        return all;
    }
    json_t *arr = json_object_get(all, plural(kind));
    if (name == NULL) {
        out = json_incref(arr);
    } else {
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v)
        {
            const char *nm = element_name(kind, v);
            if (nm != NULL && strcmp(nm, name) == 0) {
                out = json_incref(kind == GV_KIND_PLUGINS ? json_object_get(v, nm) : v);
                break;
            }
        }
    }
    json_decref(all);
    return out;
}

const char *node_cstate_digest(const struct node_cstate *cs)
{
    return cs->n->config_digest;
}

uint64_t node_cstate_version(const struct node_cstate *cs)
{
    return cs->n->config_version;
}

json_t *node_cstate_stats_json(const struct node_cstate *cs)
{
    const struct cl_replica_stats *r = cs->replica ? cl_replica_stats(cs->replica) : NULL;
    return json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:b,s:I,s:I,s:I,s:I,s:I}", "objects",
        (json_int_t)cl_store_count(cs->store), "applied_local", (json_int_t)cs->applied_local,
        "applied_remote", (json_int_t)cs->applied_remote, "states_rejected",
        (json_int_t)cs->states_rejected, "save_errors", (json_int_t)cs->save_errors, "invalid",
        cs->invalid, "published", (json_int_t)(r ? r->published : 0), "received",
        (json_int_t)(r ? r->received : 0), "entries_pushed",
        (json_int_t)(r ? r->entries_pushed : 0), "malformed", (json_int_t)(r ? r->malformed : 0),
        "unknown_kind_entries", (json_int_t)unknown_kind_entries(cs));
}

/* ---- life ------------------------------------------------------------------- */

/* The config file's objects, stamp 0, ranked in file order. */
static int seed(struct node_cstate *cs)
{
    json_t *canon = node_state_to_json_min(&cs->n->cfg.state);
    int rv = canon ? 0 : GV_ENOMEM;
    for (int k = 0; rv == 0 && k < GV_KIND_COUNT; k++) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(canon, plural(k)), i, v)
        {
            const char *nm = element_name(k, v);
            char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
            struct cl_entry e = {.kind = (uint8_t)k, .rank = (uint32_t)i};
            if (nm == NULL || text == NULL) {
                free(text);
                rv = GV_ENOMEM;
                break;
            }
            snprintf(e.name, sizeof(e.name), "%s", nm);
            e.value = (const uint8_t *)text;
            e.value_len = strlen(text);
            if (cl_store_merge(cs->store, &e) < 0)
                gv_warn("config: %s[%zu] cannot be seeded (name or size over a limit)", plural(k),
                        i);
            free(text);
        }
    }
    json_decref(canon);
    return rv;
}

static int load(struct node_cstate *cs)
{
    struct gv_buf b;
    uint64_t clock = 0;
    gv_buf_init(&b);
    int rv = gv_file_read(cs->path, STATE_FILE_MAX, &b);
    if (rv == GV_ENOENT) {
        gv_info("config: no saved state in %s yet", cs->path);
        rv = 0;
    } else if (rv != 0) {
        gv_error("config: cannot read %s: %s", cs->path, gv_strerror(rv));
    } else if ((rv = cl_store_load(cs->store, (const uint8_t *)b.data, b.len, &clock)) != 0) {
        /* keep the damaged file for a human; the peers have the state */
        char aside[4200];
        snprintf(aside, sizeof(aside), "%s.damaged", cs->path);
        rename(cs->path, aside);
        gv_error("config: %s is damaged (%s); moved it to %s and starting from the config file "
                 "and the peers",
                 cs->path, gv_strerror(rv), aside);
        cl_store_free(cs->store);
        rv = cl_store_new(&cs->store);
    } else {
        cl_hlc_observe(&cs->clock, clock);
        cl_hlc_observe(&cs->clock, cl_store_max_stamp(cs->store));
        gv_info("config: loaded %zu objects from %s", cl_store_count(cs->store), cs->path);
    }
    gv_buf_free(&b);
    return rv;
}

int node_cstate_open(struct node *n, struct node_cstate **out)
{
    struct node_cstate *cs = calloc(1, sizeof(*cs));
    struct node_state_error err = {0};
    int rv;
    if (cs == NULL)
        return GV_ENOMEM;
    cs->n = n;
    cs->tombstone_ttl_ms = 30ULL * 24 * 3600 * 1000;
    gv_buf_init(&cs->image);
    if ((rv = cl_store_new(&cs->store)) != 0)
        goto fail;
    if (n->cfg.node.data_dir != NULL) {
        size_t len = strlen(n->cfg.node.data_dir) + sizeof(STATE_FILE) + 2;
        if ((cs->path = malloc(len)) == NULL) {
            rv = GV_ENOMEM;
            goto fail;
        }
        snprintf(cs->path, len, "%s/%s", n->cfg.node.data_dir, STATE_FILE);
        if ((rv = gv_mkdirs(n->cfg.node.data_dir)) != 0) {
            gv_error("config: cannot create data_dir %s: %s", n->cfg.node.data_dir,
                     gv_strerror(rv));
            rv = GV_EIO;
            goto fail;
        }
        if ((rv = load(cs)) != 0) {
            rv = GV_EIO;
            goto fail;
        }
        cl_store_drop_seeds(cs->store);
        cl_store_foreach(cs->store, note_if_unknown, cs);
    } else {
        gv_warn("config: no node.data_dir: changes made through the API are kept by the cluster "
                "but not on this node's disk");
    }
    if ((rv = seed(cs)) != 0)
        goto fail;
    if ((rv = apply_store(cs, &err)) != 0) {
        /* the saved state (merged with the file) does not validate: serve the file alone */
        gv_error("config: the saved state does not validate (%s: %s); serving the config file's "
                 "state until a change fixes it",
                 err.where, err.msg);
        cs->invalid = true;
        struct node_state st;
        json_t *canon = node_state_to_json(&n->cfg.state);
        rv = canon && node_state_from_json(canon, &st, &err) == 0 ? node_publish(n, &st, 0)
                                                                  : GV_EINVAL;
        json_decref(canon);
        if (rv != 0)
            goto fail;
    }
    uv_timer_init(&n->loop, &cs->apply_timer);
    uv_timer_init(&n->loop, &cs->gc_timer);
    cs->apply_timer.data = cs->gc_timer.data = cs;
    cs->open_handles = 2;
    uv_timer_start(&cs->gc_timer, on_gc_timer, GC_INTERVAL_MS, GC_INTERVAL_MS);
    uv_unref((uv_handle_t *)&cs->gc_timer);
    gv_info("config: %zu objects, version %llu, digest %.12s", cl_store_count(cs->store),
            (unsigned long long)n->config_version, n->config_digest);
    *out = cs;
    return 0;
fail:
    cl_store_free(cs->store);
    gv_buf_free(&cs->image);
    free(cs->path);
    free(cs);
    return rv;
}

int node_cstate_attach(struct node_cstate *cs, struct cl_swim *swim)
{
    struct cl_replica_config rc;
    cl_replica_config_init(&rc);
    rc.channel = CONFIG_CHANNEL;
    rc.tombstone_ttl_ms = cs->tombstone_ttl_ms;
    rc.on_change = on_change;
    rc.arg = cs;
    return cl_replica_new(&cs->n->loop, swim, cs->store, &cs->clock, &rc, &cs->replica);
}

static void free_cs(struct node_cstate *cs)
{
    void (*done)(void *) = cs->done;
    void *arg = cs->done_arg;
    cl_store_free(cs->store);
    gv_buf_free(&cs->image);
    free(cs->waiters);
    free(cs->arrivals);
    free(cs->path);
    free(cs);
    if (done != NULL)
        done(arg);
}

static void maybe_finish_close(struct node_cstate *cs)
{
    if (cs->closing && cs->open_handles == 0 && cs->replica == NULL && !cs->writing)
        free_cs(cs);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct node_cstate *cs = h->data;
    cs->open_handles--;
    maybe_finish_close(cs);
}

static void on_replica_closed(void *arg)
{
    struct node_cstate *cs = arg;
    cs->replica = NULL;
    maybe_finish_close(cs);
}

void node_cstate_close(struct node_cstate *cs, void (*done)(void *arg), void *arg)
{
    cs->closing = true;
    cs->done = done;
    cs->done_arg = arg;
    /* what arrived but was not applied yet is in the store, and gets saved */
    if (cs->gen_wanted > cs->gen_inflight && !cs->writing)
        start_write(cs);
    uv_close((uv_handle_t *)&cs->apply_timer, on_handle_closed);
    uv_close((uv_handle_t *)&cs->gc_timer, on_handle_closed);
    if (cs->replica != NULL)
        cl_replica_close(cs->replica, on_replica_closed, cs);
}
