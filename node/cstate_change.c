/* cstate_change.c - changes from the admin API: each is staged on the view
 * (the store with the changes still on their way to disk), validated as the
 * whole state it would make, and queued for the disk as a pending change;
 * cstate_save.c stores, spreads, applies and answers it once written. */
#include "cluster/hlc.h"
#include "common/err.h"
#include "common/kinds.h"
#include "common/util.h"
#include "node/cstate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- pending changes ------------------------------------------------------------ */

static struct cs_pending *pending_new(size_t n, node_cstate_done_fn done, void *arg)
{
    struct cs_pending *p = calloc(1, sizeof(*p));
    if (p != NULL && n > 0 && (p->entries = calloc(n, sizeof(*p->entries))) == NULL) {
        free(p);
        p = NULL;
    }
    if (p != NULL) {
        p->done = done;
        p->arg = arg;
    }
    return p;
}

/* Adds an entry for (kind, name) stamped now; value (owned from here on)
 * NULL for a tombstone. */
static struct cl_entry *pending_add(struct node_cstate *cs, struct cs_pending *p, int kind,
                                    const char *name, uint32_t rank, char *value)
{
    struct cl_entry *e = &p->entries[p->n++];
    memset(e, 0, sizeof(*e));
    e->kind = (uint8_t)kind;
    e->stamp = cl_hlc_now(&cs->clock, cl_hlc_wall_ms());
    e->rank = rank;
    e->deleted = value == NULL;
    e->value = (const uint8_t *)value;
    e->value_len = value ? strlen(value) : 0;
    cs_copy_str(e->name, sizeof(e->name), name);
    cs_copy_str(e->origin, sizeof(e->origin), cs_self_name(cs));
    return e;
}

/* Queues p with the validated state st (moved into p). */
static void submit(struct node_cstate *cs, struct cs_pending *p, struct node_state *st)
{
    p->st = *st;
    p->has_st = true;
    p->remote_seen = cs->remote_merged;
    cs_save_submit(cs, p);
}

/* Nothing to write, but the answer comes after the call returned and in
 * order with earlier changes: an empty pending change. */
static int answer_in_turn(struct node_cstate *cs, node_cstate_done_fn done, void *arg)
{
    struct cs_pending *p = pending_new(0, done, arg);
    if (p == NULL)
        return GV_ENOMEM;
    cs_save_submit(cs, p);
    return 0;
}

/* ---- staging -------------------------------------------------------------------- */

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
    cs_copy_str(rest, sizeof(rest), p + used);
    if (k == kind && idx == self) {
        cs_copy_str(p, len, rest[0] == '.' ? rest + 1 : rest);
        return;
    }
    const char *name =
        cs_element_name(k, json_array_get(json_object_get(root, kname), (size_t)idx));
    if (name != NULL) {
        snprintf(out, sizeof(out), "%s[%.128s]%s", kname, name, rest);
        cs_copy_str(p, len, out);
    }
}

/* Validates root (the state a change would make); on failure rewrites the
 * error's paths relative to the changed object at kind[self]. */
static int validate(const json_t *root, int kind, long self, struct cs_reuse *ru,
                    struct node_state *st, struct node_state_error *err)
{
    int rv = node_state_from_json_reuse(root, ru ? &ru->api : NULL, st, err);
    if (rv == 0 && (rv = node_state_check_files(st, err)) != 0)
        node_state_free(st);
    if (rv != 0 && kind >= 0) {
        rewrite_path(err->path, sizeof(err->path), root, kind, self);
        rewrite_path(err->where, sizeof(err->where), root, kind, self);
    }
    return rv;
}

/* The view as JSON, with *index set to name's position in kind's list (-1
 * when absent) and *at to where an object of rank would go; the routes it
 * holds compiled in *ru (cs_reuse_free after validating). */
static json_t *stage_root(struct node_cstate *cs, int kind, const char *name, uint32_t rank,
                          long *index, long *at, struct cs_reuse *ru)
{
    const struct cl_entry **lists[GV_KIND_COUNT];
    int counts[GV_KIND_COUNT];
    json_t *root = cs_materialize(cs, true, lists, counts, ru, false);
    cs_quarantine_said(cs);
    if (root == NULL)
        return NULL;
    const struct cl_entry **list = lists[kind];
    *index = -1;
    *at = counts[kind];
    for (int i = 0; i < counts[kind]; i++) {
        if (strcmp(list[i]->name, name) == 0) {
            *index = *at = i;
            break;
        }
        if (*at == counts[kind] &&
            (list[i]->rank > rank || (list[i]->rank == rank && strcmp(list[i]->name, name) > 0)))
            *at = i;
    }
    cs_lists_free(lists);
    return root;
}

