/* echo_test.c - `grapevine echo`'s command line: what it refuses before it
 * listens, with exit code 2. Linked against gv_node_echo alone, so echo
 * reaching into the daemon's code is a link error here. */
#include "node/echo/echo.h"
#include "test.h"

static void test_usage(void)
{
    char *help[] = {"echo", "--help", NULL};
    CHECK_INT(node_echo_main(2, help), 0);
    char *unknown[] = {"echo", "--frob", NULL};
    CHECK_INT(node_echo_main(2, unknown), 2);
    char *no_value[] = {"echo", "--listen", NULL};
    CHECK_INT(node_echo_main(2, no_value), 2);
    char *bad_listen[] = {"echo", "--listen=nowhere", NULL};
    CHECK_INT(node_echo_main(2, bad_listen), 2);
    char *empty_name[] = {"echo", "--name", "", NULL};
    CHECK_INT(node_echo_main(3, empty_name), 2);
    char *half_tls[] = {"echo", "--listen", "127.0.0.1:0", "--tls-cert", "c.pem", NULL};
    CHECK_INT(node_echo_main(5, half_tls), 2);
    char *missing_pem[] = {"echo",         "--listen",  "127.0.0.1:0",  "--tls-cert",
                           "/nonexistent", "--tls-key", "/nonexistent", NULL};
    CHECK_INT(node_echo_main(7, missing_pem), 2);
}

TEST_MAIN(TEST(test_usage))
