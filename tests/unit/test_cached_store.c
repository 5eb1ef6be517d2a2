/* isocached's block store: SIEVE eviction under a hard bound, scan
 * resistance, per-uid quotas, drop, and layer identity. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cached/internal.h"

#define CAP 64 /* the smallest store: 256 KiB */

struct fixture {
	struct cached_store st;
	struct cached_layer *l;
};

static int
setup(void **state)
{
	static struct fixture fx;
	struct stat sb = { .st_dev = 1, .st_ino = 2, .st_size = 1 << 30 };
	uint8_t uuid[16] = { 1 };

	assert_int_equal(cached_store_init(&fx.st, CAP * IC_CACHED_BLOCK), 0);
	assert_int_equal(cached_store_layer(&fx.st, uuid, &sb, open("/dev/null", O_RDONLY), &fx.l),
			 0);
	*state = &fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	cached_store_fini(&fx->st);
	return 0;
}

/* Fill block b for uid slot u and make it valid; returns the entry. */
static uint32_t
put(struct fixture *fx, uint64_t b, uint16_t u)
{
	uint32_t i = cached_store_alloc(&fx->st, fx->l->id, b, u);

	assert_int_not_equal(i, CACHED_NIL);
	memset(cached_store_data(&fx->st, i), (int)b, IC_CACHED_BLOCK);
	cached_store_publish(&fx->st, i);
	return i;
}

static bool
cached(struct fixture *fx, uint64_t b)
{
	return cached_store_lookup(&fx->st, fx->l->id, b) != CACHED_NIL;
}

static void
test_bound_is_hard(void **state)
{
	struct fixture *fx = *state;

	for (uint64_t b = 0; b < 10 * CAP; b++)
		put(fx, b, 0);
	assert_int_equal(fx->st.used, CAP);
	assert_int_equal(fx->l->stats[IC_CACHED_STAT_BLOCKS], CAP);
	assert_int_equal(fx->l->stats[IC_CACHED_STAT_EVICTIONS], 9 * CAP);
	for (uint64_t b = 9 * CAP; b < 10 * CAP; b++) {
		uint32_t i = cached_store_lookup(&fx->st, fx->l->id, b);
		assert_int_not_equal(i, CACHED_NIL);
		assert_int_equal(cached_store_data(&fx->st, i)[100], (uint8_t)b);
	}
}

static void
test_sieve_keeps_visited(void **state)
{
	struct fixture *fx = *state;

	for (uint64_t b = 0; b < CAP; b++)
		put(fx, b, 0);
	/* A hot working set of 8 blocks, then a long one-pass scan. */
	for (uint64_t b = 0; b < 8; b++)
		fx->st.e[cached_store_lookup(&fx->st, fx->l->id, b)].visited = 1;
	put(fx, 1000, 0);
	assert_false(cached(fx, 8)); /* the oldest unvisited went first */
	for (uint64_t b = 0; b < 8; b++)
		assert_true(cached(fx, b));
	for (uint64_t b = 2000; b < 2000 + 3 * CAP; b++) {
		put(fx, b, 0);
		for (uint64_t h = 0; h < 8; h++) {
			uint32_t i = cached_store_lookup(&fx->st, fx->l->id, h);
			if (i != CACHED_NIL)
				fx->st.e[i].visited = 1; /* still being read */
		}
	}
	for (uint64_t b = 0; b < 8; b++)
		assert_true(cached(fx, b));
}

static void
test_filling_blocks_are_not_evicted(void **state)
{
	struct fixture *fx = *state;
	uint32_t filling[CAP];

	for (uint64_t b = 0; b < CAP; b++)
		filling[b] = cached_store_alloc(&fx->st, fx->l->id, b, 0);
	assert_int_equal(cached_store_alloc(&fx->st, fx->l->id, 999, 0), CACHED_NIL);
	cached_store_release(&fx->st, filling[3]);
	assert_false(cached(fx, 3));
	assert_int_not_equal(cached_store_alloc(&fx->st, fx->l->id, 999, 0), CACHED_NIL);
}

static void
test_quota_evicts_own_blocks_only(void **state)
{
	struct fixture *fx = *state;
	uint16_t a = cached_store_uid(&fx->st, 1000), b = cached_store_uid(&fx->st, 1001);

	assert_int_equal(cached_store_set_quota(&fx->st, 1000, 16 * IC_CACHED_BLOCK), 0);
	assert_int_equal(cached_store_uid(&fx->st, 1000), a);
	for (uint64_t blk = 0; blk < 32; blk++)
		put(fx, blk, b);
	for (uint64_t blk = 100; blk < 100 + 4 * CAP; blk++)
		put(fx, blk, a);
	assert_int_equal(fx->st.uids[a].used, 16);
	assert_int_equal(fx->st.uids[b].used, 32);
	for (uint64_t blk = 0; blk < 32; blk++)
		assert_true(cached(fx, blk));
}

