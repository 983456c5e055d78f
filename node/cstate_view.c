/* cstate_view.c - the store as the validator sees it: its live entries, with
 * the local changes on their way to disk over them (for staging the next
 * change), less the versions in quarantine; and that view as the JSON
 * node_state_from_json takes. */
#include "common/err.h"
#include "common/kinds.h"
#include "common/log.h"
#include "common/util.h"
#include "cluster/hlc.h"
#include "node/cstate_int.h"
#include "node/cstate_jcache.h"

#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUARANTINE_MAX 65536 /* beyond, an apply fails: out of memory */

/* ---- pending changes over the store ------------------------------------------ */

static const struct cl_entry *latest_in(const struct cs_pending *p, int kind, const char *name,
                                        const struct cl_entry *found)
{
    for (; p != NULL; p = p->next)
        for (size_t i = 0; i < p->n; i++)
            if (p->entries[i].kind == kind && strcmp(p->entries[i].name, name) == 0)
                found = &p->entries[i];
    return found;
}

/* The last pending version of (kind, name): the batch being written comes
 * before the changes queued behind it. */
static const struct cl_entry *pending_get(const struct node_cstate *cs, int kind, const char *name)
{
    return latest_in(cs->queued, kind, name, latest_in(cs->inflight, kind, name, NULL));
}

const struct cl_entry *cs_view_get(const struct node_cstate *cs, int kind, const char *name)
{
    const struct cl_entry *e = pending_get(cs, kind, name);
    return e ? e : cl_store_get(cs->store, (uint8_t)kind, name);
}

static size_t pending_entries(const struct node_cstate *cs)
{
    size_t n = 0;
    for (const struct cs_pending *p = cs->inflight; p != NULL; p = p->next)
        n += p->n;
    for (const struct cs_pending *p = cs->queued; p != NULL; p = p->next)
        n += p->n;
    return n;
}

/* Adds to v the live pending objects of kind (each name once: its last
 * version); returns the new count. */
static int add_pending(const struct node_cstate *cs, const struct cs_pending *p, int kind,
                       const struct cl_entry **v, int m)
{
    for (; p != NULL; p = p->next)
        for (size_t i = 0; i < p->n; i++) {
            const struct cl_entry *e = &p->entries[i];
            if (e->kind == kind && !e->deleted && pending_get(cs, kind, e->name) == e)
                v[m++] = e;
        }
    return m;
}

static int cmp_order(const void *a, const void *b)
{
    const struct cl_entry *x = *(const struct cl_entry *const *)a;
    const struct cl_entry *y = *(const struct cl_entry *const *)b;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return strcmp(x->name, y->name);
}

int cs_view_list(const struct node_cstate *cs, int kind, bool with_pending,
                 const struct cl_entry ***out)
{
    const struct cl_entry **base;
    int n = cl_store_list(cs->store, (uint8_t)kind, &base);
    if (n < 0)
        return n;
    size_t extra = with_pending ? pending_entries(cs) : 0;
    const struct cl_entry **v = malloc(((size_t)n + extra + 1) * sizeof(*v));
    if (v == NULL) {
        free(base);
        return GV_ENOMEM;
    }
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!(with_pending && pending_get(cs, kind, base[i]->name) != NULL) &&
            !cs_is_quarantined(cs, base[i]))
            v[m++] = base[i];
    free(base);
    if (with_pending) {
        m = add_pending(cs, cs->inflight, kind, v, m);
        m = add_pending(cs, cs->queued, kind, v, m);
        qsort(v, (size_t)m, sizeof(*v), cmp_order);
    }
    *out = v;
    return m;
}

/* ---- quarantine ------------------------------------------------------------- */

static size_t quar_key(char *out, int kind, const char *name)
{
    out[0] = (char)(kind + 1);
    cs_copy_str(out + 1, CL_STORE_MAX_NAME + 1, name);
    return 1 + strlen(out + 1);
}

