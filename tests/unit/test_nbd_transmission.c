/* Transmission: requests through ic_nbd_conn_serve against a memory disk,
 * checking replies byte by byte, errors included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>

#include "nbd/nbd.h"
#include "tests/unit/test_nbd_mem.h"

#define DISK (1u << 20)
#define HOLE_END (64u << 10) /* [0, 64K) was never written */

static uint8_t disk[DISK];
/* A write at 4096 fails as a fenced owner's would. */
static struct memdisk md = { .data = disk, .fail_off = 4096, .fail_err = -ESTALE };

static int md_extent_calls, md_pread_extents_calls;

/* The disk's extents over [off, off+len), to fn. */
static int
md_walk(uint64_t off, uint64_t len, int (*fn)(void *, const struct ic_nbd_extent *), void *arg)
{
	struct ic_nbd_extent e[3] = {
		{ 0, HOLE_END, -1, false },
		{ HOLE_END, HOLE_END, 0, false },
		{ 2 * HOLE_END, DISK - 2 * HOLE_END, 1, false },
	};
	int i, rc;

	for (i = 0; i < 3; i++) {
		if (e[i].off + e[i].len <= off || e[i].off >= off + len)
			continue;
		rc = fn(arg, &e[i]);
		if (rc)
			return rc;
	}
	return 0;
}

static int
md_extents(void *h, uint64_t off, uint64_t len, int (*fn)(void *, const struct ic_nbd_extent *),
	   void *arg)
{
	(void)h;
	md_extent_calls++;
	return md_walk(off, len, fn, arg);
}

/* The hole reads as zeroes in disk[], so a copy zero-fills it. */
static int
md_pread_extents(void *h, void *buf, uint32_t len, uint64_t off,
		 int (*fn)(void *, const struct ic_nbd_extent *), void *arg)
{
	md_pread_extents_calls++;
	memcpy(buf, ((struct memdisk *)h)->data + off, len);
	md_walk(off, len, fn, arg);
	return 0;
}

static const struct ic_nbd_export rw = { .name = "d", .size = DISK, .tflags = NBD_FLAG_HAS_FLAGS };
static const struct ic_nbd_export ro = {
	.name = "d", .size = DISK, .tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY
};

static int
serve(struct mem *m, const struct ic_nbd_export *exp, bool structured, bool ctx)
{
	struct ic_nbd_backend_ops ops = memdisk_ops(md_extents);
	struct ic_nbd_io io;
	struct ic_nbd_conn *c;
	struct ic_nbd_conn_config cfg = {
		.io = &io, .ops = &ops, .backend = &md, .slots = 1,
		.max_payload = 1 << 18,
		.session = { .export = exp, .structured = structured, .ctx_base = ctx,
			     .ctx_layer = ctx },
	};
	int rc;

	ops.pread_extents = md_pread_extents;
	mem_io(&io, m);
	assert_int_equal(ic_nbd_conn_new(&cfg, &c), 0);
	rc = ic_nbd_conn_serve(c);
	ic_nbd_conn_free(c);
	return rc;
}

/* Check the next simple reply in out. */
static void
simple(struct mem *m, uint64_t cookie, uint32_t err)
{
	const uint8_t *p = m->out + m->rpos;

	assert_int_equal(ic_nbd_get32(p), NBD_SIMPLE_REPLY_MAGIC);
	assert_int_equal(ic_nbd_get32(p + 4), err);
	assert_int_equal(ic_nbd_get64(p + 8), cookie);
	m->rpos += IC_NBD_SIMPLE_REPLY_SIZE;
}

/* Check the next chunk header; returns a pointer to its payload. */
static const uint8_t *
chunk(struct mem *m, uint64_t cookie, uint16_t type, uint16_t flags, uint32_t len)
{
	const uint8_t *p = m->out + m->rpos;

	assert_int_equal(ic_nbd_get32(p), NBD_STRUCTURED_REPLY_MAGIC);
	assert_int_equal(ic_nbd_get16(p + 4), flags);
	assert_int_equal(ic_nbd_get16(p + 6), type);
	assert_int_equal(ic_nbd_get64(p + 8), cookie);
	assert_int_equal(ic_nbd_get32(p + 16), len);
	m->rpos += IC_NBD_CHUNK_SIZE + len;
	return p + IC_NBD_CHUNK_SIZE;
}

