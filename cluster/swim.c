/* swim.c - membership and failure detection: randomized round-robin probes,
 * indirect probes with nacks, Lifeguard suspicion and local health,
 * incarnations and refutation, gossip and push-pull anti-entropy, joining,
 * leaving, reaping, and retrying dead addresses so partitions heal. */
#include "cluster/swim.h"
#include "cluster/swim_int.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RAW_CAP        (CL_MAX_MESSAGE - 1024)
#define MAX_RELAYS     256
#define MAX_REAPED     256
#define KEEP_PER_ROUND 4 /* members connected ahead per gossip round */
#define PP_LIMIT       (CL_MAX_MESSAGE - 1024)
/* Addresses of one seed name contacted per lookup (as addrset's cap), and
 * seed lookups in flight past which a refresh waits its next turn (a DNS
 * server that does not answer must not pile them up). */
#define MAX_SEED_ADDRS   64
#define MAX_SEED_LOOKUPS 8

struct cl_suspicion {
    uv_timer_t timer;
    struct cl_swim *s;
    char name[CL_WIRE_MAX_NAME + 1];
    uint64_t incarnation;
    uint64_t start_ms, min_ms, max_ms;
    uint64_t due_ms, put_off_ms; /* the timer's due time; time added by held_up */
    uint32_t k, n;
    uint64_t from[16]; /* hashes of the accuser and the confirmers */
    size_t n_from;
};

struct cl_relay {
    uv_timer_t timer;
    struct cl_swim *s;
    uint32_t seq, their_seq;
    char requester[CL_WIRE_MAX_ADDR + 1];
    struct cl_relay *next;
};

struct cl_dns_req {
    uv_getaddrinfo_t req;
    struct cl_swim *s;
    size_t seed;  /* index in s->seeds */
    bool refresh; /* looked up once joined: contact only what is new */
    uint16_t port;
    struct cl_dns_req *next;
};

/* The raw addresses of one seed lookup's answer. */
struct cl_seed_answer {
    size_t n;
    struct {
        int family;
        uint8_t ip[16];
    } a[MAX_SEED_ADDRS];
};

static void apply_dead(struct cl_swim *s, const char *name, uint64_t inc, const char *from);

static uint64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t now_ms(struct cl_swim *s)
{
    return uv_now(s->loop);
}

/* Whether a timer due at due_ms fired more than a probe timeout late: this
 * node's loop was held up (a large state applied on a busy machine, a
 * paused process), and the messages that arrived meanwhile (an ack, a
 * refutation) wait unread behind the timers libuv runs first. A verdict
 * from such a timer would judge a member by this node's own stall, so the
 * probe round is void and a suspicion gets a probe interval more, once the
 * inbox has been read (Lifeguard's point: a slow node should not accuse;
 * memberlist's own awareness only lengthens later timeouts). */
static bool held_up(struct cl_swim *s, uint64_t due_ms)
{
    uint64_t now = now_ms(s);
    if (now <= due_ms || now - due_ms <= s->t.probe_timeout_ms)
        return false;
    s->stats.held_up++;
    return true;
}

static size_t rand_below(size_t n)
{
    return n ? (size_t)(gv_rand64() % n) : 0;
}

static uint64_t scaled(struct cl_swim *s, uint64_t ms)
{
    return ms * (s->awareness + 1);
}

static void awareness_delta(struct cl_swim *s, int d)
{
    int64_t v = (int64_t)s->awareness + d;
    int64_t max = s->t.awareness_max_mult ? (int64_t)s->t.awareness_max_mult - 1 : 0;
    s->awareness = (uint32_t)(v < 0 ? 0 : v > max ? max : v);
}

/* ---- member table ---- */

static size_t bucket_of(struct cl_swim *s, const char *name)
{
    return (size_t)(gv_hash64(name, strlen(name), 0) & (s->n_buckets - 1));
}

struct cl_member *cl_swim_find(struct cl_swim *s, const char *name)
{
    for (struct cl_member *m = s->buckets[bucket_of(s, name)]; m; m = m->hnext)
        if (strcmp(m->name, name) == 0)
            return m;
    return NULL;
}

static size_t live_count(const struct cl_swim *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_members; i++)
        if (s->members[i]->state <= CL_STATE_SUSPECT)
            n++;
    return n;
}

static int grow_members(struct cl_swim *s)
{
    if (s->n_members < s->cap_members)
        return 0;
    size_t ncap = s->cap_members ? s->cap_members * 2 : 16;
    struct cl_member **m = realloc(s->members, ncap * sizeof(*m));
    if (m == NULL)
        return GV_ENOMEM;
    s->members = m;
    struct cl_member **t = realloc(s->tmp, ncap * sizeof(*t));
    if (t == NULL)
        return GV_ENOMEM;
    s->tmp = t;
    s->cap_members = ncap;
    if (ncap > s->n_buckets) {
        struct cl_member **b = calloc(ncap, sizeof(*b));
        if (b == NULL)
            return GV_ENOMEM;
        free(s->buckets);
        s->buckets = b;
        s->n_buckets = ncap;
        for (size_t i = 0; i < s->n_members; i++) {
            size_t k = bucket_of(s, s->members[i]->name);
            s->members[i]->hnext = b[k];
            b[k] = s->members[i];
        }
    }
    return 0;
}

static struct cl_member *add_member(struct cl_swim *s, const char *name, const char *addr)
{
    if (grow_members(s) < 0)
        return NULL;
    struct cl_member *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    snprintf(m->name, sizeof(m->name), "%s", name);
    snprintf(m->addr, sizeof(m->addr), "%s", addr);
    size_t k = bucket_of(s, name);
    m->hnext = s->buckets[k];
    s->buckets[k] = m;
    /* a random place in the probe order, as memberlist does */
    size_t pos = rand_below(s->n_members + 1);
    if (pos < s->n_members) {
        s->members[s->n_members] = s->members[pos];
        s->members[s->n_members]->idx = s->n_members;
    }
    s->members[pos] = m;
    m->idx = pos;
    s->n_members++;
    for (size_t i = 0; i < s->n_reaped; i++) {
        if (strcmp(s->reaped[i].name, name) == 0) {
            s->reaped[i] = s->reaped[--s->n_reaped];
            break;
        }
    }
    return m;
}

static void remove_member(struct cl_swim *s, struct cl_member *m)
{
    struct cl_member **pp = &s->buckets[bucket_of(s, m->name)];
    while (*pp != m)
        pp = &(*pp)->hnext;
    *pp = m->hnext;
    size_t i = m->idx;
    s->members[i] = s->members[--s->n_members];
    s->members[i]->idx = i;
    free(m);
}

static void shuffle_members(struct cl_swim *s)
{
    for (size_t i = s->n_members; i > 1; i--) {
        size_t j = rand_below(i);
        struct cl_member *t = s->members[i - 1];
        s->members[i - 1] = s->members[j];
        s->members[j] = t;
    }
    for (size_t i = 0; i < s->n_members; i++)
        s->members[i]->idx = i;
}

static void copy_meta(struct cl_member *m, const uint8_t *meta, size_t len)
{
    if (len)
        memcpy(m->meta, meta, len);
    m->meta_len = len;
}

