/* health_share.c - the node side of the shared health plane (see
 * health_share.h and docs/health-plane.md).
 *
 * Per target the node keeps the newest active report of each checker (its
 * verdict) and the newest passive report (an ejection after request
 * failures), each newer-wins by HLC stamp (cl_hp_newer), so late or
 * replayed reports never flip a target back. The verdict routed on is
 * healthy when any of the target's current checkers last said healthy; the
 * verdicts of nodes that are no longer its checkers count only when no
 * current checker has spoken (so a stale verdict from the far side of a
 * healed partition cannot take a target out). It is set with
 * lb_health_apply (seeding the local checker, for a node that does not
 * probe the target) or lb_health_route (for one that does: its own verdict
 * and counters stay its own). A passive report extends ejected_until_ms by
 * what is left of the sender's ejection. Reports travel
 * as channel 2 broadcasts; push-pull carries the whole view so a joining or
 * restarted node learns it at once. */
#include "node/health_share.h"
#include "node/node.h"
#include "cluster/healthplane.h"
#include "cluster/hlc.h"
#include "cluster/swim.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS     100
#define MEMBERS_MAX 256
#define VERDICTS    4 /* checkers' verdicts kept per target: 2 current, and leavers */

struct entry {
    char service[CL_HP_MAX_SERVICE + 1], address[CL_HP_MAX_ADDRESS + 1];
    struct cl_hp_report active[VERDICTS]; /* the newest of each checker */
    size_t nactive;
    struct cl_hp_report passive;
    bool has_passive;
    bool live;           /* still a target of the served config (sweep) */
    bool self_checks;    /* this node was one of its checkers at the last membership */
    uint64_t seen_eject; /* ejected_until_ms last seen or set here */
    uint64_t eject_for;  /* the service's passive.eject_for_ms */
};

static struct {
    struct node *node;
    struct cl_swim *swim;
    uv_timer_t timer;
    bool running;
    struct cl_hlc hlc;
    char names[MEMBERS_MAX][CL_HP_MAX_NAME + 1];
    const char *members[MEMBERS_MAX]; /* alive and suspect, self included */
    size_t nmembers;
    uint64_t members_digest;
    struct entry *v;
    size_t n, cap;
    struct node_health_share_stats stats;
} g;

/* ---- the view ----------------------------------------------------------- */

static bool should_probe(void *arg, const char *service, const char *address);

