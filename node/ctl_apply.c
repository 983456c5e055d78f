/* ctl_apply.c - `grapevine ctl apply` and `delete`: YAML or JSON files of
 * cluster state applied object by object through the admin API. */
#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"
#include "node/ctl_int.h"

#include <getopt.h>
#include <jansson.h>
#include <libfyaml.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

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
    int kind = k ? ctl_kind_index(k) : -1;
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
        else if (ctl_kind_index(key) < 0 || strcmp(key, ctl_kinds[ctl_kind_index(key)]) != 0) {
            fprintf(stderr,
                    "%s: unknown key \"%s\" (services, routes, consumers, plugins; or kind: "
                    "for one object)\n",
                    file, key);
            return -1;
        }
    }
    for (size_t o = 0; o < 4; o++) {
        int kind = order[o];
        const json_t *list = json_object_get(doc, ctl_kinds[kind]), *e;
        size_t i;
        if (list != NULL && !json_is_array(list)) {
            fprintf(stderr, "%s: %s: must be a list\n", file, ctl_kinds[kind]);
            return -1;
        }
        json_array_foreach(list, i, e)
        {
            const char *name = NULL;
            json_t *config = NULL;
            if (kind == 3 ? plugin_entry(e, &name, &config) != 0
                          : (name = json_string_value(json_object_get(e, "name"))) == NULL ||
                                !json_is_object(e)) {
                fprintf(stderr, "%s: %s[%zu]: %s\n", file, ctl_kinds[kind], i,
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
    const char *kind = ctl_kinds[it->kind];
    struct gv_buf path;
    struct reply r;
    json_t *cur = NULL, *stored = NULL;
    char *body = NULL;
    const char *what = NULL;
    int code = 1;
    gv_buf_init(&path);
    ctl_object_path(&path, kind, it->name);
    if (ctl_request(ctl, "GET", path.data, NULL, &r) != 0) {
        fprintf(stderr, "grapevine ctl: %s\n", ctl->err);
        goto out;
    }
    if (r.status == 200) {
        cur = ctl_reply_json(&r);
    } else if (r.status != 404) {
        ctl_answered_error(ctl, &r);
        goto out;
    }
    gv_buf_free(&r.body);
    if (cur != NULL && json_equal(cur, it->body)) {
        what = "unchanged";
    } else {
        body = json_dumps(it->body, JSON_COMPACT);
        if (body == NULL || ctl_request(ctl, "PUT", path.data, body, &r) != 0) {
            fprintf(stderr, "grapevine ctl: %s\n", body ? ctl->err : "out of memory");
            goto out;
        }
        stored = ctl_reply_json(&r);
        if (r.status == 400 && stored != NULL && json_object_get(stored, "error") != NULL) {
            ctl_print_refusal(kind, it->name, stored);
            goto out;
        }
        if (r.status != 200) {
            ctl_answered_error(ctl, &r);
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

int ctl_cmd_apply(struct ctl *ctl, int argc, char **argv)
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

int ctl_cmd_delete(struct ctl *ctl, const char *kind_word, const char *name)
{
    const char *kind = ctl_kind_arg(kind_word);
    struct gv_buf path;
    struct reply r;
    int code = 1;
    gv_buf_init(&path);
    ctl_object_path(&path, kind, name);
    if (ctl_request(ctl, "DELETE", path.data, NULL, &r) != 0) {
        fprintf(stderr, "grapevine ctl: %s\n", ctl->err);
    } else if (r.status == 204 || r.status == 200) {
        printf("%s/%s deleted\n", kind, name);
        code = 0;
    } else if (r.status == 400) {
        json_t *j = ctl_reply_json(&r);
        if (j != NULL)
            ctl_print_refusal(kind, name, j);
        else
            ctl_answered_error(ctl, &r);
        json_decref(j);
    } else {
        ctl_answered_error(ctl, &r);
    }
    gv_buf_free(&r.body);
    gv_buf_free(&path);
    return code;
}
