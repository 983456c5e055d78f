/* gossip_send.c - build/gossip-send: sends one gossip message a well-behaved
 * node would never send, for scenario tests of what a hostile peer (or a
 * fuzzer holding the key) can do.
 *
 *   gossip-send [--key FILE] TARGET FROM_NAME FROM_ADDR
 *
 * sends a PING from member FROM_NAME at FROM_ADDR (both as given, control
 * characters included: "\xNN" escapes are decoded) to the node whose gossip
 * listens on TARGET, sealed with the key in FILE when given, and exits 0 once
 * nng has taken it. The encoder does not judge names; the receiver must. */
#include "cluster/nng_transport.h"
#include "cluster/seal.h"
#include "cluster/wire.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define WAIT_MS 300 /* lets nng dial and hand the message over before we stop */

/* Decodes "\xNN" escapes in place. */
static void unescape(char *s)
{
    char *out = s;
    while (*s != '\0') {
        unsigned v;
        if (s[0] == '\\' && s[1] == 'x' && sscanf(s + 2, "%2x", &v) == 1) {
            *out++ = (char)v;
            s += 4;
        } else {
            *out++ = *s++;
        }
    }
    *out = '\0';
}

static void on_receive(void *arg, const uint8_t *data, size_t len)
{
    (void)arg, (void)data, (void)len;
}

static void on_timer(uv_timer_t *t)
{
    cl_nng_transport_stop(t->data, NULL, NULL);
    uv_close((uv_handle_t *)t, NULL);
}

static int send_ping(uv_loop_t *loop, struct cl_keyring *kr, const char *target, const char *from,
                     const char *from_addr)
{
    static uint8_t buf[CL_MAX_MESSAGE];
    struct cl_nng_transport *t;
    size_t len;
    struct cl_wire_msg msg = {.type = CL_MSG_PING,
                              .from = cl_bytes_str(from),
                              .from_addr = cl_bytes_str(from_addr),
                              .target = cl_bytes_str("anyone")};
    if (cl_wire_encode(&msg, NULL, 0, 0, buf, sizeof(buf), &len) != 0 ||
        cl_nng_transport_start(loop, "127.0.0.1:0", kr, on_receive, NULL, &t) != 0)
        return 1;
    int rv = cl_nng_transport_send(t, target, buf, len);
    uv_timer_t timer;
    uv_timer_init(loop, &timer);
    timer.data = t;
    uv_timer_start(&timer, on_timer, WAIT_MS, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    return rv == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct cl_keyring *kr = NULL;
    uint8_t key[CL_KEY_LEN];
    char err[256];
    int i = 1;
    if (argc >= 3 && strcmp(argv[1], "--key") == 0) {
        if (cl_key_load_file(argv[2], key, err, sizeof(err)) != 0 ||
            cl_keyring_new(key, &kr) != 0) {
            fprintf(stderr, "gossip-send: %s\n", err);
            return 2;
        }
        i = 3;
    }
    if (argc - i != 3) {
        fprintf(stderr, "usage: gossip-send [--key FILE] TARGET FROM_NAME FROM_ADDR\n");
        return 2;
    }
    unescape(argv[i + 1]);
    unescape(argv[i + 2]);
    gv_log_set_level(GV_LOG_ERROR);
    uv_loop_t loop;
    uv_loop_init(&loop);
    int rv = send_ping(&loop, kr, argv[i], argv[i + 1], argv[i + 2]);
    uv_loop_close(&loop);
    cl_keyring_free(kr);
    return rv;
}
