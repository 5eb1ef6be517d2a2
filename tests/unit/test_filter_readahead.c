/* The readahead filter: sequential reads make cache() hints ahead of the
 * reader; random reads make none. */
#include "test_filter_fixture.h"

static void
test_sequential_hints_ahead(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[16384];

	assert_int_equal(ic_stack_add(fx->stack, "readahead:window=64K:trigger=2", 0), 0);
	/* the first two reads make the streak, the third hints */
	assert_int_equal(fx_read(fx, 0, 0, sizeof(buf), buf), 0);
	assert_int_equal(fx_read(fx, 0, 16384, sizeof(buf), buf), 0);
	assert_int_equal(fx->bottom.cache, 0);
	assert_int_equal(fx_read(fx, 0, 32768, sizeof(buf), buf), 0);
	assert_true(fx_intact(buf, 32768, sizeof(buf)));
	assert_int_equal(fx->bottom.cache, 1);
	assert_int_equal(fx->bottom.last_cache.layer->disk_id, 1);
	assert_int_equal(fx->bottom.last_cache.off, 49152);
	assert_int_equal(fx->bottom.last_cache.len, 65536);
	/* the next reads still have half a window hinted ahead of them */
	assert_int_equal(fx_read(fx, 0, 49152, sizeof(buf), buf), 0);
	assert_int_equal(fx_read(fx, 0, 65536, sizeof(buf), buf), 0);
	assert_int_equal(fx->bottom.cache, 1);
	/* then a hint tops the window up from where the last one ended */
	assert_int_equal(fx_read(fx, 0, 81920, sizeof(buf), buf), 0);
	assert_int_equal(fx->bottom.cache, 2);
	assert_int_equal(fx->bottom.last_cache.off, 114688);
	assert_int_equal(fx->bottom.last_cache.len, 98304 + 65536 - 114688);
	assert_non_null(strstr(fx_report(fx), "\"hints\":2,\"hinted_bytes\":"));
}

static void
test_random_reads_no_hints(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[4096];
	unsigned seed = 9;

	assert_int_equal(ic_stack_add(fx->stack, "readahead", 0), 0);
	for (unsigned i = 0; i < 200; i++) {
		uint64_t off = (rand_r(&seed) % (FX_SIZE / 4096)) * 4096;

		assert_int_equal(fx_read(fx, i % 2, off, sizeof(buf), buf), 0);
		assert_true(fx_intact(buf, off, sizeof(buf)));
	}
	assert_true(fx->bottom.cache <= 2);
}

static void
test_clamped_at_layer_end(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[4096];

	assert_int_equal(ic_stack_add(fx->stack, "readahead:window=1M:trigger=1", 0), 0);
	for (uint64_t off = FX_SIZE - 4 * 4096; off < FX_SIZE; off += 4096)
		assert_int_equal(fx_read(fx, 1, off, sizeof(buf), buf), 0);
	assert_int_equal(fx->bottom.cache, 1);
	assert_int_equal(fx->bottom.last_cache.off + fx->bottom.last_cache.len, FX_SIZE);
}

static void
test_no_hints_without_cache_below(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[4096];

	fx->bottom.caps = 0;
	ic_stack_free(fx->stack);
	assert_int_equal(ic_stack_new(&fx_bottom_ops, &fx->bottom, &fx->stack), 0);
	assert_int_equal(ic_stack_add(fx->stack, "readahead:trigger=1", 0), 0);
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(fx_read(fx, 0, i * 4096, sizeof(buf), buf), 0);
	assert_int_equal(fx->bottom.cache, 0);
	assert_non_null(strstr(fx_report(fx), "\"hints\":0,"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sequential_hints_ahead, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_random_reads_no_hints, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_clamped_at_layer_end, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_no_hints_without_cache_below, fx_setup,
						fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
