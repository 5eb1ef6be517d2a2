/* libFuzzer target: the input is everything a client sends, handshake
 * then requests, served by the ic_nbd engine over a memory disk. Any crash,
 * hang, leak or sanitizer report is a bug in the engine. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "nbd/nbd.h"
#include "tests/unit/test_nbd_mem.h"

#define FZ_DISK (1u << 20)

static uint8_t fz_disk[FZ_DISK];
static struct memdisk fz_md = { .data = fz_disk, .fail_off = 512, .fail_err = -EIO };

/* Alternating 4 KiB extents of holes, leaf data and parent data. */
static int
fz_extents(void *h, uint64_t off, uint64_t len, int (*fn)(void *, const struct ic_nbd_extent *),
	   void *arg)
{
	uint64_t o = off & ~4095ull;
	int rc;

	(void)h;
	for (; o < off + len; o += 4096) {
		struct ic_nbd_extent e = { o, 4096, (int)(o / 4096 % 3) - 1, o % 5 == 0 };

		rc = fn(arg, &e);
		if (rc)
			return rc;
	}
	return 0;
}

static const struct ic_nbd_export fz_exports[] = {
	{ .name = "vm1", .description = "fuzz", .size = FZ_DISK, .tflags = 0x0ffd },
	{ .name = "vm1@s", .size = FZ_DISK - 1000, .tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mem m;
	const struct ic_nbd_catalog cat = { .exports = fz_exports, .count = 2 };
	const struct ic_nbd_backend_ops ops = memdisk_ops(fz_extents);
	struct ic_nbd_conn_config cfg = { .ops = &ops, .backend = &fz_md, .slots = 1,
					  .max_payload = 1 << 16 };
	struct ic_nbd_conn *conn;
	struct ic_nbd_io io;

	ic_log_level = IC_LOG_ERR;
	memset(&m, 0, offsetof(struct mem, ibuf));
	m.olen = 0;
	m.rpos = 0;
	m.in = data;
	m.ilen = size;
	mem_io(&io, &m);
	if (ic_nbd_handshake(&io, &cat, &cfg.session) < 0)
		return 0;
	cfg.io = &io;
	if (ic_nbd_conn_new(&cfg, &conn) < 0)
		abort();
	ic_nbd_conn_serve(conn);
	ic_nbd_conn_free(conn);
	return 0;
}
