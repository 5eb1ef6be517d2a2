/* The isocached client library (include/isocache/cached.h). Hits on
 * layers mapped with ic_cached_map() are served from shared memory
 * (client_shm.c); everything else is a call on the socket. */
#include "isocache/cached.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cached/client_shm.h"
#include "common/cleanup.h"
#include "common/log.h"

#define CLIENT_TIMEOUT_MS 5000
/* Handles the daemon gives one session (its SESSION_HANDLES). */
#define CLIENT_ARENAS 256
#define CLIENT_SLOT_SIZE ((size_t)IC_CACHED_MAX_BLOCKS * IC_CACHED_BLOCK)
/* The HELLO buffer: one slot, then the hit ring. */
#define CLIENT_BUF_SIZE (CLIENT_SLOT_SIZE + IC_CACHED_RING_SIZE)

struct ic_cached_client {
	int fd;
	bool broken; /* a reply was lost: the session's state is unknown */
	pthread_mutex_t mu;
	uint64_t next_id;
	uint8_t *buf; /* one slot of IC_CACHED_MAX_BLOCKS blocks, then the ring */
	struct ic_cached_ring *ring;
	struct client_arena arenas[CLIENT_ARENAS]; /* by handle */
};

const char *
ic_cached_socket_path(const char *path)
{
	const char *env = getenv("ISOCACHE_SOCKET");

	if (path && *path)
		return path;
	return env && *env ? env : IC_CACHED_DEFAULT_SOCKET;
}

/* Receive one reply into in, keeping the first descriptor that came with
 * it in *rfd (when rfd is not NULL) and closing every other. */
static ssize_t
client_recv(struct ic_cached_client *c, uint8_t *in, size_t cap, int *rfd)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} cb;
	struct iovec iov = { in, cap };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf,
			     .msg_controllen = sizeof(cb.buf) };
	ssize_t n = recvmsg(c->fd, &mh, MSG_TRUNC | MSG_CMSG_CLOEXEC);

	if (n < 0)
		return n; /* the control buffer is not this call's */
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (rfd && *rfd < 0)
				*rfd = fd;
			else
				close(fd);
		}
	}
	return n;
}

/* Send m (with fd attached when fd >= 0) and wait for its reply in r; a
 * descriptor attached to the reply goes to *rfd (may be NULL: closed). */
static int
client_call_fd(struct ic_cached_client *c, struct ic_cached_msg *m, int fd,
	       struct ic_cached_msg *r, int *rfd)
{
	uint8_t out[IC_CACHED_MSG_MAX], in[IC_CACHED_MSG_MAX];
	ssize_t n;
	int rc;

	if (c->broken)
		return -ENOTCONN;
	m->id = ++c->next_id;
	rc = ic_cached_encode(m, out, sizeof(out));
	if (rc < 0)
		return rc;
	rc = ic_cached_send(c->fd, out, (size_t)rc, fd);
	if (rc < 0) {
		c->broken = true;
		return rc == -EAGAIN ? -ETIMEDOUT : rc;
	}
	/* Calls are serialized and a timeout breaks the client, so the next
	 * packet is this call's reply or a protocol error. */
	n = client_recv(c, in, sizeof(in), rfd);
	rc = n < 0 ? (errno == EAGAIN ? -ETIMEDOUT : -errno) : n == 0 ? -ECONNRESET : 0;
	if (rc == 0 && (size_t)n > sizeof(in))
		rc = -EPROTO;
	if (rc == 0 && ic_cached_decode(in, (size_t)n, 1, r) < 0)
		rc = -EPROTO;
	if (rc == 0 && (r->id != m->id || r->type != (m->type | IC_CACHED_REPLY)))
		rc = -EPROTO;
	if (rc < 0) {
		c->broken = true;
		return rc;
	}
	return r->status;
}

static int
client_call(struct ic_cached_client *c, struct ic_cached_msg *m, int fd, struct ic_cached_msg *r)
{
	return client_call_fd(c, m, fd, r, NULL);
}

