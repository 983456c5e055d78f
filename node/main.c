/* main.c - the grapevine binary: dispatches to the subcommands. */
#include "common/crash.h"
#include "node/cli.h"

int main(int argc, char **argv)
{
    gv_crash_report_install("grapevine");
    return node_cli_main(argc, argv);
}
