/* gossip.c - wiring keyring, nng transport and SWIM membership for the node,
 * and presenting members, keys and counters to the admin API. */
#include "node/gossip.h"
#include "cluster/nng_transport.h"
#include "cluster/seal.h"
#include "cluster/swim.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct node_gossip {
    uv_loop_t *loop;
    struct cl_keyring *keyring;
    struct cl_nng_transport *transport;
    struct cl_transport iface;
    struct cl_swim *swim;
    bool test_faults;
    bool stopping;
    char digest[65];
    uint64_t version;
    void (*done)(void *arg);
    void *done_arg;
};

/* ---- meta: {"d": digest, "v": version} ------------------------------------ */

static int meta_encode(const char *digest, uint64_t version, char *out, size_t len)
{
    int n = snprintf(out, len, "{\"d\":\"%s\",\"v\":%llu}", digest, (unsigned long long)version);
    return (n < 0 || (size_t)n >= len) ? GV_ERANGE : n;
}

static void meta_decode(const uint8_t *meta, size_t len, char digest[65], uint64_t *version)
{
    digest[0] = '\0';
    *version = 0;
    if (meta == NULL || len == 0)
        return;
    json_error_t e;
    json_t *j = json_loadb((const char *)meta, len, 0, &e);
    const char *d = json_string_value(json_object_get(j, "d"));
    if (d != NULL)
        snprintf(digest, 65, "%s", d);
    json_t *v = json_object_get(j, "v");
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        *version = (uint64_t)json_integer_value(v);
    json_decref(j);
}

struct cl_swim *node_gossip_swim(struct node_gossip *g)
{
    return g->swim;
}

/* ---- life ---------------------------------------------------------------- */

static void on_member(void *arg, struct cl_swim *s, const struct cl_member_info *m,
                      enum cl_member_state old, bool first)
{
    (void)arg;
    (void)s;
    if (m->is_self)
        return;
    if (first)
        gv_info("cluster: %s (%s) is %s", m->name, m->addr, cl_state_name(m->state));
    else if (old != m->state) /* not for meta (config version) or incarnation updates */
        gv_info("cluster: %s (%s) %s -> %s", m->name, m->addr, cl_state_name(old),
                cl_state_name(m->state));
}

static void transport_stopped(void *arg);

/* The transport starts before the swim exists (the swim needs it), so
 * messages go through here and are ignored until the swim is up. */
static void on_receive(void *arg, const uint8_t *data, size_t len)
{
    struct node_gossip *g = arg;
    if (g->swim != NULL)
        cl_swim_receive(g->swim, data, len);
}

/* $POD_IP (Kubernetes' downward API, or any orchestrator's env) as the
 * host of the advertised address: true when it is set and an IP literal. */
static bool pod_ip_host(uint16_t port, char *out, size_t len)
{
    const char *ip = getenv("POD_IP");
    uint8_t sa[16];
    if (ip == NULL || ip[0] == '\0')
        return false;
    if (inet_pton(AF_INET, ip, sa) == 1) {
        snprintf(out, len, "%s:%u", ip, port);
        return true;
    }
    if (inet_pton(AF_INET6, ip, sa) == 1) {
        snprintf(out, len, "[%s]:%u", ip, port);
        return true;
    }
    gv_warn("cluster: POD_IP \"%.64s\" is not an IP address: not advertised", ip);
    return false;
}

/* The address others reach this node at: the flag/config, else the listen
 * address when it names a host, else $POD_IP with the listen port, else the
 * host name with the listen port. */
static void derive_advertise(const struct node_gossip_config *c, char *out, size_t len)
{
    char host[256];
    uint16_t port = 7946;
    if (c->advertise != NULL) {
        snprintf(out, len, "%s", c->advertise);
        return;
    }
    if (gv_split_hostport(c->listen, host, sizeof(host), &port) == 0 &&
        strcmp(host, "0.0.0.0") != 0 && strcmp(host, "::") != 0) {
        snprintf(out, len, "%s", c->listen);
        return;
    }
    if (pod_ip_host(port, out, len))
        return;
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    snprintf(out, len, "%s:%u", host, port);
}