static void
test_quota_below_a_block_means_no_fills(void **state)
{
	struct fixture *fx = *state;
	uint16_t a = cached_store_uid(&fx->st, 1000);

	assert_int_equal(cached_store_set_quota(&fx->st, 1000, 1000), 0);
	assert_int_equal(cached_store_alloc(&fx->st, fx->l->id, 1, a), CACHED_NIL);
	assert_int_equal(fx->st.used, 0);
}

static void
test_drop_and_layer_identity(void **state)
{
	struct fixture *fx = *state;
	struct stat same = { .st_dev = 1, .st_ino = 2, .st_size = 1 << 30 };
	struct stat other = { .st_dev = 1, .st_ino = 3, .st_size = 4096 };
	uint8_t uuid[16] = { 1 };
	struct cached_layer *l;

	for (uint64_t b = 0; b < 10; b++)
		put(fx, b, 0);
	assert_int_equal(cached_store_drop(&fx->st, fx->l->id), 10);
	assert_int_equal(fx->st.used, 0);
	assert_false(cached(fx, 0));
	/* The same file shares the layer; a file claiming its uuid does not. */
	assert_int_equal(cached_store_layer(&fx->st, uuid, &same, open("/dev/null", O_RDONLY), &l), 0);
	assert_ptr_equal(l, fx->l);
	assert_int_equal(cached_store_layer(&fx->st, uuid, &other, open("/dev/null", O_RDONLY), &l),
			 0);
	assert_ptr_not_equal(l, fx->l);
	assert_int_equal(l->nblocks, 1);
}

/* DROP walks the layer's own list: the other layer's blocks stay, even
 * after evictions have reshuffled both lists, and a dropped layer can be
 * filled and dropped again. */
static void
test_drop_only_its_layer(void **state)
{
	struct fixture *fx = *state;
	struct stat sb = { .st_dev = 1, .st_ino = 9, .st_size = 1 << 30 };
	uint8_t uuid[16] = { 2 };
	struct cached_layer *a = fx->l, *b;
	uint64_t kept = 0;

	assert_int_equal(cached_store_layer(&fx->st, uuid, &sb, open("/dev/null", O_RDONLY), &b),
			 0);
	for (uint64_t k = 0; k < 3 * CAP; k++) {
		uint32_t i = cached_store_alloc(&fx->st, (k % 3 ? a : b)->id, k, 0);

		assert_int_not_equal(i, CACHED_NIL);
		cached_store_publish(&fx->st, i);
	}
	for (uint64_t k = 0; k < 3 * CAP; k++)
		kept += k % 3 == 0 && cached_store_lookup(&fx->st, b->id, k) != CACHED_NIL;
	assert_true(kept > 0);
	assert_int_equal(cached_store_drop(&fx->st, a->id), CAP - kept);
	assert_int_equal(a->head, CACHED_NIL);
	assert_int_equal(a->stats[IC_CACHED_STAT_BLOCKS], 0);
	assert_int_equal(fx->st.used, kept);
	for (uint64_t k = 0; k < 3 * CAP; k += 3)
		assert_int_equal(cached_store_lookup(&fx->st, b->id, k) != CACHED_NIL,
				 k >= 3 * CAP - 3 * kept);
	put(fx, 1, 0);
	assert_int_equal(cached_store_drop(&fx->st, a->id), 1);
	assert_int_equal(cached_store_drop(&fx->st, b->id), kept);
	assert_int_equal(fx->st.used, 0);
}

static void
test_latency_buckets(void **state)
{
	struct fixture *fx = *state;

	cached_store_latency(fx->l, 0);
	cached_store_latency(fx->l, 5);
	cached_store_latency(fx->l, UINT64_MAX);
	assert_int_equal(fx->l->stats[IC_CACHED_STAT_LAT0], 1);
	assert_int_equal(fx->l->stats[IC_CACHED_STAT_LAT0 + 2], 1);
	assert_int_equal(fx->l->stats[IC_CACHED_STAT_COUNT - 1], 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bound_is_hard, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sieve_keeps_visited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filling_blocks_are_not_evicted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_evicts_own_blocks_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_below_a_block_means_no_fills, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_drop_and_layer_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_only_its_layer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_latency_buckets, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
