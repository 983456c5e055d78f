/* yaml.c - YAML to JSON with a line for every key and list item (libfyaml
 * parses; see yaml.h for the typing of scalars). */
#include "common/yaml.h"

#include "common/buf.h"
#include "common/err.h"
#include "common/file.h"
#include "common/schema.h"

#include <ctype.h>
#include <errno.h>
#include <libfyaml.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PATH_LEN 256

/* What one parse is writing to: the result and where errors go. */
struct loader {
    struct gv_yaml *y;
    char *err;
    size_t errlen;
};

/* ---- lines and messages ---------------------------------------------------- */

static int record_line(struct gv_yaml *y, const char *path, int line)
{
    if (y->nlines == y->caplines) {
        size_t cap = y->caplines ? y->caplines * 2 : 64;
        struct gv_yaml_line *v = realloc(y->lines, cap * sizeof(*v));
        if (v == NULL)
            return GV_ENOMEM;
        y->lines = v;
        y->caplines = cap;
    }
    if ((y->lines[y->nlines].path = strdup(path)) == NULL)
        return GV_ENOMEM;
    y->lines[y->nlines++].line = line;
    return 0;
}

int gv_yaml_line(const struct gv_yaml *y, const char *path)
{
    char p[PATH_LEN];
    snprintf(p, sizeof(p), "%s", path ? path : "");
    for (;;) {
        for (size_t i = 0; i < y->nlines; i++)
            if (strcmp(y->lines[i].path, p) == 0)
                return y->lines[i].line;
        char *dot = strrchr(p, '.'), *bracket = strrchr(p, '[');
        char *cut = dot > bracket ? dot : bracket;
        if (cut == NULL)
            return 1;
        *cut = '\0';
    }
}

/* Appends s to the string in dst (n bytes), cut short to fit. */
static void append(char *dst, size_t n, const char *s)
{
    size_t used = strnlen(dst, n);
    while (used + 1 < n && *s)
        dst[used++] = *s++;
    if (used < n)
        dst[used] = '\0';
}

void gv_yaml_message(char *out, size_t n, const char *name, int line, const char *path,
                     const char *msg)
{
    char num[16];
    if (n == 0)
        return;
    snprintf(num, sizeof(num), ":%d: ", line);
    out[0] = '\0';
    append(out, n, name);
    append(out, n, num);
    if (path != NULL && path[0] != '\0') {
        append(out, n, path);
        append(out, n, ": ");
    }
    append(out, n, msg);
}

int gv_yaml_fail(const struct gv_yaml *y, char *out, size_t n, const char *where, const char *path,
                 const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gv_yaml_message(out, n, y->name ? y->name : "", gv_yaml_line(y, where), path, msg);
    return GV_EINVAL;
}

/* A message at a known line during the parse; returns rc. */
__attribute__((format(printf, 5, 6))) static int report(struct loader *ld, int rc, int line,
                                                        const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gv_yaml_message(ld->err, ld->errlen, ld->y->name, line, path, msg);
    return rc;
}

static int nomem(struct loader *ld)
{
    if (ld->errlen > 0)
        snprintf(ld->err, ld->errlen, "%s: out of memory", ld->y->name);
    return GV_ENOMEM;
}

/* ---- YAML to JSON ------------------------------------------------------------ */

/* 1-based line where node n starts, or 0 when it has no position (an empty
 * value). libfyaml 0.7 keeps marks on tokens, so a collection takes the line
 * of its first scalar. */
static int node_line(struct fy_node *n)
{
    void *it = NULL;
    if (n == NULL)
        return 0;
    switch (fy_node_get_type(n)) {
    case FYNT_SCALAR: {
        struct fy_token *t = fy_node_get_scalar_token(n);
        const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
        return m ? m->line + 1 : 0;
    }
    case FYNT_SEQUENCE:
        return node_line(fy_node_sequence_iterate(n, &it));
    case FYNT_MAPPING: {
        struct fy_node_pair *p = fy_node_mapping_iterate(n, &it);
        return p ? node_line(fy_node_pair_key(p)) : 0;
    }
    }
    return 0;
}

static bool is_int_text(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    if (!isdigit((unsigned char)*s))
        return false;
    while (isdigit((unsigned char)*s))
        s++;
    return *s == '\0';
}

static bool is_float_text(const char *s)
{
    bool digits = false;
    if (*s == '-' || *s == '+')
        s++;
    while (isdigit((unsigned char)*s))
        s++, digits = true;
    if (*s == '.')
        for (s++; isdigit((unsigned char)*s); s++)
            digits = true;
    if (!digits)
        return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        if (!isdigit((unsigned char)*s))
            return false;
        while (isdigit((unsigned char)*s))
            s++;
    }
    return *s == '\0';
}

