/* The control socket's messages: encoding, validation, and a blocking
 * request/reply call with a deadline (docs/CONTROL-PROTOCOL.md). */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5; older headers lack it */
#endif

#include "common/cleanup.h"
#include "common/log.h"
#include "owner/ctlmsg.h"
#include "common/clock.h"
#include "isocache/control.h"

#define CTL_RELEASE_BODY (CTL_NAME_LEN + 16u + 4u + 4u + CTL_WHO_LEN + CTL_REASON_LEN + CTL_SOCKET_LEN)
#define CTL_FILTER_BODY (4u + 4u + CTL_ARG_LEN)
#define CTL_REPLY_HEAD 16u /* status, result, generation */

_Static_assert(CTL_HDR_SIZE + CTL_RELEASE_BODY <= CTL_REQ_MAX, "RELEASE fits a request");
_Static_assert(CTL_HDR_SIZE + CTL_FILTER_BODY <= CTL_REQ_MAX, "FILTER fits a request");

/* A cursor over a message buffer; the put/get helpers move it. */
struct ctl_cur {
	uint8_t *p;
};

static void
ctl_put32(struct ctl_cur *c, uint32_t v)
{
	v = htole32(v);
	memcpy(c->p, &v, 4);
	c->p += 4;
}

static void
ctl_put64(struct ctl_cur *c, uint64_t v)
{
	v = htole64(v);
	memcpy(c->p, &v, 8);
	c->p += 8;
}

static void
ctl_put_bytes(struct ctl_cur *c, const void *src, size_t n)
{
	memcpy(c->p, src, n);
	c->p += n;
}

/* A string field: the string, zero-padded to n bytes (it always fits:
 * every field of struct ctl_msg is the field's size). */
static void
ctl_put_str(struct ctl_cur *c, const char *s, size_t n)
{
	size_t len = strnlen(s, n - 1);

	memcpy(c->p, s, len);
	memset(c->p + len, 0, n - len);
	c->p += n;
}

static uint32_t
ctl_get32(struct ctl_cur *c)
{
	uint32_t v;

	memcpy(&v, c->p, 4);
	c->p += 4;
	return le32toh(v);
}

static uint64_t
ctl_get64(struct ctl_cur *c)
{
	uint64_t v;

	memcpy(&v, c->p, 8);
	c->p += 8;
	return le64toh(v);
}

static void
ctl_get_bytes(struct ctl_cur *c, void *dst, size_t n)
{
	memcpy(dst, c->p, n);
	c->p += n;
}

/* A string field must hold its NUL inside the field. */
static int
ctl_get_str(struct ctl_cur *c, char *dst, size_t n)
{
	if (!memchr(c->p, '\0', n))
		return -EBADMSG;
	memcpy(dst, c->p, n);
	c->p += n;
	return 0;
}

static size_t
ctl_body_size(uint16_t type)
{
	switch (type) {
	case CTL_RELEASE: return CTL_RELEASE_BODY;
	case CTL_SNAPSHOT: return CTL_NAME_LEN;
	case CTL_STATS: return 0;
	case CTL_FILTER: return CTL_FILTER_BODY;
	default: return CTL_REPLY_HEAD;
	}
}

size_t
ctl_size(const struct ctl_msg *m)
{
	size_t n = CTL_HDR_SIZE + ctl_body_size(m->type);

	if (m->type == CTL_REPLY)
		n += strnlen(m->reply.text, CTL_TEXT_MAX - 1) + 1;
	return n;
}

size_t
ctl_encode(const struct ctl_msg *m, uint8_t *buf)
{
	struct ctl_cur c = { buf };
	size_t len = ctl_size(m);

	ctl_put32(&c, CTL_MAGIC);
	ctl_put32(&c, CTL_VERSION | (uint32_t)m->type << 16);
	ctl_put32(&c, (uint32_t)len);
	ctl_put32(&c, m->seq);
	switch (m->type) {
	case CTL_RELEASE:
		ctl_put_str(&c, m->release.name, CTL_NAME_LEN);
		ctl_put_bytes(&c, m->release.owner_id, 16);
		ctl_put32(&c, m->release.deadline_ms);
		ctl_put32(&c, m->release.flags);
		ctl_put_str(&c, m->release.who, CTL_WHO_LEN);
		ctl_put_str(&c, m->release.reason, CTL_REASON_LEN);
		ctl_put_str(&c, m->release.socket, CTL_SOCKET_LEN);
		break;
	case CTL_SNAPSHOT:
		ctl_put_str(&c, m->snapshot.image, CTL_NAME_LEN);
		break;
	case CTL_FILTER:
		ctl_put32(&c, m->filter.op);
		ctl_put32(&c, (uint32_t)m->filter.pos);
		ctl_put_str(&c, m->filter.arg, CTL_ARG_LEN);
		break;
	case CTL_REPLY:
		ctl_put32(&c, (uint32_t)m->reply.status);
		ctl_put32(&c, m->reply.result);
		ctl_put64(&c, m->reply.generation);
		ctl_put_str(&c, m->reply.text, len - CTL_HDR_SIZE - CTL_REPLY_HEAD);
		break;
	default:
		break;
	}
	return len;
}

