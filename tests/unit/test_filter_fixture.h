/* Shared by the tests/unit/test_filter_*.c programs: real temp files as
 * layers, and a bottom ops table that preads and pwrites them, counting
 * every call so a test can see what reached the bottom.
 *
 * Each file's byte o holds fx_byte(o) until a test writes it. */
#ifndef TEST_FILTER_FIXTURE_H
#define TEST_FILTER_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "isocache/filter.h"

#define FX_SIZE (4u << 20)
#define FX_LAYERS 2

struct fx_bottom {
	uint32_t caps;
	_Atomic uint32_t pread_flags; /* the flags of the last pread */
	bool nowait_miss;     /* a pread with IC_REQ_NOWAIT would wait: -EAGAIN */
	_Atomic unsigned pread, pwrite, pwrite_fua, trim, zero, cache, flush, segs_read;
	struct ic_seg last_cache; /* the last hint, for readahead tests */
};

struct fx {
	char dir[64];
	struct ic_layer layer[FX_LAYERS];
	struct fx_bottom bottom;
	struct ic_stack *stack;
};

static inline uint8_t
fx_byte(uint64_t o)
{
	return (uint8_t)((o >> 12) * 31 + (o & 0xfff) * 7 + 1);
}

static inline int
fx_bottom_rw(struct ic_seg *segs, unsigned n, bool write)
{
	for (unsigned i = 0; i < n; i++) {
		ssize_t r =
		    write ? pwrite(segs[i].layer->fd, segs[i].buf, segs[i].len, (off_t)segs[i].off)
			  : pread(segs[i].layer->fd, segs[i].buf, segs[i].len, (off_t)segs[i].off);

		if (r < 0)
			return -errno;
		if ((uint32_t)r != segs[i].len)
			return -EIO;
	}
	return 0;
}

static inline int
fx_bottom_pread(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n, uint32_t flags)
{
	struct fx_bottom *b = inst;

	(void)next;
	b->pread++;
	b->segs_read += n;
	b->pread_flags = flags;
	if ((flags & IC_REQ_NOWAIT) && b->nowait_miss)
		return -EAGAIN;
	return fx_bottom_rw(segs, n, false);
}

static inline int
fx_bottom_pwrite(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n, uint32_t flags)
{
	struct fx_bottom *b = inst;
	int rc = fx_bottom_rw(segs, n, true);

	(void)next;
	b->pwrite++;
	if (flags & IC_REQ_FUA) {
		b->pwrite_fua++;
		if (rc == 0 && fdatasync(segs[0].layer->fd) < 0)
			rc = -errno;
	}
	return rc;
}

static inline int
fx_bottom_fallocate(struct ic_seg *segs, unsigned n, int mode)
{
	for (unsigned i = 0; i < n; i++)
		if (fallocate(segs[i].layer->fd, mode, (off_t)segs[i].off, segs[i].len) < 0)
			return -errno;
	return 0;
}

