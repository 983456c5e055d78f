/* cli.c - command-line parsing and subcommand dispatch. */
#include "node/cli.h"
#include "node/config.h"
#include "node/docs.h"
#include "node/ctl/ctl.h"
#include "node/echo/echo.h"
#include "node/node.h"
#include "common/err.h"
#include "common/schema.h"
#include "node/config/settings.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALIDATE_MAX_ERRORS 50

static void usage(FILE *f)
{
    fprintf(
        f, "usage: grapevine run [-c FILE] [--name NAME] [--listen ADDR:PORT] [--admin ADDR:PORT]\n"
           "                     [--gossip ADDR:PORT] [--advertise HOST:PORT]\n"
           "                     [--join HOST:PORT[,HOST:PORT...]] [--workers N|auto]\n"
           "                     [--data-dir DIR] [--log-level debug|info|warn|error]\n"
           "       grapevine validate -c FILE   (every error in a config file)\n"
           "       grapevine echo [--listen ADDR:PORT] [--name NAME]\n"
           "       grapevine ctl [--admin HOST:PORT] [--token T] status [--watch] | members\n"
           "                     | backends | get [KIND [NAME]] | apply [-f] FILE\n"
           "                     | delete KIND NAME | keys ...   (grapevine ctl --help)\n"
           "       grapevine docs config      (the configuration reference, markdown)\n"
           "       grapevine docs openapi     (the admin API's OpenAPI 3.1 description)\n"
           "       grapevine version\n"
           "Every run flag may also come from GRAPEVINE_<FLAG> (GRAPEVINE_JOIN, ...);\n"
           "flags beat the environment, which beats the config file.\n"
           "COMMAND --help describes a command: its flags and their defaults.\n");
}

/* run's flags: each sets the node: setting of the same name; its text and
 * default come from the settings table, so --help cannot drift from it. */
static const struct {
    const char *flag, *arg, *setting;
} run_flags[] = {
    {"name", "NAME", "name"},
    {"listen", "ADDR:PORT", "listen"},
    {"admin", "ADDR:PORT", "admin"},
    {"gossip", "ADDR:PORT", "gossip"},
    {"advertise", "HOST:PORT", "advertise"},
    {"join", "HOST:PORT[,...]", "join"},
    {"workers", "N|auto", "workers"},
    {"data-dir", "DIR", "data_dir"},
    {"log-level", "debug|info|warn|error", "log_level"},
};

static const struct gv_field *setting(const char *name)
{
    for (size_t i = 0; i < node_settings_schema.nfields; i++)
        if (strcmp(node_settings_schema.fields[i].name, name) == 0)
            return &node_settings_schema.fields[i];
    return NULL;
}

static void run_usage(FILE *f)
{
    fprintf(f, "usage: grapevine run [-c FILE] [FLAGS]\n"
               "Runs a node: the proxy, the admin API (and dashboard) and its seat in the\n"
               "cluster. Each setting comes from its flag, else GRAPEVINE_<FLAG> in the\n"
               "environment (GRAPEVINE_DATA_DIR...), else the config file's node: section,\n"
               "else its default. Every node: setting: grapevine docs config.\n\n"
               "  -c, --config FILE\n          the config file: node: settings and the objects "
               "(services,\n          routes...) it seeds the cluster with\n");
    for (size_t i = 0; i < sizeof(run_flags) / sizeof(run_flags[0]); i++) {
        const struct gv_field *fl = setting(run_flags[i].setting);
        char opt[48];
        snprintf(opt, sizeof(opt), "--%s %s", run_flags[i].flag, run_flags[i].arg);
        fprintf(f, "      %s\n          %s", opt, fl && fl->doc ? fl->doc : "");
        if (fl != NULL && fl->def.s != NULL)
            fprintf(f, " (default %s)", fl->def.s);
        fprintf(f, "\n");
    }
    fprintf(f, "  -h, --help\n          this text\n");
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
            run_usage(stdout);
            return 0;
        default:
            fprintf(stderr, "grapevine run --help lists the flags\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "grapevine run: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    return node_run(&o);
}

static void print_error(void *arg, const char *msg)
{
    (void)arg;
    fprintf(stderr, "%s\n", msg);
}

static void validate_usage(FILE *f)
{
    fprintf(f,
            "usage: grapevine validate -c FILE\n"
            "Checks a config file as `grapevine run` would load it, without starting\n"
            "anything, and lists every error found (\"FILE:LINE: path: message\"; an\n"
            "element in error is set aside and the rest checked again, at most %d).\n"
            "  -c, --config FILE   the file to check (required)\n"
            "  -h, --help          this text\n"
            "Exit status: 0 valid, 2 errors or bad usage.\n",
            VALIDATE_MAX_ERRORS);
}

static int cmd_validate(int argc, char **argv)
{
    const char *file = NULL;
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        if (ch == 'h') {
            validate_usage(stdout);
            return 0;
        }
        if (ch != 'c') {
            validate_usage(stderr);
            return 2;
        }
        file = optarg;
    }
    if (file == NULL) {
        fprintf(stderr, "grapevine validate: -c FILE is required\n");
        validate_usage(stderr);
        return 2;
    }
    int errors = node_config_check_file(file, print_error, NULL, VALIDATE_MAX_ERRORS);
    if (errors > 0) {
        fprintf(stderr, "%s: %d error%s\n", file, errors, errors == 1 ? "" : "s");
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
