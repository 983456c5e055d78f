/* config.h - the config file: this node's settings and the cluster state
 * (services, routes) it seeds.
 *
 * Loading happens at start-up and on SIGHUP, on the main thread, with plain
 * malloc. A loaded node_config is immutable and owned by whoever loaded it.
 */
#ifndef GV_NODE_CONFIG_H
#define GV_NODE_CONFIG_H

#include "balancer/service.h"
#include "gateway/router.h"
#include "node/state.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct node_tls_cert {
    char *cert;
    char *key;
};

/* node: - this node only, never gossiped. Strings are NULL when not given
 * (the defaults below are applied by node_settings_defaults). */
struct node_settings {
    char *name;       /* default: host name */
    char *listen;     /* "0.0.0.0:8080" */
    char *tls_listen; /* NULL = TLS off */
    struct node_tls_cert *certs;
    size_t ncerts;
    char *admin; /* "127.0.0.1:9901" */
    char *admin_token_file;
    char *gossip; /* "0.0.0.0:7946" */
    char *advertise;
    char **join;
    size_t njoin;
    char *cluster_key_file;
    char *data_dir;
    char *gossip_profile; /* "lan" (default), "local" or "wan": memberlist's timings */
    int workers;          /* 0 = auto (one per core) */
    char *log_level;      /* "info" */
    bool access_log;      /* JSON line per request on stdout; default true */
    /* Client-side limits (HAProxy/nginx-like defaults). */
    uint64_t header_timeout_ms; /* whole request head must arrive: 10s */
    uint64_t idle_timeout_ms;   /* keep-alive idle client: 60s */
    uint32_t max_header_bytes;  /* request line + headers: 16384 */
    uint32_t max_headers;       /* header count: 100 */
};

struct node_config {
    char *path; /* the file it came from, or NULL */
    struct node_settings node;
    struct node_state state; /* services, routes, consumers, plugins */
};

/* Error from loading: "FILE:LINE: message" in text. */
struct node_config_error {
    char text[512];
};

/* Fills s with the defaults above; strings are malloc'd, name is the host name. */
void node_settings_defaults(struct node_settings *s);
/* Frees what the settings own (not the struct itself). */
void node_settings_free(struct node_settings *s);
/* Checks the settings as a whole (addresses, admin token rule); returns 0 or
 * GV_EINVAL with a message in err, like "node.admin: admin_token_file is
 * required when admin is not on loopback" (no FILE:LINE). The loader runs it;
 * run it again after command-line and environment overrides. */
int node_settings_check(const struct node_settings *s, struct node_config_error *err);

/* Loads and validates a YAML file. Returns 0, or GV_EINVAL / GV_ENOENT with a
 * "FILE:LINE: message" in err (out is then untouched). */
int node_config_load_file(const char *path, struct node_config *out, struct node_config_error *err);
/* Same, from a string; name is used in messages in place of FILE. */
int node_config_load_string(const char *name, const char *yaml, size_t len, struct node_config *out,
                            struct node_config_error *err);
void node_config_free(struct node_config *c);

#endif
