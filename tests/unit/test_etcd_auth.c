/* etcd/auth.c: the credentials of a cluster with etcd's users on, from
 * ISOCACHE_ETCD_USER and the password file ISOCACHE_ETCD_PASSWORD_FILE,
 * read from real files: the password without its line break, and a clear
 * refusal of a file others can read, an empty or overlong one, a missing
 * one, a directory, and a user without a file. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "etcd/internal.h"

static char dir[64];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ic-etcd-auth-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

/* A password file holding len bytes of text, with mode;
 * ISOCACHE_ETCD_PASSWORD_FILE names it. */
static void
password_file_n(const char *name, const char *text, size_t len, mode_t mode)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
	setenv("ISOCACHE_ETCD_PASSWORD_FILE", path, 1);
}

static void
password_file(const char *name, const char *text, mode_t mode)
{
	password_file_n(name, text, strlen(text), mode);
}

static int
read_password(char *out, char *why)
{
	return ic_etcd_auth_password(out, why, 300);
}

static void
test_password_read(void **state)
{
	char pw[IC_ETCD_PASSWORD_MAX], why[300];

	(void)state;
	password_file("pw", "s3cret pass\r\n", 0600);
	assert_int_equal(read_password(pw, why), 0);
	assert_string_equal(pw, "s3cret pass");
	password_file("pw-bare", "x", 0400);
	assert_int_equal(read_password(pw, why), 0);
	assert_string_equal(pw, "x");
}

static void
test_password_refused(void **state)
{
	static const struct {
		const char *name, *text;
		mode_t mode;
		int rc;
		const char *why;
	} cases[] = {
		{ "group", "pw\n", 0640, -EPERM, "open to group or others (mode 0640): chmod 600 it" },
		{ "others", "pw\n", 0604, -EPERM, "open to group or others (mode 0604)" },
		{ "empty", "\n", 0600, -EINVAL, "empty" },
	};
	char pw[IC_ETCD_PASSWORD_MAX], why[300], long_pw[IC_ETCD_PASSWORD_MAX + 2];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		password_file(cases[i].name, cases[i].text, cases[i].mode);
		assert_int_equal(read_password(pw, why), cases[i].rc);
		assert_non_null(strstr(why, cases[i].why));
	}
	password_file_n("nul", "a\0b\n", 4, 0600);
	assert_int_equal(read_password(pw, why), -EINVAL);
	assert_non_null(strstr(why, "holds a NUL byte"));
	memset(long_pw, 'p', sizeof(long_pw) - 1);
	long_pw[sizeof(long_pw) - 1] = '\0';
	password_file("long", long_pw, 0600);
	assert_int_equal(read_password(pw, why), -EINVAL);
	assert_non_null(strstr(why, "too long (at most 255 bytes)"));
	setenv("ISOCACHE_ETCD_PASSWORD_FILE", dir, 1);
	assert_int_equal(read_password(pw, why), -EINVAL);
	assert_non_null(strstr(why, "is not a regular file"));
	setenv("ISOCACHE_ETCD_PASSWORD_FILE", "/nonexistent/pw", 1);
	assert_int_equal(read_password(pw, why), -ENOENT);
	assert_non_null(strstr(why, "/nonexistent/pw: No such file or directory"));
}

static void
test_user(void **state)
{
	char user[IC_ETCD_USER_MAX], big[IC_ETCD_USER_MAX + 1];

	(void)state;
	unsetenv("ISOCACHE_ETCD_USER");
	unsetenv("ISOCACHE_ETCD_PASSWORD_FILE");
	assert_int_equal(ic_etcd_auth_user(user), 0);
	assert_string_equal(user, "");
	setenv("ISOCACHE_ETCD_USER", "hosta", 1);
	assert_int_equal(ic_etcd_auth_user(user), -EINVAL); /* no password file */
	setenv("ISOCACHE_ETCD_PASSWORD_FILE", "/some/pw", 1);
	assert_int_equal(ic_etcd_auth_user(user), 0);
	assert_string_equal(user, "hosta");
	unsetenv("ISOCACHE_ETCD_USER");
	assert_int_equal(ic_etcd_auth_user(user), -EINVAL); /* a file without a user */
	memset(big, 'u', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	setenv("ISOCACHE_ETCD_USER", big, 1);
	assert_int_equal(ic_etcd_auth_user(user), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_password_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_password_refused, setup, teardown),
		cmocka_unit_test(test_user),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
