/* The stats filter: counts, bytes, errors and histograms per layer and op. */
#include "test_filter_fixture.h"

static void
test_counts_per_layer_and_op(void **state)
{
	struct fx *fx = *state;
	static uint8_t buf[8192];
	struct ic_seg w = { &fx->layer[1], 8192, 8192, buf };
	const char *r;

	assert_int_equal(ic_stack_add(fx->stack, "stats", 0), 0);
	for (unsigned i = 0; i < 10; i++)
		assert_int_equal(fx_read(fx, 0, i * 4096, 4096, buf), 0);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(ic_stack_pwrite(fx->stack, &w, 1, 0), 0);
	assert_int_equal(ic_stack_flush(fx->stack, &fx->layer[1]), 0);
	r = fx_report(fx);
	print_message("%s\n", r);
	/* ten 4 KiB reads: sizes all in bucket 12; offsets 0 (top bucket), 4K
	 * (12), 8K (13), 12K (12), 16K (14), 20K (12), 24K (13), 28K (12),
	 * 32K (15), 36K (12) */
	assert_non_null(strstr(r, "{\"disk_id\":1,\"pread\":{\"count\":10,\"bytes\":40960,"
				  "\"errors\":0,\"latency_ns_log2\":["));
	assert_non_null(strstr(r,
			       "\"size_log2\":[0,0,0,0,0,0,0,0,0,0,0,0,10],"
			       "\"align_log2\":[0,0,0,0,0,0,0,0,0,0,0,0,5,2,1,1,0,0,0,0,0,1]}}"));
	assert_non_null(strstr(r, "{\"disk_id\":2,\"pwrite\":{\"count\":3,\"bytes\":24576,"));
	assert_non_null(strstr(r, ",\"flush\":{\"count\":1,\"bytes\":0,\"errors\":0,"));
	assert_null(strstr(r, "\"disk_id\":1,\"pwrite\""));
}

static void
test_latency_and_errors(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[512];
	const char *r, *lat;
	unsigned bucket = 0;

	/* stats above a 2 ms delay: the one read lands in bucket 20 (2^20 ns
	 * is about 1 ms) or above; the error below is counted as an error */
	assert_int_equal(ic_stack_add(fx->stack, "stats,delay:read=2ms,error:read=1:after=1", 0),
			 0);
	assert_int_equal(fx_read(fx, 0, 0, 512, buf), 0);
	assert_int_equal(fx_read(fx, 0, 512, 512, buf), -EIO);
	r = fx_report(fx);
	print_message("%s\n", r);
	assert_non_null(strstr(r, "\"pread\":{\"count\":2,\"bytes\":1024,\"errors\":1,"));
	lat = strstr(r, "\"latency_ns_log2\":[");
	assert_non_null(lat);
	for (lat += strlen("\"latency_ns_log2\":["); *lat != ']'; lat++)
		bucket += *lat == ',';
	assert_true(bucket >= 20 && bucket < 30);
}

static void
test_overflow_layers(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[512];

	/* one slot: the second layer is counted under disk_id -1 */
	assert_int_equal(ic_stack_add(fx->stack, "stats:layers=1", 0), 0);
	assert_int_equal(fx_read(fx, 0, 0, 512, buf), 0);
	assert_int_equal(fx_read(fx, 1, 0, 512, buf), 0);
	assert_non_null(strstr(fx_report(fx), "{\"disk_id\":-1,\"pread\":{\"count\":1,"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_counts_per_layer_and_op, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_latency_and_errors, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_overflow_layers, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
