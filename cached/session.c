/* Sessions: one per client connection, speaking docs/CACHED-PROTOCOL.md.
 *
 * A session owns a fixed pool of requests, allocated when it is accepted,
 * so the data path allocates nothing. One recvmsg is armed while a request
 * is free; a session with every request in flight stops reading until one
 * is answered (back-pressure instead of queues). A message that fails
 * validation ends its session and nothing else. A session is freed once it
 * is closing and holds no receive and no request (refs == 0), so a fill that
 * completes after its client left still finds its request.
 *
 * A session that said HELLO with a hit ring reports the hits it served
 * from shared arenas there; the ring is drained whenever the session sends
 * a message, before STATS, and every CACHED_HIT_TICK_MS (hitring.c).
 */
#include "cached/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define SESSION_REQS 32
#define SESSION_HANDLES 256
#define SESSION_FDS 4
/* CMSG_SPACE(sizeof(int) * SESSION_FDS), spelled so every compiler sees a constant. */
#define SESSION_CBUF (sizeof(struct cmsghdr) + sizeof(int) * SESSION_FDS)
_Static_assert(SESSION_CBUF >= CMSG_SPACE(sizeof(int) * SESSION_FDS), "control buffer");

struct session_req {
	struct ic_op op; /* first: the reply's send */
	struct cached_req r;
	struct cached_session *s;
	struct ic_cached_msg msg; /* the request, then the reply */
	uint8_t out[IC_CACHED_MSG_MAX];
	uint64_t t0;
	struct session_req *next_free;
	/* A reply carrying a descriptor (MAP) goes out with sendmsg. */
	struct msghdr mh;
	struct iovec iov;
	union ic_cached_cmsg cmsg;
};

struct cached_session {
	struct ic_op recv_op;
	struct cached_daemon *d;
	struct cached_session *next, **pprev;
	int fd;
	pid_t pid;
	uid_t uid;
	uint16_t uid_slot;
	enum { SESSION_NEW, SESSION_READY, SESSION_CLOSING } state; /* HELLO moves NEW on */
	bool recv_armed;
	unsigned refs;
	uint8_t *buf;
	size_t buf_size;
	uint32_t nslots, slot_blocks;
	struct ic_cached_ring *ring; /* in buf, or NULL */
	uint64_t ring_tail;
	struct cached_layer *handles[SESSION_HANDLES];
	uint32_t nhandles;
	struct msghdr mh;
	struct iovec iov;
	uint8_t rbuf[IC_CACHED_MSG_MAX];
	union {
		char buf[SESSION_CBUF];
		size_t align; /* cmsghdr alignment */
	} cbuf;
	int fds[SESSION_FDS];
	unsigned nfds;
	struct session_req *free_reqs;
	struct session_req reqs[SESSION_REQS];
};

static uint64_t
session_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void session_on_recv(struct ic_op *op, int res);

static void
session_arm(struct cached_session *s)
{
	struct io_uring_sqe *sqe;

	if (s->state == SESSION_CLOSING || s->recv_armed || !s->free_reqs || s->d->stopping)
		return;
	/* A failed receive leaves msg_controllen and the control buffer as
	 * they were: both start clean, so nothing of an earlier message's
	 * SCM_RIGHTS can be read again (session_on_recv parses them only
	 * after a successful receive anyway). */
	memset(&s->cbuf, 0, sizeof(s->cbuf));
	s->iov = (struct iovec){ s->rbuf, sizeof(s->rbuf) };
	s->mh = (struct msghdr){
		.msg_iov = &s->iov,
		.msg_iovlen = 1,
		.msg_control = s->cbuf.buf,
		.msg_controllen = sizeof(s->cbuf.buf),
	};
	sqe = cached_sqe(s->d, &s->recv_op);
	/* MSG_TRUNC: a packet longer than any message reports its real length. */
	io_uring_prep_recvmsg(sqe, s->fd, &s->mh, MSG_TRUNC | MSG_CMSG_CLOEXEC);
	s->recv_armed = true;
	s->refs++;
}

static void
session_drain(struct cached_session *s)
{
	if (s->ring)
		cached_hitring_drain(&s->d->store, s->ring, &s->ring_tail, s->handles,
				     s->nhandles);
}

void
cached_session_drain_all(struct cached_daemon *d)
{
	for (struct cached_session *s = d->sessions; s; s = s->next)
		session_drain(s);
}

