/* Singleflight fills: concurrent misses on one block cost one backing
 * read; fills read a cluster and grow on sequential misses; short reads
 * resume; failed fills release their blocks and their waiters. The ring is
 * replaced by a hook that records fills, so the test completes them. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cached/internal.h"

#define LAYER_BLOCKS 1000

struct fixture {
	struct cached_store st;
	struct cached_layer *l;
	struct cached_fill *submitted[16];
	unsigned nsubmitted;
	unsigned finished;
};

static struct fixture fx;

static int
fake_submit(struct cached_store *st, struct cached_fill *f)
{
	(void)st;
	assert_true(fx.nsubmitted < 16);
	fx.submitted[fx.nsubmitted++] = f;
	return 0;
}

static void
fake_finish(struct cached_store *st, struct cached_req *r)
{
	(void)st;
	(void)r;
	fx.finished++;
}

static int
setup(void **state)
{
	struct stat sb = { .st_dev = 1, .st_ino = 2, .st_size = LAYER_BLOCKS * IC_CACHED_BLOCK - 100 };
	uint8_t uuid[16] = { 7 };

	memset(&fx, 0, sizeof(fx));
	assert_int_equal(cached_store_init(&fx.st, 1024 * IC_CACHED_BLOCK), 0);
	fx.st.submit = fake_submit;
	fx.st.finish = fake_finish;
	assert_int_equal(cached_store_layer(&fx.st, uuid, &sb, open("/dev/null", O_RDONLY), &fx.l),
			 0);
	*state = &fx;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	cached_store_fini(&fx.st);
	return 0;
}

/* Complete recorded fill k as the kernel would: every byte of block b is
 * b, delivered at most `chunk` bytes per completion (short reads). */
static void
complete(unsigned k, uint32_t chunk, int err)
{
	struct cached_fill *f = fx.submitted[k];
	uint64_t want = (uint64_t)f->nblocks * IC_CACHED_BLOCK;

	if (err) {
		cached_fill_complete(f, err);
		return;
	}
	if ((f->block + f->nblocks) * IC_CACHED_BLOCK > fx.l->size)
		want = fx.l->size - f->block * IC_CACHED_BLOCK;
	for (;;) {
		uint32_t n = want - f->done_bytes < chunk ? (uint32_t)(want - f->done_bytes) : chunk;
		bool last = f->done_bytes + n >= want;

		for (uint64_t pos = f->done_bytes; pos < f->done_bytes + n; pos++)
			cached_store_data(&fx.st, f->entries[pos >> 12])[pos & 4095] =
				(uint8_t)(f->block + (pos >> 12));
		cached_fill_complete(f, (int)n);
		if (last)
			return;
		/* Resubmitted: the next iovec starts where the data stopped. */
		assert_ptr_equal(f->iov[f->iov_first].iov_base,
				 cached_store_data(&fx.st, f->entries[f->done_bytes >> 12]) +
					 (f->done_bytes & 4095));
		fx.nsubmitted--;
	}
}

static void
req_init(struct cached_req *r, uint8_t *dst, uint64_t block, uint32_t n, bool wait)
{
	*r = (struct cached_req){ .layer = fx.l, .block = block, .nblocks = n, .wait = wait,
				  .reader = true, .dst = dst };
}

static void
test_one_backing_read_for_many(void **state)
{
	static uint8_t dst[3][4 * IC_CACHED_BLOCK];
	struct cached_req r[3];

	(void)state;
	for (int i = 0; i < 3; i++) {
		req_init(&r[i], dst[i], 100, 4, true);
		cached_req_run(&fx.st, &r[i]);
	}
	assert_int_equal(fx.nsubmitted, 1);
	assert_int_equal(fx.finished, 0);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_JOINS], 2);
	assert_int_equal(fx.submitted[0]->block, 96); /* the cluster's start */
	assert_int_equal(fx.submitted[0]->nblocks, CACHED_FILL_MIN);
	complete(0, 1 << 20, 0);
	assert_int_equal(fx.finished, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(r[i].hits, 0xf);
		assert_int_equal(dst[i][0], 100);
		assert_int_equal(dst[i][3 * IC_CACHED_BLOCK + 4095], 103);
	}
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_FILLS], 1);
	/* The first block of each request missed; the rest came with the fill. */
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_MISSES], 3);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_HITS], 9);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_BACKING_BYTES], CACHED_FILL_MIN * IC_CACHED_BLOCK);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_BYTES_SERVED], 12 * IC_CACHED_BLOCK);
}