static int
ctl_decode_body(struct ctl_cur *c, size_t text_len, struct ctl_msg *m)
{
	int rc = 0;

	switch (m->type) {
	case CTL_RELEASE:
		rc = ctl_get_str(c, m->release.name, CTL_NAME_LEN);
		ctl_get_bytes(c, m->release.owner_id, 16);
		m->release.deadline_ms = ctl_get32(c);
		m->release.flags = ctl_get32(c);
		if (rc == 0)
			rc = ctl_get_str(c, m->release.who, CTL_WHO_LEN);
		if (rc == 0)
			rc = ctl_get_str(c, m->release.reason, CTL_REASON_LEN);
		if (rc == 0)
			rc = ctl_get_str(c, m->release.socket, CTL_SOCKET_LEN);
		if (m->release.deadline_ms == 0 || m->release.deadline_ms > CTL_DEADLINE_MAX ||
		    (m->release.flags & ~CTL_RELEASE_FORCE))
			rc = -EBADMSG;
		return rc;
	case CTL_SNAPSHOT:
		return ctl_get_str(c, m->snapshot.image, CTL_NAME_LEN);
	case CTL_STATS:
		return 0;
	case CTL_FILTER:
		m->filter.op = ctl_get32(c);
		m->filter.pos = (int32_t)ctl_get32(c);
		if (m->filter.op > IC_CONTROL_FILTER_RM || m->filter.pos < -1)
			return -EBADMSG;
		return ctl_get_str(c, m->filter.arg, CTL_ARG_LEN);
	default:
		m->reply.status = (int32_t)ctl_get32(c);
		m->reply.result = ctl_get32(c);
		m->reply.generation = ctl_get64(c);
		m->reply.text = (const char *)c->p;
		if (m->reply.result > CTL_FAILED || m->reply.status > 0 ||
		    m->reply.status < -4095 || (m->reply.status != 0) != (m->reply.result == CTL_FAILED))
			return -EBADMSG;
		/* The text ends with its NUL and has no other. */
		if (text_len == 0 || strnlen(m->reply.text, text_len) != text_len - 1)
			return -EBADMSG;
		return 0;
	}
}

int
ctl_decode(const uint8_t *buf, size_t len, struct ctl_msg *m)
{
	struct ctl_cur c = { (uint8_t *)buf };
	uint32_t magic, vt, length;
	size_t body;

	if (len < CTL_HDR_SIZE)
		return -EBADMSG;
	magic = ctl_get32(&c);
	vt = ctl_get32(&c);
	length = ctl_get32(&c);
	m->seq = ctl_get32(&c);
	if (magic != CTL_MAGIC || length != len)
		return -EBADMSG;
	if ((vt & 0xffff) != CTL_VERSION)
		return -EPROTONOSUPPORT;
	m->type = (uint16_t)(vt >> 16);
	if (m->type != CTL_RELEASE && m->type != CTL_SNAPSHOT && m->type != CTL_STATS &&
	    m->type != CTL_FILTER && m->type != CTL_REPLY)
		return -EBADMSG;
	body = ctl_body_size(m->type);
	if (m->type == CTL_REPLY ? len < CTL_HDR_SIZE + body || len > CTL_REPLY_BUF
				 : len != CTL_HDR_SIZE + body)
		return -EBADMSG;
	return ctl_decode_body(&c, len - CTL_HDR_SIZE - body, m);
}

/* Is the process listening on fd one we may talk to? Root, or our own uid
 * (the same rule the listening side applies, control.c); root itself talks
 * to owners of any uid, since it hands vdisks between tenants. A socket of
 * another uid planted where a record points would otherwise learn our
 * requests and answer them. The kernel gives the credentials of the
 * process that called listen(). */
static int
ctl_check_peer(int fd, const char *path)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uid_t self = geteuid();

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	if (self == 0 || cred.uid == 0 || cred.uid == self)
		return 0;
	ic_log(IC_LOG_ERR, "control socket %s is served by uid %u (pid %d), neither root nor us "
	       "(uid %u); not talking to it", path, (unsigned)cred.uid, (int)cred.pid,
	       (unsigned)self);
	return -EPERM;
}

/* Connect without blocking: a peer whose backlog is full (it is stopped,
 * say) makes connect fail with EAGAIN, which counts as no answer yet. */
static int
ctl_connect(const char *path, long long until)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = errno;

		if (err != EAGAIN || ic_now_ms() >= until) {
			close(fd);
			return err == EAGAIN ? -ETIMEDOUT : -err;
		}
		usleep(10000);
	}
	rc = ctl_check_peer(fd, path);
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

int
ctl_call(const char *path, const struct ctl_msg *req, unsigned timeout_ms, uint8_t *buf,
	 struct ctl_msg *reply)
{
	uint8_t out[CTL_REQ_MAX];
	long long until = ic_now_ms() + timeout_ms;
	IC_AUTOCLOSE int fd = ctl_connect(path, until);
	size_t len;
	ssize_t n;

	if (fd < 0)
		return fd;
	len = ctl_encode(req, out);
	if (send(fd, out, len, MSG_NOSIGNAL) != (ssize_t)len)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long long left = until - ic_now_ms();
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		break;
	}
	n = recv(fd, buf, CTL_REPLY_BUF, MSG_TRUNC);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	if ((size_t)n > CTL_REPLY_BUF || ctl_decode(buf, (size_t)n, reply) ||
	    reply->type != CTL_REPLY || reply->seq != req->seq)
		return -EBADMSG;
	return 0;
}

int
ctl_peer_pidfd(const char *path, unsigned timeout_ms, pid_t *pid)
{
	IC_AUTOCLOSE int fd = ctl_connect(path, ic_now_ms() + timeout_ms);
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int pidfd;

	*pid = 0;
	if (fd < 0)
		return fd;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
		*pid = cred.pid;
	len = sizeof(pidfd);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0)
		return pidfd;
	if (errno != ENOPROTOOPT)
		return -errno;
	if (*pid == 0)
		return -ESRCH;
	pidfd = (int)syscall(SYS_pidfd_open, *pid, 0);
	return pidfd < 0 ? -errno : pidfd;
}
