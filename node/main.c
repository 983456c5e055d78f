/* main.c - the grapevine binary: dispatches to the subcommands. */
#include "node/cli.h"

int main(int argc, char **argv)
{
    return node_cli_main(argc, argv);
}