static void
test_sequential_misses_grow_the_window(void **state)
{
	static uint8_t dst[IC_CACHED_BLOCK];
	uint32_t expect[] = { 16, 32, 64, 64 };
	struct cached_req r;
	uint64_t b = 0;

	(void)state;
	for (unsigned k = 0; k < 4; k++) {
		req_init(&r, dst, b, 1, true);
		cached_req_run(&fx.st, &r);
		assert_int_equal(fx.nsubmitted, k + 1);
		assert_int_equal(fx.submitted[k]->nblocks, expect[k]);
		b += expect[k];
		complete(k, 1 << 20, 0);
	}
	/* A random miss starts over at one cluster. */
	req_init(&r, dst, 500, 1, true);
	cached_req_run(&fx.st, &r);
	assert_int_equal(fx.submitted[4]->nblocks, CACHED_FILL_MIN);
}

static void
test_short_reads_resume_and_eof_zeroes(void **state)
{
	static uint8_t dst[2 * IC_CACHED_BLOCK];
	struct cached_req r;

	(void)state;
	req_init(&r, dst, LAYER_BLOCKS - 2, 2, true);
	cached_req_run(&fx.st, &r);
	assert_int_equal(fx.nsubmitted, 1);
	complete(0, 1000, 0);
	assert_int_equal(fx.finished, 1);
	assert_int_equal(r.hits, 0x3);
	assert_int_equal(dst[0], (uint8_t)(LAYER_BLOCKS - 2));
	assert_int_equal(dst[2 * IC_CACHED_BLOCK - 101], (uint8_t)(LAYER_BLOCKS - 1));
	assert_int_equal(dst[2 * IC_CACHED_BLOCK - 100], 0); /* past the end of the file */
}

static void
test_failed_fill_releases_waiters(void **state)
{
	static uint8_t dst[2][IC_CACHED_BLOCK];
	struct cached_req r[2];

	(void)state;
	for (int i = 0; i < 2; i++) {
		req_init(&r[i], dst[i], 7, 1, true);
		cached_req_run(&fx.st, &r[i]);
	}
	complete(0, 0, -EIO);
	assert_int_equal(fx.finished, 2);
	assert_int_equal(r[0].hits | r[1].hits, 0);
	assert_int_equal(fx.nsubmitted, 1); /* no retry storm */
	assert_int_equal(fx.st.used, 0);
	assert_int_equal(fx.st.fills_busy, 0);
}

static void
test_no_wait_returns_at_once_and_fills(void **state)
{
	static uint8_t dst[4 * IC_CACHED_BLOCK];
	struct cached_req r;

	(void)state;
	req_init(&r, dst, 40, 4, false);
	cached_req_run(&fx.st, &r);
	assert_int_equal(fx.finished, 1);
	assert_int_equal(r.hits, 0);
	assert_int_equal(fx.nsubmitted, 1);
	complete(0, 1 << 20, 0);
	req_init(&r, dst, 40, 4, false);
	cached_req_run(&fx.st, &r);
	assert_int_equal(r.hits, 0xf);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_HITS], 4);
}

/* A READ with IC_CACHED_F_NODATA (no dst): it waits for the fill as a READ
 * does, is counted as one, and copies nothing; its bitmap says which blocks
 * the arena holds now, for the client to take from there. */
static void
test_nodata_read_waits_and_counts(void **state)
{
	struct cached_req r[2];

	(void)state;
	req_init(&r[0], NULL, 100, 4, true);
	req_init(&r[1], NULL, 100, 4, true);
	cached_req_run(&fx.st, &r[0]);
	cached_req_run(&fx.st, &r[1]);
	assert_int_equal(fx.nsubmitted, 1);
	assert_int_equal(fx.finished, 0);
	complete(0, 1 << 20, 0);
	assert_int_equal(fx.finished, 2);
	assert_int_equal(r[0].hits, 0xf);
	assert_int_equal(r[1].hits, 0xf);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_LOOKUPS], 8);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_MISSES], 2);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_HITS], 6);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_BYTES_SERVED], 8 * IC_CACHED_BLOCK);
	for (uint64_t b = 100; b < 104; b++)
		assert_int_not_equal(cached_store_lookup(&fx.st, fx.l->id, b), CACHED_NIL);
}

