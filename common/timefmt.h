/* Times from records, for people: "2026-12-05 17:20:00" in local time. */
#ifndef IC_COMMON_TIMEFMT_H
#define IC_COMMON_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

#define IC_TIME_STRLEN 32

/* Seconds since the epoch as local "YYYY-MM-DD HH:MM:SS" into buf (cap
 * bytes, IC_TIME_STRLEN is enough), or "invalid (N)" when a damaged record
 * holds a time no calendar reaches (localtime fails). Returns buf. */
const char *ic_time_format(uint64_t secs, char *buf, size_t cap);

#endif
