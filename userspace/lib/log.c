/* Logging: one readable line per event, "prog[tag]: message", to stderr or
 * the CNI plugin's log file. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include "log.h"

static char log_prog[64] = "podwire";
static enum pw_log_level log_level = PW_LOG_INFO;
static FILE *log_out;

void pw_log_init(const char *prog, enum pw_log_level level, FILE *out)
{
	if (prog)
		snprintf(log_prog, sizeof(log_prog), "%s", prog);
	log_level = level;
	log_out = out;
}

int pw_log_level_parse(const char *s, enum pw_log_level *out)
{
	static const char *names[] = { "error", "warn", "info", "debug" };

	if (!s)
		return -EINVAL;
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(s, names[i]) == 0) {
			*out = (enum pw_log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = PW_LOG_WARN;
		return 0;
	}
	return -EINVAL;
}

bool pw_log_enabled(enum pw_log_level level)
{
	return level <= log_level;
}

void pw_log(enum pw_log_level level, const char *fmt, ...)
{
	static const char *prefix[] = { "error: ", "warning: ", "", "debug: " };
	FILE *out = log_out ? log_out : stderr;
	char msg[1024];
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One fprintf per line so concurrent writers to a shared log file do
	 * not interleave mid-line. */
	fprintf(out, "%s: %s%s\n", log_prog, prefix[level], msg);
	fflush(out);
}
