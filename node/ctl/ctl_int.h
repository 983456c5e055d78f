/* ctl_int.h - what the parts of `grapevine ctl` share: one admin request
 * and its answer, how objects are named, and the commands in their own
 * files (status.c, apply.c). Internal to node/ctl/. */
#ifndef GV_NODE_CTL_INT_H
#define GV_NODE_CTL_INT_H

#include "common/buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* What apply does with each object of its file. */
enum ctl_apply_mode {
    CTL_APPLY,   /* PUT it (unless the node holds it already) */
    CTL_DRY_RUN, /* ask the node what a PUT would do (?dry_run=true) */
    CTL_DIFF     /* print how the node's object would change (diff -u style) */
};

struct ctl {
    const char *admin;
    const char *token;
    enum ctl_apply_mode mode;
    char err[512]; /* why the last ctl_request() failed */
};

struct reply {
    int status;
    struct gv_buf body;
};

/* One request; the whole answer in out (free out->body). 0 or a negative
 * error with the reason in ctl->err. */
int ctl_request(struct ctl *ctl, const char *method, const char *path, const char *body,
                struct reply *out);
/* The answer's JSON or NULL (new reference). */
json_t *ctl_reply_json(const struct reply *r);
/* o[key] as a string, "" when absent. */
const char *ctl_str(const json_t *o, const char *key);
/* Prints "ADDR answered CODE: MESSAGE"; returns exit code 1. */
int ctl_answered_error(const struct ctl *ctl, const struct reply *r);
/* "route"/"routes" -> "routes" (other words as typed, for the node to refuse). */
const char *ctl_kind_arg(const char *s);
/* "/config/KIND/NAME" with NAME escaped (no NAME: the kind) in b. */
void ctl_object_path(struct gv_buf *b, const char *kind, const char *name);
/* "PLACEerror: PATH: MESSAGE" for a refused change of kind/name; place is
 * "FILE:LINE: " (or ""). */
void ctl_print_refusal(const char *place, const char *kind, const char *name, const json_t *answer);
/* GETs path as JSON into *out (new reference); 0, or -1 with the reason in
 * why. */
int ctl_get_json(struct ctl *ctl, const char *path, json_t **out, char *why, size_t whylen);
int ctl_cmd_status(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_apply(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_delete(struct ctl *ctl, const char *kind_word, const char *name);

#endif
