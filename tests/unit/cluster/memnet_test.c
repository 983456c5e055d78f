/* memnet_test.c - the in-memory network: delivery after latency, loss,
 * down endpoints and partitions. */
#include "cluster/memnet.h"
#include "common/err.h"
#include "test.h"

static int got[2];

static void on_recv(void *arg, const uint8_t *data, size_t len)
{
    got[(intptr_t)arg]++;
}

static void send_n(struct cl_memnet_ep *from, const char *to, int n)
{
    for (int i = 0; i < n; i++)
        CHECK_INT(cl_transport_send(cl_memnet_transport(from), to, (const uint8_t *)"hi", 2), 0);
}

static void test_memnet(void)
{
    uv_loop_t loop;
    struct cl_memnet *net;
    struct cl_memnet_ep *a, *b, *dup;
    uv_loop_init(&loop);
    CHECK_INT(cl_memnet_new(&loop, 3, &net), 0);
    CHECK_INT(cl_memnet_attach(net, "a:1", &a), 0);
    CHECK_INT(cl_memnet_attach(net, "b:1", &b), 0);
    CHECK_INT(cl_memnet_attach(net, "a:1", &dup), GV_EEXIST);
    cl_memnet_set_receiver(a, on_recv, (void *)0);
    cl_memnet_set_receiver(b, on_recv, (void *)1);
    cl_memnet_set_latency(net, 20, 0);
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    send_n(a, "b:1", 10);
    CHECK_INT(got[1], 0); /* never inside send */
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(got[1], 10);
    CHECK(uv_now(&loop) - t0 >= 20);
    cl_memnet_set_latency(net, 0, 0);
    cl_memnet_set_loss(net, 0.5);
    send_n(b, "a:1", 1000);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(got[0] > 350 && got[0] < 650);
    cl_memnet_set_loss(net, 0);
    got[0] = got[1] = 0;
    cl_memnet_set_group(b, 1);
    send_n(a, "b:1", 5);
    cl_memnet_set_down(a, true);
    cl_memnet_heal(net);
    send_n(b, "a:1", 5);
    send_n(b, "nowhere:1", 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(got[0] + got[1], 0);
    CHECK_INT(cl_memnet_stats(net)->unknown, 1);
    cl_memnet_set_down(a, false);
    send_n(b, "a:1", 1);
    cl_memnet_close(net, NULL, NULL); /* queued messages are dropped */
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(got[0], 0);
    CHECK_INT(uv_loop_close(&loop), 0);
}

TEST_MAIN(TEST(test_memnet))
