/* ctl.c - `grapevine ctl`: talks to a node's admin API over HTTP/1.1 and
 * prints what it answers as tables (status, members, backends) or JSON. */
#include "node/ctl.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"

#include <getopt.h>
#include <stdbool.h>
#include <jansson.h>
#include <llhttp.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

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

/* Sends one request and reads the whole answer. Returns 0 or a negative error
 * with a message on stderr. */
static int request(const char *admin, const char *token, const char *method, const char *path,
                   const char *body, struct reply *out)
{
    char host[256];
    uint16_t port;
    if (gv_split_hostport(admin, host, sizeof(host), &port) != 0) {
        fprintf(stderr, "grapevine ctl: bad admin address \"%s\"\n", admin);
        return GV_EINVAL;
    }
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rv = getaddrinfo(host, portstr, &hints, &res);
    if (rv != 0) {
        fprintf(stderr, "grapevine ctl: %s: %s\n", host, gai_strerror(rv));
        return GV_ENOENT;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = 10};
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        fprintf(stderr, "grapevine ctl: cannot reach the admin API at %s: %s\n", admin,
                strerror(errno));
        freeaddrinfo(res);
        if (fd >= 0)
            close(fd);
        return GV_EIO;
    }
    freeaddrinfo(res);
    struct gv_buf req;
    gv_buf_init(&req);
    gv_buf_printf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, path, admin);
    if (token != NULL)
        gv_buf_printf(&req, "Authorization: Bearer %s\r\n", token);
    if (body != NULL)
        gv_buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                      strlen(body));
    gv_buf_puts(&req, "\r\n");
    if (body != NULL)
        gv_buf_puts(&req, body);
    size_t off = 0;
    while (off < req.len) {
        ssize_t n = write(fd, req.data + off, req.len - off);
        if (n <= 0) {
            fprintf(stderr, "grapevine ctl: write: %s\n", strerror(errno));
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
            fprintf(stderr, "grapevine ctl: read: %s\n", strerror(errno));
            rv = GV_EIO;
            break;
        }
        if (n == 0) {
            llhttp_finish(&p);
            break;
        }
        if (llhttp_execute(&p, buf, (size_t)n) != HPE_OK && !out->done) {
            fprintf(stderr, "grapevine ctl: malformed answer from %s\n", admin);
            rv = GV_EPROTO;
            break;
        }
    }
    close(fd);
    if (rv == 0 && !out->done) {
        fprintf(stderr, "grapevine ctl: %s closed the connection early\n", admin);
        rv = GV_EIO;
    }
    return rv;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

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
               "  status | members | backends | get [KIND [NAME]]\n"
               "  keys [list | install KEY | use ID | remove ID]   (gossip encryption keys)\n"
               "The admin address and token may also come from GRAPEVINE_ADMIN and\n"
               "GRAPEVINE_TOKEN.\n");
}

int node_ctl_main(int argc, char **argv)
{
    const char *admin = getenv("GRAPEVINE_ADMIN");
    const char *token = getenv("GRAPEVINE_TOKEN");
    static const struct option longopts[] = {{"admin", required_argument, NULL, 'a'},
                                             {"token", required_argument, NULL, 't'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'a':
            admin = optarg;
            break;
        case 't':
            token = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (admin == NULL || *admin == '\0')
        admin = "127.0.0.1:9901";
    if (token != NULL && *token == '\0')
        token = NULL;
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[optind];
    int nargs = argc - optind - 1;
    char **args = argv + optind + 1;
    char path[512];
    enum { SHOW_JSON, SHOW_MEMBERS, SHOW_BACKENDS, SHOW_KEYS } show = SHOW_JSON;
    const char *method = "GET";
    char *body = NULL;

    if (strcmp(cmd, "status") == 0 && nargs == 0) {
        snprintf(path, sizeof(path), "/status");
    } else if (strcmp(cmd, "members") == 0 && nargs == 0) {
        snprintf(path, sizeof(path), "/cluster/members");
        show = SHOW_MEMBERS;
    } else if (strcmp(cmd, "backends") == 0 && nargs == 0) {
        snprintf(path, sizeof(path), "/backends");
        show = SHOW_BACKENDS;
    } else if (strcmp(cmd, "get") == 0 && nargs <= 2) {
        snprintf(path, sizeof(path), "/config%s%s%s%s", nargs > 0 ? "/" : "",
                 nargs > 0 ? args[0] : "", nargs > 1 ? "/" : "", nargs > 1 ? args[1] : "");
    } else if (strcmp(cmd, "keys") == 0 &&
               (nargs == 0 || (nargs == 1 && !strcmp(args[0], "list")))) {
        snprintf(path, sizeof(path), "/cluster/keys");
        show = SHOW_KEYS;
    } else if (strcmp(cmd, "keys") == 0 && nargs == 2 && strcmp(args[0], "install") == 0) {
        json_t *b = json_pack("{s:s}", "key", args[1]);
        body = b ? json_dumps(b, JSON_COMPACT) : NULL;
        json_decref(b);
        snprintf(path, sizeof(path), "/cluster/keys");
        method = "POST";
        show = SHOW_KEYS;
    } else if (strcmp(cmd, "keys") == 0 && nargs == 2 && strcmp(args[0], "use") == 0 &&
               strspn(args[1], "0123456789abcdef") == strlen(args[1])) {
        snprintf(path, sizeof(path), "/cluster/keys/%.64s/use", args[1]);
        method = "POST";
        show = SHOW_KEYS;
    } else if (strcmp(cmd, "keys") == 0 && nargs == 2 && strcmp(args[0], "remove") == 0 &&
               strspn(args[1], "0123456789abcdef") == strlen(args[1])) {
        snprintf(path, sizeof(path), "/cluster/keys/%.64s", args[1]);
        method = "DELETE";
        show = SHOW_KEYS;
    } else {
        fprintf(stderr, "grapevine ctl: unknown command or wrong arguments: %s\n", cmd);
        usage(stderr);
        return 2;
    }

    struct reply r = {0};
    gv_buf_init(&r.body);
    int rq = request(admin, token, method, path, body, &r);
    free(body);
    if (rq != 0) {
        gv_buf_free(&r.body);
        return 1;
    }
    json_error_t jerr;
    json_t *j = r.body.len ? json_loadb(r.body.data, r.body.len, 0, &jerr) : NULL;
    int code = 0;
    if (r.status >= 400) {
        const char *msg = j ? json_string_value(json_object_get(j, "error")) : NULL;
        fprintf(stderr, "grapevine ctl: %s answered %d: %s\n", admin, r.status,
                msg ? msg : (r.body.data ? r.body.data : ""));
        code = 1;
    } else if (j == NULL) {
        fprintf(stderr, "grapevine ctl: %s answered %d without JSON\n", admin, r.status);
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
