/* vdisk/commit.c: a writable vdisk's map reaches the metadata file within
 * a few hundred milliseconds of a write, with no flush from the client. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "isocache/vdisk.h"
#include "tests/unit/store_fixture.h"

#define COMMIT_DEADLINE_S 20 /* generous: a loaded 2-core machine */

/* Does a fresh read-only open of "vm" see want at off? A read-only open
 * sees only what the metadata file holds, so this is "was it committed". */
static bool
committed(struct ic_store *store, const char *want, size_t len, uint64_t off)
{
	static char got[65536];
	struct ic_vdisk *r;
	bool same;

	assert_int_equal(ic_vdisk_open(store, "vm", IC_OPEN_RDONLY, NULL, &r), 0);
	assert_int_equal(ic_vdisk_pread(r, got, len, off), 0);
	same = memcmp(got, want, len) == 0;
	ic_vdisk_close(r);
	return same;
}

static void
test_unflushed_write_is_committed_in_the_background(void **state)
{
	struct store_fixture fx;
	struct ic_vdisk *w;
	static char data[65536];
	struct timespec start, now, pause = { 0, 20 * 1000000L };

	(void)state;
	assert_int_equal(store_fixture_init(&fx, 65536), 0);
	assert_int_equal(ic_image_create(fx.store, "vm", 1 << 20), 0);
	assert_int_equal(ic_vdisk_open(fx.store, "vm", 0, NULL, &w), 0);
	memset(data, 0x5c, sizeof(data));
	assert_int_equal(ic_vdisk_pwrite(w, data, sizeof(data), 131072, 0), 0);

	/* No flush: only the background commit can make it visible. Wait for
	 * that event, with a deadline, rather than for a fixed time. */
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!committed(fx.store, data, sizeof(data), 131072)) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > COMMIT_DEADLINE_S)
			fail_msg("the write was not committed within %d s", COMMIT_DEADLINE_S);
		nanosleep(&pause, NULL);
	}
	assert_int_equal(ic_vdisk_close(w), 0);
	store_fixture_fini(&fx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unflushed_write_is_committed_in_the_background),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