static struct entry *entry_find(const char *service, const char *address, bool create)
{
    for (size_t i = 0; i < g.n; i++)
        if (strcmp(g.v[i].service, service) == 0 && strcmp(g.v[i].address, address) == 0)
            return &g.v[i];
    if (!create || strlen(service) > CL_HP_MAX_SERVICE || strlen(address) > CL_HP_MAX_ADDRESS)
        return NULL;
    if (g.n == g.cap) {
        size_t cap = g.cap ? g.cap * 2 : 16;
        struct entry *v = realloc(g.v, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        g.v = v;
        g.cap = cap;
    }
    struct entry *e = &g.v[g.n++];
    memset(e, 0, sizeof(*e));
    snprintf(e->service, sizeof(e->service), "%s", service);
    snprintf(e->address, sizeof(e->address), "%s", address);
    e->live = true;
    e->self_checks = should_probe(NULL, service, address);
    return e;
}

/* The served config's target (service, address): its state and its
 * service's spec, or NULL. The snapshot reference is handed to the caller. */
static struct lb_target_state *target_lookup(const char *service, const char *address,
                                             const struct lb_service_spec **svc,
                                             struct gw_snapshot **snap)
{
    struct gw_snapshot *s = node_snapshot(g.node);
    *snap = s;
    for (size_t i = 0; s != NULL && i < s->nservices; i++) {
        if (strcmp(s->services[i].name, service) != 0)
            continue;
        for (size_t t = 0; t < s->services[i].ntargets; t++) {
            if (strcmp(s->services[i].targets[t].address, address) == 0) {
                *svc = &s->services[i];
                return s->states[i][t];
            }
        }
    }
    return NULL;
}

/* Keeps r as its checker's newest verdict; false when an equal or newer
 * one of that checker is held (or r is older than every verdict held and
 * there is no room). */
static bool keep_verdict(struct entry *e, const struct cl_hp_report *r)
{
    struct cl_hp_report *slot = NULL;
    for (size_t i = 0; i < e->nactive; i++)
        if (strcmp(e->active[i].checker, r->checker) == 0)
            slot = &e->active[i];
    if (slot != NULL && !cl_hp_newer(r, slot))
        return false;
    if (slot == NULL && e->nactive < VERDICTS)
        slot = &e->active[e->nactive++];
    for (size_t i = 0; slot == NULL && i < e->nactive; i++) /* full: the oldest goes */
        if (cl_hp_newer(r, &e->active[i]) && (slot == NULL || cl_hp_newer(slot, &e->active[i])))
            slot = &e->active[i];
    if (slot == NULL)
        return false;
    *slot = *r;
    return true;
}

/* The verdict to route on: 1 healthy, 0 not, -1 none yet. */
static int routed_verdict(const struct entry *e)
{
    const struct cl_hp_report *newest = NULL;
    int current = -1;
    for (size_t i = 0; i < e->nactive; i++) {
        const struct cl_hp_report *r = &e->active[i];
        if (newest == NULL || cl_hp_newer(r, newest))
            newest = r;
        if (g.nmembers > 0 &&
            cl_hp_is_checker(g.members, g.nmembers, e->service, e->address, r->checker))
            current = current == 1 || r->healthy ? 1 : 0;
    }
    return current >= 0 ? current : newest != NULL ? newest->healthy : -1;
}

/* Routes e's target on the checkers' verdict. 0, or GV_ENOENT when the
 * target is not checked here. */
static int decide(const struct entry *e)
{
    int v = routed_verdict(e);
    if (v < 0)
        return 0;
    if (should_probe(NULL, e->service, e->address))
        return lb_health_route(g.node->health, e->service, e->address, v == 1);
    return lb_health_apply(g.node->health, e->service, e->address, v == 1);
}

static void apply(struct entry *e, const struct cl_hp_report *r, bool passive,
                  struct lb_target_state *st, const struct lb_service_spec *svc)
{
    if (!passive) {
        if (decide(e) == 0) {
            g.stats.applied++;
            gv_debug("health plane: %s/%s reported %s (%s, by %s)", r->service, r->address,
                     r->healthy ? "healthy" : "unhealthy", r->reason[0] ? r->reason : "-",
                     r->checker);
        } else {
            g.stats.ignored++; /* the service has no active checks here */
        }
        return;
    }
    uint64_t left = cl_hp_passive_left(r->stamp, svc->passive.eject_for_ms, cl_hlc_wall_ms());
    g.stats.applied++;
    if (left == 0)
        return;
    uint64_t until = gv_now_ms() + left;
    if (until > atomic_load(&st->ejected_until_ms)) {
        atomic_store(&st->ejected_until_ms, until);
        int none = LB_REASON_NONE;
        atomic_compare_exchange_strong(&st->reason, &none, LB_REASON_PASSIVE);
        gv_info("health plane: %s/%s ejected for %" PRIu64 " ms (passive, from %s)", r->service,
                r->address, left, r->checker);
    }
    e->seen_eject = atomic_load(&st->ejected_until_ms);
}

/* Merges one report from the network: newer-wins per slot, then applied. */
static void merge(const struct cl_hp_report *r, const char *from)
{
    if (r->stamp >= CL_HLC_MAX ||
        cl_hlc_unix_ms(r->stamp) > cl_hlc_wall_ms() + CL_HLC_MAX_AHEAD_MS) {
        g.stats.malformed++;
        gv_debug("health plane: dropped a report from %s stamped in the future", from);
        return;
    }
    bool passive = cl_hp_is_passive(r);
    if (!passive && strcmp(r->checker, cl_swim_name(g.swim)) == 0) {
        /* this node's own verdict coming back (a relay, a push-pull): the
         * one it holds is its newest, and one it dropped as stale
         * (forget_stale_self) must not come back as a current checker's */
        g.stats.ignored++;
        return;
    }
    const struct lb_service_spec *svc = NULL;
    struct gw_snapshot *snap;
    struct lb_target_state *st = target_lookup(r->service, r->address, &svc, &snap);
    struct entry *e = st != NULL ? entry_find(r->service, r->address, true) : NULL;
    if (e == NULL) {
        g.stats.ignored++;
        gv_debug("health plane: ignored a report from %s for unknown target %s/%s", from,
                 r->service, r->address);
        goto out;
    }
    cl_hlc_observe(&g.hlc, r->stamp);
    bool fresh = passive ? !e->has_passive || cl_hp_newer(r, &e->passive) : keep_verdict(e, r);
    if (!fresh) {
        g.stats.ignored++;
        goto out;
    }
    if (passive) {
        e->passive = *r;
        e->has_passive = true;
    }
    apply(e, r, passive, st, svc);
out:
    gw_snapshot_unref(snap);
}

/* ---- sending ------------------------------------------------------------ */

static void spread(const struct cl_hp_report *r, bool passive)
{
    struct gv_buf b;
    char key[40];
    uint64_t h = gv_hash64(r->service, strlen(r->service), 0x6870);
    h = gv_hash64(r->address, strlen(r->address), h);
    /* one key per target and kind: a newer report replaces a queued one */
    snprintf(key, sizeof(key), "hp%c%016" PRIx64, passive ? 'p' : 'a', h);
    gv_buf_init(&b);
    int rv = cl_hp_encode(r, &b);
    if (rv == 0)
        rv = cl_swim_broadcast(g.swim, CL_HP_CHANNEL, key, (const uint8_t *)b.data, b.len);
    if (rv == 0)
        g.stats.sent++;
    else
        gv_warn("health plane: cannot spread the report on %s/%s: %s", r->service, r->address,
                gv_strerror(rv));
    gv_buf_free(&b);
}

static void report_local(const char *service, const char *address, bool healthy, bool passive,
                         const char *why)
{
    struct entry *e = entry_find(service, address, true);
    if (e == NULL)
        return;
    struct cl_hp_report r;
    memset(&r, 0, sizeof(r));
    snprintf(r.service, sizeof(r.service), "%s", service);
    snprintf(r.address, sizeof(r.address), "%s", address);
    snprintf(r.checker, sizeof(r.checker), "%s", cl_swim_name(g.swim));
    if (passive)
        snprintf(r.reason, sizeof(r.reason), "%s", CL_HP_REASON_PASSIVE);
    else if (!healthy)
        snprintf(r.reason, sizeof(r.reason), "health_check: %s", why);
    r.healthy = healthy;
    r.stamp = cl_hlc_now(&g.hlc, cl_hlc_wall_ms());
    if (passive) {
        e->passive = r;
        e->has_passive = true;
    } else {
        keep_verdict(e, &r);
    }
    spread(&r, passive);
    if (!passive)
        decide(e); /* route on every checker's verdict, this one's included */
}

/* ---- the checker's hooks ------------------------------------------------ */

static bool should_probe(void *arg, const char *service, const char *address)
{
    (void)arg;
    if (g.nmembers == 0)
        return true;
    return cl_hp_is_checker(g.members, g.nmembers, service, address, cl_swim_name(g.swim));
}

static void on_transition(void *arg, const char *service, const char *address, bool healthy,
                          const char *why)
{
    (void)arg;
    report_local(service, address, healthy, false, why);
}

/* ---- the channel -------------------------------------------------------- */

static void on_message(void *arg, uint8_t channel, const uint8_t *payload, size_t len,
                       const char *origin)
{
    (void)arg;
    (void)channel;
    struct cl_hp_report r;
    if (cl_hp_decode(payload, len, &r) != 0) {
        g.stats.malformed++;
        gv_debug("health plane: dropped a malformed report from %s", origin ? origin : "?");
        return;
    }
    merge(&r, origin ? origin : "?");
}

/* Appends the reports worth telling; unhealthy and ejected first, so when the
 * view does not fit in one channel state the news that keeps traffic away
 * goes. */
static int local_state(void *arg, uint8_t channel, struct gv_buf *out)
{
    (void)arg;
    (void)channel;
    size_t start = out->len;
    uint64_t wall = cl_hlc_wall_ms();
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < g.n; i++) {
            const struct entry *e = &g.v[i];
            /* an ejection that has run out says nothing any more */
            bool ejected =
                e->has_passive && cl_hp_passive_left(e->passive.stamp, e->eject_for, wall) > 0;
            const struct cl_hp_report *r[VERDICTS + 1] = {ejected ? &e->passive : NULL};
            for (size_t k = 0; k < e->nactive; k++)
                r[k + 1] = &e->active[k];
            for (size_t k = 0; k < e->nactive + 1; k++) {
                if (r[k] == NULL || (pass == 0) != !r[k]->healthy)
                    continue;
                size_t before = out->len;
                if (cl_hp_encode(r[k], out) != 0)
                    return out->len == start ? GV_ENOMEM : 0;
                if (out->len - start > CL_SWIM_MAX_PAYLOAD - 1024) {
                    out->len = before;
                    return 0;
                }
            }
        }
    }
    return 0;
}