/* A scalar as JSON (see yaml.h). Returns NULL on invalid UTF-8 or no memory. */
static json_t *scalar_json(struct fy_node *n)
{
    size_t len = 0, tlen = 0;
    const char *s = fy_node_get_scalar(n, &len);
    const char *tag = fy_node_get_tag(n, &tlen);
    static const char str_tag[] = "tag:yaml.org,2002:str";
    if (s == NULL)
        s = "";
    if ((tag != NULL && tlen == sizeof(str_tag) - 1 && memcmp(tag, str_tag, tlen) == 0) ||
        fy_node_get_style(n) != FYNS_PLAIN)
        return json_stringn(s, len);
    if (len > 64) /* too long for any number or keyword */
        return json_stringn(s, len);
    char t[65];
    memcpy(t, s, len);
    t[len] = '\0';
    if (len == 0 || strcmp(t, "~") == 0 || strcmp(t, "null") == 0 || strcmp(t, "Null") == 0 ||
        strcmp(t, "NULL") == 0)
        return json_null();
    if (strcmp(t, "true") == 0 || strcmp(t, "True") == 0 || strcmp(t, "TRUE") == 0)
        return json_true();
    if (strcmp(t, "false") == 0 || strcmp(t, "False") == 0 || strcmp(t, "FALSE") == 0)
        return json_false();
    if (is_int_text(t)) {
        errno = 0;
        long long v = strtoll(t, NULL, 10);
        if (errno == 0)
            return json_integer(v);
        return json_stringn(s, len); /* out of range: left for the checker to refuse */
    }
    if (is_float_text(t) && isfinite(strtod(t, NULL)))
        return json_real(strtod(t, NULL));
    return json_stringn(s, len);
}

/* Converts n (at path, starting on line) to JSON in *out, recording the line
 * of every key and list item on the way. */
static int to_json(struct loader *ld, struct fy_node *n, const char *path, int line, json_t **out)
{
    char p[PATH_LEN];
    json_t *j = NULL;
    void *it = NULL;
    int rc;

    if (record_line(ld->y, path, line) != 0)
        return nomem(ld);
    if (n == NULL) {
        *out = json_null();
        return 0;
    }
    switch (fy_node_get_type(n)) {
    case FYNT_SCALAR:
        if (fy_node_is_alias(n))
            return report(ld, GV_EINVAL, line, path, "unresolved alias");
        if ((j = scalar_json(n)) == NULL)
            return report(ld, GV_EINVAL, line, path, "invalid text (not UTF-8?)");
        break;
    case FYNT_SEQUENCE: {
        struct fy_node *item;
        size_t i = 0;
        if ((j = json_array()) == NULL)
            return nomem(ld);
        while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
            json_t *v = NULL;
            int l = node_line(item);
            gv_path_index(p, sizeof(p), path, i++);
            if ((rc = to_json(ld, item, p, l ? l : line, &v)) != 0)
                goto fail;
            if (json_array_append_new(j, v) != 0) {
                rc = nomem(ld);
                goto fail;
            }
        }
        break;
    }
    case FYNT_MAPPING: {
        struct fy_node_pair *pair;
        if ((j = json_object()) == NULL)
            return nomem(ld);
        while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
            struct fy_node *k = fy_node_pair_key(pair);
            int kl = node_line(k);
            size_t klen = 0;
            const char *ks = k && fy_node_is_scalar(k) ? fy_node_get_scalar(k, &klen) : NULL;
            char key[PATH_LEN];
            json_t *v = NULL;
            kl = kl ? kl : line;
            if (ks == NULL || klen == 0 || klen >= sizeof(key) || memchr(ks, '\0', klen)) {
                rc = report(ld, GV_EINVAL, kl, path, "keys must be non-empty plain strings");
                goto fail;
            }
            memcpy(key, ks, klen);
            key[klen] = '\0';
            gv_path_key(p, sizeof(p), path, key);
            if (json_object_get(j, key) != NULL) {
                rc = report(ld, GV_EINVAL, kl, path, "duplicate key \"%s\"", key);
                goto fail;
            }
            if ((rc = to_json(ld, fy_node_pair_value(pair), p, kl, &v)) != 0)
                goto fail;
            if (json_object_set_new(j, key, v) != 0) {
                rc = report(ld, GV_EINVAL, kl, path, "bad key \"%s\" (not UTF-8?)", key);
                goto fail;
            }
        }
        break;
    }
    }
    *out = j;
    return 0;