static void fill_info(const struct cl_swim *s, const struct cl_member *m, struct cl_member_info *i)
{
    i->name = m->name;
    i->addr = m->addr;
    i->incarnation = m->incarnation;
    i->state = m->state;
    i->meta = m->meta;
    i->meta_len = m->meta_len;
    i->state_change_ms = m->change_ms;
    i->state_change_unix_ms = m->change_unix_ms;
    i->is_self = m == s->self;
}

static void notify(struct cl_swim *s, struct cl_member *m, enum cl_member_state old, bool first)
{
    if (s->on_member == NULL)
        return;
    struct cl_member_info info;
    fill_info(s, m, &info);
    s->on_member(s->on_member_arg, s, &info, old, first);
}

static void set_state(struct cl_swim *s, struct cl_member *m, enum cl_member_state st)
{
    if (m->state != st) {
        m->change_ms = now_ms(s);
        m->change_unix_ms = unix_ms();
        if (st >= CL_STATE_DEAD && m != s->self) {
            cl_transport_forget(s->tr, m->addr);
            m->kept = false;
        }
    }
    m->state = st;
}

/* ---- sending ---- */

uint32_t cl_swim_retransmit_limit(struct cl_swim *s, bool user)
{
    uint32_t mult = user ? s->t.broadcast_retransmit_mult : s->t.retransmit_mult;
    return cl_retransmit_limit(mult ? mult : s->t.retransmit_mult, live_count(s));
}

int cl_swim_send_msg(struct cl_swim *s, const char *addr, struct cl_wire_msg *m, bool piggyback)
{
    size_t raw_len = 0, n_raw = 0, len = 0;
    if (piggyback && !s->stopping)
        n_raw = cl_bq_fill(&s->q, s->budget, s->raw, RAW_CAP, &raw_len);
    int rc = cl_wire_encode(m, s->raw, raw_len, n_raw, s->out, CL_MAX_MESSAGE, &len);
    if (rc == 0)
        rc = cl_transport_send(s->tr, addr, s->out, len);
    if (rc < 0) {
        s->stats.send_failed++;
        return rc;
    }
    s->stats.sent[m->type]++;
    return 0;
}

static void queue_member(struct cl_swim *s, struct cl_member *m, const char *from)
{
    uint8_t buf[CL_WIRE_MAX_NAME * 2 + CL_WIRE_MAX_ADDR + CL_WIRE_MAX_META + 64];
    char key[CL_WIRE_MAX_NAME + 3];
    struct cl_wire_update u = {.name = cl_bytes_str(m->name), .incarnation = m->incarnation};
    size_t len;
    switch (m->state) {
    case CL_STATE_ALIVE:
        u.kind = CL_UPD_ALIVE;
        u.addr = cl_bytes_str(m->addr);
        u.meta.p = m->meta;
        u.meta.len = m->meta_len;
        break;
    case CL_STATE_SUSPECT:
        u.kind = CL_UPD_SUSPECT;
        u.from = cl_bytes_str(from);
        break;
    case CL_STATE_DEAD:
    case CL_STATE_LEFT:
        u.kind = CL_UPD_DEAD;
        u.from = cl_bytes_str(m->state == CL_STATE_LEFT ? m->name : from);
        break;
    }
    snprintf(key, sizeof(key), "m:%s", m->name);
    uint64_t before = s->q.dropped;
    if (cl_wire_encode_update(&u, buf, sizeof(buf), &len) < 0 ||
        cl_bq_push(&s->q, key, buf, len, cl_swim_retransmit_limit(s, false)) < 0)
        s->stats.queue_dropped++;
    s->stats.queue_dropped += s->q.dropped - before;
}

static int pick_random(struct cl_swim *s, size_t k, const struct cl_member *exclude,
                       bool (*ok)(struct cl_swim *, const struct cl_member *))
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_members; i++) {
        struct cl_member *m = s->members[i];
        if (m != s->self && m != exclude && ok(s, m))
            s->tmp[n++] = m;
    }
    if (k > n)
        k = n;
    for (size_t i = 0; i < k; i++) {
        size_t j = i + rand_below(n - i);
        struct cl_member *t = s->tmp[i];
        s->tmp[i] = s->tmp[j];
        s->tmp[j] = t;
    }
    return (int)k;
}

static bool is_alive(struct cl_swim *s, const struct cl_member *m)
{
    return m->state == CL_STATE_ALIVE;
}

static bool is_gossip_target(struct cl_swim *s, const struct cl_member *m)
{
    if (m->state <= CL_STATE_SUSPECT)
        return true;
    return m->state == CL_STATE_DEAD && now_ms(s) - m->change_ms < s->t.gossip_to_the_dead_ms;
}

static void send_gossip(struct cl_swim *s, size_t fanout)
{
    int k = pick_random(s, fanout, NULL, is_gossip_target);
    struct cl_wire_msg m = {.type = CL_MSG_GOSSIP, .from = cl_bytes_str(s->name)};
    for (int i = 0; i < k && cl_bq_len(&s->q) > 0; i++)
        cl_swim_send_msg(s, s->tmp[i]->addr, &m, true);
}

/* Our member table as wire members, or NULL when out of memory. */
static struct cl_wire_member *members_to_wire(const struct cl_swim *s)
{
    struct cl_wire_member *mb = calloc(s->n_members ? s->n_members : 1, sizeof(*mb));
    if (mb == NULL)
        return NULL;
    for (size_t i = 0; i < s->n_members; i++) {
        const struct cl_member *m = s->members[i];
        mb[i].name = cl_bytes_str(m->name);
        mb[i].addr = cl_bytes_str(m->addr);
        mb[i].meta.p = m->meta;
        mb[i].meta.len = m->meta_len;
        mb[i].incarnation = m->incarnation;
        mb[i].state = m->state;
    }
    return mb;
}

/* How many of mb[start..n) still fit in a push-pull message that holds *est
 * bytes by a generous estimate; adds theirs to *est. */
static size_t pp_members_fit(const struct cl_wire_member *mb, size_t start, size_t n, size_t *est)
{
    size_t end = start;
    while (end < n && end - start < CL_WIRE_MAX_MEMBERS) {
        size_t one = mb[end].name.len + mb[end].addr.len + mb[end].meta.len + 32;
        if (*est + one > PP_LIMIT)
            break;
        *est += one;
        end++;
    }
    return end - start;
}

/* The same for channel states. */
static size_t pp_states_fit(const struct cl_wire_state *st, size_t start, size_t n, size_t *est)
{
    size_t end = start;
    while (end < n && *est + st[end].data.len + 16 <= PP_LIMIT) {
        *est += st[end].data.len + 16;
        end++;
    }
    return end - start;
}

/* Sends our full state, split over as many messages as it takes (merging is
 * per member, so each part stands alone); only the first asks for a reply. */
