/* process_metrics.c - the process's own metrics in /metrics, under the names
 * Prometheus client libraries use (process_cpu_seconds_total, ...), read
 * from /proc/self when scraped: a few small procfs reads on the control
 * loop, no disk. */
#include "node/admin/admin_int.h"
#include "common/buf.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Fields 14, 15 (utime, stime: ticks), 22 (starttime: ticks after boot),
 * 23 (vsize: bytes) and 24 (rss: pages) of /proc/self/stat. */
struct proc_stat {
    unsigned long long utime, stime, start, vsize, rss;
};

static int read_stat(struct proc_stat *ps)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold spaces */
    if (p == NULL)
        return -1;
    /* after ")": state is field 3 */
    int got = sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
                     "%*d %*d %llu %llu %llu",
                     &ps->utime, &ps->stime, &ps->start, &ps->vsize, &ps->rss);
    return got == 5 ? 0 : -1;
}

static double boot_time_s(void)
{
    char line[256];
    double bt = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "btime %lf", &bt) == 1)
            break;
    fclose(f);
    return bt;
}

static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    long n = 0;
    if (d == NULL)
        return -1;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the one opendir holds */
}

int admin_process_metrics(struct gv_buf *b)
{
    struct proc_stat ps;
    struct rlimit rl;
    double tick = (double)sysconf(_SC_CLK_TCK), page = (double)sysconf(_SC_PAGESIZE);
    if (read_stat(&ps) != 0 || tick <= 0)
        return 0; /* not Linux's procfs: nothing to say */
    int rv = gv_buf_printf(
        b,
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
        "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n"
        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %.0f\n"
        "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
        "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %llu\n"
        "# HELP process_start_time_seconds Start time of the process since unix epoch in "
        "seconds.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n",
        (double)(ps.utime + ps.stime) / tick, (double)ps.rss * page, ps.vsize,
        boot_time_s() + (double)ps.start / tick);
    long fds = open_fds();
    if (rv == 0 && fds >= 0)
        rv = gv_buf_printf(b,
                           "# HELP process_open_fds Number of open file descriptors.\n"
                           "# TYPE process_open_fds gauge\nprocess_open_fds %ld\n",
                           fds);
    if (rv == 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        rv = gv_buf_printf(b,
                           "# HELP process_max_fds Maximum number of open file descriptors.\n"
                           "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n",
                           (unsigned long long)rl.rlim_cur);
    return rv;
}
