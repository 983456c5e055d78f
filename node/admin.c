/* admin.c - the admin API (JSON over HTTP/1.1) on the node's control loop:
 * /health, /status, /backends, /config and /metrics. */
#include "node/node.h"
#include "node/gossip.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "gateway/http.h"
#include "gateway/worker.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <llhttp.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADMIN_MAX_HEAD (16 * 1024)
#define ADMIN_MAX_BODY (4 * 1024 * 1024)

struct node_admin {
    struct node *node;
    uv_tcp_t listener;
    char *token; /* NULL: no token required */
    int conns;
    bool stopping;
};

struct admin_conn {
    uv_tcp_t tcp;
    llhttp_t parser;
    struct node_admin *admin;
    struct gv_buf url;
    struct gv_buf field;
    struct gv_buf auth;
    struct gv_buf body;
    bool in_auth;
    bool closing;
    bool too_big;
};

static llhttp_settings_t admin_settings;

static void reply(struct admin_conn *c, int status, const char *ctype, const char *body,
                  size_t len);

/* ---- handlers ------------------------------------------------------------ */

static void reply_json(struct admin_conn *c, int status, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (text == NULL) {
        reply(c, 500, "application/json", "{\"error\":\"out of memory\"}\n", 26);
    } else {
        size_t len = strlen(text);
        text[len] = '\0';
        struct gv_buf b;
        gv_buf_init(&b);
        gv_buf_append(&b, text, len);
        gv_buf_puts(&b, "\n");
        reply(c, status, "application/json", b.data, b.len);
        gv_buf_free(&b);
    }
    free(text);
    json_decref(j);
}

static void reply_error(struct admin_conn *c, int status, const char *msg)
{
    reply_json(c, status, json_pack("{s:s}", "error", msg));
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
            json_array_append_new(
                targets, json_pack("{s:s,s:i,s:b,s:s,s:s,s:I}", "address", svc->targets[t].address,
                                   "weight", svc->targets[t].weight, "healthy", healthy, "reason",
                                   lb_reason_name(reason), "checked_by",
                                   svc->health.enabled ? n->cfg.node.name : "", "inflight",
                                   (json_int_t)atomic_load(&st->inflight)));
        }
        json_array_append_new(arr, json_pack("{s:s,s:s,s:o}", "service", svc->name, "balancer",
                                             lb_algo_name(svc->algo), "targets", targets));
    }
    gw_snapshot_unref(s);
    return arr;
}

static json_t *config_json(struct node *n)
{
    struct gw_snapshot *s = node_snapshot(n);
    json_t *j = NULL;
    if (s != NULL) {
        j = node_state_to_json((const struct node_state *)s->user);
        if (j != NULL)
            json_object_set_new(j, "digest", json_string(n->config_digest));
    }
    gw_snapshot_unref(s);
    return j;
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
    gv_buf_printf(&b,
                  "# HELP grapevine_config_version Version of the applied cluster config.\n"
                  "# TYPE grapevine_config_version gauge\ngrapevine_config_version %llu\n",
                  (unsigned long long)n->config_version);
    if (n->gossip != NULL)
        node_gossip_metrics(n->gossip, &b);
    reply(c, 200, "text/plain; version=0.0.4", b.data, b.len);
    gv_buf_free(&b);
}

/* Parses the request body as a JSON object; answers 400 itself on failure. */
static json_t *body_object(struct admin_conn *c)
{
    json_error_t e;
    json_t *j = c->body.len ? json_loadb(c->body.data, c->body.len, 0, &e) : NULL;
    if (!json_is_object(j)) {
        char msg[300];
        snprintf(msg, sizeof(msg), "body must be a JSON object%s%s", j ? "" : ": ",
                 j ? "" : (c->body.len ? e.text : "empty body"));
        reply_error(c, 400, msg);
        json_decref(j);
        return NULL;
    }
    return j;
}

/* The keyring (GET/POST /cluster/keys, POST /cluster/keys/ID/use,
 * DELETE /cluster/keys/ID) and the test-only fault switch
 * (POST /debug/block {"peers": [...]}). */
static void cluster_write(struct admin_conn *c, int method, const char *path)
{
    struct node_gossip *g = c->admin->node->gossip;
    char err[256] = "";
    char id[64];
    int rv;
    if (g == NULL) {
        reply_error(c, 503, "not in a cluster (stopping)");
        return;
    }
    if (strcmp(path, "/debug/block") == 0) {
        if (method != HTTP_POST) {
            reply_error(c, 405, "method not allowed");
            return;
        }
        json_t *j = body_object(c);
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
            reply_error(c, 400, "peers must be a list of at most 64 \"host:port\" strings");
        else if (node_gossip_block(g, addrs, n) != 0)
            reply_error(c, 403, "test faults are off (GRAPEVINE_TEST_FAULTS=1 enables them)");
        else
            reply_json(c, 200, json_pack("{s:O}", "blocked", peers));
        json_decref(j);
        return;
    }
    if (strcmp(path, "/cluster/keys") == 0 && (method == HTTP_GET || method == HTTP_HEAD)) {
        reply_json(c, 200, node_gossip_keys_json(g));
        return;
    }
    if (strcmp(path, "/cluster/keys") == 0 && method == HTTP_POST) {
        json_t *j = body_object(c);
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
            reply_error(c, 400, err);
        else
            reply_json(c, 200, node_gossip_keys_json(g));
        return;
    }
    if (sscanf(path, "/cluster/keys/%63[0-9a-f]/use", id) == 1 && method == HTTP_POST &&
        strlen(path) == strlen("/cluster/keys//use") + strlen(id)) {
        rv = node_gossip_key_use(g, id, err, sizeof(err));
    } else if (sscanf(path, "/cluster/keys/%63[0-9a-f]", id) == 1 && method == HTTP_DELETE &&
               strlen(path) == strlen("/cluster/keys/") + strlen(id)) {
        rv = node_gossip_key_remove(g, id, err, sizeof(err));
    } else {
        reply_error(c, 404, "not found");
        return;
    }
    if (rv != 0)
        reply_error(c, rv == GV_ENOENT ? 404 : 400, err);
    else
        reply_json(c, 200, node_gossip_keys_json(g));
}

