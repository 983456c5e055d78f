/* expand.c - a service's targets as the addresses they stand for (see
 * expand.h). */
#include "balancer/expand.h"
#include "common/err.h"

#include <stdlib.h>
#include <string.h>

bool lb_target_is_name(const struct lb_target_spec *t)
{
    struct lb_ip ip;
    return lb_ip_parse(t->host, &ip) != 0;
}

/* The targets being built, with the address each one connects to. */
struct expansion {
    struct lb_target_spec *targets;
    struct sockaddr_storage *addrs;
    struct lb_ip *ips; /* to find an address met twice */
    uint16_t *ports;
    size_t n;
};

static bool seen(const struct expansion *x, const struct lb_ip *ip, uint16_t port)
{
    for (size_t i = 0; i < x->n; i++) {
        if (x->ports[i] == port && memcmp(&x->ips[i], ip, sizeof(*ip)) == 0)
            return true;
    }
    return false;
}

/* Adds the target t stands for at ip (t's own address when it is not a
 * name). GV_ENOMEM. */
static int add(struct expansion *x, const struct lb_target_spec *t, const struct lb_ip *ip)
{
    struct lb_target_spec *o = &x->targets[x->n];
    char text[64];
    if (seen(x, ip, t->port))
        return 0;
    *o = *t;
    o->from_name = lb_target_is_name(t);
    if (o->from_name)
        lb_ip_format(ip, t->port, text, sizeof(text));
    o->address = strdup(o->from_name ? text : t->address);
    if (o->address == NULL)
        return GV_ENOMEM;
    lb_ip_sockaddr(ip, t->port, &x->addrs[x->n]);
    x->ips[x->n] = *ip;
    x->ports[x->n] = t->port;
    x->n++;
    return 0;
}

/* How many targets in can stand for at most. */
static size_t count(const struct lb_service_spec *in, lb_lookup_fn lookup, void *arg)
{
    size_t n = 0;
    for (size_t i = 0; i < in->ntargets; i++) {
        if (!lb_target_is_name(&in->targets[i])) {
            n++;
            continue;
        }
        const struct lb_addrset *set = lookup(arg, in->targets[i].host);
        n += set != NULL ? set->n : 0;
    }
    return n;
}

static int fill(struct expansion *x, const struct lb_service_spec *in, lb_lookup_fn lookup,
                void *arg)
{
    for (size_t i = 0; i < in->ntargets; i++) {
        const struct lb_target_spec *t = &in->targets[i];
        struct lb_ip ip;
        if (lb_ip_parse(t->host, &ip) == 0) {
            if (add(x, t, &ip) != 0)
                return GV_ENOMEM;
            continue;
        }
        const struct lb_addrset *set = lookup(arg, t->host);
        for (size_t k = 0; set != NULL && k < set->n; k++) {
            if (add(x, t, &set->ip[k]) != 0)
                return GV_ENOMEM;
        }
    }
    return 0;
}

int lb_service_expand(const struct lb_service_spec *in, lb_lookup_fn lookup, void *arg,
                      struct lb_service_spec *out, struct sockaddr_storage **addrs)
{
    size_t max = count(in, lookup, arg) + 1;
    struct expansion x = {
        .targets = calloc(max, sizeof(*x.targets)),
        .addrs = calloc(max, sizeof(*x.addrs)),
        .ips = calloc(max, sizeof(*x.ips)),
        .ports = calloc(max, sizeof(*x.ports)),
    };
    struct lb_service_spec shell = *in, copy;
    shell.targets = NULL;
    shell.ntargets = 0;
    if (x.targets == NULL || x.addrs == NULL || x.ips == NULL || x.ports == NULL ||
        fill(&x, in, lookup, arg) != 0 || lb_service_spec_copy(&copy, &shell) != 0)
        goto fail;
    copy.targets = x.targets;
    copy.ntargets = x.n;
    *out = copy;
    *addrs = x.addrs;
    free(x.ips);
    free(x.ports);
    return 0;

fail:
    for (size_t i = 0; i < x.n; i++)
        free(x.targets[i].address);
    free(x.targets);
    free(x.addrs);
    free(x.ips);
    free(x.ports);
    return GV_ENOMEM;
}
