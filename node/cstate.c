/* cstate.c - the node's replicated cluster state: loading and seeding it,
 * peers' changes, applying the store (with quarantine of what does not
 * validate), reading. Changes from the admin API are in cstate_change.c,
 * the disk in cstate_save.c, the store as JSON in cstate_view.c. */
#include "cluster/hlc.h"
#include "cluster/replica.h"
#include "cluster/seal.h"
#include "cluster/store.h"
#include "cluster/swim.h"
#include "common/err.h"
#include "common/file.h"
#include "common/kinds.h"
#include "common/log.h"
#include "common/util.h"
#include "node/cstate_int.h"
#include "node/cstate_jcache.h"
#include "node/node.h"

#include <openssl/crypto.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_CHANNEL    1
#define GC_INTERVAL_MS    (3600u * 1000u)
#define APPLY_WAIT_MAX_MS 1000 /* peers' changes wait at most this for the last apply's cost */
#define QUARANTINE_RUNS   32   /* validations per apply, each leaving one more entry out */

void cs_copy_str(char *dst, size_t n, const char *src)
{
    size_t len = strlen(src); /* src is always terminated; a bound here
                               * makes gcc -O2 warn when src is shorter */
    if (len > n - 1)
        len = n - 1;
    memmove(dst, src, len);
    dst[len] = '\0';
}

/* The plural of a kind this version knows ("services"). */
const char *cs_plural(int kind)
{
    const struct gv_kind *k = gv_kind_by_id((unsigned)kind);
    return k ? k->plural : "?";
}

const char *cs_self_name(const struct node_cstate *cs)
{
    return cs->n->cfg.node.name;
}

int cs_fail(struct node_state_error *err, const char *path, const char *msg)
{
    cs_copy_str(err->path, sizeof(err->path), path);
    cs_copy_str(err->where, sizeof(err->where), path);
    cs_copy_str(err->msg, sizeof(err->msg), msg);
    return GV_EINVAL;
}

