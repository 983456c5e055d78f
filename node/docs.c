/* docs.c - `grapevine docs config`: the configuration reference, written
 * from the schemas themselves (common/schema.h), so it cannot drift from
 * what the config file and the admin API accept. docs/config-reference.md
 * is its output; tests/scenario/test_docs.py checks the two agree. */
#include "node/docs.h"
#include "balancer/lb.h"
#include "balancer/service.h"
#include "gateway/plugins/chain.h"
#include "gateway/plugins/plugin.h"
#include "gateway/router.h"
#include "node/config/settings.h"
#include "common/buf.h"
#include "common/err.h"
#include "node/admin/assets.h"

#include <stdio.h>
#include <string.h>

#define TABLE_HEAD "| key | type | default | meaning |\n|---|---|---|---|\n"

static int section(struct gv_buf *b, const char *title, const char *intro,
                   const struct gv_schema *s, const char *prefix)
{
    int rv = gv_buf_printf(b, "\n## %s\n\n%s\n\n" TABLE_HEAD, title, intro);
    return rv ? rv : gv_schema_doc(s, prefix, b);
}

static int balancers(struct gv_buf *b)
{
    int rv = gv_buf_puts(b, "\nBalancing algorithms (`balancer`):\n\n");
    for (size_t i = 0; rv == 0 && i < lb_algo_count(); i++) {
        const struct lb_ops *o = lb_algo_at(i);
        rv = gv_buf_printf(b, "- `%s`: %s\n", o->name, o->doc ? o->doc : "");
    }
    return rv;
}

static int plugin_sections(struct gv_buf *b)
{
    const struct gw_plugin_ops *const *list = gw_plugin_list();
    char prefix[160];
    int rv = gv_buf_puts(b, "\n## Plugins\n\nIn a route's `plugins:` list or the global `plugins:` "
                            "list, each as `- NAME: {settings}`. They run in the order below "
                            "(lower first); a route's plugin replaces a global one of the same "
                            "name.\n");
    for (size_t i = 0; rv == 0 && i < gw_plugin_count(); i++) {
        const struct gw_plugin_ops *o = list[i];
        snprintf(prefix, sizeof(prefix), "%s", o->name);
        rv = gv_buf_printf(b, "\n### %s (order %d)\n\n%s.\n\n" TABLE_HEAD, o->name, o->order,
                           o->doc ? o->doc : "");
        rv = rv ? rv : gv_schema_doc(o->schema, prefix, b);
        if (rv == 0 && o->credentials != NULL) {
            rv = gv_buf_printf(b, "\nConsumers hold its credentials under `%s:`:\n\n" TABLE_HEAD,
                               o->name);
            rv = rv ? rv : gv_schema_doc(o->credentials->holder, "consumers[]", b);
        }
    }
    return rv;
}

int node_docs_config(FILE *out)
{
    struct gv_buf b;
    gv_buf_init(&b);
    int rv = gv_buf_puts(&b, "# Configuration reference\n\n"
                             "Written by `grapevine docs config` from the schemas the config file "
                             "and the admin API are checked against; do not edit by hand. A "
                             "duration is `250ms`, `2s`, `1m`, `1h` or a number of seconds. "
                             "String values never contain control characters (CR, LF, NUL...) "
                             "unless a row says multi-line.\n");
    rv = rv ? rv
            : section(&b, "node:", "This node's own settings; never replicated.",
                      &node_settings_schema, "node");
    rv = rv ? rv
            : section(&b, "services", "Where requests go: targets and how to pick one.",
                      &lb_service_schema, "services[]");
    rv = rv ? rv : balancers(&b);
    rv = rv ? rv
            : section(&b, "routes", "Which requests go to which service.", &gw_route_schema,
                      "routes[]");
    rv = rv ? rv
            : section(&b, "consumers",
                      "Callers the auth plugins identify; each auth plugin adds a field for "
                      "its credentials (see the plugins below).",
                      gw_consumer_schema(), "consumers[]");
    rv = rv ? rv : plugin_sections(&b);
    if (rv == 0)
        fwrite(b.data, 1, b.len, out);
    gv_buf_free(&b);
    return rv;
}

/* ---- OpenAPI ------------------------------------------------------------- */

static const struct admin_asset *openapi_base(void)
{
    for (size_t i = 0; i < admin_nassets; i++)
        if (strcmp(admin_assets[i].path, "/openapi.base.json") == 0)
            return &admin_assets[i];
    return NULL;
}

/* A plugin's settings: any one plugin's schema (by the path's name). */
static json_t *plugin_settings_schema(void)
{
    const struct gw_plugin_ops *const *list = gw_plugin_list();
    json_t *any = json_array();
    for (size_t i = 0; any != NULL && i < gw_plugin_count(); i++) {
        json_t *js = gv_schema_json_schema(list[i]->schema);
        if (js != NULL)
            json_object_set_new(js, "title", json_string(list[i]->name));
        json_array_append_new(any, js);
    }
    return json_pack("{s:s,s:o*}", "description",
                     "the settings of the plugin the path names (one of these)", "anyOf", any);
}

json_t *node_docs_openapi(void)
{
    const struct admin_asset *a = openapi_base();
    json_error_t e;
    json_t *doc = a ? json_loadb((const char *)a->data, a->len, 0, &e) : NULL;
    json_t *schemas = json_object_get(json_object_get(doc, "components"), "schemas");
    if (!json_is_object(schemas)) {
        json_decref(doc);
        return NULL;
    }
    json_object_set_new(json_object_get(doc, "info"), "version", json_string(GV_VERSION));
    json_object_set_new(schemas, "Service", gv_schema_json_schema(&lb_service_schema));
    json_object_set_new(schemas, "Route", gv_schema_json_schema(&gw_route_schema));
    json_object_set_new(schemas, "Consumer", gv_schema_json_schema(gw_consumer_schema()));
    json_object_set_new(schemas, "PluginSettings", plugin_settings_schema());
    return doc;
}

int node_docs_openapi_write(FILE *out)
{
    json_t *doc = node_docs_openapi();
    int rv = doc && json_dumpf(doc, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0 ? 0 : GV_ENOMEM;
    if (rv == 0)
        fputc('\n', out);
    json_decref(doc);
    return rv;
}
