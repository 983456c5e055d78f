/* path.h - request paths as routing and plugins see them: normalised, so no
 * spelling of a path gets around a rule written for another
 * ("/api/../admin", "//admin", "/%61dmin" are all "/admin").
 *
 * The rules (RFC 3986 section 6.2.2, as Envoy's normalize_path and
 * merge_slashes and nginx apply them):
 *   - percent-encoded unreserved characters (A-Z a-z 0-9 - . _ ~) are
 *     decoded; other escapes keep their bytes, their hex in upper case;
 *   - dot segments are removed (section 5.2.4), "/.." never climbs above "/";
 *   - runs of slashes become one.
 * An encoded slash (%2F) or backslash (%5C, or a raw '\') is not a segment
 * boundary in the normalised form: GW_PATH_ESCAPED_SLASH tells the caller,
 * who refuses it or, where a route allows it, decodes it and normalises
 * again. A NUL (%00), a control byte or a malformed escape is refused.
 *
 * Pure functions, no allocation beyond the caller's buffer; any thread.
 */
#ifndef GV_GATEWAY_PATH_H
#define GV_GATEWAY_PATH_H

#include <stdbool.h>
#include <stddef.h>

enum {
    GW_PATH_CHANGED = 1 << 0,       /* the normal form differs from the input */
    GW_PATH_ESCAPED_SLASH = 1 << 1, /* %2F, %5C or '\' is in it */
};

/* Normalises path (len bytes, no query, starting with '/') into out (cap
 * bytes; never longer than the input). With decode_slashes, %2F and %5C
 * and '\' become '/' first. Returns the length of the normal form, or -1 for
 * a path that cannot be normalised (no leading '/', a bad or NUL escape, a
 * control byte) or when out is too small; *flags gets GW_PATH_*. */
long gw_path_normalize(const char *path, size_t len, char *out, size_t cap, bool decode_slashes,
                       unsigned *flags);

/* An absolute-form request target (RFC 9112 3.2.2: "http://host[:port]/p?q"):
 * where its authority is (*auth_off, *auth_len) and where its path starts
 * (*path_off; the path may be empty). 0, or -1 when url is not one: a scheme
 * other than http or https, no host, or userinfo ("user@host"). */
int gw_target_absolute(const char *url, size_t len, size_t *auth_off, size_t *auth_len,
                       size_t *path_off);

/* True when path needs any work: a quick scan before gw_path_normalize, so
 * an already normal path (the common case) costs no copy. */
bool gw_path_needs_normalizing(const char *path, size_t len);

#endif
