/* The L2 index: it survives a clean stop, a torn index region falls back
 * to the other one, and a changed layer file (its generation: size, mtime,
 * ctime, inode) finds none of its old entries. */
#include <time.h>

#include "test_cached_l2_fixture.h"

static void
test_index_round_trip(void **state)
{
	(void)state;
	fx_read_all();
	assert_int_equal(fx.l2.used, FX_LAYER_BLOCKS);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_L2_MISSES], FX_LAYER_BLOCKS);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_L2_BYTES_WRITTEN], sizeof(fx.bytes));
	fx_reopen();
	assert_int_equal(fx.l2.used, FX_LAYER_BLOCKS);
	fx_read_all();
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_BACKING_BYTES], 0);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_FILLS], 0);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_L2_HITS], FX_LAYER_BLOCKS);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_L2_BYTES_READ], sizeof(fx.bytes));
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_L2_CSUM_FAILS], 0);
}

/* The periodic write goes through the hook to the region not in use. */
static void
test_sync_alternates_regions(void **state)
{
	uint32_t used;

	(void)state;
	fx_read(0, 64);
	assert_int_equal(cached_l2_sync(&fx.l2), 0);
	assert_false(fx.l2.syncing);
	assert_false(fx.l2.dirty);
	assert_int_equal(fx.l2.seq, 1);
	assert_int_equal(cached_l2_sync(&fx.l2), 0); /* clean: nothing written */
	assert_int_equal(fx.l2.seq, 1);
	fx_read(64, 64);
	used = fx.l2.used;
	fx_reopen(); /* close writes seq 2 to region 0 */
	assert_int_equal(fx.l2.seq, 2);
	assert_int_equal(fx.l2.used, used);
}

/* A crash mid-write of the newer region: the older one is loaded. */
static void
test_torn_region_falls_back(void **state)
{
	uint32_t used;

	(void)state;
	fx_read(0, 64); /* and read ahead */
	fx_reopen();	/* seq 1, region 1 */
	used = fx.l2.used;
	fx_read(64, 64);
	fx_reopen(); /* seq 2, region 0 */
	assert_true(fx.l2.used > used);
	fx_close();
	fx_flip(fx.l2path, 4096 + 5); /* in region 0's index */
	fx_open();
	assert_int_equal(fx.l2.seq, 1);
	assert_int_equal(fx.l2.used, used);
	fx_read(0, 64);
	fx_read(64, 64);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_L2_HITS], used);
	assert_true(fx.l->stats[IC_CACHED_STAT_BACKING_BYTES] > 0);
}

/* Both regions bad, or a file of another geometry: the tier starts empty. */
static void
test_bad_file_starts_empty(void **state)
{
	uint64_t region = fx.l2.region_size;

	(void)state;
	fx_read_all();
	fx_close();
	assert_int_equal(cached_l2_open(&fx.l2, fx.l2path, 2 * FX_L2_SIZE), 0);
	assert_int_equal(fx.l2.used, 0);
	cached_l2_close(&fx.l2);
	assert_int_equal(cached_l2_open(&fx.l2, fx.l2path, FX_L2_SIZE / 2), -ERANGE);
	fx_open();
	assert_int_equal(fx.l2.used, FX_LAYER_BLOCKS); /* nothing was written meanwhile */
	fx_close();
	fx_flip(fx.l2path, 8);
	fx_flip(fx.l2path, region + 8);
	fx_open();
	assert_int_equal(fx.l2.used, 0);
}

static void
test_generation_change_invalidates(void **state)
{
	struct timespec times[2] = { { .tv_sec = 1000000000 }, { .tv_sec = 1000000000 } };

	(void)state;
	fx_read_all();
	fx_close();
	/* The same bytes, inode and uuid; only the times change. */
	assert_int_equal(utimensat(AT_FDCWD, fx.layer, times, 0), 0);
	fx_open();
	assert_int_equal(fx.l2.used, FX_LAYER_BLOCKS);
	assert_int_equal(cached_l2_lookup(&fx.l2, fx.l->l2_ident, 0), CACHED_NIL);
	fx_read_all();
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_L2_HITS], 0);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_BACKING_BYTES], sizeof(fx.bytes));
}

/* Every part of a file's identity is in its L2 key, and so is the L2
 * file's secret. */
static void
test_ident_covers_generation(void **state)
{
	uint8_t uuid[16] = { 1 }, other[16] = { 2 };
	struct stat sb = { .st_dev = 1, .st_ino = 2, .st_size = 3 }, v;
	struct cached_l2 l2 = { .secret = 42 }, l2b = { .secret = 43 };
	uint64_t base;

	(void)state;
	sb.st_mtim.tv_sec = 4;
	sb.st_ctim.tv_nsec = 5;
	base = cached_l2_ident(&l2, uuid, &sb);
	assert_int_not_equal(base, 0);
	assert_int_equal(cached_l2_ident(&l2, uuid, &sb), base);
	assert_int_not_equal(cached_l2_ident(&l2b, uuid, &sb), base);
	assert_int_not_equal(cached_l2_ident(&l2, other, &sb), base);
	v = sb, v.st_dev++;
	assert_int_not_equal(cached_l2_ident(&l2, uuid, &v), base);
	v = sb, v.st_ino++;
	assert_int_not_equal(cached_l2_ident(&l2, uuid, &v), base);
	v = sb, v.st_size++;
	assert_int_not_equal(cached_l2_ident(&l2, uuid, &v), base);
	v = sb, v.st_mtim.tv_nsec++;
	assert_int_not_equal(cached_l2_ident(&l2, uuid, &v), base);
	v = sb, v.st_ctim.tv_sec++;
	assert_int_not_equal(cached_l2_ident(&l2, uuid, &v), base);
}

/* A new file gets a new secret; a reopened one keeps its own. */
static void
test_secret_persists(void **state)
{
	uint64_t secret = fx.l2.secret, ident = fx.l->l2_ident;

	(void)state;
	fx_read(0, 16);
	fx_reopen();
	assert_int_equal(fx.l2.secret, secret);
	assert_int_equal(fx.l->l2_ident, ident);
	fx_close();
	unlink(fx.l2path);
	fx_open();
	assert_int_not_equal(fx.l2.secret, secret);
	assert_int_not_equal(fx.l->l2_ident, ident);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_index_round_trip, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_sync_alternates_regions, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_torn_region_falls_back, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_file_starts_empty, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_generation_change_invalidates, fx_setup,
						fx_teardown),
		cmocka_unit_test(test_ident_covers_generation),
		cmocka_unit_test_setup_teardown(test_secret_persists, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
