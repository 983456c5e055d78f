/* seal_test.c - keyring management, AES-256-GCM sealing, tamper, truncation,
 * replay and key-file handling. */
#include "cluster/seal.h"
#include "common/err.h"
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define NOW 1700000000000ull

static void key_fill(uint8_t key[CL_KEY_LEN], uint8_t seed)
{
    for (int i = 0; i < CL_KEY_LEN; i++)
        key[i] = (uint8_t)(seed * 31 + i);
}

static struct cl_keyring *ring_with(uint8_t seed)
{
    uint8_t key[CL_KEY_LEN];
    struct cl_keyring *kr = NULL;
    key_fill(key, seed);
    CHECK_INT(cl_keyring_new(key, &kr), 0);
    return kr;
}

static const char *id_of(uint8_t seed, char id[CL_KEY_ID_LEN + 1])
{
    uint8_t key[CL_KEY_LEN];
    key_fill(key, seed);
    cl_key_id(key, id);
    return id;
}

/* Seals msg with from's primary at time at and opens it with to at now. */
static int transfer(struct cl_keyring *from, struct cl_keyring *to, uint64_t at, uint64_t now)
{
    static const uint8_t msg[] = "alive gw1 incarnation 7";
    uint8_t sealed[sizeof(msg) + CL_SEAL_OVERHEAD], plain[sizeof(msg)];
    size_t n = 0, m = 0;
    int rc;

    CHECK_INT(cl_seal_at(from, at, msg, sizeof(msg), sealed, sizeof(sealed), &n), 0);
    CHECK_INT(n, sizeof(msg) + CL_SEAL_OVERHEAD);
    rc = cl_open_at(to, now, sealed, n, plain, sizeof(plain), &m);
    if (rc == 0) {
        CHECK_INT(m, sizeof(msg));
        CHECK(memcmp(plain, msg, sizeof(msg)) == 0);
    }
    return rc;
}

static void test_round_trip_each_key(void)
{
    struct cl_keyring *a = ring_with(1), *b = ring_with(1);
    uint8_t key[CL_KEY_LEN];
    char id[CL_KEY_ID_LEN + 1];

    for (uint8_t s = 2; s <= CL_KEYRING_MAX; s++) {
        key_fill(key, s);
        CHECK_INT(cl_keyring_install(a, key), 0);
        CHECK_INT(cl_keyring_install(b, key), 0);
    }
    for (uint8_t s = 1; s <= CL_KEYRING_MAX; s++) {
        CHECK_INT(cl_keyring_use(a, id_of(s, id)), 0);
        CHECK_INT(transfer(a, b, NOW, NOW), 0);
    }
    /* Empty payloads are legal too. */
    {
        uint8_t sealed[CL_SEAL_OVERHEAD], plain[1];
        size_t n = 0, m = 7;
        CHECK_INT(cl_seal_at(a, NOW, NULL, 0, sealed, sizeof(sealed), &n), 0);
        CHECK_INT(cl_open_at(b, NOW, sealed, n, plain, sizeof(plain), &m), 0);
        CHECK_INT(m, 0);
    }
    /* Two seals of the same plaintext differ (fresh nonce). */
    {
        uint8_t s1[16 + CL_SEAL_OVERHEAD], s2[16 + CL_SEAL_OVERHEAD];
        size_t n1, n2;
        CHECK_INT(cl_seal_at(a, NOW, (const uint8_t *)"0123456789abcdef", 16, s1, sizeof(s1), &n1),
                  0);
        CHECK_INT(cl_seal_at(a, NOW, (const uint8_t *)"0123456789abcdef", 16, s2, sizeof(s2), &n2),
                  0);
        CHECK(memcmp(s1, s2, n1) != 0);
        CHECK(memcmp(s1, "GVS\x01", 4) == 0);
    }
    struct cl_seal_stats st;
    cl_keyring_stats(b, &st);
    CHECK_INT(st.opened, CL_KEYRING_MAX + 1);
    CHECK_INT(st.auth_failed, 0);
    cl_keyring_free(a);
    cl_keyring_free(b);
}

