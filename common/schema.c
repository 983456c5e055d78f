/* schema.c - declarative config schemas: parse, dump, free, docs; see schema.h. */
#include "common/schema.h"
#include "common/err.h"
#include "common/util.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upper bound of a duration: a year, far from any overflow of ms math. */
#define DURATION_MAX_MS (365ULL * 24 * 3600 * 1000)

/* ---- errors and paths ---------------------------------------------------- */

static void path_append(char *dst, size_t n, const char *s);

static void copy_path(char *dst, size_t n, const char *src)
{
    dst[0] = '\0';
    path_append(dst, n, src ? src : "");
}

int gv_schema_fail(struct gv_schema_error *err, const char *path, const char *fmt, ...)
{
    va_list ap;
    copy_path(err->path, sizeof(err->path), path);
    copy_path(err->where, sizeof(err->where), path);
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return GV_EINVAL;
}

int gv_schema_fail_key(struct gv_schema_error *err, const char *path, const char *key,
                       const char *fmt, ...)
{
    va_list ap;
    copy_path(err->path, sizeof(err->path), path);
    gv_path_key(err->where, sizeof(err->where), path, key);
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return GV_EINVAL;
}

int gv_schema_nomem(struct gv_schema_error *err)
{
    gv_schema_fail(err, "", "out of memory");
    return GV_ENOMEM;
}

/* Appends s to the string in dst (n bytes), cutting it short to fit. */
static void path_append(char *dst, size_t n, const char *s)
{
    size_t used = strnlen(dst, n);
    while (used + 1 < n && *s)
        dst[used++] = *s++;
    if (used < n)
        dst[used] = '\0';
}

void gv_path_key(char *dst, size_t n, const char *base, const char *key)
{
    dst[0] = '\0';
    if (base != NULL && base[0] != '\0') {
        path_append(dst, n, base);
        path_append(dst, n, ".");
    }
    path_append(dst, n, key);
}

void gv_path_index(char *dst, size_t n, const char *base, size_t i)
{
    char idx[32];
    snprintf(idx, sizeof(idx), "[%zu]", i);
    dst[0] = '\0';
    path_append(dst, n, base ? base : "");
    path_append(dst, n, idx);
}

/* ---- durations ------------------------------------------------------------ */

int gv_json_duration(const json_t *v, uint64_t *ms)
{
    if (json_is_integer(v)) {
        json_int_t s = json_integer_value(v);
        if (s < 0 || (uint64_t)s > DURATION_MAX_MS / 1000)
            return GV_EINVAL;
        *ms = (uint64_t)s * 1000;
        return 0;
    }
    if (json_is_string(v))
        return gv_parse_duration(json_string_value(v), ms);
    return GV_EINVAL;
}

void gv_format_duration(uint64_t ms, char *buf, size_t len)
{
    static const struct {
        uint64_t ms;
        const char *unit;
    } units[] = {{3600000, "h"}, {60000, "m"}, {1000, "s"}};
    if (ms == 0) {
        snprintf(buf, len, "0s");
        return;
    }
    for (size_t i = 0; i < GV_ARRAY_LEN(units); i++) {
        if (ms % units[i].ms == 0) {
            snprintf(buf, len, "%" PRIu64 "%s", ms / units[i].ms, units[i].unit);
            return;
        }
    }
    snprintf(buf, len, "%" PRIu64 "ms", ms);
}

/* ---- string rules ----------------------------------------------------------- */

static bool is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
            return false;
    return true;
}

static bool is_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && strchr("_.-", *s) == NULL)
            return false;
    return true;
}

static bool is_hostport(const char *s)
{
    char host[256];
    uint16_t port;
    return gv_split_hostport(s, host, sizeof(host), &port) == 0;
}

static bool is_path(const char *s)
{
    return s[0] == '/' && strpbrk(s, " \t") == NULL;
}

const struct gv_str_rule gv_rule_token = {"header name", NULL, is_token};
const struct gv_str_rule gv_rule_name = {"name", "use letters, digits, \"_\", \".\", \"-\"",
                                         is_name};
const struct gv_str_rule gv_rule_hostport = {"address", "want HOST:PORT", is_hostport};
const struct gv_str_rule gv_rule_path = {"path", "must start with \"/\"", is_path};

/* ---- members ------------------------------------------------------------------ */

#define MEMBER(obj, f) ((void *)((char *)(obj) + (f)->off))
#define AUX(obj, f)    ((void *)((char *)(obj) + (f)->aux_off))