static void merge_remote_state(void *arg, uint8_t channel, const uint8_t *state, size_t len,
                               const char *from, bool join)
{
    (void)arg;
    (void)channel;
    (void)join;
    struct cl_hp_report r;
    size_t off = 0, used;
    /* all or nothing: a state with one bad report changes nothing */
    while (off < len) {
        if (cl_hp_decode_first(state + off, len - off, &used, &r) != 0) {
            g.stats.malformed++;
            gv_debug("health plane: dropped a malformed state from %s", from ? from : "?");
            return;
        }
        off += used;
    }
    for (off = 0; off < len; off += used) {
        cl_hp_decode_first(state + off, len - off, &used, &r);
        merge(&r, from ? from : "?");
    }
}

static const struct cl_channel_ops ops = {
    .on_message = on_message,
    .local_state = local_state,
    .merge_remote_state = merge_remote_state,
};

/* ---- the timer: membership and local passive ejections ------------------ */

static int add_member(void *arg, const struct cl_member_info *m)
{
    uint64_t *digest = arg;
    if (m->state != CL_STATE_ALIVE && m->state != CL_STATE_SUSPECT)
        return 0;
    if (g.nmembers == MEMBERS_MAX)
        return 1;
    snprintf(g.names[g.nmembers], sizeof(g.names[0]), "%s", m->name);
    g.members[g.nmembers] = g.names[g.nmembers];
    g.nmembers++;
    /* order-independent digest of the set */
    *digest += gv_mix64(gv_hash64(m->name, strlen(m->name), 0x6d656d));
    return 0;
}

