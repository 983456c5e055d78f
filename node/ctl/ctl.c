/* ctl.c - `grapevine ctl`: talks to a node's admin API over HTTP/1.1, prints
 * what it answers as tables (status, members, backends) or JSON, and applies
 * YAML or JSON files of cluster state object by object. */
#include "node/ctl/ctl.h"
#include "node/ctl/ctl_int.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/httpc.h"
#include "common/kinds.h"
#include "common/util.h"
#include "common/yaml.h"

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CTL_TIMEOUT_MS (10 * 1000)
#define CTL_MAX_ANSWER (256 * 1024 * 1024) /* a whole cluster state fits */

/* The request's bytes: its head (the token, a JSON body's type) and body. */
static int build_request(const struct ctl *ctl, const char *method, const char *path,
                         const char *body, struct gv_buf *req)
{
    struct gv_buf h;
    gv_buf_init(&h);
    int rc = gv_buf_puts(&h, "Connection: close\r\n");
    if (rc == 0 && ctl->token != NULL)
        rc = gv_buf_printf(&h, "Authorization: Bearer %s\r\n", ctl->token);
    if (rc == 0 && body != NULL)
        rc = gv_buf_puts(&h, "Content-Type: application/json\r\n");
    if (rc == 0)
        rc = gv_httpc_put_request(req, method, path, ctl->admin, h.data,
                                  body != NULL ? (long long)strlen(body) : -1);
    if (rc == 0 && body != NULL)
        rc = gv_buf_puts(req, body);
    gv_buf_free(&h);
    return rc;
}

/* Sends one request and reads the whole answer into out (init'd here; free
 * out->body). Returns 0, or a negative error with the reason in ctl->err. */
int ctl_request(struct ctl *ctl, const char *method, const char *path, const char *body,
                struct reply *out)
{
    static const struct gv_httpc_options answer = {.max_body_bytes = CTL_MAX_ANSWER};
    char why[300];
    struct gv_buf req;
    struct gv_httpc resp;
    memset(out, 0, sizeof(*out));
    gv_buf_init(&out->body);
    int fd = gv_httpc_connect(ctl->admin, CTL_TIMEOUT_MS, why, sizeof(why));
    if (fd < 0) {
        snprintf(ctl->err, sizeof(ctl->err), "cannot reach the admin API at %s: %s", ctl->admin,
                 why);
        return fd;
    }
    gv_buf_init(&req);
    gv_httpc_init(&resp, &answer);
    int rc = build_request(ctl, method, path, body, &req);
    if (rc != 0)
        snprintf(why, sizeof(why), "%s", gv_strerror(rc));
    else
        rc = gv_httpc_exchange(fd, req.data, req.len, &resp, why, sizeof(why));
    close(fd);
    if (rc != 0) {
        snprintf(ctl->err, sizeof(ctl->err), "admin API at %s: %s", ctl->admin, why);
    } else {
        out->status = resp.status;
        out->body = resp.body;
        gv_buf_init(&resp.body);
    }
    gv_httpc_free(&resp);
    gv_buf_free(&req);
    return rc;
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
    if (r->status == 401)
        fprintf(stderr,
                "hint: this node wants its admin token (the contents of its "
                "node.admin_token_file):\n      grapevine ctl --token TOKEN ...  or  "
                "GRAPEVINE_TOKEN=TOKEN grapevine ctl ...%s\n",
                ctl->token ? "\n      (the token given was refused)" : "");
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
            "  members | backends [-o table|json|yaml]\n"
            "  get [KIND [NAME]] [-o json|yaml]   the cluster state, one kind, or one object\n"
            "  apply [-f] FILE            creates or updates every object in FILE (YAML or\n"
            "        JSON; - is stdin): a state document like the config file's (its node:\n"
            "        section is ignored) or one object with a kind: key. Prints\n"
            "        KIND/NAME created | configured | unchanged for each, and stops at the\n"
            "        first one the node refuses (\"error: PATH: MESSAGE\", exit 1); the\n"
            "        objects before it stay applied. Never deletes anything.\n"
            "  diff [-f] FILE             what apply would change, as a diff (apply --dry-run:\n"
            "        what it would do, object by object)\n"
            "  delete KIND NAME\n"
            "  keys [list | install KEY | use ID | remove ID]   (gossip encryption keys)\n"
            "KIND is %s (or service, route, ...).\n"
            "grapevine ctl COMMAND --help describes a command.\n"
            "The admin address and token may also come from GRAPEVINE_ADMIN and\n"
            "GRAPEVINE_TOKEN.\n",
            gv_kinds_text(kinds, sizeof(kinds), " or "));
}

