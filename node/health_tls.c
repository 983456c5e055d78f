/* health_tls.c - TLS for the health probes of services with tls: the
 * balancer's probe engine table (balancer/health.h) implemented with the
 * proxy's upstream TLS client (gateway/tls_upstream.h), so a probe verifies
 * the target exactly as a proxied connection does and shares its sessions.
 * Runs on the node's control loop. */
#include "node/node.h"
#include "balancer/health.h"
#include "gateway/snapshot.h"
#include "gateway/tls.h"
#include "gateway/tls_upstream.h"

#include <stdlib.h>
#include <string.h>

/* The engine and a reference on its context: the context's session callback
 * runs during the handshake and must outlive the engine. */
struct probe_tls {
    struct gw_tls *tls;
    struct gw_up_tls *up;
};

static void *probe_open(void *arg, const char *service, const char *host, const char *address)
{
    struct node *n = arg;
    struct gw_snapshot *s = gw_snapshot_acquire(&n->slot);
    struct probe_tls *p = NULL;
    for (size_t i = 0; s != NULL && s->up_tls != NULL && i < s->nservices; i++) {
        if (strcmp(s->services[i].name, service) != 0 || s->up_tls[i] == NULL)
            continue;
        if ((p = calloc(1, sizeof(*p))) == NULL)
            break;
        p->up = s->up_tls[i];
        gw_up_tls_ref(p->up);
        if ((p->tls = gw_up_tls_client(p->up, host, address)) == NULL) {
            gw_up_tls_unref(p->up);
            free(p);
            p = NULL;
        } else if (s->services[i].protocol != LB_PROTO_HTTP1) {
            gw_up_tls_offer_h2(p->tls); /* the gRPC health probe speaks h2 */
        }
        break;
    }
    gw_snapshot_unref(s);
    return p;
}

static int probe_feed(void *eng, const void *data, size_t len)
{
    return gw_tls_feed(((struct probe_tls *)eng)->tls, data, len);
}

static int probe_read(void *eng, void *buf, size_t cap)
{
    return gw_tls_read(((struct probe_tls *)eng)->tls, buf, cap);
}

static int probe_write(void *eng, const void *data, size_t len)
{
    return gw_tls_write(((struct probe_tls *)eng)->tls, data, len) < 0 ? -1 : 0;
}

static size_t probe_take(void *eng, void *buf, size_t cap)
{
    return gw_tls_take_output(((struct probe_tls *)eng)->tls, buf, cap);
}

static bool probe_done(void *eng)
{
    return gw_tls_handshake_done(((struct probe_tls *)eng)->tls);
}

static const char *probe_failure(void *eng)
{
    return gw_tls_failure(((struct probe_tls *)eng)->tls);
}

static void probe_close(void *eng)
{
    struct probe_tls *p = eng;
    gw_tls_free(p->tls);
    gw_up_tls_unref(p->up);
    free(p);
}

static const struct lb_probe_tls_ops probe_tls_ops = {
    .open = probe_open,
    .feed = probe_feed,
    .read = probe_read,
    .write = probe_write,
    .take_output = probe_take,
    .handshake_done = probe_done,
    .failure = probe_failure,
    .close = probe_close,
};

void node_health_tls_init(struct node *n)
{
    lb_health_set_tls(n->health, &probe_tls_ops, n);
}