/* This node's own verdict on e, when it has just become one of e's
 * checkers again: made before it stopped probing (at start-up every node
 * probes alone), it says nothing about the target now, and counting it as
 * a current checker's would route a dead target as healthy until this
 * node's own probes disagree, which they may never say: while it did not
 * probe, this node took the checkers' verdict as its own. */
static void forget_stale_self(struct entry *e)
{
    bool now = should_probe(NULL, e->service, e->address);
    const char *self = cl_swim_name(g.swim);
    if (now && !e->self_checks)
        for (size_t i = 0; i < e->nactive; i++)
            if (strcmp(e->active[i].checker, self) == 0) {
                e->active[i] = e->active[--e->nactive];
                break;
            }
    e->self_checks = now;
}

static void refresh_members(void)
{
    uint64_t digest = 0;
    g.nmembers = 0;
    cl_swim_members(g.swim, add_member, &digest);
    if (digest != g.members_digest) {
        g.members_digest = digest;
        /* the checker asks should_probe before every probe: the new
         * assignment takes effect from each target's next tick */
        gv_info("health plane: %zu members share the probes", g.nmembers);
        /* the checkers of each target may have changed: so may its verdict */
        for (size_t i = 0; i < g.n; i++) {
            forget_stale_self(&g.v[i]);
            if (g.v[i].nactive > 0)
                decide(&g.v[i]);
        }
    }
}

