/* apply.c - `grapevine ctl apply` and `delete`: YAML or JSON files of
 * cluster state applied object by object through the admin API. */
#include "common/buf.h"
#include "common/err.h"
#include "common/kinds.h"
#include "common/util.h"
#include "common/yaml.h"
#include "node/ctl/ctl_int.h"

#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* ---- the objects of a file ------------------------------------------------- */

struct item {
    const struct gv_kind *kind;
    char *name;
    json_t *body; /* what PUT sends */
    char *where;  /* its path in the file: "routes[2]", "" for a kind: document */
    bool named;   /* a kind: plugin document with name: beside the config */
};

struct items {
    struct item *v;
    size_t n, cap;
};

static int add_item(struct items *l, const struct gv_kind *kind, const char *name, json_t *body,
                    const char *where, bool named)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct item *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    struct item it = {kind, strdup(name), json_incref(body), strdup(where), named};
    if (it.name == NULL || it.where == NULL) {
        free(it.name);
        free(it.where);
        json_decref(body);
        fprintf(stderr, "grapevine ctl: out of memory\n");
        return -1;
    }
    l->v[l->n++] = it;
    return 0;
}

static void free_items(struct items *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].where);
        json_decref(l->v[i].body);
    }
    free(l->v);
}

/* Prints "FILE:LINE: path: message", LINE being where's; returns -1. */
__attribute__((format(printf, 4, 5))) static int
file_error(const struct gv_yaml *y, const char *where, const char *path, const char *fmt, ...)
{
    char msg[512], text[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gv_yaml_message(text, sizeof(text), y->name, gv_yaml_line(y, where), path, msg);
    fprintf(stderr, "%s\n", text);
    return -1;
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
static int collect_one(const struct gv_yaml *y, struct items *out)
{
    const json_t *doc = y->root;
    const struct gv_kind *kind = gv_kind_by_word(json_string_value(json_object_get(doc, "kind")));
    json_t *obj = json_deep_copy(doc), *config = NULL;
    const char *name = NULL;
    bool named = false;
    char kinds[128];
    int rv = -1;
    if (kind == NULL) {
        file_error(y, "kind", "kind", "must be %s", gv_kinds_text(kinds, sizeof(kinds), " or "));
        goto out;
    }
    json_object_del(obj, "kind");
    bool plugin = kind->id == GV_KIND_PLUGINS; /* {NAME: {config}}, not {name: NAME, ...} */
    if (plugin && plugin_entry(obj, &name, &config) == 0 && strcmp(name, "name") != 0) {
        /* kind: plugin, NAME: {...} */
    } else if ((name = json_string_value(json_object_get(obj, "name"))) != NULL) {
        if (plugin) { /* kind: plugin, name: NAME, and its config beside */
            config = json_deep_copy(obj);
            json_object_del(config, "name");
            named = true;
        } else {
            config = json_incref(obj);
        }
    } else {
        file_error(y, "", "name", "the object needs a name");
        goto out;
    }
    rv = add_item(out, kind, name, config, "", named);
out:
    json_decref(config);
    json_decref(obj);
    return rv;
}

/* A state document: its kinds in the table's apply order (routes, which name
 * services, last), each in file order. */
static int collect_state(const struct gv_yaml *y, struct items *out)
{
    const json_t *doc = y->root;
    const char *key;
    const json_t *v;
    char where[64], kinds[128];
    json_object_foreach((json_t *)doc, key, v)
    {
        if (strcmp(key, "node") == 0)
            fprintf(stderr,
                    "grapevine ctl: %s: ignoring node: (this node's settings are not "
                    "cluster state)\n",
                    y->name);
        else if (gv_kind_by_name(key) == NULL)
            return file_error(y, key, "", "unknown key \"%s\" (%s; or kind: for one object)", key,
                              gv_kinds_text(kinds, sizeof(kinds), ", "));
    }
    for (size_t o = 0; o < GV_KIND_COUNT; o++) {
        const struct gv_kind *kind = &gv_kinds[o];
        bool plugin = kind->id == GV_KIND_PLUGINS;
        const json_t *list = json_object_get(doc, kind->plural), *e;
        size_t i;
        if (list != NULL && !json_is_array(list))
            return file_error(y, kind->plural, kind->plural, "must be a list");
        json_array_foreach(list, i, e)
        {
            const char *name = NULL;
            json_t *config = NULL;
            snprintf(where, sizeof(where), "%s[%zu]", kind->plural, i);
            if (plugin ? plugin_entry(e, &name, &config) != 0
                       : (name = json_string_value(json_object_get(e, "name"))) == NULL ||
                             !json_is_object(e))
                return file_error(y, where, where, "%s",
                                  plugin ? "a plugin is {NAME: {...}}"
                                         : "must be an object with a name");
            int rv = add_item(out, kind, name, plugin ? config : (json_t *)e, where, false);
            json_decref(config);
            if (rv != 0)
                return -1;
        }
    }
    return 0;
}

/* ---- apply ------------------------------------------------------------------ */

/* "FILE:LINE: " of what a refusal of it points at: the node's path is
 * relative to it ("service", "match.paths[0]"; a plugin's starts with the
 * plugin's name) or names another object ("routes[api].service"), which may
 * be in the same file. */
static void refusal_place(const struct gv_yaml *y, const struct items *items, const struct item *it,
                          const json_t *answer, char *out, size_t n)
{
    const char *path = ctl_str(answer, "path");
    char kname[32], name[256], full[512];
    int used = 0;
    const struct item *at = it;
    const char *rest = path;
    if (sscanf(path, "%31[a-z][%255[^]]]%n", kname, name, &used) == 2 && used > 0 &&
        gv_kind_by_name(kname) != NULL) {
        at = NULL;
        rest = path + used;
        for (size_t i = 0; i < items->n && at == NULL; i++)
            if (items->v[i].kind == gv_kind_by_name(kname) && strcmp(items->v[i].name, name) == 0)
                at = &items->v[i];
    } else if (at->named) { /* its config sits beside name:, not under NAME */
        size_t nl = strlen(at->name);
        if (strncmp(rest, at->name, nl) == 0 && (rest[nl] == '\0' || rest[nl] == '.'))
            rest += nl + (rest[nl] == '.');
    }
    if (at == NULL) { /* another object, not in this file: point at the one refused */
        at = it;
        rest = "";
    }
    snprintf(full, sizeof(full), "%s%s%s", at->where,
             at->where[0] && *rest && *rest != '[' ? "." : "", rest);
    snprintf(out, n, "%s:%d: ", y->name, gv_yaml_line(y, full));
}

/* ---- dry runs and diffs ---------------------------------------------------- */

/* The lines of j as YAML (none for NULL); *n of them, in buf (free both). */
static char **yaml_lines(const json_t *j, struct gv_buf *buf, size_t *n)
{
    char **lines = NULL;
    size_t cap = 0;
    *n = 0;
    gv_buf_init(buf);
    if (j == NULL || gv_yaml_dump(j, buf) != 0 || buf->data == NULL)
        return NULL;
    for (char *p = buf->data; *p != '\0';) {
        char *nl = strchr(p, '\n');
        if (*n == cap) {
            cap = cap ? cap * 2 : 32;
            char **more = realloc(lines, cap * sizeof(*lines));
            if (more == NULL)
                break;
            lines = more;
        }
        lines[(*n)++] = p;
        if (nl == NULL)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    return lines;
}

/* Prints the lines of a and b as a diff (longest common subsequence):
 * " " kept, "-" only in a, "+" only in b. */
static void print_diff(char **a, size_t na, char **b, size_t nb)
{
    size_t *lcs = calloc((na + 1) * (nb + 1), sizeof(*lcs));
#define L(i, j) lcs[(i) * (nb + 1) + (j)]
    if (lcs == NULL)
        return;
    for (size_t i = na; i-- > 0;)
        for (size_t j = nb; j-- > 0;)
            L(i, j) =
                strcmp(a[i], b[j]) == 0 ? L(i + 1, j + 1) + 1 : GV_MAX(L(i + 1, j), L(i, j + 1));
    size_t i = 0, j = 0;
    while (i < na || j < nb) {
        if (i < na && j < nb && strcmp(a[i], b[j]) == 0)
            printf(" %s\n", a[i++]), j++;
        else if (i < na && (j == nb || L(i + 1, j) >= L(i, j + 1)))
            printf("-%s\n", a[i++]);
        else
            printf("+%s\n", b[j++]);
    }
#undef L
    free(lcs);
}

/* What a PUT of it would do, from the node (?dry_run=true): 0 with the
 * outcome in *what (static) and the object as it would be in *would; 1
 * after printing a refusal or an error. */
static int dry_put(struct ctl *ctl, const struct gv_yaml *y, const struct items *items,
                   const struct item *it, const struct gv_buf *path, const char **what,
                   json_t **would)
{
    static const char *const outcomes[] = {"created", "configured", "unchanged"};
    struct gv_buf p;
    struct reply r;
    int code = 1;
    char *body = json_dumps(it->body, JSON_COMPACT);
    gv_buf_init(&p);
    gv_buf_printf(&p, "%s?dry_run=true", path->data);
    if (body == NULL || ctl_request(ctl, "PUT", p.data, body, &r) != 0) {
        fprintf(stderr, "grapevine ctl: %s\n", body ? ctl->err : "out of memory");
        goto out;
    }
    json_t *j = ctl_reply_json(&r);
    const char *result = ctl_str(j, "result");
    if (r.status == 400 && j != NULL && json_object_get(j, "error") != NULL) {
        char place[300];
        refusal_place(y, items, it, j, place, sizeof(place));
        ctl_print_refusal(place, it->kind->plural, it->name, j);
    } else if (r.status != 200 || j == NULL) {
        ctl_answered_error(ctl, &r);
    } else {
        for (size_t i = 0; i < GV_ARRAY_LEN(outcomes); i++)
            if (strcmp(result, outcomes[i]) == 0)
                *what = outcomes[i];
        *would = json_incref(json_object_get(j, "object"));
        code = 0;
    }
    json_decref(j);
    gv_buf_free(&r.body);
out:
    gv_buf_free(&p);
    free(body);
    return code;
}

/* diff: the node's object (cur, NULL when absent) against what the file
 * would make of it. */
static void print_object_diff(const struct item *it, const json_t *cur, const json_t *would)
{
    struct gv_buf ba, bb;
    size_t na, nb;
    char **a = yaml_lines(cur, &ba, &na), **b = yaml_lines(would, &bb, &nb);
    printf("--- %s/%s (node)%s\n+++ %s/%s (file)\n", it->kind->plural, it->name,
           cur ? "" : " absent", it->kind->plural, it->name);
    print_diff(a, na, b, nb);
    free(a);
    free(b);
    gv_buf_free(&ba);
    gv_buf_free(&bb);
}

/* A dry run or diff of one object; 0 unchanged, 3 it would change, 1 error. */
static int check_item(struct ctl *ctl, const struct gv_yaml *y, const struct items *items,
                      const struct item *it, const struct gv_buf *path, json_t *cur)
{
    const char *what = "";
    json_t *would = NULL;
    if (dry_put(ctl, y, items, it, path, &what, &would) != 0)
        return 1;
    bool same = strcmp(what, "unchanged") == 0;
    if (ctl->mode == CTL_DRY_RUN)
        printf("%s/%s %s (dry run)\n", it->kind->plural, it->name, what);
    else if (!same)
        print_object_diff(it, cur, would);
    fflush(stdout);
    json_decref(would);
    return same ? 0 : 3;
}

/* GETs the object, PUTs it unless the node holds exactly it, and prints what
 * happened (or, in a dry run or diff, what would). Returns 0, 3 when a dry
 * run or diff found a change, or the exit code 1 after printing why. */
static int apply_item(struct ctl *ctl, const struct gv_yaml *y, const struct items *items,
                      const struct item *it)
{
    const char *kind = it->kind->plural;
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
    if (ctl->mode != CTL_APPLY) {
        code = check_item(ctl, y, items, it, &path, cur);
        goto out;
    }
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
            char place[300];
            refusal_place(y, items, it, stored, place, sizeof(place));
            ctl_print_refusal(place, kind, it->name, stored);
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
                                             {"dry-run", no_argument, NULL, 'n'},
                                             {NULL, 0, NULL, 0}};
    const char *file = NULL;
    char err[768];
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "+f:", longopts, NULL)) != -1) {
        if (ch == 'n' && ctl->mode == CTL_APPLY) {
            ctl->mode = CTL_DRY_RUN;
            continue;
        }
        if (ch != 'f') {
            fprintf(stderr, "hint: grapevine ctl %s --help lists its options\n",
                    ctl->mode == CTL_DIFF ? "diff" : "apply");
            return 2;
        }
        file = optarg;
    }
    if (file == NULL && optind < argc)
        file = argv[optind++];
    if (file == NULL || optind < argc) {
        fprintf(stderr, "grapevine ctl apply: takes one FILE (or -f FILE; - is stdin)\n");
        return 2;
    }
    /* the config file's own reader: the same text means the same objects */
    struct gv_yaml y;
    if (gv_yaml_load_file(&y, file, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct items items = {0};
    int code = 0;
    if (y.root == NULL) {
        fprintf(stderr, "%s: empty (no YAML document in it)\n", y.name);
        code = 1;
    } else if (!json_is_object(y.root)) {
        file_error(&y, "", "", "must be a mapping (a state document, or one object with kind:)");
        code = 1;
    } else if ((json_object_get(y.root, "kind") != NULL ? collect_one(&y, &items)
                                                        : collect_state(&y, &items)) != 0) {
        code = 1;
    } else if (items.n == 0) {
        fprintf(stderr, "grapevine ctl: %s has no objects to apply\n", y.name);
    }
    bool changes = false;
    for (size_t i = 0; (code == 0 || code == 3) && i < items.n; i++) {
        code = apply_item(ctl, &y, &items, &items.v[i]);
        changes |= code == 3;
    }
    if (ctl->mode == CTL_DIFF) /* as diff(1): 1 differences, 2 trouble */
        code = code == 1 ? 2 : changes ? 1 : 0;
    else if (code == 3)
        code = 0;
    free_items(&items);
    gv_yaml_free(&y);
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
            ctl_print_refusal("", kind, name, j);
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