/* The name an element of a kind's list goes by (plugins: their only key). */
const char *cs_element_name(int kind, const json_t *v)
{
    if (kind == GV_KIND_PLUGINS) {
        void *it = json_object_iter((json_t *)v);
        return it ? json_object_iter_key(it) : NULL;
    }
    if (json_is_string(v)) /* a route the view holds compiled (struct cs_reuse) */
        return json_string_value(v);
    return json_string_value(json_object_get(v, "name"));
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

/* ---- applying the store, with quarantine -------------------------------------- */

/* The entry an error's path blames ("routes[3].service": the fourth route
 * of the state built from lists), with the reason relative to it. */
static const struct cl_entry *blame(const struct node_state_error *err,
                                    const struct cl_entry **lists[], const int counts[],
                                    char *reason, size_t len)
{
    char kname[16];
    long idx;
    int used = 0;
    if (sscanf(err->path, "%15[a-z][%ld]%n", kname, &idx, &used) != 2 || used == 0)
        return NULL;
    const struct gv_kind *k = gv_kind_by_name(kname);
    if (k == NULL || idx < 0 || idx >= counts[k->id])
        return NULL;
    const char *rest = err->path + used + (err->path[used] == '.');
    snprintf(reason, len, "%.64s%s%.120s", rest, rest[0] ? ": " : "", err->msg);
    return lists[k->id][idx];
}

/* One try at the store's state: 0 when published; GV_EINVAL with *bad set
 * when an entry is to blame (and *bad NULL when none is). */
static int try_apply(struct node_cstate *cs, struct node_state_error *err,
                     const struct cl_entry **bad, char *reason, size_t len)
{
    const struct cl_entry **lists[GV_KIND_COUNT];
    int counts[GV_KIND_COUNT];
    struct node_state st;
    struct cs_reuse ru;
    *bad = NULL;
    json_t *root = cs_materialize(cs, false, lists, counts, &ru, false);
    if (root == NULL)
        return cs_fail(err, "", gv_strerror(GV_ENOMEM));
    char digest[65];
    int rv = node_state_from_json_reuse(root, &ru.api, &st, err);
    json_decref(root);
    cs_reuse_free(&ru);
    cs_digest(lists, counts, digest);
    if (rv == 0 && (rv = node_publish(cs->n, &st, cl_store_max_stamp(cs->store), digest)) != 0) {
        node_state_free(&st);
        cs_fail(err, "", gv_strerror(rv));
    } else if (rv != 0) {
        *bad = blame(err, lists, counts, reason, len);
    } else {
        cs_trim_later(cs);
    }
    cs_lists_free(lists);
    return rv;
}

/* Says which entries left quarantine (in prev, not in the new set), and
 * how many more were left out than said one per line. */
static void log_released(struct node_cstate *cs, const struct cs_quarantined *prev, size_t nprev)
{
    char kind[16];
    size_t said = 0;
    for (size_t i = 0; i < nprev; i++) {
        const struct cs_quarantined *q = cs_quarantine_find(cs, prev[i].kind, prev[i].name);
        if (q != NULL && q->stamp == prev[i].stamp)
            continue;
        if (said++ < CS_LOG_EACH_MAX)
            gv_info("config: %s/%s is no longer left out", gv_kind_label(prev[i].kind, kind, 16),
                    prev[i].name);
    }
    if (said > CS_LOG_EACH_MAX)
        gv_info("config: ... and %zu more are no longer left out", said - CS_LOG_EACH_MAX);
}

void cs_quarantine_restart(struct node_cstate *cs, struct cs_quar_saved *saved)
{
    saved->q = cs->quar;
    saved->n = cs->nquar;
    saved->index = cs->quar_index;
    cs->quar = NULL;
    cs->nquar = cs->capquar = cs->quar_blamed = 0;
    memset(&cs->quar_index, 0, sizeof(cs->quar_index));
    cs->quar_prev = saved->q;
    cs->nquar_prev = saved->n;
    cs->quar_prev_index = &saved->index;
}

void cs_quarantine_end(struct node_cstate *cs, struct cs_quar_saved *saved, bool applied)
{
    cs_quarantine_said(cs);
    if (applied)
        log_released(cs, saved->q, saved->n);
    cs->quar_prev = NULL;
    cs->nquar_prev = 0;
    cs->quar_prev_index = NULL;
    gv_strmap_free(&saved->index);
    free(saved->q);
}

int cs_apply_store(struct node_cstate *cs, struct node_state_error *err)
{
    struct cs_quar_saved saved;
    const struct cl_entry *bad;
    char reason[CS_REASON_MAX];
    int rv;
    cs_quarantine_restart(cs, &saved);
    for (int run = 0;; run++) {
        rv = try_apply(cs, err, &bad, reason, sizeof(reason));
        if (rv == 0 || bad == NULL || run == QUARANTINE_RUNS ||
            cs_quarantine(cs, bad, reason, NULL) != 0)
            break;
        cs->quar_blamed++;
    }
    cs_quarantine_end(cs, &saved, rv == 0);
    cs->invalid = rv != 0;
    return rv;
}

/* ---- peers' changes ------------------------------------------------------------- */

static uint64_t delay_ms(uint64_t stamp)
{
    uint64_t made = cl_hlc_unix_ms(stamp), now = cl_hlc_wall_ms();
    return stamp == 0 || now < made ? 0 : now - made;
}

/* "14 ms after it was made"; an old change (a node catching up after a
 * restart or a partition) also says how old in words:
 * "201265 ms after it was made (3m 21s: caught up)". The number stays:
 * tests/fault reads it. */
static const char *delay_text(uint64_t ms, char *out, size_t n)
{
    uint64_t sec = ms / 1000;
    int w = snprintf(out, n, "%llu ms after it was made", (unsigned long long)ms);
    if (w < 0 || (size_t)w >= n || ms < 10000)
        return out;
    if (sec < 3600)
        snprintf(out + w, n - (size_t)w, " (%llum %llus: caught up)",
                 (unsigned long long)(sec / 60), (unsigned long long)(sec % 60));
    else if (sec < 86400)
        snprintf(out + w, n - (size_t)w, " (%lluh %llum: caught up)",
                 (unsigned long long)(sec / 3600), (unsigned long long)(sec % 3600 / 60));
    else
        snprintf(out + w, n - (size_t)w, " (%llud %lluh: caught up)",
                 (unsigned long long)(sec / 86400), (unsigned long long)(sec % 86400 / 3600));
    return out;
}

static void log_arrivals(struct node_cstate *cs, const struct cs_arrivals *arr, bool applied,
                         const struct node_state_error *err)
{
    size_t n = arr->n;
    uint64_t oldest = 0;
    for (size_t i = 0; i < n; i++)
        oldest = GV_MAX(oldest, delay_ms(arr->v[i].stamp));
    if (applied && n > 0)
        cs->last_delay_ms = oldest;
    for (size_t i = 0; i < n && i < CS_LOG_EACH_MAX; i++) {
        const struct cs_arrival *a = &arr->v[i];
        char kind[16], delay[96];
        const struct cs_quarantined *q = cs_quarantine_find(cs, a->kind, a->name);
        bool left_out = q != NULL && q->stamp == a->stamp;
        gv_info("config: %s %s/%s from %s, %s%s", applied && !left_out ? "applied" : "stored",
                gv_kind_label(a->kind, kind, sizeof(kind)), a->name,
                a->origin[0] ? a->origin : "a config file",
                delay_text(delay_ms(a->stamp), delay, sizeof(delay)),
                a->deleted ? " (deleted)"
                : left_out ? " (left out: it does not validate)"
                           : "");
    }
    if (n + arr->dropped > CS_LOG_EACH_MAX)
        gv_info("config: ... and %zu more changes", n + arr->dropped - CS_LOG_EACH_MAX);
    if (!applied)
        gv_warn("config: the state does not validate (%s%s%s); serving the last good one until a "
                "change fixes it",
                err->where, err->where[0] ? ": " : "", err->msg);
}

void cs_apply_done(struct node_cstate *cs, int rv, const struct node_state_error *err,
                   struct cs_arrivals *a, uint64_t cost_ms, uint64_t loop_ms)
{
    cs->apply_cost_ms = cost_ms;
    cs->loop_ms_last = loop_ms;
    cs->loop_ms_max = GV_MAX(cs->loop_ms_max, loop_ms);
    cs->remote_applies++;
    uv_update_time(&cs->n->loop);
    cs->applied_at_ms = uv_now(&cs->n->loop);
    if (rv == 0)
        cs->applied_remote += a->n + a->dropped;
    else
        cs->states_rejected++;
    log_arrivals(cs, a, rv == 0, err);
    a->n = a->dropped = 0;
    if (!cs->closing && (cs->arrivals.n > 0 || cs->arrivals.dropped > 0))
        cs_apply_later(cs);
}

static void on_apply_timer(uv_timer_t *t)
{
    struct node_cstate *cs = t->data;
    struct node_state_error err = {0};
    if (cs->build != NULL || (cs->arrivals.n == 0 && cs->arrivals.dropped == 0))
        return; /* a build in flight applies these when done */
    /* Off the loop unless a validation left something out: each apply
     * tries those again, one validation per entry, which is the loop's job
     * (what the view leaves out itself, it checks again each time). */
    if (cs->quar_blamed == 0 && !cs->invalid && cs_build_start(cs) == 0)
        return;
    uint64_t t0 = gv_now_us();
    int rv = cs_apply_store(cs, &err);
    uint64_t ms = (gv_now_us() - t0) / 1000;
    cs_apply_done(cs, rv, &err, &cs->arrivals, ms, ms);
}

/* Adds one arrival to a (counted as dropped beyond 4096). */
static void arrival_add(struct cs_arrivals *arr, const struct cs_arrival *x)
{
    if (arr->n == arr->cap) {
        size_t cap = arr->cap ? arr->cap * 2 : 16;
        struct cs_arrival *v = cap <= 4096 ? realloc(arr->v, cap * sizeof(*v)) : NULL;
        if (v != NULL) {
            arr->v = v;
            arr->cap = cap;
        }
    }
    if (arr->n == arr->cap)
        arr->dropped++;
    else
        arr->v[arr->n++] = *x;
}

static void note_arrival(struct node_cstate *cs, const struct cl_entry *e)
{
    struct cs_arrival a = {.kind = e->kind, .deleted = e->deleted, .stamp = e->stamp};
    cs_copy_str(a.name, sizeof(a.name), e->name);
    cs_copy_str(a.origin, sizeof(a.origin), e->origin);
    arrival_add(&cs->arrivals, &a);
}

void cs_arrivals_requeue(struct node_cstate *cs, struct cs_arrivals *a)
{
    struct cs_arrivals since = cs->arrivals;
    cs->arrivals = *a;
    for (size_t i = 0; i < since.n; i++)
        arrival_add(&cs->arrivals, &since.v[i]);
    cs->arrivals.dropped += since.dropped;
    free(since.v);
    memset(a, 0, sizeof(*a));
}

/* When to apply what arrives now: at the next turn, unless the last apply
 * cost more than the time since it ended; then once that much time has
 * passed (at most APPLY_WAIT_MAX_MS), so the loop keeps at least half its
 * time for probes, health checks and the admin API while a large state
 * streams in, and the applies of a stream add up to a few times one apply
 * of the whole, not one per message. A small change costs well under a
 * millisecond: no wait. */
static uint64_t apply_delay_ms(struct node_cstate *cs)
{
    uint64_t since = uv_now(&cs->n->loop) - cs->applied_at_ms;
    uint64_t wait = cs->apply_cost_ms > since ? cs->apply_cost_ms - since : 0;
    return GV_MIN(wait, APPLY_WAIT_MAX_MS);
}

void cs_apply_later(struct node_cstate *cs)
{
    if (!uv_is_active((uv_handle_t *)&cs->apply_timer))
        uv_timer_start(&cs->apply_timer, on_apply_timer, apply_delay_ms(cs), 0);
}

/* A peer's change won in the store: written with the next batch, and
 * applied on the next turn, so a batch of entries is validated and
 * published once. */
static void on_change(void *arg, const struct cl_entry *e, const char *from)
{
    struct node_cstate *cs = arg;
    (void)from;
    cs->remote_merged++;
    cs_save_remote(cs, e);
    if (gv_kind_by_id(e->kind) == NULL) { /* nothing to apply: just keep it */
        note_unknown_kind(cs, e->kind);
        return;
    }
    note_arrival(cs, e);
    cs_apply_later(cs);
}

/* ---- freed memory --------------------------------------------------------------- */

#define TRIM_AFTER_MS 2000 /* the workers have let go of the old snapshot by then */

/* Publishing a state frees the one before, and a build frees what it
 * parsed; glibc keeps freed memory for later unless asked, so a node that
 * once took 10,000 objects in one go would hold that peak for good (a third
 * of its RSS). So, at most every 2 s and 2 s after a publish, it is asked to
 * give back the free pages of its arenas (malloc_trim; the workers' arenas
 * each for an instant). On the control loop, never on a worker's. */
static void on_trim_timer(uv_timer_t *t)
{
#ifdef __GLIBC__
    struct node_cstate *cs = t->data;
    uint64_t t0 = gv_now_us();
    int gave = malloc_trim(0);
    cs->trims++;
    gv_debug("config: gave freed memory back (%s) in %llu us", gave ? "some" : "none",
             (unsigned long long)(gv_now_us() - t0));
#else
    (void)t;
#endif
}

void cs_trim_later(struct node_cstate *cs)
{
    if (cs->trim_timer.data != NULL && !uv_is_active((uv_handle_t *)&cs->trim_timer))
        uv_timer_start(&cs->trim_timer, on_trim_timer, TRIM_AFTER_MS, 0);
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
        cs_save_image_later(cs);
    }
}

