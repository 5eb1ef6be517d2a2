/* isocache-cachectl's attacks on shared memory (docs/SECURITY.md, "The
 * cache daemon"): a client that tries to get an arena it has no right to,
 * to write one it was given, to confuse the daemon through its hit ring,
 * or that dies while copying. Each prints what it tried and what happened;
 * exit 0 when every attempt failed as it must.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/tools/cachectl.h"
#include "common/cleanup.h"
#include "isocache/cached.h"
#include "isocache/cached_shm.h"

struct shm_session {
	int sock;
	uint8_t *buf; /* the HELLO buffer: one block, then the ring */
	size_t size;
	struct ic_cached_ring *ring;
	uint64_t id;
};

/* One request and its reply; a descriptor attached goes to *rfd. The
 * reply's status, or -EPIPE when the daemon ended the session. */
static int
shm_call(struct shm_session *s, struct ic_cached_msg *m, int fd, struct ic_cached_msg *r,
	 int *rfd)
{
	union ic_cached_cmsg cb;
	uint8_t p[IC_CACHED_MSG_MAX];
	struct iovec iov = { p, sizeof(p) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf,
			     .msg_controllen = sizeof(cb.buf) };
	int len;
	ssize_t n;

	m->id = ++s->id;
	len = ic_cached_encode(m, p, sizeof(p));
	if (ic_cached_send(s->sock, p, (size_t)len, fd) < 0)
		return -EPIPE;
	n = recvmsg(s->sock, &mh, MSG_CMSG_CLOEXEC);
	if (n > 0) {
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_type == SCM_RIGHTS)
				memcpy(rfd, CMSG_DATA(c), sizeof(int));
	}
	if (n <= 0 || ic_cached_decode(p, (size_t)n, 1, r) < 0)
		return -EPIPE;
	return r->status;
}