static void test_wrong_key(void)
{
    struct cl_keyring *a = ring_with(1), *b = ring_with(2);
    struct cl_seal_stats st;

    CHECK_INT(transfer(a, b, NOW, NOW), GV_EINVAL);
    CHECK_INT(transfer(b, a, NOW, NOW), GV_EINVAL);
    cl_keyring_stats(b, &st);
    CHECK_INT(st.auth_failed, 1);
    CHECK_INT(st.opened, 0);
    cl_keyring_free(a);
    cl_keyring_free(b);
}

static void test_truncated_and_small_buffers(void)
{
    struct cl_keyring *kr = ring_with(3);
    uint8_t msg[40], sealed[sizeof(msg) + CL_SEAL_OVERHEAD], plain[sizeof(msg)];
    size_t n, m;
    struct cl_seal_stats st;

    memset(msg, 'x', sizeof(msg));
    CHECK_INT(cl_seal_at(kr, NOW, msg, sizeof(msg), sealed, sizeof(sealed), &n), 0);
    for (size_t len = 0; len < n; len++) {
        int rc = cl_open_at(kr, NOW, sealed, len, plain, sizeof(plain), &m);
        CHECK_INT(rc, len < CL_SEAL_OVERHEAD ? GV_EPROTO : GV_EINVAL);
    }
    cl_keyring_stats(kr, &st);
    CHECK_INT(st.malformed, CL_SEAL_OVERHEAD);
    CHECK_INT(st.auth_failed, n - CL_SEAL_OVERHEAD);
    /* Buffers too small are refused without counting or remembering. */
    CHECK_INT(cl_seal_at(kr, NOW, msg, sizeof(msg), sealed, sizeof(sealed) - 1, &n), -ENOBUFS);
    CHECK_INT(cl_seal_at(kr, NOW, msg, sizeof(msg), sealed, sizeof(sealed), &n), 0);
    CHECK_INT(cl_open_at(kr, NOW, sealed, n, plain, sizeof(plain) - 1, &m), -ENOBUFS);
    CHECK_INT(cl_open_at(kr, NOW, sealed, n, plain, sizeof(plain), &m), 0);
    cl_keyring_free(kr);
}

static void test_bit_flips(void)
{
    struct cl_keyring *kr = ring_with(4);
    uint8_t msg[33], sealed[sizeof(msg) + CL_SEAL_OVERHEAD], plain[sizeof(msg)];
    size_t n, m;
    int accepted = 0;

    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)i;
    CHECK_INT(cl_seal_at(kr, NOW, msg, sizeof(msg), sealed, sizeof(sealed), &n), 0);
    for (size_t byte = 0; byte < n; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            sealed[byte] ^= (uint8_t)(1u << bit);
            int rc = cl_open_at(kr, NOW, sealed, n, plain, sizeof(plain), &m);
            CHECK_INT(rc, byte < CL_SEAL_HEADER_LEN ? GV_EPROTO : GV_EINVAL);
            accepted += rc == 0;
            sealed[byte] ^= (uint8_t)(1u << bit);
        }
    }
    CHECK_INT(accepted, 0);
    /* The untouched message still opens, once. */
    CHECK_INT(cl_open_at(kr, NOW, sealed, n, plain, sizeof(plain), &m), 0);
    CHECK(memcmp(plain, msg, sizeof(msg)) == 0);
    CHECK_INT(cl_open_at(kr, NOW, sealed, n, plain, sizeof(plain), &m), GV_EEXIST);
    cl_keyring_free(kr);
}

