/* Boot trace files (include/isocache/cached_trace.h): their encoding, and
 * reading one back. The daemon writes them (cached/trace.c); the daemon
 * and isocache-admin read them.
 *
 * A trace file is input from the disk, not from a trusted writer: whoever
 * could write the trace directory could put anything there. So the
 * decoder checks every count against the bytes it has and every run
 * against the layer the header names, refuses a file past the bound
 * before reading it, and allocates only for runs the bytes can hold
 * (tests/fuzz/fuzz_cached_trace.c feeds it garbage). The worst a valid
 * but forged trace can do is make the daemon prefetch blocks of that
 * layer in a useless order, within the prefetch cap.
 */
#include "isocache/cached_trace.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/cleanup.h"
#include "common/uuid.h"

const char *
ic_cached_trace_dir(const char *dir)
{
	if (!dir || !*dir)
		dir = getenv("ISOCACHE_TRACE_DIR");
	return dir && *dir ? dir : IC_CACHED_TRACE_DEFAULT_DIR;
}

int
ic_cached_trace_path(const char *dir, const uint8_t uuid[16], char *buf, size_t cap)
{
	char text[IC_UUID_STRLEN];
	int len;

	ic_uuid_format(uuid, text);
	len = snprintf(buf, cap, "%s/%s.trace", dir, text);
	return len < 0 || (size_t)len >= cap ? -ENAMETOOLONG : 0;
}

uint64_t
ic_cached_trace_mtime(const struct stat *sb)
{
	return (uint64_t)sb->st_mtim.tv_sec * 1000000000ull + (uint64_t)sb->st_mtim.tv_nsec;
}

int
ic_cached_trace_matches(const struct ic_cached_trace *t, const uint8_t uuid[16],
			const struct stat *sb)
{
	return !memcmp(t->uuid, uuid, 16) && t->size == (uint64_t)sb->st_size &&
	       t->mtime_ns == ic_cached_trace_mtime(sb);
}

const char *
ic_cached_trace_strerror(int rc)
{
	switch (rc) {
	case -EFBIG:
		return "larger than the 1 MiB bound";
	case -EUCLEAN:
		return "damaged";
	case -EPROTONOSUPPORT:
		return "of an unknown version";
	default:
		return strerror(-rc);
	}
}

void
ic_cached_trace_free(struct ic_cached_trace *t)
{
	free(t->runs);
	memset(t, 0, sizeof(*t));
}

static size_t
trace_varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint64_t
trace_zigzag(uint64_t prev_end, uint64_t start)
{
	int64_t d = (int64_t)(start - prev_end);

	return ((uint64_t)d << 1) ^ (uint64_t)(d >> 63);
}

size_t
ic_cached_trace_run_size(uint64_t prev_end, uint64_t start, uint64_t len)
{
	return trace_varint_size(trace_zigzag(prev_end, start)) + trace_varint_size(len);
}

static uint8_t *
trace_put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static void
trace_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t
trace_get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint32_t
trace_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void
trace_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The checksum: of the runs, seeded with the hash of the header before it. */
static uint64_t
trace_sum(const uint8_t *buf, size_t len)
{
	return XXH3_64bits_withSeed(buf + IC_CACHED_TRACE_HDR, len - IC_CACHED_TRACE_HDR,
				    XXH3_64bits(buf, 64));
}

int
ic_cached_trace_encode(const struct ic_cached_trace *t, uint8_t *buf, size_t cap)
{
	uint8_t *p = buf + IC_CACHED_TRACE_HDR, *end = buf + cap;
	uint64_t prev_end = 0;

	if (cap < IC_CACHED_TRACE_HDR)
		return -ENOSPC;
	memset(buf, 0, IC_CACHED_TRACE_HDR);
	trace_put32(buf, IC_CACHED_TRACE_MAGIC);
	trace_put32(buf + 4, IC_CACHED_TRACE_VERSION);
	memcpy(buf + 8, t->uuid, 16);
	trace_put64(buf + 24, t->size);
	trace_put64(buf + 32, t->mtime_ns);
	trace_put64(buf + 40, t->recorded);
	trace_put64(buf + 48, t->blocks);
	trace_put32(buf + 56, t->nruns);
	for (uint32_t i = 0; i < t->nruns; i++) {
		const struct ic_cached_trace_run *r = &t->runs[i];

		if ((size_t)(end - p) < ic_cached_trace_run_size(prev_end, r->start, r->len))
			return -ENOSPC;
		p = trace_put_varint(p, trace_zigzag(prev_end, r->start));
		p = trace_put_varint(p, r->len);
		prev_end = r->start + r->len;
	}
	trace_put64(buf + 64, trace_sum(buf, (size_t)(p - buf)));
	return (int)(p - buf);
}

