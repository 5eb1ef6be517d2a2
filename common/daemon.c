/* Start-up of a daemon: the readiness pipe and the pid file (daemon.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/daemon.h"
#include "common/log.h"
#include "common/replace.h"

int
ic_daemon_fork(void)
{
	int p[2];
	char status = 1;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int rc = -errno;

		close(p[0]);
		close(p[1]);
		return rc;
	}
	if (pid > 0) {
		close(p[1]);
		while (read(p[0], &status, 1) < 0 && errno == EINTR)
			;
		/* No byte: the child died before it was ready; status stays 1. */
		_exit(status == 0 ? 0 : 1);
	}
	close(p[0]);
	setsid();
	return p[1];
}

void
ic_daemon_report(int fd, int status)
{
	char c = status == 0 ? 0 : 1;

	if (fd < 0)
		return;
	/* When this fails the parent sees EOF and exits 1. */
	if (write(fd, &c, 1) != 1)
		ic_log(IC_LOG_WARN, "cannot report to the starting process: %s", strerror(errno));
	close(fd);
}

void
ic_daemon_detach(bool all)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (null < 0)
		return;
	dup2(null, STDIN_FILENO);
	dup2(null, STDOUT_FILENO);
	if (all)
		dup2(null, STDERR_FILENO);
	if (null > STDERR_FILENO)
		close(null);
}

int
ic_pidfile_write(const char *path)
{
	char text[24];
	int len = snprintf(text, sizeof(text), "%d\n", (int)getpid());

	return ic_file_replace(path, text, (size_t)len, 0644);
}

void
ic_pidfile_remove(const char *path)
{
	FILE *f;
	int pid = 0;

	if (!path || !(f = fopen(path, "re")))
		return;
	if (fscanf(f, "%d", &pid) != 1)
		pid = 0;
	fclose(f);
	if (pid == (int)getpid())
		unlink(path);
}
