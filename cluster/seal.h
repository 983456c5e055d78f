/* seal.h - AES-256-GCM sealing of gossip messages with a rotatable keyring.
 *
 * A keyring holds up to CL_KEYRING_MAX 32-byte keys. One is the primary and
 * seals every outgoing message; every key is tried when opening. That makes
 * rotation possible without downtime (as in memberlist/Serf): install the new
 * key on every node, make it primary everywhere, then remove the old one.
 *
 * Sealed message:
 *     'G' 'V' 'S' VERSION | nonce (12) | ciphertext | GCM tag (16)
 * The 4-byte header is authenticated as additional data. The ciphertext holds
 *     send time (8, big-endian ms since the Unix epoch) | plaintext
 *
 * Replay protection that open() provides:
 *   - a message whose send time is more than the replay window (60 s by
 *     default) in the past or in the future is rejected, so nodes need clocks
 *     synchronised to well within the window (NTP);
 *   - inside the window, every nonce that opened successfully is remembered in
 *     a bounded cache (CL_REPLAY_CACHE entries) and a second copy is rejected.
 *     When the cache must forget a nonce still inside the window (a flood), it
 *     raises a horizon to that message's send time and rejects anything not
 *     newer than the horizon, so a replay is never accepted: under a flood
 *     delayed genuine messages may be rejected instead.
 * Both checks run only after authentication, so forged messages can neither
 * fill the cache nor move the horizon.
 *
 * Keys never leave this module in readable form except through
 * cl_key_encode(); logs and APIs name a key by its id, the first 8 hex digits
 * of its SHA-256.
 *
 * Threads: every function here may be called from any thread; a keyring
 * serialises its users with a mutex (install/use/remove from the admin API
 * while the cluster loop seals and opens).
 */
#ifndef GV_CLUSTER_SEAL_H
#define GV_CLUSTER_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define CL_KEY_LEN         32
#define CL_KEY_ID_LEN      8 /* hex digits, without the NUL */
#define CL_KEY_B64_LEN     44
#define CL_KEYRING_MAX     8
#define CL_SEAL_VERSION    1
#define CL_SEAL_HEADER_LEN 4
#define CL_SEAL_NONCE_LEN  12
#define CL_SEAL_TIME_LEN   8
#define CL_SEAL_TAG_LEN    16
/* Bytes a sealed message adds to its plaintext. */
#define CL_SEAL_OVERHEAD                                                                           \
    (CL_SEAL_HEADER_LEN + CL_SEAL_NONCE_LEN + CL_SEAL_TIME_LEN + CL_SEAL_TAG_LEN)
#define CL_REPLAY_WINDOW_MS 60000
#define CL_REPLAY_CACHE     8192

struct cl_keyring;

struct cl_key_info {
    char id[CL_KEY_ID_LEN + 1];
    int primary;
};

struct cl_seal_stats {
    uint64_t sealed;
    uint64_t opened;
    uint64_t auth_failed;     /* no key authenticates it (or tampered) */
    uint64_t malformed;       /* too short, bad magic, unknown version */
    uint64_t replay_rejected; /* outside the window, or a nonce seen before */
};

/* Decodes a key from its text form: exactly 44 characters of standard,
 * padded base64 giving 32 bytes, optionally surrounded by whitespace (a file's
 * trailing newline). Returns 0, or GV_EINVAL with a reason in err (when err
 * is not NULL) and key unchanged. */
int cl_key_parse(const char *text, size_t len, uint8_t key[CL_KEY_LEN], char *err, size_t errlen);
/* Reads and parses a key file (node.cluster_key_file). Blocking file I/O: for
 * start-up and the admin API, never a loop callback. Returns 0, GV_EINVAL for
 * a bad key, or a negated errno when the file cannot be read; err gets
 * "PATH: reason". */
