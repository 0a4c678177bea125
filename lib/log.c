// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <bpf/libbpf.h>

#include "log.h"

static enum log_level log_level = LOG_LEVEL_INFO;
static FILE *log_stream;

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warning",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

void log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level log_get_level(void)
{
	return log_level;
}

void log_set_stream(FILE *f)
{
	log_stream = f;
}

static void log_vemit(enum log_level level, const char *msg, const char *fmt, va_list ap)
{
	FILE *out = log_stream ? log_stream : stderr;
	char ts[32];
	struct timespec now;
	struct tm tm;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);

	/* One fprintf per line keeps lines whole when stderr is shared. */
	char kv[1024] = "";
	if (fmt && *fmt)
		vsnprintf(kv, sizeof(kv), fmt, ap);
	fprintf(out, "time=%s.%03ldZ level=%s msg=\"%s\"%s%s\n", ts, now.tv_nsec / 1000000,
		level_names[level], msg, kv[0] ? " " : "", kv);
	fflush(out);
}

void log_emit(enum log_level level, const char *msg, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(level, msg, fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* libbpf warnings are often expected probes; demote each level by one. */
	enum log_level ours = level == LIBBPF_WARN ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG;
	char line[1024];
	size_t n;

	if (ours > log_level)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	for (char *p = line; *p; p++)
		if (*p == '"')
			*p = '\'';
	log_emit(ours, "libbpf", "detail=\"%s\"", line);
	return 0;
}

void log_hook_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
