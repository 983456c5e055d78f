/* basic_auth_test.c - password hashes (stored form, determinism, checks)
 * and the consumer table's credential lookups. */
#include "gateway/auth.h"
#include "common/err.h"
#include "test.h"

#include <string.h>

static void test_hash_round_trip(void)
{
    char a[GW_PASSWORD_MAX + 1], b[GW_PASSWORD_MAX + 1], c[GW_PASSWORD_MAX + 1];
    struct gw_password pw;
    CHECK_INT(gw_password_hash("wonderland", "alice\nalice", a, sizeof(a)), 0);
    CHECK_INT(gw_password_hash("wonderland", "alice\nalice", b, sizeof(b)), 0);
    CHECK_INT(gw_password_hash("wonderland", "bob\nalice", c, sizeof(c)), 0);
    CHECK_STR(a, b);          /* same seed and password: same stored form on every node */
    CHECK(strcmp(a, c) != 0); /* another seed: another salt */
    CHECK(strncmp(a, "pbkdf2-sha256$10000$", 20) == 0);
    CHECK(strstr(a, "wonderland") == NULL);
    CHECK_INT(gw_password_parse(a, &pw), 0);
    CHECK_INT(pw.iterations, 10000);
    CHECK_INT(pw.salt_len, 16);
    CHECK(gw_password_check(&pw, "wonderland", 10));
    CHECK(!gw_password_check(&pw, "wonderlanD", 10));
    CHECK(!gw_password_check(&pw, "wonderland", 9));
    CHECK(!gw_password_check(&pw, "", 0));
    char small[40];
    CHECK_INT(gw_password_hash("x", "s", small, sizeof(small)), GV_ERANGE);
}

static void test_parse_refusals(void)
{
    struct gw_password pw = {.iterations = 7};
    static const char *const bad[] = {
        "",
        "md5$abc",
        "pbkdf2-sha256$",
        "pbkdf2-sha256$10000$$",
        "pbkdf2-sha256$999$c2FsdHNhbHRzYWx0$" /* too few iterations */,
        "pbkdf2-sha256$x$c2FsdHNhbHRzYWx0$AAAA",
        "pbkdf2-sha256$10000$c2FsdA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" /* 4-byte salt
                                                                                     */
        ,
        "pbkdf2-sha256$10000$c2FsdHNhbHRzYWx0$AAAA" /* 3-byte hash */,
        "pbkdf2-sha256$10000$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=$x",
        "pbkdf2-sha256$10000$!!!!$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (gw_password_parse(bad[i], &pw) != GV_EINVAL)
            fprintf(stderr, "accepted: %s\n", bad[i]);
        CHECK_INT(gw_password_parse(bad[i], &pw), GV_EINVAL);
        CHECK_INT(pw.iterations, 7); /* unchanged */
    }
    CHECK_INT(gw_password_parse("pbkdf2-sha256$10000$c2FsdHNhbHRzYWx0$"
                                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                                &pw),
              0);
}

static void test_consumer_lookups(void)
{
    struct gw_consumers *c = gw_consumers_new();
    char stored[GW_PASSWORD_MAX + 1];
    uint32_t alice, bob;
    CHECK(c != NULL);
    CHECK_INT(gw_consumers_add(c, "alice", &alice), 0);
    CHECK_INT(gw_consumers_add(c, "bob", &bob), 0);
    CHECK_INT(gw_consumers_add_key(c, alice, "key-abc"), 0);
    CHECK_INT(gw_consumers_add_key(c, bob, "key-b"), 0);
    CHECK_INT(gw_consumers_add_key(c, bob, "key-abd"), 0);
    CHECK_INT(gw_password_hash("pw", "seed", stored, sizeof(stored)), 0);
    CHECK_INT(gw_consumers_add_user(c, bob, "bob", stored), 0);
    CHECK_INT(gw_consumers_add_user(c, bob, "eve", "not a hash"), GV_EINVAL);
    gw_consumers_seal(c);
    const struct gw_cred *k = gw_consumers_by_key(c, "key-abc", 7);
    CHECK(k != NULL && k->consumer == alice);
    k = gw_consumers_by_key(c, "key-abd", 7);
    CHECK(k != NULL && k->consumer == bob);
    CHECK(gw_consumers_by_key(c, "key-ab", 6) == NULL);
    CHECK(gw_consumers_by_key(c, "key-abcd", 8) == NULL);
    CHECK(gw_consumers_by_key(c, "key-abc", 6) == NULL); /* a prefix is not the key */
    const struct gw_cred *u = gw_consumers_by_user(c, "bob", 3);
    CHECK(u != NULL && u->consumer == bob && gw_password_check(&u->pw, "pw", 2));
    CHECK(gw_consumers_by_user(c, "eve", 3) == NULL);
    CHECK(c->jwt.gen != 0 && c->users_gen != 0 && c->jwt.gen != c->users_gen);
    gw_consumers_free(c);
}

TEST_MAIN(TEST(test_hash_round_trip), TEST(test_parse_refusals), TEST(test_consumer_lookups))
