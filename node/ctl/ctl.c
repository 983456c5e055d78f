/* ctl.c - `grapevine ctl`: talks to a node's admin API over HTTP/1.1, prints
 * what it answers as tables (status, members, backends) or JSON, and applies
 * YAML or JSON files of cluster state object by object. */
#include "node/ctl/ctl.h"
#include "node/ctl/ctl_int.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/kinds.h"
#include "common/util.h"

#include <getopt.h>
#include <jansson.h>
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
int ctl_request(struct ctl *ctl, const char *method, const char *path, const char *body,
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
json_t *ctl_reply_json(const struct reply *r)
{
    json_error_t e;
    return r->body.len ? json_loadb(r->body.data, r->body.len, 0, &e) : NULL;
}

const char *ctl_str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* Prints an error answer ("ADDR answered 404: no route named ...") and
 * returns the exit code 1. */
int ctl_answered_error(const struct ctl *ctl, const struct reply *r)
{
    json_t *j = ctl_reply_json(r);
    const char *msg = j ? json_string_value(json_object_get(j, "error")) : NULL;
    fprintf(stderr, "grapevine ctl: %s answered %d: %s\n", ctl->admin, r->status,
            msg ? msg : (r->body.data ? r->body.data : ""));
    json_decref(j);
    return 1;
}

/* The kind a user typed ("route", "routes") as the API's name; other words
 * are passed on as typed, for the node to refuse. */
const char *ctl_kind_arg(const char *s)
{
    const struct gv_kind *k = gv_kind_by_word(s);
    return k ? k->plural : s;
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
void ctl_object_path(struct gv_buf *b, const char *kind, const char *name)
{
    gv_buf_reset(b);
    gv_buf_puts(b, "/config/");
    put_segment(b, kind);
    if (name != NULL) {
        gv_buf_puts(b, "/");
        put_segment(b, name);
    }
}

/* Prints a refused change as "PLACEerror: PATH: MESSAGE" (PLACE: "FILE:LINE: "
 * or ""). The node's path is
 * relative to the object sent ("service", "match.paths[0]") unless it names
 * another object ("routes[api].service"); made whole here so it says which
 * object of a file is wrong. */
void ctl_print_refusal(const char *place, const char *kind, const char *name, const json_t *answer)
{
    const char *path = ctl_str(answer, "path"), *msg = ctl_str(answer, "error");
    size_t kl = strcspn(path, "[");
    char k[32];
    snprintf(k, sizeof(k), "%.*s", (int)GV_MIN(kl, sizeof(k) - 1), path);
    if (path[kl] == '[' && gv_kind_by_name(k) != NULL)
        fprintf(stderr, "%serror: %s: %s\n", place, path, msg);
    else
        fprintf(stderr, "%serror: %s[%s]%s%s: %s\n", place, kind, name,
                *path && *path != '[' ? "." : "", path, msg);
}
/* GET path as JSON into *out. Returns 0, or -1 with the reason in why. */
int ctl_get_json(struct ctl *ctl, const char *path, json_t **out, char *why, size_t whylen)
{
    struct reply r;
    *out = NULL;
    if (ctl_request(ctl, "GET", path, NULL, &r) != 0) {
        snprintf(why, whylen, "%s", ctl->err);
    } else if (r.status != 200) {
        json_t *j = ctl_reply_json(&r);
        snprintf(why, whylen, "%s answered %d: %s", ctl->admin, r.status,
                 j ? ctl_str(j, "error") : "");
        json_decref(j);
    } else if ((*out = ctl_reply_json(&r)) == NULL) {
        snprintf(why, whylen, "%s answered %d without JSON", ctl->admin, r.status);
    }
    gv_buf_free(&r.body);
    return *out ? 0 : -1;
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
        snprintf(digest, sizeof(digest), "%s", ctl_str(m, "config_digest"));
        printf("%-20s %-24s %-8s %12lld %-16s %lld\n", ctl_str(m, "name"), ctl_str(m, "address"),
               ctl_str(m, "state"),
               (long long)json_integer_value(json_object_get(m, "incarnation")), digest,
               (long long)json_integer_value(json_object_get(m, "config_version")));
    }
}

/* checked_by: an array of member names (older nodes sent one string). */
static void checkers_text(const json_t *v, char *out, size_t cap)
{
    size_t i, len = 0;
    const json_t *m;
    out[0] = '\0';
    if (json_is_string(v))
        snprintf(out, cap, "%s", json_string_value(v));
    json_array_foreach(v, i, m)
    {
        if (!json_is_string(m) || len >= cap)
            continue;
        int w = snprintf(out + len, cap - len, "%s%s", i ? "," : "", json_string_value(m));
        len += w > 0 ? (size_t)w : 0;
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
            char by[256];
            checkers_text(json_object_get(t, "checked_by"), by, sizeof(by));
            printf("%-20s %-24s %-8s %-14s %s\n", ctl_str(s, "service"), ctl_str(t, "address"),
                   json_is_true(json_object_get(t, "healthy")) ? "yes" : "no",
                   *ctl_str(t, "reason") ? ctl_str(t, "reason") : "-", *by ? by : "-");
        }
    }
}

static void usage(FILE *f)
{
    char kinds[128];
    fprintf(f,
            "usage: grapevine ctl [--admin HOST:PORT] [--token T] COMMAND\n"
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
            "KIND is %s (or service, route, ...).\n"
            "The admin address and token may also come from GRAPEVINE_ADMIN and\n"
            "GRAPEVINE_TOKEN.\n",
            gv_kinds_text(kinds, sizeof(kinds), " or "));
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
        return ctl_cmd_status(&ctl, nargs + 1, args - 1);
    if (strcmp(cmd, "apply") == 0)
        return ctl_cmd_apply(&ctl, nargs + 1, args - 1);
    if (strcmp(cmd, "delete") == 0 && nargs == 2)
        return ctl_cmd_delete(&ctl, args[0], args[1]);
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
            ctl_object_path(&path, ctl_kind_arg(args[0]), nargs > 1 ? args[1] : NULL);
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
    int rq = ctl_request(&ctl, method, path.data, body, &r);
    free(body);
    gv_buf_free(&path);
    if (rq != 0) {
        fprintf(stderr, "grapevine ctl: %s\n", ctl.err);
        gv_buf_free(&r.body);
        return 1;
    }
    json_t *j = ctl_reply_json(&r);
    int code = 0;
    if (r.status >= 400) {
        code = ctl_answered_error(&ctl, &r);
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
            printf("%-10s %s\n", ctl_str(k, "id"),
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