static int check_name(int kind, const char *name, struct node_state_error *err)
{
    char kinds[128], msg[160];
    if (kind < 0 || gv_kind_by_id((unsigned)kind) == NULL) {
        snprintf(msg, sizeof(msg), "unknown kind (%s)", gv_kinds_text(kinds, sizeof(kinds), ", "));
        return cs_fail(err, "", msg);
    }
    size_t n = strlen(name);
    if (n == 0 || n > CL_STORE_MAX_NAME)
        return cs_fail(err, "name", "name must be 1..128 characters");
    return 0;
}

static int too_large(const char *value, const char *where, struct node_state_error *err)
{
    char msg[128];
    if (strlen(value) <= CL_STORE_MAX_VALUE)
        return 0;
    snprintf(msg, sizeof(msg), "object is %zu bytes; the limit is %d", strlen(value),
             CL_STORE_MAX_VALUE);
    return cs_fail(err, where, msg);
}

/* ---- PUT /config/KIND/NAME ------------------------------------------------------ */

/* The element obj becomes in its kind's list: {NAME: obj} for a plugin,
 * obj with its name for the others (a name in the body must be the URL's). */
static int put_element(int kind, const char *name, const json_t *obj, json_t **out,
                       struct node_state_error *err)
{
    if (!json_is_object(obj))
        return cs_fail(err, "", "must be a JSON object");
    if (kind == GV_KIND_PLUGINS) {
        *out = json_pack("{s:O}", name, (json_t *)obj);
        return *out ? 0 : GV_ENOMEM;
    }
    const json_t *given = json_object_get(obj, "name");
    if (given != NULL && (!json_is_string(given) || strcmp(json_string_value(given), name) != 0))
        return cs_fail(err, "name", "must be the name in the URL");
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
    struct cs_reuse ru;
    json_t *root = stage_root(cs, kind, name, rank, &present, at, &ru);
    if (root == NULL) {
        json_decref(elem);
        return GV_ENOMEM;
    }
    json_t *arr = json_object_get(root, cs_plural(kind));
    if (present >= 0)
        json_array_set_new(arr, (size_t)present, elem);
    else
        json_array_insert_new(arr, (size_t)*at, elem);
    int rv = validate(root, kind, *at, &ru, st, err);
    json_decref(root);
    cs_reuse_free(&ru);
    return rv;
}

/* The object at index at of its kind in st: as the client sees it (every
 * default, *shown) and as the store keeps it (minimal form, *value). */