int node_gossip_start(uv_loop_t *loop, const struct node_gossip_config *c, struct node_gossip **out)
{
    struct node_gossip *g = calloc(1, sizeof(*g));
    char advertise[300], err[256];
    int rv;
    if (g == NULL)
        return GV_ENOMEM;
    g->loop = loop;
    g->test_faults = c->test_faults;
    snprintf(g->digest, sizeof(g->digest), "%s", "");
    if (c->key_file != NULL) {
        uint8_t key[CL_KEY_LEN];
        if ((rv = cl_key_load_file(c->key_file, key, err, sizeof(err))) != 0) {
            gv_error("cluster key %s: %s", c->key_file, err);
            goto fail;
        }
        rv = cl_keyring_new(key, &g->keyring);
        memset(key, 0, sizeof(key));
        if (rv != 0)
            goto fail;
    }
    derive_advertise(c, advertise, sizeof(advertise));
    if ((rv = cl_nng_transport_start(loop, c->listen, g->keyring, on_receive, g, &g->transport)) !=
        0)
        goto fail;
    if ((rv = cl_nng_transport_set_advertise(g->transport, advertise)) != 0)
        goto fail_transport;
    g->iface = cl_nng_transport_iface(g->transport);

    struct cl_swim_config sc;
    cl_swim_config_init(&sc);
    sc.name = c->name;
    sc.advertise = advertise;
    sc.seeds = c->join;
    sc.n_seeds = c->njoin;
    sc.on_member = on_member;
    sc.on_member_arg = g;
    if (c->profile != NULL && cl_timing_profile(c->profile, &sc.timing) != 0) {
        gv_error("cluster: unknown gossip profile \"%s\" (lan, local or wan)", c->profile);
        rv = GV_EINVAL;
        goto fail_transport;
    }
    if (c->join_every_ms != 0)
        sc.timing.seed_refresh_ms = (uint32_t)GV_MIN(c->join_every_ms, (uint64_t)UINT32_MAX);
    char meta[128];
    int ml = meta_encode("", 0, meta, sizeof(meta));
    sc.meta = (const uint8_t *)meta;
    sc.meta_len = (size_t)ml;
    if ((rv = cl_swim_new(loop, &sc, &g->iface, &g->swim)) != 0) {
        gv_error("cluster: cannot start membership: %s", gv_strerror(rv));
        goto fail_transport;
    }
    if ((rv = cl_swim_start(g->swim)) != 0) {
        gv_error("cluster: cannot start membership: %s", uv_strerror(rv));
        cl_swim_stop(g->swim, NULL, NULL);
        g->swim = NULL;
        goto fail_transport;
    }
    gv_info("gossip on %s as %s (advertised %s), %zu seed(s)%s", c->listen, c->name, advertise,
            c->njoin, g->keyring ? ", encrypted" : "");
    *out = g;
    return 0;
fail_transport:
    /* The transport may use the keyring until it has stopped: both go in
     * its done callback. */
    g->swim = NULL;
    cl_nng_transport_stop(g->transport, transport_stopped, g);
    return rv;
fail:
    cl_keyring_free(g->keyring);
    free(g);
    return rv;
}

static void transport_stopped(void *arg)
{
    struct node_gossip *g = arg;
    cl_keyring_free(g->keyring);
    if (g->done != NULL)
        g->done(g->done_arg);
    free(g);
}

static void swim_stopped(void *arg)
{
    struct node_gossip *g = arg;
    g->swim = NULL;
    cl_nng_transport_stop(g->transport, transport_stopped, g);
}

static void left(void *arg)
{
    struct node_gossip *g = arg;
    cl_swim_stop(g->swim, swim_stopped, g);
}

void node_gossip_stop(struct node_gossip *g, void (*done)(void *arg), void *arg)
{
    if (g->stopping)
        return;
    g->stopping = true;
    g->done = done;
    g->done_arg = arg;
    if (cl_swim_leave(g->swim, left, g) != 0)
        left(g);
}

void node_gossip_set_config(struct node_gossip *g, const char *digest, uint64_t version)
{
    char meta[128];
    snprintf(g->digest, sizeof(g->digest), "%s", digest);
    g->version = version;
    int n = meta_encode(digest, version, meta, sizeof(meta));
    if (n > 0)
        cl_swim_set_meta(g->swim, (const uint8_t *)meta, (size_t)n);
}

/* ---- admin views ---------------------------------------------------------- */

static int add_member(void *arg, const struct cl_member_info *m)
{
    json_t *arr = arg;
    char digest[65];
    uint64_t version;
    meta_decode(m->meta, m->meta_len, digest, &version);
    json_array_append_new(arr,
                          json_pack("{s:s,s:s,s:s,s:I,s:s,s:I,s:b}", "name", m->name, "address",
                                    m->addr, "state", cl_state_name(m->state), "incarnation",
                                    (json_int_t)m->incarnation, "config_digest", digest,
                                    "config_version", (json_int_t)version, "self", m->is_self));
    return 0;
}

json_t *node_gossip_members_json(struct node_gossip *g)
{
    json_t *arr = json_array();
    if (arr != NULL)
        cl_swim_members(g->swim, add_member, arr);
    return arr;
}

json_t *node_gossip_counts_json(struct node_gossip *g)
{
    size_t counts[CL_STATE_COUNT];
    cl_swim_counts(g->swim, counts);
    json_t *o = json_object();
    for (int s = 0; s < CL_STATE_COUNT; s++)
        json_object_set_new(o, cl_state_name((enum cl_member_state)s),
                            json_integer((json_int_t)counts[s]));
    return o;
}

