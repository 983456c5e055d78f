/* config.c - the YAML config file (read by common/yaml): the node: section
 * through the settings table (config/settings.c), the rest checked by the
 * cluster-state validator; every error comes back as "FILE:LINE: message". */
#include "node/config.h"

#include "common/err.h"
#include "common/kinds.h"
#include "common/schema.h"
#include "common/yaml.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Elements taken out of the document to look for more errors (validate):
 * per kind, the original indices of those dropped, so paths and lines
 * still name them as the file does. */
#define DROPS_MAX 64
struct drops {
    size_t idx[GV_KIND_COUNT][DROPS_MAX];
    size_t n[GV_KIND_COUNT];
};

struct loader {
    struct gv_yaml *y;
    struct node_config_error *err;
    const struct drops *drops; /* NULL: the document as read */
};

/* A path into the document as checked ("routes[2].x") as it names the
 * file's element ("routes[3].x" when one before it was dropped), into out. */
static const char *file_path(const struct loader *ld, const char *path, char *out, size_t n)
{
    const char *br = strchr(path, '[');
    snprintf(out, n, "%s", path);
    if (ld->drops == NULL || br == NULL)
        return out;
    for (int k = 0; k < GV_KIND_COUNT; k++) {
        size_t pl = strlen(gv_kinds[k].plural);
        if ((size_t)(br - path) != pl || strncmp(path, gv_kinds[k].plural, pl) != 0)
            continue;
        char *end;
        size_t i = strtoul(br + 1, &end, 10);
        for (size_t d = 0; d < ld->drops->n[k]; d++) /* sorted: in the order dropped */
            if (ld->drops->idx[k][d] <= i)
                i++;
        snprintf(out, n, "%s[%zu%s", gv_kinds[k].plural, i, end);
    }
    return out;
}

/* "FILE:LINE: path: message" (no "path: " at the top level); returns rc. */
__attribute__((format(printf, 5, 6))) static int report(struct loader *ld, int rc, int line,
                                                        const char *path, const char *fmt, ...)
{
    char msg[sizeof(ld->err->text)], fpath[GV_PATH_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gv_yaml_message(ld->err->text, sizeof(ld->err->text), ld->y->name, line,
                    file_path(ld, path, fpath, sizeof(fpath)), msg);
    return rc;
}

static int line_of(const struct loader *ld, const char *path)
{
    char fpath[GV_PATH_LEN];
    return gv_yaml_line(ld->y, file_path(ld, path, fpath, sizeof(fpath)));
}

/* report() at the line of path. */
__attribute__((format(printf, 3, 4))) static int fail(struct loader *ld, const char *path,
                                                      const char *fmt, ...)
{
    char msg[sizeof(ld->err->text)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return report(ld, GV_EINVAL, line_of(ld, path), path, "%s", msg);
}

static int nomem(struct loader *ld)
{
    snprintf(ld->err->text, sizeof(ld->err->text), "%s: out of memory", ld->y->name);
    return GV_ENOMEM;
}

/* The node: section, through the settings table (node/config/settings.c). */
static int parse_node(struct loader *ld, const json_t *node, struct node_settings *s)
{
    struct gv_schema_error serr;
    if (node == NULL || json_is_null(node))
        return 0;
    int rc = gv_schema_parse(&node_settings_schema, node, s, "node", &serr, NULL);
    if (rc == GV_ENOMEM)
        return nomem(ld);
    if (rc != 0)
        return report(ld, rc, line_of(ld, serr.where[0] ? serr.where : serr.path), serr.path, "%s",
                      serr.msg);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Loading
 */

/* The top level holds node: and the kinds of cluster state. */
static int check_top_keys(struct loader *ld, const json_t *root)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)root, k, v)
    {
        if (strcmp(k, "node") != 0 && gv_kind_by_name(k) == NULL)
            return report(ld, GV_EINVAL, line_of(ld, k), "", "unknown key \"%s\"", k);
    }
    return 0;
}

/* Checks and converts what y holds into *out (untouched on error); where
 * (GV_PATH_LEN bytes, may be NULL) gets the path of what was refused. */
static int load(struct gv_yaml *y, const struct drops *drops, struct node_config *out,
                struct node_config_error *err, char *where)
{
    struct loader ld = {.y = y, .err = err, .drops = drops};
    struct node_config cfg;
    struct node_state_error serr;
    json_t *root = y->root, *state = NULL;
    int rc;

