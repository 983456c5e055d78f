/* pipeline.c - building plugin chains and running their phases; see plugin.h. */
#include "gateway/pipeline.h"
#include "gateway/auth.h"
#include "gateway/plugin.h"
#include "gateway/snapshot.h"
#include "common/err.h"

#include <stdlib.h>
#include <string.h>

struct gw_pipeline *gw_pipeline_new(size_t nroutes)
{
    struct gw_pipeline *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->routes = calloc(nroutes + 1, sizeof(*p->routes));
    if (p->routes == NULL) {
        free(p);
        return NULL;
    }
    p->nroutes = nroutes;
    return p;
}

int gw_chain_put(struct gw_chain *c, const struct gw_plugin_ops *ops, void *conf)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->v[i].ops->name, ops->name) == 0) {
            if (c->v[i].ops->free_conf != NULL)
                c->v[i].ops->free_conf(c->v[i].conf);
            c->v[i].ops = ops;
            c->v[i].conf = conf;
            return 0;
        }
    }
    struct gw_plugin *v = realloc(c->v, (c->n + 1) * sizeof(*v));
    if (v == NULL) {
        if (ops->free_conf != NULL)
            ops->free_conf(conf);
        return GV_ENOMEM;
    }
    c->v = v;
    size_t at = c->n;
    while (at > 0 && c->v[at - 1].ops->order > ops->order) {
        c->v[at] = c->v[at - 1];
        at--;
    }
    c->v[at].ops = ops;
    c->v[at].conf = conf;
    c->n++;
    return 0;
}

void gw_pipeline_free(struct gw_pipeline *p)
{
    if (p == NULL)
        return;
    for (size_t r = 0; r < p->nroutes; r++) {
        struct gw_chain *c = &p->routes[r];
        for (size_t i = 0; i < c->n; i++)
            if (c->v[i].ops->free_conf != NULL)
                c->v[i].ops->free_conf(c->v[i].conf);
        free(c->v);
    }
    free(p->routes);
    gw_consumers_free(p->consumers);
    free(p);
}

static const struct gw_chain *chain_of(const struct gw_request *r)
{
    const struct gw_pipeline *p = r->view ? r->view->snap->pipeline : NULL;
    if (p == NULL || r->route < 0 || (size_t)r->route >= p->nroutes)
        return NULL;
    return &p->routes[r->route];
}

enum gw_plugin_verdict gw_pipeline_request_headers(struct gw_request *r)
{
    const struct gw_chain *c = chain_of(r);
    for (size_t i = 0; c != NULL && i < c->n; i++)
        if (c->v[i].ops->on_request_headers != NULL &&
            c->v[i].ops->on_request_headers(c->v[i].conf, r) == GW_PLUGIN_ANSWERED)
            return GW_PLUGIN_ANSWERED;
    return GW_PLUGIN_NEXT;
}

enum gw_plugin_verdict gw_pipeline_request_body(struct gw_request *r, const char *data, size_t len)
{
    const struct gw_chain *c = chain_of(r);
    for (size_t i = 0; c != NULL && i < c->n; i++)
        if (c->v[i].ops->on_request_body != NULL &&
            c->v[i].ops->on_request_body(c->v[i].conf, r, data, len) == GW_PLUGIN_ANSWERED)
            return GW_PLUGIN_ANSWERED;
    return GW_PLUGIN_NEXT;
}

int gw_pipeline_response_headers(struct gw_request *r, struct gv_buf *head)
{
    const struct gw_chain *c = chain_of(r);
    int rv = 0;
    for (size_t i = 0; c != NULL && i < c->n && rv == 0; i++)
        if (c->v[i].ops->on_response_headers != NULL)
            rv = c->v[i].ops->on_response_headers(c->v[i].conf, r, head);
    return rv;
}
