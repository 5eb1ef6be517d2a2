/* The delay filter: each op takes at least its delay. */
#include "test_filter_fixture.h"

/* Nanoseconds one read of layer 0 takes through the stack. */
static uint64_t
delay_read_ns(struct fx *fx)
{
	uint8_t buf[4096];
	uint64_t t0 = fx_now_ns();

	assert_int_equal(fx_read(fx, 0, 4096, sizeof(buf), buf), 0);
	assert_true(fx_intact(buf, 4096, sizeof(buf)));
	return fx_now_ns() - t0;
}

static void
test_fixed(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[4096];
	struct ic_seg w = { &fx->layer[0], 0, sizeof(buf), buf };

	assert_int_equal(ic_stack_add(fx->stack, "delay:read=20ms:write=0", 0), 0);
	for (unsigned i = 0; i < 3; i++)
		assert_true(delay_read_ns(fx) >= 20 * 1000 * 1000ull);
	assert_int_equal(fx_read(fx, 0, 0, sizeof(buf), buf), 0);
	assert_int_equal(ic_stack_pwrite(fx->stack, &w, 1, 0), 0);
	/* Four delays, the reads': the write was not delayed. */
	assert_non_null(strstr(fx_report(fx), "{\"delayed\":4,\"total_ns\":80000000,"));
}

static void
test_range_and_all(void **state)
{
	struct fx *fx = *state;
	uint64_t t0, min = UINT64_MAX;

	assert_int_equal(ic_stack_add(fx->stack, "delay:all=3ms:read=5ms-10ms:seed=3", 0), 0);
	for (unsigned i = 0; i < 5; i++) {
		uint64_t ns = delay_read_ns(fx);

		min = ns < min ? ns : min;
	}
	assert_true(min >= 5 * 1000 * 1000ull);
	t0 = fx_now_ns();
	assert_int_equal(ic_stack_flush(fx->stack, &fx->layer[0]), 0);
	assert_true(fx_now_ns() - t0 >= 3 * 1000 * 1000ull);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fixed, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_range_and_all, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
