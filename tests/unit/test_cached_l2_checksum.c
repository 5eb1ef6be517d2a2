/* L2 slots are checked before they are used: a block whose bytes do not
 * match its checksum is a miss (counted, its entry dropped, the block
 * filled from the layer and written to L2 again), and so is a failed L2
 * read, which is not counted as a checksum failure. */
#include "test_cached_l2_fixture.h"

static void
test_checksum_mismatch_is_a_miss(void **state)
{
	uint32_t slot;
	uint64_t off;

	(void)state;
	fx_read(0, 64);
	slot = cached_l2_lookup(&fx.l2, fx.l->l2_ident, 3);
	assert_int_not_equal(slot, CACHED_NIL);
	off = cached_l2_offset(&fx.l2, slot) + 100;
	fx_close();
	fx_flip(fx.l2path, off);
	fx_open();
	assert_int_equal(fx_read(0, 64), UINT64_MAX); /* fx_read checks the bytes */
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_L2_CSUM_FAILS], 1);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_L2_HITS], 63);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_BACKING_BYTES], IC_CACHED_BLOCK);
	/* The block was written to a new slot with its good bytes. */
	assert_int_not_equal(cached_l2_lookup(&fx.l2, fx.l->l2_ident, 3), slot);
	assert_int_not_equal(cached_l2_lookup(&fx.l2, fx.l->l2_ident, 3), CACHED_NIL);
}

static void
test_read_error_is_a_miss(void **state)
{
	static uint8_t dst[64 * IC_CACHED_BLOCK];
	struct cached_req r = { .nblocks = 64, .wait = true, .dst = dst };

	(void)state;
	fx_read(0, 64);
	fx_reopen();
	r.layer = fx.l;
	cached_req_run(&fx.st, &r);
	assert_int_equal(fx.nqueued, 1);
	assert_int_not_equal(fx.queued[0]->l2_slot, CACHED_NIL);
	cached_fill_complete(fx.queued[--fx.nqueued], -EIO);
	/* The waiter went on to the layer file. */
	assert_int_equal(fx.nqueued, 1);
	assert_int_equal(fx.queued[0]->l2_slot, CACHED_NIL);
	fx_drain();
	assert_int_equal(r.hits, UINT64_MAX);
	assert_memory_equal(dst, fx.bytes, sizeof(dst));
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_L2_CSUM_FAILS], 0);
	/* Only the run the failed read covered came from the file. */
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_BACKING_BYTES],
			 CACHED_FILL_MIN * IC_CACHED_BLOCK);
	assert_true(fx.l->stats[IC_CACHED_STAT_L2_HITS] >= 64 - CACHED_FILL_MIN);
}

/* A slot rewritten while its read was in flight is a miss, not a fault. */
static void
test_rewritten_slot_is_not_a_fault(void **state)
{
	uint32_t slot;

	(void)state;
	fx_read(0, 1);
	slot = cached_l2_lookup(&fx.l2, fx.l->l2_ident, 0);
	assert_false(cached_l2_check(&fx.l2, slot, fx.l, 1, fx.bytes));
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_L2_CSUM_FAILS], 0);
	assert_int_equal(cached_l2_lookup(&fx.l2, fx.l->l2_ident, 0), slot);
	assert_true(cached_l2_check(&fx.l2, slot, fx.l, 0, fx.bytes));
}

static void
test_drop_layer(void **state)
{
	(void)state;
	fx_read_all();
	assert_int_equal(cached_l2_drop_layer(&fx.l2, fx.l), FX_LAYER_BLOCKS);
	assert_int_equal(fx.l2.used, 0);
	assert_int_equal(cached_l2_lookup(&fx.l2, fx.l->l2_ident, 0), CACHED_NIL);
}

/* A uid's quota holds in L2 as in L1: a capped uid reading the whole
 * layer writes at most its quota of slots; the uncapped one writes all. */
static void
test_quota_covers_l2(void **state)
{
	static uint8_t dst[IC_CACHED_MAX_BLOCKS * IC_CACHED_BLOCK];
	uint16_t capped = cached_store_uid(&fx.st, 1000);
	uint64_t quota = FX_LAYER_BLOCKS / 4, used;

	(void)state;
	assert_int_equal(cached_store_set_quota(&fx.st, 1000, quota * IC_CACHED_BLOCK), 0);
	for (uint64_t b = 0; b < FX_LAYER_BLOCKS; b += IC_CACHED_MAX_BLOCKS) {
		struct cached_req r = { .layer = fx.l, .block = b, .nblocks = IC_CACHED_MAX_BLOCKS,
					.uid = capped, .wait = true, .dst = dst };

		cached_req_run(&fx.st, &r);
		fx_drain();
	}
	used = fx.l2.used;
	assert_true(used > 0);
	assert_true(used <= quota);
	assert_int_equal(fx.st.uids[capped].l2_used, used);
	/* Dropping gives the slots back. */
	assert_int_equal(cached_l2_drop_layer(&fx.l2, fx.l), used);
	assert_int_equal(fx.st.uids[capped].l2_used, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_checksum_mismatch_is_a_miss, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_read_error_is_a_miss, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_quota_covers_l2, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_rewritten_slot_is_not_a_fault, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_drop_layer, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