static void print_keys(const json_t *arr)
{
    size_t i;
    const json_t *k;
    printf("%-10s %s\n", "ID", "PRIMARY");
    json_array_foreach(arr, i, k)
    {
        printf("%-10s %s\n", ctl_str(k, "id"),
               json_is_true(json_object_get(k, "primary")) ? "yes" : "no");
    }
}

static void print_json(const json_t *j)
{
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text != NULL)
        printf("%s\n", text);
    free(text);
}

/* YAML; the whole state's digest and version become comments, so the
 * output is a file `apply -f` takes back. */
static void print_yaml(const json_t *j)
{
    struct gv_buf b;
    json_t *copy = NULL;
    gv_buf_init(&b);
    if (json_is_object(j) && json_object_get(j, "digest") && json_object_get(j, "version")) {
        gv_buf_printf(&b, "# digest: %s\n# version: %lld\n", ctl_str(j, "digest"),
                      (long long)json_integer_value(json_object_get(j, "version")));
        copy = json_copy((json_t *)j);
        json_object_del(copy, "digest");
        json_object_del(copy, "version");
        j = copy;
    }
    if (j != NULL && gv_yaml_dump(j, &b) == 0 && b.data != NULL)
        fwrite(b.data, 1, b.len, stdout);
    json_decref(copy);
    gv_buf_free(&b);
}

/* -o FORMAT (or --output FORMAT, -oFORMAT) anywhere in a command's
 * arguments: taken out of args (nargs shrinks). The printer for it (NULL:
 * the command's own), or false for a format it does not know. */
static bool take_output(int *nargs, char **args, void (**print)(const json_t *))
{
    for (int i = 0; i < *nargs; i++) {
        const char *fmt = NULL;
        int used = 1;
        if ((strcmp(args[i], "-o") == 0 || strcmp(args[i], "--output") == 0) && i + 1 < *nargs)
            fmt = args[i + 1], used = 2;
        else if (strncmp(args[i], "-o", 2) == 0 && args[i][2] != '\0')
            fmt = args[i] + 2;
        else if (strncmp(args[i], "--output=", 9) == 0)
            fmt = args[i] + 9;
        if (fmt == NULL)
            continue;
        if (strcmp(fmt, "json") == 0)
            *print = print_json;
        else if (strcmp(fmt, "yaml") == 0)
            *print = print_yaml;
        else if (strcmp(fmt, "table") != 0)
            return false;
        memmove(&args[i], &args[i + used], (size_t)(*nargs - i - used) * sizeof(*args));
        *nargs -= used;
        i--;
    }
    return true;
}

/* ---- the commands -------------------------------------------------------- */

/* The one admin request a plain command makes, and how its answer shows. */
struct call {
    const char *method;
    struct gv_buf path;
    char *body; /* JSON, or NULL */
    void (*print)(const json_t *answer);
};

/* Each fills c from the command's arguments; false when they are wrong. */
static bool call_members(int nargs, char **args, struct call *c)
{
    c->print = print_members;
    return nargs == 0 && gv_buf_puts(&c->path, "/cluster/members") == 0;
}

static bool call_backends(int nargs, char **args, struct call *c)
{
    c->print = print_backends;
    return nargs == 0 && gv_buf_puts(&c->path, "/backends") == 0;
}

static bool call_get(int nargs, char **args, struct call *c)
{
    if (nargs == 0)
        gv_buf_puts(&c->path, "/config");
    else if (nargs <= 2)
        ctl_object_path(&c->path, ctl_kind_arg(args[0]), nargs > 1 ? args[1] : NULL);
    return nargs <= 2;
}

static bool key_id_ok(const char *id)
{
    return strspn(id, "0123456789abcdef") == strlen(id);
}

