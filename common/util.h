/* util.h - small shared helpers: durations, host:port addresses, hashing, time. */
#ifndef GV_COMMON_UTIL_H
#define GV_COMMON_UTIL_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

/* Parses "250ms", "2s", "1m", "1h" (a bare number means seconds) into
 * milliseconds. Returns 0, or GV_EINVAL and leaves *ms unchanged. */
int gv_parse_duration(const char *s, uint64_t *ms);

/* Splits "host:port" or "[v6]:port" into host (NUL-terminated, at most
 * hostlen-1 bytes) and port. Returns 0 or GV_EINVAL. */
int gv_split_hostport(const char *s, char *host, size_t hostlen, uint16_t *port);

/* 64-bit hash of bytes (FNV-1a folded through a 64-bit finalizer); stable
 * across runs and machines, so every node maps a key to the same target. */
uint64_t gv_hash64(const void *p, size_t n, uint64_t seed);
/* Mixes a 64-bit value (splitmix64 finalizer). */
uint64_t gv_mix64(uint64_t x);

/* Monotonic time in milliseconds / microseconds. */
uint64_t gv_now_ms(void);
uint64_t gv_now_us(void);
/* Unix time in ms as RFC 3339 UTC with milliseconds ("2026-12-06T21:24:08.123Z"),
 * into out (at least 25 bytes), which is returned. */
#define GV_RFC3339_LEN 25
const char *gv_rfc3339_ms(uint64_t unix_ms, char *out, size_t n);

/* Thread-local fast PRNG (xorshift*); seeded per thread from the clock. */
uint64_t gv_rand64(void);
/* Writes v as 16 lowercase hex digits (no NUL). */
void gv_hex64(uint64_t v, char *out);
/* The value of one hex digit, or -1. */
int gv_hexval(int c);
/* The value of one base64url (RFC 4648 section 5) character, or -1. */
int gv_b64url_value(int c);
/* The value of one base64 character (standard alphabet, or url-safe), or -1. */
int gv_base64_value(int c, bool url);
/* Encodes n bytes as base64 (standard with padding, or url-safe without)
 * into out, which has room for 4 * ((n + 2) / 3) + 1 bytes; NUL-terminated.
 * Returns the length. */
size_t gv_base64_encode(const void *in, size_t n, char *out, bool url);
/* Decodes base64 (RFC 4648: standard with '=' padding, or url-safe without)
 * of s[0..len) into out (cap bytes). Canonical only: unused trailing bits
 * must be zero. Returns the decoded length, or -1 when malformed or when out
 * is too small. */
long gv_base64_decode(const char *s, size_t len, void *out, size_t cap, bool url);
/* Percent-decodes in[0..len) into out (cap bytes); with plus_is_space a '+'
 * is a space (query strings). Returns the decoded length, or -1 on a bad
 * escape, an encoded NUL or when out is too small. */
long gv_percent_decode(const char *in, size_t len, char *out, size_t cap, bool plus_is_space);

#define GV_ARRAY_LEN(a)                    (sizeof(a) / sizeof((a)[0]))
#define GV_MIN(a, b)                       ((a) < (b) ? (a) : (b))
#define GV_MAX(a, b)                       ((a) > (b) ? (a) : (b))
#define GV_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
