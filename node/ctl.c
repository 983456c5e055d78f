/* ctl.c - `grapevine ctl`: talks to a node's admin API over HTTP/1.1, prints
 * what it answers as tables (status, members, backends) or JSON, and applies
 * YAML or JSON files of cluster state object by object. */
#include "node/ctl.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"

#include <getopt.h>
#include <jansson.h>
#include <libfyaml.h>
#include <llhttp.h>
#include <netdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CTL_MAX_FILE (64u * 1024 * 1024)

static const char *const kinds[] = {"services", "routes", "consumers", "plugins"};
static const char *const kinds_singular[] = {"service", "route", "consumer", "plugin"};
#define NKINDS 4

struct ctl {
    const char *admin;
    const char *token;
    char err[512]; /* why the last request() failed */
};

struct reply {
    int status;
    struct gv_buf body;
    bool done;
};

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct reply *r = p->data;
    return gv_buf_append(&r->body, at, len) == 0 ? 0 : -1;
}

static int on_complete(llhttp_t *p)
{
    struct reply *r = p->data;
    r->status = llhttp_get_status_code(p);
    r->done = true;
    return 0;
}

/* Sends one request and reads the whole answer into out (init'd here; free
 * out->body). Returns 0, or a negative error with the reason in ctl->err. */
static int request(struct ctl *ctl, const char *method, const char *path, const char *body,
                   struct reply *out)
{
    char host[256];
    uint16_t port;
    memset(out, 0, sizeof(*out));
    gv_buf_init(&out->body);
    if (gv_split_hostport(ctl->admin, host, sizeof(host), &port) != 0) {
        snprintf(ctl->err, sizeof(ctl->err), "bad admin address \"%s\"", ctl->admin);
        return GV_EINVAL;
    }
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rv = getaddrinfo(host, portstr, &hints, &res);
    if (rv != 0) {
        snprintf(ctl->err, sizeof(ctl->err), "%s: %s", host, gai_strerror(rv));
        return GV_ENOENT;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = 10};
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        snprintf(ctl->err, sizeof(ctl->err), "cannot reach the admin API at %s: %s", ctl->admin,
                 strerror(errno));
        freeaddrinfo(res);
        if (fd >= 0)
            close(fd);
        return GV_EIO;
    }
    freeaddrinfo(res);
    struct gv_buf req;
    gv_buf_init(&req);
    gv_buf_printf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, path,
                  ctl->admin);
    if (ctl->token != NULL)
        gv_buf_printf(&req, "Authorization: Bearer %s\r\n", ctl->token);
    if (body != NULL)
        gv_buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                      strlen(body));
    gv_buf_puts(&req, "\r\n");
    if (body != NULL)
        gv_buf_puts(&req, body);
    size_t off = 0;
    while (off < req.len) {
        ssize_t n = send(fd, req.data + off, req.len - off, MSG_NOSIGNAL);
        if (n <= 0) {
            snprintf(ctl->err, sizeof(ctl->err), "write to %s: %s", ctl->admin, strerror(errno));
            gv_buf_free(&req);
            close(fd);
            return GV_EIO;
        }
        off += (size_t)n;
    }
    gv_buf_free(&req);

    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_body = on_body;
    s.on_message_complete = on_complete;
    llhttp_t p;
    llhttp_init(&p, HTTP_RESPONSE, &s);
    p.data = out;
    char buf[16384];
    rv = 0;
    while (!out->done) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0) {
            snprintf(ctl->err, sizeof(ctl->err), "read from %s: %s", ctl->admin, strerror(errno));
            rv = GV_EIO;
            break;
        }
        if (n == 0) {
            llhttp_finish(&p);
            break;
        }
        if (llhttp_execute(&p, buf, (size_t)n) != HPE_OK && !out->done) {
            snprintf(ctl->err, sizeof(ctl->err), "malformed answer from %s", ctl->admin);
            rv = GV_EPROTO;
            break;
        }
    }
    close(fd);
    if (rv == 0 && !out->done) {
        snprintf(ctl->err, sizeof(ctl->err), "%s closed the connection early", ctl->admin);
        rv = GV_EIO;
    }
    return rv;
}

