/* A store with an L2 tier over real files in a mkdtemp directory: a layer
 * of random bytes and an L2 file. The ring is replaced by hooks: L2
 * writes happen at once (pwrite), fills are queued and fx_drain() reads
 * them (preadv from the fill's fd, the layer or L2) and completes them. */
#ifndef TEST_CACHED_L2_FIXTURE_H
#define TEST_CACHED_L2_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

#include "cached/internal.h"

#define FX_LAYER_BLOCKS 256
#define FX_L2_SIZE (CACHED_L2_MIN_SLOTS * IC_CACHED_BLOCK)

struct l2_fixture {
	char dir[64], layer[96], l2path[96];
	uint8_t bytes[FX_LAYER_BLOCKS * IC_CACHED_BLOCK]; /* the layer's content */
	struct cached_store st;
	struct cached_l2 l2;
	struct cached_layer *l;
	struct cached_fill *queued[CACHED_MAX_FILLS];
	unsigned nqueued;
};

static struct l2_fixture fx;

static int
fx_submit(struct cached_store *st, struct cached_fill *f)
{
	(void)st;
	assert_true(fx.nqueued < CACHED_MAX_FILLS);
	fx.queued[fx.nqueued++] = f;
	return 0;
}

static void
fx_finish(struct cached_store *st, struct cached_req *r)
{
	(void)st;
	(void)r;
}

static int
fx_write(struct cached_l2 *l2, struct ic_op *op, const void *buf, size_t len, uint64_t off)
{
	ssize_t n = pwrite(l2->fd, buf, len, (off_t)off);

	op->done(op, n < 0 ? -errno : (int)n);
	return 0;
}

/* Complete every queued fill (and the fills their waiters start). */
static void
fx_drain(void)
{
	while (fx.nqueued) {
		struct cached_fill *f = fx.queued[--fx.nqueued];
		ssize_t n = preadv(f->fd, f->iov + f->iov_first, (int)(f->nblocks - f->iov_first),
				   (off_t)(f->off + f->done_bytes));

		cached_fill_complete(f, n < 0 ? -errno : (int)n);
	}
}

/* A store over the L2 file, and the layer registered in it. */
static void
fx_open(void)
{
	uint8_t uuid[16] = { 0x15, 0x0c };
	struct stat sb;
	int fd = open(fx.layer, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	assert_int_equal(cached_store_init(&fx.st, 1024 * IC_CACHED_BLOCK), 0);
	fx.st.submit = fx_submit;
	fx.st.finish = fx_finish;
	assert_int_equal(cached_l2_open(&fx.l2, fx.l2path, FX_L2_SIZE), 0);
	fx.l2.write = fx_write;
	cached_store_attach_l2(&fx.st, &fx.l2);
	assert_int_equal(cached_store_layer(&fx.st, uuid, &sb, fd, &fx.l), 0);
}

/* Stop as the daemon does: the index is written, everything freed. */
static void
fx_close(void)
{
	cached_l2_close(&fx.l2);
	cached_store_fini(&fx.st);
}

static void
fx_reopen(void)
{
	fx_close();
	fx_open();
}

/* Read blocks [block, block + n) read-through and check them against the
 * layer; returns the hit bitmap. */
static uint64_t
fx_read(uint64_t block, uint32_t n)
{
	static uint8_t dst[IC_CACHED_MAX_BLOCKS * IC_CACHED_BLOCK];
	struct cached_req r = {
		.layer = fx.l, .block = block, .nblocks = n, .wait = true, .dst = dst,
	};

	cached_req_run(&fx.st, &r);
	fx_drain();
	assert_memory_equal(dst, fx.bytes + block * IC_CACHED_BLOCK, (size_t)n * IC_CACHED_BLOCK);
	return r.hits;
}

static void
fx_read_all(void)
{
	for (uint64_t b = 0; b < FX_LAYER_BLOCKS; b += IC_CACHED_MAX_BLOCKS)
		assert_int_equal(fx_read(b, IC_CACHED_MAX_BLOCKS), UINT64_MAX);
}

/* Invert the byte at off of path: a poke of a fixed value would leave a
 * byte that already held it as it was, and the bytes here are random. */
static void
fx_flip(const char *path, uint64_t off)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	uint8_t v;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &v, 1, (off_t)off), 1);
	v = (uint8_t)~v;
	assert_int_equal(pwrite(fd, &v, 1, (off_t)off), 1);
	close(fd);
}

static int
fx_setup(void **state)
{
	int fd;

	(void)state;
	memset(&fx, 0, sizeof(fx));
	snprintf(fx.dir, sizeof(fx.dir), "%s/cached-l2.XXXXXX", "/tmp");
	assert_non_null(mkdtemp(fx.dir));
	snprintf(fx.layer, sizeof(fx.layer), "%s/layer", fx.dir);
	snprintf(fx.l2path, sizeof(fx.l2path), "%s/l2", fx.dir);
	for (size_t i = 0; i < sizeof(fx.bytes); i++)
		fx.bytes[i] = (uint8_t)(rand() >> 7);
	fd = open(fx.layer, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, fx.bytes, sizeof(fx.bytes)), (ssize_t)sizeof(fx.bytes));
	close(fd);
	fx_open();
	return 0;
}

static int
fx_teardown(void **state)
{
	(void)state;
	fx_close();
	unlink(fx.layer);
	unlink(fx.l2path);
	rmdir(fx.dir);
	return 0;
}

#endif