static void test_rotation(void)
{
    struct cl_keyring *a = ring_with(1), *b = ring_with(1);
    uint8_t k2[CL_KEY_LEN];
    char id1[CL_KEY_ID_LEN + 1], id2[CL_KEY_ID_LEN + 1];
    uint64_t t = NOW;

    id_of(1, id1);
    key_fill(k2, 2);
    cl_key_id(k2, id2);
    /* 1. install the new key everywhere. */
    CHECK_INT(cl_keyring_install(a, k2), 0);
    CHECK_INT(transfer(a, b, t, t), 0);
    CHECK_INT(cl_keyring_install(b, k2), 0);
    CHECK_INT(transfer(a, b, t, t), 0);
    CHECK_INT(transfer(b, a, t, t), 0);
    /* 2. make it primary, one node at a time: mixed primaries still talk. */
    CHECK_INT(cl_keyring_use(a, id2), 0);
    CHECK_INT(transfer(a, b, t, t), 0);
    CHECK_INT(transfer(b, a, t, t), 0);
    CHECK_INT(cl_keyring_use(b, id2), 0);
    CHECK_INT(transfer(a, b, t, t), 0);
    /* 3. remove the old key. */
    CHECK_INT(cl_keyring_remove(a, id1), 0);
    CHECK_INT(cl_keyring_remove(b, id1), 0);
    CHECK_INT(transfer(a, b, t, t), 0);
    CHECK_INT(transfer(b, a, t, t), 0);
    /* A node still on the old key alone is now shut out. */
    struct cl_keyring *old = ring_with(1);
    CHECK_INT(transfer(old, a, t, t), GV_EINVAL);
    CHECK_INT(transfer(a, old, t, t), GV_EINVAL);
    cl_keyring_free(old);
    cl_keyring_free(a);
    cl_keyring_free(b);
}

static void test_keyring_management(void)
{
    struct cl_keyring *kr = ring_with(1);
    struct cl_key_info info[CL_KEYRING_MAX];
    uint8_t key[CL_KEY_LEN];
    char id[CL_KEY_ID_LEN + 1], b64[CL_KEY_B64_LEN + 1];

    CHECK_INT(cl_keyring_list(kr, info, CL_KEYRING_MAX), 1);
    CHECK_STR(info[0].id, id_of(1, id));
    CHECK_INT(info[0].primary, 1);
    CHECK_INT(strlen(info[0].id), CL_KEY_ID_LEN);
    CHECK_INT(strspn(info[0].id, "0123456789abcdef"), CL_KEY_ID_LEN);
    /* The id never carries the key itself. */
    key_fill(key, 1);
    cl_key_encode(key, b64);
    CHECK(strstr(b64, info[0].id) == NULL);

    CHECK_INT(cl_keyring_remove(kr, id), -EBUSY);
    CHECK_INT(cl_keyring_remove(kr, "00000000"), GV_ENOENT);
    CHECK_INT(cl_keyring_use(kr, "00000000"), GV_ENOENT);
    CHECK_INT(cl_keyring_install(kr, key), 0); /* already there: no-op */
    for (uint8_t s = 2; s <= CL_KEYRING_MAX; s++) {
        key_fill(key, s);
        CHECK_INT(cl_keyring_install(kr, key), 0);
    }
    key_fill(key, 99);
    CHECK_INT(cl_keyring_install(kr, key), GV_ERANGE);
    CHECK_INT(cl_keyring_list(kr, info, 2), CL_KEYRING_MAX);
    /* Primary follows its key when earlier keys go. */
    CHECK_INT(cl_keyring_use(kr, id_of(5, id)), 0);
    CHECK_INT(cl_keyring_remove(kr, id_of(1, id)), 0);
    CHECK_INT(cl_keyring_remove(kr, id_of(2, id)), 0);
    CHECK_INT(cl_keyring_list(kr, info, CL_KEYRING_MAX), CL_KEYRING_MAX - 2);
    for (int i = 0; i < CL_KEYRING_MAX - 2; i++)
        CHECK_INT(info[i].primary, strcmp(info[i].id, id_of(5, id)) == 0);
    CHECK_INT(cl_keyring_remove(kr, id_of(5, id)), -EBUSY);
    cl_keyring_free(kr);
}