static const struct cs_quarantined *
find_in(const struct cs_quarantined *q, const struct gv_strmap *index, int kind, const char *name)
{
    char key[CL_STORE_MAX_NAME + 2];
    if (q == NULL || index == NULL)
        return NULL;
    long i = gv_strmap_get(index, key, quar_key(key, kind, name));
    return i < 0 ? NULL : &q[i];
}

const struct cs_quarantined *cs_quarantine_find(const struct node_cstate *cs, int kind,
                                                const char *name)
{
    return find_in(cs->quar, &cs->quar_index, kind, name);
}

bool cs_is_quarantined(const struct node_cstate *cs, const struct cl_entry *e)
{
    const struct cs_quarantined *q = cs_quarantine_find(cs, e->kind, e->name);
    return q != NULL && q->stamp == e->stamp;
}

/* The index of quar[0..n) (keys live in the entries: built anew when the
 * array moves). */
static int index_quarantine(struct node_cstate *cs)
{
    gv_strmap_free(&cs->quar_index);
    for (size_t i = 0; i < cs->nquar; i++) {
        const struct cs_quarantined *q = &cs->quar[i];
        if (gv_strmap_put(&cs->quar_index, q->key, 1 + strlen(q->key + 1), (uint32_t)i) != 0)
            return GV_ENOMEM;
    }
    return 0;
}

int cs_quarantine(struct node_cstate *cs, const struct cl_entry *e, const char *reason,
                  const char *service)
{
    char kind[16];
    const struct cs_quarantined *held = cs_quarantine_find(cs, e->kind, e->name);
    if (held != NULL && held->stamp == e->stamp)
        return 0;
    if (held == NULL && cs->nquar == cs->capquar) {
        size_t cap = cs->capquar ? cs->capquar * 2 : 8;
        struct cs_quarantined *q =
            cap <= QUARANTINE_MAX ? realloc(cs->quar, cap * sizeof(*q)) : NULL;
        if (q == NULL)
            return GV_ENOMEM;
        cs->quar = q;
        cs->capquar = cap;
        if (index_quarantine(cs) != 0)
            return GV_ENOMEM;
    }
    /* another version of it is replaced in place (its key stays) */
    struct cs_quarantined *q = held ? &cs->quar[held - cs->quar] : &cs->quar[cs->nquar];
    q->kind = e->kind;
    q->stamp = e->stamp;
    cs_copy_str(q->name, sizeof(q->name), e->name);
    cs_copy_str(q->reason, sizeof(q->reason), reason);
    /* a longer name is no object's: such a route is parsed again each time */
    bool fits = service != NULL && strlen(service) < sizeof(q->service);
    cs_copy_str(q->service, sizeof(q->service), fits ? service : "");
    if (held == NULL) {
        size_t klen = quar_key(q->key, e->kind, e->name);
        if (gv_strmap_put(&cs->quar_index, q->key, klen, (uint32_t)cs->nquar) != 0)
            return GV_ENOMEM;
        cs->nquar++;
    }
    /* said once per version (the previous round's set is what was said),
     * one per line up to CS_LOG_EACH_MAX per apply, then summed up */
    const struct cs_quarantined *was =
        find_in(cs->quar_prev, cs->quar_prev_index, e->kind, e->name);
    if (was != NULL && was->stamp == e->stamp)
        return 0;
    if (cs->quar_logged++ < CS_LOG_EACH_MAX)
        gv_warn("config: leaving %s/%s (from %s) out of the applied state: %s; a PUT or DELETE "
                "of it replaces it",
                gv_kind_label(e->kind, kind, sizeof(kind)), e->name,
                e->origin[0] ? e->origin : "a config file", reason);
    else
        cs->quar_unlogged++;
    return 0;
}

void cs_quarantine_said(struct node_cstate *cs)
{
    if (cs->quar_unlogged > 0)
        gv_warn("config: ... and %zu more objects left out of the applied state (GET /status: "
                "config_state.left_out)",
                cs->quar_unlogged);
    cs->quar_logged = cs->quar_unlogged = 0;
}

