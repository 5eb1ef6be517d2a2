/* Paths inside a store, opened beneath the store's directory descriptor
 * and never through a symbolic link (docs/SECURITY.md, "Store files and
 * paths"). A link planted in place of a layer file or of layers/ would
 * otherwise make root's snap chmod a foreign file, rm lift its immutable
 * flag, or a write through NBD overwrite it. openat2 (Linux 5.6) refuses
 * any symlink on the whole path, and any escape from the directory, in one
 * call; there is no window between a check and the open. Where openat2
 * is missing (some seccomp sandboxes: ENOSYS; valgrind, which warns) the path is walked
 * one component at a time with O_NOFOLLOW, which refuses the same links. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/valgrind.h"
#include "vdisk/internal.h"

/* The first component of rel that is a symbolic link, into part; false
 * when there is none (any more). */
static bool
store_find_link(const struct ic_store *store, const char *rel, char *part)
{
	struct stat st;

	snprintf(part, PATH_MAX, "%s", rel);
	for (char *slash = part;; slash++) {
		slash = strchr(slash, '/');
		if (slash)
			*slash = '\0';
		if (fstatat(store->dirfd, part, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
			return true;
		if (!slash)
			return false;
		*slash = '/';
	}
}

/* openat2's resolution by hand: each directory opened O_NOFOLLOW beneath
 * the last, ".." refused. A link in the middle fails O_DIRECTORY
 * (ENOTDIR), at the end O_NOFOLLOW (ELOOP, or for O_PATH the check after). */
static int
store_walk(int dirfd, const char *rel, int flags, mode_t mode)
{
	char part[PATH_MAX];
	IC_AUTOCLOSE int cur = -1;
	char *name = part, *slash;
	struct stat st;
	int fd;

	snprintf(part, sizeof(part), "%s", rel);
	while ((slash = strchr(name, '/'))) {
		*slash = '\0';
		if (strcmp(name, "..") == 0)
			return -EXDEV;
		fd = openat(cur >= 0 ? cur : dirfd, name,
			    O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		if (cur >= 0)
			close(cur);
		cur = fd;
		name = slash + 1;
	}
	if (strcmp(name, "..") == 0)
		return -EXDEV;
	fd = openat(cur >= 0 ? cur : dirfd, name, flags | O_NOFOLLOW, mode);
	if (fd < 0)
		return -errno;
	/* O_PATH | O_NOFOLLOW opens a link itself rather than failing. */
	if ((flags & O_PATH) && fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)) {
		close(fd);
		return -ELOOP;
	}
	return fd;
}

int
store_openat(const struct ic_store *store, const char *rel, int flags, mode_t mode)
{
	static atomic_bool no_openat2;
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.mode = flags & O_CREAT ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	char part[PATH_MAX];
	long fd = -1;
	int rc;

	if (ic_under_valgrind())
		atomic_store_explicit(&no_openat2, true, memory_order_relaxed);
	if (!atomic_load_explicit(&no_openat2, memory_order_relaxed)) {
		fd = syscall(SYS_openat2, store->dirfd, rel, &how, sizeof(how));
		if (fd < 0 && errno == ENOSYS)
			atomic_store_explicit(&no_openat2, true, memory_order_relaxed);
	}
	if (fd >= 0)
		return (int)fd;
	rc = atomic_load_explicit(&no_openat2, memory_order_relaxed)
		     ? store_walk(store->dirfd, rel, flags | O_CLOEXEC, mode)
		     : -errno;
	if (rc >= 0)
		return rc;
	if (rc == -ELOOP || rc == -EXDEV || (rc == -ENOTDIR && store_find_link(store, rel, part))) {
		/* ELOOP names the path when the link went away meanwhile. */
		if (!store_find_link(store, rel, part))
			snprintf(part, sizeof(part), "%s", rel);
		ic_log(IC_LOG_ERR, "store %s: %s is a symbolic link; refusing", store->dir, part);
		return -ELOOP;
	}
	if (rc != -ENOENT)
		ic_log(IC_LOG_ERR, "store %s: %s: %s", store->dir, rel, strerror(-rc));
	return rc;
}

int
store_unlinkat(const struct ic_store *store, const char *dir, const char *name)
{
	IC_AUTOCLOSE int dfd = store_openat(store, dir, O_PATH | O_DIRECTORY, 0);

	if (dfd < 0)
		return dfd;
	if (unlinkat(dfd, name, 0) != 0 && errno != ENOENT) {
		int rc = -errno;

		ic_log(IC_LOG_ERR, "store %s: cannot remove %s/%s: %s", store->dir, dir, name,
		       strerror(errno));
		return rc;
	}
	return 0;
}
