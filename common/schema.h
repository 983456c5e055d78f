/* schema.h - declarative config schemas: one table of fields per config
 * object drives everything done with that object's JSON (after Redis's
 * standardConfig table):
 *
 *   - parsing JSON into a C struct, field by field, with the path of every
 *     refused value ("routes[2].match.paths[0]: bad path \"x\"");
 *   - the canonical JSON written back (defaults filled in, keys sorted by
 *     the dumper), which is what the admin API shows and what config digests
 *     are computed over;
 *   - freeing what parsing allocated;
 *   - the reference docs (markdown) and a JSON Schema (for OpenAPI).
 *
 * A field names its C member by offset (GV_FIELD_* macros below). Strings are
 * always malloc'd and owned by the struct. Every string value is refused when
 * it holds a control character (CR, LF, NUL, ...) unless the field says
 * GV_F_MULTILINE (a PEM key): config values end up on the wire and in logs.
 *
 * No threads, no global state: a schema is a const table.
 */
#ifndef GV_COMMON_SCHEMA_H
#define GV_COMMON_SCHEMA_H

#include "common/buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why a value was refused. path is the value the message is about; where is
 * the most precise place to point at (a key inside path, or path itself). */
#define GV_PATH_LEN 192
struct gv_schema_error {
    char path[GV_PATH_LEN];
    char where[GV_PATH_LEN];
    char msg[256];
};

/* Fill err and return GV_EINVAL: about the value at path; about the key of
 * the object at path (its value is at path.key). */
__attribute__((format(printf, 3, 4))) int gv_schema_fail(struct gv_schema_error *err,
                                                         const char *path, const char *fmt, ...);
__attribute__((format(printf, 4, 5))) int gv_schema_fail_key(struct gv_schema_error *err,
                                                             const char *path, const char *key,
                                                             const char *fmt, ...);
/* "out of memory" at the root; returns GV_ENOMEM. */
int gv_schema_nomem(struct gv_schema_error *err);

/* Path building: "base.key" ("key" when base is empty) and "base[i]". The
 * result is cut short to fit n bytes (a short path only shortens a message). */
void gv_path_key(char *dst, size_t n, const char *base, const char *key);
void gv_path_index(char *dst, size_t n, const char *base, size_t i);

enum gv_ftype {
    GV_T_STR,      /* char *; NULL when absent and no default */
    GV_T_BOOL,     /* bool */
    GV_T_INT,      /* a signed or unsigned integer of .size bytes, in [min, max] */
    GV_T_DURATION, /* uint64_t milliseconds, in [min, max] ms; "250ms", "2s", "1m", "1h" */
    GV_T_ENUM,     /* int: index into .names; a name ending in ':' takes a suffix
                    * ("header:X-Key"), kept as a char * at .aux_off */
    GV_T_STRS,     /* char ** at .off, size_t count at .aux_off; def.s: a one-element default */
    GV_T_PAIRS,    /* an object of string values: struct gv_pair * at .off, size_t at .aux_off */
    GV_T_OBJ,      /* a nested struct embedded at .off, described by .sub; with
                    * GV_F_PRESENCE a bool at .aux_off says whether it was given */
    GV_T_OBJS,     /* a list of .sub structs: void * at .off, size_t count at .aux_off */
    GV_T_CUSTOM,   /* parsed, dumped and freed by .custom */
};

enum {
    GV_F_REQUIRED = 1 << 0,   /* absent (or null) is an error */
    GV_F_MULTILINE = 1 << 1,  /* a string may hold newlines and tabs (PEM) */
    GV_F_PRESENCE = 1 << 2,   /* GV_T_OBJ: optional; dumped only when given */
    GV_F_NONEMPTY = 1 << 3,   /* a string, list or object must not be empty */
    GV_F_UNIQUE = 1 << 4,     /* GV_T_STRS: no value twice */
    GV_F_LOWER = 1 << 5,      /* strings are lower-cased when parsed */
    GV_F_UPPER = 1 << 6,      /* strings are upper-cased when parsed */
    GV_F_SECRET = 1 << 7,     /* docs say so; the value is still dumped */
    GV_F_OMIT_EMPTY = 1 << 8, /* lists and pair maps: not dumped when empty */
    GV_F_INLINE = 1 << 9,     /* GV_T_OBJ: the sub-schema's fields are members of this
                               * struct (a JSON object grouping some of them) */
    GV_F_OMIT_FIRST = 1 << 10 /* GV_T_ENUM: not dumped while it has its first (default)
                               * value, so a key added later leaves the canonical JSON
                               * (and digest) of configs without it as older nodes see it */
};

struct gv_pair {
    char *name;
    char *value;
};

struct gv_field;
struct gv_schema;

/* A field type of its own. parse gets the JSON value (never NULL or null)
 * and the address of the member; it returns 0 or fills err. dump returns a
 * new reference or NULL to leave the key out. ctx is what the caller passed
 * to gv_schema_parse (e.g. the state being built). */
