/* CLOCK_MONOTONIC in milliseconds: the clock of every deadline that
 * crosses a folder (a RELEASE's deadline set in owner/ is waited for by a
 * quiesce in vdisk/). */
#ifndef IC_COMMON_CLOCK_H
#define IC_COMMON_CLOCK_H

#include <time.h>

static inline long long
ic_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
