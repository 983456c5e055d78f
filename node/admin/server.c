/* server.c - the admin API (JSON over HTTP/1.1) on the node's control loop:
 * connections, the token check, dispatch through the route table
 * (routes.c), and the endpoints other than /config (config_api.c): /health,
 * /status, /backends, /metrics and the cluster keyring. */
#include "node/admin/admin_int.h"
#include "node/admin/routes.h"
#include "node/cstate.h"
#include "node/gossip.h"
#include "node/health_share.h"
#include "node/node.h"
#include "node/resolve.h"
#include "balancer/lb.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/kinds.h"
#include "common/log.h"
#include "common/util.h"
#include "gateway/http.h"
#include "gateway/worker.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <llhttp.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADMIN_MAX_HEAD (16 * 1024)
#define ADMIN_MAX_BODY (4 * 1024 * 1024)
#define ADMIN_MAX_PATH 1024

static llhttp_settings_t admin_settings;

/* ---- handlers ------------------------------------------------------------ */

void admin_reply_json(struct admin_conn *c, int status, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (text == NULL) {
        admin_reply(c, 500, "application/json", "{\"error\":\"out of memory\"}\n", 26);
    } else {
        struct gv_buf b;
        gv_buf_init(&b);
        gv_buf_puts(&b, text);
        gv_buf_puts(&b, "\n");
        admin_reply(c, status, "application/json", b.data, b.len);
        gv_buf_free(&b);
    }
    free(text);
    json_decref(j);
}

void admin_reply_error(struct admin_conn *c, int status, const char *msg)
{
    admin_reply_json(c, status, json_pack("{s:s}", "error", msg));
}

void admin_reply_invalid(struct admin_conn *c, const char *path, const char *msg)
{
    admin_reply_json(c, 400, json_pack("{s:s,s:s}", "error", msg, "path", path));
}

static json_t *backends_json(struct node *n)
{
    struct gw_snapshot *s = node_snapshot(n);
    json_t *arr = json_array();
    uint64_t now = gv_now_ms();
    for (size_t i = 0; s != NULL && i < s->nservices; i++) {
        const struct lb_service_spec *svc = &s->services[i];
        json_t *targets = json_array();
        for (size_t t = 0; t < svc->ntargets; t++) {
            struct lb_target_state *st = s->states[i][t];
            bool healthy = lb_target_available(st, now);
            enum lb_reason reason = lb_target_reason(st, now);
            /* who probes it: the same names on every node (health plane) */
            const char *addr = svc->targets[t].address;
            json_t *by = svc->health.enabled
                             ? node_health_share_checkers(n->cfg.node.name, svc->name, addr)
                             : json_array();
            /* the target as configured: an address, or the name it stands for */
            char from[272];
            const struct lb_target_spec *ts = &svc->targets[t];
            snprintf(from, sizeof(from), "%s:%u", ts->host, (unsigned)ts->port);
            json_array_append_new(
                targets, json_pack("{s:s,s:s,s:i,s:b,s:s,s:o*,s:I}", "address", addr, "target",
                                   ts->from_name ? from : addr, "weight", ts->weight, "healthy",
                                   healthy, "reason", lb_reason_name(reason), "checked_by", by,
                                   "inflight", (json_int_t)atomic_load(&st->inflight)));
        }
        node_resolve_pending_json(n, s, i, targets);
        json_array_append_new(arr, json_pack("{s:s,s:s,s:o}", "service", svc->name, "balancer",
                                             svc->algo->name, "targets", targets));
    }
    gw_snapshot_unref(s);
    return arr;
}

/* The replicated state's counters (node_cstate_stats_json) in Prometheus
 * form. */