static int object_forms(const struct node_state *st, int kind, long at, const char *name,
                        json_t **shown, char **value)
{
    json_t *cobj = node_state_object_json(st, kind, (size_t)at, false);
    json_t *mobj = node_state_object_json(st, kind, (size_t)at, true);
    *value = cobj && mobj ? json_dumps(mobj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    *shown =
        *value ? json_incref(kind == GV_KIND_PLUGINS ? json_object_get(cobj, name) : cobj) : NULL;
    json_decref(cobj);
    json_decref(mobj);
    return *value ? 0 : GV_ENOMEM;
}

/* Queues the put of value (owned from here on) with its state st. */
static int queue_put(struct node_cstate *cs, int kind, const char *name, uint32_t rank, char *value,
                     bool exists, struct node_state *st, node_cstate_done_fn done, void *arg)
{
    struct cs_pending *p = pending_new(1, done, arg);
    if (p == NULL) {
        free(value);
        node_state_free(st);
        return GV_ENOMEM;
    }
    pending_add(cs, p, kind, name, rank, value);
    snprintf(p->what, sizeof(p->what), "%s %s/%.64s", exists ? "updated" : "created",
             cs_plural(kind), name);
    submit(cs, p, st);
    return 0;
}

/* What a put of obj would do: the validated state (*st), the object as
 * shown (*stored) and stored (*value), whether it exists now, and whether
 * the same object is held (*same). 0 or an error (nothing to free then). */
struct put_plan {
    struct node_state st;
    char *value;
    uint32_t rank;
    bool exists, same;
};

static int plan_put(struct node_cstate *cs, int kind, const char *name, const json_t *obj,
                    json_t **stored, struct put_plan *pl, struct node_state_error *err)
{
    json_t *elem = NULL;
    long at;
    int rv;
    memset(err, 0, sizeof(*err));
    memset(pl, 0, sizeof(*pl));
    *stored = NULL;
    if ((rv = check_name(kind, name, err)) != 0 ||
        (rv = put_element(kind, name, obj, &elem, err)) != 0)
        return rv;
    const struct cl_entry *cur = cs_view_get(cs, kind, name);
    pl->exists = cur != NULL && !cur->deleted;
    bool usable = pl->exists && !cs_is_quarantined(cs, cur);
    pl->rank = pl->exists ? cur->rank : CL_RANK_NONE;
    if ((rv = stage_put(cs, kind, name, elem, pl->rank, &pl->st, &at, err)) != 0)
        return rv;
    if ((rv = object_forms(&pl->st, kind, at, name, stored, &pl->value)) != 0 ||
        (rv = too_large(pl->value, "", err)) != 0) {
        node_state_free(&pl->st);
        free(pl->value);
        json_decref(*stored);
        *stored = NULL;
        return rv;
    }
    pl->same = usable && cur->value_len == strlen(pl->value) &&
               memcmp(cur->value, pl->value, cur->value_len) == 0;
    return 0;
}

int node_cstate_put(struct node_cstate *cs, int kind, const char *name, const json_t *obj,
                    json_t **stored, bool *created, struct node_state_error *err,
                    node_cstate_done_fn done, void *arg)
{
    struct put_plan pl;
    *created = false;
    int rv = plan_put(cs, kind, name, obj, stored, &pl, err);
    if (rv != 0)
        return rv;
    if (pl.same) {
        node_state_free(&pl.st);
        free(pl.value);
        if ((rv = answer_in_turn(cs, done, arg)) != 0) {
            json_decref(*stored);
            *stored = NULL;
            return rv;
        }
        return 1; /* the same object is held: nothing to write */
    }
    *created = !pl.exists;
    return queue_put(cs, kind, name, pl.rank, pl.value, pl.exists, &pl.st, done, arg);
}

int node_cstate_check_put(struct node_cstate *cs, int kind, const char *name, const json_t *obj,
                          json_t **stored, const char **outcome, struct node_state_error *err)
{
    struct put_plan pl;
    int rv = plan_put(cs, kind, name, obj, stored, &pl, err);
    if (rv != 0)
        return rv;
    *outcome = pl.same ? "unchanged" : pl.exists ? "configured" : "created";
    node_state_free(&pl.st);
    free(pl.value);
    return 0;
}

/* ---- DELETE /config/KIND/NAME ------------------------------------------------------ */

int node_cstate_delete(struct node_cstate *cs, int kind, const char *name,
                       struct node_state_error *err, node_cstate_done_fn done, void *arg)
{
    struct node_state st;
    long present, at;
    int rv;
    memset(err, 0, sizeof(*err));
    if ((rv = check_name(kind, name, err)) != 0)
        return rv;
    const struct cl_entry *cur = cs_view_get(cs, kind, name);
    if (cur == NULL || cur->deleted)
        return GV_ENOENT;
    uint32_t rank = cur->rank;
    struct cs_reuse ru;
    json_t *root = stage_root(cs, kind, name, rank, &present, &at, &ru);
    if (root == NULL)
        return GV_ENOMEM;
    if (present >= 0) /* absent: quarantined, not part of the state */
        json_array_remove(json_object_get(root, cs_plural(kind)), (size_t)present);
    rv = validate(root, kind, -1, &ru, &st, err);
    cs_reuse_free(&ru);
    if (rv != 0) {
        /* another object still needs this one: say which, at its path */
        char msg[sizeof(err->msg)];
        snprintf(msg, sizeof(msg), "%s/%s is still needed: %.128s: %.96s", cs_plural(kind), name,
                 err->where, err->msg);
        cs_copy_str(err->msg, sizeof(err->msg), msg);
        json_decref(root);
        return rv;
    }
    json_decref(root);
    struct cs_pending *p = pending_new(1, done, arg);
    if (p == NULL) {
        node_state_free(&st);
        return GV_ENOMEM;
    }
    pending_add(cs, p, kind, name, rank, NULL);
    snprintf(p->what, sizeof(p->what), "deleted %s/%.64s", cs_plural(kind), name);
    submit(cs, p, &st);
    return 0;
}

/* ---- PUT /config ----------------------------------------------------------------------- */

/* What PUT /config writes: tombstones for what the new state no longer
 * names, and an entry per object that is new or changed, with the changes
 * listed for the answer. */
struct replace_plan {
    struct cs_pending *p;
    json_t *created, *updated, *deleted;
};

static void plan_free(struct replace_plan *p)
{
    cs_pending_free(p->p);
    json_decref(p->created);
    json_decref(p->updated);
    json_decref(p->deleted);
}

static bool names(const json_t *canon, int kind, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(canon, cs_plural(kind)), i, v)
    {
        const char *nm = cs_element_name(kind, v);
        if (nm != NULL && strcmp(nm, name) == 0)
            return true;
    }
    return false;
}

/* Tombstones for every live object of the view that canon does not name
 * (kinds this version does not know are left alone). */
