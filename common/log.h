/* Logging: ic_log(IC_LOG_ERR, "fmt", ...) to stderr, or syslog once
 * ic_log_to_syslog() was called (daemonized processes), or a file once
 * ic_log_to_file() was. Messages below the current level cost one branch. */
#ifndef IC_COMMON_LOG_H
#define IC_COMMON_LOG_H

#include <stddef.h>

enum ic_log_level { IC_LOG_ERR, IC_LOG_WARN, IC_LOG_INFO, IC_LOG_DEBUG };

extern enum ic_log_level ic_log_level;

void ic_log_set_program(const char *name);

/* From now on log to syslog. Returns -ENOENT, and changes nothing, when no
 * syslog daemon listens on /dev/log (messages would be lost). */
int ic_log_to_syslog(void);
/* From now on append to the file at path, lines stamped with time and pid.
 * Returns 0 or -errno. */
int ic_log_to_file(const char *path);
/* Copy the first error this thread logs from now on into buf (cap bytes,
 * cleared here); ic_log_capture(NULL, 0) stops. For a request handler that
 * must tell its client what was wrong, not only its log. */
void ic_log_capture(char *buf, size_t cap);
void ic_log_write(enum ic_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define ic_log(level, ...)                                                                \
	do {                                                                              \
		if ((level) <= ic_log_level)                                              \
			ic_log_write((level), __VA_ARGS__);                               \
	} while (0)

#endif
