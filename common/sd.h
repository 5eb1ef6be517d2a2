/* Running under systemd: the listening socket of socket activation and
 * readiness notification. Both are no-ops for a process started any other
 * way, so a daemon calls them unconditionally. */
#ifndef IC_COMMON_SD_H
#define IC_COMMON_SD_H

/* The listening AF_UNIX socket of `type` (SOCK_STREAM, SOCK_SEQPACKET)
 * that systemd passed this process (sd_listen_fds), made close-on-exec;
 * the environment that passed it is unset, so children do not see it.
 * Returns the fd, -ENOENT when none was passed (start the usual way), or
 * -EINVAL after logging when more than one was passed or it is not such a
 * socket. Call once, before starting threads. */
int ic_sd_listener(int type);

/* Tell the service manager our state: "READY=1" once serving,
 * "STOPPING=1" when shutting down. Nothing when not started by a service
 * manager with Type=notify; a failure to tell is logged, never fatal. */
void ic_sd_notify(const char *state);

#endif