/* The answer's JSON, or NULL (new reference). */
static json_t *reply_json(const struct reply *r)
{
    json_error_t e;
    return r->body.len ? json_loadb(r->body.data, r->body.len, 0, &e) : NULL;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* Prints an error answer ("ADDR answered 404: no route named ...") and
 * returns the exit code 1. */
static int answered_error(const struct ctl *ctl, const struct reply *r)
{
    json_t *j = reply_json(r);
    const char *msg = j ? json_string_value(json_object_get(j, "error")) : NULL;
    fprintf(stderr, "grapevine ctl: %s answered %d: %s\n", ctl->admin, r->status,
            msg ? msg : (r->body.data ? r->body.data : ""));
    json_decref(j);
    return 1;
}

/* The kind a user typed ("route", "routes") as the API's name; other words
 * are passed on as typed, for the node to refuse. */
static const char *kind_arg(const char *s)
{
    for (int k = 0; k < NKINDS; k++)
        if (strcmp(s, kinds[k]) == 0 || strcmp(s, kinds_singular[k]) == 0)
            return kinds[k];
    return s;
}

static int kind_index(const char *s)
{
    for (int k = 0; k < NKINDS; k++)
        if (strcmp(s, kinds[k]) == 0 || strcmp(s, kinds_singular[k]) == 0)
            return k;
    return -1;
}

/* Appends s to b percent-encoded as one path segment. */
static void put_segment(struct gv_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p) != NULL) {
            gv_buf_append(b, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            gv_buf_append(b, e, 3);
        }
    }
}

/* "/config/KIND/NAME" (NAME escaped) in b. */
static void object_path(struct gv_buf *b, const char *kind, const char *name)
{
    gv_buf_reset(b);
    gv_buf_puts(b, "/config/");
    put_segment(b, kind);
    if (name != NULL) {
        gv_buf_puts(b, "/");
        put_segment(b, name);
    }
}

/* Prints a refused change as "error: PATH: MESSAGE". The node's path is
 * relative to the object sent ("service", "match.paths[0]") unless it names
 * another object ("routes[api].service"); made whole here so it says which
 * object of a file is wrong. */
static void print_refusal(const char *kind, const char *name, const json_t *answer)
{
    const char *path = str(answer, "path"), *msg = str(answer, "error");
    size_t kl = strcspn(path, "[");
    char k[32];
    snprintf(k, sizeof(k), "%.*s", (int)GV_MIN(kl, sizeof(k) - 1), path);
    if (path[kl] == '[' && kind_index(k) >= 0)
        fprintf(stderr, "error: %s: %s\n", path, msg);
    else
        fprintf(stderr, "error: %s[%s]%s%s: %s\n", kind, name, *path && *path != '[' ? "." : "",
                path, msg);
}

/* ---- status ---------------------------------------------------------------- */

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* GET path as JSON into *out. Returns 0, or -1 with the reason in why. */
static int get_json(struct ctl *ctl, const char *path, json_t **out, char *why, size_t whylen)
{
    struct reply r;
    *out = NULL;
    if (request(ctl, "GET", path, NULL, &r) != 0) {
        snprintf(why, whylen, "%s", ctl->err);
    } else if (r.status != 200) {
        json_t *j = reply_json(&r);
        snprintf(why, whylen, "%s answered %d: %s", ctl->admin, r.status, j ? str(j, "error") : "");
        json_decref(j);
    } else if ((*out = reply_json(&r)) == NULL) {
        snprintf(why, whylen, "%s answered %d without JSON", ctl->admin, r.status);
    }
    gv_buf_free(&r.body);
    return *out ? 0 : -1;
}

static void print_node_status(const json_t *st)
{
    const json_t *m = json_object_get(st, "members");
    long long up = json_integer_value(json_object_get(st, "uptime_ms"));
    printf("node     %s (grapevine %s, up %lld.%03llds)\n", str(st, "node"), str(st, "version"),
           up / 1000, up % 1000);
    printf("config   version %lld, digest %.12s\n",
           (long long)json_integer_value(json_object_get(st, "config_version")),
           str(st, "config_digest"));
    printf("members  %lld alive, %lld suspect, %lld dead, %lld left\n",
           (long long)json_integer_value(json_object_get(m, "alive")),
           (long long)json_integer_value(json_object_get(m, "suspect")),
           (long long)json_integer_value(json_object_get(m, "dead")),
           (long long)json_integer_value(json_object_get(m, "left")));
}