static void test_replay(void)
{
    struct cl_keyring *a = ring_with(7), *b = ring_with(7);
    struct cl_seal_stats st;
    uint8_t sealed[8 + CL_SEAL_OVERHEAD], plain[8];
    size_t n, m;

    /* Send time against the receiver's clock and its window. */
    CHECK_INT(transfer(a, b, NOW - CL_REPLAY_WINDOW_MS - 1, NOW), GV_ETIMEDOUT);
    CHECK_INT(transfer(a, b, NOW + CL_REPLAY_WINDOW_MS + 1, NOW), GV_ETIMEDOUT);
    CHECK_INT(transfer(a, b, NOW - CL_REPLAY_WINDOW_MS + 1000, NOW), 0);
    CHECK_INT(transfer(a, b, NOW + CL_REPLAY_WINDOW_MS - 1000, NOW), 0);
    cl_keyring_set_replay_window(b, 5000);
    CHECK_INT(transfer(a, b, NOW - 6000, NOW), GV_ETIMEDOUT);
    CHECK_INT(transfer(a, b, NOW - 4000, NOW), 0);
    cl_keyring_set_replay_window(b, CL_REPLAY_WINDOW_MS);

    /* The same message twice: the second is a replay. */
    CHECK_INT(cl_seal_at(a, NOW, (const uint8_t *)"ping 42!", 8, sealed, sizeof(sealed), &n), 0);
    CHECK_INT(cl_open_at(b, NOW, sealed, n, plain, sizeof(plain), &m), 0);
    CHECK_INT(cl_open_at(b, NOW + 10, sealed, n, plain, sizeof(plain), &m), GV_EEXIST);
    cl_keyring_stats(b, &st);
    CHECK_INT(st.replay_rejected, 4);
    cl_keyring_free(a);
    cl_keyring_free(b);
}

static void test_replay_cache_overflow(void)
{
    struct cl_keyring *a = ring_with(8), *b = ring_with(8);
    uint8_t first[8 + CL_SEAL_OVERHEAD], sealed[8 + CL_SEAL_OVERHEAD], plain[8];
    size_t n1, n, m;
    int fails = 0;

    /* A flood inside the window pushes the first nonce out of the cache; its
     * replay must still be refused (by the horizon). */
    CHECK_INT(cl_seal_at(a, NOW, (const uint8_t *)"first!!!", 8, first, sizeof(first), &n1), 0);
    CHECK_INT(cl_open_at(b, NOW, first, n1, plain, sizeof(plain), &m), 0);
    for (uint64_t i = 1; i <= CL_REPLAY_CACHE; i++) {
        CHECK_INT(
            cl_seal_at(a, NOW + i, (const uint8_t *)"flood!!!", 8, sealed, sizeof(sealed), &n), 0);
        fails += cl_open_at(b, NOW + CL_REPLAY_CACHE, sealed, n, plain, sizeof(plain), &m) != 0;
    }
    CHECK_INT(fails, 0);
    CHECK_INT(cl_open_at(b, NOW + CL_REPLAY_CACHE, first, n1, plain, sizeof(plain), &m),
              GV_ETIMEDOUT);
    /* The latest ones are still remembered by nonce. */
    CHECK_INT(cl_open_at(b, NOW + CL_REPLAY_CACHE, sealed, n, plain, sizeof(plain), &m), GV_EEXIST);
    cl_keyring_free(a);
    cl_keyring_free(b);
}

