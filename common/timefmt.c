/* Record times for people; a damaged record's time must not crash the
 * printer (localtime returns NULL past year 2^31, and strftime of NULL is a
 * SIGSEGV: found by tests/e2e/fault-meta-damage.sh in `isocache-admin
 * info`). */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "common/timefmt.h"

const char *
ic_time_format(uint64_t secs, char *buf, size_t cap)
{
	time_t t = (time_t)secs;
	struct tm tm;

	if (secs > INT64_MAX || !localtime_r(&t, &tm) ||
	    !strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, cap, "invalid (%" PRIu64 ")", secs);
	return buf;
}