/* The members table in b; members whose config digest is not self_digest
 * are marked with '*'. */
static void render_members(struct gv_buf *b, const json_t *members, const char *self,
                           const char *self_digest)
{
    size_t i, differ = 0;
    const json_t *m;
    gv_buf_printf(b, "%-20s %-8s %-18s %-12s\n", "NAME", "STATE", "CONFIG_VERSION",
                  "CONFIG_DIGEST");
    json_array_foreach(members, i, m)
    {
        bool mark = strcmp(str(m, "config_digest"), self_digest) != 0;
        differ += mark;
        gv_buf_printf(b, "%-20s %-8s %-18lld %-12.12s%s\n", str(m, "name"), str(m, "state"),
                      (long long)json_integer_value(json_object_get(m, "config_version")),
                      *str(m, "config_digest") ? str(m, "config_digest") : "-", mark ? " *" : "");
    }
    if (differ > 0)
        gv_buf_printf(b, "* %zu of %zu members serve a config other than %s's\n", differ,
                      json_array_size(members), self);
}

static int cmd_status(struct ctl *ctl, int argc, char **argv)
{
    static const struct option longopts[] = {{"watch", no_argument, NULL, 'w'},
                                             {"interval", required_argument, NULL, 'i'},
                                             {"timeout", required_argument, NULL, 'T'},
                                             {"json", no_argument, NULL, 'j'},
                                             {NULL, 0, NULL, 0}};
    bool watch = false, as_json = false;
    long interval_ms = 500;
    double timeout_s = 0;
    char *end;
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "+w", longopts, NULL)) != -1) {
        switch (ch) {
        case 'w':
            watch = true;
            break;
        case 'i':
            interval_ms = strtol(optarg, &end, 10);
            if (*end != '\0' || interval_ms < 10 || interval_ms > 3600000) {
                fprintf(stderr, "grapevine ctl status: --interval takes milliseconds (>= 10)\n");
                return 2;
            }
            break;
        case 'T':
            timeout_s = strtod(optarg, &end);
            if (*end != '\0' || !(timeout_s >= 0)) {
                fprintf(stderr, "grapevine ctl status: --timeout takes seconds\n");
                return 2;
            }
            break;
        case 'j':
            as_json = true;
            break;
        default:
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "grapevine ctl status: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }

    char why[600];
    json_t *st = NULL, *members = NULL;
    if (get_json(ctl, "/status", &st, why, sizeof(why)) != 0) {
        fprintf(stderr, "grapevine ctl: %s\n", why);
        return 1;
    }
    if (as_json) {
        char *text = json_dumps(st, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(st);
        return 0;
    }
    print_node_status(st);
    printf("\n");
    fflush(stdout);

    struct sigaction sa = {.sa_handler = on_interrupt}; /* no SA_RESTART: wake the sleep */
    if (watch) {
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    double start = now_s();
    struct gv_buf table, last;
    gv_buf_init(&table);
    gv_buf_init(&last);
    for (bool first = true; !interrupted; first = false) {
        gv_buf_reset(&table);
        if (!first && get_json(ctl, "/status", &st, why, sizeof(why)) != 0)
            gv_buf_printf(&table, "(no answer: %s)\n", why);
        else if (get_json(ctl, "/cluster/members", &members, why, sizeof(why)) != 0)
            gv_buf_printf(&table, "(no members: %s)\n", why);
        else
            render_members(&table, members, str(st, "node"), str(st, "config_digest"));
        json_decref(st);
        json_decref(members);
        st = members = NULL;
        if (!watch) {
            fputs(table.data ? table.data : "", stdout);
            break;
        }
        if (interrupted)
            break;
        if (table.len != last.len || memcmp(table.data, last.data, table.len) != 0) {
            printf("%s+%.3fs\n%s", first ? "" : "\n", now_s() - start, table.data);
            fflush(stdout);
            gv_buf_reset(&last);
            gv_buf_append(&last, table.data, table.len);
        }
        double left = timeout_s > 0 ? start + timeout_s - now_s() : 1e9;
        if (left <= 0)
            break;
        double nap = GV_MIN((double)interval_ms / 1000.0, left);
        struct timespec ts = {(time_t)nap, (long)((nap - (double)(time_t)nap) * 1e9)};
        nanosleep(&ts, NULL);
    }
    gv_buf_free(&table);
    gv_buf_free(&last);
    return 0;
}

/* ---- reading YAML or JSON files -------------------------------------------- */

/* True when s[0..n) is UTF-8 without NUL bytes (checked before libfyaml
 * sees it: 0.7.12 can loop on malformed bytes). *line gets the first bad
 * line. */
static bool valid_text(const unsigned char *s, size_t n, int *line)
{
    *line = 1;
    for (size_t i = 0; i < n;) {
        size_t len = s[i] < 0x80             ? 1
                     : (s[i] & 0xe0) == 0xc0 ? 2
                     : (s[i] & 0xf0) == 0xe0 ? 3
                     : (s[i] & 0xf8) == 0xf0 ? 4
                                             : 0;
        if (s[i] == '\0' || len == 0 || len > n - i)
            return false;
        uint32_t cp = len == 1 ? s[i] : s[i] & (0x7f >> len);
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        *line += s[i] == '\n';
        i += len;
    }
    return true;
}

static int read_all(const char *file, struct gv_buf *out)
{
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
    char buf[65536];
    size_t n;
    if (f == NULL) {
        fprintf(stderr, "grapevine ctl: %s: %s\n", file, strerror(errno));
        return -1;
    }
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        if (out->len + n > CTL_MAX_FILE || gv_buf_append(out, buf, n) != 0) {
            fprintf(stderr, "grapevine ctl: %s: larger than %u bytes\n", file, CTL_MAX_FILE);
            break;
        }
    }
    bool bad = ferror(f) || out->len + n > CTL_MAX_FILE;
    if (ferror(f))
        fprintf(stderr, "grapevine ctl: %s: %s\n", file, strerror(errno));
    if (f != stdin)
        fclose(f);
    return bad ? -1 : 0;
}

/* YAML text as JSON, through libfyaml's JSON emitter. Returns the JSON or
 * NULL after printing "FILE:LINE: message". */
static json_t *yaml_to_json(const char *file, const char *text, size_t len)
{
    struct fy_diag_cfg dcfg;
    struct fy_diag *diag;
    struct fy_diag_error *de;
    struct fy_document *doc = NULL;
    void *it = NULL;
    char *emitted = NULL;
    json_t *out = NULL;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL; /* collected and printed below */
    if ((diag = fy_diag_create(&dcfg)) == NULL) {
        fprintf(stderr, "grapevine ctl: out of memory\n");
        return NULL;
    }
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg pcfg = {.flags = FYPCF_QUIET | FYPCF_RESOLVE_DOCUMENT, .diag = diag};
    doc = fy_document_build_from_string(&pcfg, text, len);
    while ((de = fy_diag_errors_iterate(diag, &it)) != NULL) {
        if (de->type >= FYET_ERROR) {
            fprintf(stderr, "%s:%d: %s\n", file, de->line > 0 ? de->line : 1,
                    de->msg ? de->msg : "YAML syntax error");
            goto out;
        }
    }
    if (doc == NULL || fy_document_root(doc) == NULL) {
        fprintf(stderr, "%s: empty (no YAML document in it)\n", file);
        goto out;
    }
    emitted = fy_emit_document_to_string(doc, FYECF_MODE_JSON | FYECF_WIDTH_INF);
    json_error_t je;
    if (emitted == NULL || (out = json_loads(emitted, JSON_DECODE_ANY, &je)) == NULL)
        fprintf(stderr, "%s: cannot convert the YAML to JSON\n", file);
out:
    free(emitted);
    if (doc != NULL)
        fy_document_destroy(doc);
    fy_diag_destroy(diag);
    return out;
}

/* Reads FILE ("-": stdin), YAML or JSON. NULL after printing why. */
static json_t *load_file(const char *path)
{
    const char *file = strcmp(path, "-") == 0 ? "<stdin>" : path; /* in messages */
    struct gv_buf b;
    json_t *j = NULL;
    int line;
    gv_buf_init(&b);
    if (read_all(path, &b) != 0)
        goto out;
    if (!valid_text((const unsigned char *)b.data, b.len, &line)) {
        fprintf(stderr, "%s:%d: not UTF-8 text (or a NUL byte)\n", file, line);
        goto out;
    }
    size_t lead = 0;
    while (lead < b.len && strchr(" \t\r\n", b.data[lead]) != NULL)
        lead++;
    if (lead < b.len && b.data[lead] == '{') {
        json_error_t e;
        if ((j = json_loadb(b.data, b.len, 0, &e)) == NULL)
            fprintf(stderr, "%s:%d:%d: %s\n", file, e.line, e.column, e.text);
    } else {
        j = yaml_to_json(file, b.data ? b.data : "", b.len);
    }
    if (j != NULL && !json_is_object(j)) {
        fprintf(stderr, "%s: must be a mapping (a state document, or one object with kind:)\n",
                file);
        json_decref(j);
        j = NULL;
    }
out:
    gv_buf_free(&b);
    return j;
}

/* ---- apply and delete -------------------------------------------------------- */

struct item {
    int kind;
    char *name;
    json_t *body; /* what PUT sends */
};

struct items {
    struct item *v;
    size_t n, cap;
};

static int add_item(struct items *l, int kind, const char *name, json_t *body)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct item *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (struct item){kind, strdup(name), json_incref(body)};
    return 0;
}

static void free_items(struct items *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].name);
        json_decref(l->v[i].body);
    }
    free(l->v);
}

