/* An in-memory client stream for the ic_nbd tests and the fuzzer: what the
 * "client" sends is queued in `in` beforehand, what the server sends lands
 * in `out` (dropped past its capacity), and the end of `in` is the client
 * hanging up. */
#ifndef IC_TEST_NBD_MEM_H
#define IC_TEST_NBD_MEM_H

#include <errno.h>
#include <string.h>

#include "nbd/nbd.h"

struct mem {
	const uint8_t *in; /* ibuf unless set */
	size_t ilen, ipos;
	uint8_t ibuf[1 << 16];
	uint8_t out[1 << 20];
	size_t olen;
	size_t rpos; /* the test's read position in out */
};

static inline int
mem_recv(void *arg, void *buf, size_t len)
{
	struct mem *m = arg;
	const uint8_t *in = m->in ? m->in : m->ibuf;

	if (len > m->ilen - m->ipos)
		return -ECONNRESET;
	memcpy(buf, in + m->ipos, len);
	m->ipos += len;
	return 0;
}

/* Short reads on purpose: at most 100 bytes at a time. */
static inline int
mem_recv_some(void *arg, void *buf, size_t cap)
{
	struct mem *m = arg;
	size_t n = m->ilen - m->ipos;

	if (n == 0)
		return -ECONNRESET;
	if (n > cap)
		n = cap;
	if (n > 100)
		n = 100;
	return mem_recv(m, buf, n) ?: (int)n;
}

static inline int
mem_send(void *arg, const struct iovec *iov, int n)
{
	struct mem *m = arg;
	int i;

	for (i = 0; i < n; i++) {
		size_t len = iov[i].iov_len;

		if (len > sizeof(m->out) - m->olen)
			len = sizeof(m->out) - m->olen;
		memcpy(m->out + m->olen, iov[i].iov_base, len);
		m->olen += len;
	}
	return 0;
}

/* The server hung up: the rest of the client's stream is never read. */
static inline void
mem_hangup(void *arg)
{
	struct mem *m = arg;

	m->ipos = m->ilen;
}

static inline void
mem_io(struct ic_nbd_io *io, struct mem *m)
{
	*io = (struct ic_nbd_io){ .recv = mem_recv, .recv_some = mem_recv_some, .send = mem_send,
				  .hangup = mem_hangup, .arg = m };
}

static inline void
mem_in(struct mem *m, const void *data, size_t len)
{
	memcpy(m->ibuf + m->ilen, data, len);
	m->ilen += len;
}

static inline void
mem_u32(struct mem *m, uint32_t v)
{
	uint8_t b[4];

	ic_nbd_put32(b, v);
	mem_in(m, b, 4);
}

/* Start a fresh stream whose client opens with these handshake flags. */
static inline void
mem_start(struct mem *m, uint32_t flags)
{
	memset(m, 0, sizeof(*m));
	mem_u32(m, flags);
}

static inline void
mem_opt(struct mem *m, uint32_t opt, const void *data, uint32_t len)
{
	uint8_t h[16];

	ic_nbd_put64(h, NBD_IHAVEOPT);
	ic_nbd_put32(h + 8, opt);
	ic_nbd_put32(h + 12, len);
	mem_in(m, h, 16);
	if (len)
		mem_in(m, data, len);
}

/* INFO or GO for name, asking for one info type (0xffff: none). */
static inline void
mem_go(struct mem *m, uint32_t opt, const char *name, uint16_t info)
{
	uint8_t b[512];
	uint32_t n = (uint32_t)strlen(name), len = 4 + n + 2;

	ic_nbd_put32(b, n);
	memcpy(b + 4, name, n);
	ic_nbd_put16(b + 4 + n, info == 0xffff ? 0 : 1);
	if (info != 0xffff) {
		ic_nbd_put16(b + len, info);
		len += 2;
	}
	mem_opt(m, opt, b, len);
}

static inline void
mem_meta(struct mem *m, uint32_t opt, const char *name, const char **q, uint32_t nq)
{
	uint8_t b[1024];
	uint32_t n = (uint32_t)strlen(name), len = 0, i;

	ic_nbd_put32(b, n);
	memcpy(b + 4, name, n);
	len = 4 + n;
	ic_nbd_put32(b + len, nq);
	len += 4;
	for (i = 0; i < nq; i++) {
		uint32_t ql = (uint32_t)strlen(q[i]);

		ic_nbd_put32(b + len, ql);
		memcpy(b + len + 4, q[i], ql);
		len += 4 + ql;
	}
	mem_opt(m, opt, b, len);
}

/* Step over one option reply in out: returns its option, sets type and
 * len, leaves rpos after its data. */
static inline uint32_t
mem_reply(struct mem *m, uint32_t *type, uint32_t *len)
{
	const uint8_t *p = m->out + m->rpos;

	*type = ic_nbd_get32(p + 12);
	*len = ic_nbd_get32(p + 16);
	m->rpos += 20 + *len;
	return ic_nbd_get32(p + 8);
}

static inline void
mem_request(struct mem *m, uint16_t flags, uint16_t type, uint64_t cookie, uint64_t off,
	    uint32_t len)
{
	uint8_t r[IC_NBD_REQUEST_SIZE];

	ic_nbd_put32(r, NBD_REQUEST_MAGIC);
	ic_nbd_put16(r + 4, flags);
	ic_nbd_put16(r + 6, type);
	ic_nbd_put64(r + 8, cookie);
	ic_nbd_put64(r + 16, off);
	ic_nbd_put32(r + 24, len);
	mem_in(m, r, sizeof(r));
}

/* A memory disk behind the engine; the backend handle points to it. A
 * write or cache hint at fail_off fails with fail_err (when not 0). */
struct memdisk {
	uint8_t *data;
	int flushes;
	int preads;
	uint64_t fail_off;
	int fail_err;
};

static inline int
memdisk_pread(void *h, void *buf, uint32_t len, uint64_t off)
{
	((struct memdisk *)h)->preads++;
	memcpy(buf, ((struct memdisk *)h)->data + off, len);
	return 0;
}

static inline int
memdisk_pwrite(void *h, const void *buf, uint32_t len, uint64_t off, bool fua)
{
	struct memdisk *d = h;

	(void)fua;
	if (d->fail_err && off == d->fail_off)
		return d->fail_err;
	memcpy(d->data + off, buf, len);
	return 0;
}

static inline int
memdisk_zero(void *h, uint32_t len, uint64_t off, bool fua)
{
	(void)fua;
	memset(((struct memdisk *)h)->data + off, 0, len);
	return 0;
}

static inline int
memdisk_cache(void *h, uint32_t len, uint64_t off)
{
	struct memdisk *d = h;

	(void)len;
	return d->fail_err && off == d->fail_off ? d->fail_err : 0;
}

static inline int
memdisk_flush(void *h)
{
	((struct memdisk *)h)->flushes++;
	return 0;
}

typedef int (*memdisk_extents_fn)(void *h, uint64_t off, uint64_t len,
				  int (*fn)(void *, const struct ic_nbd_extent *), void *arg);

static inline struct ic_nbd_backend_ops
memdisk_ops(memdisk_extents_fn extents)
{
	return (struct ic_nbd_backend_ops){
		.pread = memdisk_pread, .pwrite = memdisk_pwrite, .trim = memdisk_zero,
		.zero = memdisk_zero, .cache = memdisk_cache, .flush = memdisk_flush,
		.extents = extents,
	};
}

#endif
