/* server.c - the admin API (JSON over HTTP/1.1, common/httpd.h) on the
 * node's control loop: its limits, the token check, dispatch through the
 * route table (routes.c), and the endpoints other than /config
 * (config_api.c): /health, /status, /backends, /metrics and the keyring. */
#include "node/admin/admin_int.h"
#include "node/admin/assets.h"
#include "node/admin/routes.h"
#include "node/cstate.h"
#include "node/docs.h"
#include "node/gossip.h"
#include "node/health_share.h"
#include "node/node.h"
#include "node/ratelimit.h"
#include "node/resolve.h"
#include "balancer/lb.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/kinds.h"
#include "common/log.h"
#include "common/util.h"
#include "gateway/worker.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADMIN_MAX_HEAD    (16 * 1024)
#define ADMIN_MAX_HEADERS 100
#define ADMIN_MAX_BODY    (4 * 1024 * 1024)
#define ADMIN_MAX_PATH    1024

/* ---- handlers ------------------------------------------------------------ */

void admin_reply_json(struct admin_req *q, int status, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (text == NULL) {
        admin_reply(q, 500, "application/json", "{\"error\":\"out of memory\"}\n", 26);
    } else {
        struct gv_buf b;
        gv_buf_init(&b);
        gv_buf_puts(&b, text);
        gv_buf_puts(&b, "\n");
        admin_reply(q, status, "application/json", b.data, b.len);
        gv_buf_free(&b);
    }
    free(text);
    json_decref(j);
}

void admin_reply_error(struct admin_req *q, int status, const char *msg)
{
    admin_reply_json(q, status, json_pack("{s:s}", "error", msg));
}

void admin_reply_invalid(struct admin_req *q, const char *path, const char *msg)
{
    admin_reply_json(q, 400, json_pack("{s:s,s:s}", "error", msg, "path", path));
}

json_t *admin_backends_json(struct node *n)
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
    gv_buf_printf(b,
                  "# HELP grapevine_config_quarantined Stored objects left out of the applied "
                  "state because they do not validate (GET /config/KIND/NAME says why).\n"
                  "# TYPE grapevine_config_quarantined gauge\ngrapevine_config_quarantined %lld\n"
                  "# HELP grapevine_config_changes_refused_unsaved_total Changes refused because "
                  "data_dir could not be written.\n"
                  "# TYPE grapevine_config_changes_refused_unsaved_total counter\n"
                  "grapevine_config_changes_refused_unsaved_total %lld\n"
                  "# HELP grapevine_config_log_bytes Bytes of the state log in data_dir (folded "
                  "into the image when it outgrows it).\n"
                  "# TYPE grapevine_config_log_bytes gauge\ngrapevine_config_log_bytes %lld\n"
                  "# HELP grapevine_config_apply_delay_seconds Age of the oldest change in the "
                  "last batch of peers' changes applied here (from its writer's clock).\n"
                  "# TYPE grapevine_config_apply_delay_seconds gauge\n"
                  "grapevine_config_apply_delay_seconds %.3f\n"
                  "# HELP grapevine_config_remote_applies_total Times the state was validated "
                  "and published for batches of peers' changes.\n"
                  "# TYPE grapevine_config_remote_applies_total counter\n"
                  "grapevine_config_remote_applies_total %lld\n",
                  STAT("quarantined"), STAT("refused_unsaved"), STAT("log_bytes"),
                  (double)STAT("last_apply_delay_ms") / 1000.0, STAT("remote_applies"));
#undef STAT
    json_decref(st);
}

static void metrics(struct admin_req *q)
{
    struct node *n = q->admin->node;
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
    node_ratelimit_metrics(&b);
    admin_process_metrics(&b);
    admin_reply(q, 200, "text/plain; version=0.0.4", b.data, b.len);
    gv_buf_free(&b);
}

