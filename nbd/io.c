/* The byte stream of a connection over file descriptors: a socket, or
 * stdin/stdout in -s mode. SIGPIPE must be ignored by the program. */
#include "nbd/nbd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int
io_fd_recv(void *arg, void *buf, size_t len)
{
	const struct ic_nbd_fds *fds = arg;
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fds->in, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
io_fd_recv_some(void *arg, void *buf, size_t cap)
{
	const struct ic_nbd_fds *fds = arg;
	ssize_t n;

	do {
		n = read(fds->in, buf, cap);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n ? (int)n : -ECONNRESET;
}

static int
io_fd_send(void *arg, const struct iovec *iov, int n)
{
	const struct ic_nbd_fds *fds = arg;
	struct iovec v[IOV_MAX];
	int first = 0;

	if (n > IOV_MAX)
		return -EINVAL;
	memcpy(v, iov, sizeof(*iov) * (size_t)n);
	while (first < n) {
		ssize_t w = writev(fds->out, v + first, n - first);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		while (first < n && (size_t)w >= v[first].iov_len)
			w -= (ssize_t)v[first++].iov_len;
		if (first < n) {
			v[first].iov_base = (uint8_t *)v[first].iov_base + w;
			v[first].iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* iov, then len bytes of pipe moved by splice: the pages the pipe holds
 * go to the socket without a copy. */
static int
io_fd_send_pipe(void *arg, const struct iovec *iov, int n, int pipe, size_t len)
{
	const struct ic_nbd_fds *fds = arg;
	int rc = io_fd_send(arg, iov, n);

	while (rc == 0 && len) {
		ssize_t w = splice(pipe, NULL, fds->out, NULL, len, SPLICE_F_MORE);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			rc = -errno;
		else if (w == 0)
			rc = -EIO; /* the pipe held less than it was said to */
		else
			len -= (size_t)w;
	}
	return rc;
}

static void
io_fd_hangup(void *arg)
{
	const struct ic_nbd_fds *fds = arg;

	/* Not close: the fd number must stay ours until the reader is done. */
	shutdown(fds->in, SHUT_RDWR);
}

static int
io_fd_wait(void *arg, int timeout_ms)
{
	const struct ic_nbd_fds *fds = arg;
	struct pollfd p = { .fd = fds->in, .events = POLLIN };
	int n;

	do {
		n = poll(&p, 1, timeout_ms);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n > 0;
}

void
ic_nbd_io_fd(struct ic_nbd_io *io, struct ic_nbd_fds *fds)
{
	struct stat st;

	io->recv = io_fd_recv;
	io->recv_some = io_fd_recv_some;
	io->send = io_fd_send;
	io->hangup = io_fd_hangup;
	io->wait = io_fd_wait;
	io->send_pipe = fstat(fds->out, &st) == 0 && (S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode))
				? io_fd_send_pipe
				: NULL;
	io->arg = fds;
}
