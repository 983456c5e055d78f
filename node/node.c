/* node.c - wiring one grapevine process: config, snapshot, workers, health
 * checks, admin API, signals and graceful drain. */
#include "node/node.h"
#include "node/cstate.h"
#include "node/gossip.h"
#include "node/health_share.h"
#include "gateway/plugins/chain.h"
#include "node/ratelimit.h"
#include "node/resolve.h"
#include "cluster/seal.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "gateway/tls.h"
#include "gateway/tls_upstream.h"

#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* ---- signals and shutdown ------------------------------------------------ */

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

/* While the workers drain, the admin API answers /ready with 503 (so a
 * load balancer or Kubernetes stops sending traffic) and /health with 200;
 * it stops once every worker has finished. */
static void on_drain_timer(uv_timer_t *t)
{
    struct node *n = t->data;
    for (int i = 0; i < n->nworkers; i++)
        if (!gw_worker_finished(n->workers[i]))
            return;
    if (n->admin != NULL) {
        node_admin_stop(n->admin);
        n->admin = NULL;
    }
    uv_close((uv_handle_t *)t, on_closed);
}

static void begin_stop(struct node *n, const char *why)
{
    if (n->stopping)
        return;
    n->stopping = true;
    if (n->leaving)
        uv_close((uv_handle_t *)&n->leave_timer, on_closed);
    gv_info("%s: draining %d workers", why, n->nworkers);
    for (int i = 0; i < n->nworkers; i++)
        gw_worker_drain(n->workers[i]);
    uv_timer_init(&n->loop, &n->drain_timer);
    n->drain_timer.data = n;
    uv_timer_start(&n->drain_timer, on_drain_timer, 0, 50);
    node_health_share_stop(); /* before the checker and the gossip it joins */
    if (n->health != NULL) {
        lb_health_stop(n->health, NULL, NULL);
        n->health = NULL;
    }
    if (n->cstate != NULL) {
        /* before the gossip: replication rides the swim; pending saves finish */
        node_cstate_close(n->cstate, NULL, NULL);
        n->cstate = NULL;
    }
    node_resolve_stop(n); /* after the last config change: nothing follows names now */
    node_ratelimit_stop();
    if (n->gossip != NULL) {
        /* Leaves the cluster ("left", not "dead") while the workers drain. */
        node_gossip_stop(n->gossip, NULL, NULL);
        n->gossip = NULL;
    }
    uv_close((uv_handle_t *)&n->sig_term, on_closed);
    uv_close((uv_handle_t *)&n->sig_int, on_closed);
    uv_close((uv_handle_t *)&n->sig_hup, on_closed);
}

/* The shutdown_delay is over: the drain begins. */
static void on_leave_timer(uv_timer_t *t)
{
    begin_stop(t->data, "shutdown_delay over");
}

/* Certificates are re-read from the same files; connections already open
 * keep the certificates they started with. */
static void node_tls_reload(struct node *n)
{
    char err[512];
    if (n->tls == NULL)
        return;
    if (gw_tls_slot_reload(n->tls, err, sizeof(err)) != 0)
        gv_error("SIGHUP: TLS: %s (certificates unchanged)", err);
    else
        gv_info("SIGHUP: TLS certificates reloaded");
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct node *n = s->data;
    if (signum == SIGHUP) {
        node_tls_reload(n);
        if (n->cfg.path == NULL)
            return;
        struct node_config fresh;
        struct node_config_error err;
        if (node_config_load_file(n->cfg.path, &fresh, &err) != 0) {
            gv_error("SIGHUP: %s (nothing changed)", err.text);
            return;
        }
        enum gv_log_level lvl;
        if (fresh.node.log_level != NULL && gv_log_parse_level(fresh.node.log_level, &lvl) == 0) {
            gv_log_set_level(lvl);
            gv_info("SIGHUP: log level is now %s", fresh.node.log_level);
        }
        node_config_free(&fresh);
        return;
    }
    const char *why = signum == SIGTERM ? "SIGTERM" : "SIGINT";
    uint64_t delay = n->cfg.node.shutdown_delay_ms;
    if (n->leaving || delay == 0 || uv_timer_init(&n->loop, &n->leave_timer) != 0) {
        begin_stop(n, why); /* a second signal does not wait */
        return;
    }
    n->leaving = true;
    n->leave_timer.data = n;
    uv_timer_start(&n->leave_timer, on_leave_timer, delay, 0);
    gv_info("%s: not ready; serving on for %llu ms (node.shutdown_delay) before draining "
            "(a second signal drains at once)",
            why, (unsigned long long)delay);
}

