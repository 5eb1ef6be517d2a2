#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

enum ic_log_level ic_log_level = IC_LOG_INFO;

static const char *log_program = "isocache";
static bool log_syslog;
static int log_fd = -1; /* ic_log_to_file's file, else -1 */

/* ic_log_capture's buffer, per thread. */
static __thread char *log_capture;
static __thread size_t log_capture_cap;

void
ic_log_set_program(const char *name)
{
	log_program = name;
}

/* Is a syslog daemon listening on /dev/log? openlog() cannot tell: it
 * connects lazily and drops messages silently when nobody listens. */
static bool
log_syslog_present(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = "/dev/log" };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

int
ic_log_to_syslog(void)
{
	if (!log_syslog_present())
		return -ENOENT;
	openlog(log_program, LOG_PID, LOG_DAEMON);
	log_syslog = true;
	return 0;
}

int
ic_log_to_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);

	if (fd < 0)
		return -errno;
	if (log_fd >= 0)
		close(log_fd);
	log_fd = fd;
	log_syslog = false;
	return 0;
}

void
ic_log_capture(char *buf, size_t cap)
{
	log_capture = cap ? buf : NULL;
	log_capture_cap = cap;
	if (log_capture)
		buf[0] = '\0';
}

void
ic_log_write(enum ic_log_level level, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	/* Errors read "program: what: why", as a command-line tool's should. */
	static const char *const tag[] = { "", "warning: ", "", "debug: " };
	char line[1024], when[32];
	struct tm tm;
	time_t now;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* The first error is the one that names what was wrong; callers up
	 * the stack only add "cannot ...". */
	if (level == IC_LOG_ERR && log_capture && !log_capture[0])
		snprintf(log_capture, log_capture_cap, "%s", line);
	if (log_syslog) {
		syslog(prio[level], "%s", line);
	} else if (log_fd >= 0) {
		now = time(NULL);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", localtime_r(&now, &tm));
		dprintf(log_fd, "%s %s[%d]: %s%s\n", when, log_program, (int)getpid(), tag[level],
			line);
	} else {
		/* One fprintf per line so lines of concurrent threads do not interleave. */
		fprintf(stderr, "%s: %s%s\n", log_program, tag[level], line);
	}
}
