/* vdisk/io.c: a flush syncs the leaf only when a write request was done
 * since the last flush that succeeded, and always honours FUA. A filter
 * at the bottom of the stack counts the flushes that reach the layer
 * file (each one is an fdatasync of it there). The background commit
 * (vdisk/commit.c) may run any of these flushes first: the counts hold
 * either way, since a flush with nothing new does not reach the stack. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "isocache/filter.h"
#include "isocache/vdisk.h"
#include "tests/unit/store_fixture.h"

static _Atomic unsigned flushes;
static _Atomic int flush_err; /* -errno the next flush fails with, or 0 */

static int
count_flush(struct ic_next *next, void *inst, const struct ic_layer *layer)
{
	int err = flush_err;

	(void)inst;
	flushes++;
	if (err) {
		flush_err = 0;
		return err;
	}
	return ic_next_flush(next, layer);
}

static const struct ic_filter_ops count_ops = {
	IC_FILTER_OPS_INIT,
	.name = "flushcount",
	.flush = count_flush,
};

struct fx {
	struct store_fixture store;
	struct ic_stack *stack;
	struct ic_vdisk *vd;
};

static int
setup(void **state)
{
	static struct fx fx;

	if (!ic_filter_find("flushcount") && ic_filter_register(&count_ops) != 0)
		return -1;
	if (store_fixture_init(&fx.store, 65536) != 0 ||
	    ic_image_create(fx.store.store, "vm", 1 << 20) != 0 ||
	    ic_vdisk_stack_new("flushcount", false, NULL, &fx.stack) != 0 ||
	    ic_vdisk_open(fx.store.store, "vm", 0, fx.stack, &fx.vd) != 0)
		return -1;
	flushes = 0;
	*state = &fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	ic_vdisk_close(fx->vd);
	ic_stack_free(fx->stack);
	store_fixture_fini(&fx->store);
	return 0;
}

static void
test_clean_flush_syncs_nothing(void **state)
{
	struct fx *fx = *state;
	static char data[4096];

	assert_int_equal(ic_vdisk_flush(fx->vd), 0);
	assert_int_equal(flushes, 0); /* nothing was ever written */
	memset(data, 0x61, sizeof(data));
	assert_int_equal(ic_vdisk_pwrite(fx->vd, data, sizeof(data), 8192, 0), 0);
	assert_int_equal(ic_vdisk_flush(fx->vd), 0);
	assert_int_equal(flushes, 1);
	assert_int_equal(ic_vdisk_flush(fx->vd), 0);
	assert_int_equal(ic_vdisk_flush(fx->vd), 0);
	assert_int_equal(flushes, 1); /* nothing new since */
	assert_int_equal(ic_vdisk_trim(fx->vd, 65536, 65536, 0), 0);
	assert_int_equal(ic_vdisk_flush(fx->vd), 0);
	assert_int_equal(flushes, 2);
}

static void
test_fua_always_syncs(void **state)
{
	struct fx *fx = *state;
	static char data[4096];

	memset(data, 0x62, sizeof(data));
	assert_int_equal(ic_vdisk_pwrite(fx->vd, data, sizeof(data), 0, IC_REQ_FUA), 0);
	assert_int_equal(flushes, 1);
	/* A zero with FUA on a vdisk flushed just before still syncs. */
	assert_int_equal(ic_vdisk_zero(fx->vd, 65536, 131072, IC_REQ_FUA), 0);
	assert_int_equal(flushes, 2);
	assert_int_equal(ic_vdisk_trim(fx->vd, 4096, 0, IC_REQ_FUA), 0);
	assert_int_equal(flushes, 3);
	assert_int_equal(ic_vdisk_flush(fx->vd), 0);
	assert_int_equal(flushes, 3);
}

static void
test_failed_flush_is_tried_again(void **state)
{
	struct fx *fx = *state;
	static char data[4096];

	memset(data, 0x63, sizeof(data));
	assert_int_equal(ic_vdisk_pwrite(fx->vd, data, sizeof(data), 4096, 0), 0);
	assert_int_equal(ic_vdisk_flush(fx->vd), 0);
	/* The cluster is the leaf's now: no map change, so the background
	 * commit leaves the next flushes to us. */
	assert_int_equal(ic_vdisk_pwrite(fx->vd, data, sizeof(data), 4096, 0), 0);
	flush_err = -EIO;
	assert_int_equal(ic_vdisk_flush(fx->vd), -EIO);
	assert_int_equal(ic_vdisk_flush(fx->vd), 0);
	assert_int_equal(flushes, 3);
	assert_int_equal(ic_vdisk_flush(fx->vd), 0);
	assert_int_equal(flushes, 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_clean_flush_syncs_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fua_always_syncs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_flush_is_tried_again, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
