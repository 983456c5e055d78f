/* echo.h - `grapevine echo`: the demo and test upstream, a small HTTP/1.x
 * server that describes every request back to its client as JSON. A library
 * of its own (gv_node_echo): it shares nothing with the daemon but the
 * gateway's TLS engine.
 *
 * Usage: grapevine echo [--listen ADDR:PORT] [--name NAME] [--tls-cert PEM --tls-key PEM]
 *   --listen  where to listen; default 127.0.0.1:9001 (loopback, like the
 *             admin API; containers pass 0.0.0.0:9001). Port 0 lets the kernel
 *             pick a port, and the start-up line shows which.
 *   --name    reported as "name" in every answer and in the X-Echo-Name
 *             response header; default "echo".
 *   --tls-cert, --tls-key  serve TLS (1.2+, ALPN http/1.1) with this chain and
 *             key instead of plain TCP; GET /stats then adds "tls_handshakes"
 *             and "tls_resumed" (full and resumed handshakes since start).
 * At start it logs "echo NAME listening on ADDR:PORT" (stderr). SIGTERM or
 * SIGINT closes every connection and returns 0.
 *
 * Endpoints (SPEC):
 *   any request       200 {"name","method","path","query","headers":{...},
 *                     "body_bytes":N}. Header names are lower-case; repeated
 *                     headers are joined with ", "; query is the raw text
 *                     after '?' ("" when none). The body is counted as it
 *                     streams in and never stored, chunked or not.
 *   GET /healthz      200 {"status":"ok"}, or 503 {"status":"failing"} between
 *                     POST /fail and POST /recover (both answer the usual
 *                     echo JSON).
 * Extensions for tests:
 *   /bytes/N          200 with N bytes of application/octet-stream (the
 *                     letters a..z repeated, so a client can check them), sent with
 *                     Content-Length, or chunked when the query has
 *                     "chunked=1" (to an HTTP/1.0 client the close ends it
 *                     instead). Streamed 64 KiB at a time, each piece written
 *                     only after the previous one left, so any N keeps
 *                     memory flat.
 *   /delay/MS         the echo JSON after MS milliseconds (at most 600000).
 *   /status/CODE      the echo JSON with status CODE (200-599; 204 and 304
 *                     carry no body).
 *   GET /stats        200 {"name","healthz":N,"requests":N}: the GET/HEAD
 *                     /healthz hits (health probes) and the other requests
 *                     answered since start (not counting /stats itself).
 *   GET /ws           with "Upgrade: websocket" (RFC 6455, version 13): a
 *                     WebSocket that echoes every data frame back unmasked
 *                     with the same opcode, FIN bit and payload, answers ping
 *                     with pong and a close frame with the same close frame.
 *                     Frames over 16 MiB close the socket with 1009.
 *   Any method works on the extension paths; HEAD gets no body.
 *
 * Connections are common/httpd.h's: keep-alive and pipelining (answers in
 * request order), HTTP/1.0 closes unless it asked for keep-alive,
 * "Expect: 100-continue" is honoured. A request head (request line, headers
 * and trailers) over 64 KiB gets 431 and a parse error gets 400; both close
 * the connection. No timeouts and no connection cap: a test upstream waits
 * for whatever its clients do.
 *
 * Threads: everything runs on one private libuv loop on the calling thread.
 */
#ifndef GV_NODE_ECHO_H
#define GV_NODE_ECHO_H

/* Runs the echo server until SIGTERM/SIGINT. argv[0] is "echo". Returns the
 * process exit status: 0 after a signal, 1 when it cannot listen, 2 on bad
 * usage (with a message on stderr). */
int node_echo_main(int argc, char **argv);

#endif
