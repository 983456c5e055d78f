/* sticky_test.c - signed session cookies: round trip, tampering, expiry,
 * garbage of every shape. */
#include "balancer/sticky.h"
#include "common/err.h"
#include "common/util.h"
#include "test.h"

#include <stdlib.h>

static const uint8_t key[LB_STICKY_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The service the cookies name targets of: three targets, in this order.
 * Free it with lb_service_spec_free. */
static void make_spec(struct lb_service_spec *spec)
{
    static const char *addrs[] = {"10.0.0.5:9001", "users-2:9001", "[::1]:8080"};
    lb_service_spec_defaults(spec);
    spec->name = strdup("users");
    spec->targets = calloc(3, sizeof(*spec->targets));
    spec->ntargets = 3;
    for (int i = 0; i < 3; i++) {
        spec->targets[i].address = strdup(addrs[i]);
        spec->targets[i].weight = 1;
    }
}

static void test_round_trip(void)
{
    struct lb_service_spec spec;
    make_spec(&spec);
    char v[LB_STICKY_VALUE_MAX];
    for (int i = 0; i < 3; i++) {
        CHECK_INT(lb_sticky_encode(key, spec.targets[i].address, 2000, v, sizeof(v)), 0);
        CHECK_INT(strlen(v), LB_STICKY_VALUE_LEN);
        CHECK(strspn(v, alphabet) == strlen(v));
        int idx = -1;
        CHECK_INT(lb_sticky_decode(key, v, 1999, &spec, &idx), 0);
        CHECK_INT(idx, i);
    }
    /* The address itself is not in the value. */
    CHECK_INT(lb_sticky_encode(key, "10.0.0.5:9001", 2000, v, sizeof(v)), 0);
    CHECK(strstr(v, "10.0.0.5") == NULL);
    lb_service_spec_free(&spec);
}

static void test_tampered(void)
{
    struct lb_service_spec spec;
    make_spec(&spec);
    char v[LB_STICKY_VALUE_MAX], t[LB_STICKY_VALUE_MAX];
    int idx = 7;
    CHECK_INT(lb_sticky_encode(key, "users-2:9001", 2000, v, sizeof(v)), 0);
    for (size_t pos = 0; pos < LB_STICKY_VALUE_LEN; pos++) {
        for (size_t a = 0; a < sizeof(alphabet) - 1; a += 7) {
            memcpy(t, v, sizeof(v));
            if (t[pos] == alphabet[a])
                continue;
            t[pos] = alphabet[a];
            CHECK_INT(lb_sticky_decode(key, t, 1000, &spec, &idx), GV_EINVAL);
        }
    }
    CHECK_INT(idx, 7);
    /* Another key. */
    uint8_t other[LB_STICKY_KEY_LEN];
    memcpy(other, key, sizeof(other));
    other[31] ^= 1;
    CHECK_INT(lb_sticky_decode(other, v, 1000, &spec, &idx), GV_EINVAL);
    /* A later expiry signed for one target cannot be moved to another. */
    char w[LB_STICKY_VALUE_MAX];
    CHECK_INT(lb_sticky_encode(key, "10.0.0.5:9001", 2000, w, sizeof(w)), 0);
    memcpy(t, v, sizeof(v));
    memcpy(t + 12, w + 12, 12); /* splice the id of the other target */
    CHECK_INT(lb_sticky_decode(key, t, 1000, &spec, &idx), GV_EINVAL);
    CHECK_INT(idx, 7);
    lb_service_spec_free(&spec);
}

static void test_expired(void)
{
    struct lb_service_spec spec;
    make_spec(&spec);
    char v[LB_STICKY_VALUE_MAX];
    int idx = 7;
    CHECK_INT(lb_sticky_encode(key, "10.0.0.5:9001", 2000, v, sizeof(v)), 0);
    CHECK_INT(lb_sticky_decode(key, v, 1999, &spec, &idx), 0);
    CHECK_INT(idx, 0);
    idx = 7;
    CHECK_INT(lb_sticky_decode(key, v, 2000, &spec, &idx), GV_EINVAL);
    CHECK_INT(lb_sticky_decode(key, v, UINT64_MAX, &spec, &idx), GV_EINVAL);
    CHECK_INT(idx, 7);
    lb_service_spec_free(&spec);
}

static void test_unknown_target(void)
{
    struct lb_service_spec spec;
    make_spec(&spec);
    char v[LB_STICKY_VALUE_MAX];
    int idx = 7;
    CHECK_INT(lb_sticky_encode(key, "10.9.9.9:80", 2000, v, sizeof(v)), 0);
    CHECK_INT(lb_sticky_decode(key, v, 1000, &spec, &idx), GV_EINVAL);
    struct lb_service_spec none;
    lb_service_spec_defaults(&none);
    CHECK_INT(lb_sticky_decode(key, v, 1000, &none, &idx), GV_EINVAL);
    lb_service_spec_free(&none);
    CHECK_INT(idx, 7);
    lb_service_spec_free(&spec);
}

static void test_garbage(void)
{
    struct lb_service_spec spec;
    make_spec(&spec);
    char v[LB_STICKY_VALUE_MAX];
    int idx = 7;
    CHECK_INT(lb_sticky_encode(key, "10.0.0.5:9001", 2000, v, sizeof(v)), 0);
    CHECK_INT(lb_sticky_decode(key, "", 1000, &spec, &idx), GV_EINVAL);
    CHECK_INT(lb_sticky_decode(key, NULL, 1000, &spec, &idx), GV_EINVAL);
    CHECK_INT(lb_sticky_decode(key, "x", 1000, &spec, &idx), GV_EINVAL);
    CHECK_INT(lb_sticky_decode(key, "10.0.0.5:9001", 1000, &spec, &idx), GV_EINVAL);
    CHECK_INT(lb_sticky_decode(key, v, 1000, NULL, &idx), GV_EINVAL);

    /* One short, one long, padding, spaces, NUL inside. */
    char t[256];
    memcpy(t, v, LB_STICKY_VALUE_LEN - 1);
    t[LB_STICKY_VALUE_LEN - 1] = '\0';
    CHECK_INT(lb_sticky_decode(key, t, 1000, &spec, &idx), GV_EINVAL);
    snprintf(t, sizeof(t), "%sA", v);
    CHECK_INT(lb_sticky_decode(key, t, 1000, &spec, &idx), GV_EINVAL);
    snprintf(t, sizeof(t), "%s=", v);
    CHECK_INT(lb_sticky_decode(key, t, 1000, &spec, &idx), GV_EINVAL);
    snprintf(t, sizeof(t), " %s", v);
    CHECK_INT(lb_sticky_decode(key, t, 1000, &spec, &idx), GV_EINVAL);
    memcpy(t, v, sizeof(v));
    t[10] = '+'; /* standard base64, not url-safe */
    CHECK_INT(lb_sticky_decode(key, t, 1000, &spec, &idx), GV_EINVAL);

    /* Very long input: a megabyte of valid alphabet characters. */
    size_t big = 1 << 20;
    char *huge = malloc(big + 1);
    for (size_t i = 0; i < big; i++)
        huge[i] = alphabet[i % 64];
    huge[big] = '\0';
    CHECK_INT(lb_sticky_decode(key, huge, 1000, &spec, &idx), GV_EINVAL);
    free(huge);

    /* Exactly-sized buffer without anything after it: ASan checks we read
     * no further than the terminator. */
    char *exact = malloc(LB_STICKY_VALUE_LEN + 1);
    memcpy(exact, v, LB_STICKY_VALUE_LEN + 1);
    CHECK_INT(lb_sticky_decode(key, exact, 1000, &spec, &idx), 0);
    free(exact);
    char *shorter = malloc(4);
    memcpy(shorter, "abc", 4);
    CHECK_INT(lb_sticky_decode(key, shorter, 1000, &spec, &idx), GV_EINVAL);
    free(shorter);

    /* Random values of the right length and alphabet. */
    idx = 7;
    for (int k = 0; k < 20000; k++) {
        for (int i = 0; i < LB_STICKY_VALUE_LEN; i++)
            t[i] = alphabet[gv_rand64() % 64];
        t[LB_STICKY_VALUE_LEN] = '\0';
        CHECK_INT(lb_sticky_decode(key, t, 1000, &spec, &idx), GV_EINVAL);
    }
    /* Random bytes of random length. */
    for (int k = 0; k < 20000; k++) {
        size_t len = gv_rand64() % 100;
        for (size_t i = 0; i < len; i++)
            t[i] = (char)(1 + gv_rand64() % 255);
        t[len] = '\0';
        CHECK_INT(lb_sticky_decode(key, t, 1000, &spec, &idx), GV_EINVAL);
    }
    CHECK_INT(idx, 7);
    lb_service_spec_free(&spec);
}

static void test_encode_errors(void)
{
    char v[LB_STICKY_VALUE_MAX];
    memset(v, 'z', sizeof(v));
    CHECK_INT(lb_sticky_encode(key, "a:1", 10, v, LB_STICKY_VALUE_LEN), GV_ERANGE);
    CHECK_INT(lb_sticky_encode(key, "", 10, v, sizeof(v)), GV_EINVAL);
    CHECK_INT(lb_sticky_encode(key, NULL, 10, v, sizeof(v)), GV_EINVAL);
    char *long_addr = malloc(4096);
    memset(long_addr, 'h', 4095);
    long_addr[4095] = '\0';
    CHECK_INT(lb_sticky_encode(key, long_addr, 10, v, sizeof(v)), GV_EINVAL);
    free(long_addr);
    CHECK(v[0] == 'z' && v[LB_STICKY_VALUE_LEN] == 'z');
}

TEST_MAIN(TEST(test_round_trip), TEST(test_tampered), TEST(test_expired), TEST(test_unknown_target),
          TEST(test_garbage), TEST(test_encode_errors))
