/* isocached's boot traces: recording (cached/trace.c) into real files in a
 * temporary directory, read back with the decoder (cached/trace_file.c),
 * and the decoder's refusals. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cached/internal.h"

#define LAYER_BLOCKS (1u << 20) /* a 4 GiB layer */

struct fixture {
	struct cached_daemon d;
	struct cached_layer *l;
	struct stat sb;
	char dir[64];
};

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	uint8_t uuid[16] = { 0x5e, 1, 2, 3 };

	assert_non_null(fx);
	strcpy(fx->dir, "/tmp/test_cached_trace.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	fx->sb = (struct stat){ .st_dev = 1, .st_ino = 2,
				.st_size = (off_t)LAYER_BLOCKS * IC_CACHED_BLOCK };
	fx->sb.st_mtim.tv_sec = 1764950000;
	fx->sb.st_mtim.tv_nsec = 123456789;
	assert_int_equal(cached_store_init(&fx->d.store, 1 << 20), 0);
	assert_int_equal(cached_store_layer(&fx->d.store, uuid, &fx->sb, open("/dev/null", O_RDONLY),
					    &fx->l),
			 0);
	fx->d.traces.dir = fx->dir;
	fx->d.traces.window_ns = 60000000000ull;
	fx->d.traces.limit = UINT64_MAX;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;
	char path[128];

	assert_int_equal(ic_cached_trace_path(fx->dir, fx->l->uuid, path, sizeof(path)), 0);
	unlink(path);
	rmdir(fx->dir);
	cached_store_fini(&fx->d.store);
	free(fx);
	return 0;
}

/* Record what touch() does, end the recording, and read the file back. */
static void
record(struct fixture *fx, void (*touch)(struct cached_layer *l), struct ic_cached_trace *t)
{
	cached_trace_layer(&fx->d, fx->l, &fx->sb, 0);
	assert_non_null(fx->l->trace);
	touch(fx->l);
	cached_trace_fini(&fx->d);
	assert_null(fx->l->trace);
	assert_int_equal(ic_cached_trace_load(fx->dir, fx->l->uuid, t), 0);
}

/* 3000 runs of two blocks, going down the layer (so every run but the
 * first starts behind the one before), each block touched twice, then one
 * run that grows across the rest: far more runs than the first
 * allocation holds, so the run array moves while a run is extended. */
static void
touch_many(struct cached_layer *l)
{
	for (uint64_t i = 0; i < 3000; i++) {
		uint64_t b = 100000 - i * 10;

		cached_trace_touch(l, b);
		cached_trace_touch(l, b + 1);
		cached_trace_touch(l, b); /* again: deduplicated */
	}
	for (uint64_t b = 200000; b < 200500; b++)
		cached_trace_touch(l, b);
}

static void
test_records_runs_in_order(void **state)
{
	struct fixture *fx = *state;
	struct ic_cached_trace t;

	record(fx, touch_many, &t);
	assert_int_equal(t.nruns, 3001);
	assert_int_equal(t.blocks, 3000 * 2 + 500);
	for (uint32_t i = 0; i < 3000; i++) {
		assert_int_equal(t.runs[i].start, 100000 - (uint64_t)i * 10);
		assert_int_equal(t.runs[i].len, 2);
	}
	assert_int_equal(t.runs[3000].start, 200000);
	assert_int_equal(t.runs[3000].len, 500);
	assert_true(ic_cached_trace_matches(&t, fx->l->uuid, &fx->sb));
	fx->sb.st_mtim.tv_nsec++; /* another version of the file: stale */
	assert_false(ic_cached_trace_matches(&t, fx->l->uuid, &fx->sb));
	ic_cached_trace_free(&t);
}

/* Scattered blocks far apart: about 4 bytes each, so the 1 MiB bound
 * comes before the 400,000th. */
static void
touch_scattered(struct cached_layer *l)
{
	for (uint64_t i = 0; i < 400000; i++)
		cached_trace_touch(l, i * 7919 % LAYER_BLOCKS);
}