static void send_push_pull(struct cl_swim *s, const char *addr, uint8_t flags)
{
    struct gv_buf *bufs;
    struct cl_wire_state *states;
    size_t n_states = cl_bcast_local_states(s, &bufs, &states);
    struct cl_wire_member *mb = members_to_wire(s);
    if (mb == NULL) {
        s->stats.send_failed++;
        goto out;
    }
    struct cl_wire_msg msg = {
        .type = CL_MSG_PUSH_PULL,
        .from = cl_bytes_str(s->name),
        .from_addr = cl_bytes_str(s->addr),
        .flags = flags,
    };
    for (size_t start = 0, si = 0; start < s->n_members || si < n_states;) {
        size_t est = 64 + 2 * CL_WIRE_MAX_ADDR;
        size_t nm = pp_members_fit(mb, start, s->n_members, &est);
        size_t ns = pp_states_fit(states, si, n_states, &est);
        if (nm == 0 && ns == 0) /* a state too big for one message goes alone */
            ns = 1;
        msg.members = mb + start;
        msg.n_members = nm;
        msg.states = states + si;
        msg.n_states = si + ns > n_states ? 0 : ns;
        cl_swim_send_msg(s, addr, &msg, false);
        msg.flags &= (uint8_t)~CL_PP_REPLY;
        start += nm;
        si += ns;
    }
out:
    free(mb);
    cl_bcast_states_free(bufs, states, n_states);
}

/* ---- refutation and state updates ---- */

static void refute(struct cl_swim *s, uint64_t accused)
{
    uint64_t inc = s->self->incarnation + 1;
    if (accused >= inc)
        inc = accused + 1;
    s->self->incarnation = inc;
    s->stats.refutes++;
    awareness_delta(s, 1);
    queue_member(s, s->self, s->name);
}

static void on_susp_closed(uv_handle_t *h)
{
    struct cl_suspicion *sp = h->data;
    struct cl_swim *s = sp->s;
    free(sp);
    s->open_handles--;
    if (s->stopping)
        cl_swim_stop(s, s->stop_cb, s->stop_arg);
}

static void clear_suspicion(struct cl_member *m)
{
    if (m->susp == NULL)
        return;
    uv_timer_stop(&m->susp->timer);
    uv_close((uv_handle_t *)&m->susp->timer, on_susp_closed);
    m->susp = NULL;
}

static void on_susp_timer(uv_timer_t *h);

static void susp_arm(struct cl_swim *s, struct cl_suspicion *sp, uint64_t delay)
{
    sp->due_ms = now_ms(s) + delay;
    uv_timer_start(&sp->timer, on_susp_timer, delay, 0);
}

static void on_susp_timer(uv_timer_t *h)
{
    struct cl_suspicion *sp = h->data;
    struct cl_swim *s = sp->s;
    struct cl_member *m = cl_swim_find(s, sp->name);
    if (m == NULL || m->susp != sp)
        return;
    /* put off while this node was held up, at most the longest suspicion
     * time in all: a dead member is still declared dead by a busy node */
    if (sp->put_off_ms < sp->max_ms && held_up(s, sp->due_ms)) {
        sp->put_off_ms += s->t.probe_interval_ms; /* a gossip round trip for the refutation */
        susp_arm(s, sp, s->t.probe_interval_ms);
        return;
    }
    apply_dead(s, sp->name, sp->incarnation, s->name);
}

static void start_suspicion(struct cl_swim *s, struct cl_member *m, const char *from)
{
    struct cl_suspicion *sp = calloc(1, sizeof(*sp));
    if (sp == NULL)
        return;
    size_t n = live_count(s);
    uint32_t k = s->t.suspicion_mult > 2 ? s->t.suspicion_mult - 2 : 0;
    if (n < 2 || n - 2 < k)
        k = 0;
    if (k >= GV_ARRAY_LEN(sp->from))
        k = GV_ARRAY_LEN(sp->from) - 1;
    sp->s = s;
    snprintf(sp->name, sizeof(sp->name), "%s", m->name);
    sp->incarnation = m->incarnation;
    sp->k = k;
    sp->start_ms = now_ms(s);
    sp->min_ms = cl_suspicion_min_ms(s->t.suspicion_mult, n, s->t.probe_interval_ms);
    sp->max_ms = sp->min_ms * s->t.suspicion_max_timeout_mult;
    sp->from[sp->n_from++] = gv_hash64(from, strlen(from), 0);
    uv_timer_init(s->loop, &sp->timer);
    sp->timer.data = sp;
    s->open_handles++;
    m->susp = sp;
    susp_arm(s, sp, cl_suspicion_timeout_ms(sp->min_ms, sp->max_ms, k, 0));
}

/* Counts an independent confirmation; returns true when it was new. */
static bool confirm_suspicion(struct cl_swim *s, struct cl_suspicion *sp, const char *from)
{
    if (sp->n >= sp->k)
        return false;
    uint64_t h = gv_hash64(from, strlen(from), 0);
    for (size_t i = 0; i < sp->n_from; i++)
        if (sp->from[i] == h)
            return false;
    sp->from[sp->n_from++] = h;
    sp->n++;
    uint64_t timeout = cl_suspicion_timeout_ms(sp->min_ms, sp->max_ms, sp->k, sp->n);
    uint64_t elapsed = now_ms(s) - sp->start_ms;
    susp_arm(s, sp, timeout > elapsed ? timeout - elapsed : 0);
    return true;
}

static void apply_alive(struct cl_swim *s, const char *name, const char *addr, uint64_t inc,
                        const uint8_t *meta, size_t meta_len)
{
    struct cl_member *m = cl_swim_find(s, name);
    if (m == NULL) {
        if ((m = add_member(s, name, addr)) == NULL)
            return;
        m->incarnation = inc;
        copy_meta(m, meta, meta_len);
        m->state = CL_STATE_ALIVE;
        m->change_ms = now_ms(s);
        m->change_unix_ms = unix_ms();
        queue_member(s, m, s->name);
        notify(s, m, CL_STATE_DEAD, true);
        return;
    }
    if (m == s->self) {
        if (s->leaving || inc < m->incarnation)
            return;
        if (inc == m->incarnation && strcmp(addr, m->addr) == 0 && meta_len == m->meta_len &&
            (meta_len == 0 || memcmp(meta, m->meta, meta_len) == 0))
            return;
        refute(s, inc);
        return;
    }
    if (inc <= m->incarnation)
        return;
    enum cl_member_state old = m->state;
    clear_suspicion(m);
    if (m->kept && strcmp(m->addr, addr) != 0) { /* moved: not the old address's */
        cl_transport_forget(s->tr, m->addr);
        m->kept = false;
    }
    snprintf(m->addr, sizeof(m->addr), "%s", addr);
    copy_meta(m, meta, meta_len);
    m->incarnation = inc;
    set_state(s, m, CL_STATE_ALIVE);
    queue_member(s, m, s->name);
    notify(s, m, old, false);
}

static void apply_suspect(struct cl_swim *s, const char *name, uint64_t inc, const char *from)
{
    struct cl_member *m = cl_swim_find(s, name);
    if (m == NULL || inc < m->incarnation)
        return;
    if (m == s->self) {
        if (!s->leaving)
            refute(s, inc);
        return;
    }
    if (m->state == CL_STATE_SUSPECT) {
        if (m->susp && confirm_suspicion(s, m->susp, from))
            queue_member(s, m, from);
        return;
    }
    if (m->state != CL_STATE_ALIVE)
        return;
    m->incarnation = inc;
    set_state(s, m, CL_STATE_SUSPECT);
    s->stats.suspicions++;
    start_suspicion(s, m, from);
    queue_member(s, m, from);
    notify(s, m, CL_STATE_ALIVE, false);
}