/* Spots ejections made by this node's workers (they only write the atomic
 * deadline) and spreads them; drops entries of targets no longer served. */
static void scan_targets(void)
{
    struct gw_snapshot *s = node_snapshot(g.node);
    uint64_t now = gv_now_ms();
    for (size_t i = 0; i < g.n; i++)
        g.v[i].live = false;
    for (size_t i = 0; s != NULL && i < s->nservices; i++) {
        const struct lb_service_spec *svc = &s->services[i];
        for (size_t t = 0; t < svc->ntargets; t++) {
            struct entry *e = entry_find(svc->name, svc->targets[t].address, true);
            if (e == NULL)
                continue;
            e->live = true;
            e->eject_for = svc->passive.eject_for_ms;
            uint64_t until = atomic_load(&s->states[i][t]->ejected_until_ms);
            if (until > now && until != e->seen_eject) {
                e->seen_eject = until;
                report_local(svc->name, svc->targets[t].address, false, true, "");
            }
        }
    }
    size_t k = 0;
    for (size_t i = 0; i < g.n; i++)
        if (g.v[i].live)
            g.v[k++] = g.v[i];
    g.n = k;
    gw_snapshot_unref(s);
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
    refresh_members();
    scan_targets();
}

/* ---- life --------------------------------------------------------------- */

int node_health_share_start(struct node *n, struct cl_swim *swim)
{
    if (g.running || swim == NULL || n->health == NULL)
        return 0;
    g.node = n;
    g.swim = swim;
    int rv = cl_swim_register_channel(swim, CL_HP_CHANNEL, &ops, NULL);
    if (rv != 0)
        goto fail;
    if ((rv = uv_timer_init(&n->loop, &g.timer)) != 0) {
        cl_swim_unregister_channel(swim, CL_HP_CHANNEL);
        goto fail;
    }
    refresh_members();
    static const struct lb_health_hooks hooks = {
        .should_probe = should_probe,
        .on_transition = on_transition,
    };
    lb_health_set_hooks(n->health, &hooks, NULL);
    g.running = true;
    return uv_timer_start(&g.timer, on_tick, TICK_MS, TICK_MS);
fail:
    memset(&g, 0, sizeof(g));
    return rv;
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
    free(g.v);
    memset(&g, 0, sizeof(g));
}

void node_health_share_stop(void)
{
    if (!g.running)
        return;
    g.running = false;
    if (g.node->health != NULL)
        lb_health_set_hooks(g.node->health, NULL, NULL);
    uv_timer_stop(&g.timer);
    cl_swim_unregister_channel(g.swim, CL_HP_CHANNEL);
    uv_close((uv_handle_t *)&g.timer, on_closed);
}

json_t *node_health_share_checkers(const char *self, const char *service, const char *address)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return NULL;
    if (!g.running || g.nmembers == 0) {
        json_array_append_new(arr, json_string(self));
        return arr;
    }
    size_t idx[CL_HP_CHECKERS];
    size_t k = cl_hp_assign(g.members, g.nmembers, service, address, idx);
    for (size_t i = 0; i < k; i++)
        json_array_append_new(arr, json_string(g.members[idx[i]]));
    return arr;
}

void node_health_share_stats(struct node_health_share_stats *out)
{
    *out = g.stats;
}