/* keys [list | install KEY | use ID | remove ID] */
static bool call_keys(int nargs, char **args, struct call *c)
{
    c->print = print_keys;
    if (nargs == 0 || (nargs == 1 && strcmp(args[0], "list") == 0))
        return gv_buf_puts(&c->path, "/cluster/keys") == 0;
    if (nargs != 2)
        return false;
    if (strcmp(args[0], "install") == 0) {
        json_t *b = json_pack("{s:s}", "key", args[1]);
        c->body = b ? json_dumps(b, JSON_COMPACT) : NULL;
        json_decref(b);
        c->method = "POST";
        return gv_buf_puts(&c->path, "/cluster/keys") == 0;
    }
    if (strcmp(args[0], "use") == 0 && key_id_ok(args[1])) {
        c->method = "POST";
        return gv_buf_printf(&c->path, "/cluster/keys/%.64s/use", args[1]) == 0;
    }
    if (strcmp(args[0], "remove") == 0 && key_id_ok(args[1])) {
        c->method = "DELETE";
        return gv_buf_printf(&c->path, "/cluster/keys/%.64s", args[1]) == 0;
    }
    return false;
}

/* Makes the call and prints its answer; the exit code. */
static int run_call(struct ctl *ctl, const struct call *c)
{
    struct reply r;
    if (ctl_request(ctl, c->method, c->path.data, c->body, &r) != 0) {
        fprintf(stderr, "grapevine ctl: %s\n", ctl->err);
        gv_buf_free(&r.body);
        return 1;
    }
    json_t *j = ctl_reply_json(&r);
    int code = 0;
    if (r.status >= 400) {
        code = ctl_answered_error(ctl, &r);
    } else if (j == NULL) {
        fprintf(stderr, "grapevine ctl: %s answered %d without JSON\n", ctl->admin, r.status);
        code = 1;
    } else {
        c->print(j);
    }
    json_decref(j);
    gv_buf_free(&r.body);
    return code;
}

static int cmd_status(struct ctl *ctl, int nargs, char **args)
{
    return ctl_cmd_status(ctl, nargs + 1, args - 1);
}

static int cmd_apply(struct ctl *ctl, int nargs, char **args)
{
    return ctl_cmd_apply(ctl, nargs + 1, args - 1);
}

static int cmd_diff(struct ctl *ctl, int nargs, char **args)
{
    ctl->mode = CTL_DIFF;
    return ctl_cmd_apply(ctl, nargs + 1, args - 1);
}

static int cmd_delete(struct ctl *ctl, int nargs, char **args)
{
    return nargs == 2 ? ctl_cmd_delete(ctl, args[0], args[1]) : -1;
}

/* Every command: one of its own (run; -1 for wrong arguments), or one
 * request (call). */
static const struct {
    const char *name;
    int (*run)(struct ctl *ctl, int nargs, char **args);
    bool (*call)(int nargs, char **args, struct call *c);
} commands[] = {
    {"status", cmd_status, NULL},      {"apply", cmd_apply, NULL},
    {"delete", cmd_delete, NULL},      {"members", NULL, call_members},
    {"backends", NULL, call_backends}, {"get", NULL, call_get},
    {"keys", NULL, call_keys},         {"diff", cmd_diff, NULL},
};

/* COMMAND --help: the usage text's lines about it. */
static const struct {
    const char *name, *text;
} command_help[] = {
    {"status", "usage: grapevine ctl status [--watch] [--interval MS] [--timeout S] [--json]\n"
               "This node, and each member's state, config version and digest (* marks a\n"
               "member whose config differs from this node's).\n"
               "  --watch          print the table again whenever it changes, until Ctrl-C\n"
               "                   or --timeout\n"
               "  --interval MS    how often --watch asks the node (default 500, >= 10)\n"
               "  --timeout S      stop watching after S seconds (default 0: never)\n"
               "  --json           the node's /status and /cluster/members as JSON\n"},
    {"members", "usage: grapevine ctl members [-o table|json|yaml]\n"
                "Every member with state, address and applied config (default: a table).\n"},
    {"backends", "usage: grapevine ctl backends [-o table|json|yaml]\n"
                 "Every service's targets with health, reason and the nodes that check them\n"
                 "(default: a table).\n"},
    {"get", "usage: grapevine ctl get [KIND [NAME]] [-o json|yaml]\n"
            "The whole cluster state, one kind, or one object (default: JSON; -o yaml\n"
            "prints what `apply -f` takes back).\n"},
    {"diff", "usage: grapevine ctl diff [-f] FILE\n"
             "What `apply` would change, object by object, as a diff of each object's YAML\n"
             "(--- the node's, +++ after the apply, defaults filled in by the node, which\n"
             "checks every object and changes nothing). Exit status as diff(1): 0 no\n"
             "changes, 1 changes, 2 trouble (an object refused, the node unreachable).\n"},
    {"apply", "usage: grapevine ctl apply [-f] FILE [--dry-run]\n"
              "Creates or updates every object in FILE (YAML or JSON; - is stdin): a state\n"
              "document like the config file's (its node: section is ignored) or one object\n"
              "with a kind: key. Prints KIND/NAME created | configured | unchanged for each\n"
              "and stops at the first one the node refuses (exit 1). Never deletes.\n"
              "  --dry-run   the node checks each object and says what it would do\n"
              "              (created | configured | unchanged); nothing changes\n"},
    {"delete", "usage: grapevine ctl delete KIND NAME\n"},
    {"keys", "usage: grapevine ctl keys [list | install KEY | use ID | remove ID]\n"
             "The gossip encryption keys: list ids, install a key (base64 of 32 bytes),\n"
             "make one the primary, remove a non-primary one.\n"},
};

