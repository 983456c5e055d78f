/* auth.h - the auth plugins (key_auth, jwt, basic_auth) and the consumer
 * table they identify callers against (docs/plugins.md).
 *
 * A snapshot's consumers are built once on the control thread
 * (node/plugins_auth.c) into a gw_consumers owned by the snapshot's pipeline;
 * workers only read it. Each auth plugin's config points at that table. A
 * plugin that identifies a caller sets r->consumer (a name in the table), used
 * by rate_limit's `key: consumer`, sent upstream as X-Consumer and written to
 * the access log. Several auth plugins on one route must all pass.
 *
 * Credentials are looked up by value: sorted arrays and binary search, so a
 * lookup costs O(log n) comparisons and no allocation. Expensive checks (a
 * password hash, an RSA signature) are remembered per worker thread for
 * credentials that passed (gateway/cred_cache.h), so a repeated credential
 * costs a lookup.
 */
#ifndef GV_GATEWAY_AUTH_H
#define GV_GATEWAY_AUTH_H

#include "gateway/jwt.h"
#include "gateway/plugin.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern const struct gw_plugin_ops gw_plugin_key_auth;
extern const struct gw_plugin_ops gw_plugin_jwt;
extern const struct gw_plugin_ops gw_plugin_basic_auth;

/* ---- passwords (basic_auth.c) ------------------------------------------- */

/* Stored form: "pbkdf2-sha256$ITERATIONS$SALT$HASH" (standard base64), the
 * shape Django and passlib use. */
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

/* ---- the consumer table (consumers.c) ----------------------------------- */

struct gw_cred {
    char *value; /* a key_auth key or a basic_auth user name; owned */
    size_t len;
    uint32_t consumer;
    struct gw_password pw; /* basic_auth */
};

struct gw_consumers {
    char **names; /* index -> consumer name; owned */
    size_t n;
    struct gw_cred *keys, *users; /* sorted by (len, bytes) once sealed */
    size_t nkeys, nusers;
    struct gw_jwt_keys jwt; /* issuers -> keys; jwt.gen keys their cache entries */
    uint64_t users_gen;     /* keys the basic_auth users' cache entries */
};

/* Building (control thread). Each returns 0 or a negative error. */
struct gw_consumers *gw_consumers_new(void);
/* Adds a consumer; *index is its position. */
int gw_consumers_add(struct gw_consumers *c, const char *name, uint32_t *index);
int gw_consumers_add_key(struct gw_consumers *c, uint32_t consumer, const char *key);
/* stored: a password's stored form (GV_EINVAL when it does not parse). */
int gw_consumers_add_user(struct gw_consumers *c, uint32_t consumer, const char *user,
                          const char *stored);
/* A jwt credential; GV_EINVAL with *why when the key material is refused. */
int gw_consumers_add_jwt(struct gw_consumers *c, uint32_t consumer, const char *issuer,
                         enum gw_jwt_alg alg, const char *material, const char **why);
/* Sorts the credentials; lookups are valid only after this. */
void gw_consumers_seal(struct gw_consumers *c);
void gw_consumers_free(struct gw_consumers *c);

/* Lookups (worker threads): the credential, or NULL. */
const struct gw_cred *gw_consumers_by_key(const struct gw_consumers *c, const char *key,
                                          size_t len);
const struct gw_cred *gw_consumers_by_user(const struct gw_consumers *c, const char *user,
                                           size_t len);

/* ---- plugin configs ------------------------------------------------------ */

struct gw_auth_conf {
    const struct gw_consumers *consumers; /* the pipeline's; not owned */
    char header[128];                     /* key_auth: X-Api-Key; jwt: Authorization */
    char query[128];                      /* "" when the credential is not read from the query */
    char realm[128];                      /* basic_auth */
    int64_t skew_s;                       /* jwt clock skew */
    bool forward;                         /* forward_credentials */
    bool bearer;                          /* jwt: header is Authorization, "Bearer " first */
};

/* ---- shared by the auth plugins (key_auth.c) ---------------------------- */

/* The first value of query parameter name in the request URL, percent-decoded
 * into buf (n bytes). Returns its length, or -1 when absent, empty or longer
 * than buf. */
long gw_auth_query(const struct gw_request *r, const char *name, char *buf, size_t n);
/* Records the identified consumer and, unless c->forward, the header or query
 * parameter that carried the credential, so build_up_head leaves it out. */
void gw_auth_identified(const struct gw_auth_conf *c, struct gw_request *r, uint32_t consumer,
                        const char *header, const char *query);
void gw_auth_conf_free(void *conf);

#endif
