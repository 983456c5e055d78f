/* plugins_http.c - typed configs of the non-auth request plugins
 * (gateway/http_plugins.h) from their validated JSON (state_plugins.c). */
#include "node/plugins_int.h"
#include "gateway/http_plugins.h"
#include "node/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static size_t fill_cidrs(const json_t *list, struct gw_cidr *out)
{
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(list); i++)
        if (gw_cidr_parse(json_string_value(json_array_get(list, i)), &out[n]) == 0)
            n++; /* validated: every entry parses */
    return n;
}

void *node_build_ip_restriction(const json_t *conf, uint64_t seed, const struct gw_pipeline *p)
{
    (void)seed;
    (void)p;
    const json_t *allow = json_object_get(conf, "allow"), *deny = json_object_get(conf, "deny"),
                 *trusted = json_object_get(conf, "trusted_proxies");
    size_t total = json_array_size(allow) + json_array_size(deny) + json_array_size(trusted);
    struct gw_ip_restriction_conf *c = calloc(1, sizeof(*c));
    struct gw_cidr *v = calloc(total + 1, sizeof(*v));
    if (c == NULL || v == NULL) {
        free(c);
        free(v);
        return NULL;
    }
    c->allow = v;
    c->nallow = fill_cidrs(allow, c->allow);
    c->deny = c->allow + c->nallow;
    c->ndeny = fill_cidrs(deny, c->deny);
    c->trusted = c->deny + c->ndeny;
    c->ntrusted = fill_cidrs(trusted, c->trusted);
    return c;
}

/* The list's strings joined by ", ", or dflt (NULL: absent) when none. */
static char *joined(const json_t *list, const char *dflt)
{
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(list); i++)
        n += strlen(json_string_value(json_array_get(list, i))) + 2;
    if (n == 0)
        return dflt ? strdup(dflt) : NULL;
    char *s = malloc(n + 1);
    if (s == NULL)
        return NULL;
    s[0] = '\0';
    for (size_t i = 0; i < json_array_size(list); i++) {
        if (i > 0)
            strcat(s, ", ");
        strcat(s, json_string_value(json_array_get(list, i)));
    }
    return s;
}

void *node_build_cors(const json_t *conf, uint64_t seed, const struct gw_pipeline *p)
{
    (void)seed;
    (void)p;
    const json_t *origins = json_object_get(conf, "origins");
    uint64_t max_age_ms;
    struct gw_cors_conf *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->origins = calloc(json_array_size(origins) + 1, sizeof(char *))) == NULL)
        goto fail;
    c->any_origin = json_array_size(origins) == 0; /* no list: any origin */
    for (size_t i = 0, n = 0; i < json_array_size(origins); i++) {
        const char *o = json_string_value(json_array_get(origins, i));
        if (strcmp(o, "*") == 0)
            c->any_origin = true;
        else if ((c->origins[n++] = strdup(o)) == NULL)
            goto fail;
    }
    c->credentials = json_is_true(json_object_get(conf, "credentials"));
    c->methods = joined(json_object_get(conf, "methods"), "GET, HEAD, PUT, PATCH, POST, DELETE");
    if (c->methods == NULL)
        goto fail;
    if (json_array_size(json_object_get(conf, "headers")) > 0 &&
        (c->headers = joined(json_object_get(conf, "headers"), NULL)) == NULL)
        goto fail;
    if (json_array_size(json_object_get(conf, "expose_headers")) > 0 &&
        (c->expose = joined(json_object_get(conf, "expose_headers"), NULL)) == NULL)
        goto fail;
    c->max_age_s = node_json_duration(json_object_get(conf, "max_age"), &max_age_ms) == 0
                       ? (long long)(max_age_ms / 1000)
                       : -1;
    return c;
fail:
    gw_cors_free(c);
    return NULL;
}

/* Bytes the strings of an edit map/list take (NUL-terminated). */
static size_t strings_size(const json_t *v)
{
    size_t n = 0;
    const char *k;
    const json_t *x;
    if (json_is_object(v))
        json_object_foreach((json_t *)v, k, x) n += strlen(k) + strlen(json_string_value(x)) + 2;
    for (size_t i = 0; json_is_array(v) && i < json_array_size(v); i++)
        n += strlen(json_string_value(json_array_get(v, i))) + 1;
    return n;
}

static char *put_str(char **at, const char *s, uint32_t *len)
{
    char *out = *at;
    *len = (uint32_t)strlen(s);
    memcpy(out, s, *len + 1);
    *at += *len + 1;
    return out;
}

static size_t fill_map(const json_t *m, struct gw_hdr_kv *kv, char **at)
{
    size_t n = 0;
    const char *k;
    const json_t *x;
    if (json_is_object(m))
        json_object_foreach((json_t *)m, k, x)
        {
            kv[n].name = put_str(at, k, &kv[n].name_len);
            kv[n].value = put_str(at, json_string_value(x), &kv[n].value_len);
            n++;
        }
    return n;
}

/* request_headers and response_headers: one allocation holding the struct,
 * the three arrays and every string (gw_hdr_edits_free is free()). */
void *node_build_headers(const json_t *conf, uint64_t seed, const struct gw_pipeline *p)
{
    (void)seed;
    (void)p;
    const json_t *set = json_object_get(conf, "set"), *add = json_object_get(conf, "add"),
                 *rm = json_object_get(conf, "remove");
    size_t nkv = json_object_size(set) + json_object_size(add) + json_array_size(rm);
    size_t size = sizeof(struct gw_hdr_edits) + nkv * sizeof(struct gw_hdr_kv) + strings_size(set) +
                  strings_size(add) + strings_size(rm);
    struct gw_hdr_edits *e = calloc(1, size);
    if (e == NULL)
        return NULL;
    struct gw_hdr_kv *kv = (struct gw_hdr_kv *)(e + 1);
    char *at = (char *)(kv + nkv);
    e->set = kv;
    e->nset = fill_map(set, e->set, &at);
    e->add = e->set + e->nset;
    e->nadd = fill_map(add, e->add, &at);
    e->remove = e->add + e->nadd;
    for (size_t i = 0; i < json_array_size(rm); i++) {
        struct gw_hdr_kv *x = &e->remove[e->nremove++];
        x->name = put_str(&at, json_string_value(json_array_get(rm, i)), &x->name_len);
        x->value = "";
    }
    return e;
}

void *node_build_size_limit(const json_t *conf, uint64_t seed, const struct gw_pipeline *p)
{
    (void)seed;
    (void)p;
    struct gw_size_limit_conf *c = calloc(1, sizeof(*c));
    if (c != NULL)
        c->max_bytes = (uint64_t)json_integer_value(json_object_get(conf, "max_bytes"));
    return c;
}

void *node_build_request_id(const json_t *conf, uint64_t seed, const struct gw_pipeline *p)
{
    (void)seed;
    (void)p;
    struct gw_request_id_conf *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    const char *h = json_string_value(json_object_get(conf, "header"));
    snprintf(c->header, sizeof(c->header), "%s", h ? h : "X-Request-Id");
    c->pass_through = !json_is_false(json_object_get(conf, "pass_through"));
    c->echo = !json_is_false(json_object_get(conf, "echo"));
    c->conn_rule = c->pass_through && strcasecmp(c->header, "X-Request-Id") == 0;
    return c;
}
