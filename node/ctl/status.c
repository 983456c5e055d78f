/* status.c - `grapevine ctl status [--watch]`: this node and every
 * member's config version and digest, reprinted as the change spreads. */
#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"

/* cluster/hlc.h's layout; ctl links common only, so it says it again */
#define CTL_HLC_EPOCH_MS     1735689600000LL
#define CTL_HLC_LOGICAL_BITS 12
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

/* "3d 4h", "2h 5m", "5m 37s", "12s". */
static const char *human_duration(long long ms, char *out, size_t n)
{
    long long s = ms / 1000;
    if (s >= 86400)
        snprintf(out, n, "%lldd %lldh", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(out, n, "%lldh %lldm", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(out, n, "%lldm %llds", s / 60, s % 60);
    else
        snprintf(out, n, "%llds", s);
    return out;
}

/* A config version is a hybrid-logical-clock stamp: shown as the UTC time
 * of the write it stands for ("12-06T21:28:57.123", "+N" for its counter),
 * "file" for 0 (only config files seeded it). */
static const char *human_version(long long v, char *out, size_t n)
{
    if (v <= 0) {
        snprintf(out, n, "file");
        return out;
    }
    char when[GV_RFC3339_LEN];
    long long logical = v & ((1LL << CTL_HLC_LOGICAL_BITS) - 1);
    gv_rfc3339_ms((uint64_t)(v >> CTL_HLC_LOGICAL_BITS) + CTL_HLC_EPOCH_MS, when, sizeof(when));
    /* "2026-12-06T21:28:57.123Z" -> "12-06T21:28:57.123" (one word: tables split) */
    snprintf(out, n, "%.18s", when + 5);
    if (logical > 0)
        snprintf(out + strlen(out), n - strlen(out), "+%lld", logical);
    return out;
}

static void print_node_status(const json_t *st)
{
    const json_t *m = json_object_get(st, "members");
    char up[32], ver[40];
    printf("node     %s (grapevine %s, up %s)\n", ctl_str(st, "node"), ctl_str(st, "version"),
           human_duration(json_integer_value(json_object_get(st, "uptime_ms")), up, sizeof(up)));
    printf(
        "config   version %s, digest %.12s\n",
        human_version(json_integer_value(json_object_get(st, "config_version")), ver, sizeof(ver)),
        ctl_str(st, "config_digest"));
    printf("members  %lld alive, %lld suspect, %lld dead, %lld left\n",
           (long long)json_integer_value(json_object_get(m, "alive")),
           (long long)json_integer_value(json_object_get(m, "suspect")),
           (long long)json_integer_value(json_object_get(m, "dead")),
           (long long)json_integer_value(json_object_get(m, "left")));
}

static int by_name(const void *a, const void *b)
{
    return strcmp(ctl_str(*(json_t *const *)a, "name"), ctl_str(*(json_t *const *)b, "name"));
}

/* The members table in b, sorted by name; members whose config digest is
 * not self_digest are marked with '*'. */
static void render_members(struct gv_buf *b, const json_t *members, const char *self,
                           const char *self_digest)
{
    size_t n = json_array_size(members), differ = 0;
    json_t **v = calloc(n ? n : 1, sizeof(*v));
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(members, i);
    qsort(v, n, sizeof(*v), by_name);
    gv_buf_printf(b, "%-20s %-8s %-22s %-12s\n", "NAME", "STATE", "CONFIG_VERSION",
                  "CONFIG_DIGEST");
    for (size_t i = 0; i < n; i++) {
        const json_t *m = v[i];
        char ver[40];
        bool mark = strcmp(ctl_str(m, "config_digest"), self_digest) != 0;
        differ += mark;
        gv_buf_printf(b, "%-20s %-8s %-22s %-12.12s%s\n", ctl_str(m, "name"), ctl_str(m, "state"),
                      human_version(json_integer_value(json_object_get(m, "config_version")), ver,
                                    sizeof(ver)),
                      *ctl_str(m, "config_digest") ? ctl_str(m, "config_digest") : "-",
                      mark ? " *" : "");
    }
    free(v);
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
        fprintf(stderr, "hint: grapevine ctl status --help lists its options\n");
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

/* A change followed as it spreads (watch): the latest change this node
 * applied, and how many live members serve its digest. */
struct spread {
    char digest[72]; /* the node's digest when it was seen; "" before */
    char what[300];  /* "routes/x from gw1" */
    uint64_t at_ms;  /* when it was made (the writer's clock), 0: unknown */
    bool reported;   /* its "N/N nodes" line was printed */
};

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A new digest on this node: which change it is (GET /cluster/changes). */
static void spread_start(struct ctl *ctl, struct spread *sp, const char *digest)
{
    char why[600];
    json_t *changes = NULL;
    snprintf(sp->digest, sizeof(sp->digest), "%s", digest);
    sp->reported = false;
    sp->at_ms = 0;
    snprintf(sp->what, sizeof(sp->what), "config %.12s", digest);
    if (ctl_get_json(ctl, "/cluster/changes", &changes, why, sizeof(why)) != 0)
        return;
    const json_t *c = json_array_get(changes, 0);
    if (c != NULL) {
        snprintf(sp->what, sizeof(sp->what), "%s/%s%s from %s", ctl_str(c, "kind"),
                 ctl_str(c, "name"),
                 json_is_true(json_object_get(c, "deleted")) ? " (deleted)" : "",
                 *ctl_str(c, "origin") ? ctl_str(c, "origin") : "a config file");
        long long stamp = json_integer_value(json_object_get(c, "stamp"));
        sp->at_ms = stamp > 0 ? (uint64_t)(stamp >> CTL_HLC_LOGICAL_BITS) + CTL_HLC_EPOCH_MS : 0;
    }
    json_decref(changes);
}

/* "routes/x from gw1: 2/3 nodes" (and "in N ms" once all have it) into b;
 * true when every live member serves it. */
static bool spread_line(struct spread *sp, const json_t *members, struct gv_buf *b)
{
    size_t i, alive = 0, have = 0;
    const json_t *m;
    json_array_foreach(members, i, m)
    {
        if (strcmp(ctl_str(m, "state"), "alive") != 0)
            continue;
        alive++;
        have += strcmp(ctl_str(m, "config_digest"), sp->digest) == 0;
    }
    gv_buf_printf(b, "%s: %zu/%zu nodes", sp->what, have, alive);
    uint64_t now = wall_ms();
    if (have == alive && sp->at_ms > 0)
        gv_buf_printf(b, " in %llu ms",
                      (unsigned long long)(now > sp->at_ms ? now - sp->at_ms : 0));
    gv_buf_puts(b, "\n");
    return have == alive;
}

/* The members table (or why there is none) into table, and the spread of
 * the latest change when sp is given (into *line); st is this node's
 * /status (taken over), or NULL to fetch it again. */
static void members_table(struct ctl *ctl, json_t *st, struct gv_buf *table, struct spread *sp,
                          struct gv_buf *line, bool *complete)
{
    char why[600];
    json_t *members = NULL;
    gv_buf_reset(table);
    if (st == NULL && ctl_get_json(ctl, "/status", &st, why, sizeof(why)) != 0) {
        gv_buf_printf(table, "(no answer: %s)\n", why);
    } else if (ctl_get_json(ctl, "/cluster/members", &members, why, sizeof(why)) != 0) {
        gv_buf_printf(table, "(no members: %s)\n", why);
    } else {
        render_members(table, members, ctl_str(st, "node"), ctl_str(st, "config_digest"));
        if (sp != NULL && strcmp(sp->digest, ctl_str(st, "config_digest")) != 0)
            spread_start(ctl, sp, ctl_str(st, "config_digest"));
        if (sp != NULL && json_integer_value(json_object_get(st, "config_version")) > 0) {
            gv_buf_reset(line);
            *complete = spread_line(sp, members, line);
        }
    }
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

/* What the watch has shown, to tell when to show again. */
struct watch_view {
    struct gv_buf table, last, line;
    struct spread sp;
    bool tty;
    long interval_ms;
};

/* On a terminal: the screen redrawn in place like top (this node, the
 * table, the latest change and how far it has spread). Else (a pipe, a
 * file): the table appended, stamped with the time since start, whenever it
 * changes, and each change's line once every live member has it. */
static void show(struct watch_view *w, const json_t *st, bool first, bool complete, double t)
{
    bool changed =
        w->table.len != w->last.len || memcmp(w->table.data ? w->table.data : "",
                                              w->last.data ? w->last.data : "", w->table.len) != 0;
    if (w->tty) {
        printf("\033[H\033[2J");
        if (st != NULL)
            print_node_status(st);
        printf("\n%s\n%s", w->table.data ? w->table.data : "", w->line.data ? w->line.data : "");
        printf("\n(every %ld ms; Ctrl-C ends)\n", w->interval_ms);
    } else if (changed) {
        printf("%s+%.3fs\n%s", first ? "" : "\n", t, w->table.data ? w->table.data : "");
    }
    if (!w->tty && complete && !w->sp.reported && w->line.len > 0)
        printf("%s", w->line.data);
    w->sp.reported |= complete;
    fflush(stdout);
    gv_buf_reset(&w->last);
    gv_buf_append(&w->last, w->table.data ? w->table.data : "", w->table.len);
}

/* Shows the members until Ctrl-C or the timeout (see show()). */
static void watch(struct ctl *ctl, const struct status_opts *o, json_t *st)
{
    struct sigaction sa = {.sa_handler = on_interrupt}; /* no SA_RESTART: wake the sleep */
    struct watch_view w = {.tty = isatty(STDOUT_FILENO) == 1, .interval_ms = o->interval_ms};
    double start = now_s();
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    gv_buf_init(&w.table);
    gv_buf_init(&w.last);
    gv_buf_init(&w.line);
    for (bool first = true; !interrupted; first = false) {
        bool complete = false;
        char why[600];
        json_t *now = NULL;
        if (w.tty && ctl_get_json(ctl, "/status", &now, why, sizeof(why)) != 0)
            now = NULL;
        members_table(ctl, first ? st : json_incref(now), &w.table, &w.sp, &w.line, &complete);
        if (first) /* the change already there when watching began is no news */
            w.sp.reported = true;
        if (interrupted) {
            json_decref(now);
            break;
        }
        show(&w, now, first, complete, now_s() - start);
        json_decref(now);
        if (!nap(o, start))
            break;
    }
    gv_buf_free(&w.table);
    gv_buf_free(&w.last);
    gv_buf_free(&w.line);
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
    if (o.watch) {
        if (!isatty(STDOUT_FILENO)) {
            print_node_status(st);
            printf("\n");
        }
        watch(ctl, &o, st);
        return 0;
    }
    print_node_status(st);
    printf("\n");
    fflush(stdout);
    struct gv_buf table;
    gv_buf_init(&table);
    members_table(ctl, st, &table, NULL, NULL, NULL);
    fputs(table.data ? table.data : "", stdout);
    gv_buf_free(&table);
    return 0;
}
