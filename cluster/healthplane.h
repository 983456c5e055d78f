/* healthplane.h - the shared health plane's pure parts: which members probe a
 * target (rendezvous hashing, at most CL_HP_CHECKERS of them) and the codec of
 * a health report spread on cluster channel 2.
 *
 * No state, no threads, no I/O: safe to call from anywhere. Strings passed in
 * are borrowed for the call; a decoded report owns copies (fixed arrays).
 *
 * A report is one msgpack array: [magic "GVHP", version 1, service, address,
 * healthy (bool), reason, checker, stamp (uint64, an HLC stamp: the receiver
 * keeps the report with the larger stamp per target, ties broken by checker
 * name)]. Anything else, including trailing bytes, is GV_EPROTO.
 */
#ifndef GV_CLUSTER_HEALTHPLANE_H
#define GV_CLUSTER_HEALTHPLANE_H

#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CL_HP_CHANNEL     2
#define CL_HP_CHECKERS    2
#define CL_HP_VERSION     1
#define CL_HP_MAX_SERVICE 128
#define CL_HP_MAX_ADDRESS 256
#define CL_HP_MAX_REASON  128
#define CL_HP_MAX_NAME    64

/* Picks the members that probe (service, address): the (at most)
 * CL_HP_CHECKERS members with the highest gv_hash64 score of their name keyed
 * by the target, best first, ties broken by name. members[0..n) are the alive
 * members (order does not matter, names should be distinct). Writes indices
 * into members to out[] and returns how many (min(n, CL_HP_CHECKERS)). When a
 * member goes, only the targets it was picked for change checkers, and each
 * gets the next member in its own order. */
size_t cl_hp_assign(const char *const *members, size_t n, const char *service, const char *address,
                    size_t out[CL_HP_CHECKERS]);

/* Whether member `self` is one of the checkers of (service, address). */
bool cl_hp_is_checker(const char *const *members, size_t n, const char *service,
                      const char *address, const char *self);

struct cl_hp_report {
    char service[CL_HP_MAX_SERVICE + 1];
    char address[CL_HP_MAX_ADDRESS + 1];
    char reason[CL_HP_MAX_REASON + 1];
    char checker[CL_HP_MAX_NAME + 1];
    bool healthy;
    uint64_t stamp;
};

/* Appends the encoded report to out. Returns 0, GV_EINVAL when a string is
 * empty (service, address, checker) or longer than its limit, or GV_ENOMEM;
 * on error out's length is unchanged. */
int cl_hp_encode(const struct cl_hp_report *r, struct gv_buf *out);

/* Decodes exactly p[0..len) into *r. Returns 0 or GV_EPROTO (malformed,
 * wrong magic or version, a string over its limit, trailing bytes); *r is
 * unspecified on error. */
int cl_hp_decode(const uint8_t *p, size_t len, struct cl_hp_report *r);

/* Decodes the first report of p[0..len) into *r and sets *used to its size,
 * for a sequence of reports back to back (the channel's push-pull state).
 * Returns 0 or GV_EPROTO (as cl_hp_decode; *used unspecified then). */
int cl_hp_decode_first(const uint8_t *p, size_t len, size_t *used, struct cl_hp_report *r);

/* Passive ejections are spread as reports too: unhealthy, with this reason.
 * The receiver ejects the target for what is left of the sender's ejection,
 * dated by the stamp's wall-clock part. */
#define CL_HP_REASON_PASSIVE "passive"
bool cl_hp_is_passive(const struct cl_hp_report *r);
/* What is left at wall time now_unix_ms of an ejection for eject_for_ms
 * reported at stamp: 0 once it has run out, never more than eject_for_ms
 * (a sender's clock ahead of ours cannot make it longer). */
uint64_t cl_hp_passive_left(uint64_t stamp, uint64_t eject_for_ms, uint64_t now_unix_ms);

/* Whether report a supersedes b for the same target (LWW: larger stamp, then
 * larger checker name), so late or reordered reports never flip state back. */
bool cl_hp_newer(const struct cl_hp_report *a, const struct cl_hp_report *b);

#endif