static inline int
fx_bottom_trim(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n, uint32_t flags)
{
	struct fx_bottom *b = inst;

	(void)next;
	(void)flags;
	b->trim++;
	return fx_bottom_fallocate(segs, n, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
}

static inline int
fx_bottom_zero(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n, uint32_t flags)
{
	struct fx_bottom *b = inst;

	(void)next;
	(void)flags;
	b->zero++;
	return fx_bottom_fallocate(segs, n, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
}

static inline int
fx_bottom_cache(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n)
{
	struct fx_bottom *b = inst;

	(void)next;
	b->cache++;
	b->last_cache = segs[n - 1];
	for (unsigned i = 0; i < n; i++)
		posix_fadvise(segs[i].layer->fd, (off_t)segs[i].off, segs[i].len,
			      POSIX_FADV_WILLNEED);
	return 0;
}

static inline int
fx_bottom_flush(struct ic_next *next, void *inst, const struct ic_layer *layer)
{
	struct fx_bottom *b = inst;

	(void)next;
	b->flush++;
	return fdatasync(layer->fd) < 0 ? -errno : 0;
}

static inline uint32_t
fx_bottom_caps(struct ic_next *next, void *inst)
{
	(void)next;
	return ((struct fx_bottom *)inst)->caps;
}

static const struct ic_filter_ops fx_bottom_ops = {
	IC_FILTER_OPS_INIT,         .name = "file",
	.caps = fx_bottom_caps,     .pread = fx_bottom_pread,
	.pwrite = fx_bottom_pwrite, .trim = fx_bottom_trim,
	.zero = fx_bottom_zero,     .cache = fx_bottom_cache,
	.flush = fx_bottom_flush,
};

/* The same bottom, honouring IC_REQ_NOWAIT (it never waits, but for
 * nowait_miss). */
static const struct ic_filter_ops fx_bottom_nowait_ops = {
	IC_FILTER_OPS_INIT,         .name = "file",
	.caps = fx_bottom_caps,     .pread = fx_bottom_pread,
	.pwrite = fx_bottom_pwrite, .trim = fx_bottom_trim,
	.zero = fx_bottom_zero,     .cache = fx_bottom_cache,
	.flush = fx_bottom_flush,   .honours = IC_REQ_NOWAIT,
};

/* Make FX_LAYERS layer files of FX_SIZE filled with fx_byte(), and an
 * empty stack over them whose bottom has every capability. */
static inline int
fx_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	uint8_t *buf = malloc(FX_SIZE);
	const char *tmp = getenv("TMPDIR");

	assert_non_null(fx);
	assert_non_null(buf);
	snprintf(fx->dir, sizeof(fx->dir), "%s/ic-filter.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(fx->dir));
	for (uint64_t o = 0; o < FX_SIZE; o++)
		buf[o] = fx_byte(o);
	for (unsigned i = 0; i < FX_LAYERS; i++) {
		char path[96];

		snprintf(path, sizeof(path), "%s/%u.raw", fx->dir, i + 1);
		fx->layer[i] =
		    (struct ic_layer){ .disk_id = i + 1, .size = FX_SIZE, .direct_fd = -1 };
		fx->layer[i].fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		assert_true(fx->layer[i].fd >= 0);
		assert_int_equal(pwrite(fx->layer[i].fd, buf, FX_SIZE, 0), FX_SIZE);
	}
	free(buf);
	fx->bottom.caps = IC_CAP_TRIM | IC_CAP_ZERO | IC_CAP_FUA | IC_CAP_CACHE;
	assert_int_equal(ic_stack_new(&fx_bottom_ops, &fx->bottom, &fx->stack), 0);
	*state = fx;
	return 0;
}

static inline int
fx_teardown(void **state)
{
	struct fx *fx = *state;
	char path[96];

	ic_stack_free(fx->stack);
	for (unsigned i = 0; i < FX_LAYERS; i++) {
		close(fx->layer[i].fd);
		snprintf(path, sizeof(path), "%s/%u.raw", fx->dir, i + 1);
		unlink(path);
	}
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* Read len bytes at off of layer i through the stack; returns its result. */
static inline int
fx_read(struct fx *fx, unsigned i, uint64_t off, uint32_t len, void *buf)
{
	struct ic_seg seg = { &fx->layer[i], off, len, buf };

	return ic_stack_pread(fx->stack, &seg, 1, 0);
}

/* Whether buf holds the original bytes of [off, off + len). */
static inline bool
fx_intact(const uint8_t *buf, uint64_t off, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		if (buf[i] != fx_byte(off + i))
			return false;
	return true;
}

static inline uint64_t
fx_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The stack's report, in a static buffer. */
static inline const char *
fx_report(struct fx *fx)
{
	static char buf[1 << 16];

	assert_true(ic_stack_report(fx->stack, buf, sizeof(buf)) > 0);
	return buf;
}

#endif
