/* The reserve: room for the metadata file to grow on a full filesystem.
 *
 * Every commit writes its changed pages copy-on-write, into pages the free
 * list gives back or, when it has none old enough, past the end of the
 * file. On a full filesystem that pwrite fails with ENOSPC and so does the
 * commit, and then nothing that commits works: not an ownership claim, so
 * isocache-nbd cannot even start again to serve the data it has, not a
 * flush, not `isocache-admin rm` to make room. So the file keeps
 * META_RESERVE bytes of blocks allocated past its end (fallocate with
 * FALLOC_FL_KEEP_SIZE: the size LMDB sees does not change, and its pwrites
 * past the end land in blocks the filesystem has already given it). The
 * reserve is topped up at open and after every commit that grew the file;
 * when that fails for want of space, the commits go on from what is left,
 * with a warning (docs/FORMAT.md, "The metadata reserve"). */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "common/log.h"
#include "meta/internal.h"

int
meta_reserve(struct lmdb_meta *meta)
{
	struct stat st;
	int fd;

	if (mdb_env_get_fd(meta->env, &fd) != 0 || fstat(fd, &st) != 0)
		return -EBADF;
	/* Commits on several threads may get here at once: at worst both top up. */
	if (st.st_size == __atomic_load_n(&meta->reserved_at, __ATOMIC_RELAXED))
		return 0;
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, st.st_size, META_RESERVE) != 0) {
		int rc = -errno;

		/* A read-only file, or a filesystem without fallocate: no reserve. */
		if (rc == -ENOSPC || rc == -EDQUOT)
			ic_log(IC_LOG_WARN, "metadata file: no room to keep its %u KiB reserve: %s",
			       META_RESERVE >> 10, strerror(-rc));
		__atomic_store_n(&meta->reserved_at, st.st_size, __ATOMIC_RELAXED);
		return rc;
	}
	__atomic_store_n(&meta->reserved_at, st.st_size, __ATOMIC_RELAXED);
	return 0;
}