/* ---- the view as JSON ---------------------------------------------------------- */

void cs_lists_free(const struct cl_entry **lists[])
{
    for (int k = 0; k < GV_KIND_COUNT; k++) {
        free(lists[k]);
        lists[k] = NULL;
    }
}

bool cs_value_problem(int kind, const char *name, const json_t *v, const json_error_t *je,
                      char *why, size_t len)
{
    if (!json_is_object(v)) {
        snprintf(why, len, "the stored value is not a JSON object (%s)",
                 v ? "another JSON type" : je->text);
        return true;
    }
    const char *named = cs_element_name(kind, v);
    if (named != NULL && strcmp(named, name) != 0) {
        snprintf(why, len, "the stored value names \"%.64s\", not its own name", named);
        return true;
    }
    return false;
}

bool cs_route_orphan(const char *service, const struct gv_strmap *services, char *why, size_t len)
{
    if (services == NULL || service == NULL ||
        gv_strmap_get(services, service, strlen(service)) >= 0)
        return false;
    snprintf(why, len, "service: no service named \"%.128s\"", service);
    return true;
}

/* ---- routes compiled once per version ------------------------------------------- */

/* The compiled route that elem (element i of "routes") stands for, or NULL:
 * an object put or removed after materializing shifts the rest by one. */
static const struct gw_route_spec *reuse_route(void *arg, size_t i, const json_t *elem)
{
    const struct cs_reuse *ru = arg;
    for (size_t k = i > 0 ? i - 1 : 0; k <= i + 1 && k < ru->n; k++)
        if (ru->elems[k] == elem)
            return ru->spec[k];
    return NULL;
}

static int reuse_init(struct cs_reuse *ru, size_t n)
{
    memset(ru, 0, sizeof(*ru));
    ru->api = (struct node_state_reuse){.route = reuse_route, .arg = ru};
    if (n == 0)
        return 0;
    ru->elems = calloc(n, sizeof(*ru->elems));
    ru->spec = calloc(n, sizeof(*ru->spec));
    ru->names = calloc(n, sizeof(*ru->names));
    ru->vids = calloc(n, sizeof(*ru->vids));
    ru->raw = calloc(n, sizeof(*ru->raw));
    return ru->elems && ru->spec && ru->names && ru->vids && ru->raw ? 0 : GV_ENOMEM;
}

void cs_reuse_free(struct cs_reuse *ru)
{
    if (ru == NULL)
        return;
    for (size_t k = 0; ru->names != NULL && k < ru->n; k++)
        free(ru->names[k]);
    free(ru->names);
    free(ru->vids);
    free(ru->raw);
    free(ru->elems);
    free(ru->spec);
    memset(ru, 0, sizeof(*ru));
}

/* How the view takes route e, new to it, for a build (cs_materialize with
 * defer): raw (TAKE_RAW: the build parses and checks it), or when the last
 * apply left this version out (the set put aside by cs_quarantine_restart),
 * left out again for the same missing service without a parse (TAKE_NONE:
 * not said again), or parsed and checked here (TAKE_PARSED). */
enum take { TAKE_RAW, TAKE_NONE, TAKE_PARSED };

static enum take take_new_route(struct node_cstate *cs, const struct cl_entry *e,
                                const struct gv_strmap *services, int *rv)
{
    const struct cs_quarantined *q = find_in(cs->quar_prev, cs->quar_prev_index, e->kind, e->name);
    if (q == NULL || q->stamp != e->stamp)
        return TAKE_RAW;
    if (q->service[0] == '\0' || services == NULL)
        return TAKE_PARSED;
    if (gv_strmap_get(services, q->service, strlen(q->service)) >= 0)
        return TAKE_RAW; /* its service came: released, the build checks the rest */
    *rv = cs_quarantine(cs, e, q->reason, q->service);
    return TAKE_NONE;
}