static void test_key_parse(void)
{
    uint8_t key[CL_KEY_LEN], back[CL_KEY_LEN], orig[CL_KEY_LEN];
    char b64[CL_KEY_B64_LEN + 1], text[80], err[128];

    CHECK_INT(cl_key_generate(orig), 0);
    cl_key_encode(orig, b64);
    CHECK_INT(strlen(b64), CL_KEY_B64_LEN);
    CHECK_INT(cl_key_parse(b64, strlen(b64), back, err, sizeof(err)), 0);
    CHECK(memcmp(back, orig, CL_KEY_LEN) == 0);
    snprintf(text, sizeof(text), "  %s\r\n", b64);
    CHECK_INT(cl_key_parse(text, strlen(text), back, err, sizeof(err)), 0);
    CHECK(memcmp(back, orig, CL_KEY_LEN) == 0);

    /* A known vector: 32 zero bytes. */
    CHECK_INT(
        cl_key_parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 44, key, err, sizeof(err)), 0);
    memset(back, 0, sizeof(back));
    CHECK(memcmp(key, back, CL_KEY_LEN) == 0);

    memcpy(key, orig, CL_KEY_LEN);
    CHECK_INT(cl_key_parse("", 0, key, err, sizeof(err)), GV_EINVAL);
    CHECK(strstr(err, "empty") != NULL);
    CHECK_INT(cl_key_parse(" \n", 2, key, err, sizeof(err)), GV_EINVAL);
    CHECK_INT(cl_key_parse("c2hvcnQ=", 8, key, err, sizeof(err)), GV_EINVAL);
    CHECK(strstr(err, "got 8 characters") != NULL);
    /* 48 bytes of base64 (a 33+ byte key). */
    CHECK_INT(
        cl_key_parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 48, key, err, sizeof(err)),
        GV_EINVAL);
    snprintf(text, sizeof(text), "%s", b64);
    text[10] = '*';
    CHECK_INT(cl_key_parse(text, 44, key, err, sizeof(err)), GV_EINVAL);
    CHECK(strstr(err, "offset 10") != NULL);
    text[10] = ' ';
    CHECK_INT(cl_key_parse(text, 44, key, err, sizeof(err)), GV_EINVAL);
    /* URL-safe alphabet is not accepted. */
    text[10] = '-';
    CHECK_INT(cl_key_parse(text, 44, key, err, sizeof(err)), GV_EINVAL);
    snprintf(text, sizeof(text), "%s", b64);
    text[43] = 'A';
    CHECK_INT(cl_key_parse(text, 44, key, err, sizeof(err)), GV_EINVAL);
    CHECK(strstr(err, "padding") != NULL);
    /* Non-canonical: the last data character carries bits past 256. */
    CHECK_INT(
        cl_key_parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=", 44, key, err, sizeof(err)),
        GV_EINVAL);
    CHECK(strstr(err, "non-canonical") != NULL);
    CHECK(memcmp(key, orig, CL_KEY_LEN) == 0); /* untouched on error */
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    /* Key files are private; a wider mode only earns a warning. */
    CHECK_INT(chmod(path, 0600), 0);
}

static void test_key_file(void)
{
    char dir[] = "/tmp/gv_seal_test_XXXXXX", path[128], err[256], b64[CL_KEY_B64_LEN + 1];
    uint8_t key[CL_KEY_LEN], orig[CL_KEY_LEN];
    char big[2000];

    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/cluster.key", dir);

    CHECK_INT(cl_key_load_file(path, key, err, sizeof(err)), GV_ENOENT);
    CHECK(strstr(err, path) != NULL);

    CHECK_INT(cl_key_generate(orig), 0);
    cl_key_encode(orig, b64);
    snprintf(big, sizeof(big), "%s\n", b64);
    write_file(path, big);
    CHECK_INT(cl_key_load_file(path, key, err, sizeof(err)), 0);
    CHECK(memcmp(key, orig, CL_KEY_LEN) == 0);

    write_file(path, "not a key\n");
    CHECK_INT(cl_key_load_file(path, key, err, sizeof(err)), GV_EINVAL);
    CHECK(strncmp(err, path, strlen(path)) == 0);
    CHECK(strstr(err, "44 base64") != NULL);

    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    write_file(path, big);
    CHECK_INT(cl_key_load_file(path, key, err, sizeof(err)), GV_EINVAL);
    CHECK(strstr(err, "too large") != NULL);

    CHECK_INT(cl_key_load_file(dir, key, err, sizeof(err)), -EISDIR);
    unlink(path);
    rmdir(dir);
}

TEST_MAIN(TEST(test_round_trip_each_key), TEST(test_wrong_key),
          TEST(test_truncated_and_small_buffers), TEST(test_bit_flips), TEST(test_rotation),
          TEST(test_keyring_management), TEST(test_replay), TEST(test_replay_cache_overflow),
          TEST(test_key_parse), TEST(test_key_file))
