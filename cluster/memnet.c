/* memnet.c - the in-memory test network: a binary heap of messages ordered by
 * delivery time, drained by one loop timer. */
#include "cluster/memnet.h"
#include "common/err.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

struct cl_memnet_ep {
    struct cl_memnet *net;
    char *addr;
    struct cl_transport tr;
    cl_receive_fn fn;
    void *arg;
    bool down;
    int group;
    char **kept; /* addresses the transport was asked to keep (until forget) */
    size_t nkept;
};

struct pkt {
    uint64_t at, order;
    struct cl_memnet_ep *to;
    uint8_t *data;
    size_t len;
};

struct cl_memnet {
    uv_loop_t *loop;
    uv_timer_t timer;
    uv_async_t inbox; /* inbox mode: due messages are handed over here */
    bool inbox_mode;
    int open; /* handles not yet closed */
    uint64_t rng, order;
    double loss;
    uint32_t lat_min, lat_jitter;
    struct cl_memnet_ep **eps;
    size_t n_eps, cap_eps;
    struct pkt *heap;
    size_t n_heap, cap_heap;
    struct cl_memnet_stats stats;
    void (*done)(void *arg);
    void *done_arg;
    bool closing;
};

static uint64_t next_rand(struct cl_memnet *net)
{
    net->rng ^= net->rng << 13;
    net->rng ^= net->rng >> 7;
    net->rng ^= net->rng << 17;
    return net->rng;
}

static bool pkt_less(const struct pkt *a, const struct pkt *b)
{
    return a->at < b->at || (a->at == b->at && a->order < b->order);
}

static void heap_swap(struct pkt *h, size_t i, size_t j)
{
    struct pkt t = h[i];
    h[i] = h[j];
    h[j] = t;
}