static int64_t int_get(const void *m, const struct gv_field *f)
{
    switch (f->size) {
    case 1:
        return f->is_signed ? (int64_t) * (const int8_t *)m : (int64_t) * (const uint8_t *)m;
    case 2:
        return f->is_signed ? (int64_t) * (const int16_t *)m : (int64_t) * (const uint16_t *)m;
    case 4:
        return f->is_signed ? (int64_t) * (const int32_t *)m : (int64_t) * (const uint32_t *)m;
    default:
        return *(const int64_t *)m;
    }
}

static void int_set(void *m, const struct gv_field *f, int64_t v)
{
    switch (f->size) {
    case 1:
        *(uint8_t *)m = (uint8_t)v;
        break;
    case 2:
        *(uint16_t *)m = (uint16_t)v;
        break;
    case 4:
        *(uint32_t *)m = (uint32_t)v;
        break;
    default:
        *(int64_t *)m = v;
    }
}

/* The name of enum index i of f ("header:" keeps its colon). */
static size_t enum_count(const struct gv_field *f)
{
    size_t n = 0;
    while (f->names[n] != NULL)
        n++;
    return n;
}

static bool keyed(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && name[n - 1] == ':';
}

/* ---- defaults ---------------------------------------------------------------- */

static int enum_lookup(const struct gv_field *f, const char *s, const char **suffix)
{
    *suffix = NULL;
    for (size_t i = 0; f->names[i] != NULL; i++) {
        const char *n = f->names[i];
        size_t len = strlen(n);
        if (keyed(n) && strncmp(s, n, len) == 0 && s[len] != '\0') {
            *suffix = s + len;
            return (int)i;
        }
        if (!keyed(n) && strcmp(s, n) == 0)
            return (int)i;
    }
    return -1;
}

static void strs_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* A list of strings defaults to one element, def.s, when given. */
static int strs_default(const struct gv_field *f, void *obj)
{
    char ***list = MEMBER(obj, f);
    size_t *count = AUX(obj, f);
    strs_free(*list, *count);
    *list = NULL;
    *count = 0;
    if (f->def.s == NULL)
        return 0;
    if ((*list = calloc(1, sizeof(char *))) == NULL || ((*list)[0] = strdup(f->def.s)) == NULL)
        return GV_ENOMEM;
    *count = 1;
    return 0;
}

static int field_default(const struct gv_field *f, void *obj)
{
    void *m = MEMBER(obj, f);
    const char *suffix;
    switch (f->type) {
    case GV_T_STR: /* defaults may be applied twice (a nested object): no leak */
        free(*(char **)m);
        *(char **)m = NULL;
        if (f->def.s != NULL && (*(char **)m = strdup(f->def.s)) == NULL)
            return GV_ENOMEM;
        return 0;
    case GV_T_BOOL:
        *(bool *)m = f->def.b;
        return 0;
    case GV_T_INT:
        int_set(m, f, f->def.i);
        return 0;
    case GV_T_DURATION:
        *(uint64_t *)m = (uint64_t)f->def.i;
        return 0;
    case GV_T_ENUM:
        *(int *)m = f->def.s ? enum_lookup(f, f->def.s, &suffix) : 0;
        if (*(int *)m < 0)
            *(int *)m = 0;
        return 0;
    case GV_T_OBJ:
        return gv_schema_defaults(f->sub, m);
    case GV_T_CUSTOM:
        return f->custom->init != NULL ? f->custom->init(f, m) : 0;
    case GV_T_STRS:
        return strs_default(f, obj);
    default:
        return 0;
    }
}

int gv_schema_defaults(const struct gv_schema *s, void *obj)
{
    for (size_t i = 0; i < s->nfields; i++) {
        int rv = field_default(&s->fields[i], obj);
        if (rv != 0)
            return rv;
    }
    return 0;
}

/* ---- parsing ------------------------------------------------------------------- */

/* A string value as the field allows it: no NUL inside, no control
 * characters unless multiline; case folded when asked. */
