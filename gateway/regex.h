/* regex.h - route regexes with bounded cost (PCRE2, JIT-compiled).
 *
 * A pattern is refused when it is longer than GW_REGEX_MAX_PATTERN, nests
 * groups deeper than 32, or compiles to more than GW_REGEX_MAX_COMPILED
 * bytes (code plus JIT): a config value must never cost a node gigabytes.
 * Matching is anchored at both ends (a regex matches the whole path) and
 * bounded by a match limit: a pattern that backtracks too long simply does
 * not match.
 *
 * Threads: compile on the control thread; a compiled regex is immutable
 * and may be matched from any number of threads at once (each thread keeps
 * its own match data).
 */
#ifndef GV_GATEWAY_REGEX_H
#define GV_GATEWAY_REGEX_H

#include <stdbool.h>
#include <stddef.h>

#define GW_REGEX_MAX_PATTERN  1024
#define GW_REGEX_MAX_COMPILED (256 * 1024)

struct gw_regex;

/* Compiles pattern. Returns 0 with *out, or GV_EINVAL with a short reason
 * in why (n bytes), or GV_ENOMEM. */
int gw_regex_compile(const char *pattern, struct gw_regex **out, char *why, size_t n);
/* True when the whole of s (len bytes) matches within the match limit. */
bool gw_regex_match(const struct gw_regex *re, const char *s, size_t len);
void gw_regex_free(struct gw_regex *re);

#endif
