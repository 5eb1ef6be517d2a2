/* systemd's protocols as common/sd.c speaks them, without libsystemd:
 * the passed socket is taken only when LISTEN_PID is ours and is the
 * listening Unix socket of the type asked for; the variables are gone
 * afterwards either way; readiness reaches NOTIFY_SOCKET, a path or an
 * abstract name. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/sd.h"

#define FD_FIRST 3

/* Pass a listening AF_UNIX socket of type as fd 3, as systemd would, with
 * LISTEN_PID set to pid. */
static void
pass_socket(int type, bool listening, long pid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, type, 0);
	char v[32];

	assert_true(fd >= 0);
	snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "ic-sd-test-%d", (int)getpid());
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (listening)
		assert_int_equal(listen(fd, 1), 0);
	if (fd != FD_FIRST) {
		assert_int_equal(dup2(fd, FD_FIRST), FD_FIRST);
		close(fd);
	}
	snprintf(v, sizeof(v), "%ld", pid);
	setenv("LISTEN_PID", v, 1);
	setenv("LISTEN_FDS", "1", 1);
	setenv("LISTEN_FDNAMES", "isocached.socket", 1);
}

static void
assert_env_gone(void)
{
	assert_null(getenv("LISTEN_PID"));
	assert_null(getenv("LISTEN_FDS"));
	assert_null(getenv("LISTEN_FDNAMES"));
}

static void
test_listener_taken(void **state)
{
	(void)state;
	pass_socket(SOCK_SEQPACKET, true, getpid());
	assert_int_equal(ic_sd_listener(SOCK_SEQPACKET), FD_FIRST);
	assert_true(fcntl(FD_FIRST, F_GETFD) & FD_CLOEXEC);
	assert_env_gone();
	close(FD_FIRST);
}

static void
test_listener_of_another_process(void **state)
{
	(void)state;
	pass_socket(SOCK_SEQPACKET, true, getppid());
	assert_int_equal(ic_sd_listener(SOCK_SEQPACKET), -ENOENT);
	assert_env_gone();
	close(FD_FIRST);
	assert_int_equal(ic_sd_listener(SOCK_SEQPACKET), -ENOENT); /* nothing passed */
}

static void
test_listener_refused(void **state)
{
	(void)state;
	pass_socket(SOCK_STREAM, true, getpid()); /* the wrong type */
	assert_int_equal(ic_sd_listener(SOCK_SEQPACKET), -EINVAL);
	assert_env_gone();
	close(FD_FIRST);
	pass_socket(SOCK_SEQPACKET, false, getpid()); /* not listening */
	assert_int_equal(ic_sd_listener(SOCK_SEQPACKET), -EINVAL);
	close(FD_FIRST);
	setenv("LISTEN_PID", "12x", 1);
	assert_int_equal(ic_sd_listener(SOCK_SEQPACKET), -EINVAL);
	assert_env_gone();
}

/* NOTIFY_SOCKET set to name, bound by us: what ic_sd_notify sends. */
static void
notify_through(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	char got[64];
	ssize_t n;

	assert_true(fd >= 0);
	memcpy(sa.sun_path, name, len);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	assert_int_equal(bind(fd, (struct sockaddr *)&sa,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)), 0);
	setenv("NOTIFY_SOCKET", name, 1);
	ic_sd_notify("READY=1");
	n = recv(fd, got, sizeof(got), MSG_DONTWAIT);
	assert_int_equal(n, 7);
	assert_memory_equal(got, "READY=1", 7);
	close(fd);
	unsetenv("NOTIFY_SOCKET");
}

static void
test_notify(void **state)
{
	char dir[] = "/tmp/ic-sd-test.XXXXXX", path[64], abstract[64];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/notify", dir);
	notify_through(path);
	unlink(path);
	rmdir(dir);
	snprintf(abstract, sizeof(abstract), "@ic-sd-test-notify-%d", (int)getpid());
	notify_through(abstract);
	ic_sd_notify("READY=1"); /* no NOTIFY_SOCKET: nothing, no error */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listener_taken),
		cmocka_unit_test(test_listener_of_another_process),
		cmocka_unit_test(test_listener_refused),
		cmocka_unit_test(test_notify),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