static void apply_dead(struct cl_swim *s, const char *name, uint64_t inc, const char *from)
{
    struct cl_member *m = cl_swim_find(s, name);
    if (m == NULL || inc < m->incarnation || m->state >= CL_STATE_DEAD)
        return;
    if (m == s->self) {
        if (!s->leaving)
            refute(s, inc);
        return;
    }
    enum cl_member_state old = m->state;
    bool left = strcmp(from, name) == 0;
    clear_suspicion(m);
    m->incarnation = inc;
    set_state(s, m, left ? CL_STATE_LEFT : CL_STATE_DEAD);
    m->next_retry_ms = now_ms(s) + s->t.reconnect_interval_ms;
    if (!left)
        s->stats.deaths++;
    queue_member(s, m, from);
    notify(s, m, old, false);
}

static void apply_update(struct cl_swim *s, const struct cl_wire_update *u)
{
    char name[CL_WIRE_MAX_NAME + 1], from[CL_WIRE_MAX_NAME + 1], addr[CL_WIRE_MAX_ADDR + 1];
    if (u->kind == CL_UPD_USER) {
        cl_bcast_on_update(s, u);
        return;
    }
    cl_bytes_copy(u->name, name, sizeof(name));
    switch (u->kind) {
    case CL_UPD_ALIVE:
        cl_bytes_copy(u->addr, addr, sizeof(addr));
        apply_alive(s, name, addr, u->incarnation, u->meta.p, u->meta.len);
        break;
    case CL_UPD_SUSPECT:
        cl_bytes_copy(u->from, from, sizeof(from));
        apply_suspect(s, name, u->incarnation, from);
        break;
    case CL_UPD_DEAD:
        cl_bytes_copy(u->from, from, sizeof(from));
        apply_dead(s, name, u->incarnation, from);
        break;
    default:
        break;
    }
}

/* ---- probing ---- */

static struct cl_member *next_probe_target(struct cl_swim *s)
{
    for (size_t tries = 0; tries <= s->n_members; tries++) {
        if (s->probe_index >= s->n_members) {
            shuffle_members(s);
            s->probe_index = 0;
        }
        struct cl_member *m = s->members[s->probe_index++];
        if (m != s->self && m->state <= CL_STATE_SUSPECT)
            return m;
    }
    return NULL;
}

static void on_probe_timer(uv_timer_t *h);

static void probe_schedule(struct cl_swim *s, uint64_t delay)
{
    s->probe.due_ms = now_ms(s) + delay;
    uv_timer_start(&s->probe_timer, on_probe_timer, delay, 0);
}

static void probe_finish(struct cl_swim *s)
{
    uint64_t at = s->probe.start_ms + s->t.probe_interval_ms, now = now_ms(s);
    s->probe.phase = CL_PROBE_IDLE;
    probe_schedule(s, at > now ? at - now : 0);
}

static void probe_start(struct cl_swim *s)
{
    struct cl_member *m = next_probe_target(s);
    if (m == NULL) {
        s->probe.phase = CL_PROBE_IDLE;
        probe_schedule(s, s->t.probe_interval_ms);
        return;
    }
    s->probe.phase = CL_PROBE_DIRECT;
    s->probe.seq = ++s->next_seq;
    s->probe.start_ms = now_ms(s);
    s->probe.expected_nacks = s->probe.nacks = 0;
    snprintf(s->probe.target, sizeof(s->probe.target), "%s", m->name);
    s->stats.probes++;
    struct cl_wire_msg msg = {
        .type = CL_MSG_PING,
        .seq = s->probe.seq,
        .from = cl_bytes_str(s->name),
        .from_addr = cl_bytes_str(s->addr),
        .target = cl_bytes_str(m->name),
    };
    cl_swim_send_msg(s, m->addr, &msg, true);
    probe_schedule(s, scaled(s, s->t.probe_timeout_ms));
}

static void probe_indirect(struct cl_swim *s)
{
    struct cl_member *m = cl_swim_find(s, s->probe.target);
    if (m == NULL || m->state >= CL_STATE_DEAD) {
        probe_finish(s);
        return;
    }
    int k = pick_random(s, s->t.indirect_checks, m, is_alive);
    struct cl_wire_msg msg = {
        .type = CL_MSG_PING_REQ,
        .seq = s->probe.seq,
        .from = cl_bytes_str(s->name),
        .from_addr = cl_bytes_str(s->addr),
        .target = cl_bytes_str(m->name),
        .target_addr = cl_bytes_str(m->addr),
    };
    for (int i = 0; i < k; i++)
        if (cl_swim_send_msg(s, s->tmp[i]->addr, &msg, false) == 0)
            s->probe.expected_nacks++;
    s->probe.phase = CL_PROBE_INDIRECT;
    uint64_t total = scaled(s, s->t.probe_interval_ms), direct = scaled(s, s->t.probe_timeout_ms);
    probe_schedule(s, total > direct ? total - direct : 1);
}

static void probe_failed(struct cl_swim *s)
{
    struct cl_member *m = cl_swim_find(s, s->probe.target);
    s->stats.probe_failures++;
    if (s->probe.expected_nacks > 0) {
        if (s->probe.nacks < s->probe.expected_nacks)
            awareness_delta(s, (int)(s->probe.expected_nacks - s->probe.nacks));
    } else {
        awareness_delta(s, 1);
    }
    s->probe.phase = CL_PROBE_IDLE;
    if (m != NULL && m->state <= CL_STATE_SUSPECT)
        apply_suspect(s, m->name, m->incarnation, s->name);
    probe_finish(s);
}

static void on_probe_timer(uv_timer_t *h)
{
    struct cl_swim *s = h->data;
    if (s->stopping || s->leaving)
        return;

    if (s->probe.phase != CL_PROBE_IDLE && held_up(s, s->probe.due_ms)) {
        probe_finish(s); /* void: the ack may be waiting unread */
        return;
    }
    switch (s->probe.phase) {
    case CL_PROBE_IDLE:
        probe_start(s);
        break;
    case CL_PROBE_DIRECT:
        probe_indirect(s);
        break;
    case CL_PROBE_INDIRECT:
        probe_failed(s);
        break;
    }
}

/* ---- relays (ping_req on behalf of another member) ---- */

static void on_relay_closed(uv_handle_t *h)
{
    struct cl_relay *r = h->data;
    struct cl_swim *s = r->s;
    free(r);
    s->open_handles--;
    if (s->stopping)
        cl_swim_stop(s, s->stop_cb, s->stop_arg);
}

static void relay_close(struct cl_swim *s, struct cl_relay *r)
{
    struct cl_relay **pp = &s->relays;
    while (*pp != r)
        pp = &(*pp)->next;
    *pp = r->next;
    s->n_relays--;
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, on_relay_closed);
}

static void on_relay_timer(uv_timer_t *h)
{
    struct cl_relay *r = h->data;
    struct cl_swim *s = r->s;
    struct cl_wire_msg nack = {
        .type = CL_MSG_NACK, .seq = r->their_seq, .from = cl_bytes_str(s->name)};
    cl_swim_send_msg(s, r->requester, &nack, false);
    relay_close(s, r);
}