/* A plugin as {NAME: {...}}: its name and config ({} for "- cors:"). */
static int plugin_entry(const json_t *v, const char **name, json_t **config)
{
    void *it = json_object_iter((json_t *)v);
    if (!json_is_object(v) || json_object_size(v) != 1 || it == NULL)
        return -1;
    json_t *c = json_object_iter_value(it);
    if (!json_is_object(c) && !json_is_null(c))
        return -1;
    *name = json_object_iter_key(it);
    *config = json_is_null(c) ? json_object() : json_incref(c);
    return 0;
}

/* One object with a kind: key. */
static int collect_one(const char *file, const json_t *doc, struct items *out)
{
    const char *k = json_string_value(json_object_get(doc, "kind"));
    int kind = k ? kind_index(k) : -1;
    json_t *obj = json_deep_copy(doc), *config = NULL;
    const char *name = NULL;
    int rv = -1;
    if (kind < 0) {
        fprintf(stderr, "%s: kind: must be services, routes, consumers or plugins\n", file);
        goto out;
    }
    json_object_del(obj, "kind");
    if (kind == 3 && plugin_entry(obj, &name, &config) == 0 && strcmp(name, "name") != 0) {
        /* kind: plugin, NAME: {...} */
    } else if ((name = json_string_value(json_object_get(obj, "name"))) != NULL) {
        if (kind == 3) { /* kind: plugin, name: NAME, and its config beside */
            config = json_deep_copy(obj);
            json_object_del(config, "name");
        } else {
            config = json_incref(obj);
        }
    } else {
        fprintf(stderr, "%s: name: the object needs a name\n", file);
        goto out;
    }
    rv = add_item(out, kind, name, config);
out:
    json_decref(config);
    json_decref(obj);
    return rv;
}