/* e's route compiled on its own from v and kept for its version, or NULL
 * when it does not compile so (the validator then says why, from v). */
static const struct gw_route_spec *compile_route(struct node_cstate *cs, const struct cl_entry *e,
                                                 const json_t *v)
{
    struct gw_route_spec r;
    if (node_state_route_compile(v, &r) != 0)
        return NULL;
    const struct gw_route_spec *kept = cs_jcache_keep_route(cs->jcache, e, &r);
    if (kept == NULL)
        gw_route_spec_free(&r);
    else
        cs->routes_compiled++;
    return kept;
}

/* Whether route e names a service the view does not hold (services:
 * their names; NULL: not checked); then it is quarantined, as the validator
 * would have it, but all such routes in one pass: routes streaming in before
 * their service (a peer's bulk change arrives in any order) cost one
 * validation, not one per route. */
static bool orphan(struct node_cstate *cs, const struct cl_entry *e, const char *service,
                   const struct gv_strmap *services, int *rv)
{
    char reason[CS_REASON_MAX];
    if (!cs_route_orphan(service, services, reason, sizeof(reason)))
        return false;
    *rv = cs_quarantine(cs, e, reason, service);
    return true;
}

/* The array of kind k's objects; entries whose value is not a JSON object
 * are quarantined and dropped from list. With ru, a route goes in as a
 * placeholder for its compiled form (compiled now, once per version, when
 * it has not been), recorded in ru; its JSON is not kept; with services,
 * one naming a service not among them is quarantined and dropped too. NULL:
 * no memory. */
static json_t *kind_array(struct node_cstate *cs, int k, const struct cl_entry **list, int *n,
                          struct cs_reuse *ru, bool defer, const struct gv_strmap *services)
{
    json_t *arr = json_array();
    int kept = 0;
    bool reuse = ru != NULL && k == GV_KIND_ROUTES;
    if (reuse && reuse_init(ru, (size_t)*n) != 0) {
        cs_reuse_free(ru);
        json_decref(arr);
        return NULL;
    }
    for (int i = 0; arr != NULL && i < *n; i++) {
        const struct gw_route_spec *was = reuse ? cs_jcache_route(cs->jcache, list[i]) : NULL;
        json_t *v = NULL;
        bool raw = false;
        enum take take;
        int rv = 0;
        if (was != NULL) {
            cs->routes_reused++;
        } else if (reuse && defer &&
                   (take = take_new_route(cs, list[i], services, &rv)) != TAKE_PARSED) {
            if (rv != 0) {
                json_decref(arr);
                return NULL;
            }
            if (take == TAKE_NONE)
                continue;
            raw = true;
        } else {
            json_error_t je;
            v = reuse ? json_loadb((const char *)list[i]->value, list[i]->value_len,
                                   JSON_DECODE_ANY, &je)
                      : cs_jcache_get(cs->jcache, list[i], &je);
            if (v == NULL && je.text[0] == '\0') {
                json_decref(arr);
                return NULL;
            }
            char reason[CS_REASON_MAX];
            if (cs_value_problem(list[i]->kind, list[i]->name, v, &je, reason, sizeof(reason))) {
                json_decref(v);
                if (cs_quarantine(cs, list[i], reason, NULL) != 0) {
                    json_decref(arr);
                    return NULL;
                }
                continue;
            }
            if (reuse && !defer && (was = compile_route(cs, list[i], v)) != NULL) {
                json_decref(v);
                v = NULL;
            }
        }
        const char *service = was             ? was->service
                              : reuse && !raw ? json_string_value(json_object_get(v, "service"))
                                              : NULL;
        if (orphan(cs, list[i], service, services, &rv)) {
            json_decref(v);
            if (rv == 0)
                continue;
            json_decref(arr);
            return NULL;
        }
        if ((was != NULL || raw) && (v = json_string(list[i]->name)) == NULL) {
            json_decref(arr);
            return NULL;
        }
        if (reuse) {
            ru->elems[kept] = v;
            ru->spec[kept] = was;
            ru->raw[kept] = raw;
            ru->n = (size_t)kept + 1;
            if (was == NULL && defer) { /* for the build to compile */
                ru->vids[kept] = cs_jcache_value_id(list[i]);
                if ((ru->names[kept] = strdup(list[i]->name)) == NULL) {
                    json_decref(v);
                    json_decref(arr);
                    return NULL;
                }
            }
        }
        list[kept++] = list[i];
        json_array_append_new(arr, v);
    }
    *n = kept;
    return arr;
}