static int plan_tombstones(struct node_cstate *cs, const json_t *canon, struct replace_plan *p)
{
    char label[200];
    for (int k = 0; k < GV_KIND_COUNT; k++) {
        const struct cl_entry **list;
        int n = cs_view_list(cs, k, true, &list);
        if (n < 0)
            return n;
        for (int i = 0; i < n; i++) {
            if (names(canon, k, list[i]->name))
                continue;
            pending_add(cs, p->p, k, list[i]->name, list[i]->rank, NULL);
            snprintf(label, sizeof(label), "%s/%s", cs_plural(k), list[i]->name);
            if (json_array_append_new(p->deleted, json_string(label)) != 0) {
                free(list);
                return GV_ENOMEM;
            }
        }
        free(list);
    }
    /* and what is held in quarantine (not in the view, but in the store) */
    for (size_t i = 0; i < cs->nquar; i++) {
        const struct cs_quarantined *q = &cs->quar[i];
        const struct cl_entry *cur = cs_view_get(cs, q->kind, q->name);
        if (cur == NULL || cur->deleted || !cs_is_quarantined(cs, cur) ||
            names(canon, q->kind, q->name))
            continue;
        pending_add(cs, p->p, q->kind, q->name, cur->rank, NULL);
        snprintf(label, sizeof(label), "%s/%s", cs_plural(q->kind), q->name);
        if (json_array_append_new(p->deleted, json_string(label)) != 0)
            return GV_ENOMEM;
    }
    return 0;
}

/* An entry for object v (index i of kind k) unless the view holds it as is. */
static int plan_object(struct node_cstate *cs, int k, size_t i, const json_t *v,
                       struct replace_plan *p, struct node_state_error *err)
{
    char label[200];
    const char *nm = cs_element_name(k, v);
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    if (nm == NULL || text == NULL) {
        free(text);
        return GV_ENOMEM;
    }
    snprintf(label, sizeof(label), "%s[%zu]", cs_plural(k), i);
    int rv = too_large(text, label, err);
    const struct cl_entry *cur = cs_view_get(cs, k, nm);
    bool exists = cur != NULL && !cur->deleted && !cs_is_quarantined(cs, cur);
    if (rv != 0 || (exists && cur->rank == i && cur->value_len == strlen(text) &&
                    memcmp(cur->value, text, cur->value_len) == 0)) {
        free(text);
        return rv;
    }
    pending_add(cs, p->p, k, nm, (uint32_t)i, text);
    snprintf(label, sizeof(label), "%s/%s", cs_plural(k), nm);
    return json_array_append_new(exists ? p->updated : p->created, json_string(label)) == 0
               ? 0
               : GV_ENOMEM;
}

static int plan_replace(struct node_cstate *cs, const json_t *canon, struct replace_plan *p,
                        struct node_state_error *err, node_cstate_done_fn done, void *arg)
{
    size_t total = cl_store_count(cs->store) + 1;
    for (int k = 0; k < GV_KIND_COUNT; k++)
        total += json_array_size(json_object_get(canon, cs_plural(k)));
    for (const struct cs_pending *q = cs->inflight; q != NULL; q = q->next)
        total += q->n;
    for (const struct cs_pending *q = cs->queued; q != NULL; q = q->next)
        total += q->n;
    p->p = pending_new(total, done, arg);
    p->created = json_array();
    p->updated = json_array();
    p->deleted = json_array();
    if (p->p == NULL || p->created == NULL || p->updated == NULL || p->deleted == NULL)
        return GV_ENOMEM;
    /* tombstones first: everything held that the new state does not name */
    int rv = plan_tombstones(cs, canon, p);
    for (int k = 0; k < GV_KIND_COUNT && rv == 0; k++) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(canon, cs_plural(k)), i, v)
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
        return cs_fail(err, "", "must be a JSON object");
    if ((rv = validate(state, -1, -1, NULL, &st, err)) != 0)
        return rv;
    json_t *canon = node_state_to_json_min(&st); /* what is stored */
    rv = canon ? plan_replace(cs, canon, &p, err, done, arg) : GV_ENOMEM;
    json_decref(canon);
    if (rv == 0)
        *changes = json_pack("{s:O,s:O,s:O}", "created", p.created, "updated", p.updated, "deleted",
                             p.deleted);
    if (rv == 0 && *changes == NULL)
        rv = GV_ENOMEM;
    if (rv != 0) {
        node_state_free(&st);
        plan_free(&p);
        return rv;
    }
    snprintf(p.p->what, sizeof(p.p->what), "replaced the whole state (%zu changes)", p.p->n);
    if (p.p->n == 0) {
        node_state_free(&st);
        cs_save_submit(cs, p.p); /* nothing to write: answered in turn */
    } else {
        submit(cs, p.p, &st);
    }
    p.p = NULL;
    plan_free(&p);
    return 0;
}
