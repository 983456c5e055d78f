/* http.c - HTTP/1.x helpers shared by the client and upstream sides. */
#include "gateway/http.h"
#include "common/err.h"
#include "common/httpd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int gw_headers_on_field(struct gw_headers *h, uint32_t off, size_t len, uint32_t max)
{
    if (h->in_value) { /* a new header starts: close the previous one */
        h->n++;
        h->in_value = false;
        h->open = false;
    }
    if (!h->open) {
        if (h->n >= max)
            return GV_ERANGE;
        if (h->n == h->cap) {
            uint32_t cap = h->cap ? h->cap * 2 : 16;
            struct gw_header *v = realloc(h->v, cap * sizeof(*v));
            if (v == NULL)
                return GV_ENOMEM;
            h->v = v;
            h->cap = cap;
        }
        h->v[h->n] = (struct gw_header){off, 0, off, 0};
        h->open = true;
    }
    h->v[h->n].name_len += (uint32_t)len;
    return 0;
}

void gw_headers_on_value(struct gw_headers *h, uint32_t off, size_t len)
{
    struct gw_header *x = &h->v[h->n];
    if (!h->in_value) {
        h->in_value = true;
        x->value_off = off;
    }
    x->value_len += (uint32_t)len;
}

void gw_headers_done(struct gw_headers *h)
{
    if (h->open)
        h->n++;
    h->open = false;
    h->in_value = false;
}

void gw_headers_reset(struct gw_headers *h)
{
    h->n = 0;
    h->open = false;
    h->in_value = false;
}

void gw_headers_free(struct gw_headers *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

bool gw_name_eq(const char *name, size_t len, const char *lit)
{
    return strlen(lit) == len && strncasecmp(name, lit, len) == 0;
}

bool gw_is_hop_by_hop(const char *name, size_t len)
{
    static const char *const hop[] = {"connection",
                                      "keep-alive",
                                      "proxy-connection",
                                      "te",
                                      "trailer",
                                      "transfer-encoding",
                                      "upgrade",
                                      "proxy-authenticate",
                                      "proxy-authorization"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (gw_name_eq(name, len, hop[i]))
            return true;
    return false;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

bool gw_token_list_has(const char *list, size_t len, const char *token)
{
    size_t tl = strlen(token);
    size_t i = 0;
    while (i < len) {
        while (i < len && (is_ows(list[i]) || list[i] == ','))
            i++;
        size_t start = i;
        while (i < len && list[i] != ',')
            i++;
        size_t end = i;
        while (end > start && is_ows(list[end - 1]))
            end--;
        if (end - start == tl && strncasecmp(list + start, token, tl) == 0)
            return true;
    }
    return false;
}

const char *gw_cookie_find(const char *hdr, size_t len, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    size_t i = 0;
    while (i < len) {
        while (i < len && (hdr[i] == ' ' || hdr[i] == ';'))
            i++;
        size_t start = i;
        while (i < len && hdr[i] != ';')
            i++;
        const char *eq = memchr(hdr + start, '=', i - start);
        if (eq != NULL && (size_t)(eq - (hdr + start)) == nl &&
            memcmp(hdr + start, name, nl) == 0) {
            const char *v = eq + 1;
            size_t n = (size_t)((hdr + i) - v);
            while (n > 0 && v[n - 1] == ' ')
                n--;
            *vlen = n;
            return v;
        }
    }
    return NULL;
}

const char *gw_reason(int status)
{
    return gv_http_reason(status);
}

int gw_error_response(struct gv_buf *out, int status, const char *msg, const char *request_id,
                      const char *trace_id, bool close)
{
    char body[512];
    /* msg and request_id are ours (fixed texts, hex ids or a validated header),
     * but escape quotes and backslashes anyway so the body is always JSON. */
    char esc_id[130];
    size_t j = 0;
    for (const char *p = request_id; *p && j + 2 < sizeof(esc_id); p++) {
        if (*p == '"' || *p == '\\')
            esc_id[j++] = '\\';
        esc_id[j++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
    }
    esc_id[j] = '\0';
    /* a trace id is 32 hex digits of ours: nothing to escape */
    int n = trace_id[0] != '\0' && strspn(trace_id, "0123456789abcdef") == strlen(trace_id)
                ? snprintf(body, sizeof(body),
                           "{\"error\":\"%s\",\"request_id\":\"%s\",\"trace_id\":\"%.32s\"}\n", msg,
                           esc_id, trace_id)
                : snprintf(body, sizeof(body), "{\"error\":\"%s\",\"request_id\":\"%s\"}\n", msg,
                           esc_id);
    if (n < 0 || (size_t)n >= sizeof(body))
        n = (int)strlen(body);
    return gv_buf_printf(out,
                         "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                         "Content-Length: %d\r\n%s\r\n%s",
                         status, gw_reason(status), n, close ? "Connection: close\r\n" : "", body);
}