struct gv_custom {
    const char *type_doc; /* "true, false or {verify, ca_file, server_name}" */
    int (*parse)(const struct gv_field *f, const json_t *v, void *member, const char *path,
                 struct gv_schema_error *err, void *ctx);
    json_t *(*dump)(const struct gv_field *f, const void *member);
    void (*free)(const struct gv_field *f, void *member);
    /* The JSON Schema of the value (new reference), or NULL for "anything". */
    json_t *(*json_schema)(const struct gv_field *f);
    /* Sets the member to its default when the key is absent (NULL: zeroes
     * stay). Returns 0 or GV_ENOMEM. */
    int (*init)(const struct gv_field *f, void *member);
    /* The minimal form of the value (see gv_schema_dump_min), new reference;
     * NULL: the dump is compared with the default's as a whole. */
    json_t *(*dump_min)(const struct gv_field *f, const void *member);
};

/* A check of one string (a STR value, each STRS element, each PAIRS name):
 * true when s is acceptable; otherwise what it should be in `want` (for
 * "bad WHAT \"s\" (WANT)"-style messages, e.g. "header name"). */
struct gv_str_rule {
    const char *what; /* "header name"; NULL: the message is `want` alone */
    const char *want; /* "an HTTP token" (may be NULL) */
    bool (*ok)(const char *s);
};

struct gv_field {
    const char *name;
    enum gv_ftype type;
    uint16_t flags;
    uint8_t size;   /* GV_T_INT: sizeof the member (1, 2, 4 or 8) */
    bool is_signed; /* GV_T_INT */
    size_t off;     /* the member */
    size_t aux_off; /* count, presence flag or enum suffix (see the types) */
    int64_t min, max;
    struct {
        const char *s; /* GV_T_STR, GV_T_ENUM (a name) */
        int64_t i;     /* GV_T_INT, GV_T_DURATION (ms) */
        bool b;        /* GV_T_BOOL */
    } def;
    const char *const *names;       /* GV_T_ENUM, NULL-terminated */
    const struct gv_schema *sub;    /* GV_T_OBJ, GV_T_OBJS */
    const struct gv_str_rule *rule; /* GV_T_STR, GV_T_STRS, GV_T_PAIRS names */
    const struct gv_custom *custom;
    const void *data; /* for a custom type's callbacks */
    const char *doc;
};

struct gv_schema {
    const char *name; /* for docs: "service", "health_check" */
    size_t size;      /* sizeof the struct */
    const struct gv_field *fields;
    size_t nfields;
    /* Checks across fields, after every field parsed (may be NULL). */
    int (*check)(void *obj, const char *path, struct gv_schema_error *err, void *ctx);
    /* Frees what check or a caller added beyond the fields (may be NULL). */
    void (*free_extra)(void *obj);
    const char *doc;
};

/* Sets every field to its default (strings strdup'd, replacing any string
 * held; lists left as they are). obj must be zeroed or hold strings from an
 * earlier call. 0 or GV_ENOMEM. */
int gv_schema_defaults(const struct gv_schema *s, void *obj);
/* Parses the JSON object in into obj (zeroed by the caller): defaults first,
 * then each field; unknown keys are refused. Returns 0, or GV_EINVAL /
 * GV_ENOMEM with err filled; obj may then hold part of the values: free it
 * with gv_schema_free either way. */
int gv_schema_parse(const struct gv_schema *s, const json_t *in, void *obj, const char *path,
                    struct gv_schema_error *err, void *ctx);
/* The canonical JSON of obj (every field; optional objects only when given).
 * New reference, or NULL when out of memory. */
json_t *gv_schema_dump(const struct gv_schema *s, const void *obj);
/* The minimal JSON of obj: what gv_schema_dump gives without the keys that
 * hold their default (recursively; an optional object that was given stays,
 * even empty). It parses back to the same struct, and it is what is stored
 * and digested: a later version that adds a defaulted key leaves the stored
 * bytes of an object that does not use it unchanged, so nodes of both
 * versions read and digest the same thing. NULL when out of memory. */
json_t *gv_schema_dump_min(const struct gv_schema *s, const void *obj);
/* Frees what obj owns (not obj itself) and zeroes it. */
void gv_schema_free(const struct gv_schema *s, void *obj);

/* Reference docs: one markdown table row per field, nested objects
 * flattened with dotted names under prefix. */
int gv_schema_doc(const struct gv_schema *s, const char *prefix, struct gv_buf *out);
/* A JSON Schema (2020-12, as OpenAPI 3.1 uses) of the object. New reference. */
json_t *gv_schema_json_schema(const struct gv_schema *s);

/* Durations as the config writes them: "2s", "250ms", "1m", "1h". */
int gv_json_duration(const json_t *v, uint64_t *ms);
void gv_format_duration(uint64_t ms, char *buf, size_t len);