json_t *cs_materialize(struct node_cstate *cs, bool with_pending, const struct cl_entry **lists[],
                       int counts[], struct cs_reuse *ru, bool defer)
{
    json_t *root = json_object();
    for (int k = 0; k < GV_KIND_COUNT; k++)
        lists[k] = NULL;
    if (ru != NULL)
        memset(ru, 0, sizeof(*ru));
    /* the services of the view, for the routes to be checked against when
     * applying the store (a change being staged is refused instead) */
    struct gv_strmap services = {0};
    bool check = ru != NULL && !with_pending;
    cs_jcache_begin(cs->jcache);
    for (int k = 0; root != NULL && k < GV_KIND_COUNT; k++) {
        counts[k] = cs_view_list(cs, k, with_pending, &lists[k]);
        const struct gv_strmap *svc = check && k == GV_KIND_ROUTES ? &services : NULL;
        json_t *arr =
            counts[k] < 0 ? NULL : kind_array(cs, k, lists[k], &counts[k], ru, defer, svc);
        if (arr == NULL || json_object_set_new(root, cs_plural(k), arr) != 0) {
            json_decref(root);
            root = NULL;
        }
        for (int i = 0; root != NULL && check && k == GV_KIND_SERVICES && i < counts[k]; i++)
            if (gv_strmap_put(&services, lists[k][i]->name, strlen(lists[k][i]->name),
                              (uint32_t)i) != 0) {
                json_decref(root);
                root = NULL;
            }
    }
    gv_strmap_free(&services);
    cs_jcache_end(cs->jcache);
    if (root == NULL) {
        cs_lists_free(lists);
        cs_reuse_free(ru);
    }
    return root;
}

/* ---- the digest ------------------------------------------------------------------ */

/* SHA-256 over every applied object, kind by kind in (rank, name) order:
 * kind, name and the stored value (the object's minimal canonical JSON).
 * Two nodes that apply the same objects show the same digest whatever
 * defaults their versions know, and it costs one pass over the stored
 * bytes, not a dump of the state. A build off the loop hashes a copy of
 * the same records (cs_digest_input); the loop hashes them in place. */

/* Feeds each record of lists[] to put (kind byte, name, NUL, value, NUL);
 * stops at put's first error and returns it. */
static int digest_records(const struct cl_entry **lists[], const int counts[],
                          int (*put)(void *arg, const void *p, size_t n), void *arg,
                          struct gv_buf *rec_of, size_t *route_rec)
{
    int rv = 0;
    for (int k = 0; rv == 0 && k < GV_KIND_COUNT; k++)
        for (int i = 0; rv == 0 && i < counts[k]; i++) {
            const struct cl_entry *e = lists[k][i];
            unsigned char kind = (unsigned char)k;
            if (route_rec != NULL && k == GV_KIND_ROUTES)
                route_rec[i] = rec_of->len;
            rv = put(arg, &kind, 1);
            rv = rv ? rv : put(arg, e->name, strlen(e->name) + 1);
            rv = rv ? rv : put(arg, e->value, e->value_len);
            rv = rv ? rv : put(arg, "", 1);
            if (route_rec != NULL && k == GV_KIND_ROUTES)
                route_rec[i + 1] = rec_of->len; /* the next one's start, or the routes' end */
        }
    return rv;
}

static int put_buf(void *arg, const void *p, size_t n)
{
    return gv_buf_append(arg, p, n);
}