static int
setup(void **state)
{
	unsigned i;

	(void)state;
	for (i = 0; i < DISK; i++)
		disk[i] = i < HOLE_END ? 0 : (uint8_t)(i * 7);
	md.flushes = 0;
	return 0;
}

static void
test_simple_write_read(void **state)
{
	static struct mem m;
	uint8_t pat[1000];

	(void)state;
	memset(&m, 0, sizeof(m));
	memset(pat, 0xab, sizeof(pat));
	mem_request(&m, NBD_CMD_FLAG_FUA, NBD_CMD_WRITE, 1, 100001, sizeof(pat));
	mem_in(&m, pat, sizeof(pat));
	mem_request(&m, 0, NBD_CMD_READ, 2, 100001, sizeof(pat));
	mem_request(&m, 0, NBD_CMD_FLUSH, 3, 0, 0);
	mem_request(&m, 0, NBD_CMD_DISC, 4, 0, 0);
	assert_int_equal(serve(&m, &rw, false, false), 0);
	simple(&m, 1, 0);
	simple(&m, 2, 0);
	assert_memory_equal(m.out + m.rpos, pat, sizeof(pat));
	m.rpos += sizeof(pat);
	simple(&m, 3, 0);
	assert_int_equal(m.rpos, m.olen);
	assert_int_equal(md.flushes, 2); /* FLUSH, and at disconnect */
}

static void
test_errors(void **state)
{
	static struct mem m;
	uint8_t pat[16] = { 0 };

	(void)state;
	memset(&m, 0, sizeof(m));
	mem_request(&m, 0, NBD_CMD_READ, 1, DISK - 8, 16);	   /* past the end */
	mem_request(&m, 0, NBD_CMD_WRITE, 2, DISK - 8, 16);	   /* past the end */
	mem_in(&m, pat, 16);
	mem_request(&m, 0, 99, 3, 0, 16);			   /* unknown command */
	mem_request(&m, NBD_CMD_FLAG_DF, NBD_CMD_READ, 4, 0, 16); /* DF, not structured */
	mem_request(&m, 0, NBD_CMD_BLOCK_STATUS, 5, 0, 16);	   /* no context */
	mem_request(&m, 0, NBD_CMD_FLUSH, 8, 1, 0);
	mem_request(&m, 0, NBD_CMD_READ, 9, 0, 0);		   /* zero length */
	mem_request(&m, 0, NBD_CMD_WRITE, 7, 0, 1 << 19);	   /* over max, discarded */
	assert_int_equal(serve(&m, &rw, false, false), 0);
	simple(&m, 1, NBD_EINVAL);
	simple(&m, 2, NBD_ENOSPC);
	simple(&m, 3, NBD_EINVAL);
	simple(&m, 4, NBD_EINVAL);
	simple(&m, 5, NBD_EINVAL);
	simple(&m, 8, NBD_EINVAL);
	simple(&m, 9, NBD_EINVAL);
	/* The oversized write's payload is the rest of the stream: the client
	 * vanishes mid-payload, and the server just ends. */
	assert_int_equal(m.rpos, m.olen);
}

/* A vdisk released to another process: EPERM, and the connection ends
 * there (the server hangs up: nothing after it is read). */
static void
test_fenced_hangs_up(void **state)
{
	static struct mem m;
	uint8_t pat[16] = { 0 };

	(void)state;
	memset(&m, 0, sizeof(m));
	mem_request(&m, 0, NBD_CMD_WRITE, 1, 4096, 16);
	mem_in(&m, pat, 16);
	mem_request(&m, 0, NBD_CMD_FLUSH, 2, 0, 0);
	assert_int_equal(serve(&m, &rw, false, false), 0);
	simple(&m, 1, NBD_EPERM);
	assert_int_equal(m.rpos, m.olen);
}

