/* common/timefmt.c: record times for people, and times no calendar reaches
 * (a damaged record) printed, not crashed on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/timefmt.h"

static void
test_time_utc(void **state)
{
	char buf[IC_TIME_STRLEN];

	(void)state;
	setenv("TZ", "UTC", 1);
	assert_string_equal(ic_time_format(1764955200, buf, sizeof(buf)), "2025-12-05 17:20:00");
}

/* localtime fails past year 2^31 (and time_t cannot hold the top half of
 * u64): strftime of its NULL was a SIGSEGV in isocache-admin info. */
static void
test_time_damaged(void **state)
{
	char buf[IC_TIME_STRLEN];

	(void)state;
	assert_string_equal(ic_time_format(288230377948202767ull, buf, sizeof(buf)),
			    "invalid (288230377948202767)");
	assert_string_equal(ic_time_format(UINT64_MAX, buf, sizeof(buf)),
			    "invalid (18446744073709551615)");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time_utc),
		cmocka_unit_test(test_time_damaged),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