static int take_string(const struct gv_field *f, const json_t *v, const char *path,
                       struct gv_schema_error *err, char **out)
{
    if (!json_is_string(v))
        return gv_schema_fail(err, path, "must be a string");
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (strlen(s) != n)
        return gv_schema_fail(err, path, "must not contain NUL bytes");
    if ((f->flags & GV_F_NONEMPTY) && n == 0)
        return gv_schema_fail(err, path, "must not be empty");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ctl = c < 0x20 || c == 0x7f;
        if (ctl && !((f->flags & GV_F_MULTILINE) && (c == '\n' || c == '\r' || c == '\t')))
            return gv_schema_fail(err, path, "must not contain control characters (CR, LF, ...)");
    }
    if (f->max > 0 && n > (size_t)f->max)
        return gv_schema_fail(err, path, "longer than %" PRId64 " bytes", f->max);
    if (f->rule != NULL && !f->rule->ok(s)) {
        if (f->rule->what == NULL)
            return gv_schema_fail(err, path, "%s", f->rule->want);
        if (f->rule->want)
            return gv_schema_fail(err, path, "bad %s \"%s\" (%s)", f->rule->what, s, f->rule->want);
        return gv_schema_fail(err, path, "bad %s \"%s\"", f->rule->what, s);
    }
    if ((*out = strdup(s)) == NULL)
        return gv_schema_nomem(err);
    for (char *c = *out; *c && (f->flags & (GV_F_LOWER | GV_F_UPPER)); c++)
        *c = (char)((f->flags & GV_F_LOWER) ? tolower((unsigned char)*c)
                                            : toupper((unsigned char)*c));
    return 0;
}

static int parse_int(const struct gv_field *f, const json_t *v, void *m, const char *path,
                     struct gv_schema_error *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < f->min || json_integer_value(v) > f->max) {
        if (f->max == INT64_MAX)
            return gv_schema_fail(err, path, "must be an integer of at least %" PRId64, f->min);
        return gv_schema_fail(err, path, "must be an integer from %" PRId64 " to %" PRId64, f->min,
                              f->max);
    }
    int_set(m, f, json_integer_value(v));
    return 0;
}

static int parse_duration(const struct gv_field *f, const json_t *v, void *m, const char *path,
                          struct gv_schema_error *err)
{
    uint64_t ms;
    char lim[32];
    uint64_t max = f->max > 0 ? (uint64_t)f->max : DURATION_MAX_MS;
    if (gv_json_duration(v, &ms) != 0) {
        /* Whole seconds that gv_json_duration refuses are too many. */
        if (json_is_integer(v) && json_integer_value(v) > 0) {
            gv_format_duration(max, lim, sizeof(lim));
            return gv_schema_fail(err, path, "must be at most %s", lim);
        }
        if (json_is_string(v))
            return gv_schema_fail(err, path, "bad duration \"%s\" (use e.g. 250ms, 2s, 1m)",
                                  json_string_value(v));
        return gv_schema_fail(err, path, "must be a duration like \"250ms\", \"2s\" or \"1m\"");
    }
    if (ms < (uint64_t)f->min) {
        gv_format_duration((uint64_t)f->min, lim, sizeof(lim));
        return gv_schema_fail(err, path, "must be at least %s", lim);
    }
    if (ms > max) {
        gv_format_duration(max, lim, sizeof(lim));
        return gv_schema_fail(err, path, "must be at most %s", lim);
    }
    *(uint64_t *)m = ms;
    return 0;
}

/* "a, b or c" of an enum's names ("header:NAME" for a keyed one). */
static void enum_choices(const struct gv_field *f, char *buf, size_t n)
{
    size_t k = enum_count(f), used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < k && used < n; i++) {
        const char *sep = i == 0 ? "" : (i + 1 == k ? " or " : ", ");
        int w = snprintf(buf + used, n - used, "%s%s%s", sep, f->names[i],
                         keyed(f->names[i]) ? "NAME" : "");
        used += w > 0 ? (size_t)w : 0;
    }
}

static int parse_enum(const struct gv_field *f, const json_t *v, void *obj, const char *path,
                      struct gv_schema_error *err)
{
    char choices[256];
    const char *suffix;
    if (!json_is_string(v))
        return gv_schema_fail(err, path, "must be a string");
    const char *s = json_string_value(v);
    int i = enum_lookup(f, s, &suffix);
    if (i < 0 || (suffix != NULL && !gv_rule_token.ok(suffix))) {
        /* "unknown" for a word not in the list; "bad" when a NAME form exists */
        bool forms = false;
        for (size_t k = 0; f->names[k] != NULL; k++)
            forms |= keyed(f->names[k]);
        enum_choices(f, choices, sizeof(choices));
        return gv_schema_fail(err, path, "%s %s \"%s\" (%s)", forms ? "bad" : "unknown", f->name, s,
                              choices);
    }
    *(int *)MEMBER(obj, f) = i;
    if (f->aux_off != 0) {
        char **aux = AUX(obj, f);
        free(*aux);
        *aux = NULL;
        if (suffix != NULL && (*aux = strdup(suffix)) == NULL)
            return gv_schema_nomem(err);
    }
    return 0;
}