/* ---- reading ---------------------------------------------------------------- */

/* What GET /config/KIND/NAME shows for an object left out: its stored
 * value and why it is left out. */
static json_t *quarantined_json(const struct node_cstate *cs, int kind, const char *name)
{
    const struct cs_quarantined *q = cs_quarantine_find(cs, kind, name);
    const struct cl_entry *e = q ? cl_store_get(cs->store, (uint8_t)kind, name) : NULL;
    if (e == NULL || e->stamp != q->stamp)
        return NULL;
    json_t *stored = json_loadb((const char *)e->value, e->value_len, JSON_DECODE_ANY, NULL);
    if (stored == NULL) /* as text when it is text */
        stored = json_stringn((const char *)e->value, e->value_len);
    return json_pack("{s:s,s:b,s:s,s:o*,s:s}", "name", name, "invalid", 1, "reason", q->reason,
                     "stored", stored, "origin", e->origin[0] ? e->origin : "a config file");
}

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
    json_t *arr = json_object_get(all, cs_plural(kind));
    if (name == NULL) {
        out = json_incref(arr);
    } else {
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v)
        {
            const char *nm = cs_element_name(kind, v);
            if (nm != NULL && strcmp(nm, name) == 0) {
                out = json_incref(kind == GV_KIND_PLUGINS ? json_object_get(v, nm) : v);
                break;
            }
        }
        if (out == NULL)
            out = quarantined_json(cs, kind, name);
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

