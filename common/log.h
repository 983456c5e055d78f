/* log.h - leveled logging to stderr, safe from any thread.
 *
 * One line per call, written with a single write() so lines from different
 * threads never interleave. The level is process-wide and may change at run
 * time (SIGHUP).
 */
#ifndef GV_COMMON_LOG_H
#define GV_COMMON_LOG_H

enum gv_log_level { GV_LOG_DEBUG, GV_LOG_INFO, GV_LOG_WARN, GV_LOG_ERROR };

void gv_log_set_level(enum gv_log_level level);
enum gv_log_level gv_log_get_level(void);
/* Parses "debug", "info", "warn", "error"; returns 0 or GV_EINVAL. */
int gv_log_parse_level(const char *s, enum gv_log_level *out);

void gv_log(enum gv_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define gv_debug(...) gv_log(GV_LOG_DEBUG, __VA_ARGS__)
#define gv_info(...)  gv_log(GV_LOG_INFO, __VA_ARGS__)
#define gv_warn(...)  gv_log(GV_LOG_WARN, __VA_ARGS__)
#define gv_error(...) gv_log(GV_LOG_ERROR, __VA_ARGS__)

#endif