static int put_hash(void *arg, const void *p, size_t n)
{
    return EVP_DigestUpdate(arg, p, n) == 1 ? 0 : GV_ENOMEM;
}

int cs_digest_input(const struct cl_entry **lists[], const int counts[], struct gv_buf *out,
                    size_t *route_rec)
{
    return digest_records(lists, counts, put_buf, out, out, route_rec);
}

/* The hex of ctx's digest ("" when ok is false or it fails); frees ctx. */
static void digest_end(EVP_MD_CTX *ctx, bool ok, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    ok = ok && EVP_DigestFinal_ex(ctx, md, &len) == 1;
    EVP_MD_CTX_free(ctx);
    out[0] = '\0';
    for (unsigned i = 0; ok && i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

void cs_digest_hex(const struct gv_buf *in, const size_t *route_rec, const bool *drop,
                   size_t nroutes, char out[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    size_t at = 0; /* hashed up to */
    for (size_t i = 0; ok && drop != NULL && i < nroutes; i++) {
        if (!drop[i])
            continue;
        ok = EVP_DigestUpdate(ctx, in->data + at, route_rec[i] - at) == 1;
        at = route_rec[i + 1];
    }
    ok = ok && EVP_DigestUpdate(ctx, in->data + at, in->len - at) == 1;
    digest_end(ctx, ok, out);
}

void cs_digest(const struct cl_entry **lists[], const int counts[], char out[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    ok = ok && digest_records(lists, counts, put_hash, ctx, NULL, NULL) == 0;
    digest_end(ctx, ok, out);
}

int cs_store_digest(const struct node_cstate *cs, char out[65])
{
    const struct cl_entry **lists[GV_KIND_COUNT] = {0};
    int counts[GV_KIND_COUNT];
    int rv = 0;
    for (int k = 0; rv == 0 && k < GV_KIND_COUNT; k++)
        rv = (counts[k] = cs_view_list(cs, k, false, &lists[k])) < 0 ? GV_ENOMEM : 0;
    if (rv == 0)
        cs_digest(lists, counts, out);
    cs_lists_free(lists);
    return rv;
}

/* ---- the latest changes --------------------------------------------------------- */

struct latest {
    const struct cl_entry *top[NODE_CSTATE_CHANGES_MAX]; /* newest first */
    size_t n, max;
};

/* Keeps e if it is among the newest max writes seen so far. */
static int keep_latest(void *arg, const struct cl_entry *e)
{
    struct latest *l = arg;
    if (e->stamp == 0 || (l->n == l->max && l->top[l->n - 1]->stamp >= e->stamp))
        return 0;
    size_t i = l->n < l->max ? l->n++ : l->n - 1;
    for (; i > 0 && l->top[i - 1]->stamp < e->stamp; i--)
        l->top[i] = l->top[i - 1];
    l->top[i] = e;
    return 0;
}

json_t *node_cstate_changes_json(const struct node_cstate *cs, size_t max)
{
    struct latest l = {.n = 0,
                       .max = max < NODE_CSTATE_CHANGES_MAX ? max : NODE_CSTATE_CHANGES_MAX};
    json_t *arr = json_array();
    if (arr == NULL || l.max == 0)
        return arr;
    cl_store_foreach(cs->store, keep_latest, &l);
    for (size_t i = 0; i < l.n; i++) {
        const struct cl_entry *e = l.top[i];
        char kind[16], at[GV_RFC3339_LEN];
        gv_kind_label(e->kind, kind, sizeof(kind));
        gv_rfc3339_ms(cl_hlc_unix_ms(e->stamp), at, sizeof(at));
        json_array_append_new(arr,
                              json_pack("{s:s,s:s,s:s,s:I,s:s,s:b}", "kind", kind, "name", e->name,
                                        "origin", e->origin, "stamp", (json_int_t)e->stamp, "at",
                                        at, "deleted", e->deleted));
    }
    return arr;
}
