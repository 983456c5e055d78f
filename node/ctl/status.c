/* status.c - `grapevine ctl status [--watch]`: this node and every
 * member's config version and digest, reprinted as the change spreads. */
#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"
#include "node/ctl/ctl_int.h"

#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* ---- status ---------------------------------------------------------------- */

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void print_node_status(const json_t *st)
{
    const json_t *m = json_object_get(st, "members");
    long long up = json_integer_value(json_object_get(st, "uptime_ms"));
    printf("node     %s (grapevine %s, up %lld.%03llds)\n", ctl_str(st, "node"),
           ctl_str(st, "version"), up / 1000, up % 1000);
    printf("config   version %lld, digest %.12s\n",
           (long long)json_integer_value(json_object_get(st, "config_version")),
           ctl_str(st, "config_digest"));
    printf("members  %lld alive, %lld suspect, %lld dead, %lld left\n",
           (long long)json_integer_value(json_object_get(m, "alive")),
           (long long)json_integer_value(json_object_get(m, "suspect")),
           (long long)json_integer_value(json_object_get(m, "dead")),
           (long long)json_integer_value(json_object_get(m, "left")));
}

/* The members table in b; members whose config digest is not self_digest
 * are marked with '*'. */
static void render_members(struct gv_buf *b, const json_t *members, const char *self,
                           const char *self_digest)
{
    size_t i, differ = 0;
    const json_t *m;
    gv_buf_printf(b, "%-20s %-8s %-18s %-12s\n", "NAME", "STATE", "CONFIG_VERSION",
                  "CONFIG_DIGEST");
    json_array_foreach(members, i, m)
    {
        bool mark = strcmp(ctl_str(m, "config_digest"), self_digest) != 0;
        differ += mark;
        gv_buf_printf(b, "%-20s %-8s %-18lld %-12.12s%s\n", ctl_str(m, "name"), ctl_str(m, "state"),
                      (long long)json_integer_value(json_object_get(m, "config_version")),
                      *ctl_str(m, "config_digest") ? ctl_str(m, "config_digest") : "-",
                      mark ? " *" : "");
    }
    if (differ > 0)
        gv_buf_printf(b, "* %zu of %zu members serve a config other than %s's\n", differ,
                      json_array_size(members), self);
}

int ctl_cmd_status(struct ctl *ctl, int argc, char **argv)
{
    static const struct option longopts[] = {{"watch", no_argument, NULL, 'w'},
                                             {"interval", required_argument, NULL, 'i'},
                                             {"timeout", required_argument, NULL, 'T'},
                                             {"json", no_argument, NULL, 'j'},
                                             {NULL, 0, NULL, 0}};
    bool watch = false, as_json = false;
    long interval_ms = 500;
    double timeout_s = 0;
    char *end;
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "+w", longopts, NULL)) != -1) {
        switch (ch) {
        case 'w':
            watch = true;
            break;
        case 'i':
            interval_ms = strtol(optarg, &end, 10);
            if (*end != '\0' || interval_ms < 10 || interval_ms > 3600000) {
                fprintf(stderr, "grapevine ctl status: --interval takes milliseconds (>= 10)\n");
                return 2;
            }
            break;
        case 'T':
            timeout_s = strtod(optarg, &end);
            if (*end != '\0' || !(timeout_s >= 0)) {
                fprintf(stderr, "grapevine ctl status: --timeout takes seconds\n");
                return 2;
            }
            break;
        case 'j':
            as_json = true;
            break;
        default:
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "grapevine ctl status: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }

    char why[600];
    json_t *st = NULL, *members = NULL;
    if (ctl_get_json(ctl, "/status", &st, why, sizeof(why)) != 0) {
        fprintf(stderr, "grapevine ctl: %s\n", why);
        return 1;
    }
    if (as_json) {
        char *text = json_dumps(st, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(st);
        return 0;
    }
    print_node_status(st);
    printf("\n");
    fflush(stdout);

    struct sigaction sa = {.sa_handler = on_interrupt}; /* no SA_RESTART: wake the sleep */
    if (watch) {
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    double start = now_s();
    struct gv_buf table, last;
    gv_buf_init(&table);
    gv_buf_init(&last);
    for (bool first = true; !interrupted; first = false) {
        gv_buf_reset(&table);
        if (!first && ctl_get_json(ctl, "/status", &st, why, sizeof(why)) != 0)
            gv_buf_printf(&table, "(no answer: %s)\n", why);
        else if (ctl_get_json(ctl, "/cluster/members", &members, why, sizeof(why)) != 0)
            gv_buf_printf(&table, "(no members: %s)\n", why);
        else
            render_members(&table, members, ctl_str(st, "node"), ctl_str(st, "config_digest"));
        json_decref(st);
        json_decref(members);
        st = members = NULL;
        if (!watch) {
            fputs(table.data ? table.data : "", stdout);
            break;
        }
        if (interrupted)
            break;
        if (table.len != last.len || memcmp(table.data, last.data, table.len) != 0) {
            printf("%s+%.3fs\n%s", first ? "" : "\n", now_s() - start, table.data);
            fflush(stdout);
            gv_buf_reset(&last);
            gv_buf_append(&last, table.data, table.len);
        }
        double left = timeout_s > 0 ? start + timeout_s - now_s() : 1e9;
        if (left <= 0)
            break;
        double nap = GV_MIN((double)interval_ms / 1000.0, left);
        struct timespec ts = {(time_t)nap, (long)((nap - (double)(time_t)nap) * 1e9)};
        nanosleep(&ts, NULL);
    }
    gv_buf_free(&table);
    gv_buf_free(&last);
    return 0;
}
