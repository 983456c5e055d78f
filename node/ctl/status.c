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

struct status_opts {
    bool watch, as_json;
    long interval_ms;
    double timeout_s; /* 0: until interrupted */
};

/* One option's value into o; 0, or 2 after a message. */
static int status_option(int ch, struct status_opts *o)
{
    char *end;
    switch (ch) {
    case 'w':
        o->watch = true;
        return 0;
    case 'j':
        o->as_json = true;
        return 0;
    case 'i':
        o->interval_ms = strtol(optarg, &end, 10);
        if (*end == '\0' && o->interval_ms >= 10 && o->interval_ms <= 3600000)
            return 0;
        fprintf(stderr, "grapevine ctl status: --interval takes milliseconds (>= 10)\n");
        return 2;
    case 'T':
        o->timeout_s = strtod(optarg, &end);
        if (*end == '\0' && o->timeout_s >= 0)
            return 0;
        fprintf(stderr, "grapevine ctl status: --timeout takes seconds\n");
        return 2;
    default:
        return 2;
    }
}

static int parse_status_opts(int argc, char **argv, struct status_opts *o)
{
    static const struct option longopts[] = {{"watch", no_argument, NULL, 'w'},
                                             {"interval", required_argument, NULL, 'i'},
                                             {"timeout", required_argument, NULL, 'T'},
                                             {"json", no_argument, NULL, 'j'},
                                             {NULL, 0, NULL, 0}};
    int ch, rc = 0;
    *o = (struct status_opts){.interval_ms = 500};
    optind = 0;
    while (rc == 0 && (ch = getopt_long(argc, argv, "+w", longopts, NULL)) != -1)
        rc = status_option(ch, o);
    if (rc == 0 && optind < argc) {
        fprintf(stderr, "grapevine ctl status: unexpected argument \"%s\"\n", argv[optind]);
        rc = 2;
    }
    return rc;
}

/* The members table (or why there is none) into table; st is this node's
 * /status (taken over), or NULL to fetch it again. */
static void members_table(struct ctl *ctl, json_t *st, struct gv_buf *table)
{
    char why[600];
    json_t *members = NULL;
    gv_buf_reset(table);
    if (st == NULL && ctl_get_json(ctl, "/status", &st, why, sizeof(why)) != 0)
        gv_buf_printf(table, "(no answer: %s)\n", why);
    else if (ctl_get_json(ctl, "/cluster/members", &members, why, sizeof(why)) != 0)
        gv_buf_printf(table, "(no members: %s)\n", why);
    else
        render_members(table, members, ctl_str(st, "node"), ctl_str(st, "config_digest"));
    json_decref(st);
    json_decref(members);
}

/* Sleeps the interval, or what is left of the timeout; false once it is
 * out. */
static bool nap(const struct status_opts *o, double start)
{
    double left = o->timeout_s > 0 ? start + o->timeout_s - now_s() : 1e9;
    if (left <= 0)
        return false;
    double t = GV_MIN((double)o->interval_ms / 1000.0, left);
    struct timespec ts = {(time_t)t, (long)((t - (double)(time_t)t) * 1e9)};
    nanosleep(&ts, NULL);
    return true;
}

/* Reprints the table, stamped with the time since start, whenever it
 * changes; until Ctrl-C or the timeout. */
static void watch(struct ctl *ctl, const struct status_opts *o, json_t *st)
{
    struct sigaction sa = {.sa_handler = on_interrupt}; /* no SA_RESTART: wake the sleep */
    struct gv_buf table, last;
    double start = now_s();
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    gv_buf_init(&table);
    gv_buf_init(&last);
    for (bool first = true; !interrupted; first = false) {
        members_table(ctl, first ? st : NULL, &table);
        if (interrupted)
            break;
        if (table.len != last.len || memcmp(table.data, last.data, table.len) != 0) {
            printf("%s+%.3fs\n%s", first ? "" : "\n", now_s() - start, table.data);
            fflush(stdout);
            gv_buf_reset(&last);
            gv_buf_append(&last, table.data, table.len);
        }
        if (!nap(o, start))
            break;
    }
    gv_buf_free(&table);
    gv_buf_free(&last);
}

int ctl_cmd_status(struct ctl *ctl, int argc, char **argv)
{
    struct status_opts o;
    char why[600];
    json_t *st = NULL;
    int rc = parse_status_opts(argc, argv, &o);
    if (rc != 0)
        return rc;
    if (ctl_get_json(ctl, "/status", &st, why, sizeof(why)) != 0) {
        fprintf(stderr, "grapevine ctl: %s\n", why);
        return 1;
    }
    if (o.as_json) {
        char *text = json_dumps(st, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(st);
        return 0;
    }
    print_node_status(st);
    printf("\n");
    fflush(stdout);
    if (o.watch) {
        watch(ctl, &o, st);
        return 0;
    }
    struct gv_buf table;
    gv_buf_init(&table);
    members_table(ctl, st, &table);
    fputs(table.data ? table.data : "", stdout);
    gv_buf_free(&table);
    return 0;
}