int node_gossip_metrics(struct node_gossip *g, struct gv_buf *out)
{
    size_t counts[CL_STATE_COUNT];
    cl_swim_counts(g->swim, counts);
    int rv = gv_buf_puts(out, "# HELP grapevine_cluster_members Cluster members by state.\n"
                              "# TYPE grapevine_cluster_members gauge\n");
    for (int s = 0; s < CL_STATE_COUNT && rv == 0; s++)
        rv = gv_buf_printf(out, "grapevine_cluster_members{state=\"%s\"} %zu\n",
                           cl_state_name((enum cl_member_state)s), counts[s]);
    const struct cl_swim_stats *st = cl_swim_stats(g->swim);
    rv = rv ? rv
            : gv_buf_puts(out, "# HELP grapevine_gossip_messages_total Gossip messages by type "
                               "and direction.\n# TYPE grapevine_gossip_messages_total counter\n");
    for (int t = 1; t <= CL_MSG_TYPE_MAX && rv == 0; t++) {
        const char *name = cl_msg_type_name((enum cl_msg_type)t);
        rv = gv_buf_printf(out,
                           "grapevine_gossip_messages_total{type=\"%s\",direction=\"out\"} %llu\n"
                           "grapevine_gossip_messages_total{type=\"%s\",direction=\"in\"} %llu\n",
                           name, (unsigned long long)st->sent[t], name,
                           (unsigned long long)st->received[t]);
    }
    struct cl_nng_stats ns;
    cl_nng_transport_stats(g->transport, &ns);
    rv = rv ? rv
            : gv_buf_printf(
                  out,
                  "# HELP grapevine_gossip_dropped_total Gossip messages dropped, by reason.\n"
                  "# TYPE grapevine_gossip_dropped_total counter\n"
                  "grapevine_gossip_dropped_total{reason=\"malformed\"} %llu\n"
                  "grapevine_gossip_dropped_total{reason=\"auth_failed\"} %llu\n"
                  "grapevine_gossip_dropped_total{reason=\"replayed\"} %llu\n"
                  "grapevine_gossip_dropped_total{reason=\"send_failed\"} %llu\n"
                  "grapevine_gossip_dropped_total{reason=\"queue_full\"} %llu\n",
                  (unsigned long long)(st->malformed + ns.in.malformed),
                  (unsigned long long)ns.in.auth_failed, (unsigned long long)ns.in.replayed,
                  (unsigned long long)ns.out.dropped, (unsigned long long)ns.in.dropped);
    rv = rv ? rv
            : gv_buf_printf(out,
                            "# HELP grapevine_gossip_bytes_total Gossip payload bytes, by "
                            "direction.\n# TYPE grapevine_gossip_bytes_total counter\n"
                            "grapevine_gossip_bytes_total{direction=\"out\"} %llu\n"
                            "grapevine_gossip_bytes_total{direction=\"in\"} %llu\n",
                            (unsigned long long)ns.out.bytes, (unsigned long long)ns.in.bytes);
    return rv;
}

/* ---- keys ------------------------------------------------------------------ */

json_t *node_gossip_keys_json(struct node_gossip *g)
{
    json_t *arr = json_array();
    if (g->keyring == NULL)
        return arr;
    struct cl_key_info keys[CL_KEYRING_MAX];
    size_t n = cl_keyring_list(g->keyring, keys, CL_KEYRING_MAX);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            arr, json_pack("{s:s,s:b}", "id", keys[i].id, "primary", keys[i].primary != 0));
    return arr;
}

static int need_keyring(struct node_gossip *g, char *err, size_t errlen)
{
    if (g->keyring != NULL)
        return 0;
    snprintf(err, errlen, "gossip encryption is off: start the node with node.cluster_key_file");
    return GV_EINVAL;
}

int node_gossip_key_install(struct node_gossip *g, const char *b64, char *err, size_t errlen)
{
    uint8_t key[CL_KEY_LEN];
    int rv = need_keyring(g, err, errlen);
    if (rv == 0)
        rv = cl_key_parse(b64, strlen(b64), key, err, errlen);
    if (rv == 0 && (rv = cl_keyring_install(g->keyring, key)) != 0)
        snprintf(err, errlen, "cannot install the key: %s",
                 rv == GV_ERANGE ? "the keyring is full" : gv_strerror(rv));
    memset(key, 0, sizeof(key));
    return rv;
}

int node_gossip_key_use(struct node_gossip *g, const char *id, char *err, size_t errlen)
{
    int rv = need_keyring(g, err, errlen);
    if (rv == 0 && (rv = cl_keyring_use(g->keyring, id)) != 0)
        snprintf(err, errlen, "no key with id \"%s\"", id);
    return rv;
}

int node_gossip_key_remove(struct node_gossip *g, const char *id, char *err, size_t errlen)
{
    int rv = need_keyring(g, err, errlen);
    if (rv == 0 && (rv = cl_keyring_remove(g->keyring, id)) != 0)
        snprintf(err, errlen, "%s",
                 rv == GV_ENOENT ? "no key with that id" : "the primary key cannot be removed");
    return rv;
}

int node_gossip_block(struct node_gossip *g, const char *const *addrs, size_t n)
{
    if (!g->test_faults)
        return GV_EINVAL;
    return cl_nng_set_blocked(g->transport, addrs, n);
}