static int parse_strs(const struct gv_field *f, const json_t *v, void *obj, const char *path,
                      struct gv_schema_error *err)
{
    char p[GV_PATH_LEN];
    char ***list = MEMBER(obj, f);
    size_t *count = AUX(obj, f);
    if (!json_is_array(v))
        return gv_schema_fail(err, path, "must be a list");
    if ((f->flags & GV_F_NONEMPTY) && json_array_size(v) == 0)
        return gv_schema_fail(err, path, "must not be empty");
    size_t n = json_array_size(v);
    strs_free(*list, *count); /* a default list */
    *list = NULL;
    *count = 0;
    if (n > 0 && (*list = calloc(n, sizeof(char *))) == NULL)
        return gv_schema_nomem(err);
    for (size_t i = 0; i < n; i++) {
        const json_t *x = json_array_get(v, i);
        gv_path_index(p, sizeof(p), path, i);
        if (!json_is_string(x))
            return gv_schema_fail(err, p, "must be a string");
        if (json_string_length(x) == 0)
            return gv_schema_fail(err, p, "must be a non-empty string");
        int rv = take_string(f, x, p, err, &(*list)[i]);
        if (rv != 0)
            return rv;
        *count = i + 1;
        for (size_t j = 0; (f->flags & GV_F_UNIQUE) && j < i; j++)
            if (strcmp((*list)[j], (*list)[i]) == 0)
                return gv_schema_fail(err, p, "\"%s\" is listed twice", (*list)[i]);
    }
    return 0;
}

/* {name: value}; integer values (X-Version: 2 in YAML) become strings. */
static int parse_pairs(const struct gv_field *f, const json_t *v, void *obj, const char *path,
                       struct gv_schema_error *err)
{
    char p[GV_PATH_LEN], num[32];
    struct gv_pair **pairs = MEMBER(obj, f);
    size_t *count = AUX(obj, f);
    const char *key;
    json_t *val;
    if (!json_is_object(v))
        return gv_schema_fail(err, path, "must be an object of name: value");
    size_t n = json_object_size(v);
    if (n > 0 && (*pairs = calloc(n, sizeof(**pairs))) == NULL)
        return gv_schema_nomem(err);
    struct gv_field name_rule = {
        .name = f->name, .type = GV_T_STR, .rule = f->rule, .flags = GV_F_NONEMPTY};
    struct gv_field value_rule = {.name = f->name, .type = GV_T_STR, .max = f->max};
    json_object_foreach((json_t *)v, key, val)
    {
        struct gv_pair *pr = &(*pairs)[*count];
        json_t *sv = NULL;
        gv_path_key(p, sizeof(p), path, key);
        if (json_is_integer(val)) {
            snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(val));
            sv = json_string(num);
        }
        json_t *key_json = json_string(key);
        int rv =
            key_json ? take_string(&name_rule, key_json, p, err, &pr->name) : gv_schema_nomem(err);
        json_decref(key_json);
        if (rv == 0)
            rv = take_string(&value_rule, sv ? sv : val, p, err, &pr->value);
        json_decref(sv);
        if (pr->name != NULL || pr->value != NULL)
            (*count)++;
        if (rv != 0)
            return rv;
    }
    return 0;
}

/* A required list of objects says what it holds: "must be a non-empty
 * list of {address, weight}". */
static int fail_nonempty_objs(const struct gv_field *f, const char *path,
                              struct gv_schema_error *err)
{
    char keys[160];
    size_t used = 0;
    keys[0] = '\0';
    for (size_t i = 0; i < f->sub->nfields && used < sizeof(keys); i++) {
        int w = snprintf(keys + used, sizeof(keys) - used, "%s%s", i ? ", " : "",
                         f->sub->fields[i].name);
        used += w > 0 ? (size_t)w : 0;
    }
    return gv_schema_fail(err, path, "must be a non-empty list of {%s}", keys);
}

static int parse_objs(const struct gv_field *f, const json_t *v, void *obj, const char *path,
                      struct gv_schema_error *err, void *ctx)
{
    char p[GV_PATH_LEN];
    void **arr = MEMBER(obj, f);
    size_t *count = AUX(obj, f);
    size_t n = json_is_array(v) ? json_array_size(v) : 0;
    if ((f->flags & GV_F_NONEMPTY) && n == 0)
        return fail_nonempty_objs(f, path, err);
    if (!json_is_array(v))
        return gv_schema_fail(err, path, "must be a list");
    if (n > 0 && (*arr = calloc(n, f->sub->size)) == NULL)
        return gv_schema_nomem(err);
    for (size_t i = 0; i < n; i++) {
        gv_path_index(p, sizeof(p), path, i);
        *count = i + 1;
        int rv = gv_schema_parse(f->sub, json_array_get(v, i), (char *)*arr + i * f->sub->size, p,
                                 err, ctx);
        if (rv != 0)
            return rv;
    }
    return 0;
}

