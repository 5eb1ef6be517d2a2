/* Forced takeover through the kernel (docs/OWNERSHIP.md, "Force"): reach
 * the process behind an owner's control socket by a pidfd, kill it and
 * wait for it to exit. Nothing here trusts /proc or a recorded pid: the
 * pidfd comes from the socket (SO_PEERPIDFD, else SO_PEERCRED's pid, which
 * the kernel translates into our PID namespace, and pidfd_open), so it
 * names the process that listens on the socket in whatever namespace it
 * runs, and cannot be a newer process that reused a pid. Whether that
 * process was the lock holder is settled by the caller afterwards: its
 * lock must then be free. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "owner/ctlmsg.h"
#include "owner/internal.h"

#define TAKEOVER_CONNECT_MS 1000
#define TAKEOVER_EXIT_MS 10000 /* a SIGKILLed process exits well within this */

int
owner_kill(const char *name, const struct ic_owner_rec *rec, const char *why)
{
	char desc[256];
	pid_t pid = 0;
	IC_AUTOCLOSE int pidfd = ctl_peer_pidfd(rec->socket, TAKEOVER_CONNECT_MS, &pid);
	struct pollfd p;

	owner_describe(rec, desc, sizeof(desc));
	if (pidfd < 0) {
		ic_log(IC_LOG_ERR, "%s is owned by %s; cannot reach the process behind its control "
		       "socket %s (%s), so it cannot be stopped", name, desc,
		       rec->socket[0] ? rec->socket : "(none)", strerror(-pidfd));
		return -EBUSY;
	}
	ic_log(IC_LOG_WARN, "%s: killing its owner %s (pid %d here): %s", name, desc, (int)pid,
	       why);
	if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH) {
		int rc = -errno;

		ic_log(IC_LOG_ERR, "%s is owned by %s; cannot kill it: %s", name, desc,
		       strerror(errno));
		return rc == -EPERM ? -EBUSY : rc;
	}
	p = (struct pollfd){ .fd = pidfd, .events = POLLIN };
	if (poll(&p, 1, TAKEOVER_EXIT_MS) != 1) {
		ic_log(IC_LOG_ERR, "%s: its owner %s did not exit within %d s of SIGKILL", name,
		       desc, TAKEOVER_EXIT_MS / 1000);
		return -EBUSY;
	}
	ic_log(IC_LOG_WARN, "%s: its owner %s was killed", name, desc);
	return 0;
}
