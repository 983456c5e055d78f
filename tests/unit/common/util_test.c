/* util_test.c - durations, host:port splitting, hashing. */
#include "common/err.h"
#include "common/util.h"
#include "test.h"

#include <string.h>

static void test_duration(void)
{
    uint64_t ms = 7;
    CHECK_INT(gv_parse_duration("250ms", &ms), 0);
    CHECK_INT(ms, 250);
    CHECK_INT(gv_parse_duration("2s", &ms), 0);
    CHECK_INT(ms, 2000);
    CHECK_INT(gv_parse_duration("1m", &ms), 0);
    CHECK_INT(ms, 60000);
    CHECK_INT(gv_parse_duration("1h", &ms), 0);
    CHECK_INT(ms, 3600000);
    CHECK_INT(gv_parse_duration("3", &ms), 0);
    CHECK_INT(ms, 3000);
    ms = 7;
    CHECK_INT(gv_parse_duration("2x", &ms), GV_EINVAL);
    CHECK_INT(gv_parse_duration("-1s", &ms), GV_EINVAL);
    CHECK_INT(gv_parse_duration("", &ms), GV_EINVAL);
    CHECK_INT(gv_parse_duration("99999999999999999999s", &ms), GV_EINVAL);
    CHECK_INT(ms, 7);
}

static void test_hostport(void)
{
    char host[64];
    uint16_t port = 0;
    CHECK_INT(gv_split_hostport("10.0.0.5:9001", host, sizeof(host), &port), 0);
    CHECK_STR(host, "10.0.0.5");
    CHECK_INT(port, 9001);
    CHECK_INT(gv_split_hostport("users-2:80", host, sizeof(host), &port), 0);
    CHECK_STR(host, "users-2");
    CHECK_INT(gv_split_hostport("[::1]:8080", host, sizeof(host), &port), 0);
    CHECK_STR(host, "::1");
    CHECK_INT(port, 8080);
    CHECK_INT(gv_split_hostport("nohost", host, sizeof(host), &port), GV_EINVAL);
    CHECK_INT(gv_split_hostport(":80", host, sizeof(host), &port), GV_EINVAL);
    CHECK_INT(gv_split_hostport("a:0", host, sizeof(host), &port), GV_EINVAL);
    CHECK_INT(gv_split_hostport("a:65536", host, sizeof(host), &port), GV_EINVAL);
    CHECK_INT(gv_split_hostport("a:8x", host, sizeof(host), &port), GV_EINVAL);
    CHECK_INT(gv_split_hostport("::1:80", host, sizeof(host), &port), GV_EINVAL);
}

static void test_hash(void)
{
    CHECK(gv_hash64("abc", 3, 0) == gv_hash64("abc", 3, 0));
    CHECK(gv_hash64("abc", 3, 0) != gv_hash64("abd", 3, 0));
    CHECK(gv_hash64("abc", 3, 0) != gv_hash64("abc", 3, 1));
}

static void test_decoders(void)
{
    char out[16];
    CHECK_INT(gv_percent_decode("a%20b+c", 7, out, sizeof(out), true), 5);
    CHECK(memcmp(out, "a b c", 5) == 0);
    CHECK_INT(gv_percent_decode("a%20b+c", 7, out, sizeof(out), false), 5);
    CHECK(memcmp(out, "a b+c", 5) == 0);
    CHECK_INT(gv_percent_decode("%2F%2f", 6, out, sizeof(out), false), 2);
    CHECK(memcmp(out, "//", 2) == 0);
    CHECK_INT(gv_percent_decode("%00", 3, out, sizeof(out), false), -1); /* encoded NUL */
    CHECK_INT(gv_percent_decode("%2", 2, out, sizeof(out), false), -1);  /* cut short */
    CHECK_INT(gv_percent_decode("%zz", 3, out, sizeof(out), false), -1);
    CHECK_INT(gv_percent_decode("%41%4", 4, out, sizeof(out), false), -1); /* len ends the escape */
    CHECK_INT(gv_percent_decode("abcd", 4, out, 3, false), -1);            /* too small */
    CHECK_INT(gv_percent_decode("", 0, out, 0, false), 0);
    CHECK_INT(gv_hexval('f'), 15);
    CHECK_INT(gv_hexval('G'), -1);
    CHECK_INT(gv_b64url_value('-'), 62);
    CHECK_INT(gv_b64url_value('_'), 63);
    CHECK_INT(gv_b64url_value('+'), -1);
    CHECK_INT(gv_b64url_value(0xff), -1);
    char hex[17] = {0};
    gv_hex64(0x0123456789abcdefULL, hex);
    CHECK_STR(hex, "0123456789abcdef");
}

static void test_base64(void)
{
    uint8_t out[64];
    CHECK_INT(gv_base64_decode("aGVsbG8=", 8, out, sizeof(out), false), 5);
    CHECK(memcmp(out, "hello", 5) == 0);
    CHECK_INT(gv_base64_decode("aGVsbG8h", 8, out, sizeof(out), false), 6);
    CHECK_INT(gv_base64_decode("aGVsbG8", 7, out, sizeof(out), false), -1);  /* no padding */
    CHECK_INT(gv_base64_decode("aGVsbG9=", 8, out, sizeof(out), false), -1); /* bits set */
    CHECK_INT(gv_base64_decode("aGV=bG8=", 8, out, sizeof(out), false), -1); /* '=' inside */
    CHECK_INT(gv_base64_decode("a-_A", 4, out, sizeof(out), false), -1);     /* url chars */
    CHECK_INT(gv_base64_decode("+/+/", 4, out, sizeof(out), false), 3);
    CHECK_INT(gv_base64_decode("-_-_", 4, out, sizeof(out), true), 3);
    CHECK_INT(gv_base64_decode("aGVsbG8", 7, out, sizeof(out), true), 5);
    CHECK_INT(gv_base64_decode("aGVsbG8=", 8, out, sizeof(out), true), -1); /* no '=' in url */
    CHECK_INT(gv_base64_decode("a", 1, out, sizeof(out), true), -1);
    CHECK_INT(gv_base64_decode("aGVsbG8h", 8, out, 5, false), -1); /* too small */
    CHECK_INT(gv_base64_decode("", 0, out, sizeof(out), false), 0);
    char enc[16];
    CHECK_INT(gv_base64_encode("hello", 5, enc, false), 8);
    CHECK_STR(enc, "aGVsbG8=");
    CHECK_INT(gv_base64_encode("\xfb\xff", 2, enc, true), 3);
    CHECK_STR(enc, "-_8");
    CHECK_INT(gv_base64_encode("", 0, enc, false), 0);
}

TEST_MAIN(TEST(test_base64), TEST(test_duration), TEST(test_hostport), TEST(test_hash),
          TEST(test_decoders))