/* ---- start-up ------------------------------------------------------------ */

static int set_str(char **dst, const char *v)
{
    if (v == NULL)
        return 0;
    char *d = strdup(v);
    if (d == NULL)
        return GV_ENOMEM;
    free(*dst);
    *dst = d;
    return 0;
}

static int apply_opts(struct node_settings *s, const struct node_run_opts *o)
{
    int rv = 0;
    rv = rv ? rv : set_str(&s->name, o->name);
    rv = rv ? rv : set_str(&s->listen, o->listen);
    rv = rv ? rv : set_str(&s->admin, o->admin);
    rv = rv ? rv : set_str(&s->gossip, o->gossip);
    rv = rv ? rv : set_str(&s->advertise, o->advertise);
    rv = rv ? rv : set_str(&s->data_dir, o->data_dir);
    rv = rv ? rv : set_str(&s->log_level, o->log_level);
    if (rv == 0 && o->join != NULL) {
        /* --join a:1,b:2 replaces the file's list. */
        for (size_t i = 0; i < s->njoin; i++)
            free(s->join[i]);
        free(s->join);
        s->join = NULL;
        s->njoin = 0;
        char *copy = strdup(o->join), *save = NULL;
        if (copy == NULL)
            return GV_ENOMEM;
        for (char *t = strtok_r(copy, ", ", &save); t != NULL && rv == 0;
             t = strtok_r(NULL, ", ", &save)) {
            char **j = realloc(s->join, (s->njoin + 1) * sizeof(*j));
            if (j == NULL || (j[s->njoin] = strdup(t)) == NULL) {
                if (j != NULL)
                    s->join = j;
                rv = GV_ENOMEM;
                break;
            }
            s->join = j;
            s->njoin++;
        }
        free(copy);
    }
    if (rv == 0 && o->workers != NULL) {
        if (strcmp(o->workers, "auto") == 0) {
            s->workers = 0;
        } else {
            char *end;
            long w = strtol(o->workers, &end, 10);
            if (*end != '\0' || w < 1 || w > 256) {
                fprintf(stderr, "grapevine: --workers must be a number 1..256 or auto\n");
                return GV_EINVAL;
            }
            s->workers = (int)w;
        }
    }
    if (rv == 0)
        rv = node_settings_default_gossip(s);
    if (rv == 0 && s->name == NULL) {
        char host[256];
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "grapevine");
        host[sizeof(host) - 1] = '\0';
        rv = set_str(&s->name, host);
    }
    return rv;
}

static int node_tls_start(struct node *n)
{
    const struct node_settings *s = &n->cfg.node;
    if (s->tls.listen == NULL || s->tls.ncerts == 0)
        return 0;
    struct gw_tls_certfile *files = calloc(s->tls.ncerts, sizeof(*files));
    char err[512];
    if (files == NULL)
        return GV_ENOMEM;
    for (size_t i = 0; i < s->tls.ncerts; i++)
        files[i] = (struct gw_tls_certfile){s->tls.certs[i].cert, s->tls.certs[i].key};
    int rv = gw_tls_slot_new(files, s->tls.ncerts, &n->tls, err, sizeof(err));
    free(files);
    if (rv != 0)
        gv_error("TLS: %s", err);
    else
        gv_info("TLS listening on %s with %zu certificates", s->tls.listen, s->tls.ncerts);
    return rv;
}