/* Fills fill_ahead queued: blocks of fill k. */
static void
expect_fill(unsigned k, uint64_t block, uint32_t nblocks)
{
	assert_true(k < fx.nsubmitted);
	assert_int_equal(fx.submitted[k]->block, block);
	assert_int_equal(fx.submitted[k]->nblocks, nblocks);
}

/* A stream of sequential misses is read ahead of its readers, farther
 * each time they catch up; random misses are not. */
static void
test_sequential_stream_is_read_ahead(void **state)
{
	static uint8_t dst[IC_CACHED_BLOCK];
	struct cached_req r[5];

	(void)state;
	fx.st.readahead = 4 * CACHED_FILL_MAX; /* 256 blocks */
	req_init(&r[0], dst, 0, 1, true); /* one miss is no stream */
	cached_req_run(&fx.st, &r[0]);
	assert_int_equal(fx.nsubmitted, 1);
	expect_fill(0, 0, 16);
	req_init(&r[1], dst, 16, 1, true); /* the next one is: 64 blocks past it */
	cached_req_run(&fx.st, &r[1]);
	assert_int_equal(fx.nsubmitted, 3);
	expect_fill(1, 16, 32); /* the miss, its window grown */
	expect_fill(2, 48, 32); /* ahead, to 16 + 64 */
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_AHEAD_FILLS], 1);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_AHEAD_BLOCKS], 32);
	/* A reader waiting on the readahead fill: twice as far past it. */
	req_init(&r[2], dst, 60, 1, true);
	cached_req_run(&fx.st, &r[2]);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_JOINS], 1);
	assert_int_equal(fx.nsubmitted, 5);
	expect_fill(3, 80, CACHED_FILL_MAX); /* fills of CACHED_FILL_MAX at most */
	expect_fill(4, 144, 44);	     /* to 60 + 128 */
	for (unsigned k = 0; k < 5; k++)
		complete(k, 1 << 20, 0);
	assert_int_equal(fx.finished, 3);
	assert_int_equal(r[2].hits, 1);
	assert_int_equal(dst[0], 60);
	/* Hits are not seen; a miss where readahead stopped goes on with it. */
	req_init(&r[3], dst, 188, 1, true);
	cached_req_run(&fx.st, &r[3]);
	assert_int_equal(fx.nsubmitted, 9);
	expect_fill(5, 188, 64); /* sequential: its window grown */
	expect_fill(6, 252, 64);
	expect_fill(8, 380, 64); /* to 188 + 256, the most */
	assert_int_equal(fx.l->ra_dist, 256);
	for (unsigned k = 5; k < 9; k++)
		complete(k, 1 << 20, 0);
	/* A random miss elsewhere: one cluster, nothing ahead. */
	req_init(&r[4], dst, 900, 1, true);
	cached_req_run(&fx.st, &r[4]);
	assert_int_equal(fx.nsubmitted, 10);
	expect_fill(9, 896, CACHED_FILL_MIN);
	complete(9, 1 << 20, 0);
	assert_int_equal(fx.finished, 5);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_AHEAD_BLOCKS], 32 + 64 + 44 + 3 * 64);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_EVICTIONS], 0);
}

/* --readahead 0: a stream of misses reads nothing ahead; the same
 * stream with readahead on does. */
static void
test_readahead_off(void **state)
{
	static uint8_t dst[IC_CACHED_BLOCK];
	struct cached_req r[4];

	(void)state;
	req_init(&r[0], dst, 0, 1, true);
	cached_req_run(&fx.st, &r[0]);
	complete(0, 1 << 20, 0);
	req_init(&r[1], dst, 16, 1, true); /* sequential */
	cached_req_run(&fx.st, &r[1]);
	assert_int_equal(fx.nsubmitted, 2);
	expect_fill(1, 16, 32);
	complete(1, 1 << 20, 0);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_AHEAD_FILLS], 0);
	fx.st.readahead = 4 * CACHED_FILL_MAX;
	req_init(&r[2], dst, 48, 1, true); /* sequential again, readahead on */
	cached_req_run(&fx.st, &r[2]);
	req_init(&r[3], dst, 60, 1, true); /* a reader waiting in the stream */
	cached_req_run(&fx.st, &r[3]);
	assert_true(fx.nsubmitted > 3);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_AHEAD_FILLS], fx.nsubmitted - 3);
	for (unsigned k = 2; k < fx.nsubmitted; k++)
		complete(k, 1 << 20, 0);
}

