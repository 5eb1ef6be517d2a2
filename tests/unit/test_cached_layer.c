/* What isocached accepts as a layer: only a regular file opened read-only,
 * mode 0444, whose IC_LAYER_XATTR is exactly the frozen form. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "cached/internal.h"
#include "isocache/layer.h"

#define STORE "11111111-2222-4333-8444-555555555555"
#define LAYER "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"

static char dir[] = "/tmp/test_cached_layer.XXXXXX";

/* Set the immutable attribute, as the store does for root's frozen layers
 * (quietly not where the filesystem or the user cannot). */
static void
immutable(const char *path)
{
	int fd = open(path, O_RDONLY), flags;

	if (geteuid() == 0 && fd >= 0 && ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
		flags |= FS_IMMUTABLE_FL;
		ioctl(fd, FS_IOC_SETFLAGS, &flags);
	}
	if (fd >= 0)
		close(fd);
}

/* A file with xattr value (or none) and mode, made immutable when frozen
 * is set; returns its path. */
static const char *
layer_file(const char *name, const char *value, mode_t mode, bool frozen)
{
	static char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "data", 4), 4);
	if (value && fsetxattr(fd, IC_LAYER_XATTR, value, strlen(value), 0) < 0) {
		close(fd);
		skip(); /* no user xattrs on this filesystem */
	}
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
	if (frozen)
		immutable(path);
	return path;
}

static int
check(const char *path, int flags)
{
	uint8_t uuid[16];
	struct stat sb;
	int fd = open(path, flags), rc;

	assert_true(fd >= 0);
	rc = cached_layer_check(fd, uuid, &sb);
	close(fd);
	return rc;
}

static void
test_frozen_layer_accepted(void **state)
{
	const char *p = layer_file("good", "isocache-layer v1 store=" STORE " layer=" LAYER " frozen",
				   0444, true);
	uint8_t uuid[16], want[16];
	struct stat sb;
	int fd = open(p, O_RDONLY);

	(void)state;
	assert_int_equal(cached_layer_check(fd, uuid, &sb), 0);
	close(fd);
	assert_int_equal(cached_uuid_parse(LAYER, want), 0);
	assert_memory_equal(uuid, want, 16);
	assert_int_equal(sb.st_size, 4);
}

static void
test_refusals(void **state)
{
	const char *ok = "isocache-layer v1 store=" STORE " layer=" LAYER " frozen";
	int pipefd[2];
	uint8_t uuid[16];
	struct stat sb;

	(void)state;
	assert_int_equal(check(layer_file("rw", ok, 0644, true), O_RDONLY), -EPERM);
	assert_int_equal(check(layer_file("wfd", ok, 0444, false), O_RDWR), -EACCES);
	assert_int_equal(check(layer_file("none", NULL, 0444, true), O_RDONLY), -ENODATA);
	assert_int_equal(check(layer_file("thawed", "isocache-layer v1 store=" STORE " layer=" LAYER,
					  0444, true),
			       O_RDONLY),
			 -ENODATA);
	assert_int_equal(check(layer_file("trailing", "isocache-layer v1 store=" STORE
						     " layer=" LAYER " frozen junk",
					  0444, true),
			       O_RDONLY),
			 -ENODATA);
	assert_int_equal(check(layer_file("baduuid", "isocache-layer v1 store=" STORE
						    " layer=AAAAAAAA-bbbb-4ccc-8ddd-eeeeeeeeeeee frozen",
					  0444, true),
			       O_RDONLY),
			 -ENODATA);
	if (geteuid() == 0) /* root's frozen layers must be immutable */
		assert_int_equal(check(layer_file("mutable", ok, 0444, false), O_RDONLY), -EPERM);
	assert_int_equal(check(dir, O_RDONLY), -EBADF);
	assert_int_equal(pipe(pipefd), 0);
	assert_int_equal(cached_layer_check(pipefd[0], uuid, &sb), -EBADF);
	close(pipefd[0]);
	close(pipefd[1]);
}

static void
test_uuid_parse(void **state)
{
	uint8_t u[16];

	(void)state;
	assert_int_equal(cached_uuid_parse("00112233-4455-6677-8899-aabbccddeeff", u), 0);
	assert_int_equal(u[0], 0x00);
	assert_int_equal(u[15], 0xff);
	assert_int_equal(cached_uuid_parse("00112233-4455-6677-8899-aabbccddeef", u), -EINVAL);
	assert_int_equal(cached_uuid_parse("00112233-4455-6677-8899-aabbccddeeff0", u), -EINVAL);
	assert_int_equal(cached_uuid_parse("0011223304455-6677-8899-aabbccddeeff", u), -EINVAL);
	assert_int_equal(cached_uuid_parse("00112233-4455-6677-8899-aabbccddeefg", u), -EINVAL);
}

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[400];

	(void)state;
	snprintf(cmd, sizeof(cmd), "chattr -R -i '%s' 2>/dev/null; rm -rf '%s'", dir, dir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frozen_layer_accepted),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_uuid_parse),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