json_t *admin_body_object(struct admin_req *q)
{
    json_error_t e;
    char msg[300];
    size_t len;
    const char *body = gv_httpd_body(q->http, &len);
    json_t *j = len > 0 ? json_loadb(body, len, 0, &e) : NULL;
    if (j == NULL && len > 0) {
        snprintf(msg, sizeof(msg), "invalid JSON at line %d, column %d: %s", e.line, e.column,
                 e.text);
        admin_reply_invalid(q, "", msg);
    } else if (!json_is_object(j)) {
        admin_reply_invalid(q, "",
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
static struct node_gossip *gossip_or_503(struct admin_req *q)
{
    struct node_gossip *g = q->admin->node->gossip;
    if (g == NULL)
        admin_reply_error(q, 503, "not in a cluster (stopping)");
    return g;
}

/* Liveness: 200 while the process answers, draining or not. */
void admin_get_health(struct admin_req *q, const struct admin_match *m)
{
    struct node *n = q->admin->node;
    (void)m;
    admin_reply_json(q, 200,
                     json_pack("{s:s}", "status", n->stopping || n->leaving ? "draining" : "ok"));
}

/* Why the node should not take traffic yet (NULL: it should). */
static const char *not_ready(struct node *n)
{
    if (n->stopping || n->leaving)
        return "draining";
    struct gw_snapshot *s = node_snapshot(n);
    const struct node_state *st = s ? s->user : NULL;
    bool routes = st != NULL && st->nroutes > 0;
    gw_snapshot_unref(s);
    return routes ? NULL : "no config";
}

#define NO_ROUTES "no routes applied yet (from the config file or peers)"

/* Readiness: 200 once a config with routes is applied and the listeners
 * are up (the admin API starts after them); 503 with no routes to serve
 * and while draining. What load balancers and Kubernetes probes should use. */
void admin_get_ready(struct admin_req *q, const struct admin_match *m)
{
    const char *why = not_ready(q->admin->node);
    (void)m;
    if (why == NULL)
        admin_reply_json(q, 200, json_pack("{s:s}", "status", "ready"));
    else
        admin_reply_json(q, 503,
                         json_pack("{s:s,s:s}", "status", why, "reason",
                                   strcmp(why, "draining") != 0 ? NO_ROUTES
                                   : q->admin->node->stopping
                                       ? "stopping: in-flight requests are finishing"
                                       : "stopping: still serving until node.shutdown_delay "
                                         "ends, then draining"));
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

void admin_get_status(struct admin_req *q, const struct admin_match *m)
{
    (void)m;
    admin_reply_json(q, 200, status_json(q->admin->node));
}

static const struct admin_asset *asset_find(const char *path)
{
    for (size_t i = 0; i < admin_nassets; i++)
        if (strcmp(admin_assets[i].path, path) == 0)
            return &admin_assets[i];
    return NULL;
}

/* The dashboard's files (and the OpenAPI description), compiled in. */
void admin_get_asset(struct admin_req *q, const struct admin_match *m)
{
    const struct admin_asset *a = asset_find(m->route->pattern);
    if (a == NULL)
        admin_reply_error(q, 404, "not found");
    else
        admin_reply(q, 200, a->content_type, (const char *)a->data, a->len);
}

/* The admin API's description, from the base document and the schemas. */
void admin_get_openapi(struct admin_req *q, const struct admin_match *m)
{
    (void)m;
    admin_reply_json(q, 200, node_docs_openapi());
}

/* The latest config changes, newest first: GET /cluster/changes. */
void admin_get_changes(struct admin_req *q, const struct admin_match *m)
{
    struct node *n = q->admin->node;
    (void)m;
    admin_reply_json(q, 200,
                     n->cstate ? node_cstate_changes_json(n->cstate, NODE_CSTATE_CHANGES_MAX)
                               : json_array());
}

/* The busiest cluster-scope rate-limit keys with this node's share. */
void admin_get_ratelimit(struct admin_req *q, const struct admin_match *m)
{
    (void)m;
    admin_reply_json(q, 200, node_ratelimit_json(NODE_RL_SHOWN));
}

void admin_get_members(struct admin_req *q, const struct admin_match *m)
{
    struct node_gossip *g = gossip_or_503(q);
    (void)m;
    if (g != NULL)
        admin_reply_json(q, 200, node_gossip_members_json(g));
}

void admin_get_backends(struct admin_req *q, const struct admin_match *m)
{
    (void)m;
    admin_reply_json(q, 200, admin_backends_json(q->admin->node));
}

void admin_get_metrics(struct admin_req *q, const struct admin_match *m)
{
    (void)m;
    metrics(q);
}

/* The keyring: GET/POST /cluster/keys, POST /cluster/keys/ID/use,
 * DELETE /cluster/keys/ID. */
void admin_get_keys(struct admin_req *q, const struct admin_match *m)
{
    struct node_gossip *g = gossip_or_503(q);
    (void)m;
    if (g != NULL)
        admin_reply_json(q, 200, node_gossip_keys_json(g));
}

void admin_post_keys(struct admin_req *q, const struct admin_match *m)
{
    struct node_gossip *g = gossip_or_503(q);
    char err[256] = "";
    int rv;
    (void)m;
    if (g == NULL)
        return;
    json_t *j = admin_body_object(q);
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
        admin_reply_error(q, 400, err);
    else
        admin_reply_json(q, 200, node_gossip_keys_json(g));
}

/* A key id is up to 63 lower-case hex digits; anything else names no key. */
static bool key_id_ok(const char *id)
{
    size_t n = strlen(id);
    return n > 0 && n < 64 && strspn(id, "0123456789abcdef") == n;
}

static void key_change(struct admin_req *q, const char *id,
                       int (*change)(struct node_gossip *, const char *, char *, size_t))
{
    struct node_gossip *g = gossip_or_503(q);
    char err[256] = "";
    if (g == NULL)
        return;
    if (!key_id_ok(id)) {
        admin_reply_error(q, 404, "not found");
        return;
    }
    int rv = change(g, id, err, sizeof(err));
    if (rv != 0)
        admin_reply_error(q, rv == GV_ENOENT ? 404 : 400, err);
    else
        admin_reply_json(q, 200, node_gossip_keys_json(g));
}

void admin_post_key_use(struct admin_req *q, const struct admin_match *m)
{
    key_change(q, m->param, node_gossip_key_use);
}

void admin_delete_key(struct admin_req *q, const struct admin_match *m)
{
    key_change(q, m->param, node_gossip_key_remove);
}

/* The test-only fault switch: POST /debug/block {"peers": [...]}. */
void admin_post_debug_block(struct admin_req *q, const struct admin_match *m)
{
    struct node_gossip *g = gossip_or_503(q);
    (void)m;
    if (g == NULL)
        return;
    json_t *j = admin_body_object(q);
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
        admin_reply_error(q, 400, "peers must be a list of at most 64 \"host:port\" strings");
    else if (node_gossip_block(g, addrs, n) != 0)
        admin_reply_error(q, 403, "test faults are off (GRAPEVINE_TEST_FAULTS=1 enables them)");
    else
        admin_reply_json(q, 200, json_pack("{s:O}", "blocked", peers));
    json_decref(j);
}

/* 401 unless the request carries the token (when one is set). */
static bool authorized(struct admin_req *q)
{
    const char *token = q->admin->token;
    if (token == NULL)
        return true;
    const char *a = gv_httpd_header(q->http, "authorization");
    size_t tl = strlen(token);
    if (a != NULL && strncmp(a, "Bearer ", 7) == 0 && strlen(a + 7) == tl &&
        CRYPTO_memcmp(a + 7, token, tl) == 0)
        return true;
    admin_reply_error(q, 401, "missing or invalid admin token");
    return false;
}

/* Answers a request the route table has no row for. */
static void reply_unrouted(struct admin_req *q, enum admin_found found, const struct admin_match *m,
                           const char *path)
{
    char methods[64], msg[128], kinds[96];
    switch (found) {
    case ADMIN_NO_METHOD:
        admin_methods_text(m->allowed, 1, q->allow, sizeof(q->allow));
        snprintf(msg, sizeof(msg), "method not allowed (%s)",
                 admin_methods_text(m->allowed, 0, methods, sizeof(methods)));
        admin_reply_error(q, 405, msg);
        break;
    case ADMIN_NO_KIND:
        snprintf(msg, sizeof(msg), "no such kind (%s)", gv_kinds_text(kinds, sizeof(kinds), ", "));
        admin_reply_error(q, 404, msg);
        break;
    case ADMIN_BAD_ESCAPE:
        admin_reply_invalid(q, "name", "bad percent-encoding in the name");
        break;
    default:
        admin_reply_error(q, 404,
                          strncmp(path, "/config/", 8) == 0
                              ? "not found (/config/KIND/NAME; a '/' in NAME is %2F)"
                              : "not found");
    }
}

/* Checks the token, finds the request's row in the route table and runs it,
 * or answers why there is none. */
static void on_request(struct gv_httpd_req *r)
{
    struct admin_req *q = gv_httpd_ctx(r);
    char path[ADMIN_MAX_PATH];
    struct admin_match m;
    size_t len;
    const char *p = gv_httpd_path(r, &len);
    q->admin = gv_httpd_arg(r);
    q->http = r;
    if (len >= sizeof(path)) {
        if (authorized(q))
            admin_reply_error(q, 414, "path too long");
        return;
    }
    memcpy(path, p, len);
    path[len] = '\0';
    enum admin_found found =
        admin_route_match(admin_routes, admin_nroutes, gv_httpd_method(r), path, &m);
    /* only the public files answer without the token; anything else,
     * unknown paths included, is a 401 first */
    if (!(found == ADMIN_FOUND && m.route->public) && !authorized(q))
        return;
    if (found == ADMIN_FOUND)
        m.route->handler(q, &m);
    else
        reply_unrouted(q, found, &m, path);
}

/* ---- answers --------------------------------------------------------------- */

void admin_reply(struct admin_req *q, int status, const char *ctype, const char *body, size_t len)
{
    char headers[160] = "";
    if (status != 204) /* no body, so no Content-Type (RFC 9110) */
        snprintf(headers, sizeof(headers), "Content-Type: %s\r\n", ctype);
    if (q->allow[0] != '\0') /* a 405 says what the path takes (RFC 9110) */
        snprintf(headers + strlen(headers), sizeof(headers) - strlen(headers), "Allow: %s\r\n",
                 q->allow);
    gv_httpd_respond(q->http, status, headers, body, len);
}

void admin_hold(struct admin_req *q, int status, json_t *answer)
{
    q->answer_status = status;
    q->answer = answer;
    gv_httpd_hold(q->http);
}

void admin_change_done(void *arg, int status)
{
    struct admin_req *q = arg;
    json_t *answer = q->answer;
    q->answer = NULL;
    if (status < 0) {
        char msg[300];
        /* nothing of the change is kept: it could not be saved */
        snprintf(msg, sizeof(msg), "change refused: it cannot be saved to disk (%s)",
                 gv_strerror(status));
        json_decref(answer);
        admin_reply_error(q, 507, msg);
    } else if (q->answer_status == 204) {
        json_decref(answer);
        admin_reply(q, 204, "application/json", "", 0);
    } else {
        admin_reply_json(q, q->answer_status, answer);
    }
}

/* ---- the server ------------------------------------------------------------ */

static const struct gv_httpd_ops admin_ops = {
    .ctx_size = sizeof(struct admin_req),
    .on_request = on_request,
};

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

/* The token (a->token, NULL when none), and the rule that an admin API off
 * loopback has one. */
static int load_token(struct node_admin *a, const char *addr, const char *host)
{
    const char *file = a->node->cfg.node.admin_token_file;
    int rv = file != NULL ? read_token(file, &a->token) : 0;
    if (rv != 0) {
        gv_error("admin: cannot read token file %s: %s", file, gv_strerror(rv));
        return rv;
    }
    if (a->token == NULL && !loopback(host)) {
        gv_error("admin: %s is not loopback, so node.admin_token_file is required", addr);
        return GV_EINVAL;
    }
    return 0;
}

/* The admin API's limits: the head (size, count, time) and keep-alive as the
 * node's client settings say, and a body of at most 4 MiB. */
static struct gv_httpd_limits admin_limits(const struct node_settings *s)
{
    return (struct gv_httpd_limits){
        .max_head_bytes = ADMIN_MAX_HEAD,
        .max_headers = ADMIN_MAX_HEADERS,
        .max_body_bytes = ADMIN_MAX_BODY,
        .head_timeout_ms = s->header_timeout_ms,
        .body_timeout_ms = s->admin_body_timeout_ms,
        .idle_timeout_ms = s->idle_timeout_ms,
        .max_conns = s->admin_max_connections,
    };
}

int node_admin_start(struct node *n, const char *addr, struct node_admin **out)
{
    char host[256];
    uint16_t port;
    struct sockaddr_storage ss;
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
    struct gv_httpd_config cfg = {
        .ops = &admin_ops, .arg = a, .limits = admin_limits(&n->cfg.node)};
    int rv = load_token(a, addr, host);
    if (rv == 0 && (rv = gv_httpd_start(&n->loop, (struct sockaddr *)&ss, &cfg, &a->http)) != 0)
        gv_error("admin: cannot listen on %s: %s", addr, uv_strerror(rv));
    if (rv == 0 && admin_events_new(a, cfg.limits.max_conns, &a->events) != 0) {
        gv_httpd_stop(a->http, true, NULL, NULL);
        rv = GV_ENOMEM;
    }
    if (rv != 0) {
        free(a->token);
        free(a);
        return rv;
    }
    gv_info("admin API listening on %s", addr);
    *out = a;
    return 0;
}

static void on_stopped(void *arg)
{
    struct node_admin *a = arg;
    free(a->token);
    free(a);
}

/* Idle keep-alive connections (a dashboard, a metrics scraper) must not keep
 * the node from exiting: they are closed now; those writing an answer or
 * holding a change close once it is written. */
void node_admin_stop(struct node_admin *a)
{
    admin_events_stop(a->events); /* a stream is an answer that would never end */
    gv_httpd_stop(a->http, false, on_stopped, a);
}