/* Readahead takes only free room (here: what the uid's quota leaves) and
 * stops at a hole of the layer file; --readahead 0 reads nothing ahead. */
static void
test_readahead_bounds(void **state)
{
	static uint8_t dst[IC_CACHED_BLOCK], data[200 * IC_CACHED_BLOCK];
	char path[] = "/tmp/test_cached_fill.XXXXXX";
	int fd = mkstemp(path), null_fd = fx.l->fd;
	struct cached_req r[5];

	(void)state;
	assert_true(fd >= 0);
	unlink(path);
	/* the first miss of the layer */
	req_init(&r[0], dst, 0, 1, true);
	cached_req_run(&fx.st, &r[0]);
	assert_int_equal(fx.nsubmitted, 1);
	complete(0, 1 << 20, 0);
	/* A quota of 50 blocks: the reader's fill takes 32, readahead the 18
	 * left, and no more once the reader catches up. */
	fx.st.readahead = 4 * CACHED_FILL_MAX;
	assert_int_equal(cached_store_set_quota(&fx.st, 1000, 50 * IC_CACHED_BLOCK), 0);
	req_init(&r[1], dst, CACHED_FILL_MIN, 1, true);
	r[1].uid = cached_store_uid(&fx.st, 1000);
	cached_req_run(&fx.st, &r[1]);
	assert_int_equal(fx.nsubmitted, 3);
	expect_fill(1, CACHED_FILL_MIN, 2 * CACHED_FILL_MIN);
	expect_fill(2, 3 * CACHED_FILL_MIN, 18);
	assert_int_equal(fx.st.uids[r[1].uid].used, 50);
	req_init(&r[2], dst, 60, 1, true);
	r[2].uid = cached_store_uid(&fx.st, 1000);
	cached_req_run(&fx.st, &r[2]);
	assert_int_equal(fx.nsubmitted, 3);
	for (unsigned k = 1; k < 3; k++)
		complete(k, 1 << 20, 0);
	/* A layer file with data in its first 200 blocks only. */
	memset(data, 'x', sizeof(data));
	assert_int_equal(pwrite(fd, data, sizeof(data), 0), (ssize_t)sizeof(data));
	assert_int_equal(ftruncate(fd, LAYER_BLOCKS * IC_CACHED_BLOCK), 0);
	fx.l->fd = fd;
	fx.st.uids[r[2].uid].capped = false;
	req_init(&r[3], dst, 66, 1, true); /* where readahead stopped: sequential */
	cached_req_run(&fx.st, &r[3]);
	assert_int_equal(fx.nsubmitted, 6);
	expect_fill(3, 66, 64);
	expect_fill(4, 130, 64);
	expect_fill(5, 194, 6); /* to the hole, not to 66 + 256 */
	req_init(&r[4], dst, 196, 1, true); /* caught up: nothing past the hole */
	cached_req_run(&fx.st, &r[4]);
	assert_int_equal(fx.nsubmitted, 6);
	for (unsigned k = 0; k < fx.nsubmitted; k++)
		assert_true(fx.submitted[k]->block + fx.submitted[k]->nblocks <= 200);
	assert_int_equal(fx.l->ra_end, 200);
	assert_int_equal(fx.l->stats[IC_CACHED_STAT_EVICTIONS], 0);
	for (unsigned k = 3; k < fx.nsubmitted; k++)
		complete(k, 1 << 20, 0);
	fx.l->fd = null_fd;
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_backing_read_for_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sequential_misses_grow_the_window, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_short_reads_resume_and_eof_zeroes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_failed_fill_releases_waiters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sequential_stream_is_read_ahead, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_readahead_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readahead_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nodata_read_waits_and_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_wait_returns_at_once_and_fills, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
