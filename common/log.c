#include "common/log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <syslog.h>

enum ic_log_level ic_log_level = IC_LOG_INFO;

static const char *log_program = "isocache";
static bool log_syslog;

void
ic_log_set_program(const char *name)
{
	log_program = name;
}

void
ic_log_to_syslog(void)
{
	openlog(log_program, LOG_PID, LOG_DAEMON);
	log_syslog = true;
}

void
ic_log_write(enum ic_log_level level, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	/* Errors read "program: what: why", as a command-line tool's should. */
	static const char *const tag[] = { "", "warning: ", "", "debug: " };
	va_list ap;

	va_start(ap, fmt);
	if (log_syslog) {
		vsyslog(prio[level], fmt, ap);
	} else {
		/* One fprintf per line so lines of concurrent threads do not interleave. */
		char line[1024];
		vsnprintf(line, sizeof(line), fmt, ap);
		fprintf(stderr, "%s: %s%s\n", log_program, tag[level], line);
	}
	va_end(ap);
}