    memset(&cfg, 0, sizeof(cfg));
    node_settings_defaults(&cfg.node);
    err->text[0] = '\0';
    if (root != NULL && !json_is_object(root)) {
        char kinds[128];
        rc = fail(&ld, "", "the top level must be a mapping of node, %s",
                  gv_kinds_text(kinds, sizeof(kinds), " and "));
        goto fail;
    }
    if (root != NULL && (rc = check_top_keys(&ld, root)) != 0)
        goto fail;
    if (root != NULL && (rc = parse_node(&ld, json_object_get(root, "node"), &cfg.node)) != 0) {
        if (where != NULL)
            snprintf(where, GV_PATH_LEN, "node");
        goto fail;
    }
    if ((state = json_object()) == NULL) {
        rc = nomem(&ld);
        goto fail;
    }
    for (size_t i = 0; root != NULL && i < GV_KIND_COUNT; i++) {
        json_t *v = json_object_get(root, gv_kinds[i].plural);
        if (v != NULL && json_object_set(state, gv_kinds[i].plural, v) != 0) {
            rc = nomem(&ld);
            goto fail;
        }
    }
    if ((rc = node_state_from_json(state, &cfg.state, &serr)) != 0 ||
        (rc = node_state_check_files(&cfg.state, &serr)) != 0) {
        if (rc == GV_ENOMEM) {
            nomem(&ld);
            goto fail;
        }
        int line = line_of(&ld, serr.where[0] ? serr.where : serr.path);
        report(&ld, rc, line, serr.path, "%s", serr.msg);
        if (where != NULL)
            snprintf(where, GV_PATH_LEN, "%s", serr.path);
        goto fail;
    }
    *out = cfg;
    rc = 0;
    goto done;
fail:
    node_settings_free(&cfg.node);
    node_state_free(&cfg.state);
done:
    json_decref(state);
    return rc;
}

int node_config_load_string(const char *name, const char *yaml, size_t len, struct node_config *out,
                            struct node_config_error *err)
{
    struct gv_yaml y;
    int rc = gv_yaml_load(&y, name, yaml, len, err->text, sizeof(err->text));
    if (rc == 0)
        rc = load(&y, NULL, out, err, NULL);
    gv_yaml_free(&y);
    return rc;
}

int node_config_load_file(const char *path, struct node_config *out, struct node_config_error *err)
{
    struct node_config cfg;
    struct gv_yaml y;
    int rc = gv_yaml_load_file(&y, path, err->text, sizeof(err->text));
    if (rc == 0)
        rc = load(&y, NULL, &cfg, err, NULL);
    gv_yaml_free(&y);
    if (rc != 0)
        return rc;
    if ((cfg.path = strdup(path)) == NULL) {
        node_config_free(&cfg);
        snprintf(err->text, sizeof(err->text), "%s: out of memory", path);
        return GV_ENOMEM;
    }
    *out = cfg;
    return 0;
}

void node_config_free(struct node_config *c)
{
    if (c == NULL)
        return;
    free(c->path);
    node_settings_free(&c->node);
    node_state_free(&c->state);
    memset(c, 0, sizeof(*c));
}

/* ---- every error (validate) ---------------------------------------------- */

/* Takes what where names out of the document so the next pass goes on past
 * it: the element KIND[i], else the top-level key (node: and unknown keys
 * are dropped whole). False when nothing could be taken out. */
static bool drop(struct gv_yaml *y, struct drops *d, const char *where)
{
    json_t *root = y->root;
    for (int k = 0; k < GV_KIND_COUNT; k++) {
        const char *pl = gv_kinds[k].plural;
        size_t n = strlen(pl);
        if (strncmp(where, pl, n) != 0 || (where[n] != '[' && where[n] != '\0' && where[n] != '.'))
            continue;
        json_t *arr = json_object_get(root, pl);
        size_t i = where[n] == '[' ? strtoul(where + n + 1, NULL, 10) : SIZE_MAX;
        if (i == SIZE_MAX || !json_is_array(arr) || i >= json_array_size(arr) ||
            d->n[k] == DROPS_MAX)
            return json_object_del(root, pl) == 0;
        size_t orig = i; /* as the file numbers it */
        for (size_t j = 0; j < d->n[k]; j++)
            if (d->idx[k][j] <= orig)
                orig++;
        d->idx[k][d->n[k]++] = orig;
        return json_array_remove(arr, i) == 0;
    }
    if (strncmp(where, "node", 4) == 0 && json_object_get(root, "node") != NULL)
        return json_object_del(root, "node") == 0;
    bool dropped = false; /* the unknown top-level keys */
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(root, tmp, key, v)
    {
        if (strcmp(key, "node") != 0 && gv_kind_by_name(key) == NULL)
            dropped |= json_object_del(root, key) == 0;
    }
    return dropped;
}

int node_config_check_file(const char *path, void (*fn)(void *arg, const char *msg), void *arg,
                           int max)
{
    struct gv_yaml y;
    struct node_config_error err;
    struct drops *d = calloc(1, sizeof(*d));
    int found = 0;
    if (d == NULL || gv_yaml_load_file(&y, path, err.text, sizeof(err.text)) != 0) {
        fn(arg, d ? err.text : "out of memory");
        free(d);
        return 1;
    }
    for (;;) {
        struct node_config cfg;
        char where[GV_PATH_LEN] = "";
        int rc = load(&y, d, &cfg, &err, where);
        if (rc == 0) {
            node_config_free(&cfg);
            break;
        }
        fn(arg, err.text);
        if (++found >= max || rc == GV_ENOMEM || y.root == NULL || !drop(&y, d, where))
            break;
    }
    gv_yaml_free(&y);
    free(d);
    return found;
}
