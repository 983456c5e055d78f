/* echo_int.h - what echo.c (the server and its endpoints) and ws.c (its
 * WebSocket) share. Internal to node/echo/; one loop thread. */
#ifndef GV_NODE_ECHO_INT_H
#define GV_NODE_ECHO_INT_H

#include "common/httpd.h"

/* Answers a request for /ws that asked to upgrade: 0 once it is upgraded
 * (or its connection is gone), else the status to answer with (400 for a bad
 * handshake, 500). */
int echo_ws_accept(struct gv_httpd_req *r);

#endif