void
ic_cached_disconnect(struct ic_cached_client *c)
{
	struct ic_cached_msg m = { .type = IC_CACHED_BYE };
	uint8_t out[IC_CACHED_MSG_MAX];
	int len;

	if (!c)
		return;
	len = ic_cached_encode(&m, out, sizeof(out));
	if (!c->broken)
		ic_cached_send(c->fd, out, (size_t)len, -1);
	close(c->fd);
	for (unsigned i = 0; i < CLIENT_ARENAS; i++)
		client_arena_unmap(&c->arenas[i]);
	if (c->buf)
		munmap(c->buf, CLIENT_BUF_SIZE);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

void
ic_cached_trim(struct ic_cached_client *c)
{
	IC_LOCK_SCOPE(&c->mu);

	/* The daemon writes the slot only while it serves a call, and calls
	 * hold c->mu: none is under way (a broken client may have one the
	 * daemon still serves, so it is left alone). */
	if (!c->broken)
		madvise(c->buf, CLIENT_SLOT_SIZE, MADV_REMOVE);
}

static int
client_hello(struct ic_cached_client *c)
{
	size_t size = CLIENT_BUF_SIZE;
	struct ic_cached_msg m = { .type = IC_CACHED_HELLO, .flags = IC_CACHED_F_RING, .slot = 1,
				   .nblocks = IC_CACHED_MAX_BLOCKS };
	struct ic_cached_msg r;
	IC_AUTOCLOSE int mfd = memfd_create("isocache-cached", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (mfd < 0 || ftruncate(mfd, (off_t)size) < 0 ||
	    fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		return -errno;
	c->buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (c->buf == MAP_FAILED) {
		c->buf = NULL;
		return -errno;
	}
	c->ring = (struct ic_cached_ring *)(c->buf + CLIENT_SLOT_SIZE);
	return client_call(c, &m, mfd, &r);
}

/* Whether the process listening behind the connected socket fd may have
 * our descriptors: root's daemon, or one of our own uid. Anyone else who
 * got to bind the path first (a stale socket in a world-writable
 * directory, a mistyped -s) would be handed the shared buffer and every
 * layer fd this client registers. The credentials are those of the
 * listen() call (SO_PEERCRED). A refusal is logged once per owner, not
 * at every reconnect of a cache filter; -EPERM. */
static int
client_check_peer(int fd, const char *path)
{
	static _Atomic long long warned_uid = -1;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		int rc = -errno;

		ic_log(IC_LOG_WARN, "isocached socket %s: cannot tell who listens: %s", path,
		       strerror(-rc));
		return rc;
	}
	if (cred.uid == 0 || cred.uid == geteuid())
		return 0;
	if (atomic_exchange(&warned_uid, (long long)cred.uid) != (long long)cred.uid)
		ic_log(IC_LOG_WARN,
		       "isocached socket %s is served by uid %u (pid %d), neither root nor "
		       "us (uid %u): not passing it descriptors; reading without the cache",
		       path, (unsigned)cred.uid, (int)cred.pid, (unsigned)geteuid());
	return -EPERM;
}

int
ic_cached_connect(const char *path, unsigned timeout_ms, struct ic_cached_client **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv;
	struct ic_cached_client *c;
	int rc;

	path = ic_cached_socket_path(path);
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	if (!timeout_ms)
		timeout_ms = CLIENT_TIMEOUT_MS;
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		c->broken = true;
		ic_cached_disconnect(c);
		return rc;
	}
	rc = client_check_peer(c->fd, path);
	if (rc == 0)
		rc = client_hello(c);
	if (rc < 0) {
		c->broken = true;
		ic_cached_disconnect(c);
		return rc;
	}
	*out = c;
	return 0;
}

int
ic_cached_register(struct ic_cached_client *c, int fd, uint32_t *handle, uint64_t *size,
		   uint8_t uuid[16])
{
	struct ic_cached_msg m = { .type = IC_CACHED_REGISTER }, r;
	IC_LOCK_SCOPE(&c->mu);
	int rc = client_call(c, &m, fd, &r);

	if (rc < 0)
		return rc;
	*handle = r.handle;
	if (size)
		*size = r.value;
	if (uuid)
		memcpy(uuid, r.uuid, 16);
	return 0;
}

int
ic_cached_map(struct ic_cached_client *c, uint32_t handle)
{
	struct ic_cached_msg m = { .type = IC_CACHED_MAP, .handle = handle }, r;
	IC_LOCK_SCOPE(&c->mu);
	IC_AUTOCLOSE int fd = -1;
	int rc;

	if (handle >= CLIENT_ARENAS)
		return -EINVAL;
	if (c->arenas[handle].base)
		return 0;
	rc = client_call_fd(c, &m, -1, &r, &fd);
	if (rc == 0 && fd < 0)
		rc = -EPROTO;
	if (rc == 0)
		rc = client_arena_map(&c->arenas[handle], fd, r.value);
	return rc;
}

/* A READ served whole from the handle's arena, reported in the hit ring. */
static bool
client_read_shared(struct ic_cached_client *c, const struct ic_cached_msg *m, void *buf)
{
	if (m->handle >= CLIENT_ARENAS || !c->ring || c->broken ||
	    !client_arena_read(&c->arenas[m->handle], m->block, m->nblocks, buf))
		return false;
	return client_ring_report(c->ring, m->handle, m->block, m->nblocks);
}

/* READ or PREFETCH; READ copies the blocks that came into buf. */
static int
client_read(struct ic_cached_client *c, struct ic_cached_msg *m, void *buf, uint64_t *bitmap)
{
	struct ic_cached_msg r;
	IC_LOCK_SCOPE(&c->mu);
	int rc;

	if (buf && client_read_shared(c, m, buf)) {
		if (bitmap)
			*bitmap = m->nblocks == 64 ? UINT64_MAX : (1ull << m->nblocks) - 1;
		return 0;
	}
	rc = client_call(c, m, -1, &r);

	if (rc < 0)
		return rc;
	for (uint32_t i = 0; buf && i < m->nblocks; i++)
		if (r.value & (1ull << i))
			memcpy((uint8_t *)buf + (size_t)i * IC_CACHED_BLOCK,
			       c->buf + (size_t)i * IC_CACHED_BLOCK, IC_CACHED_BLOCK);
	if (bitmap)
		*bitmap = r.value;
	return 0;
}

int
ic_cached_read(struct ic_cached_client *c, uint32_t handle, uint64_t block, uint32_t nblocks,
	       uint32_t flags, void *buf, uint64_t *hits)
{
	struct ic_cached_msg m = { .type = IC_CACHED_READ, .flags = flags, .handle = handle,
				   .block = block, .nblocks = nblocks };

	return client_read(c, &m, buf, hits);
}

bool
ic_cached_read_mapped(struct ic_cached_client *c, uint32_t handle, uint64_t block,
		      uint32_t nblocks, void *buf)
{
	struct ic_cached_msg m = { .type = IC_CACHED_READ, .handle = handle, .block = block,
				   .nblocks = nblocks };
	IC_LOCK_SCOPE(&c->mu);

	return client_read_shared(c, &m, buf);
}

bool
ic_cached_splice_mapped(struct ic_cached_client *c, uint32_t handle, uint64_t off, uint32_t len,
			int pipe, bool report)
{
	uint64_t block, end = len ? ((off + len - 1) >> IC_CACHED_BLOCK_SHIFT) + 1 : 0;
	IC_LOCK_SCOPE(&c->mu);

	if (handle >= CLIENT_ARENAS || !c->ring || c->broken ||
	    !client_arena_splice(&c->arenas[handle], off, len, pipe))
		return false;
	for (block = off >> IC_CACHED_BLOCK_SHIFT; report && block < end;
	     block += IC_CACHED_MAX_BLOCKS) {
		uint64_t n = end - block < IC_CACHED_MAX_BLOCKS ? end - block : IC_CACHED_MAX_BLOCKS;

		if (!client_ring_report(c->ring, handle, block, (uint32_t)n))
			return false;
	}
	return true;
}

int
ic_cached_mapped_has(struct ic_cached_client *c, uint32_t handle, uint64_t off, uint32_t len)
{
	IC_LOCK_SCOPE(&c->mu);

	if (handle >= CLIENT_ARENAS || c->broken || !c->arenas[handle].base)
		return -ENODEV;
	return client_arena_has(&c->arenas[handle], off, len);
}

int
ic_cached_fill(struct ic_cached_client *c, uint32_t handle, uint64_t block, uint32_t nblocks,
	       uint64_t *hits)
{
	struct ic_cached_msg m = { .type = IC_CACHED_READ,
				   .flags = IC_CACHED_F_WAIT | IC_CACHED_F_NODATA,
				   .handle = handle,
				   .block = block,
				   .nblocks = nblocks };

	return client_read(c, &m, NULL, hits);
}

int
ic_cached_prefetch(struct ic_cached_client *c, uint32_t handle, uint64_t block, uint32_t nblocks,
		   uint64_t *cached)
{
	struct ic_cached_msg m = { .type = IC_CACHED_PREFETCH, .handle = handle, .block = block,
				   .nblocks = nblocks };

	return client_read(c, &m, NULL, cached);
}

int
ic_cached_stats(struct ic_cached_client *c, uint32_t handle, uint64_t stats[IC_CACHED_STAT_COUNT])
{
	struct ic_cached_msg m = { .type = IC_CACHED_STATS, .handle = handle }, r;
	IC_LOCK_SCOPE(&c->mu);
	int rc = client_call(c, &m, -1, &r);

	if (rc == 0)
		memcpy(stats, r.stats, sizeof(r.stats));
	return rc;
}

int
ic_cached_drop(struct ic_cached_client *c, uint32_t handle, uint64_t *dropped)
{
	struct ic_cached_msg m = { .type = IC_CACHED_DROP, .handle = handle }, r;
	IC_LOCK_SCOPE(&c->mu);
	int rc = client_call(c, &m, -1, &r);

	if (rc == 0 && dropped)
		*dropped = r.value;
	return rc;
}