/* A state document: services, consumers, plugins, then routes (which name
 * services), each in file order. */
static int collect_state(const char *file, const json_t *doc, struct items *out)
{
    static const int order[] = {0, 2, 3, 1};
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)doc, key, v)
    {
        if (strcmp(key, "node") == 0)
            fprintf(stderr,
                    "grapevine ctl: %s: ignoring node: (this node's settings are not "
                    "cluster state)\n",
                    file);
        else if (kind_index(key) < 0 || strcmp(key, kinds[kind_index(key)]) != 0) {
            fprintf(stderr,
                    "%s: unknown key \"%s\" (services, routes, consumers, plugins; or kind: "
                    "for one object)\n",
                    file, key);
            return -1;
        }
    }
    for (size_t o = 0; o < 4; o++) {
        int kind = order[o];
        const json_t *list = json_object_get(doc, kinds[kind]), *e;
        size_t i;
        if (list != NULL && !json_is_array(list)) {
            fprintf(stderr, "%s: %s: must be a list\n", file, kinds[kind]);
            return -1;
        }
        json_array_foreach(list, i, e)
        {
            const char *name = NULL;
            json_t *config = NULL;
            if (kind == 3 ? plugin_entry(e, &name, &config) != 0
                          : (name = json_string_value(json_object_get(e, "name"))) == NULL ||
                                !json_is_object(e)) {
                fprintf(stderr, "%s: %s[%zu]: %s\n", file, kinds[kind], i,
                        kind == 3 ? "a plugin is {NAME: {...}}" : "must be an object with a name");
                return -1;
            }
            int rv = add_item(out, kind, name, kind == 3 ? config : (json_t *)e);
            json_decref(config);
            if (rv != 0)
                return -1;
        }
    }
    return 0;
}

