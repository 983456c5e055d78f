/* chain.h - plugin configs as the cluster state holds them (JSON), checked
 * and built into a snapshot's plugin chains, and the phases run over a
 * request's chain.
 *
 * Two callers: the node's state validator (control thread) checks a plugin
 * list or the consumers and gets their canonical JSON back; the snapshot
 * builder (control thread) turns a validated state into a gw_pipeline: one
 * chain per route plus the consumers and the auth plugins' credential
 * indexes, all immutable and freed with the snapshot. The phase runners run
 * on worker threads and only read.
 */
#ifndef GV_GATEWAY_PLUGINS_CHAIN_H
#define GV_GATEWAY_PLUGINS_CHAIN_H

#include "common/schema.h"
#include "gateway/plugins/plugin.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A consumer: its name and, per auth plugin slot, that plugin's credentials
 * (a struct of the plugin's credentials->holder schema), or NULL. */
struct gw_consumer {
    char *name;
    void *creds[GW_CTX_SLOTS];
};

/* A snapshot's consumers and the indexes built over them. */
struct gw_consumer_set {
    struct gw_consumer **v;
    size_t n;
    void *index[GW_CTX_SLOTS]; /* per auth plugin slot */
};

struct gw_plugin_inst {
    const struct gw_plugin_ops *ops;
    int slot;
    void *conf; /* typed, prepared; owned */
};

struct gw_chain {
    struct gw_plugin_inst *v;
    size_t n;
    bool any_upstream, any_response; /* some plugin edits those heads */
};

struct gw_pipeline {
    struct gw_chain *routes; /* one per route */
    size_t nroutes;
    struct gw_consumer_set *consumers;
};

/* ---- checking (node state validator) ------------------------------------ */

/* A consumer's schema: "name" and one field per auth plugin. */
const struct gv_schema *gw_consumer_schema(void);

/* Checks the consumers list at path ("consumers") into canonical JSON (a
 * password replaced by its hash) and builds *set (needed to
 * check plugins that look credentials up). Names must be unique, and no
 * credential may belong to two consumers. 0 or an error with err filled. */
int gw_consumers_check(const json_t *list, const char *path, json_t **canonical,
                       struct gw_consumer_set **set, struct gv_schema_error *err);
void gw_consumer_set_free(struct gw_consumer_set *set);
/* Checks a plugin list [{NAME: {...}}, ...] at path into its canonical JSON
 * (every setting spelled out). consumers may be NULL (no consumers). */
int gw_plugins_check(const json_t *list, const char *path, const struct gw_consumer_set *consumers,
                     json_t **canonical, struct gv_schema_error *err);
/* One global plugin (the `plugins` kind): name and its config. */
int gw_plugin_check(const char *name, const json_t *conf, const char *path,
                    const struct gw_consumer_set *consumers, json_t **canonical,
                    struct gv_schema_error *err);

/* Minimal forms (common/schema.h, gv_schema_dump_min) of canonical JSON: a
 * plugin config, a plugin list, the consumers. What is stored and digested.
 * NULL when out of memory (or when given something not canonical). */
json_t *gw_plugin_minimal(const char *name, const json_t *conf);
json_t *gw_plugins_minimal(const json_t *list);
json_t *gw_consumers_minimal(const json_t *list);

/* ---- building (snapshot) ------------------------------------------------ */

/* Builds the pipeline of a validated state: global plugins (a list), each
 * route's own (routes[i].plugins, may be NULL) and the consumers. Returns 0
 * with *out (NULL when no route has a plugin), or a negative error. */
struct gw_route_spec;
int gw_pipeline_build(const json_t *global, const struct gw_route_spec *routes, size_t nroutes,
                      const json_t *consumers, struct gw_pipeline **out);
void gw_pipeline_free(struct gw_pipeline *p);

/* ---- phases (worker thread) --------------------------------------------- */

enum gw_plugin_verdict gw_chain_on_request(struct gw_request *r);
enum gw_plugin_verdict gw_chain_on_body(struct gw_request *r, const char *data, size_t len);
bool gw_chain_upstream_drop(const struct gw_request *r, const char *name, size_t len);
int gw_chain_upstream_add(struct gw_request *r, struct gw_hdr_out *out);
bool gw_chain_response_drop(const struct gw_request *r, const char *name, size_t len);
int gw_chain_response_add(struct gw_request *r, struct gw_hdr_out *out);

/* Appends the plugins' own metrics (Prometheus text). */
int gw_plugins_metrics(struct gv_buf *out);

#endif