/* String rules used across schemas. */
extern const struct gv_str_rule gv_rule_token;    /* an HTTP token: header names, methods */
extern const struct gv_str_rule gv_rule_name;     /* an object name: [A-Za-z0-9_.-], <= 128 */
extern const struct gv_str_rule gv_rule_hostport; /* HOST:PORT or [v6]:PORT */
extern const struct gv_str_rule gv_rule_path;     /* an absolute path: "/..." without spaces */

/* Field declarations. T is the struct, m the member. GV_FIELD_OPT_OBJ sets
 * .flags itself: pass no .flags to it. */
#define GV_IS_SIGNED(x)                                                                            \
    _Generic((x), signed char : 1, short : 1, int : 1, long : 1, long long : 1, default : 0)
#define GV_OFF(T, m) offsetof(T, m)
#define GV_FIELD_STR(n, T, m, ...)                                                                 \
    {                                                                                              \
        .name = (n), .type = GV_T_STR, .off = GV_OFF(T, m), __VA_ARGS__                            \
    }
#define GV_FIELD_BOOL(n, T, m, ...)                                                                \
    {                                                                                              \
        .name = (n), .type = GV_T_BOOL, .off = GV_OFF(T, m), __VA_ARGS__                           \
    }
#define GV_FIELD_INT(n, T, m, lo, hi, ...)                                                         \
    {                                                                                              \
        .name = (n), .type = GV_T_INT, .off = GV_OFF(T, m), .size = sizeof(((T *)0)->m),           \
        .is_signed = GV_IS_SIGNED(((T *)0)->m), .min = (lo), .max = (hi), __VA_ARGS__              \
    }
#define GV_FIELD_DURATION(n, T, m, lo, hi, ...)                                                    \
    {                                                                                              \
        .name = (n), .type = GV_T_DURATION, .off = GV_OFF(T, m), .min = (lo), .max = (hi),         \
        __VA_ARGS__                                                                                \
    }
#define GV_FIELD_ENUM(n, T, m, nm, ...)                                                            \
    {                                                                                              \
        .name = (n), .type = GV_T_ENUM, .off = GV_OFF(T, m), .names = (nm), __VA_ARGS__            \
    }
#define GV_FIELD_KEYED_ENUM(n, T, m, suffix, nm, ...)                                              \
    {                                                                                              \
        .name = (n), .type = GV_T_ENUM, .off = GV_OFF(T, m), .aux_off = GV_OFF(T, suffix),         \
        .names = (nm), __VA_ARGS__                                                                 \
    }
#define GV_FIELD_STRS(n, T, m, count, ...)                                                         \
    {                                                                                              \
        .name = (n), .type = GV_T_STRS, .off = GV_OFF(T, m), .aux_off = GV_OFF(T, count),          \
        __VA_ARGS__                                                                                \
    }
#define GV_FIELD_PAIRS(n, T, m, count, ...)                                                        \
    {                                                                                              \
        .name = (n), .type = GV_T_PAIRS, .off = GV_OFF(T, m), .aux_off = GV_OFF(T, count),         \
        __VA_ARGS__                                                                                \
    }
#define GV_FIELD_OBJ(n, T, m, schema, ...)                                                         \
    {                                                                                              \
        .name = (n), .type = GV_T_OBJ, .off = GV_OFF(T, m), .sub = (schema), __VA_ARGS__           \
    }
#define GV_FIELD_OPT_OBJ(n, T, m, given, schema, ...)                                              \
    {                                                                                              \
        .name = (n), .type = GV_T_OBJ, .off = GV_OFF(T, m), .aux_off = GV_OFF(T, given),           \
        .flags = GV_F_PRESENCE, .sub = (schema), __VA_ARGS__                                       \
    }
/* A JSON object whose keys are members of this same struct ("match": {...}
 * over a route's fields); schema's fields are offsets into T too. */
#define GV_FIELD_INLINE_OBJ(n, schema, ...)                                                        \
    {                                                                                              \
        .name = (n), .type = GV_T_OBJ, .off = 0, .flags = GV_F_INLINE, .sub = (schema),            \
        __VA_ARGS__                                                                                \
    }
#define GV_FIELD_OBJS(n, T, m, count, schema, ...)                                                 \
    {                                                                                              \
        .name = (n), .type = GV_T_OBJS, .off = GV_OFF(T, m), .aux_off = GV_OFF(T, count),          \
        .sub = (schema), __VA_ARGS__                                                               \
    }
#define GV_FIELD_CUSTOM(n, T, m, cust, ...)                                                        \
    {                                                                                              \
        .name = (n), .type = GV_T_CUSTOM, .off = GV_OFF(T, m), .custom = (cust), __VA_ARGS__       \
    }

#define GV_SCHEMA(nm, T, fieldv, ...)                                                              \
    {                                                                                              \
        .name = (nm), .size = sizeof(T), .fields = (fieldv),                                       \
        .nfields = sizeof(fieldv) / sizeof((fieldv)[0]), __VA_ARGS__                               \
    }

#endif
