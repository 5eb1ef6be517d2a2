/* Start-up of a daemon, one way for isocached, isocache-nbd and
 * isocache-fuse: the pid file and going to the background with a readiness
 * pipe, so that "daemon ... && client" works and a failed start fails the
 * command that ran it, its message on the caller's stderr. */
#ifndef IC_COMMON_DAEMON_H
#define IC_COMMON_DAEMON_H

#include <stdbool.h>

/* Fork. The parent waits for the child's verdict (ic_daemon_report) and
 * exits with it: 0 once the child serves, 1 when it reported a failure or
 * died before reporting. The child starts a new session and gets the
 * pipe's write end (close-on-exec, so a helper it starts cannot hold the
 * parent up). Returns that fd in the child, or -errno in the caller when
 * it could not fork (nothing else happened). Call before making threads
 * or rings, and before opening an LMDB environment: they do not cross a
 * fork. */
int ic_daemon_fork(void);

/* Tell the waiting parent how the start went (status 0: serving, 1:
 * failed) and close fd. Nothing when fd < 0 (not forked). */
void ic_daemon_report(int fd, int status);

/* Let go of the terminal once serving in the background: stdin and stdout
 * (and stderr, when `all`) become /dev/null. Log elsewhere first. */
void ic_daemon_detach(bool all);

/* Write our pid to path atomically (a temporary file renamed over it), so
 * a reader never sees an empty or partial file. Returns 0 or -errno. */
int ic_pidfile_write(const char *path);

/* Remove path at exit, only if it still holds our pid: a daemon started
 * since with the same pid file keeps its own. NULL is ignored. */
void ic_pidfile_remove(const char *path);

#endif