static int parse_field(const struct gv_field *f, const json_t *v, void *obj, const char *path,
                       struct gv_schema_error *err, void *ctx)
{
    void *m = MEMBER(obj, f);
    switch (f->type) {
    case GV_T_STR:
        free(*(char **)m);
        *(char **)m = NULL;
        return take_string(f, v, path, err, (char **)m);
    case GV_T_BOOL:
        if (!json_is_boolean(v))
            return gv_schema_fail(err, path, "must be true or false");
        *(bool *)m = json_is_true(v);
        return 0;
    case GV_T_INT:
        return parse_int(f, v, m, path, err);
    case GV_T_DURATION:
        return parse_duration(f, v, m, path, err);
    case GV_T_ENUM:
        return parse_enum(f, v, obj, path, err);
    case GV_T_STRS:
        return parse_strs(f, v, obj, path, err);
    case GV_T_PAIRS:
        return parse_pairs(f, v, obj, path, err);
    case GV_T_OBJ:
        if (f->flags & GV_F_INLINE) /* the same struct: defaults replace themselves */
            return gv_schema_parse(f->sub, v, obj, path, err, ctx);
        /* The parent's defaults already filled the struct; parsing it sets
         * them again, so drop them first (or their strings leak). */
        gv_schema_free(f->sub, m);
        if (f->flags & GV_F_PRESENCE)
            *(bool *)AUX(obj, f) = true;
        return gv_schema_parse(f->sub, v, m, path, err, ctx);
    case GV_T_OBJS:
        return parse_objs(f, v, obj, path, err, ctx);
    case GV_T_CUSTOM:
        return f->custom->parse(f, v, m, path, err, ctx);
    }
    return gv_schema_fail(err, path, "unknown field type");
}

static const struct gv_field *field_named(const struct gv_schema *s, const char *key)
{
    for (size_t i = 0; i < s->nfields; i++)
        if (strcmp(s->fields[i].name, key) == 0)
            return &s->fields[i];
    return NULL;
}

int gv_schema_parse(const struct gv_schema *s, const json_t *in, void *obj, const char *path,
                    struct gv_schema_error *err, void *ctx)
{
    char p[GV_PATH_LEN];
    const char *key;
    json_t *v;
    int rv;
    if (!json_is_object(in))
        return gv_schema_fail(err, path, "must be an object");
    if ((rv = gv_schema_defaults(s, obj)) != 0)
        return gv_schema_nomem(err);
    json_object_foreach((json_t *)in, key, v)
    {
        if (field_named(s, key) == NULL)
            return gv_schema_fail_key(err, path, key, "unknown key \"%s\"", key);
    }
    for (size_t i = 0; i < s->nfields; i++) {
        const struct gv_field *f = &s->fields[i];
        v = json_object_get(in, f->name);
        if (v == NULL || json_is_null(v)) {
            if (f->flags & GV_F_REQUIRED)
                return gv_schema_fail(err, path, "missing \"%s\"", f->name);
            continue;
        }
        gv_path_key(p, sizeof(p), path, f->name);
        if ((rv = parse_field(f, v, obj, p, err, ctx)) != 0)
            return rv;
    }
    return s->check != NULL ? s->check(obj, path, err, ctx) : 0;
}

/* ---- dumping --------------------------------------------------------------------- */