/* One varint from *p (before end); false if it is cut short, too long or
 * not the shortest encoding of its value. */
static bool
trace_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		if (shift == 63 && b > 1)
			return false;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return shift == 0 || b != 0; /* one encoding per value */
	}
	return false;
}

int
ic_cached_trace_decode(const uint8_t *buf, size_t len, struct ic_cached_trace *t)
{
	const uint8_t *p = buf + IC_CACHED_TRACE_HDR, *end = buf + len;
	uint64_t nblocks, prev_end = 0, blocks = 0;

	memset(t, 0, sizeof(*t));
	if (len > IC_CACHED_TRACE_MAX)
		return -EFBIG;
	if (len < IC_CACHED_TRACE_HDR || trace_get32(buf) != IC_CACHED_TRACE_MAGIC)
		return -EUCLEAN;
	if (trace_get32(buf + 4) != IC_CACHED_TRACE_VERSION)
		return -EPROTONOSUPPORT;
	if (trace_get64(buf + 64) != trace_sum(buf, len) || trace_get32(buf + 60) != 0)
		return -EUCLEAN;
	memcpy(t->uuid, buf + 8, 16);
	t->size = trace_get64(buf + 24);
	t->mtime_ns = trace_get64(buf + 32);
	t->recorded = trace_get64(buf + 40);
	t->blocks = trace_get64(buf + 48);
	t->nruns = trace_get32(buf + 56);
	nblocks = t->size / 4096 + (t->size % 4096 != 0);
	/* Each run takes two bytes at least: more runs than that is a lie. */
	if (t->nruns > (len - IC_CACHED_TRACE_HDR) / 2)
		goto bad;
	t->runs = malloc((t->nruns ? t->nruns : 1) * sizeof(*t->runs));
	if (!t->runs) {
		memset(t, 0, sizeof(*t));
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < t->nruns; i++) {
		uint64_t zz, start, rlen;

		if (!trace_get_varint(&p, end, &zz) || !trace_get_varint(&p, end, &rlen))
			goto bad;
		start = prev_end + (uint64_t)((int64_t)(zz >> 1) ^ -(int64_t)(zz & 1));
		if (rlen == 0 || start >= nblocks || rlen > nblocks - start)
			goto bad;
		t->runs[i] = (struct ic_cached_trace_run){ start, rlen };
		prev_end = start + rlen;
		blocks += rlen;
	}
	if (p != end || blocks != t->blocks)
		goto bad;
	return 0;
bad:
	ic_cached_trace_free(t);
	return -EUCLEAN;
}

int
ic_cached_trace_load(const char *dir, const uint8_t uuid[16], struct ic_cached_trace *t)
{
	IC_AUTOCLOSE int fd = -1;
	IC_AUTOFREE uint8_t *buf = NULL;
	char path[4096];
	struct stat sb;
	size_t got = 0;
	int rc;

	memset(t, 0, sizeof(*t));
	rc = ic_cached_trace_path(dir, uuid, path, sizeof(path));
	if (rc < 0)
		return rc;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? -EUCLEAN : -errno;
	if (fstat(fd, &sb) < 0)
		return -errno;
	if (!S_ISREG(sb.st_mode))
		return -EUCLEAN;
	if (sb.st_size > IC_CACHED_TRACE_MAX)
		return -EFBIG;
	buf = malloc(sb.st_size ? (size_t)sb.st_size : 1);
	if (!buf)
		return -ENOMEM;
	while (got < (size_t)sb.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break; /* shrank under us: decode what there is */
		got += (size_t)n;
	}
	rc = ic_cached_trace_decode(buf, got, t);
	if (rc == 0 && memcmp(t->uuid, uuid, 16)) {
		ic_cached_trace_free(t);
		return -EUCLEAN;
	}
	return rc;
}
