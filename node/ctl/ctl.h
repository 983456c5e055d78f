/* ctl.h - `grapevine ctl`: a command-line client of a node's admin API.
 *
 * A library of its own (gv_node_ctl) that links only common/: it talks to a
 * node over HTTP like any client and shares no code with the daemon. */
#ifndef GV_NODE_CTL_H
#define GV_NODE_CTL_H

/* argv[0] is "ctl". Returns the process exit code: 0 ok, 1 the node answered
 * with an error or could not be reached, 2 usage. */
int node_ctl_main(int argc, char **argv);

#endif