int cl_key_load_file(const char *path, uint8_t key[CL_KEY_LEN], char *err, size_t errlen);
/* Writes the 44-character base64 text of key and a NUL into out. */
void cl_key_encode(const uint8_t key[CL_KEY_LEN], char out[CL_KEY_B64_LEN + 1]);
/* Fills key with 32 bytes from the OpenSSL CSPRNG. Returns 0 or GV_EIO. */
int cl_key_generate(uint8_t key[CL_KEY_LEN]);
/* Writes the key's id (8 lowercase hex digits of SHA-256(key)) and a NUL. */
void cl_key_id(const uint8_t key[CL_KEY_LEN], char out[CL_KEY_ID_LEN + 1]);

/* Creates a keyring whose only key, primary, is copied. Returns 0, GV_ENOMEM
 * or GV_EIO (OpenSSL could not provide AES-256-GCM). */
int cl_keyring_new(const uint8_t primary[CL_KEY_LEN], struct cl_keyring **out);
/* Wipes the keys and frees the keyring; NULL is allowed. */
void cl_keyring_free(struct cl_keyring *kr);

/* Adds a key used for opening. Installing a key already present is a no-op
 * returning 0 (so a retried rotation step is harmless). Returns GV_ERANGE
 * when the ring is full and GV_EEXIST when a different key has the same id. */
int cl_keyring_install(struct cl_keyring *kr, const uint8_t key[CL_KEY_LEN]);
/* Makes the installed key with this id the primary. Returns 0 or GV_ENOENT. */
int cl_keyring_use(struct cl_keyring *kr, const char *id);
/* Removes the installed key with this id. Returns 0, GV_ENOENT, or -EBUSY
 * when it is the primary (make another key primary first). */
int cl_keyring_remove(struct cl_keyring *kr, const char *id);
/* Copies up to max entries (in installation order) into out and returns how
 * many keys are installed (which may exceed max). */
size_t cl_keyring_list(struct cl_keyring *kr, struct cl_key_info *out, size_t max);
/* Sets how far a send time may lie from the receiver's clock (default
 * CL_REPLAY_WINDOW_MS); at least 1000 ms. */
void cl_keyring_set_replay_window(struct cl_keyring *kr, uint64_t ms);
void cl_keyring_stats(struct cl_keyring *kr, struct cl_seal_stats *out);

/* Seals len bytes of in with the primary key into out, which must hold
 * len + CL_SEAL_OVERHEAD bytes; sets *outlen. Returns 0, -ENOBUFS when out
 * is too small, or GV_EIO when OpenSSL fails. in and out must not overlap. */
int cl_seal(struct cl_keyring *kr, const uint8_t *in, size_t len, uint8_t *out, size_t outcap,
            size_t *outlen);
/* As cl_seal() with a given send time (ms since the Unix epoch). */
int cl_seal_at(struct cl_keyring *kr, uint64_t now_ms, const uint8_t *in, size_t len, uint8_t *out,
               size_t outcap, size_t *outlen);

/* Opens a sealed message into out (len - CL_SEAL_OVERHEAD bytes needed) and
 * sets *outlen. Returns 0 or, with the matching counter raised:
 *   GV_EPROTO     too short, bad magic or unsupported version (malformed);
 *   GV_EINVAL     no installed key authenticates it (auth_failed);
 *   GV_ETIMEDOUT  send time outside the replay window (replay_rejected);
 *   GV_EEXIST     this nonce was accepted before (replay_rejected);
 * or -ENOBUFS when out is too small (nothing counted, nothing remembered).
 * On error out's contents are unspecified and nothing was remembered.
 * in and out must not overlap. */
int cl_open(struct cl_keyring *kr, const uint8_t *in, size_t len, uint8_t *out, size_t outcap,
            size_t *outlen);
/* As cl_open() with the receiver's clock given (ms since the Unix epoch). */
int cl_open_at(struct cl_keyring *kr, uint64_t now_ms, const uint8_t *in, size_t len, uint8_t *out,
               size_t outcap, size_t *outlen);

/* Wall-clock milliseconds since the Unix epoch (the clock seal/open use). */
uint64_t cl_seal_clock_ms(void);

#endif
