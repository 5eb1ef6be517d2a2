/* Liveness of an owner (docs/OWNERSHIP.md): the kernel's, not /proc's.
 * An owner holds an OFD lock on its vdisk's byte of owners.lock for as
 * long as it owns, and is dead exactly when that lock can be taken: the
 * kernel drops it when the owner's last descriptor of it closes, at exit in
 * any PID namespace, whatever /proc shows. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/log.h"
#include "owner/internal.h"

/* The vdisk's byte of owners.lock: a 62-bit FNV-1a hash of its name. Two
 * names sharing a byte (odds 2^-62 per pair) would only make one wait for
 * the other, never let two own one vdisk. */
static off_t
owner_lock_byte(const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	return (off_t)(h >> 2);
}

/* A new open file description of owners.lock (each claim has its own, so
 * two claims of one process conflict too). O_CLOEXEC: helpers a server
 * starts must never hold an owner's lock. Whoever may write the metadata
 * may claim, so the file takes meta.mdb's owner and mode when we made it. */
int
owner_lock_open(struct owner_store *os)
{
	char path[PATH_MAX];
	struct stat meta, st;
	int fd;

	snprintf(path, sizeof(path), "%s/" OWNER_LOCK_FILE, os->dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		int rc = -errno;

		ic_log(IC_LOG_ERR, "cannot open the ownership lock file %s: %s", path,
		       strerror(errno));
		return rc;
	}
	snprintf(path, sizeof(path), "%s/meta.mdb", os->dir);
	if (fstat(fd, &st) == 0 && st.st_uid == geteuid() && stat(path, &meta) == 0 &&
	    (st.st_uid != meta.st_uid || (st.st_mode & 0666) != (meta.st_mode & 0666))) {
		if (fchown(fd, meta.st_uid, meta.st_gid) || fchmod(fd, meta.st_mode & 0666))
			ic_log(IC_LOG_WARN, "%s/" OWNER_LOCK_FILE ": cannot give it meta.mdb's owner "
			       "and mode: %s", os->dir, strerror(errno));
	}
	return fd;
}

static struct flock
owner_lock_range(const char *name, short type)
{
	return (struct flock){ .l_type = type, .l_whence = SEEK_SET,
			       .l_start = owner_lock_byte(name), .l_len = 1 };
}

/* Take name's lock on fd without waiting: 0, -EAGAIN when a live owner
 * holds it, or another -errno. */
int
owner_lock_take(int fd, const char *name)
{
	struct flock fl = owner_lock_range(name, F_WRLCK);

	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	return errno == EACCES || errno == EAGAIN ? -EAGAIN : -errno;
}

/* Wait until deadline_ms (ic_now_ms) for name's lock on fd: its holder is
 * about to let go (it answered RELEASED, or was killed). */
int
owner_lock_wait(int fd, const char *name, long long deadline_ms)
{
	for (;;) {
		int rc = owner_lock_take(fd, name);

		if (rc != -EAGAIN || ic_now_ms() >= deadline_ms)
			return rc;
		usleep(200);
	}
}

/* Does a live process hold name's lock? 1 yes, 0 no, or -errno. Asking
 * needs only read access (owner show by anyone who may read the os),
 * and no lock file yet means nobody ever claimed. */
int
owner_lock_held(struct owner_store *os, const char *name)
{
	char path[PATH_MAX];
	struct flock fl = owner_lock_range(name, F_WRLCK);
	IC_AUTOCLOSE int fd = -1;

	snprintf(path, sizeof(path), "%s/" OWNER_LOCK_FILE, os->dir);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fcntl(fd, F_OFD_GETLK, &fl))
		return -errno;
	return fl.l_type != F_UNLCK;
}

void
owner_let_go(struct owner_claim *claim)
{
	if (claim->lock_fd >= 0)
		close(claim->lock_fd);
	claim->lock_fd = -1;
	if (claim->lease)
		owner_lease_stop(claim->lease);
}

void
owner_drop(struct owner_claim *claim)
{
	owner_let_go(claim);
	if (claim->lease)
		owner_lease_abandon(claim->lease);
	owner_lease_free(claim->lease);
	claim->lease = NULL;
}