static int start_workers(struct node *n)
{
    const struct node_settings *s = &n->cfg.node;
    int count = s->workers > 0 ? s->workers : (int)uv_available_parallelism();
    n->workers = calloc((size_t)count, sizeof(*n->workers));
    n->metrics = calloc((size_t)count, sizeof(*n->metrics));
    if (n->workers == NULL || n->metrics == NULL)
        return GV_ENOMEM;
    n->nmetrics = count;
    if (node_tls_start(n) != 0)
        return GV_EINVAL;
    for (int i = 0; i < count; i++) {
        int fd, tls_fd = -1, rv;
        if ((rv = gw_metrics_new(&n->metrics[i])) != 0)
            return rv;
        if ((rv = gw_listen_socket(s->listen, &fd)) != 0) {
            gv_error("cannot listen on %s: %s", s->listen, gv_strerror(rv));
            return rv;
        }
        struct gw_worker_config wc = {
            .id = i,
            .listen_fd = fd,
            .node_name = s->name,
            .access_log = s->access_log,
            .header_timeout_ms = s->header_timeout_ms,
            .idle_timeout_ms = s->idle_timeout_ms,
            .max_header_bytes = s->max_header_bytes,
            .max_headers = s->max_headers,
            .slot = &n->slot,
            .metrics = n->metrics[i],
            .sticky_key = n->sticky_key,
            .tls = n->tls,
        };
        if (n->tls != NULL && (rv = gw_listen_socket(s->tls.listen, &tls_fd)) != 0) {
            close(fd);
            gv_error("cannot listen on %s: %s", s->tls.listen, gv_strerror(rv));
            return rv;
        }
        wc.tls_listen_fd = tls_fd;
        if ((rv = gw_worker_start(&wc, &n->workers[i])) != 0) {
            close(fd);
            if (tls_fd >= 0)
                close(tls_fd);
            gv_error("cannot start worker %d: %s", i, gv_strerror(rv));
            return rv;
        }
        n->nworkers++;
    }
    gv_info("proxy listening on %s with %d workers", s->listen, n->nworkers);
    return 0;
}

static int load_config(struct node *n, const struct node_run_opts *o)
{
    struct node_config_error err;
    if (o->config != NULL) {
        if (node_config_load_file(o->config, &n->cfg, &err) != 0) {
            fprintf(stderr, "%s\n", err.text);
            return GV_EINVAL;
        }
    } else {
        memset(&n->cfg, 0, sizeof(n->cfg));
        node_settings_defaults(&n->cfg.node);
    }
    int rv = apply_opts(&n->cfg.node, o);
    if (rv == 0 && n->cfg.node.insecure_gossip && n->cfg.node.cluster_key_file == NULL)
        gv_warn("insecure_gossip: gossip on %s is not encrypted or authenticated: any host "
                "that reaches it can change every route and join the cluster",
                n->cfg.node.gossip ? n->cfg.node.gossip : "?");
    if (rv == 0 && node_settings_check(&n->cfg.node, &err) != 0) {
        fprintf(stderr, "grapevine: %s\n", err.text);
        return GV_EINVAL;
    }
    return rv;
}

/* The key that signs sticky-session cookies. With a cluster key every node
 * derives the same one (HMAC-SHA256 of a fixed label under the cluster key),
 * so a cookie set by one node pins the client on every node; without one it
 * is random per process and stickiness holds per node. It is derived from
 * the key in the file at start-up and does not follow later rotations. */