static void
session_maybe_free(struct cached_session *s)
{
	if (s->state != SESSION_CLOSING || s->refs)
		return;
	*s->pprev = s->next;
	if (s->next)
		s->next->pprev = s->pprev;
	s->d->nsessions--;
	s->d->store.uids[s->uid_slot].sessions--;
	session_drain(s); /* hits reported just before BYE count too */
	if (s->buf)
		munmap(s->buf, s->buf_size);
	close(s->fd);
	ic_log(IC_LOG_DEBUG, "session pid %d uid %u ended", (int)s->pid, (unsigned)s->uid);
	free(s);
}

static void
session_close(struct cached_session *s, int how)
{
	s->state = SESSION_CLOSING;
	shutdown(s->fd, how);
}

void
cached_session_new(struct cached_daemon *d, int fd)
{
	struct cached_session *s = calloc(1, sizeof(*s));
	struct ucred cred = { .uid = (uid_t)-1 };
	socklen_t len = sizeof(cred);
	const char *why = NULL;
	uint16_t slot = 0;

	if (!s)
		why = "out of memory";
	else if (d->nsessions == CACHED_MAX_SESSIONS)
		why = "too many sessions";
	else if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		why = strerror(errno);
	if (!why) {
		/* One tenant must not take every session; root's front ends serve all. */
		slot = cached_store_uid(&d->store, cred.uid);
		if (cred.uid != 0 && d->store.uids[slot].sessions >= d->uid_sessions)
			why = "the uid has --sessions-per-uid sessions already";
	}
	if (why) {
		ic_log(IC_LOG_WARN, "new session of uid %d refused: %s", (int)cred.uid, why);
		free(s);
		close(fd);
		return;
	}
	s->d = d;
	s->fd = fd;
	s->pid = cred.pid;
	s->uid = cred.uid;
	s->uid_slot = slot;
	d->store.uids[slot].sessions++;
	s->recv_op.done = session_on_recv;
	for (int i = SESSION_REQS - 1; i >= 0; i--) {
		s->reqs[i].s = s;
		s->reqs[i].next_free = s->free_reqs;
		s->free_reqs = &s->reqs[i];
	}
	s->next = d->sessions;
	if (s->next)
		s->next->pprev = &s->next;
	s->pprev = &d->sessions;
	d->sessions = s;
	d->nsessions++;
	ic_log(IC_LOG_DEBUG, "session pid %d uid %u", (int)s->pid, (unsigned)s->uid);
	session_arm(s);
}

void
cached_session_stop_all(struct cached_daemon *d)
{
	for (struct cached_session *s = d->sessions; s; s = s->next)
		session_close(s, SHUT_RD);
}

static void
session_put_req(struct session_req *q)
{
	struct cached_session *s = q->s;

	q->next_free = s->free_reqs;
	s->free_reqs = q;
	s->refs--;
	session_arm(s);
	session_maybe_free(s);
}

static void
session_on_send(struct ic_op *op, int res)
{
	struct session_req *q = (struct session_req *)op;

	if (res < 0 && q->s->state != SESSION_CLOSING) {
		ic_log(IC_LOG_DEBUG, "session pid %d: send: %s", (int)q->s->pid, strerror(-res));
		session_close(q->s, SHUT_RDWR);
	}
	session_put_req(q);
}

/* Send q->msg as the reply to its request, with fd attached if >= 0 (the
 * kernel takes its own reference when the send runs). */
static void
session_reply_fd(struct session_req *q, int status, int fd)
{
	struct io_uring_sqe *sqe;
	int len;

	q->msg.type |= IC_CACHED_REPLY;
	q->msg.flags = 0;
	q->msg.status = status;
	len = ic_cached_encode(&q->msg, q->out, sizeof(q->out));
	q->op.done = session_on_send;
	sqe = cached_sqe(q->s->d, &q->op);
	if (fd < 0 || status < 0) {
		io_uring_prep_send(sqe, q->s->fd, q->out, (size_t)len, MSG_NOSIGNAL);
		return;
	}
	q->iov = (struct iovec){ q->out, (size_t)len };
	q->mh = (struct msghdr){ .msg_iov = &q->iov, .msg_iovlen = 1 };
	ic_cached_attach_fd(&q->mh, &q->cmsg, fd);
	io_uring_prep_sendmsg(sqe, q->s->fd, &q->mh, MSG_NOSIGNAL);
}

static void
session_reply(struct session_req *q, int status)
{
	session_reply_fd(q, status, -1);
}

void
cached_session_finish(struct cached_store *st, struct cached_req *r)
{
	struct session_req *q = cached_container_of(r, struct session_req, r);

	(void)st;
	if (q->msg.type == IC_CACHED_READ)
		cached_store_latency(r->layer, session_usec() - q->t0);
	q->msg.value = r->hits;
	session_reply(q, 0);
}