static void route_request(struct admin_conn *c)
{
    struct node *n = c->admin->node;
    const char *url = c->url.data ? c->url.data : "/";
    size_t ul = strcspn(url, "?");
    char path[256];
    snprintf(path, sizeof(path), "%.*s", (int)GV_MIN(ul, sizeof(path) - 1), url);
    int method = llhttp_get_method(&c->parser);

    if (c->admin->token != NULL) {
        const char *a = c->auth.data ? c->auth.data : "";
        size_t tl = strlen(c->admin->token);
        if (strncmp(a, "Bearer ", 7) != 0 || strlen(a + 7) != tl ||
            CRYPTO_memcmp(a + 7, c->admin->token, tl) != 0) {
            reply_error(c, 401, "missing or invalid admin token");
            return;
        }
    }
    if (strncmp(path, "/cluster/keys", 13) == 0 || strcmp(path, "/debug/block") == 0) {
        cluster_write(c, method, path);
        return;
    }
    if (method != HTTP_GET && method != HTTP_HEAD) {
        reply_error(c, 405, "method not allowed");
        return;
    }
    if (strcmp(path, "/health") == 0) {
        reply_json(c, n->stopping ? 503 : 200,
                   json_pack("{s:s}", "status", n->stopping ? "draining" : "ok"));
    } else if (strcmp(path, "/status") == 0) {
        json_t *members = n->gossip ? node_gossip_counts_json(n->gossip)
                                    : json_pack("{s:i,s:i,s:i,s:i}", "alive", 1, "suspect", 0,
                                                "dead", 0, "left", 0);
        reply_json(c, 200,
                   json_pack("{s:s,s:s,s:s,s:I,s:o,s:i,s:I}", "node", n->cfg.node.name, "version",
                             GV_VERSION, "config_digest", n->config_digest, "config_version",
                             (json_int_t)n->config_version, "members", members, "workers",
                             n->nworkers, "uptime_ms", (json_int_t)(gv_now_ms() - n->started_ms)));
    } else if (strcmp(path, "/cluster/members") == 0) {
        if (n->gossip == NULL)
            reply_error(c, 503, "not in a cluster (stopping)");
        else
            reply_json(c, 200, node_gossip_members_json(n->gossip));
    } else if (strcmp(path, "/backends") == 0) {
        reply_json(c, 200, backends_json(n));
    } else if (strcmp(path, "/config") == 0) {
        reply_json(c, 200, config_json(n));
    } else if (strcmp(path, "/metrics") == 0) {
        metrics(c);
    } else {
        reply_error(c, 404, "not found");
    }
}

/* ---- connection plumbing ------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h)
{
    struct admin_conn *c = h->data;
    c->admin->conns--;
    gv_buf_free(&c->url);
    gv_buf_free(&c->field);
    gv_buf_free(&c->auth);
    gv_buf_free(&c->body);
    struct node_admin *a = c->admin;
    free(c);
    if (a->stopping && a->conns == 0 && uv_is_closing((uv_handle_t *)&a->listener) &&
        a->listener.data == NULL)
        free(a);
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
    if (status < 0 || aw->close)
        conn_close(aw->conn);
    free(aw);
}

static void reply(struct admin_conn *c, int status, const char *ctype, const char *body, size_t len)
{
    bool close = !llhttp_should_keep_alive(&c->parser) || c->admin->stopping;
    struct gv_buf b;
    gv_buf_init(&b);
    gv_buf_printf(&b, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n", status,
                  gw_reason(status), ctype, len, close ? "Connection: close\r\n" : "");
    if (llhttp_get_method(&c->parser) != HTTP_HEAD)
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
    }
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

static int on_complete(llhttp_t *p)
{
    route_request(ACONN(p));
    return 0;
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
    if (nread < 0) {
        conn_close(c);
    } else if (nread > 0 && !c->closing) {
        llhttp_errno_t err = llhttp_execute(&c->parser, buf->base, (size_t)nread);
        if (err != HPE_OK) {
            uv_read_stop(s);
            static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: "
                                      "application/json\r\nContent-Length: 31\r\nConnection: "
                                      "close\r\n\r\n{\"error\":\"malformed request\"}\n\n";
            uv_buf_t b = uv_buf_init((char *)bad, sizeof(bad) - 1);
            uv_try_write(s, &b, 1);
            conn_close(c);
        }
    }
    free(buf->base);
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

void node_admin_stop(struct node_admin *a)
{
    a->stopping = true;
    uv_close((uv_handle_t *)&a->listener, on_listener_closed);
}