fail:
    json_decref(j);
    return rc;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. Overlong
 * forms, surrogates and code points past U+10FFFF are invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp, min;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0)
        len = 2, cp = s[0] & 0x1f, min = 0x80;
    else if ((s[0] & 0xf0) == 0xe0)
        len = 3, cp = s[0] & 0x0f, min = 0x800;
    else if ((s[0] & 0xf8) == 0xf0)
        len = 4, cp = s[0] & 0x07, min = 0x10000;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* The text must be UTF-8 without NUL bytes: checked before libfyaml sees it,
 * which is also what keeps it from looping on malformed bytes (0.7.12 does, in
 * a directive line). */
static int check_text(struct loader *ld, const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    int line = 1;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_len(s + i, len - i);
        if (s[i] == '\0')
            return report(ld, GV_EINVAL, line, "", "NUL byte in the file");
        if (n == 0)
            return report(ld, GV_EINVAL, line, "", "invalid UTF-8");
        line += s[i] == '\n';
        i += n;
    }
    return 0;
}

/* Parses text as one YAML document into ld->y->root (NULL when empty). */
static int parse(struct loader *ld, const char *text, size_t len)
{
    struct fy_diag_cfg dcfg;
    struct fy_diag *diag = NULL;
    struct fy_parser *fyp = NULL;
    struct fy_document *doc = NULL, *extra = NULL;
    struct fy_diag_error *de;
    void *it = NULL;
    int rc;

    if ((rc = check_text(ld, text, len)) != 0)
        return rc;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL; /* collected below, never printed */
    if ((diag = fy_diag_create(&dcfg)) == NULL)
        return nomem(ld);
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg pcfg = {.flags = FYPCF_QUIET | FYPCF_RESOLVE_DOCUMENT, .diag = diag};
    if ((fyp = fy_parser_create(&pcfg)) == NULL ||
        fy_parser_set_string(fyp, len ? text : "", len) != 0) {
        rc = nomem(ld);
        goto fail;
    }
    doc = fy_parse_load_document(fyp);
    if (doc != NULL) {
        extra = fy_parse_load_document(fyp);
        if (extra != NULL) {
            int l = node_line(fy_document_root(extra));
            rc = report(ld, GV_EINVAL, l ? l : 1, "", "only one YAML document is allowed");
            goto fail;
        }
    }
    while ((de = fy_diag_errors_iterate(diag, &it)) != NULL) {
        if (de->type >= FYET_ERROR) {
            rc = report(ld, GV_EINVAL, de->line > 0 ? de->line : 1, "", "%s",
                        de->msg ? de->msg : "YAML syntax error");
            goto fail;
        }
    }
    if (fy_parser_get_stream_error(fyp)) {
        rc = report(ld, GV_EINVAL, 1, "", "YAML syntax error");
        goto fail;
    }
    rc = 0;
    if (doc != NULL && fy_document_root(doc) != NULL) {
        rc = to_json(ld, fy_document_root(doc), "", 1, &ld->y->root);
        if (rc == 0 && json_is_null(ld->y->root)) { /* "---" with nothing after it */
            json_decref(ld->y->root);
            ld->y->root = NULL;
        }
    }
fail:
    if (extra != NULL)
        fy_parse_document_destroy(fyp, extra);
    if (doc != NULL)
        fy_parse_document_destroy(fyp, doc);
    if (fyp != NULL)
        fy_parser_destroy(fyp);
    fy_diag_destroy(diag);
    return rc;
}

/* ---- loading ------------------------------------------------------------------- */

void gv_yaml_free(struct gv_yaml *y)
{
    if (y == NULL)
        return;
    for (size_t i = 0; i < y->nlines; i++)
        free(y->lines[i].path);
    free(y->lines);
    json_decref(y->root);
    free(y->name);
    memset(y, 0, sizeof(*y));
}

int gv_yaml_load(struct gv_yaml *y, const char *name, const char *text, size_t len, char *err,
                 size_t errlen)
{
    struct loader ld = {.y = y, .err = err, .errlen = errlen};
    int rc;
    memset(y, 0, sizeof(*y));
    if (errlen > 0)
        err[0] = '\0';
    if ((y->name = strdup(name ? name : "<string>")) == NULL) {
        if (errlen > 0)
            snprintf(err, errlen, "%s: out of memory", name ? name : "<string>");
        return GV_ENOMEM;
    }
    if ((rc = parse(&ld, text, len)) != 0)
        gv_yaml_free(y);
    return rc;
}