static int heap_push(struct cl_memnet *net, struct pkt p)
{
    if (net->n_heap == net->cap_heap) {
        size_t ncap = net->cap_heap ? net->cap_heap * 2 : 64;
        struct pkt *h = realloc(net->heap, ncap * sizeof(*h));
        if (h == NULL)
            return GV_ENOMEM;
        net->heap = h;
        net->cap_heap = ncap;
    }
    size_t i = net->n_heap++;
    net->heap[i] = p;
    while (i > 0 && pkt_less(&net->heap[i], &net->heap[(i - 1) / 2])) {
        heap_swap(net->heap, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    return 0;
}

static struct pkt heap_pop(struct cl_memnet *net)
{
    struct pkt top = net->heap[0];
    net->heap[0] = net->heap[--net->n_heap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < net->n_heap && pkt_less(&net->heap[l], &net->heap[m]))
            m = l;
        if (r < net->n_heap && pkt_less(&net->heap[r], &net->heap[m]))
            m = r;
        if (m == i)
            break;
        heap_swap(net->heap, i, m);
        i = m;
    }
    return top;
}

static void on_timer(uv_timer_t *h);

static void arm(struct cl_memnet *net)
{
    if (net->n_heap == 0 || net->closing)
        return;
    uint64_t now = uv_now(net->loop), at = net->heap[0].at;
    uv_timer_start(&net->timer, on_timer, at > now ? at - now : 0, 0);
}

static void deliver(struct cl_memnet *net);

static void on_timer(uv_timer_t *h)
{
    struct cl_memnet *net = h->data;
    if (net->inbox_mode)
        uv_async_send(&net->inbox); /* read after every due timer, as a real one is */
    else
        deliver(net);
}

static void on_inbox(uv_async_t *a)
{
    deliver(a->data);
}

static void deliver(struct cl_memnet *net)
{
    uint64_t now = uv_now(net->loop);
    /* deliver what is due now; messages sent meanwhile wait for the next turn */
    size_t budget = net->n_heap;
    while (budget-- > 0 && net->n_heap > 0 && net->heap[0].at <= now && !net->closing) {
        struct pkt p = heap_pop(net);
        struct cl_memnet_ep *to = p.to;
        if (!to->down && to->fn) {
            net->stats.delivered++;
            to->fn(to->arg, p.data, p.len);
        } else {
            net->stats.blocked++;
        }
        free(p.data);
    }
    arm(net);
}

static struct cl_memnet_ep *find_ep(struct cl_memnet *net, const char *addr)
{
    for (size_t i = 0; i < net->n_eps; i++)
        if (strcmp(net->eps[i]->addr, addr) == 0)
            return net->eps[i];
    return NULL;
}

static int mem_send(void *impl, const char *addr, const uint8_t *data, size_t len)
{
    struct cl_memnet_ep *from = impl;
    struct cl_memnet *net = from->net;
    if (len > CL_MAX_MESSAGE)
        return GV_ERANGE;
    net->stats.sent++;
    struct cl_memnet_ep *to = find_ep(net, addr);
    if (to == NULL) {
        net->stats.unknown++;
        return 0; /* like a datagram to nowhere: handed over, then lost */
    }
    if (from->down || to->down || from->group != to->group) {
        net->stats.blocked++;
        return 0;
    }
    if (net->loss > 0 && (double)(next_rand(net) >> 11) / (double)(1ULL << 53) < net->loss) {
        net->stats.lost++;
        return 0;
    }
    struct pkt p = {.to = to, .len = len, .order = net->order++};
    p.at = uv_now(net->loop) + net->lat_min +
           (net->lat_jitter ? next_rand(net) % (net->lat_jitter + 1) : 0);
    if ((p.data = malloc(len ? len : 1)) == NULL)
        return GV_ENOMEM;
    memcpy(p.data, data, len);
    bool first = net->n_heap == 0 || pkt_less(&p, &net->heap[0]);
    if (heap_push(net, p) < 0) {
        free(p.data);
        return GV_ENOMEM;
    }
    if (first)
        arm(net);
    return 0;
}

static size_t kept_at(const struct cl_memnet_ep *ep, const char *addr)
{
    size_t i = 0;
    while (i < ep->nkept && strcmp(ep->kept[i], addr) != 0)
        i++;
    return i;
}

/* Nothing to connect in memory: the calls are only recorded, for tests. */
static void mem_keep(void *impl, const char *addr)
{
    struct cl_memnet_ep *ep = impl;
    if (kept_at(ep, addr) < ep->nkept)
        return;
    char **v = realloc(ep->kept, (ep->nkept + 1) * sizeof(*v));
    if (v == NULL)
        return;
    ep->kept = v;
    if ((v[ep->nkept] = strdup(addr)) != NULL)
        ep->nkept++;
}

static void mem_forget(void *impl, const char *addr)
{
    struct cl_memnet_ep *ep = impl;
    size_t i = kept_at(ep, addr);
    if (i == ep->nkept)
        return;
    free(ep->kept[i]);
    ep->kept[i] = ep->kept[--ep->nkept];
}

bool cl_memnet_keeps(const struct cl_memnet_ep *ep, const char *addr)
{
    return kept_at(ep, addr) < ep->nkept;
}

static const struct cl_transport_ops mem_ops = {
    .name = "memnet", .send = mem_send, .forget = mem_forget, .keep = mem_keep};

int cl_memnet_new(uv_loop_t *loop, uint64_t seed, struct cl_memnet **out)
{
    struct cl_memnet *net = calloc(1, sizeof(*net));
    if (net == NULL)
        return GV_ENOMEM;
    net->loop = loop;
    net->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
    uv_timer_init(loop, &net->timer);
    uv_async_init(loop, &net->inbox, on_inbox);
    uv_unref((uv_handle_t *)&net->inbox);
    net->timer.data = net->inbox.data = net;
    net->open = 2;
    *out = net;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    struct cl_memnet *net = h->data;
    if (--net->open > 0)
        return;
    for (size_t i = 0; i < net->n_heap; i++)
        free(net->heap[i].data);
    free(net->heap);
    for (size_t i = 0; i < net->n_eps; i++) {
        for (size_t k = 0; k < net->eps[i]->nkept; k++)
            free(net->eps[i]->kept[k]);
        free(net->eps[i]->kept);
        free(net->eps[i]->addr);
        free(net->eps[i]);
    }
    free(net->eps);
    void (*done)(void *) = net->done;
    void *arg = net->done_arg;
    free(net);
    if (done)
        done(arg);
}

void cl_memnet_close(struct cl_memnet *net, void (*done)(void *arg), void *arg)
{
    net->closing = true;
    net->done = done;
    net->done_arg = arg;
    uv_close((uv_handle_t *)&net->timer, on_closed);
    uv_close((uv_handle_t *)&net->inbox, on_closed);
}

void cl_memnet_set_inbox(struct cl_memnet *net, bool on)
{
    net->inbox_mode = on;
}

void cl_memnet_set_loss(struct cl_memnet *net, double loss)
{
    net->loss = loss;
}

void cl_memnet_set_latency(struct cl_memnet *net, uint32_t min_ms, uint32_t jitter_ms)
{
    net->lat_min = min_ms;
    net->lat_jitter = jitter_ms;
}

const struct cl_memnet_stats *cl_memnet_stats(const struct cl_memnet *net)
{
    return &net->stats;
}

int cl_memnet_attach(struct cl_memnet *net, const char *addr, struct cl_memnet_ep **out)
{
    if (find_ep(net, addr))
        return GV_EEXIST;
    if (net->n_eps == net->cap_eps) {
        size_t ncap = net->cap_eps ? net->cap_eps * 2 : 16;
        struct cl_memnet_ep **e = realloc(net->eps, ncap * sizeof(*e));
        if (e == NULL)
            return GV_ENOMEM;
        net->eps = e;
        net->cap_eps = ncap;
    }
    struct cl_memnet_ep *ep = calloc(1, sizeof(*ep));
    if (ep == NULL || (ep->addr = strdup(addr)) == NULL) {
        free(ep);
        return GV_ENOMEM;
    }
    ep->net = net;
    ep->tr.ops = &mem_ops;
    ep->tr.impl = ep;
    net->eps[net->n_eps++] = ep;
    *out = ep;
    return 0;
}

struct cl_transport *cl_memnet_transport(struct cl_memnet_ep *ep)
{
    return &ep->tr;
}

void cl_memnet_set_receiver(struct cl_memnet_ep *ep, cl_receive_fn fn, void *arg)
{
    ep->fn = fn;
    ep->arg = arg;
}

void cl_memnet_set_down(struct cl_memnet_ep *ep, bool down)
{
    ep->down = down;
}

void cl_memnet_set_group(struct cl_memnet_ep *ep, int group)
{
    ep->group = group;
}

void cl_memnet_heal(struct cl_memnet *net)
{
    for (size_t i = 0; i < net->n_eps; i++)
        net->eps[i]->group = 0;
}