#define LEFT_OUT_LISTED 100 /* /status lists this many objects left out; "quarantined" counts */

static json_t *quarantine_json(const struct node_cstate *cs)
{
    json_t *list = json_array();
    char kind[16];
    for (size_t i = 0; list != NULL && i < cs->nquar && i < LEFT_OUT_LISTED; i++)
        json_array_append_new(list,
                              json_pack("{s:s,s:s,s:s}", "kind",
                                        gv_kind_label(cs->quar[i].kind, kind, sizeof(kind)), "name",
                                        cs->quar[i].name, "reason", cs->quar[i].reason));
    return list;
}

json_t *node_cstate_stats_json(const struct node_cstate *cs)
{
    const struct cl_replica_stats *r = cs->replica ? cl_replica_stats(cs->replica) : NULL;
    json_t *j = json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:b,s:I,s:I,s:I,s:I,s:I}", "objects",
        (json_int_t)cl_store_count(cs->store), "applied_local", (json_int_t)cs->applied_local,
        "applied_remote", (json_int_t)cs->applied_remote, "states_rejected",
        (json_int_t)cs->states_rejected, "save_errors", (json_int_t)cs->save_errors, "invalid",
        cs->invalid, "published", (json_int_t)(r ? r->published : 0), "received",
        (json_int_t)(r ? r->received : 0), "entries_pushed",
        (json_int_t)(r ? r->entries_pushed : 0), "malformed", (json_int_t)(r ? r->malformed : 0),
        "unknown_kind_entries", (json_int_t)unknown_kind_entries(cs));
    if (j == NULL)
        return NULL;
    json_object_set_new(j, "quarantined", json_integer((json_int_t)cs->nquar));
    json_object_set_new(j, "left_out", quarantine_json(cs));
    json_object_set_new(j, "refused_unsaved", json_integer((json_int_t)cs->refused_unsaved));
    json_object_set_new(j, "compactions", json_integer((json_int_t)cs->compactions));
    json_object_set_new(j, "last_apply_delay_ms", json_integer((json_int_t)cs->last_delay_ms));
    json_object_set_new(j, "remote_applies", json_integer((json_int_t)cs->remote_applies));
    json_object_set_new(j, "routes_compiled", json_integer((json_int_t)cs->routes_compiled));
    json_object_set_new(j, "routes_reused", json_integer((json_int_t)cs->routes_reused));
    json_object_set_new(j, "routes_parsed_off_loop",
                        json_integer((json_int_t)cs->routes_parsed_off_loop));
    json_object_set_new(j, "memory_trims", json_integer((json_int_t)cs->trims));
    json_object_set_new(j, "last_apply_ms", json_integer((json_int_t)cs->apply_cost_ms));
    json_object_set_new(j, "last_apply_loop_ms", json_integer((json_int_t)cs->loop_ms_last));
    json_object_set_new(j, "apply_loop_max_ms", json_integer((json_int_t)cs->loop_ms_max));
    json_object_set_new(j, "applies_off_loop", json_integer((json_int_t)cs->builds));
    json_object_set_new(j, "applies_superseded", json_integer((json_int_t)cs->builds_dropped));
    json_object_set_new(j, "log_bytes",
                        json_integer(cs->log ? (json_int_t)cl_statelog_log_bytes(cs->log) : 0));
    json_object_set_new(j, "image_bytes",
                        json_integer(cs->log ? (json_int_t)cl_statelog_image_bytes(cs->log) : 0));
    if (r != NULL)
        json_object_set_new(
            j, "push",
            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "direct_sent", (json_int_t)r->direct_sent,
                      "direct_failed", (json_int_t)r->direct_failed, "direct_skipped",
                      (json_int_t)r->direct_skipped, "streams", (json_int_t)r->streams,
                      "streams_done", (json_int_t)r->streams_done, "streams_lost",
                      (json_int_t)r->streams_lost));
    return j;
}

