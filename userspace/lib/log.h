/* Logging shared by podwired, podwirectl and the CNI plugin. */
#ifndef PW_LOG_H
#define PW_LOG_H
#include <stdbool.h>
#include <stdio.h>

enum pw_log_level { PW_LOG_ERROR = 0, PW_LOG_WARN, PW_LOG_INFO, PW_LOG_DEBUG };

/* Where logs go (default stderr) and the most verbose level printed (default INFO).
 * The CNI plugin points this at its logFile: its stdout belongs to the result JSON. */
void pw_log_init(const char *prog, enum pw_log_level level, FILE *out);
int pw_log_level_parse(const char *s, enum pw_log_level *out);
/* Whether level is printed: skips work done only for a log line. */
bool pw_log_enabled(enum pw_log_level level);
void pw_log(enum pw_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pw_err(...)   pw_log(PW_LOG_ERROR, __VA_ARGS__)
#define pw_warn(...)  pw_log(PW_LOG_WARN, __VA_ARGS__)
#define pw_info(...)  pw_log(PW_LOG_INFO, __VA_ARGS__)
#define pw_debug(...) pw_log(PW_LOG_DEBUG, __VA_ARGS__)
#endif