static void
test_stops_at_the_bound(void **state)
{
	struct fixture *fx = *state;
	struct ic_cached_trace t;
	char path[128];
	struct stat sb;

	record(fx, touch_scattered, &t);
	assert_int_equal(ic_cached_trace_path(fx->dir, fx->l->uuid, path, sizeof(path)), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_true(sb.st_size <= IC_CACHED_TRACE_MAX);
	assert_true(sb.st_size > IC_CACHED_TRACE_MAX - 16);
	assert_true(t.blocks > 200000 && t.blocks < 400000);
	assert_int_equal(t.nruns, t.blocks);
	ic_cached_trace_free(&t);
}

static void
touch_none(struct cached_layer *l)
{
	(void)l;
}

/* A layer registered and never read leaves no file. */
static void
test_nothing_read_nothing_written(void **state)
{
	struct fixture *fx = *state;
	struct ic_cached_trace t;

	cached_trace_layer(&fx->d, fx->l, &fx->sb, 0);
	touch_none(fx->l);
	cached_trace_fini(&fx->d);
	assert_int_equal(ic_cached_trace_load(fx->dir, fx->l->uuid, &t), -ENOENT);
}

static int
encode_boot(uint8_t *buf, size_t cap)
{
	struct ic_cached_trace_run runs[] = { { 1280, 64 }, { 0, 32 }, { 2304, 128 } };
	struct ic_cached_trace t = { .uuid = { 7 }, .size = 16 << 20, .blocks = 224, .nruns = 3,
				     .runs = runs };

	return ic_cached_trace_encode(&t, buf, cap);
}

static void
test_refuses_damage(void **state)
{
	uint8_t buf[256], copy[256];
	struct ic_cached_trace t;
	int len = encode_boot(buf, sizeof(buf));

	(void)state;
	assert_true(len > IC_CACHED_TRACE_HDR);
	assert_int_equal(ic_cached_trace_decode(buf, (size_t)len, &t), 0);
	assert_int_equal(t.blocks, 224);
	ic_cached_trace_free(&t);
	for (int i = 0; i < len; i++) { /* any byte changed */
		memcpy(copy, buf, (size_t)len);
		copy[i] ^= 0x10;
		assert_int_not_equal(ic_cached_trace_decode(copy, (size_t)len, &t), 0);
		assert_null(t.runs);
	}
	for (int n = 0; n < len; n++) /* any prefix */
		assert_int_equal(ic_cached_trace_decode(buf, (size_t)n, &t), -EUCLEAN);
	buf[4] = 2;
	assert_int_equal(ic_cached_trace_decode(buf, (size_t)len, &t), -EPROTONOSUPPORT);
	assert_int_equal(encode_boot(buf, (size_t)len - 1), -ENOSPC);
}

static void
test_refuses_huge_file_unread(void **state)
{
	char dir[] = "/tmp/test_cached_trace.XXXXXX", path[128];
	uint8_t uuid[16] = { 9 };
	struct ic_cached_trace t;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(ic_cached_trace_path(dir, uuid, path, sizeof(path)), 0);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, IC_CACHED_TRACE_MAX + 1), 0);
	close(fd);
	assert_int_equal(ic_cached_trace_load(dir, uuid, &t), -EFBIG);
	assert_string_equal(ic_cached_trace_strerror(-EFBIG), "larger than the 1 MiB bound");
	unlink(path);
	assert_int_equal(symlink("/etc/passwd", path), 0); /* never followed */
	assert_int_equal(ic_cached_trace_load(dir, uuid, &t), -EUCLEAN);
	unlink(path);
	rmdir(dir);
}

/* Four readers, each a sequential stream, interleaved in runs of 2 blocks,
 * over 40 runs: the replay joins each stream's runs within a window, and
 * keeps the windows in the trace's order. */
static void
test_replay_joins_interleaved_runs(void **state)
{
	struct ic_cached_trace_run runs[40];
	struct ic_cached_trace t = { .runs = runs, .nruns = 40, .blocks = 80 };
	const uint64_t want[][2] = { { 0, 16 },	 { 100, 16 }, { 200, 16 }, { 300, 16 },
				     { 16, 4 },	 { 116, 4 },  { 216, 4 },  { 316, 4 } };

	(void)state;
	_Static_assert(CACHED_PREFETCH_WINDOW == 32, "the expected runs assume it");
	for (uint32_t i = 0; i < 40; i++)
		runs[i] = (struct ic_cached_trace_run){ (i % 4) * 100 + i / 4 * 2, 2 };
	cached_prefetch_coalesce(&t);
	assert_int_equal(t.nruns, 8);
	assert_int_equal(t.blocks, 80);
	for (uint32_t i = 0; i < 8; i++) {
		assert_int_equal(t.runs[i].start, want[i][0]);
		assert_int_equal(t.runs[i].len, want[i][1]);
	}
}

/* A boot's scattered reads: runs of 4 blocks in no order. A chunk of 64
 * blocks the trace holds 16 of becomes one run of the whole chunk, where
 * the trace first reaches it; a chunk it holds 8 of stays as recorded, as
 * do runs across chunks; the layer's last chunk is clipped to its size;
 * and with no size (0), nothing changes. */
static void
test_replay_widens_dense_chunks(void **state)
{
	/* chunk 2 (blocks 128..191): 4 runs, 16 blocks, dense; chunk 5: 2 runs,
	 * sparse; a run across chunks 0 and 1; chunk 9, the last: the layer
	 * ends at block 600, its chunk is 576..639. */
	struct ic_cached_trace_run in[] = {
		{ 140, 4 }, { 330, 4 }, { 60, 8 }, { 128, 4 }, { 590, 8 }, { 150, 4 },
		{ 340, 4 }, { 580, 8 }, { 184, 4 },
	};
	const uint64_t want[][2] = { { 128, 64 }, { 330, 4 }, { 60, 8 }, { 576, 24 }, { 340, 4 } };
	struct ic_cached_trace_run runs[sizeof(in) / sizeof(in[0])];
	struct ic_cached_trace t = { .size = 600 * 4096, .runs = runs,
				     .nruns = sizeof(in) / sizeof(in[0]) };

	(void)state;
	memcpy(runs, in, sizeof(in));
	cached_prefetch_widen(&t);
	assert_int_equal(t.nruns, 5);
	assert_int_equal(t.blocks, 64 + 4 + 8 + 24 + 4);
	for (uint32_t i = 0; i < t.nruns; i++) {
		assert_int_equal(t.runs[i].start, want[i][0]);
		assert_int_equal(t.runs[i].len, want[i][1]);
	}
	memcpy(runs, in, sizeof(in));
	t = (struct ic_cached_trace){ .runs = runs, .nruns = sizeof(in) / sizeof(in[0]) };
	cached_prefetch_widen(&t);
	assert_int_equal(t.nruns, sizeof(in) / sizeof(in[0]));
	assert_memory_equal(runs, in, sizeof(in));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_records_runs_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stops_at_the_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nothing_read_nothing_written, setup, teardown),
		cmocka_unit_test(test_refuses_damage),
		cmocka_unit_test(test_refuses_huge_file_unread),
		cmocka_unit_test(test_replay_joins_interleaved_runs),
		cmocka_unit_test(test_replay_widens_dense_chunks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
