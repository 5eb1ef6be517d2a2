/* The error filter: per-op rate, errno, after=N and the trigger file. */
#include "test_filter_fixture.h"

#include <sys/stat.h>

/* How many of n reads of layer 0 fail, and with what error. */
static unsigned
error_reads(struct fx *fx, unsigned n, int expect)
{
	uint8_t buf[512];
	unsigned failed = 0;

	for (unsigned i = 0; i < n; i++) {
		int rc = fx_read(fx, 0, (i % 64) * 512, 512, buf);

		if (rc == 0) {
			assert_true(fx_intact(buf, (i % 64) * 512, 512));
			continue;
		}
		assert_int_equal(rc, expect);
		failed++;
	}
	return failed;
}

static void
test_per_op_and_errno(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[512] = { 0 };
	struct ic_seg w = { &fx->layer[0], 0, 512, buf };

	assert_int_equal(ic_stack_add(fx->stack, "error:rate=0:read=1:errno=ENOSPC", 0), 0);
	assert_int_equal(error_reads(fx, 5, -ENOSPC), 5);
	assert_int_equal(ic_stack_pwrite(fx->stack, &w, 1, 0), 0);
	assert_int_equal(ic_stack_flush(fx->stack, &fx->layer[0]), 0);
	assert_int_equal(fx->bottom.pread, 0);
	assert_int_equal(fx->bottom.pwrite, 1);
	assert_non_null(strstr(fx_report(fx), "{\"ops\":7,\"injected\":5,\"errno\":28,"));

	/* default: every op fails with EIO */
	assert_int_equal(ic_stack_remove(fx->stack, "error"), 0);
	assert_int_equal(ic_stack_add(fx->stack, "error:errno=5", 0), 0);
	assert_int_equal(ic_stack_pwrite(fx->stack, &w, 1, 0), -EIO);
	assert_int_equal(ic_stack_flush(fx->stack, &fx->layer[0]), -EIO);
}

static void
test_rate_is_repeatable(void **state)
{
	struct fx *fx = *state;
	unsigned first, again;

	assert_int_equal(ic_stack_add(fx->stack, "error:read=50%:seed=7", 0), 0);
	first = error_reads(fx, 400, -EIO);
	print_message("%u of 400 reads failed\n", first);
	assert_in_range(first, 140, 260);
	assert_int_equal(ic_stack_remove(fx->stack, "error"), 0);
	assert_int_equal(ic_stack_add(fx->stack, "error:read=0.5:seed=7", 0), 0);
	again = error_reads(fx, 400, -EIO);
	assert_int_equal(again, first);
	assert_int_equal(ic_stack_remove(fx->stack, "error"), 0);
	assert_int_equal(ic_stack_add(fx->stack, "error:read=0.02", 0), 0);
	assert_in_range(error_reads(fx, 400, -EIO), 0, 30);
}

static void
test_after_n(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(ic_stack_add(fx->stack, "error:after=5", 0), 0);
	assert_int_equal(error_reads(fx, 5, -EIO), 0);
	assert_int_equal(error_reads(fx, 3, -EIO), 3);
}

static void
test_trigger_file(void **state)
{
	struct fx *fx = *state;
	char trigger[96], spec[128];
	int fd;

	snprintf(trigger, sizeof(trigger), "%s/trigger", fx->dir);
	snprintf(spec, sizeof(spec), "error:file=%s", trigger);
	assert_int_equal(ic_stack_add(fx->stack, spec, 0), 0);
	assert_int_equal(error_reads(fx, 10, -EIO), 0);
	fd = open(trigger, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(error_reads(fx, 10, -EIO), 10);
	assert_int_equal(unlink(trigger), 0);
	assert_int_equal(error_reads(fx, 10, -EIO), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_per_op_and_errno, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_rate_is_repeatable, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_after_n, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_trigger_file, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