/* ---- life ------------------------------------------------------------------- */

/* The config file's objects, stamp 0, ranked in file order. Each replaces
 * a seed of the same object saved earlier (this file's or another's); the
 * seeds of objects this file does not name stay, so a node restarted alone
 * serves what peers' files gave it. */
static int seed(struct node_cstate *cs)
{
    json_t *canon = node_state_to_json_min(&cs->n->cfg.state);
    int rv = canon ? 0 : GV_ENOMEM;
    for (int k = 0; rv == 0 && k < GV_KIND_COUNT; k++) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(canon, cs_plural(k)), i, v)
        {
            const char *nm = cs_element_name(k, v);
            char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
            struct cl_entry e = {.kind = (uint8_t)k, .rank = (uint32_t)i};
            if (nm == NULL || text == NULL) {
                free(text);
                rv = GV_ENOMEM;
                break;
            }
            cs_copy_str(e.name, sizeof(e.name), nm);
            e.value = (const uint8_t *)text;
            e.value_len = strlen(text);
            cl_store_drop_seed(cs->store, (uint8_t)k, nm);
            if (cl_store_merge(cs->store, &e) < 0)
                gv_warn("config: %s[%zu] cannot be seeded (name or size over a limit)",
                        cs_plural(k), i);
            free(text);
        }
    }
    json_decref(canon);
    return rv;
}