static int
session_hello(struct cached_session *s, struct session_req *q)
{
	size_t slots = (size_t)q->msg.slot * q->msg.nblocks * IC_CACHED_BLOCK;
	bool ring = q->msg.flags & IC_CACHED_F_RING;
	size_t size = slots + (ring ? IC_CACHED_RING_SIZE : 0);
	int need = F_SEAL_SHRINK | F_SEAL_GROW;
	int fd = s->fds[0], seals = fcntl(fd, F_GET_SEALS);
	struct stat sb;
	void *buf;

	if (seals < 0 || (seals & need) != need)
		return -EPERM;
	if (fstat(fd, &sb) < 0 || (uint64_t)sb.st_size != size)
		return -EINVAL;
	buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (buf == MAP_FAILED)
		return -errno;
	s->buf = buf;
	s->buf_size = size;
	s->ring = ring ? (struct ic_cached_ring *)((uint8_t *)buf + slots) : NULL;
	s->nslots = q->msg.slot;
	s->slot_blocks = q->msg.nblocks;
	s->state = SESSION_READY;
	q->msg.slot = SESSION_REQS;
	q->msg.nblocks = IC_CACHED_MAX_BLOCKS;
	return 0;
}

static int
session_register(struct cached_session *s, struct session_req *q)
{
	struct cached_layer *l;
	uint8_t uuid[16];
	struct stat sb;
	uint32_t h;
	int rc;

	rc = cached_layer_check(s->fds[0], uuid, &sb);
	if (rc < 0) {
		ic_log(IC_LOG_INFO, "session pid %d uid %u: layer refused: %s", (int)s->pid,
		       (unsigned)s->uid, strerror(-rc));
		return rc;
	}
	for (h = 0; h < s->nhandles; h++)
		if (s->handles[h]->dev == sb.st_dev && s->handles[h]->ino == sb.st_ino &&
		    !memcmp(s->handles[h]->uuid, uuid, 16))
			break;
	if (h == SESSION_HANDLES)
		return -ENOSPC;
	rc = cached_store_layer(&s->d->store, uuid, &sb, cached_layer_direct(s->fds[0]), &l);
	s->fds[0] = -1; /* taken or closed */
	if (rc < 0)
		return rc;
	cached_trace_layer(s->d, l, &sb, s->uid_slot);
	if (h == s->nhandles)
		s->handles[s->nhandles++] = l;
	q->msg.handle = h;
	q->msg.value = l->size;
	memcpy(q->msg.uuid, l->uuid, 16);
	return 0;
}

/* READ or PREFETCH: validated, then driven by the store; replies from session_finish. */
static int
session_read(struct cached_session *s, struct session_req *q, struct cached_layer *l)
{
	const struct ic_cached_msg *m = &q->msg;
	bool read = m->type == IC_CACHED_READ, copy = read && !(m->flags & IC_CACHED_F_NODATA);

	if (read && (m->nblocks > s->slot_blocks || (copy && m->slot >= s->nslots)))
		return -EBADMSG;
	if (m->block + m->nblocks > l->nblocks) {
		session_reply(q, -EINVAL);
		return 0;
	}
	q->t0 = session_usec();
	q->r = (struct cached_req){
		.layer = l,
		.block = m->block,
		.nblocks = m->nblocks,
		.uid = s->uid_slot,
		.wait = m->flags & IC_CACHED_F_WAIT,
		.reader = read,
		.dst = copy ? s->buf + (size_t)m->slot * s->slot_blocks * IC_CACHED_BLOCK : NULL,
	};
	cached_req_run(&s->d->store, &q->r);
	return 0;
}

/* MAP: the arena of a layer this session registered, read-only. Having
 * the handle is the proof of access; no other arena is ever handed out. */
static int
session_map(struct cached_session *s, struct session_req *q, struct cached_layer *l)
{
	if (s->d->no_shared)
		return -EOPNOTSUPP;
	q->msg.value = l->arena.size;
	return 0;
}

/* DROP evicts blocks every tenant reads: only root and the owner of the
 * layer's file may. */
static int
session_drop(struct cached_session *s, struct cached_layer *l, uint64_t *dropped)
{
	if (s->uid != 0 && s->uid != l->owner) {
		ic_log(IC_LOG_INFO, "session pid %d uid %u: DROP of a layer of uid %u refused",
		       (int)s->pid, (unsigned)s->uid, (unsigned)l->owner);
		return -EPERM;
	}
	*dropped = cached_store_drop(&s->d->store, l->id) +
		   cached_l2_drop_layer(s->d->store.l2, l);
	return 0;
}

