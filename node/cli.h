/* cli.h - the command line: grapevine run | validate | echo | ctl | version. */
#ifndef GV_NODE_CLI_H
#define GV_NODE_CLI_H

/* Parses argv and runs the subcommand; returns the process exit code
 * (0 ok, 1 runtime failure, 2 usage or config error). */
int node_cli_main(int argc, char **argv);

#endif