/* The key the files in data_dir are sealed with: derived from the cluster
 * key when there is one. */
static int file_key(const struct node *n, uint8_t out[32], bool *keyed)
{
    uint8_t key[CL_KEY_LEN];
    char err[256];
    *keyed = n->cfg.node.cluster_key_file != NULL;
    if (!*keyed)
        return 0;
    if (cl_key_load_file(n->cfg.node.cluster_key_file, key, err, sizeof(err)) != 0) {
        gv_error("config: cluster key %s: %s", n->cfg.node.cluster_key_file, err);
        return GV_EINVAL;
    }
    cl_statelog_file_key(key, out);
    OPENSSL_cleanse(key, sizeof(key));
    return 0;
}

/* Moves a damaged image aside (for a human; the peers have the state) and
 * loads the log alone. */
static int load_without_image(struct node_cstate *cs, const char *dir, uint64_t *clock,
                              size_t *records, size_t *cut)
{
    char path[4200], aside[4300];
    snprintf(path, sizeof(path), "%s/cluster-state.gvst", dir);
    snprintf(aside, sizeof(aside), "%s.damaged", path);
    gv_error("config: %s is damaged or not signed with this cluster's key; moved it to %s and "
             "starting from the log, the config file and the peers",
             path, aside);
    rename(path, aside);
    cl_store_free(cs->store);
    int rv = cl_store_new(&cs->store);
    return rv ? rv : cl_statelog_load(cs->log, cs->store, clock, records, cut);
}

static int load(struct node_cstate *cs, const char *dir)
{
    uint64_t clock = 0;
    size_t records = 0, cut = 0;
    int rv = cl_statelog_load(cs->log, cs->store, &clock, &records, &cut);
    if (rv == GV_EPROTO)
        rv = load_without_image(cs, dir, &clock, &records, &cut);
    if (rv != 0) {
        gv_error("config: cannot read the state in %s: %s", dir, gv_strerror(rv));
        return rv;
    }
    if (cut > 0)
        gv_warn("config: cut %zu bytes of a torn or damaged tail off the state log in %s", cut,
                dir);
    if (cl_statelog_unsigned_image(cs->log)) {
        gv_warn("config: took %s's unsigned state image (written by 0.1) once; signing it now",
                dir);
        cs->image_stale = true;
    }
    cl_hlc_observe(&cs->clock, clock);
    cl_hlc_observe(&cs->clock, cl_store_max_stamp(cs->store));
    gv_info("config: loaded %zu objects (%zu log records) from %s", cl_store_count(cs->store),
            records, dir);
    cl_store_foreach(cs->store, note_if_unknown, cs);
    return 0;
}

static int open_disk(struct node_cstate *cs)
{
    const char *dir = cs->n->cfg.node.data_dir;
    uint8_t key[32];
    bool keyed;
    int rv;
    if (dir == NULL) {
        gv_warn("config: no node.data_dir: changes made through the API are kept by the cluster "
                "but not on this node's disk");
        return cs_save_open(cs, NULL, NULL);
    }
    if ((rv = gv_mkdirs(dir)) != 0) {
        gv_error("config: cannot create data_dir %s: %s", dir, gv_strerror(rv));
        return GV_EIO;
    }
    if ((rv = file_key(cs->n, key, &keyed)) != 0)
        return GV_EIO;
    rv = cs_save_open(cs, dir, keyed ? key : NULL);
    OPENSSL_cleanse(key, sizeof(key));
    if (rv != 0) {
        gv_error("config: cannot open the state log in %s: %s", dir, gv_strerror(rv));
        return GV_EIO;
    }
    return load(cs, dir) != 0 ? GV_EIO : 0;
}