static void cstate_metrics(struct node_cstate *cs, struct gv_buf *b)
{
    json_t *st = node_cstate_stats_json(cs);
#define STAT(k) ((long long)json_integer_value(json_object_get(st, k)))
    gv_buf_printf(b,
                  "# HELP grapevine_config_objects Objects in the replicated store (deletes "
                  "included until collected).\n# TYPE grapevine_config_objects gauge\n"
                  "grapevine_config_objects %lld\n"
                  "# HELP grapevine_config_changes_applied_total Changes applied, made here "
                  "(local) or by peers (remote).\n"
                  "# TYPE grapevine_config_changes_applied_total counter\n"
                  "grapevine_config_changes_applied_total{origin=\"local\"} %lld\n"
                  "grapevine_config_changes_applied_total{origin=\"remote\"} %lld\n"
                  "# HELP grapevine_config_states_rejected_total Merged states that did not "
                  "validate and were not served.\n"
                  "# TYPE grapevine_config_states_rejected_total counter\n"
                  "grapevine_config_states_rejected_total %lld\n"
                  "# HELP grapevine_config_save_errors_total Failed writes of data_dir.\n"
                  "# TYPE grapevine_config_save_errors_total counter\n"
                  "grapevine_config_save_errors_total %lld\n"
                  "# HELP grapevine_config_invalid Whether the store's state does not validate "
                  "and the last good one is served (1).\n"
                  "# TYPE grapevine_config_invalid gauge\ngrapevine_config_invalid %d\n"
                  "# HELP grapevine_config_unknown_kind_entries Stored objects of kinds this "
                  "version does not know (kept and spread, not applied).\n"
                  "# TYPE grapevine_config_unknown_kind_entries gauge\n"
                  "grapevine_config_unknown_kind_entries %lld\n",
                  STAT("objects"), STAT("applied_local"), STAT("applied_remote"),
                  STAT("states_rejected"), STAT("save_errors"),
                  json_is_true(json_object_get(st, "invalid")) ? 1 : 0,
                  STAT("unknown_kind_entries"));
#undef STAT
    json_decref(st);
}

static void metrics(struct admin_conn *c)
{
    struct node *n = c->admin->node;
    struct gv_buf b;
    gv_buf_init(&b);
    gw_metrics_render(n->metrics, (size_t)n->nworkers, &b);
    struct gw_snapshot *s = node_snapshot(n);
    gv_buf_puts(&b, "# HELP grapevine_upstream_healthy Whether a target takes traffic (1) or "
                    "not (0).\n# TYPE grapevine_upstream_healthy gauge\n");
    uint64_t now = gv_now_ms();
    for (size_t i = 0; s != NULL && i < s->nservices; i++)
        for (size_t t = 0; t < s->services[i].ntargets; t++)
            gv_buf_printf(&b, "grapevine_upstream_healthy{service=\"%s\",target=\"%s\"} %d\n",
                          s->services[i].name, s->services[i].targets[t].address,
                          lb_target_available(s->states[i][t], now) ? 1 : 0);
    gw_snapshot_unref(s);
    struct node_health_share_stats hs;
    node_health_share_stats(&hs);
    gv_buf_printf(&b,
                  "# HELP grapevine_health_reports_total Shared health reports (cluster "
                  "channel 2): sent, applied, ignored (stale, unknown target) or malformed.\n"
                  "# TYPE grapevine_health_reports_total counter\n"
                  "grapevine_health_reports_total{result=\"sent\"} %llu\n"
                  "grapevine_health_reports_total{result=\"applied\"} %llu\n"
                  "grapevine_health_reports_total{result=\"ignored\"} %llu\n"
                  "grapevine_health_reports_total{result=\"malformed\"} %llu\n",
                  (unsigned long long)hs.sent, (unsigned long long)hs.applied,
                  (unsigned long long)hs.ignored, (unsigned long long)hs.malformed);
    gv_buf_printf(
        &b,
        "# HELP grapevine_config_version Version of the applied cluster config.\n"
        "# TYPE grapevine_config_version gauge\ngrapevine_config_version %llu\n",
        (unsigned long long)(n->cstate ? node_cstate_version(n->cstate) : n->config_version));
    if (n->cstate != NULL)
        cstate_metrics(n->cstate, &b);
    if (n->gossip != NULL)
        node_gossip_metrics(n->gossip, &b);
    admin_reply(c, 200, "text/plain; version=0.0.4", b.data, b.len);
    gv_buf_free(&b);
}

