/* systemd socket activation and readiness, spoken directly: both are
 * small stable protocols (sd_listen_fds(3), sd_notify(3): environment
 * variables, and one datagram to a Unix socket), which systemd documents
 * for programs to implement themselves.
 *
 * Why not libsystemd: linked, it and the libraries it brings (libgcrypt,
 * libgpg-error, liblz4, liblzma, libzstd, libcap) were mapped and
 * relocated in every daemon, for these two calls: 124 KiB of private
 * memory and 288 KiB of PSS in each isocache-nbd serving one clone
 * (smaps of 4 front ends, bench/boot-storm's setup).
 *
 * As sd_listen_fds(1): a socket meant for another process (LISTEN_PID is
 * not ours: a parent that exec'd us) is not taken, and the variables are
 * unset, so a child we start (--run commands) does not take ours. */
#include "common/sd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"

/* The first descriptor a service manager passes (SD_LISTEN_FDS_START). */
#define SD_FD_FIRST 3

/* A decimal number of the environment in [1, INT_MAX] into *out; 0 when
 * the variable is unset, -EINVAL when it is no such number. */
static int
sd_env_int(const char *name, int *out)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (!v)
		return 0;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < 1 || n > 0x7fffffff)
		return -EINVAL;
	*out = (int)n;
	return 1;
}

/* The number of descriptors passed to this process, 0 for none, or
 * -EINVAL; the variables are unset either way. */
static int
sd_listen_count(void)
{
	int pid = 0, n = 0;
	int rc = sd_env_int("LISTEN_PID", &pid);

	if (rc > 0 && pid == getpid())
		rc = sd_env_int("LISTEN_FDS", &n);
	else if (rc > 0)
		rc = 0; /* another process's */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return rc < 0 ? rc : n;
}

/* Whether fd is a listening AF_UNIX socket of type. */
static bool
sd_is_listener(int fd, int type)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	int v;
	socklen_t vlen = sizeof(v);
	struct stat st;

	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
		return false;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vlen) < 0 || v != type)
		return false;
	vlen = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vlen) < 0 || !v)
		return false;
	return getsockname(fd, (struct sockaddr *)&sa, &len) == 0 && sa.ss_family == AF_UNIX;
}

int
ic_sd_listener(int type)
{
	int n = sd_listen_count(), fd = SD_FD_FIRST, rc;

	if (n < 0) {
		ic_log(IC_LOG_ERR, "socket activation: LISTEN_PID or LISTEN_FDS is not a number");
		return -EINVAL;
	}
	if (n == 0)
		return -ENOENT;
	if (n > 1) {
		ic_log(IC_LOG_ERR, "socket activation: %d sockets passed, expected one", n);
		return -EINVAL;
	}
	if (!sd_is_listener(fd, type)) {
		ic_log(IC_LOG_ERR, "socket activation: fd %d is not a listening Unix socket of "
		       "the type expected (%s)", fd, type == SOCK_SEQPACKET ? "SOCK_SEQPACKET" : "SOCK_STREAM");
		return -EINVAL;
	}
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		rc = -errno;
		ic_log(IC_LOG_ERR, "socket activation: fd %d: %s", fd, strerror(-rc));
		return rc;
	}
	return fd;
}

/* state to the socket NOTIFY_SOCKET names: a path, or "@name" in the
 * abstract namespace. 0 when there is none to tell. */
static int
sd_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = path ? strlen(path) : 0;
	int fd, rc = 0;

	if (!len)
		return 0;
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
		return -EAFNOSUPPORT;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

void
ic_sd_notify(const char *state)
{
	int rc = sd_send(state);

	if (rc < 0)
		ic_log(IC_LOG_WARN, "cannot tell the service manager %s: %s", state, strerror(-rc));
}