static int sticky_key(struct node *n)
{
    static const char label[] = "grapevine sticky-session cookie key v1";
    uint8_t key[CL_KEY_LEN];
    char err[256];
    unsigned int len = sizeof(n->sticky_key);
    if (n->cfg.node.cluster_key_file == NULL)
        return RAND_bytes(n->sticky_key, sizeof(n->sticky_key)) == 1 ? 0 : GV_EIO;
    if (cl_key_load_file(n->cfg.node.cluster_key_file, key, err, sizeof(err)) != 0) {
        fprintf(stderr, "grapevine: cluster key %s: %s\n", n->cfg.node.cluster_key_file, err);
        return GV_EINVAL;
    }
    bool ok = HMAC(EVP_sha256(), key, sizeof(key), (const unsigned char *)label, sizeof(label) - 1,
                   n->sticky_key, &len) != NULL;
    OPENSSL_cleanse(key, sizeof(key));
    return ok ? 0 : GV_EIO;
}

/* Takes the open-files limit up to its hard limit, as Go's runtime and
 * HAProxy do: each client, upstream and member connection is a descriptor
 * (two per member: one each way), and a shell's default soft limit of 1,024
 * would refuse connections long before memory runs short. */
static void raise_open_files(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
        gv_debug("open files limit raised from %llu to %llu", (unsigned long long)was,
                 (unsigned long long)rl.rlim_max);
}

/* Log level and sticky key from the config: 0, or 2 (the exit status) on a
 * bad value. */
static int configure_process(struct node *n)
{
    enum gv_log_level lvl = GV_LOG_INFO;
    if (n->cfg.node.log_level != NULL && gv_log_parse_level(n->cfg.node.log_level, &lvl) != 0) {
        fprintf(stderr, "grapevine: unknown log level \"%s\"\n", n->cfg.node.log_level);
        return 2;
    }
    gv_log_set_level(lvl);
    n->started_ms = gv_now_ms();
    /* A peer that hangs up mid-write is an error on that connection, not
     * the end of the process. */
    signal(SIGPIPE, SIG_IGN);
    raise_open_files();
    return sticky_key(n) != 0 ? 2 : 0;
}

/* Joins the mesh and wires what rides on it: replicated config, cluster rate
 * limits, shared health. Only the mesh itself is fatal. */
static int start_mesh(struct node *n)
{
    const char *faults = getenv("GRAPEVINE_TEST_FAULTS");
    struct node_gossip_config gc = {
        .name = n->cfg.node.name,
        .listen = n->cfg.node.gossip,
        .advertise = n->cfg.node.advertise,
        .join = (const char *const *)n->cfg.node.join,
        .njoin = n->cfg.node.njoin,
        .join_every_ms = n->cfg.node.join_every_ms,
        .key_file = n->cfg.node.cluster_key_file,
        .profile = n->cfg.node.gossip_profile,
        .test_faults = faults != NULL && strcmp(faults, "1") == 0,
    };
    if (node_gossip_start(&n->loop, &gc, &n->gossip) != 0)
        return GV_EIO;
    node_gossip_set_config(n->gossip, n->config_digest, n->config_version);
    if (node_cstate_attach(n->cstate, node_gossip_swim(n->gossip)) != 0)
        gv_error("config: cannot replicate through the cluster channel");
    if (node_ratelimit_start(&n->loop, node_gossip_swim(n->gossip)) != 0)
        gv_error("cluster rate limits: cannot follow the membership");
    if (node_health_share_start(n, node_gossip_swim(n->gossip)) != 0)
        gv_error("health checks: cannot share them through the cluster channel");
    return 0;
}

/* The stop signals wait (blocked) from before the first listener opens
 * until libuv watches them: a SIGTERM sent as soon as the ports answer
 * (an orchestrator, a test) is a graceful stop, never the default action's
 * kill. Threads started meanwhile keep them blocked; libuv's handler runs
 * on whichever thread takes them. */
static void hold_signals(sigset_t *was)
{
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop, was);
}