static json_t *dump_strs(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++) {
        if (json_array_append_new(a, json_string(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *dump_pairs(const struct gv_pair *v, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < n; i++) {
        if (json_object_set_new(o, v[i].name, json_string(v[i].value)) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static json_t *dump_objs(const struct gv_schema *sub, const void *arr, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++) {
        json_t *x = gv_schema_dump(sub, (const char *)arr + i * sub->size);
        if (x == NULL || json_array_append_new(a, x) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *dump_enum(const struct gv_field *f, const void *obj)
{
    int i = *(const int *)MEMBER(obj, f);
    if (i < 0 || (size_t)i >= enum_count(f))
        return json_null();
    const char *name = f->names[i];
    if (!keyed(name))
        return json_string(name);
    const char *suffix = f->aux_off ? *(char *const *)AUX(obj, f) : NULL;
    char buf[300];
    snprintf(buf, sizeof(buf), "%s%s", name, suffix ? suffix : "");
    return json_string(buf);
}

/* The JSON of one field, or NULL with *omit set when it is left out. */
static json_t *dump_field(const struct gv_field *f, const void *obj, bool *omit)
{
    const void *m = MEMBER(obj, f);
    char buf[32];
    size_t n = (f->type == GV_T_STRS || f->type == GV_T_PAIRS || f->type == GV_T_OBJS)
                   ? *(const size_t *)AUX(obj, f)
                   : 0;
    *omit = (f->flags & GV_F_OMIT_EMPTY) && n == 0 &&
            (f->type == GV_T_STRS || f->type == GV_T_PAIRS || f->type == GV_T_OBJS);
    switch (f->type) {
    case GV_T_STR:
        *omit = *(char *const *)m == NULL;
        return *omit ? NULL : json_string(*(char *const *)m);
    case GV_T_BOOL:
        return json_boolean(*(const bool *)m);
    case GV_T_INT:
        return json_integer(int_get(m, f));
    case GV_T_DURATION:
        gv_format_duration(*(const uint64_t *)m, buf, sizeof(buf));
        return json_string(buf);
    case GV_T_ENUM:
        *omit = (f->flags & GV_F_OMIT_FIRST) && *(const int *)m == 0;
        return *omit ? NULL : dump_enum(f, obj);
    case GV_T_STRS:
        return dump_strs(*(char **const *)m, n);
    case GV_T_PAIRS:
        return dump_pairs(*(struct gv_pair *const *)m, n);
    case GV_T_OBJ:
        *omit = (f->flags & GV_F_PRESENCE) && !*(const bool *)AUX(obj, f);
        return *omit ? NULL : gv_schema_dump(f->sub, m);
    case GV_T_OBJS:
        return dump_objs(f->sub, *(void *const *)m, n);
    case GV_T_CUSTOM: {
        json_t *x = f->custom->dump ? f->custom->dump(f, m) : NULL;
        *omit = x == NULL;
        return x;
    }
    }
    return NULL;
}

json_t *gv_schema_dump(const struct gv_schema *s, const void *obj)
{
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < s->nfields; i++) {
        bool omit = false;
        json_t *v = dump_field(&s->fields[i], obj, &omit);
        if (omit)
            continue;
        if (v == NULL || json_object_set_new(o, s->fields[i].name, v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* ---- minimal form ------------------------------------------------------------------ */

static bool empty_json(const json_t *v)
{
    return (json_is_object(v) && json_object_size(v) == 0) ||
           (json_is_array(v) && json_array_size(v) == 0);
}

/* The minimal JSON of one field (NULL with *omit when it holds its default,
 * def being a struct of defaults). */
static json_t *field_min(const struct gv_field *f, const void *obj, const void *def, bool *omit)
{
    const void *m = MEMBER(obj, f);
    json_t *v = NULL, *d;
    *omit = false;
    if (f->type == GV_T_OBJ) {
        bool given = (f->flags & GV_F_PRESENCE) && *(const bool *)AUX(obj, f);
        if ((f->flags & GV_F_PRESENCE) && !given) {
            *omit = true;
            return NULL;
        }
        v = gv_schema_dump_min(f->sub, (f->flags & GV_F_INLINE) ? obj : m);
        *omit = v != NULL && !given && json_object_size(v) == 0;
    } else if (f->type == GV_T_OBJS) {
        size_t n = *(const size_t *)AUX(obj, f);
        const char *arr = *(char *const *)m;
        v = json_array();
        for (size_t i = 0; v != NULL && i < n; i++)
            if (json_array_append_new(v, gv_schema_dump_min(f->sub, arr + i * f->sub->size)) != 0) {
                json_decref(v);
                v = NULL;
            }
        *omit = v != NULL && n == 0;
    } else if (f->type == GV_T_CUSTOM && f->custom->dump_min != NULL) {
        v = f->custom->dump_min(f, m);
        *omit = v == NULL || empty_json(v);
    } else {
        bool o1, o2;
        v = dump_field(f, obj, &o1);
        d = dump_field(f, def, &o2);
        *omit = o1 || (d != NULL && v != NULL && json_equal(v, d));
        json_decref(d);
    }
    if (*omit) {
        json_decref(v);
        return NULL;
    }
    return v;
}

json_t *gv_schema_dump_min(const struct gv_schema *s, const void *obj)
{
    void *def = calloc(1, s->size);
    json_t *o = def ? json_object() : NULL;
    if (o != NULL && gv_schema_defaults(s, def) != 0) {
        json_decref(o);
        o = NULL;
    }
    for (size_t i = 0; o != NULL && i < s->nfields; i++) {
        bool omit;
        json_t *v = field_min(&s->fields[i], obj, def, &omit);
        if (omit)
            continue;
        if (v == NULL || json_object_set_new(o, s->fields[i].name, v) != 0) {
            json_decref(o);
            o = NULL;
        }
    }
    if (def != NULL) {
        gv_schema_free(s, def);
        free(def);
    }
    return o;
}

/* ---- freeing ------------------------------------------------------------------------ */

static void free_fields(const struct gv_schema *s, void *obj);

static void free_field(const struct gv_field *f, void *obj)
{
    void *m = MEMBER(obj, f);
    size_t n = (f->type == GV_T_STRS || f->type == GV_T_PAIRS || f->type == GV_T_OBJS)
                   ? *(size_t *)AUX(obj, f)
                   : 0;
    switch (f->type) {
    case GV_T_STR:
        free(*(char **)m);
        break;
    case GV_T_ENUM:
        if (f->aux_off != 0)
            free(*(char **)AUX(obj, f));
        break;
    case GV_T_STRS:
        for (size_t i = 0; i < n; i++)
            free((*(char ***)m)[i]);
        free(*(char ***)m);
        break;
    case GV_T_PAIRS:
        for (size_t i = 0; i < n; i++) {
            free((*(struct gv_pair **)m)[i].name);
            free((*(struct gv_pair **)m)[i].value);
        }
        free(*(struct gv_pair **)m);
        break;
    case GV_T_OBJ:
        if (f->flags & GV_F_INLINE)
            free_fields(f->sub, obj); /* the parent zeroes the struct */
        else
            gv_schema_free(f->sub, m);
        break;
    case GV_T_OBJS:
        for (size_t i = 0; i < n; i++)
            gv_schema_free(f->sub, (char *)*(void **)m + i * f->sub->size);
        free(*(void **)m);
        break;
    case GV_T_CUSTOM:
        if (f->custom->free)
            f->custom->free(f, m);
        break;
    default:
        break;
    }
}

static void free_fields(const struct gv_schema *s, void *obj)
{
    if (s->free_extra != NULL)
        s->free_extra(obj);
    for (size_t i = 0; i < s->nfields; i++)
        free_field(&s->fields[i], obj);
}

void gv_schema_free(const struct gv_schema *s, void *obj)
{
    if (obj == NULL)
        return;
    free_fields(s, obj);
    memset(obj, 0, s->size);
}

/* ---- docs ------------------------------------------------------------------------------ */

static const char *type_doc(const struct gv_field *f, char *buf, size_t n)
{
    switch (f->type) {
    case GV_T_STR:
        return f->rule ? f->rule->what : "string";
    case GV_T_BOOL:
        return "bool";
    case GV_T_INT:
        snprintf(buf, n, "integer %" PRId64 "..%" PRId64, f->min, f->max);
        return buf;
    case GV_T_DURATION:
        return "duration";
    case GV_T_ENUM:
        enum_choices(f, buf, n);
        return buf;
    case GV_T_STRS:
        snprintf(buf, n, "list of %s", f->rule ? f->rule->what : "string");
        return buf;
    case GV_T_PAIRS:
        return "{name: value}";
    case GV_T_OBJ:
        return "object";
    case GV_T_OBJS:
        return "list of objects";
    case GV_T_CUSTOM:
        return f->custom->type_doc;
    }
    return "";
}

static void default_doc(const struct gv_field *f, char *buf, size_t n)
{
    buf[0] = '\0';
    if (f->flags & GV_F_REQUIRED)
        snprintf(buf, n, "required");
    else if (f->type == GV_T_STR && f->def.s)
        snprintf(buf, n, "`%s`", f->def.s);
    else if (f->type == GV_T_ENUM)
        snprintf(buf, n, "`%s`", f->def.s ? f->def.s : f->names[0]);
    else if (f->type == GV_T_BOOL)
        snprintf(buf, n, "`%s`", f->def.b ? "true" : "false");
    else if (f->type == GV_T_INT)
        snprintf(buf, n, "`%" PRId64 "`", f->def.i);
    else if (f->type == GV_T_DURATION) {
        char d[32];
        gv_format_duration((uint64_t)f->def.i, d, sizeof(d));
        snprintf(buf, n, "`%s`", d);
    } else if (f->type == GV_T_CUSTOM && f->def.s) /* the default as the config writes it */
        snprintf(buf, n, "`%s`", f->def.s);
}

int gv_schema_doc(const struct gv_schema *s, const char *prefix, struct gv_buf *out)
{
    char name[GV_PATH_LEN], tbuf[256], dbuf[128];
    int rv = 0;
    for (size_t i = 0; i < s->nfields && rv == 0; i++) {
        const struct gv_field *f = &s->fields[i];
        gv_path_key(name, sizeof(name), prefix, f->name);
        default_doc(f, dbuf, sizeof(dbuf));
        rv =
            gv_buf_printf(out, "| `%s` | %s | %s | %s%s |\n", name, type_doc(f, tbuf, sizeof(tbuf)),
                          dbuf, f->doc ? f->doc : "", (f->flags & GV_F_SECRET) ? " (secret)" : "");
        if (rv == 0 && (f->type == GV_T_OBJ || f->type == GV_T_OBJS)) {
            char sub[GV_PATH_LEN + 2];
            snprintf(sub, sizeof(sub), "%s%s", name, f->type == GV_T_OBJS ? "[]" : "");
            rv = gv_schema_doc(f->sub, sub, out);
        }
    }
    return rv;
}

/* ---- JSON Schema -------------------------------------------------------------------------- */

/* {"enum": [...]}; with a keyed name ("header:") a pattern instead. */
static json_t *enum_json_schema(const struct gv_field *f)
{
    struct gv_buf pat;
    json_t *names = json_array();
    bool any_keyed = false;
    gv_buf_init(&pat);
    gv_buf_puts(&pat, "^(");
    for (size_t i = 0; f->names[i] != NULL; i++) {
        any_keyed |= keyed(f->names[i]);
        json_array_append_new(names, json_string(f->names[i]));
        gv_buf_printf(&pat, "%s%s%s", i ? "|" : "", f->names[i], keyed(f->names[i]) ? ".+" : "");
    }
    gv_buf_puts(&pat, ")$");
    json_t *o = json_pack("{ss}", "type", "string");
    if (o != NULL && any_keyed)
        json_object_set_new(o, "pattern", json_string(pat.data ? pat.data : ""));
    else if (o != NULL)
        json_object_set(o, "enum", names);
    json_decref(names);
    gv_buf_free(&pat);
    return o;
}

static json_t *field_json_schema(const struct gv_field *f)
{
    switch (f->type) {
    case GV_T_STR:
        return json_pack("{ss}", "type", "string");
    case GV_T_BOOL:
        return json_pack("{ss}", "type", "boolean");
    case GV_T_INT:
        return json_pack("{sssIsI}", "type", "integer", "minimum", (json_int_t)f->min, "maximum",
                         (json_int_t)f->max);
    case GV_T_DURATION:
        return json_pack("{s[{ss}{ss}]}", "oneOf", "type", "string", "type", "integer");
    case GV_T_ENUM:
        return enum_json_schema(f);
    case GV_T_STRS:
        return json_pack("{sss{ss}}", "type", "array", "items", "type", "string");
    case GV_T_PAIRS:
        return json_pack("{sss{ss}}", "type", "object", "additionalProperties", "type", "string");
    case GV_T_OBJ:
        return gv_schema_json_schema(f->sub);
    case GV_T_OBJS:
        return json_pack("{ssso}", "type", "array", "items", gv_schema_json_schema(f->sub));
    case GV_T_CUSTOM:
        return f->custom->json_schema ? f->custom->json_schema(f) : json_object();
    }
    return json_object();
}

json_t *gv_schema_json_schema(const struct gv_schema *s)
{
    json_t *props = json_object(), *required = json_array();
    for (size_t i = 0; i < s->nfields; i++) {
        const struct gv_field *f = &s->fields[i];
        json_t *fs = field_json_schema(f);
        if (fs != NULL && f->doc != NULL)
            json_object_set_new(fs, "description", json_string(f->doc));
        json_object_set_new(props, f->name, fs ? fs : json_object());
        if (f->flags & GV_F_REQUIRED)
            json_array_append_new(required, json_string(f->name));
    }
    json_t *o =
        json_pack("{sssosb}", "type", "object", "properties", props, "additionalProperties", 0);
    if (o != NULL && json_array_size(required) > 0)
        json_object_set(o, "required", required);
    json_decref(required);
    if (o != NULL && s->doc != NULL)
        json_object_set_new(o, "description", json_string(s->doc));
    return o;
}
