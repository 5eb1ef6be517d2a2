/* Daemon start-up (common/daemon.c): the pid file is written whole and
 * removed only while it is still ours; the parent of ic_daemon_fork exits
 * with the child's verdict, and with 1 when the child dies unreported. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/daemon.h"

static char dir[] = "/tmp/ic-daemon-test.XXXXXX";
static char path[sizeof(dir) + 16];

static int
setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/ic-daemon-test.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/d.pid", dir);
	return 0;
}

static int
teardown(void **state)
{
	char tmp[sizeof(path) + 8];

	(void)state;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(path);
	unlink(tmp);
	return rmdir(dir);
}

static int
read_pid(void)
{
	FILE *f = fopen(path, "r");
	int pid = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%d", &pid) != 1)
		pid = -1;
	fclose(f);
	return pid;
}

static void
test_pidfile_written_whole(void **state)
{
	char tmp[sizeof(path) + 8];
	struct stat sb;

	(void)state;
	assert_int_equal(ic_pidfile_write(path), 0);
	assert_int_equal(read_pid(), (int)getpid());
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_equal(stat(tmp, &sb), -1); /* renamed, not left behind */
	assert_int_equal(ic_pidfile_write("/nonexistent-dir/d.pid"), -ENOENT);
}

static void
test_pidfile_removed_only_if_ours(void **state)
{
	FILE *f;
	struct stat sb;

	(void)state;
	/* Another daemon wrote its pid over ours: its file stays. */
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "%d\n", (int)getpid() + 1);
	fclose(f);
	ic_pidfile_remove(path);
	assert_int_equal(read_pid(), (int)getpid() + 1);
	/* Ours goes. */
	assert_int_equal(ic_pidfile_write(path), 0);
	ic_pidfile_remove(path);
	assert_int_equal(stat(path, &sb), -1);
	ic_pidfile_remove(NULL);
}

/* Run ic_daemon_fork in a child, whose daemon (the grandchild) reports
 * `report` (or, for -1, exits without reporting); the child's exit status. */
static int
fork_outcome(int report)
{
	int status;
	pid_t child = fork();

	assert_true(child >= 0);
	if (child == 0) {
		int fd = ic_daemon_fork();

		if (fd < 0)
			_exit(3);
		if (report >= 0)
			ic_daemon_report(fd, report);
		_exit(0);
	}
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void
test_fork_parent_exits_with_verdict(void **state)
{
	(void)state;
	assert_int_equal(fork_outcome(0), 0);
	assert_int_equal(fork_outcome(1), 1);
	assert_int_equal(fork_outcome(-1), 1); /* died before it was ready */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pidfile_written_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pidfile_removed_only_if_ours, setup, teardown),
		cmocka_unit_test(test_fork_parent_exits_with_verdict),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