/* GETs the object, PUTs it unless the node holds exactly it, and prints what
 * happened. Returns 0, or the exit code 1 after printing why. */
static int apply_item(struct ctl *ctl, const struct item *it)
{
    const char *kind = kinds[it->kind];
    struct gv_buf path;
    struct reply r;
    json_t *cur = NULL, *stored = NULL;
    char *body = NULL;
    const char *what = NULL;
    int code = 1;
    gv_buf_init(&path);
    object_path(&path, kind, it->name);
    if (request(ctl, "GET", path.data, NULL, &r) != 0) {
        fprintf(stderr, "grapevine ctl: %s\n", ctl->err);
        goto out;
    }
    if (r.status == 200) {
        cur = reply_json(&r);
    } else if (r.status != 404) {
        answered_error(ctl, &r);
        goto out;
    }
    gv_buf_free(&r.body);
    if (cur != NULL && json_equal(cur, it->body)) {
        what = "unchanged";
    } else {
        body = json_dumps(it->body, JSON_COMPACT);
        if (body == NULL || request(ctl, "PUT", path.data, body, &r) != 0) {
            fprintf(stderr, "grapevine ctl: %s\n", body ? ctl->err : "out of memory");
            goto out;
        }
        stored = reply_json(&r);
        if (r.status == 400 && stored != NULL && json_object_get(stored, "error") != NULL) {
            print_refusal(kind, it->name, stored);
            goto out;
        }
        if (r.status != 200) {
            answered_error(ctl, &r);
            goto out;
        }
        what = cur == NULL ? "created" : json_equal(cur, stored) ? "unchanged" : "configured";
    }
    printf("%s/%s %s\n", kind, it->name, what);
    fflush(stdout);
    code = 0;
out:
    gv_buf_free(&r.body);
    gv_buf_free(&path);
    json_decref(cur);
    json_decref(stored);
    free(body);
    return code;
}

static int cmd_apply(struct ctl *ctl, int argc, char **argv)
{
    static const struct option longopts[] = {{"file", required_argument, NULL, 'f'},
                                             {NULL, 0, NULL, 0}};
    const char *file = NULL;
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "+f:", longopts, NULL)) != -1) {
        if (ch != 'f')
            return 2;
        file = optarg;
    }
    if (file == NULL && optind < argc)
        file = argv[optind++];
    if (file == NULL || optind < argc) {
        fprintf(stderr, "grapevine ctl apply: takes one FILE (or -f FILE; - is stdin)\n");
        return 2;
    }
    json_t *doc = load_file(file);
    if (doc == NULL)
        return 1;
    if (strcmp(file, "-") == 0)
        file = "<stdin>";
    struct items items = {0};
    int code = 0;
    if ((json_object_get(doc, "kind") != NULL ? collect_one(file, doc, &items)
                                              : collect_state(file, doc, &items)) != 0)
        code = 1;
    else if (items.n == 0)
        fprintf(stderr, "grapevine ctl: %s has no objects to apply\n", file);
    for (size_t i = 0; code == 0 && i < items.n; i++)
        code = apply_item(ctl, &items.v[i]);
    free_items(&items);
    json_decref(doc);
    return code;
}