json_t *admin_body_object(struct admin_conn *c)
{
    json_error_t e;
    char msg[300];
    json_t *j = c->body.len ? json_loadb(c->body.data, c->body.len, 0, &e) : NULL;
    if (j == NULL && c->body.len > 0) {
        snprintf(msg, sizeof(msg), "invalid JSON at line %d, column %d: %s", e.line, e.column,
                 e.text);
        admin_reply_invalid(c, "", msg);
    } else if (!json_is_object(j)) {
        admin_reply_invalid(c, "",
                            j ? "body must be a JSON object"
                              : "body must be a JSON object "
                                "(the body is empty)");
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* ---- the endpoints (routes.c maps requests to them) -------------------------- */

/* The gossip, or NULL after answering 503 (the node is stopping). */
static struct node_gossip *gossip_or_503(struct admin_conn *c)
{
    struct node_gossip *g = c->admin->node->gossip;
    if (g == NULL)
        admin_reply_error(c, 503, "not in a cluster (stopping)");
    return g;
}

void admin_get_health(struct admin_conn *c, const struct admin_match *m)
{
    struct node *n = c->admin->node;
    (void)m;
    admin_reply_json(c, n->stopping ? 503 : 200,
                     json_pack("{s:s}", "status", n->stopping ? "draining" : "ok"));
}

static json_t *status_json(struct node *n)
{
    json_t *members =
        n->gossip ? node_gossip_counts_json(n->gossip)
                  : json_pack("{s:i,s:i,s:i,s:i}", "alive", 1, "suspect", 0, "dead", 0, "left", 0);
    const char *digest = n->cstate ? node_cstate_digest(n->cstate) : n->config_digest;
    uint64_t version = n->cstate ? node_cstate_version(n->cstate) : n->config_version;
    json_t *j = json_pack("{s:s,s:s,s:s,s:I,s:o,s:i,s:I}", "node", n->cfg.node.name, "version",
                          GV_VERSION, "config_digest", digest, "config_version",
                          (json_int_t)version, "members", members, "workers", n->nworkers,
                          "uptime_ms", (json_int_t)(gv_now_ms() - n->started_ms));
    if (j != NULL && n->cstate != NULL)
        json_object_set_new(j, "config_state", node_cstate_stats_json(n->cstate));
    return j;
}

void admin_get_status(struct admin_conn *c, const struct admin_match *m)
{
    (void)m;
    admin_reply_json(c, 200, status_json(c->admin->node));
}

void admin_get_members(struct admin_conn *c, const struct admin_match *m)
{
    struct node_gossip *g = gossip_or_503(c);
    (void)m;
    if (g != NULL)
        admin_reply_json(c, 200, node_gossip_members_json(g));
}

void admin_get_backends(struct admin_conn *c, const struct admin_match *m)
{
    (void)m;
    admin_reply_json(c, 200, backends_json(c->admin->node));
}

void admin_get_metrics(struct admin_conn *c, const struct admin_match *m)
{
    (void)m;
    metrics(c);
}

/* The keyring: GET/POST /cluster/keys, POST /cluster/keys/ID/use,
 * DELETE /cluster/keys/ID. */
void admin_get_keys(struct admin_conn *c, const struct admin_match *m)
{
    struct node_gossip *g = gossip_or_503(c);
    (void)m;
    if (g != NULL)
        admin_reply_json(c, 200, node_gossip_keys_json(g));
}

void admin_post_keys(struct admin_conn *c, const struct admin_match *m)
{
    struct node_gossip *g = gossip_or_503(c);
    char err[256] = "";
    int rv;
    (void)m;
    if (g == NULL)
        return;
    json_t *j = admin_body_object(c);
    if (j == NULL)
        return;
    const char *key = json_string_value(json_object_get(j, "key"));
    if (key == NULL || json_object_size(j) != 1)
        rv = (snprintf(err, sizeof(err), "body must be {\"key\": \"<base64 of 32 bytes>\"}"),
              GV_EINVAL);
    else
        rv = node_gossip_key_install(g, key, err, sizeof(err));
    json_decref(j);
    if (rv != 0)
        admin_reply_error(c, 400, err);
    else
        admin_reply_json(c, 200, node_gossip_keys_json(g));
}

/* A key id is up to 63 lower-case hex digits; anything else names no key. */
static bool key_id_ok(const char *id)
{
    size_t n = strlen(id);
    return n > 0 && n < 64 && strspn(id, "0123456789abcdef") == n;
}

static void key_change(struct admin_conn *c, const char *id,
                       int (*change)(struct node_gossip *, const char *, char *, size_t))
{
    struct node_gossip *g = gossip_or_503(c);
    char err[256] = "";
    if (g == NULL)
        return;
    if (!key_id_ok(id)) {
        admin_reply_error(c, 404, "not found");
        return;
    }
    int rv = change(g, id, err, sizeof(err));
    if (rv != 0)
        admin_reply_error(c, rv == GV_ENOENT ? 404 : 400, err);
    else
        admin_reply_json(c, 200, node_gossip_keys_json(g));
}

void admin_post_key_use(struct admin_conn *c, const struct admin_match *m)
{
    key_change(c, m->param, node_gossip_key_use);
}

void admin_delete_key(struct admin_conn *c, const struct admin_match *m)
{
    key_change(c, m->param, node_gossip_key_remove);
}

/* The test-only fault switch: POST /debug/block {"peers": [...]}. */
void admin_post_debug_block(struct admin_conn *c, const struct admin_match *m)
{
    struct node_gossip *g = gossip_or_503(c);
    (void)m;
    if (g == NULL)
        return;
    json_t *j = admin_body_object(c);
    if (j == NULL)
        return;
    json_t *peers = json_object_get(j, "peers");
    const char *addrs[64];
    size_t n = 0, i;
    json_t *p;
    bool ok = json_is_array(peers) && json_array_size(peers) <= 64;
    json_array_foreach(peers, i, p)
    {
        if (!json_is_string(p))
            ok = false;
        else if (n < 64)
            addrs[n++] = json_string_value(p);
    }
    if (!ok)
        admin_reply_error(c, 400, "peers must be a list of at most 64 \"host:port\" strings");
    else if (node_gossip_block(g, addrs, n) != 0)
        admin_reply_error(c, 403, "test faults are off (GRAPEVINE_TEST_FAULTS=1 enables them)");
    else
        admin_reply_json(c, 200, json_pack("{s:O}", "blocked", peers));
    json_decref(j);
}

/* Checks the token, finds the request's row in the route table and runs it,
 * or answers why there is none. */
static void route_request(struct admin_conn *c)
{
    const char *url = c->url.data ? c->url.data : "/";
    size_t ul = strcspn(url, "?");
    char path[ADMIN_MAX_PATH], methods[64], msg[128];
    struct admin_match m;

    if (c->admin->token != NULL) {
        const char *a = c->auth.data ? c->auth.data : "";
        size_t tl = strlen(c->admin->token);
        if (strncmp(a, "Bearer ", 7) != 0 || strlen(a + 7) != tl ||
            CRYPTO_memcmp(a + 7, c->admin->token, tl) != 0) {
            admin_reply_error(c, 401, "missing or invalid admin token");
            return;
        }
    }
    if (ul >= sizeof(path)) {
        admin_reply_error(c, 414, "path too long");
        return;
    }
    memcpy(path, url, ul);
    path[ul] = '\0';
    switch (admin_route_match(admin_routes, admin_nroutes, c->method, path, &m)) {
    case ADMIN_FOUND:
        m.route->handler(c, &m);
        break;
    case ADMIN_NO_METHOD:
        admin_methods_text(m.allowed, 1, c->allow, sizeof(c->allow));
        snprintf(msg, sizeof(msg), "method not allowed (%s)",
                 admin_methods_text(m.allowed, 0, methods, sizeof(methods)));
        admin_reply_error(c, 405, msg);
        break;
    case ADMIN_NO_KIND: {
        char kinds[96];
        snprintf(msg, sizeof(msg), "no such kind (%s)", gv_kinds_text(kinds, sizeof(kinds), ", "));
        admin_reply_error(c, 404, msg);
        break;
    }
    case ADMIN_BAD_ESCAPE:
        admin_reply_invalid(c, "name", "bad percent-encoding in the name");
        break;
    case ADMIN_NOT_FOUND:
        admin_reply_error(c, 404,
                          strncmp(path, "/config/", 8) == 0
                              ? "not found (/config/KIND/NAME; a '/' in NAME is %2F)"
                              : "not found");
        break;
    }
}

/* ---- connection plumbing ------------------------------------------------- */

static void free_conn(struct admin_conn *c)
{
    struct node_admin *a = c->admin;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        a->first = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    a->conns--;
    gv_buf_free(&c->url);
    gv_buf_free(&c->field);
    gv_buf_free(&c->auth);
    gv_buf_free(&c->body);
    gv_buf_free(&c->unparsed);
    json_decref(c->answer);
    free(c);
    if (a->stopping && a->conns == 0 && uv_is_closing((uv_handle_t *)&a->listener) &&
        a->listener.data == NULL)
        free(a);
}

static void on_conn_closed(uv_handle_t *h)
{
    struct admin_conn *c = h->data;
    c->closed = true;
    if (!c->held) /* else admin_change_done frees it */
        free_conn(c);
}

static void conn_close(struct admin_conn *c)
{
    if (!c->closing) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    }
}

struct admin_write {
    uv_write_t req;
    struct admin_conn *conn;
    bool close;
    char data[];
};

static void on_written(uv_write_t *w, int status)
{
    struct admin_write *aw = (struct admin_write *)w;
    struct admin_conn *c = aw->conn;
    c->writes--;
    /* stopping: keep-alive ends with the answers already on their way */
    if (status < 0 || aw->close || (c->admin->stopping && c->writes == 0 && !c->held))
        conn_close(c);
    free(aw);
}

void admin_reply(struct admin_conn *c, int status, const char *ctype, const char *body, size_t len)
{
    bool close = !c->keep_alive || c->admin->stopping;
    struct gv_buf b;
    if (c->closing)
        return;
    gv_buf_init(&b);
    gv_buf_printf(&b, "HTTP/1.1 %d %s\r\n", status, gw_reason(status));
    if (status == 204) /* no body, so no Content-Type or Content-Length (RFC 9110) */
        len = 0;
    else
        gv_buf_printf(&b, "Content-Type: %s\r\nContent-Length: %zu\r\n", ctype, len);
    if (c->allow[0] != '\0') /* a 405 says what the path takes (RFC 9110) */
        gv_buf_printf(&b, "Allow: %s\r\n", c->allow);
    c->allow[0] = '\0';
    gv_buf_printf(&b, "%s\r\n", close ? "Connection: close\r\n" : "");
    if (c->method != HTTP_HEAD)
        gv_buf_append(&b, body, len);
    struct admin_write *aw = malloc(sizeof(*aw) + b.len);
    if (aw == NULL) {
        gv_buf_free(&b);
        conn_close(c);
        return;
    }
    aw->conn = c;
    aw->close = close;
    memcpy(aw->data, b.data, b.len);
    uv_buf_t ub = uv_buf_init(aw->data, (unsigned)b.len);
    gv_buf_free(&b);
    if (uv_write(&aw->req, (uv_stream_t *)&c->tcp, &ub, 1, on_written) != 0) {
        free(aw);
        conn_close(c);
        return;
    }
    c->writes++;
}

#define ACONN(p) ((struct admin_conn *)(p)->data)

static int on_begin(llhttp_t *p)
{
    struct admin_conn *c = ACONN(p);
    gv_buf_reset(&c->url);
    gv_buf_reset(&c->field);
    gv_buf_reset(&c->auth);
    gv_buf_reset(&c->body);
    c->in_auth = false;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct admin_conn *c = ACONN(p);
    if (c->url.len + len > ADMIN_MAX_HEAD)
        return -1;
    return gv_buf_append(&c->url, at, len) ? -1 : 0;
}

static int on_field(llhttp_t *p, const char *at, size_t len)
{
    struct admin_conn *c = ACONN(p);
    if (c->field.len + len > 256)
        return -1;
    return gv_buf_append(&c->field, at, len) ? -1 : 0;
}

static int on_field_done(llhttp_t *p)
{
    struct admin_conn *c = ACONN(p);
    c->in_auth = gw_name_eq(c->field.data, c->field.len, "authorization");
    gv_buf_reset(&c->field);
    return 0;
}

static int on_value(llhttp_t *p, const char *at, size_t len)
{
    struct admin_conn *c = ACONN(p);
    if (!c->in_auth)
        return 0;
    if (c->auth.len + len > 1024)
        return -1;
    return gv_buf_append(&c->auth, at, len) ? -1 : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct admin_conn *c = ACONN(p);
    if (c->body.len + len > ADMIN_MAX_BODY) {
        c->too_big = true;
        return -1;
    }
    return gv_buf_append(&c->body, at, len) ? -1 : 0;
}

/* A held request pauses the parser right after itself: what the client
 * pipelined behind it waits in c->unparsed until it is answered. */
static int on_complete(llhttp_t *p)
{
    struct admin_conn *c = ACONN(p);
    c->method = llhttp_get_method(p);
    c->keep_alive = llhttp_should_keep_alive(p);
    route_request(c);
    return c->held ? HPE_PAUSED : 0;
}

/* Parses data; stops reading when a request is held, keeping what is left. */
static void feed(struct admin_conn *c, const char *data, size_t len)
{
    llhttp_errno_t err = llhttp_execute(&c->parser, data, len);
    if (err == HPE_PAUSED) {
        const char *pos = llhttp_get_error_pos(&c->parser);
        size_t used = pos != NULL && pos >= data && pos <= data + len ? (size_t)(pos - data) : len;
        uv_read_stop((uv_stream_t *)&c->tcp);
        if (gv_buf_append(&c->unparsed, data + used, len - used) != 0)
            conn_close(c);
    } else if (err != HPE_OK) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: "
                                  "application/json\r\nContent-Length: 31\r\nConnection: "
                                  "close\r\n\r\n{\"error\":\"malformed request\"}\n\n";
        uv_buf_t b = uv_buf_init((char *)bad, sizeof(bad) - 1);
        uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        conn_close(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct admin_conn *c = s->data;
    if (nread < 0)
        conn_close(c);
    else if (nread > 0 && !c->closing)
        feed(c, buf->base, (size_t)nread);
    free(buf->base);
}

void admin_hold(struct admin_conn *c, int status, json_t *answer)
{
    c->held = true;
    c->answer_status = status;
    c->answer = answer;
}

void admin_change_done(void *arg, int status)
{
    struct admin_conn *c = arg;
    json_t *answer = c->answer;
    c->answer = NULL;
    c->held = false;
    if (c->closed) {
        json_decref(answer);
        free_conn(c);
        return;
    }
    if (status < 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "change applied but not saved to disk: %s", gv_strerror(status));
        json_decref(answer);
        admin_reply_error(c, 500, msg);
    } else if (c->answer_status == 204) {
        json_decref(answer);
        admin_reply(c, 204, "application/json", "", 0);
    } else {
        admin_reply_json(c, c->answer_status, answer);
    }
    if (c->closing || !c->keep_alive || c->admin->stopping)
        return; /* closed once the answer is written */
    struct gv_buf rest = c->unparsed;
    gv_buf_init(&c->unparsed);
    llhttp_resume(&c->parser);
    if (rest.len > 0)
        feed(c, rest.data, rest.len);
    gv_buf_free(&rest);
    if (!c->held && !c->closing)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct node_admin *a = server->data;
    if (status < 0 || a->stopping)
        return;
    struct admin_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->admin = a;
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    a->conns++;
    c->next = a->first;
    if (a->first != NULL)
        a->first->prev = c;
    a->first = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    llhttp_init(&c->parser, HTTP_REQUEST, &admin_settings);
    c->parser.data = c;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static bool loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

static int read_token(const char *path, char **out)
{
    FILE *f = fopen(path, "r");
    char buf[512];
    if (f == NULL)
        return -errno;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    if (n == 0)
        return GV_EINVAL;
    *out = strdup(buf);
    return *out ? 0 : GV_ENOMEM;
}

int node_admin_start(struct node *n, const char *addr, struct node_admin **out)
{
    char host[256];
    uint16_t port;
    struct sockaddr_storage ss;
    int rv;
    llhttp_settings_init(&admin_settings);
    admin_settings.on_message_begin = on_begin;
    admin_settings.on_url = on_url;
    admin_settings.on_header_field = on_field;
    admin_settings.on_header_field_complete = on_field_done;
    admin_settings.on_header_value = on_value;
    admin_settings.on_body = on_body;
    admin_settings.on_message_complete = on_complete;
    if (gv_split_hostport(addr, host, sizeof(host), &port) != 0 ||
        (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
         uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)) {
        gv_error("admin: bad address %s", addr);
        return GV_EINVAL;
    }
    struct node_admin *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return GV_ENOMEM;
    a->node = n;
    if (n->cfg.node.admin_token_file != NULL &&
        (rv = read_token(n->cfg.node.admin_token_file, &a->token)) != 0) {
        gv_error("admin: cannot read token file %s: %s", n->cfg.node.admin_token_file,
                 gv_strerror(rv));
        free(a);
        return rv;
    }
    if (a->token == NULL && !loopback(host)) {
        gv_error("admin: %s is not loopback, so node.admin_token_file is required", addr);
        free(a);
        return GV_EINVAL;
    }
    uv_tcp_init(&n->loop, &a->listener);
    a->listener.data = a;
    if ((rv = uv_tcp_bind(&a->listener, (struct sockaddr *)&ss, 0)) != 0 ||
        (rv = uv_listen((uv_stream_t *)&a->listener, 128, on_connection)) != 0) {
        gv_error("admin: cannot listen on %s: %s", addr, uv_strerror(rv));
        a->listener.data = NULL;
        a->stopping = true;
        free(a->token);
        a->token = NULL;
        uv_close((uv_handle_t *)&a->listener, NULL);
        uv_run(&n->loop, UV_RUN_NOWAIT);
        free(a);
        return rv;
    }
    gv_info("admin API listening on %s", addr);
    *out = a;
    return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    struct node_admin *a = h->data;
    h->data = NULL;
    free(a->token);
    a->token = NULL;
    if (a->conns == 0)
        free(a);
}

/* Idle keep-alive connections (a dashboard, a metrics scraper) must not keep
 * the node from exiting: they are closed now; those writing an answer or
 * holding a change close once it is written. */
void node_admin_stop(struct node_admin *a)
{
    a->stopping = true;
    for (struct admin_conn *c = a->first; c != NULL; c = c->next)
        if (c->writes == 0 && !c->held)
            conn_close(c);
    uv_close((uv_handle_t *)&a->listener, on_listener_closed);
}