static void watch_signals(struct node *n, const sigset_t *was)
{
    uv_signal_init(&n->loop, &n->sig_term);
    uv_signal_init(&n->loop, &n->sig_int);
    uv_signal_init(&n->loop, &n->sig_hup);
    n->sig_term.data = n->sig_int.data = n->sig_hup.data = n;
    uv_signal_start(&n->sig_term, on_signal, SIGTERM);
    uv_signal_start(&n->sig_int, on_signal, SIGINT);
    uv_signal_start(&n->sig_hup, on_signal, SIGHUP);
    pthread_sigmask(SIG_SETMASK, was, NULL); /* what came meanwhile is handled now */
}

/* Frees what the node holds after its loop has ended. */
static void release_node(struct node *n)
{
    gw_snapshot_slot_fini(&n->slot);
    gw_tls_slot_free(n->tls);
    for (int i = 0; i < n->nmetrics; i++)
        gw_metrics_free(n->metrics[i]);
    free(n->metrics);
    free(n->workers);
    node_gen_unref(n->gen);
    lb_registry_free(n->registry);
}

/* libuv starts its thread pool (4 threads) at the first work queued, which
 * would be the first peer's change: on a hundred nodes sharing two cores,
 * 400 threads and their malloc arenas made at once held that change up by
 * a quarter of a second everywhere. So the node queues one small job as it
 * starts; the thread that runs it makes its arena too. */
static void pool_start_work(uv_work_t *w)
{
    void *volatile p = malloc(64); /* volatile: not elided with the free */
    free(p);
    (void)w;
}

static void pool_start_done(uv_work_t *w, int status)
{
    (void)w;
    (void)status;
}

int node_run(const struct node_run_opts *o)
{
    struct node *n = calloc(1, sizeof(*n));
    int code = 1;
    if (n == NULL)
        return 1;
    if (load_config(n, o) != 0) {
        code = 2;
        goto out_free;
    }
    if ((code = configure_process(n)) != 0)
        goto out_cfg;
    code = 1;
    sigset_t was;
    hold_signals(&was);
    gw_snapshot_slot_init(&n->slot);
    if (uv_loop_init(&n->loop) != 0 || lb_registry_new(&n->registry) != 0)
        goto out_slot;
    if (lb_health_start(&n->loop, &n->health) != 0)
        goto out_loop;
    if (uv_queue_work(&n->loop, &n->pool_start, pool_start_work, pool_start_done) != 0)
        gv_debug("thread pool: not started ahead (it starts with the first job)");
    node_health_tls_init(n);
    if (node_resolve_start(n) != 0 || node_cstate_open(n, &n->cstate) != 0)
        goto out_health;
    if (start_workers(n) != 0 || node_admin_start(n, n->cfg.node.admin, &n->admin) != 0)
        goto out_workers;
    if (start_mesh(n) != 0) {
        node_admin_stop(n->admin);
        n->admin = NULL;
        goto out_workers;
    }
    watch_signals(n, &was);
    gv_info("node %s started (grapevine %s)", n->cfg.node.name, GV_VERSION);
    uv_run(&n->loop, UV_RUN_DEFAULT);
    code = 0;
    goto out_join;

out_workers:
    for (int i = 0; i < n->nworkers; i++)
        gw_worker_drain(n->workers[i]);
    node_cstate_close(n->cstate, NULL, NULL);
    n->cstate = NULL;
out_health:
    node_resolve_stop(n);
    if (n->health != NULL)
        lb_health_stop(n->health, NULL, NULL);
    n->health = NULL;
    uv_run(&n->loop, UV_RUN_DEFAULT);
out_join:
    for (int i = 0; i < n->nworkers; i++)
        gw_worker_join(n->workers[i]);
    if (code == 0)
        gv_info("node %s stopped", n->cfg.node.name);
out_loop:
    uv_run(&n->loop, UV_RUN_DEFAULT);
    uv_loop_close(&n->loop);
out_slot:
    release_node(n);
out_cfg:
    node_config_free(&n->cfg);
out_free:
    free(n);
    return code;
}