static void
test_read_only(void **state)
{
	static struct mem m;
	uint8_t pat[16] = { 0 };

	(void)state;
	memset(&m, 0, sizeof(m));
	mem_request(&m, 0, NBD_CMD_WRITE, 1, 0, 16);
	mem_in(&m, pat, 16);
	mem_request(&m, 0, NBD_CMD_TRIM, 2, 0, 16);
	mem_request(&m, 0, NBD_CMD_WRITE_ZEROES, 3, 0, 16);
	mem_request(&m, 0, NBD_CMD_CACHE, 4, 0, 16);
	assert_int_equal(serve(&m, &ro, false, false), 0);
	simple(&m, 1, NBD_EPERM);
	simple(&m, 2, NBD_EPERM);
	simple(&m, 3, NBD_EPERM);
	simple(&m, 4, 0);
	assert_int_equal(md.flushes, 0);
}

static void
test_structured_read_holes(void **state)
{
	static struct mem m;
	const uint8_t *p;

	(void)state;
	memset(&m, 0, sizeof(m));
	mem_request(&m, 0, NBD_CMD_READ, 1, HOLE_END - 100, 200);
	mem_request(&m, NBD_CMD_FLAG_DF, NBD_CMD_READ, 2, HOLE_END - 100, 200);
	mem_request(&m, 0, NBD_CMD_READ, 3, 10, 20);
	mem_request(&m, 0, NBD_CMD_READ, 4, DISK, 20);
	assert_int_equal(serve(&m, &rw, true, false), 0);
	p = chunk(&m, 1, NBD_REPLY_TYPE_OFFSET_HOLE, 0, 12);
	assert_int_equal(ic_nbd_get64(p), HOLE_END - 100);
	assert_int_equal(ic_nbd_get32(p + 8), 100);
	p = chunk(&m, 1, NBD_REPLY_TYPE_OFFSET_DATA, NBD_REPLY_FLAG_DONE, 108);
	assert_int_equal(ic_nbd_get64(p), HOLE_END);
	assert_memory_equal(p + 8, disk + HOLE_END, 100);
	p = chunk(&m, 2, NBD_REPLY_TYPE_OFFSET_DATA, NBD_REPLY_FLAG_DONE, 208);
	assert_memory_equal(p + 8, disk + HOLE_END - 100, 200);
	p = chunk(&m, 3, NBD_REPLY_TYPE_OFFSET_HOLE, NBD_REPLY_FLAG_DONE, 12);
	assert_int_equal(ic_nbd_get32(p + 8), 20);
	p = chunk(&m, 4, NBD_REPLY_TYPE_ERROR, NBD_REPLY_FLAG_DONE, 6);
	assert_int_equal(ic_nbd_get32(p), NBD_EINVAL);
}

/* A structured read costs one resolve: a small one is one pread (no
 * extents lookup), a large one one pread_extents (neither a lookup of
 * its extents nor a pread per run, as before). */
static void
test_structured_read_resolves_once(void **state)
{
	static struct mem m;
	const uint8_t *p;

	(void)state;
	memset(&m, 0, sizeof(m));
	md.preads = md_extent_calls = 0;
	mem_request(&m, 0, NBD_CMD_READ, 1, HOLE_END + 4096, 4096);
	assert_int_equal(serve(&m, &rw, true, false), 0);
	p = chunk(&m, 1, NBD_REPLY_TYPE_OFFSET_DATA, NBD_REPLY_FLAG_DONE, 8 + 4096);
	assert_memory_equal(p + 8, disk + HOLE_END + 4096, 4096);
	assert_int_equal(md_extent_calls, 0);
	assert_int_equal(md.preads, 1);

	memset(&m, 0, sizeof(m));
	md.preads = md_extent_calls = md_pread_extents_calls = 0;
	mem_request(&m, 0, NBD_CMD_READ, 2, 0, 2 * HOLE_END);
	assert_int_equal(serve(&m, &rw, true, false), 0);
	p = chunk(&m, 2, NBD_REPLY_TYPE_OFFSET_HOLE, 0, 12);
	assert_int_equal(ic_nbd_get32(p + 8), HOLE_END);
	p = chunk(&m, 2, NBD_REPLY_TYPE_OFFSET_DATA, NBD_REPLY_FLAG_DONE, 8 + HOLE_END);
	assert_memory_equal(p + 8, disk + HOLE_END, HOLE_END);
	assert_int_equal(md_pread_extents_calls, 1);
	assert_int_equal(md_extent_calls, 0);
	assert_int_equal(md.preads, 0);

	/* DF: one data chunk, its hole part zeroes, from the same one call. */
	memset(&m, 0, sizeof(m));
	md_pread_extents_calls = 0;
	mem_request(&m, NBD_CMD_FLAG_DF, NBD_CMD_READ, 3, 0, 2 * HOLE_END);
	assert_int_equal(serve(&m, &rw, true, false), 0);
	p = chunk(&m, 3, NBD_REPLY_TYPE_OFFSET_DATA, NBD_REPLY_FLAG_DONE, 8 + 2 * HOLE_END);
	assert_memory_equal(p + 8, disk, 2 * HOLE_END);
	assert_int_equal(md_pread_extents_calls, 1);
}

