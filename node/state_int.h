/* state_int.h - internal to the cluster-state validator (state.c,
 * state_check.c): error reporting with paths and typed,
 * checked access to JSON values.
 *
 * Every sv_get_* reads obj[key] (obj being the value at path); a key holding
 * null counts as absent and leaves *out untouched. On a wrong type or range
 * they fill err with the path of the value and return GV_EINVAL.
 */
#ifndef GV_NODE_STATE_INT_H
#define GV_NODE_STATE_INT_H

#include "node/state.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Long enough for the deepest path the validator builds; a longer one (a huge
 * key in a plugin config) is cut short, which only shortens the message. */
#define PATH_LEN     192
#define NAME_MAX_LEN 128
/* Upper bound of every duration: a year, far from any overflow of ms math. */
#define DURATION_MAX_MS (365ULL * 24 * 3600 * 1000)

/* Fill err and return GV_EINVAL: for the value at path; for the object at
 * path pointing at its key; for the value obj[key] of the object at path. */
__attribute__((format(printf, 3, 4))) int sv_fail(struct node_state_error *err, const char *path,
                                                  const char *fmt, ...);
__attribute__((format(printf, 4, 5))) int sv_fail_at_key(struct node_state_error *err,
                                                         const char *path, const char *key,
                                                         const char *fmt, ...);
__attribute__((format(printf, 4, 5))) int sv_fail_field(struct node_state_error *err,
                                                        const char *path, const char *key,
                                                        const char *fmt, ...);
/* "out of memory" at the root; returns GV_ENOMEM. */
int sv_nomem(struct node_state_error *err);

/* obj[key], NULL when absent or null. */
const json_t *sv_field(const json_t *obj, const char *key);
/* Rejects any key of obj that is not in keys (NULL-terminated). */
int sv_check_keys(const json_t *obj, const char *path, const char *const *keys,
                  struct node_state_error *err);
int sv_want_object(const json_t *v, const char *path, struct node_state_error *err);
/* A non-empty string; a missing required one is an error. */
int sv_get_str(const json_t *obj, const char *path, const char *key, bool required,
               const char **out, struct node_state_error *err);
int sv_get_ll(const json_t *obj, const char *path, const char *key, long long min, long long max,
              long long *out, struct node_state_error *err);
int sv_get_int(const json_t *obj, const char *path, const char *key, int min, int max, int *out,
               struct node_state_error *err);
int sv_get_bool(const json_t *obj, const char *path, const char *key, bool *out,
                struct node_state_error *err);
/* A duration (node_json_duration) of at least min_ms, at most DURATION_MAX_MS. */
int sv_get_duration(const json_t *obj, const char *path, const char *key, uint64_t min_ms,
                    uint64_t *out, struct node_state_error *err);
/* An array; *out NULL when absent. */
int sv_get_list(const json_t *obj, const char *path, const char *key, const json_t **out,
                struct node_state_error *err);
/* Element i of list (at path) as a non-empty string. */
int sv_list_str(const json_t *list, const char *path, size_t i, const char **out,
                struct node_state_error *err);
/* *dst = strdup(src): 0 or GV_ENOMEM. */
int sv_set_str(char **dst, const char *src);
/* Names end up in URLs and metric labels: a safe alphabet and length. */
int sv_check_name(const char *s, const char *path, struct node_state_error *err);
bool sv_is_token(const char *s); /* an HTTP token (header name) */
bool sv_is_host(const char *s);
bool sv_is_cidr(const char *s);
/* "ip", "header:NAME", ...: the kind's index in kinds (NULL-terminated; a
 * kind ending in ':' takes a NAME) or -1; *name points at NAME or is NULL. */
int sv_parse_keyed(const char *s, const char *const *kinds, const char **name);

#endif
