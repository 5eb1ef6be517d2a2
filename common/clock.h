/* CLOCK_MONOTONIC in milliseconds: the clock of every deadline that
 * crosses a folder (a RELEASE's deadline set in owner/ is waited for by a
 * quiesce in vdisk/). */
#ifndef IC_COMMON_CLOCK_H
#define IC_COMMON_CLOCK_H

#include <errno.h>
#include <time.h>

static inline long long
ic_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep ms milliseconds (a pause before asking again), through signals. */
static inline void
ic_sleep_ms(long long ms)
{
	struct timespec t = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	while (ms > 0 && nanosleep(&t, &t) == -1 && errno == EINTR)
		;
}

#endif