static int cmd_delete(struct ctl *ctl, const char *kind_word, const char *name)
{
    const char *kind = kind_arg(kind_word);
    struct gv_buf path;
    struct reply r;
    int code = 1;
    gv_buf_init(&path);
    object_path(&path, kind, name);
    if (request(ctl, "DELETE", path.data, NULL, &r) != 0) {
        fprintf(stderr, "grapevine ctl: %s\n", ctl->err);
    } else if (r.status == 204 || r.status == 200) {
        printf("%s/%s deleted\n", kind, name);
        code = 0;
    } else if (r.status == 400) {
        json_t *j = reply_json(&r);
        if (j != NULL)
            print_refusal(kind, name, j);
        else
            answered_error(ctl, &r);
        json_decref(j);
    } else {
        answered_error(ctl, &r);
    }
    gv_buf_free(&r.body);
    gv_buf_free(&path);
    return code;
}

/* ---- the rest: one request, its answer printed ------------------------------- */

static void print_members(const json_t *arr)
{
    printf("%-20s %-24s %-8s %12s %-16s %s\n", "NAME", "ADDRESS", "STATE", "INCARNATION", "CONFIG",
           "VERSION");
    size_t i;
    const json_t *m;
    json_array_foreach(arr, i, m)
    {
        char digest[17];
        snprintf(digest, sizeof(digest), "%s", str(m, "config_digest"));
        printf("%-20s %-24s %-8s %12lld %-16s %lld\n", str(m, "name"), str(m, "address"),
               str(m, "state"), (long long)json_integer_value(json_object_get(m, "incarnation")),
               digest, (long long)json_integer_value(json_object_get(m, "config_version")));
    }
}

static void print_backends(const json_t *arr)
{
    printf("%-20s %-24s %-8s %-14s %s\n", "SERVICE", "TARGET", "HEALTHY", "REASON", "CHECKED_BY");
    size_t i, j;
    const json_t *s, *t;
    json_array_foreach(arr, i, s)
    {
        json_array_foreach(json_object_get(s, "targets"), j, t)
        {
            printf("%-20s %-24s %-8s %-14s %s\n", str(s, "service"), str(t, "address"),
                   json_is_true(json_object_get(t, "healthy")) ? "yes" : "no",
                   *str(t, "reason") ? str(t, "reason") : "-",
                   *str(t, "checked_by") ? str(t, "checked_by") : "-");
        }
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: grapevine ctl [--admin HOST:PORT] [--token T] COMMAND\n"
               "  status [--watch] [--interval MS] [--timeout S] [--json]\n"
               "        this node, and each member's config version and digest (* marks a\n"
               "        member whose config differs from this node's); --watch reprints the\n"
               "        table whenever it changes, until Ctrl-C or --timeout\n"
               "  members | backends\n"
               "  get [KIND [NAME]]          the cluster state, one kind, or one object (JSON)\n"
               "  apply [-f] FILE            creates or updates every object in FILE (YAML or\n"
               "        JSON; - is stdin): a state document like the config file's (its node:\n"
               "        section is ignored) or one object with a kind: key. Prints\n"
               "        KIND/NAME created | configured | unchanged for each, and stops at the\n"
               "        first one the node refuses (\"error: PATH: MESSAGE\", exit 1); the\n"
               "        objects before it stay applied. Never deletes anything.\n"
               "  delete KIND NAME\n"
               "  keys [list | install KEY | use ID | remove ID]   (gossip encryption keys)\n"
               "KIND is services, routes, consumers or plugins (or service, route, ...).\n"
               "The admin address and token may also come from GRAPEVINE_ADMIN and\n"
               "GRAPEVINE_TOKEN.\n");
}

