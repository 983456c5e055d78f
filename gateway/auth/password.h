/* password.h - the hashes users' passwords are stored as:
 * "pbkdf2-sha256$ITERATIONS$SALT$HASH" (standard base64), the shape Django
 * and passlib use. No threads of its own; every function is reentrant. */
#ifndef GV_GATEWAY_AUTH_PASSWORD_H
#define GV_GATEWAY_AUTH_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_PASSWORD_ITERATIONS 10000
#define GW_PASSWORD_MAX        160 /* longest stored form accepted */

struct gw_password {
    uint32_t iterations;
    uint8_t salt[64];
    size_t salt_len;
    uint8_t hash[32]; /* PBKDF2-HMAC-SHA256 output */
};

/* Hashes password into its stored form. The salt is derived from salt_seed
 * (the consumer and user names): a config file seeds every node with the same
 * stored object, so the same input must give the same hash on every node.
 * Returns 0, GV_ERANGE when out is too small, GV_EIO when OpenSSL fails. */
int gw_password_hash(const char *password, const char *salt_seed, char *out, size_t outlen);
/* Parses a stored form. 0 or GV_EINVAL (*out unchanged). Iterations must be
 * 1,000..10,000,000. */
int gw_password_parse(const char *stored, struct gw_password *out);
/* true when password (len bytes) matches, compared in constant time. */
bool gw_password_check(const struct gw_password *p, const char *password, size_t len);

#endif
