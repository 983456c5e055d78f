/* ctl_test.c - `grapevine ctl` without a node: usage and exit codes, how
 * kinds and names become admin API paths, and files refused before anything
 * is sent. Linked against gv_node_ctl alone, so ctl reaching into the
 * daemon's code is a link error here. */
#include "common/buf.h"
#include "node/ctl/ctl.h"
#include "node/ctl/ctl_int.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int run(int argc, char **argv)
{
    fflush(stdout);
    return node_ctl_main(argc, argv);
}

static void test_usage(void)
{
    char *none[] = {"ctl", NULL};
    CHECK_INT(run(1, none), 2);
    char *unknown[] = {"ctl", "frobnicate", NULL};
    CHECK_INT(run(2, unknown), 2);
    char *help[] = {"ctl", "--help", NULL};
    CHECK_INT(run(2, help), 0);
    char *apply_two[] = {"ctl", "apply", "a.yaml", "b.yaml", NULL};
    CHECK_INT(run(4, apply_two), 2);
}

static void test_paths(void)
{
    struct gv_buf b;
    gv_buf_init(&b);
    CHECK_STR(ctl_kind_arg("route"), "routes");
    CHECK_STR(ctl_kind_arg("plugins"), "plugins");
    CHECK_STR(ctl_kind_arg("widgets"), "widgets"); /* for the node to refuse */
    ctl_object_path(&b, "routes", "a/b c%");
    CHECK_STR(b.data, "/config/routes/a%2Fb%20c%25");
    ctl_object_path(&b, "services", NULL);
    CHECK_STR(b.data, "/config/services");
    ctl_object_path(&b, "consumers", "caf\xc3\xa9-1_2.3~");
    CHECK_STR(b.data, "/config/consumers/caf%C3%A9-1_2.3~");
    gv_buf_free(&b);
}

/* Files that cannot be applied are refused before any request: the admin
 * address points nowhere, so reaching it would fail differently. */
static void test_bad_files(void)
{
    char path[] = "/tmp/gv_ctl_test_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    static const char *const bad[] = {
        "routes: [\n", "services: {a: 1}\n",
        "- a\n",       "kind: widget\nname: x\n",
        "nope: []\n",  "services:\n  - {targets: []}\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        FILE *f = fopen(path, "w");
        fputs(bad[i], f);
        fclose(f);
        char *argv[] = {"ctl", "--admin", "127.0.0.1:1", "apply", "-f", path, NULL};
        CHECK_INT(run(6, argv), 1);
    }
    char *missing[] = {"ctl", "--admin", "127.0.0.1:1", "apply", "/nonexistent/x.yaml", NULL};
    CHECK_INT(run(5, missing), 1);
    close(fd);
    unlink(path);
}

TEST_MAIN(TEST(test_usage), TEST(test_paths), TEST(test_bad_files))
