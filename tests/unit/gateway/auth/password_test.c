/* password_test.c - password hashes (stored form, determinism, checks)
 * and the sorted credential index auth plugins look values up in. */
#include "gateway/auth/cred_index.h"
#include "gateway/auth/password.h"
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

static void test_cred_index(void)
{
    struct gw_cred_index *ix = gw_cred_index_new();
    struct gv_schema_error err;
    int pw = 42;
    CHECK(ix != NULL && ix->gen != 0);
    CHECK_INT(gw_cred_index_add(ix, "key-abc", "alice", NULL, 0, 0), 0);
    CHECK_INT(gw_cred_index_add(ix, "key-b", "bob", &pw, 1, 0), 0);
    CHECK_INT(gw_cred_index_add(ix, "key-abd", "bob", NULL, 1, 1), 0);
    CHECK_INT(gw_cred_index_add(ix, "key-b", "bob", &pw, 1, 2), 0); /* twice, same consumer */
    CHECK_INT(gw_cred_index_seal(ix, "key_auth", "key", false, &err), 0);
    CHECK_INT(ix->n, 3);
    const struct gw_cred *k = gw_cred_index_find(ix, "key-abc", 7);
    CHECK(k != NULL && strcmp(k->consumer, "alice") == 0);
    k = gw_cred_index_find(ix, "key-b", 5);
    CHECK(k != NULL && k->data == &pw);
    CHECK(gw_cred_index_find(ix, "key-ab", 6) == NULL);
    CHECK(gw_cred_index_find(ix, "key-abcd", 8) == NULL);
    CHECK(gw_cred_index_find(ix, "key-abc", 6) == NULL); /* a prefix is not the key */
    gw_cred_index_free(ix);

    /* a key two consumers claim: the later one is refused, the key not shown */
    ix = gw_cred_index_new();
    CHECK_INT(gw_cred_index_add(ix, "k", "b", NULL, 1, 3), 0);
    CHECK_INT(gw_cred_index_add(ix, "k", "a", NULL, 0, 0), 0);
    CHECK_INT(gw_cred_index_seal(ix, "key_auth", "key", false, &err), GV_EINVAL);
    CHECK_STR(err.path, "consumers[1].key_auth[3]");
    CHECK_STR(err.msg, "key also belongs to consumer \"a\"");
    gw_cred_index_free(ix);
}

TEST_MAIN(TEST(test_hash_round_trip), TEST(test_parse_refusals), TEST(test_cred_index))
