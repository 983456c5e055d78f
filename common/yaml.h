/* yaml.h - YAML text (JSON included: it is YAML) to a jansson value, with the
 * line of every key and list item, so that checks made later on the JSON can
 * still say "FILE:LINE: path: message". The config file and `grapevine ctl
 * apply` both read through here, so a file means the same to both.
 *
 * Scalars are typed by YAML 1.2's core schema: a quoted scalar (or one tagged
 * !!str) is a string; a plain one is null (empty, ~, null), a boolean
 * (true/false in three spellings), an integer, a number, or else a string.
 * "yes", "on" and "0x10" are strings. One document per text; keys must be
 * non-empty strings and appear once per mapping; anchors, aliases and merge
 * keys (<<) are resolved. The text must be UTF-8 without NUL bytes.
 *
 * Paths are written as the config's error messages write them:
 * "routes[2].match.paths[0]" (the document itself is "").
 *
 * No threads, no global state. Blocking file reads: start-up and CLI only.
 */
#ifndef GV_COMMON_YAML_H
#define GV_COMMON_YAML_H

#include "common/buf.h"

#include <jansson.h>
#include <stddef.h>

/* A file larger than this is refused (a config file is a few kilobytes). */
#define GV_YAML_MAX_BYTES (64u << 20)

struct gv_yaml_line {
    char *path;
    int line; /* 1-based */
};

struct gv_yaml {
    char *name;   /* FILE in messages */
    json_t *root; /* the document; NULL when the text holds none (empty, comments, "---") */
    struct gv_yaml_line *lines;
    size_t nlines, caplines;
};

/* Parses len bytes of text (no NUL needed at the end) into y; name is what
 * messages call the text. Returns 0, or GV_EINVAL / GV_ENOMEM with
 * "NAME:LINE: message" in err (y is then empty; gv_yaml_free is harmless). */
int gv_yaml_load(struct gv_yaml *y, const char *name, const char *text, size_t len, char *err,
                 size_t errlen);
/* Reads and parses a file; "-" is standard input, called "<stdin>". Returns
 * what gv_yaml_load does, or a negative errno (GV_ENOENT, ...) with
 * "PATH: cannot read: REASON" in err. */
int gv_yaml_load_file(struct gv_yaml *y, const char *path, char *err, size_t errlen);
void gv_yaml_free(struct gv_yaml *y);

/* The line of path, or of its nearest parent that has one ("a.b[2].c",
 * "a.b[2]", "a.b", "a", ""); 1 when nothing is known. */
int gv_yaml_line(const struct gv_yaml *y, const char *path);

/* "NAME:LINE: path: message" into out ("path: " is left out when path is
 * empty); cut short to fit n bytes. */
void gv_yaml_message(char *out, size_t n, const char *name, int line, const char *path,
                     const char *msg);
/* The same for a value of y: the line is where's (or its nearest parent's),
 * the path shown is path. Returns GV_EINVAL, for "return gv_yaml_fail(...)". */
__attribute__((format(printf, 6, 7))) int gv_yaml_fail(const struct gv_yaml *y, char *out, size_t n,
                                                       const char *where, const char *path,
                                                       const char *fmt, ...);

/* j as block-style YAML (what `ctl get -o yaml` prints), appended to out:
 * strings are plain when that reads back as the same string, else
 * double-quoted with JSON escapes; it loads back (gv_yaml_load) as j.
 * 0 or GV_ENOMEM. */
int gv_yaml_dump(const json_t *j, struct gv_buf *out);

#endif
