/* cli.c - command-line parsing and subcommand dispatch. */
#include "node/cli.h"
#include "node/config.h"
#include "node/docs.h"
#include "node/ctl/ctl.h"
#include "node/echo/echo.h"
#include "node/node.h"
#include "common/err.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(
        f, "usage: grapevine run [-c FILE] [--name NAME] [--listen ADDR:PORT] [--admin ADDR:PORT]\n"
           "                     [--gossip ADDR:PORT] [--advertise HOST:PORT]\n"
           "                     [--join HOST:PORT[,HOST:PORT...]] [--workers N|auto]\n"
           "                     [--data-dir DIR] [--log-level debug|info|warn|error]\n"
           "       grapevine validate -c FILE\n"
           "       grapevine echo [--listen ADDR:PORT] [--name NAME]\n"
           "       grapevine ctl [--admin HOST:PORT] [--token T] status [--watch] | members\n"
           "                     | backends | get [KIND [NAME]] | apply [-f] FILE\n"
           "                     | delete KIND NAME | keys ...   (grapevine ctl --help)\n"
           "       grapevine docs config      (the configuration reference, markdown)\n"
           "       grapevine docs openapi     (the admin API's OpenAPI 3.1 description)\n"
           "       grapevine version\n"
           "Every run flag may also come from GRAPEVINE_<FLAG> (GRAPEVINE_JOIN, ...);\n"
           "flags beat the environment, which beats the config file.\n");
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return (v != NULL && *v != '\0') ? v : NULL;
}

static int cmd_run(int argc, char **argv)
{
    struct node_run_opts o = {
        .config = env("GRAPEVINE_CONFIG"),
        .name = env("GRAPEVINE_NAME"),
        .listen = env("GRAPEVINE_LISTEN"),
        .admin = env("GRAPEVINE_ADMIN"),
        .gossip = env("GRAPEVINE_GOSSIP"),
        .advertise = env("GRAPEVINE_ADVERTISE"),
        .join = env("GRAPEVINE_JOIN"),
        .workers = env("GRAPEVINE_WORKERS"),
        .data_dir = env("GRAPEVINE_DATA_DIR"),
        .log_level = env("GRAPEVINE_LOG_LEVEL"),
    };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},   {"name", required_argument, NULL, 'n'},
        {"listen", required_argument, NULL, 'l'},   {"admin", required_argument, NULL, 'a'},
        {"gossip", required_argument, NULL, 'g'},   {"advertise", required_argument, NULL, 'A'},
        {"join", required_argument, NULL, 'j'},     {"workers", required_argument, NULL, 'w'},
        {"data-dir", required_argument, NULL, 'd'}, {"log-level", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            o.config = optarg;
            break;
        case 'n':
            o.name = optarg;
            break;
        case 'l':
            o.listen = optarg;
            break;
        case 'a':
            o.admin = optarg;
            break;
        case 'g':
            o.gossip = optarg;
            break;
        case 'A':
            o.advertise = optarg;
            break;
        case 'j':
            o.join = optarg;
            break;
        case 'w':
            o.workers = optarg;
            break;
        case 'd':
            o.data_dir = optarg;
            break;
        case 'L':
            o.log_level = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "grapevine run: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    return node_run(&o);
}

static int cmd_validate(int argc, char **argv)
{
    const char *file = NULL;
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {NULL, 0, NULL, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
        if (ch != 'c') {
            usage(stderr);
            return 2;
        }
        file = optarg;
    }
    if (file == NULL) {
        fprintf(stderr, "grapevine validate: -c FILE is required\n");
        return 2;
    }
    struct node_config cfg;
    struct node_config_error err;
    if (node_config_load_file(file, &cfg, &err) != 0) {
        fprintf(stderr, "%s\n", err.text);
        return 2;
    }
    printf("%s: ok (%zu services, %zu routes)\n", file, cfg.state.nservices, cfg.state.nroutes);
    node_config_free(&cfg);
    return 0;
}

int node_cli_main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "validate") == 0)
        return cmd_validate(argc - 1, argv + 1);
    if (strcmp(cmd, "echo") == 0)
        return node_echo_main(argc - 1, argv + 1);
    if (strcmp(cmd, "ctl") == 0)
        return node_ctl_main(argc - 1, argv + 1);
    if (strcmp(cmd, "docs") == 0) {
        if (argc == 3 && strcmp(argv[2], "config") == 0)
            return node_docs_config(stdout) == 0 ? 0 : 1;
        if (argc == 3 && strcmp(argv[2], "openapi") == 0)
            return node_docs_openapi_write(stdout) == 0 ? 0 : 1;
        fprintf(stderr, "usage: grapevine docs config    (the configuration reference)\n"
                        "       grapevine docs openapi   (the admin API, OpenAPI 3.1 JSON)\n");
        return 2;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("grapevine %s\n", GV_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "grapevine: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 2;
}