static void handle_ping_req(struct cl_swim *s, const struct cl_wire_msg *m)
{
    char target_addr[CL_WIRE_MAX_ADDR + 1];
    if (s->n_relays >= MAX_RELAYS) {
        s->stats.ignored++;
        return;
    }
    struct cl_relay *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return;
    r->s = s;
    r->seq = ++s->next_seq;
    r->their_seq = m->seq;
    cl_bytes_copy(m->from_addr, r->requester, sizeof(r->requester));
    cl_bytes_copy(m->target_addr, target_addr, sizeof(target_addr));
    uv_timer_init(s->loop, &r->timer);
    r->timer.data = r;
    s->open_handles++;
    r->next = s->relays;
    s->relays = r;
    s->n_relays++;
    uv_timer_start(&r->timer, on_relay_timer, s->t.probe_timeout_ms, 0);
    struct cl_wire_msg ping = {
        .type = CL_MSG_PING,
        .seq = r->seq,
        .from = cl_bytes_str(s->name),
        .from_addr = cl_bytes_str(s->addr),
        .target = m->target,
    };
    cl_swim_send_msg(s, target_addr, &ping, true);
}

static void handle_ack(struct cl_swim *s, const struct cl_wire_msg *m)
{
    if (s->probe.phase != CL_PROBE_IDLE && m->seq == s->probe.seq) {
        awareness_delta(s, -1);
        s->joined = true;
        probe_finish(s);
        return;
    }
    for (struct cl_relay *r = s->relays; r; r = r->next) {
        if (r->seq == m->seq) {
            struct cl_wire_msg ack = {
                .type = CL_MSG_ACK, .seq = r->their_seq, .from = cl_bytes_str(s->name)};
            cl_swim_send_msg(s, r->requester, &ack, true);
            relay_close(s, r);
            return;
        }
    }
    s->stats.ignored++;
}

/* ---- push-pull ---- */

static void handle_push_pull(struct cl_swim *s, const struct cl_wire_msg *m)
{
    char from[CL_WIRE_MAX_NAME + 1], name[CL_WIRE_MAX_NAME + 1], addr[CL_WIRE_MAX_ADDR + 1];
    char from_addr[CL_WIRE_MAX_ADDR + 1];
    cl_bytes_copy(m->from, from, sizeof(from));
    cl_bytes_copy(m->from_addr, from_addr, sizeof(from_addr));
    for (size_t i = 0; i < m->n_members; i++) {
        const struct cl_wire_member *w = &m->members[i];
        cl_bytes_copy(w->name, name, sizeof(name));
        cl_bytes_copy(w->addr, addr, sizeof(addr));
        switch (w->state) {
        case CL_STATE_ALIVE:
            apply_alive(s, name, addr, w->incarnation, w->meta.p, w->meta.len);
            break;
        case CL_STATE_LEFT:
            apply_dead(s, name, w->incarnation, name);
            break;
        default:
            /* what a peer believes dead is only suspect here (memberlist) */
            apply_suspect(s, name, w->incarnation, from);
            break;
        }
    }
    cl_bcast_merge_states(s, m, from);
    s->joined = true;
    /* answer after merging, so a refutation it caused is in the answer */
    if ((m->flags & CL_PP_REPLY) && !s->stopping)
        send_push_pull(s, from_addr, m->flags & CL_PP_JOIN);
}

/* ---- receiving ---- */

/* A ping for us is acked to the address it came from. */
static void handle_ping(struct cl_swim *s, const struct cl_wire_msg *m)
{
    char to[CL_WIRE_MAX_ADDR + 1];
    if (!cl_bytes_eq(m->target, s->name)) {
        s->stats.ignored++;
        return;
    }
    cl_bytes_copy(m->from_addr, to, sizeof(to));
    struct cl_wire_msg ack = {.type = CL_MSG_ACK, .seq = m->seq, .from = cl_bytes_str(s->name)};
    cl_swim_send_msg(s, to, &ack, true);
}

/* Counts the nacks for our indirect probe: the ones that never come count
 * against our own health (Lifeguard). */
static void handle_nack(struct cl_swim *s, const struct cl_wire_msg *m)
{
    if (s->probe.phase == CL_PROBE_INDIRECT && m->seq == s->probe.seq)
        s->probe.nacks++;
}

/* What each message does beyond its piggybacked updates; gossip carries
 * nothing else. */
static void (*const handlers[CL_MSG_TYPE_MAX + 1])(struct cl_swim *, const struct cl_wire_msg *) = {
    [CL_MSG_PING] = handle_ping,           [CL_MSG_ACK] = handle_ack,
    [CL_MSG_NACK] = handle_nack,           [CL_MSG_PING_REQ] = handle_ping_req,
    [CL_MSG_PUSH_PULL] = handle_push_pull, [CL_MSG_USER] = cl_bcast_on_user,
};

void cl_swim_receive(struct cl_swim *s, const uint8_t *data, size_t len)
{
    struct cl_wire_msg m;
    if (s->stopping)
        return;
    if (cl_wire_decode(data, len, &m) < 0) {
        s->stats.malformed++;
        return;
    }
    s->stats.received[m.type]++;
    if (cl_bytes_eq(m.from, s->name)) {
        s->stats.ignored++;
        goto out;
    }
    for (size_t i = 0; i < m.n_updates && !s->stopping; i++)
        apply_update(s, &m.updates[i]);
    if (!s->stopping && handlers[m.type] != NULL)
        handlers[m.type](s, &m);
out:
    cl_wire_msg_free(&m);
}

void cl_swim_on_receive(void *swim, const uint8_t *data, size_t len)
{
    cl_swim_receive(swim, data, len);
}

/* ---- joining ---- */

/* Whether addr is this node's or an alive member's address: nothing to
 * learn from a push-pull with it. */
static bool known_alive(const struct cl_swim *s, const char *addr)
{
    if (strcmp(addr, s->addr) == 0)
        return true;
    for (size_t i = 0; i < s->n_members; i++)
        if (s->members[i]->state == CL_STATE_ALIVE && strcmp(s->members[i]->addr, addr) == 0)
            return true;
    return false;
}

/* "IP:PORT" or "[IP6]:PORT" of one answer entry, and its raw address in
 * *slot; false for other families. */