int gv_yaml_load_file(struct gv_yaml *y, const char *path, char *err, size_t errlen)
{
    bool in = strcmp(path, "-") == 0;
    const char *name = in ? "<stdin>" : path;
    struct gv_buf b;
    int rc;
    memset(y, 0, sizeof(*y));
    gv_buf_init(&b);
    rc = in ? gv_file_read_fd(STDIN_FILENO, GV_YAML_MAX_BYTES, &b)
            : gv_file_read(path, GV_YAML_MAX_BYTES, &b);
    if (rc == GV_ERANGE) {
        snprintf(err, errlen, "%s: cannot read: file too large", name);
        rc = GV_EINVAL;
    } else if (rc == GV_ENOMEM) {
        snprintf(err, errlen, "%s: out of memory", name);
    } else if (rc != 0) {
        snprintf(err, errlen, "%s: cannot read: %s", name, gv_strerror(rc));
    } else {
        rc = gv_yaml_load(y, name, b.data ? b.data : "", b.len, err, errlen);
    }
    gv_buf_free(&b);
    return rc;
}

/* ---- dumping --------------------------------------------------------------- */

/* Whether s reads back as this string when written plain. */
static bool plain_ok(const char *s)
{
    static const char *const special[] = {"true", "false", "null", "yes",   "no",   "on",
                                          "off",  "y",     "n",    "~",     "True", "False",
                                          "Null", "NULL",  "TRUE", "FALSE", "Yes",  "No"};
    if (*s == '\0' || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789_./-") != strlen(s))
        return false;
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
        if (strcmp(s, special[i]) == 0)
            return false;
    char *end;
    (void)strtod(s, &end); /* a number, or what YAML 1.1 may read as one */
    return *end != '\0' && !isdigit((unsigned char)s[0]) && s[0] != '.' && s[0] != '-';
}

static int dump_scalar(const json_t *v, struct gv_buf *out)
{
    if (json_is_string(v) && plain_ok(json_string_value(v)))
        return gv_buf_puts(out, json_string_value(v));
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    int rv = text ? gv_buf_puts(out, text) : GV_ENOMEM;
    free(text);
    return rv;
}

static bool is_block(const json_t *v)
{
    return (json_is_object(v) && json_object_size(v) > 0) ||
           (json_is_array(v) && json_array_size(v) > 0);
}

static int dump_node(const json_t *v, int indent, bool inline_first, struct gv_buf *out);

/* ": value" after a key or "- " : on the same line when a scalar or empty,
 * else on the lines below at indent. */
static int dump_value(const json_t *v, int indent, struct gv_buf *out)
{
    if (!is_block(v)) {
        int rv = gv_buf_puts(out, " ");
        rv = rv ? rv : dump_scalar(v, out);
        return rv ? rv : gv_buf_puts(out, "\n");
    }
    int rv = gv_buf_puts(out, "\n");
    return rv ? rv : dump_node(v, indent, false, out);
}

static int dump_node(const json_t *v, int indent, bool inline_first, struct gv_buf *out)
{
    int rv = 0;
    bool first = true;
    if (json_is_object(v)) {
        const char *k;
        const json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            json_t *key = json_string(k);
            if (!(first && inline_first))
                rv = rv ? rv : gv_buf_printf(out, "%*s", indent, "");
            rv = rv ? rv : (key ? dump_scalar(key, out) : GV_ENOMEM);
            rv = rv ? rv : gv_buf_puts(out, ":");
            rv = rv ? rv : dump_value(x, indent + 2, out);
            json_decref(key);
            first = false;
        }
        return rv;
    }
    size_t i;
    const json_t *x;
    json_array_foreach(v, i, x)
    {
        if (!(first && inline_first))
            rv = rv ? rv : gv_buf_printf(out, "%*s", indent, "");
        rv = rv ? rv : gv_buf_puts(out, "-");
        if (is_block(x) && json_is_object(x)) {
            rv = rv ? rv : gv_buf_puts(out, " ");
            rv = rv ? rv : dump_node(x, indent + 2, true, out);
        } else {
            rv = rv ? rv : dump_value(x, indent + 2, out);
        }
        first = false;
    }
    return rv;
}

int gv_yaml_dump(const json_t *j, struct gv_buf *out)
{
    if (!is_block(j)) {
        int rv = dump_scalar(j, out);
        return rv ? rv : gv_buf_puts(out, "\n");
    }
    return dump_node(j, 0, false, out);
}
