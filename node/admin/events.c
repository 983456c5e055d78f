/* events.c - the admin API's server-sent events (GET /events): what the
 * dashboard shows, pushed when it changes. Membership, the applied config
 * (with the latest changes) and target health are compared every
 * EVENTS_TICK_MS while a client listens, and sent only when they differ;
 * request counters go out every EVENTS_STATS_TICKS ticks.
 *
 * Each client is one admin connection (counted against
 * admin_max_connections) with a bounded backlog: a client that falls
 * EVENTS_MAX_BACKLOG bytes behind is ended, never buffered for. The stream
 * is an answer that does not end, so httpd's head, body and idle timeouts do
 * not apply to it; a client that has gone is found by the next write (at
 * the latest the next stats event). */
#include "node/admin/admin_int.h"
#include "node/cstate.h"
#include "node/gossip.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "gateway/metrics.h"

#include <llhttp.h>

#include <stdlib.h>
#include <string.h>

#define EVENTS_TICK_MS       500
#define EVENTS_STATS_TICKS   4 /* stats every 2 s */
#define EVENTS_MAX_CLIENTS   8
#define EVENTS_MAX_BACKLOG   (1024 * 1024)
#define EVENTS_CHANGES_SHOWN 20

struct admin_sse {
    struct admin_events *ev;
    struct gv_httpd_req *r;
    struct gv_buf out; /* events not handed to the connection yet */
    bool writing;      /* a write is on its way: pull() comes back */
    bool ending;       /* end the stream at the next chance */
    struct admin_sse *prev, *next;
};

struct admin_events {
    struct node_admin *admin;
    uv_timer_t timer;
    bool timer_on, timer_closed, stopping;
    struct admin_sse *clients;
    unsigned nclients, max;
    uint64_t sig_members, sig_backends, config_version;
    char config_digest[72];
    unsigned ticks;
};

/* ---- event text ------------------------------------------------------------ */

/* "event: NAME\ndata: JSON\n\n" into b; j is taken over. */
static void put_event(struct gv_buf *b, const char *name, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (text != NULL)
        gv_buf_printf(b, "event: %s\ndata: %s\n\n", name, text);
    free(text);
    json_decref(j);
}

static uint64_t json_sig(json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    uint64_t h = text ? gv_hash64(text, strlen(text), 1) : 0;
    free(text);
    return h;
}

static json_t *members_event(struct node *n)
{
    return n->gossip ? node_gossip_members_json(n->gossip) : json_array();
}

static json_t *config_event(struct node *n)
{
    const char *digest = n->cstate ? node_cstate_digest(n->cstate) : n->config_digest;
    uint64_t version = n->cstate ? node_cstate_version(n->cstate) : n->config_version;
    json_t *changes =
        n->cstate ? node_cstate_changes_json(n->cstate, EVENTS_CHANGES_SHOWN) : json_array();
    return json_pack("{s:s,s:I,s:s,s:o}", "node", n->cfg.node.name, "version", (json_int_t)version,
                     "digest", digest, "changes", changes);
}

static json_t *stats_event(struct node *n)
{
    struct gw_metrics_totals t;
    gw_metrics_totals(n->metrics, (size_t)n->nworkers, &t);
    json_t *buckets = json_array(), *bounds = json_array();
    for (size_t b = 0; b <= GW_HIST_BUCKETS; b++) {
        json_array_append_new(buckets, json_integer((json_int_t)t.bucket[b]));
        if (b < GW_HIST_BUCKETS)
            json_array_append_new(bounds, json_real(gw_hist_bounds[b]));
    }
    return json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:o,s:o}", "node", n->cfg.node.name, "uptime_ms",
                     (json_int_t)(gv_now_ms() - n->started_ms), "requests", (json_int_t)t.requests,
                     "errors", (json_int_t)t.errors, "sum_us", (json_int_t)t.sum_us, "time_ms",
                     (json_int_t)gv_now_ms(), "buckets", buckets, "bounds", bounds);
}

/* ---- clients --------------------------------------------------------------- */

static void maybe_free(struct admin_events *ev)
{
    if (ev->stopping && ev->timer_closed && ev->nclients == 0)
        free(ev);
}

static void client_unlink(struct admin_sse *c)
{
    struct admin_events *ev = c->ev;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        ev->clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    ev->nclients--;
    gv_buf_free(&c->out);
    free(c);
    maybe_free(ev);
}

/* Hands what is waiting to the connection, or ends the stream when asked
 * to, once no write is on its way. */
static void client_flush(struct admin_sse *c)
{
    if (c->writing)
        return;
    if (c->ending) {
        struct gv_httpd_req *r = c->r;
        gv_httpd_on_close(r, NULL);
        client_unlink(c);
        gv_httpd_stream_end(r);
        return;
    }
    if (c->out.len == 0)
        return;
    /* on failure the connection is closing: on_gone comes, pull() does not */
    c->writing = true;
    gv_httpd_stream_write(c->r, c->out.data, c->out.len);
    gv_buf_reset(&c->out);
}

/* The previous write has left. */
static void on_pull(struct gv_httpd_req *r)
{
    struct admin_req *q = gv_httpd_ctx(r);
    struct admin_sse *c = q->sse;
    c->writing = false;
    client_flush(c);
}

/* The connection closed under the stream. */
static void on_gone(struct gv_httpd_req *r)
{
    struct admin_req *q = gv_httpd_ctx(r);
    struct admin_sse *c = q->sse;
    q->sse = NULL;
    client_unlink(c);
}