/* Publishes the store's state; when nothing of it validates, the config
 * file's alone. */
static int first_apply(struct node_cstate *cs)
{
    struct node_state_error err = {0};
    struct node_state st;
    if (cs_apply_store(cs, &err) == 0)
        return 0;
    gv_error("config: the saved state does not validate (%s: %s); serving the config file's "
             "state until a change fixes it",
             err.where, err.msg);
    json_t *canon = node_state_to_json(&cs->n->cfg.state);
    int rv = canon && node_state_from_json(canon, &st, &err) == 0
                 ? node_publish(cs->n, &st, 0, NULL)
                 : GV_EINVAL;
    json_decref(canon);
    return rv;
}

int node_cstate_open(struct node *n, struct node_cstate **out)
{
    struct node_cstate *cs = calloc(1, sizeof(*cs));
    int rv;
    if (cs == NULL)
        return GV_ENOMEM;
    cs->n = n;
    cs->tombstone_ttl_ms = 30ULL * 24 * 3600 * 1000;
    if ((rv = cl_store_new(&cs->store)) != 0 || (rv = cs_jcache_new(&cs->jcache)) != 0 ||
        (rv = open_disk(cs)) != 0 || (rv = seed(cs)) != 0 || (rv = first_apply(cs)) != 0)
        goto fail;
    uv_timer_init(&n->loop, &cs->apply_timer);
    uv_timer_init(&n->loop, &cs->gc_timer);
    uv_timer_init(&n->loop, &cs->retry_timer);
    uv_timer_init(&n->loop, &cs->trim_timer);
    cs->apply_timer.data = cs->gc_timer.data = cs->retry_timer.data = cs->trim_timer.data = cs;
    cs->open_handles = 4;
    uv_timer_start(&cs->gc_timer, on_gc_timer, GC_INTERVAL_MS, GC_INTERVAL_MS);
    uv_unref((uv_handle_t *)&cs->gc_timer);
    uv_unref((uv_handle_t *)&cs->trim_timer);
    cs_trim_later(cs); /* what loading and the first build freed */
    if (cs->image_stale)
        cs_save_image_later(cs);
    gv_info("config: %zu objects, version %llu, digest %.12s", cl_store_count(cs->store),
            (unsigned long long)n->config_version, n->config_digest);
    *out = cs;
    return 0;
fail:
    cs_save_close(cs);
    cs_jcache_free(cs->jcache);
    cl_store_free(cs->store);
    gv_strmap_free(&cs->quar_index);
    free(cs->quar);
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
    cs_save_close(cs);
    cs_jcache_free(cs->jcache);
    cl_store_free(cs->store);
    free(cs->arrivals.v);
    gv_strmap_free(&cs->quar_index);
    free(cs->quar);
    free(cs);
    if (done != NULL)
        done(arg);
}

void cs_maybe_finish_close(struct node_cstate *cs)
{
    if (cs->closing && cs->open_handles == 0 && cs->replica == NULL && !cs_save_busy(cs) &&
        cs->build == NULL)
        free_cs(cs);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct node_cstate *cs = h->data;
    cs->open_handles--;
    cs_maybe_finish_close(cs);
}

static void on_replica_closed(void *arg)
{
    struct node_cstate *cs = arg;
    cs->replica = NULL;
    cs_maybe_finish_close(cs);
}

void node_cstate_close(struct node_cstate *cs, void (*done)(void *arg), void *arg)
{
    cs->closing = true;
    cs->done = done;
    cs->done_arg = arg;
    /* changes in flight are written and answered; peers' records waiting
     * are written if the disk lets us */
    cs->backoff = false;
    uv_timer_stop(&cs->retry_timer);
    cs_build_cancel(cs);
    uv_close((uv_handle_t *)&cs->apply_timer, on_handle_closed);
    uv_close((uv_handle_t *)&cs->gc_timer, on_handle_closed);
    uv_close((uv_handle_t *)&cs->retry_timer, on_handle_closed);
    uv_close((uv_handle_t *)&cs->trim_timer, on_handle_closed);
    if (cs->replica != NULL)
        cl_replica_close(cs->replica, on_replica_closed, cs);
    cs_save_flush(cs);
}
