/* settings.h - this node's own settings, the config file's node: section
 * (never gossiped): the struct, and the one field table (settings.c) that
 * parses it with "node.KEY: message" errors, fills in its defaults, frees
 * it, dumps it and documents it.
 *
 * Start-up and SIGHUP only, on the main thread, plain malloc. A filled
 * node_settings owns its strings.
 */
#ifndef GV_NODE_CONFIG_SETTINGS_H
#define GV_NODE_CONFIG_SETTINGS_H

#include "common/schema.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct node_tls_cert {
    char *cert; /* PEM chain, leaf first */
    char *key;  /* PEM private key */
};

/* node.tls: given (tls_given) or TLS is off. */
struct node_tls_settings {
    char *listen; /* "0.0.0.0:8443" once tls is given */
    struct node_tls_cert *certs;
    size_t ncerts;
};

/* Strings are NULL when not given and without a default. */
struct node_settings {
    char *name;   /* default: the host name */
    char *listen; /* "0.0.0.0:8080" */
    struct node_tls_settings tls;
    bool tls_given;
    char *admin; /* "127.0.0.1:9901" */
    char *admin_token_file;
    uint64_t admin_body_timeout_ms; /* request body once the head is in: 30s */
    uint32_t admin_max_connections; /* 256 */
    char *gossip;                   /* "0.0.0.0:7946" */
    char *advertise;
    char **join;
    size_t njoin;
    uint64_t join_every_ms; /* seeds looked up again once joined: 30s */
    char *cluster_key_file;
    char *data_dir;
    char *gossip_profile; /* NULL: "lan"; "local" or "wan": memberlist's timings */
    int workers;          /* 0 = auto (one per core) */
    char *log_level;      /* "info" */
    bool access_log;      /* JSON line per request on stdout; default true */
    bool insecure_gossip; /* gossip off loopback without a cluster key, knowingly */
    /* Client-side limits (HAProxy/nginx-like defaults). */
    uint64_t header_timeout_ms; /* whole request head must arrive: 10s */
    uint64_t idle_timeout_ms;   /* keep-alive idle client: 60s */
    uint64_t shutdown_delay_ms; /* after SIGTERM, serving on while not ready: 0 */
    uint32_t max_header_bytes;  /* request line + headers: 16384 */
    uint32_t max_headers;       /* header count: 100 */
};

/* Error from loading or checking: "FILE:LINE: message" or "node.KEY: message". */
struct node_config_error {
    char text[512];
};

/* The node: section's fields. gv_schema_parse(&node_settings_schema, json,
 * s, "node", ...) on settings filled by node_settings_defaults parses the
 * section; its check is node_settings_check's. */
extern const struct gv_schema node_settings_schema;

/* The gossip address when none was given (file, flag or environment):
 * every interface with a cluster key, loopback without one, so an
 * unencrypted mesh is never reachable from elsewhere by default.
 * 0 or GV_ENOMEM. */
int node_settings_default_gossip(struct node_settings *s);

/* Fills s (any contents; overwritten) with the defaults: strings malloc'd,
 * name is the host name. */
void node_settings_defaults(struct node_settings *s);
/* Frees what the settings own (not the struct itself) and zeroes it. */
void node_settings_free(struct node_settings *s);
/* Checks the settings as a whole (addresses, admin token rule); returns 0 or
 * GV_EINVAL with a message in err, like "node.admin: admin_token_file is
 * required when admin is not on loopback" (no FILE:LINE). The loader runs it;
 * run it again after command-line and environment overrides. */
int node_settings_check(const struct node_settings *s, struct node_config_error *err);

#endif