static void command_usage(FILE *f, const char *cmd)
{
    for (size_t i = 0; i < GV_ARRAY_LEN(command_help); i++)
        if (strcmp(command_help[i].name, cmd) == 0)
            fputs(command_help[i].text, f);
    fprintf(f, "Options before the command: --admin HOST:PORT (default 127.0.0.1:9901, or\n"
               "GRAPEVINE_ADMIN), --token T (or GRAPEVINE_TOKEN).\n");
}

static bool wants_help(int nargs, char **args)
{
    for (int i = 0; i < nargs; i++)
        if (strcmp(args[i], "--help") == 0 || strcmp(args[i], "-h") == 0)
            return true;
    return false;
}

/* Runs the command named cmd; -1 when there is none or its arguments are
 * wrong, else the exit code. */
static int run_command(struct ctl *ctl, const char *cmd, int nargs, char **args)
{
    for (size_t i = 0; i < GV_ARRAY_LEN(commands); i++) {
        if (strcmp(commands[i].name, cmd) != 0)
            continue;
        if (wants_help(nargs, args)) {
            command_usage(stdout, cmd);
            return 0;
        }
        if (commands[i].run != NULL)
            return commands[i].run(ctl, nargs, args);
        struct call c = {.method = "GET", .print = print_json};
        void (*print)(const json_t *) = NULL;
        gv_buf_init(&c.path);
        if (!take_output(&nargs, args, &print)) {
            fprintf(stderr, "grapevine ctl %s: -o takes json, yaml or table\n", cmd);
            return 2;
        }
        bool ok = commands[i].call(nargs, args, &c);
        if (print != NULL)
            c.print = print;
        int code = ok ? run_call(ctl, &c) : -1;
        gv_buf_free(&c.path);
        free(c.body);
        return code;
    }
    return -1;
}

/* The options before the command; -1 after --help, 0, or 2 (usage). */
static int parse_options(int argc, char **argv, struct ctl *ctl)
{
    static const struct option longopts[] = {{"admin", required_argument, NULL, 'a'},
                                             {"token", required_argument, NULL, 't'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "+a:t:h", longopts, NULL)) != -1) {
        if (ch == 'a') {
            ctl->admin = optarg;
        } else if (ch == 't') {
            ctl->token = optarg;
        } else if (ch == 'h') {
            usage(stdout);
            return -1;
        } else {
            fprintf(stderr, "hint: the options before COMMAND are --admin, --token and --help; "
                            "a command's own come after it (grapevine ctl COMMAND --help)\n");
            return 2;
        }
    }
    if (ctl->admin == NULL || *ctl->admin == '\0')
        ctl->admin = "127.0.0.1:9901";
    if (ctl->token != NULL && *ctl->token == '\0')
        ctl->token = NULL;
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    return 0;
}

int node_ctl_main(int argc, char **argv)
{
    struct ctl ctl = {.admin = getenv("GRAPEVINE_ADMIN"), .token = getenv("GRAPEVINE_TOKEN")};
    int rc = parse_options(argc, argv, &ctl);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    const char *cmd = argv[optind];
    int code = run_command(&ctl, cmd, argc - optind - 1, argv + optind + 1);
    if (code < 0) {
        bool known = false;
        for (size_t i = 0; i < GV_ARRAY_LEN(commands); i++)
            known |= strcmp(commands[i].name, cmd) == 0;
        if (known) {
            fprintf(stderr, "grapevine ctl %s: wrong arguments\n", cmd);
            command_usage(stderr, cmd);
        } else {
            fprintf(stderr, "grapevine ctl: unknown command: %s\n", cmd);
            usage(stderr);
        }
        return 2;
    }
    return code;
}