static int
shm_hello(struct shm_session *s)
{
	struct ic_cached_msg m = { .type = IC_CACHED_HELLO, .flags = IC_CACHED_F_RING, .slot = 1,
				   .nblocks = 1 }, r;
	IC_AUTOCLOSE int mfd = memfd_create("cachectl", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int none = -1;

	s->size = IC_CACHED_BLOCK + IC_CACHED_RING_SIZE;
	if (mfd < 0 || ftruncate(mfd, (off_t)s->size) < 0 ||
	    fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		return -errno;
	s->buf = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (s->buf == MAP_FAILED)
		return -errno;
	s->ring = (struct ic_cached_ring *)(s->buf + IC_CACHED_BLOCK);
	return shm_call(s, &m, mfd, &r, &none);
}

static int
shm_register(struct shm_session *s, const char *path, uint32_t *handle, uint64_t *size)
{
	struct ic_cached_msg m = { .type = IC_CACHED_REGISTER }, r;
	IC_AUTOCLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
	int none = -1, rc;

	if (fd < 0)
		return -errno;
	rc = shm_call(s, &m, fd, &r, &none);
	*handle = r.handle;
	*size = r.value;
	return rc;
}

static int
shm_map(struct shm_session *s, uint32_t handle, int *fd, uint64_t *size)
{
	struct ic_cached_msg m = { .type = IC_CACHED_MAP, .handle = handle }, r;
	int rc = shm_call(s, &m, -1, &r, fd);

	*size = r.value;
	return rc;
}

/* One attempt that must fail: print it; returns 1 if it succeeded. */
static int
shm_expect_refused(const char *what, int failed)
{
	printf("%s: %s\n", what, failed ? strerror(errno) : "ALLOWED");
	return !failed;
}

/* Write to the arena by every means a descriptor offers. */
static int
shm_writable(struct shm_session *s, const char *path)
{
	IC_AUTOCLOSE int fd = -1;
	uint32_t h;
	uint64_t size, lsize;
	char proc[64];
	void *p;
	int bad = 0, rw;

	if (shm_register(s, path, &h, &lsize) < 0 || shm_map(s, h, &fd, &size) < 0 || fd < 0)
		return cachectl_fail("register and map", -EPROTO);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	bad += shm_expect_refused("mmap shared writable", p == MAP_FAILED);
	p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return cachectl_fail("mmap read-only", -errno);
	bad += shm_expect_refused("mprotect PROT_WRITE", mprotect(p, size, PROT_READ | PROT_WRITE) < 0);
	bad += shm_expect_refused("ftruncate to 0", ftruncate(fd, 0) < 0);
	bad += shm_expect_refused("ftruncate to twice", ftruncate(fd, (off_t)size * 2) < 0);
	bad += shm_expect_refused("pwrite", pwrite(fd, "x", 1, IC_CACHED_ARENA_HDR) < 0);
	bad += shm_expect_refused("punch hole", fallocate(fd, FALLOC_FL_PUNCH_HOLE |
							     FALLOC_FL_KEEP_SIZE, 0,
							     IC_CACHED_BLOCK) < 0);
	bad += shm_expect_refused("add F_SEAL_WRITE", fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) < 0);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (geteuid() == 0) {
		printf("reopen writable: not tried (root passes file modes)\n");
	} else {
		rw = open(proc, O_RDWR | O_CLOEXEC);
		bad += shm_expect_refused("reopen writable", rw < 0);
		if (rw >= 0)
			close(rw);
	}
	munmap(p, size);
	return bad ? 1 : 0;
}

/* Fill the hit ring with garbage, and the head with nonsense, while asking
 * for STATS (each drains the ring); the session must stay served. */
static int
shm_ring(struct shm_session *s, const char *path)
{
	struct ic_cached_msg m = { .type = IC_CACHED_STATS, .handle = IC_CACHED_HANDLE_ALL }, r;
	uint64_t x = 0x9e3779b97f4a7c15ull, lsize;
	uint32_t h;
	int none = -1, rc = shm_register(s, path, &h, &lsize);

	for (int round = 0; rc == 0 && round < 200; round++) {
		for (unsigned i = 0; i < IC_CACHED_RING_ENTRIES; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			atomic_store(&s->ring->e[i].block, round % 2 ? x : x % 64);
			atomic_store(&s->ring->e[i].span, round % 3 ? x : (uint64_t)h << 32 | (x % 80));
		}
		atomic_store(&s->ring->head, round % 4 ? x : atomic_load(&s->ring->tail) + round);
		rc = shm_call(s, &m, -1, &r, &none);
	}
	printf("garbage in the hit ring: %s\n", rc == 0 ? "the session is still served" : "lost");
	return rc == 0 ? 0 : cachectl_fail("ring", rc);
}

/* What the arena a client of PATH is given holds: every data page must be
 * PATH's own bytes at that block or empty (zeroes), never another layer's.
 * Prints how many pages hold PATH's bytes; exit 0 if none held others. */
static int
shm_own(struct shm_session *s, const char *path)
{
	static uint8_t want[IC_CACHED_BLOCK], zero[IC_CACHED_BLOCK];
	IC_AUTOCLOSE int fd = -1, file = open(path, O_RDONLY | O_CLOEXEC);
	const struct ic_cached_arena_hdr *hdr;
	uint64_t size, lsize, own = 0, foreign = 0;
	const uint8_t *p;
	uint32_t h;

	if (file < 0 || shm_register(s, path, &h, &lsize) < 0 || shm_map(s, h, &fd, &size) < 0 ||
	    fd < 0)
		return cachectl_fail("open, register and map", -EPROTO);
	p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return cachectl_fail("mmap read-only", -errno);
	hdr = (const struct ic_cached_arena_hdr *)p;
	for (uint64_t b = 0; b < hdr->nblocks; b++) {
		const uint8_t *page = p + hdr->data_off + (b << IC_CACHED_BLOCK_SHIFT);
		ssize_t n = pread(file, want, IC_CACHED_BLOCK, (off_t)(b << IC_CACHED_BLOCK_SHIFT));

		if (n < 0)
			return cachectl_fail("pread", -errno);
		memset(want + n, 0, IC_CACHED_BLOCK - (size_t)n);
		if (!memcmp(page, want, IC_CACHED_BLOCK))
			own += memcmp(page, zero, IC_CACHED_BLOCK) != 0;
		else if (memcmp(page, zero, IC_CACHED_BLOCK))
			foreign++;
	}
	munmap((void *)p, size);
	printf("%llu blocks of its own, %llu foreign\n", (unsigned long long)own,
	       (unsigned long long)foreign);
	return foreign ? 1 : 0;
}

/* Copy hits from the arena until killed ("spinning" once the first came). */
static int
shm_spin(const char *path)
{
	static uint8_t buf[IC_CACHED_BLOCK];
	struct ic_cached_client *c;
	IC_AUTOCLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint64_t size, hits, x = 88172645463325252ull;
	uint32_t h;
	int rc = fd < 0 ? -errno : ic_cached_connect(cachectl_socket, cachectl_timeout, &c);

	if (rc == 0)
		rc = ic_cached_register(c, fd, &h, &size, NULL);
	if (rc == 0)
		rc = ic_cached_map(c, h);
	for (uint64_t n = 0; rc == 0; n++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		rc = ic_cached_read(c, h, x % (size / IC_CACHED_BLOCK), 1, IC_CACHED_F_WAIT, buf,
				    &hits);
		if (n == 1000) {
			printf("spinning\n");
			fflush(stdout);
		}
	}
	return cachectl_fail("spin", rc);
}

int
cachectl_shm(const char *kind, const char *path)
{
	struct shm_session s = { .sock = cachectl_connect_raw() };
	IC_AUTOCLOSE int sock = s.sock;
	struct ic_cached_msg m = { .type = IC_CACHED_MAP, .handle = 0 }, r;
	int fd = -1, rc;

	if (!strcmp(kind, "spin"))
		return shm_spin(path);
	if (sock < 0)
		return cachectl_fail("connect", sock);
	rc = shm_hello(&s);
	if (rc < 0)
		return cachectl_fail("hello", rc);
	if (!strcmp(kind, "writable"))
		return shm_writable(&s, path);
	if (!strcmp(kind, "ring"))
		return shm_ring(&s, path);
	if (!strcmp(kind, "own"))
		return shm_own(&s, path);
	if (strcmp(kind, "nofd"))
		return cachectl_fail(kind, -EINVAL);
	/* MAP of a handle never registered: the session ends, no arena comes. */
	rc = shm_call(&s, &m, -1, &r, &fd);
	printf("MAP without REGISTER: %s, %s\n", rc == -EPIPE ? "session ended" : "answered",
	       fd < 0 ? "no descriptor" : "A DESCRIPTOR");
	if (fd >= 0)
		close(fd);
	return rc == -EPIPE && fd < 0 ? 0 : 1;
}