/* Handle one decoded message. Returns 0 once q is answered or in flight,
 * 1 when the session ends without a reply, or -EBADMSG for a message the
 * session must be closed for. */
static int
session_dispatch(struct cached_session *s, struct session_req *q)
{
	struct ic_cached_msg *m = &q->msg;
	bool wants_fd = m->type == IC_CACHED_HELLO || m->type == IC_CACHED_REGISTER;
	struct cached_layer *l = NULL;

	if (s->nfds != (wants_fd ? 1u : 0u) || (m->type == IC_CACHED_HELLO) != (s->state == SESSION_NEW))
		return -EBADMSG;
	if (m->type == IC_CACHED_READ || m->type == IC_CACHED_PREFETCH || m->type == IC_CACHED_DROP ||
	    m->type == IC_CACHED_MAP ||
	    (m->type == IC_CACHED_STATS && m->handle != IC_CACHED_HANDLE_ALL)) {
		if (m->handle >= s->nhandles)
			return -EBADMSG;
		l = s->handles[m->handle];
	}
	switch (m->type) {
	case IC_CACHED_HELLO:
		session_reply(q, session_hello(s, q));
		return 0;
	case IC_CACHED_REGISTER:
		session_reply(q, session_register(s, q));
		return 0;
	case IC_CACHED_READ:
	case IC_CACHED_PREFETCH:
		return session_read(s, q, l);
	case IC_CACHED_MAP: {
		int rc = session_map(s, q, l);

		session_reply_fd(q, rc, l->arena.ro_fd);
		return 0;
	}
	case IC_CACHED_STATS:
		/* Every session's reported hits count, not only this one's. */
		cached_session_drain_all(s->d);
		if (l)
			memcpy(m->stats, l->stats, sizeof(m->stats));
		else
			cached_store_totals(&s->d->store, m->stats);
		session_reply(q, 0);
		return 0;
	case IC_CACHED_DROP:
		session_reply(q, session_drop(s, l, &m->value));
		return 0;
	default: /* BYE */
		return 1;
	}
}

/* Keep the descriptors that came with a message just received; close any
 * past SESSION_FDS. Call only after a successful receive: after a failed
 * one the control buffer is not this message's. Each descriptor taken is
 * closed exactly once, by session_on_recv or by whoever takes it over. */
static void
session_take_fds(struct cached_session *s)
{
	s->nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&s->mh); c; c = CMSG_NXTHDR(&s->mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (s->nfds < SESSION_FDS)
				s->fds[s->nfds++] = fd;
			else
				close(fd);
		}
	}
}

static void
session_on_recv(struct ic_op *op, int res)
{
	struct cached_session *s = cached_container_of(op, struct cached_session, recv_op);
	struct session_req *q = NULL;
	int rc = 1;

	s->recv_armed = false;
	s->refs--;
	s->nfds = 0;
	if (res >= 0)
		session_take_fds(s);
	else if (res != -ECANCELED)
		ic_log(IC_LOG_DEBUG, "session pid %d: recv: %s", (int)s->pid, strerror(-res));
	if (res > 0) {
		rc = ic_cached_decode(s->rbuf, (size_t)res, 0, &s->free_reqs->msg);
		/* MSG_CTRUNC: descriptors were dropped, the message is not whole. */
		if (rc == 0 && (s->mh.msg_flags & MSG_CTRUNC))
			rc = -EBADMSG;
	}
	if (res > 0 && rc == 0 && s->state == SESSION_READY)
		session_drain(s);
	if (res > 0 && rc == 0) {
		q = s->free_reqs;
		s->free_reqs = q->next_free;
		s->refs++;
		rc = session_dispatch(s, q);
	}
	if (rc < 0)
		ic_log(IC_LOG_WARN, "session pid %d uid %u: bad message (%d bytes): %s", (int)s->pid,
		       (unsigned)s->uid, res, strerror(-rc));
	for (unsigned i = 0; i < s->nfds; i++)
		if (s->fds[i] >= 0)
			close(s->fds[i]);
	s->nfds = 0;
	/* EOF or BYE: replies in flight still go out; a bad message: nothing does. */
	if (rc != 0)
		session_close(s, rc < 0 ? SHUT_RDWR : SHUT_RD);
	if (q && rc != 0) {
		session_put_req(q);
		return;
	}
	session_arm(s);
	session_maybe_free(s);
}