static void
test_block_status(void **state)
{
	static struct mem m;
	const uint8_t *p;

	(void)state;
	memset(&m, 0, sizeof(m));
	mem_request(&m, 0, NBD_CMD_BLOCK_STATUS, 1, 4096, 3 * HOLE_END);
	mem_request(&m, NBD_CMD_FLAG_REQ_ONE, NBD_CMD_BLOCK_STATUS, 2, 4096, 3 * HOLE_END);
	assert_int_equal(serve(&m, &rw, true, true), 0);
	/* base:allocation merges the two data extents; the layer context not. */
	p = chunk(&m, 1, NBD_REPLY_TYPE_BLOCK_STATUS, 0, 4 + 16);
	assert_int_equal(ic_nbd_get32(p), IC_NBD_CTX_BASE_ID);
	assert_int_equal(ic_nbd_get32(p + 4), HOLE_END - 4096);
	assert_int_equal(ic_nbd_get32(p + 8), NBD_STATE_HOLE | NBD_STATE_ZERO);
	assert_int_equal(ic_nbd_get32(p + 12), 2 * HOLE_END + 4096);
	assert_int_equal(ic_nbd_get32(p + 16), 0);
	p = chunk(&m, 1, NBD_REPLY_TYPE_BLOCK_STATUS, NBD_REPLY_FLAG_DONE, 4 + 24);
	assert_int_equal(ic_nbd_get32(p), IC_NBD_CTX_LAYER_ID);
	assert_int_equal(ic_nbd_get32(p + 8), IC_NBD_LAYER_NONE);
	assert_int_equal(ic_nbd_get32(p + 16), 0);
	assert_int_equal(ic_nbd_get32(p + 20), HOLE_END + 4096);
	assert_int_equal(ic_nbd_get32(p + 24), 1);
	chunk(&m, 2, NBD_REPLY_TYPE_BLOCK_STATUS, 0, 12);
	chunk(&m, 2, NBD_REPLY_TYPE_BLOCK_STATUS, NBD_REPLY_FLAG_DONE, 12);
}

static void
test_bad_magic_drops(void **state)
{
	static struct mem m;

	(void)state;
	memset(&m, 0, sizeof(m));
	mem_in(&m, "garbage garbage garbage garb", IC_NBD_REQUEST_SIZE);
	assert_int_equal(serve(&m, &rw, true, false), -EPROTO);
	assert_int_equal(m.olen, 0);
}

static void
test_errno_map(void **state)
{
	(void)state;
	assert_int_equal(ic_nbd_errno(-ESTALE), NBD_EPERM);
	assert_int_equal(ic_nbd_errno(-EROFS), NBD_EPERM);
	assert_int_equal(ic_nbd_errno(-EDQUOT), NBD_ENOSPC);
	assert_int_equal(ic_nbd_errno(-EUCLEAN), NBD_EIO);
	assert_int_equal(ic_nbd_errno(0), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_simple_write_read, setup),
		cmocka_unit_test_setup(test_errors, setup),
		cmocka_unit_test_setup(test_fenced_hangs_up, setup),
		cmocka_unit_test_setup(test_read_only, setup),
		cmocka_unit_test_setup(test_structured_read_holes, setup),
		cmocka_unit_test_setup(test_structured_read_resolves_once, setup),
		cmocka_unit_test_setup(test_block_status, setup),
		cmocka_unit_test_setup(test_bad_magic_drops, setup),
		cmocka_unit_test(test_errno_map),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
