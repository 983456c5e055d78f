/* sticky.h - session persistence: a signed cookie value that names the
 * target a client was sent to, so later requests go back to it.
 *
 * The value is base64url (no padding, so never ';' ',' '=' or spaces) of
 *   version (1 byte, 1) | expiry, unix seconds (8, big-endian)
 *   | target id (8: gv_hash64 of the address) | tag (16)
 * where tag is HMAC-SHA256 under the cluster's 32-byte key over the first 17
 * bytes followed by the target's address, truncated to 16 bytes. The id only
 * finds the candidate; the tag binds the full address, so a forged or
 * colliding id is rejected. Addresses themselves never reach the client.
 *
 * Pure functions, safe from any thread; nothing is allocated.
 */
#ifndef GV_BALANCER_STICKY_H
#define GV_BALANCER_STICKY_H

#include "balancer/service.h"

#include <stddef.h>
#include <stdint.h>

#define LB_STICKY_KEY_LEN   32
#define LB_STICKY_VALUE_LEN 44                        /* characters of an encoded value */
#define LB_STICKY_VALUE_MAX (LB_STICKY_VALUE_LEN + 1) /* buffer size with the NUL */

/* Writes the NUL-terminated cookie value for target_address, valid until
 * expires_unix_s, into out. Returns 0, GV_ERANGE when outlen is below
 * LB_STICKY_VALUE_MAX, or GV_EINVAL for an empty or absurdly long address
 * (out is then unchanged). */
int lb_sticky_encode(const uint8_t key[LB_STICKY_KEY_LEN], const char *target_address,
                     uint64_t expires_unix_s, char *out, size_t outlen);

/* Checks a cookie value from a client. Returns 0 and sets *target_index to
 * the target of spec whose address it names, or GV_EINVAL when the value is
 * garbled, forged, expired (now_unix_s >= expiry) or names no target of spec;
 * *target_index is unchanged then. Whether that target is available is the
 * caller's question. value is any NUL-terminated string from the wire; at
 * most LB_STICKY_VALUE_MAX bytes of it are read. The tag is compared in
 * constant time. */
int lb_sticky_decode(const uint8_t key[LB_STICKY_KEY_LEN], const char *value, uint64_t now_unix_s,
                     const struct lb_service_spec *spec, int *target_index);

#endif