static bool format_answer(const struct addrinfo *ai, uint16_t port, char *out, size_t len,
                          struct cl_seed_answer *slot_of, size_t i)
{
    char ip[INET6_ADDRSTRLEN];
    const void *raw;
    if (ai->ai_family == AF_INET) {
        raw = &((const struct sockaddr_in *)ai->ai_addr)->sin_addr;
        inet_ntop(AF_INET, raw, ip, sizeof(ip));
        snprintf(out, len, "%s:%u", ip, port);
        memcpy(slot_of->a[i].ip, raw, 4);
    } else if (ai->ai_family == AF_INET6) {
        raw = &((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        inet_ntop(AF_INET6, raw, ip, sizeof(ip));
        snprintf(out, len, "[%s]:%u", ip, port);
        memcpy(slot_of->a[i].ip, raw, 16);
    } else {
        return false;
    }
    slot_of->a[i].family = ai->ai_family;
    return true;
}

static bool in_answer(const struct cl_seed_answer *old, const struct cl_seed_answer *next, size_t i)
{
    size_t len = next->a[i].family == AF_INET ? 4 : 16;
    for (size_t k = 0; old != NULL && k < old->n; k++)
        if (old->a[k].family == next->a[i].family && memcmp(old->a[k].ip, next->a[i].ip, len) == 0)
            return true;
    return false;
}

/* Contacts the addresses of a seed's answer: every one (up to
 * MAX_SEED_ADDRS) that is not this node or a member already alive gets a
 * joining push-pull, so a headless service or a swarm tasks.NAME joins
 * every node it lists. A refresh (once joined) contacts only addresses its
 * previous answer lacked: members advertised by name (not by IP) are not
 * pushed their whole state again every join_every. */
static void contact_answer(struct cl_swim *s, struct cl_dns_req *d, const struct addrinfo *res)
{
    struct cl_seed_answer *next = calloc(1, sizeof(*next));
    if (next == NULL)
        return;
    struct cl_seed_answer *old = s->answers[d->seed];
    for (const struct addrinfo *ai = res; ai && next->n < MAX_SEED_ADDRS; ai = ai->ai_next) {
        char addr[CL_WIRE_MAX_ADDR + 1];
        if (!format_answer(ai, d->port, addr, sizeof(addr), next, next->n))
            continue;
        if (!known_alive(s, addr) && !(d->refresh && in_answer(old, next, next->n)))
            send_push_pull(s, addr, CL_PP_REPLY | CL_PP_JOIN);
        next->n++;
    }
    free(old);
    s->answers[d->seed] = next;
}

static void on_dns(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct cl_dns_req *d = GV_CONTAINER_OF(req, struct cl_dns_req, req);
    struct cl_swim *s = d->s;
    struct cl_dns_req **pp = &s->dns;
    while (*pp != d)
        pp = &(*pp)->next;
    *pp = d->next;
    s->dns_inflight--;
    if (status == 0 && !s->stopping && !s->leaving)
        contact_answer(s, d, res);
    else if (status < 0 && status != UV_ECANCELED)
        gv_debug("cluster: cannot resolve a seed: %s", uv_strerror(status));
    uv_freeaddrinfo(res);
    free(d);
    if (s->stopping)
        cl_swim_stop(s, s->stop_cb, s->stop_arg);
}

static void contact_seed(struct cl_swim *s, size_t i)
{
    const char *seed = s->seeds[i];
    char host[CL_WIRE_MAX_ADDR + 1], port_s[8];
    uint16_t port;
    uint8_t sa[16];
    if (known_alive(s, seed) || gv_split_hostport(seed, host, sizeof(host), &port) < 0)
        return;
    if (inet_pton(AF_INET, host, sa) == 1 || inet_pton(AF_INET6, host, sa) == 1) {
        send_push_pull(s, seed, CL_PP_REPLY | CL_PP_JOIN);
        return;
    }
    struct cl_dns_req *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return;
    d->s = s;
    d->seed = i;
    d->refresh = s->refreshing;
    d->port = port;
    snprintf(port_s, sizeof(port_s), "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    if (uv_getaddrinfo(s->loop, &d->req, on_dns, host, port_s, &hints) < 0) {
        free(d);
        return;
    }
    d->next = s->dns;
    s->dns = d;
    s->dns_inflight++;
}

static size_t live_peers(const struct cl_swim *s)
{
    size_t n = live_count(s);
    return n > 0 ? n - 1 : 0;
}

static void on_join_timer(uv_timer_t *h);

/* Joined with live peers: the seeds are looked up again every
 * seed_refresh_ms (nothing the first time: the join just did), so members
 * that a name lists later, or a group that formed apart from ours, get
 * contacted. */
static void refresh_seeds(struct cl_swim *s)
{
    s->join_active = false;
    if (s->t.seed_refresh_ms == 0)
        return;
    if (s->refreshing && s->dns_inflight < MAX_SEED_LOOKUPS)
        for (size_t i = 0; i < s->n_seeds; i++)
            contact_seed(s, i);
    s->refreshing = true;
    uv_timer_start(&s->join_timer, on_join_timer, s->t.seed_refresh_ms, 0);
}

static void on_join_timer(uv_timer_t *h)
{
    struct cl_swim *s = h->data;
    if (s->stopping || s->leaving) {
        s->join_active = false;
        return;
    }
    if (s->joined && live_peers(s) > 0) {
        refresh_seeds(s);
        return;
    }
    s->refreshing = false;
    for (size_t i = 0; i < s->n_seeds; i++)
        contact_seed(s, i);
    uint64_t delay = s->join_delay_ms;
    s->join_delay_ms = GV_MIN(s->join_delay_ms * 2, (uint64_t)s->t.join_retry_max_ms);
    uv_timer_start(&s->join_timer, on_join_timer, delay, 0);
}

static void join_kick(struct cl_swim *s)
{
    if (!s->started || s->leaving || s->stopping || s->n_seeds == 0)
        return;
    s->joined = false;
    s->join_active = true;
    s->refreshing = false;
    s->join_delay_ms = s->t.join_retry_ms;
    uv_timer_start(&s->join_timer, on_join_timer, 0, 0);
}

int cl_swim_join(struct cl_swim *s, const char *const *addrs, size_t n)
{
    if (s->stopping || s->leaving)
        return GV_EINVAL;
    for (size_t i = 0; i < n; i++) {
        char host[CL_WIRE_MAX_ADDR + 1];
        uint16_t port;
        if (addrs[i] == NULL || strlen(addrs[i]) > CL_WIRE_MAX_ADDR ||
            gv_split_hostport(addrs[i], host, sizeof(host), &port) < 0)
            return GV_EINVAL;
    }
    char **seeds = realloc(s->seeds, (s->n_seeds + n + 1) * sizeof(*seeds));
    if (seeds == NULL)
        return GV_ENOMEM;
    s->seeds = seeds;
    struct cl_seed_answer **answers = realloc(s->answers, (s->n_seeds + n + 1) * sizeof(*answers));
    if (answers == NULL)
        return GV_ENOMEM;
    s->answers = answers;
    size_t first = s->n_seeds;
    for (size_t i = 0; i < n; i++) {
        s->answers[s->n_seeds] = NULL;
        if ((s->seeds[s->n_seeds] = strdup(addrs[i])) == NULL)
            return GV_ENOMEM;
        s->n_seeds++;
    }
    if (s->started) {
        for (size_t i = first; i < s->n_seeds; i++)
            contact_seed(s, i);
        if (!s->join_active)
            join_kick(s);
    }
    return 0;
}

/* ---- periodic work ---- */

/* Asks the transport to connect ahead to a few more live members (at most
 * KEEP_PER_ROUND a gossip round: 99 members in 5 s with the lan profile, so a
 * hundred nodes starting together do not dial each other all at once). A
 * member is asked once while it lives: should the transport not keep it (a
 * test's fault switch, its peer cap), the first send connects, as before. */
static void keep_some(struct cl_swim *s)
{
    size_t asked = 0;
    for (size_t seen = 0; seen < s->n_members && asked < KEEP_PER_ROUND; seen++) {
        struct cl_member *m = s->members[s->keep_index++ % s->n_members];
        if (m == s->self || m->kept || m->state > CL_STATE_SUSPECT)
            continue;
        cl_transport_keep(s->tr, m->addr);
        m->kept = true;
        asked++;
    }
}

static void on_gossip_timer(uv_timer_t *h)
{
    struct cl_swim *s = h->data;
    s->last_gossip_ms = now_ms(s);
    if (cl_bq_len(&s->q) > 0)
        send_gossip(s, s->t.gossip_nodes);
    if (!s->leaving && !s->stopping)
        keep_some(s);
}

void cl_swim_gossip_soon(struct cl_swim *s)
{
    /* A new user broadcast goes out now rather than at the next tick, so it
     * crosses the cluster in network hops, not in gossip intervals. Rounds
     * stay at least a quarter interval apart, so a burst of broadcasts costs
     * at most four times the normal gossip rate. */
    if (!s->started || s->stopping)
        return;
    uint64_t now = now_ms(s), gap = s->t.gossip_interval_ms / 4;
    uint64_t due = s->last_gossip_ms + gap;
    uv_timer_start(&s->gossip_timer, on_gossip_timer, due > now ? due - now : 0,
                   s->t.gossip_interval_ms);
}

static void on_pp_timer(uv_timer_t *h)
{
    struct cl_swim *s = h->data;
    if (s->leaving)
        return;
    if (pick_random(s, 1, NULL, is_alive) == 1)
        send_push_pull(s, s->tmp[0]->addr, CL_PP_REPLY);
    uint64_t next = cl_push_pull_scale(s->t.push_pull_interval_ms, live_count(s));
    if (s->pp_early_ms > 0 && (s->pp_early_ms *= 2) < next)
        next = s->pp_early_ms;
    else
        s->pp_early_ms = 0;
    uv_timer_start(&s->pp_timer, on_pp_timer, next, 0);
}

static void remember_reaped(struct cl_swim *s, const struct cl_member *m)
{
    if (s->n_reaped == MAX_REAPED) /* full: forget one to make room */
        s->reaped[0] = s->reaped[--s->n_reaped];
    struct cl_reaped *r = &s->reaped[s->n_reaped++];
    snprintf(r->name, sizeof(r->name), "%s", m->name);
    snprintf(r->addr, sizeof(r->addr), "%s", m->addr);
    r->delay_ms = s->t.reconnect_interval_ms;
    r->next_ms = now_ms(s) + r->delay_ms;
}

static bool addr_is_live(struct cl_swim *s, const char *addr)
{
    for (size_t i = 0; i < s->n_members; i++)
        if (s->members[i]->state <= CL_STATE_SUSPECT && strcmp(s->members[i]->addr, addr) == 0)
            return true;
    return false;
}

static void on_maint_timer(uv_timer_t *h)
{
    struct cl_swim *s = h->data;
    uint64_t now = now_ms(s);
    if (s->leaving)
        return;
    for (size_t i = s->n_members; i-- > 0;) {
        struct cl_member *m = s->members[i];
        if (m == s->self || m->state < CL_STATE_DEAD)
            continue;
        if (now - m->change_ms >= s->t.dead_reap_ms) {
            if (m->state == CL_STATE_DEAD)
                remember_reaped(s, m);
            remove_member(s, m);
        } else if (m->state == CL_STATE_DEAD && now >= m->next_retry_ms) {
            m->next_retry_ms = now + s->t.reconnect_interval_ms;
            send_push_pull(s, m->addr, CL_PP_REPLY);
        }
    }
    for (size_t i = s->n_reaped; i-- > 0;) {
        struct cl_reaped *r = &s->reaped[i];
        if (addr_is_live(s, r->addr)) {
            *r = s->reaped[--s->n_reaped];
            continue;
        }
        if (now >= r->next_ms) {
            send_push_pull(s, r->addr, CL_PP_REPLY);
            r->delay_ms = GV_MIN(r->delay_ms * 2, (uint64_t)s->t.reconnect_max_ms);
            r->next_ms = now + r->delay_ms;
        }
    }
    if (!s->join_active && live_peers(s) == 0)
        join_kick(s);
}

/* ---- life ---- */

void cl_swim_config_init(struct cl_swim_config *c)
{
    memset(c, 0, sizeof(*c));
    cl_timing_lan(&c->timing);
    c->packet_budget = 16 * 1024;
    c->queue_max = 4096;
}

static bool valid_addr(const char *a)
{
    char host[CL_WIRE_MAX_ADDR + 1];
    uint16_t port;
    return a && strlen(a) <= CL_WIRE_MAX_ADDR &&
           gv_split_hostport(a, host, sizeof(host), &port) == 0;
}

static void free_swim(struct cl_swim *s)
{
    for (size_t i = 0; i < s->n_members; i++)
        free(s->members[i]);
    free(s->members);
    free(s->tmp);
    free(s->buckets);
    for (size_t i = 0; i < s->n_seeds; i++) {
        free(s->seeds[i]);
        free(s->answers[i]);
    }
    free(s->seeds);
    free(s->answers);
    free(s->reaped);
    cl_bq_free(&s->q);
    cl_seen_free(&s->seen);
    free(s->out);
    free(s->raw);
    free(s);
}

/* Whether a config names this node, fits the wire's limits and has every
 * interval it needs. */
static bool config_ok(const struct cl_swim_config *cfg)
{
    const struct cl_timing *tm = &cfg->timing;
    if (cfg->name == NULL || cfg->name[0] == '\0' || strlen(cfg->name) > CL_WIRE_MAX_NAME ||
        !valid_addr(cfg->advertise) || cfg->meta_len > CL_WIRE_MAX_META ||
        (cfg->meta_len && cfg->meta == NULL) || tm->probe_interval_ms == 0 ||
        tm->probe_timeout_ms == 0 || tm->probe_timeout_ms >= tm->probe_interval_ms ||
        tm->gossip_interval_ms == 0 || tm->push_pull_interval_ms == 0 || tm->suspicion_mult == 0 ||
        tm->suspicion_max_timeout_mult == 0 || tm->retransmit_mult == 0 || tm->join_retry_ms == 0)
        return false;
    for (size_t i = 0; i < cfg->n_seeds; i++)
        if (!valid_addr(cfg->seeds[i]))
            return false;
    return true;
}

/* Copies the settings and allocates the buffers and tables. GV_ENOMEM
 * leaves s for free_swim. */
static int swim_init(struct cl_swim *s, uv_loop_t *loop, const struct cl_swim_config *cfg,
                     struct cl_transport *t)
{
    s->loop = loop;
    s->tr = t;
    snprintf(s->name, sizeof(s->name), "%s", cfg->name);
    snprintf(s->addr, sizeof(s->addr), "%s", cfg->advertise);
    s->t = cfg->timing;
    s->budget = cfg->packet_budget ? GV_MIN(cfg->packet_budget, (size_t)RAW_CAP) : 16 * 1024;
    s->on_member = cfg->on_member;
    s->on_member_arg = cfg->on_member_arg;
    cl_bq_init(&s->q, cfg->queue_max ? cfg->queue_max : 4096);
    s->bcast_seq = (uint64_t)unix_ms() * 1000;
    s->next_seq = (uint32_t)gv_rand64();
    s->out = malloc(CL_MAX_MESSAGE);
    s->raw = malloc(RAW_CAP);
    s->reaped = calloc(MAX_REAPED, sizeof(*s->reaped));
    if (s->out == NULL || s->raw == NULL || s->reaped == NULL || cl_seen_init(&s->seen, 8192) < 0)
        return GV_ENOMEM;
    return grow_members(s);
}

/* Adds this node to its own table. GV_ENOMEM leaves s for free_swim. */
static int add_self(struct cl_swim *s, const struct cl_swim_config *cfg)
{
    if ((s->self = add_member(s, s->name, s->addr)) == NULL)
        return GV_ENOMEM;
    s->self->incarnation = cfg->incarnation ? cfg->incarnation : (uint64_t)time(NULL);
    copy_meta(s->self, cfg->meta, cfg->meta_len);
    s->self->change_ms = uv_now(s->loop);
    s->self->change_unix_ms = unix_ms();
    return 0;
}

int cl_swim_new(uv_loop_t *loop, const struct cl_swim_config *cfg, struct cl_transport *t,
                struct cl_swim **out)
{
    if (t == NULL || !config_ok(cfg))
        return GV_EINVAL;
    struct cl_swim *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return GV_ENOMEM;
    if (swim_init(s, loop, cfg, t) < 0)
        goto fail;
    if (cfg->n_seeds && cl_swim_join(s, cfg->seeds, cfg->n_seeds) < 0)
        goto fail;
    if (add_self(s, cfg) < 0)
        goto fail;
    uv_timer_t *timers[] = {&s->probe_timer, &s->gossip_timer, &s->pp_timer,
                            &s->maint_timer, &s->join_timer,   &s->leave_timer};
    for (size_t i = 0; i < GV_ARRAY_LEN(timers); i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = s;
        s->open_handles++;
    }
    *out = s;
    return 0;
fail:
    free_swim(s);
    return GV_ENOMEM;
}

int cl_swim_start(struct cl_swim *s)
{
    if (s->started || s->stopping)
        return GV_EINVAL;
    s->started = true;
    s->last_gossip_ms = now_ms(s); /* gossip_soon paces from here */
    /* spread the probes of many nodes started together */
    probe_schedule(s, rand_below(s->t.probe_interval_ms));
    uv_timer_start(&s->gossip_timer, on_gossip_timer, s->t.gossip_interval_ms,
                   s->t.gossip_interval_ms);
    /* early push-pulls (after 2-4, then 4, 8... probe intervals) fill in, within seconds,
     * what the gossip of a start storm lost (messages dropped while many
     * connections were still being set up); then the regular interval */
    uint64_t first = s->t.push_pull_interval_ms;
    s->pp_early_ms = 0;
    if (s->t.push_pull_early_ms > 0 && s->t.push_pull_early_ms < first) {
        s->pp_early_ms = s->t.push_pull_early_ms;
        first = s->pp_early_ms + rand_below(s->pp_early_ms);
    }
    uv_timer_start(&s->pp_timer, on_pp_timer, first, 0);
    uint64_t maint = GV_MIN((uint64_t)s->t.probe_interval_ms, 1000);
    uv_timer_start(&s->maint_timer, on_maint_timer, maint, maint);
    queue_member(s, s->self, s->name);
    join_kick(s);
    return 0;
}

static void on_leave_timer(uv_timer_t *h)
{
    struct cl_swim *s = h->data;
    if (s->leave_cb)
        s->leave_cb(s->leave_arg);
}

int cl_swim_leave(struct cl_swim *s, cl_swim_done_fn done, void *arg)
{
    if (!s->started || s->leaving || s->stopping)
        return GV_EINVAL;
    s->leaving = true;
    s->leave_cb = done;
    s->leave_arg = arg;
    uv_timer_stop(&s->probe_timer);
    uv_timer_stop(&s->pp_timer);
    uv_timer_stop(&s->join_timer);
    uv_timer_stop(&s->maint_timer);
    enum cl_member_state old = s->self->state;
    set_state(s, s->self, CL_STATE_LEFT);
    /* only "left" matters now: drop what else was waiting */
    cl_bq_clear(&s->q);
    queue_member(s, s->self, s->name);
    notify(s, s->self, old, false);
    send_gossip(s, 3 * (size_t)s->t.gossip_nodes);
    uv_timer_start(&s->leave_timer, on_leave_timer, s->t.leave_flush_ms, 0);
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct cl_swim *s = h->data;
    s->open_handles--;
    cl_swim_stop(s, s->stop_cb, s->stop_arg);
}

void cl_swim_stop(struct cl_swim *s, cl_swim_done_fn done, void *arg)
{
    if (!s->stopping) {
        s->stopping = true;
        s->stop_cb = done;
        s->stop_arg = arg;
        uv_timer_t *timers[] = {&s->probe_timer, &s->gossip_timer, &s->pp_timer,
                                &s->maint_timer, &s->join_timer,   &s->leave_timer};
        for (size_t i = 0; i < GV_ARRAY_LEN(timers); i++)
            uv_close((uv_handle_t *)timers[i], on_timer_closed);
        for (size_t i = 0; i < s->n_members; i++)
            clear_suspicion(s->members[i]);
        while (s->relays)
            relay_close(s, s->relays);
        for (struct cl_dns_req *d = s->dns; d; d = d->next)
            uv_cancel((uv_req_t *)&d->req);
        return;
    }
    /* called again from close callbacks: finish once everything is closed */
    if (s->open_handles > 0 || s->dns_inflight > 0 || s->freed)
        return;
    s->freed = true;
    cl_swim_done_fn cb = s->stop_cb;
    void *cb_arg = s->stop_arg;
    free_swim(s);
    if (cb)
        cb(cb_arg);
}

int cl_swim_set_meta(struct cl_swim *s, const uint8_t *meta, size_t len)
{
    if (len > CL_WIRE_MAX_META || (len && meta == NULL))
        return GV_EINVAL;
    copy_meta(s->self, meta, len);
    s->self->incarnation++;
    if (!s->leaving)
        queue_member(s, s->self, s->name);
    notify(s, s->self, s->self->state, false);
    return 0;
}

/* ---- observability ---- */

const char *cl_swim_name(const struct cl_swim *s)
{
    return s->name;
}

uint64_t cl_swim_incarnation(const struct cl_swim *s)
{
    return s->self->incarnation;
}

int cl_swim_members(struct cl_swim *s, int (*fn)(void *arg, const struct cl_member_info *m),
                    void *arg)
{
    for (size_t i = 0; i < s->n_members; i++) {
        struct cl_member_info info;
        fill_info(s, s->members[i], &info);
        int rc = fn(arg, &info);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int cl_swim_member(struct cl_swim *s, const char *name, struct cl_member_info *out)
{
    struct cl_member *m = cl_swim_find(s, name);
    if (m == NULL)
        return GV_ENOENT;
    fill_info(s, m, out);
    return 0;
}

void cl_swim_counts(const struct cl_swim *s, size_t counts[CL_STATE_COUNT])
{
    for (int i = 0; i < CL_STATE_COUNT; i++)
        counts[i] = 0;
    for (size_t i = 0; i < s->n_members; i++)
        counts[s->members[i]->state]++;
}

const struct cl_swim_stats *cl_swim_stats(const struct cl_swim *s)
{
    return &s->stats;
}

uint32_t cl_swim_health_score(const struct cl_swim *s)
{
    return s->awareness;
}

uint64_t cl_swim_suspicion_min_ms(const struct cl_swim *s)
{
    return cl_suspicion_min_ms(s->t.suspicion_mult, live_count(s), s->t.probe_interval_ms);
}

uint64_t cl_swim_suspicion_max_ms(const struct cl_swim *s)
{
    return cl_swim_suspicion_min_ms(s) * s->t.suspicion_max_timeout_mult;
}

bool cl_swim_joined(const struct cl_swim *s)
{
    return s->joined;
}
