/* Logging: ic_log(IC_LOG_ERR, "fmt", ...) to stderr, or syslog once
 * ic_log_to_syslog() was called (daemonized processes). Messages below the
 * current level cost one branch. */
#ifndef IC_COMMON_LOG_H
#define IC_COMMON_LOG_H

enum ic_log_level { IC_LOG_ERR, IC_LOG_WARN, IC_LOG_INFO, IC_LOG_DEBUG };

extern enum ic_log_level ic_log_level;

void ic_log_set_program(const char *name);
void ic_log_to_syslog(void);
void ic_log_write(enum ic_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define ic_log(level, ...)                                                                \
	do {                                                                              \
		if ((level) <= ic_log_level)                                              \
			ic_log_write((level), __VA_ARGS__);                               \
	} while (0)

#endif
