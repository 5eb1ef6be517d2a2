/* systemd socket activation and readiness, through libsystemd.
 *
 * sd_listen_fds(1) checks LISTEN_PID against our pid, so a socket meant for
 * another process (a parent that exec'd us) is not taken, and unsets the
 * variables, so a child we start (--run commands) does not take ours. */
#include "common/sd.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>

#include "common/log.h"

int
ic_sd_listener(int type)
{
	int n = sd_listen_fds(1), fd = SD_LISTEN_FDS_START, rc;

	if (n < 0) {
		ic_log(IC_LOG_ERR, "socket activation: %s", strerror(-n));
		return -EINVAL;
	}
	if (n == 0)
		return -ENOENT;
	if (n > 1) {
		ic_log(IC_LOG_ERR, "socket activation: %d sockets passed, expected one", n);
		return -EINVAL;
	}
	rc = sd_is_socket_unix(fd, type, 1, NULL, 0);
	if (rc <= 0) {
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

void
ic_sd_notify(const char *state)
{
	int rc = sd_notify(0, state);

	if (rc < 0)
		ic_log(IC_LOG_WARN, "cannot tell the service manager %s: %s", state, strerror(-rc));
}