static void client_send(struct admin_sse *c, const char *text, size_t len)
{
    if (c->ending)
        return;
    if (c->out.len + len > EVENTS_MAX_BACKLOG) {
        gv_warn("admin: an event stream client is %zu bytes behind: ending its stream", c->out.len);
        gv_buf_reset(&c->out);
        c->ending = true;
    } else {
        gv_buf_append(&c->out, text, len);
    }
    client_flush(c);
}

static void broadcast(struct admin_events *ev, const char *name, json_t *j)
{
    struct gv_buf b;
    gv_buf_init(&b);
    put_event(&b, name, j);
    for (struct admin_sse *c = ev->clients, *next; c != NULL; c = next) {
        next = c->next;
        client_send(c, b.data, b.len);
    }
    gv_buf_free(&b);
}

/* ---- the tick -------------------------------------------------------------- */

static void check_members(struct admin_events *ev, struct node *n)
{
    json_t *j = members_event(n);
    uint64_t sig = json_sig(j);
    if (sig != ev->sig_members) {
        ev->sig_members = sig;
        broadcast(ev, "members", j);
    } else {
        json_decref(j);
    }
}

static void check_config(struct admin_events *ev, struct node *n)
{
    const char *digest = n->cstate ? node_cstate_digest(n->cstate) : n->config_digest;
    uint64_t version = n->cstate ? node_cstate_version(n->cstate) : n->config_version;
    if (version == ev->config_version && strcmp(digest, ev->config_digest) == 0)
        return;
    ev->config_version = version;
    snprintf(ev->config_digest, sizeof(ev->config_digest), "%s", digest);
    broadcast(ev, "config", config_event(n));
}

static void check_backends(struct admin_events *ev, struct node *n)
{
    json_t *j = admin_backends_json(n);
    uint64_t sig = json_sig(j);
    if (sig != ev->sig_backends) {
        ev->sig_backends = sig;
        broadcast(ev, "backends", j);
    } else {
        json_decref(j);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct admin_events *ev = t->data;
    struct node *n = ev->admin->node;
    if (ev->nclients == 0) {
        uv_timer_stop(&ev->timer);
        ev->timer_on = false;
        return;
    }
    check_members(ev, n);
    check_config(ev, n);
    check_backends(ev, n);
    if (++ev->ticks % EVENTS_STATS_TICKS == 0)
        broadcast(ev, "stats", stats_event(n));
}

/* ---- the endpoint ---------------------------------------------------------- */

/* Everything the page shows, for a client that just came. */
static void hello(struct admin_events *ev, struct admin_sse *c)
{
    struct node *n = ev->admin->node;
    struct gv_buf b;
    gv_buf_init(&b);
    gv_buf_puts(&b, "retry: 2000\n\n");
    put_event(&b, "members", members_event(n));
    put_event(&b, "config", config_event(n));
    put_event(&b, "backends", admin_backends_json(n));
    put_event(&b, "stats", stats_event(n));
    client_send(c, b.data, b.len);
    gv_buf_free(&b);
}

void admin_get_events(struct admin_req *q, const struct admin_match *m)
{
    static const char headers[] = "Content-Type: text/event-stream\r\n"
                                  "Cache-Control: no-store\r\nX-Accel-Buffering: no\r\n";
    struct admin_events *ev = q->admin->events;
    (void)m;
    if (gv_httpd_method(q->http) == HTTP_HEAD) {
        admin_reply(q, 200, "text/event-stream", "", 0);
        return;
    }
    if (ev == NULL || ev->stopping || ev->nclients >= ev->max) {
        admin_reply_error(q, 503, "too many event stream clients; try again later");
        return;
    }
    struct admin_sse *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        admin_reply_error(q, 500, "out of memory");
        return;
    }
    c->ev = ev;
    c->r = q->http;
    gv_buf_init(&c->out);
    c->next = ev->clients;
    if (ev->clients != NULL)
        ev->clients->prev = c;
    ev->clients = c;
    ev->nclients++;
    q->sse = c;
    c->writing = true; /* the head: pull() comes once it has left */
    gv_httpd_on_close(q->http, on_gone);
    if (gv_httpd_stream(q->http, 200, headers, -1, on_pull) != 0)
        return; /* closed: on_gone comes */
    hello(ev, c);
    if (!ev->timer_on) {
        ev->timer_on = true;
        uv_timer_start(&ev->timer, on_tick, EVENTS_TICK_MS, EVENTS_TICK_MS);
    }
}

int admin_events_new(struct node_admin *a, unsigned max_conns, struct admin_events **out)
{
    struct admin_events *ev = calloc(1, sizeof(*ev));
    if (ev == NULL)
        return -1;
    ev->admin = a;
    /* half the admin connections at most, so the API stays reachable */
    ev->max =
        max_conns > 0 && max_conns / 2 < EVENTS_MAX_CLIENTS ? max_conns / 2 : EVENTS_MAX_CLIENTS;
    uv_timer_init(&a->node->loop, &ev->timer);
    ev->timer.data = ev;
    *out = ev;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct admin_events *ev = h->data;
    ev->timer_closed = true;
    maybe_free(ev);
}

void admin_events_stop(struct admin_events *ev)
{
    ev->stopping = true;
    for (struct admin_sse *c = ev->clients, *next; c != NULL; c = next) {
        next = c->next;
        c->ending = true;
        client_flush(c);
    }
    uv_close((uv_handle_t *)&ev->timer, on_timer_closed);
}
