/* vdisk/commit.c: a writable vdisk's map reaches the metadata file within
 * a few hundred milliseconds of a write, with no flush from the client. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "isocache/vdisk.h"
#include "tests/unit/store_fixture.h"

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void
test_unflushed_write_is_committed_in_the_background(void **state)
{
	struct store_fixture fx;
	struct ic_vdisk *w, *r;
	static char data[65536], got[65536];

	(void)state;
	assert_int_equal(store_fixture_init(&fx, 65536), 0);
	assert_int_equal(ic_image_create(fx.store, "vm", 1 << 20), 0);
	assert_int_equal(ic_vdisk_open(fx.store, "vm", 0, NULL, &w), 0);
	memset(data, 0x5c, sizeof(data));
	assert_int_equal(ic_vdisk_pwrite(w, data, sizeof(data), 131072, 0), 0);

	/* A read-only open sees the committed map only: give the background
	 * commit a few of its periods, then look. */
	sleep_ms(800);
	assert_int_equal(ic_vdisk_open(fx.store, "vm", IC_OPEN_RDONLY, NULL, &r), 0);
	assert_int_equal(ic_vdisk_pread(r, got, sizeof(got), 131072), 0);
	assert_memory_equal(got, data, sizeof(data));
	ic_vdisk_close(r);
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