int node_ctl_main(int argc, char **argv)
{
    struct ctl ctl = {.admin = getenv("GRAPEVINE_ADMIN"), .token = getenv("GRAPEVINE_TOKEN")};
    static const struct option longopts[] = {{"admin", required_argument, NULL, 'a'},
                                             {"token", required_argument, NULL, 't'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "+a:t:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'a':
            ctl.admin = optarg;
            break;
        case 't':
            ctl.token = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (ctl.admin == NULL || *ctl.admin == '\0')
        ctl.admin = "127.0.0.1:9901";
    if (ctl.token != NULL && *ctl.token == '\0')
        ctl.token = NULL;
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[optind];
    int nargs = argc - optind - 1;
    char **args = argv + optind + 1;
    struct gv_buf path;
    enum { SHOW_JSON, SHOW_MEMBERS, SHOW_BACKENDS, SHOW_KEYS } show = SHOW_JSON;
    const char *method = "GET";
    char *body = NULL;

    if (strcmp(cmd, "status") == 0)
        return cmd_status(&ctl, nargs + 1, args - 1);
    if (strcmp(cmd, "apply") == 0)
        return cmd_apply(&ctl, nargs + 1, args - 1);
    if (strcmp(cmd, "delete") == 0 && nargs == 2)
        return cmd_delete(&ctl, args[0], args[1]);
    gv_buf_init(&path);
    if (strcmp(cmd, "members") == 0 && nargs == 0) {
        gv_buf_puts(&path, "/cluster/members");
        show = SHOW_MEMBERS;
    } else if (strcmp(cmd, "backends") == 0 && nargs == 0) {
        gv_buf_puts(&path, "/backends");
        show = SHOW_BACKENDS;
    } else if (strcmp(cmd, "get") == 0 && nargs <= 2) {
        if (nargs == 0)
            gv_buf_puts(&path, "/config");
        else
            object_path(&path, kind_arg(args[0]), nargs > 1 ? args[1] : NULL);
    } else if (strcmp(cmd, "keys") == 0 &&
               (nargs == 0 || (nargs == 1 && !strcmp(args[0], "list")))) {
        gv_buf_puts(&path, "/cluster/keys");
        show = SHOW_KEYS;
    } else if (strcmp(cmd, "keys") == 0 && nargs == 2 && strcmp(args[0], "install") == 0) {
        json_t *b = json_pack("{s:s}", "key", args[1]);
        body = b ? json_dumps(b, JSON_COMPACT) : NULL;
        json_decref(b);
        gv_buf_puts(&path, "/cluster/keys");
        method = "POST";
        show = SHOW_KEYS;
    } else if (strcmp(cmd, "keys") == 0 && nargs == 2 && strcmp(args[0], "use") == 0 &&
               strspn(args[1], "0123456789abcdef") == strlen(args[1])) {
        gv_buf_printf(&path, "/cluster/keys/%.64s/use", args[1]);
        method = "POST";
        show = SHOW_KEYS;
    } else if (strcmp(cmd, "keys") == 0 && nargs == 2 && strcmp(args[0], "remove") == 0 &&
               strspn(args[1], "0123456789abcdef") == strlen(args[1])) {
        gv_buf_printf(&path, "/cluster/keys/%.64s", args[1]);
        method = "DELETE";
        show = SHOW_KEYS;
    } else {
        fprintf(stderr, "grapevine ctl: unknown command or wrong arguments: %s\n", cmd);
        usage(stderr);
        gv_buf_free(&path);
        return 2;
    }

    struct reply r;
    int rq = request(&ctl, method, path.data, body, &r);
    free(body);
    gv_buf_free(&path);
    if (rq != 0) {
        fprintf(stderr, "grapevine ctl: %s\n", ctl.err);
        gv_buf_free(&r.body);
        return 1;
    }
    json_t *j = reply_json(&r);
    int code = 0;
    if (r.status >= 400) {
        code = answered_error(&ctl, &r);
    } else if (j == NULL) {
        fprintf(stderr, "grapevine ctl: %s answered %d without JSON\n", ctl.admin, r.status);
        code = 1;
    } else if (show == SHOW_MEMBERS) {
        print_members(j);
    } else if (show == SHOW_BACKENDS) {
        print_backends(j);
    } else if (show == SHOW_KEYS) {
        size_t i;
        const json_t *k;
        printf("%-10s %s\n", "ID", "PRIMARY");
        json_array_foreach(j, i, k)
        {
            printf("%-10s %s\n", str(k, "id"),
                   json_is_true(json_object_get(k, "primary")) ? "yes" : "no");
        }
    } else {
        char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text != NULL)
            printf("%s\n", text);
        free(text);
    }
    json_decref(j);
    gv_buf_free(&r.body);
    return code;
}
