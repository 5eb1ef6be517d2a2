/* The store's own locking: LMDB runs with MDB_NOLOCK, and this file keeps
 * what LMDB's lock file kept, in a way that holds across PID namespaces.
 *
 * LMDB's own locking marks a live reader by a POSIX lock on the byte at its
 * pid in meta.mdb-lock. Two processes with one pid in two PID namespaces
 * (two containers each running isocache-nbd as pid 1) want the same byte,
 * and the second one's first transaction fails with EAGAIN. Pids cannot
 * name a process on a host with PID namespaces, so nothing here uses one:
 *
 * - One byte of meta.mdb-lock (META_LOCK_RW) is a reader-writer lock made
 *   of OFD locks (F_OFD_SETLKW), which belong to an open file description,
 *   not to a pid, and which the kernel drops when the process dies. A read
 *   transaction holds it shared, a write transaction exclusive. With
 *   MDB_NOLOCK LMDB has no reader table, so a writer may reuse any page
 *   the last committed snapshot no longer names; no reader can be looking
 *   at such a page, because no reader runs while a writer does (lmdb.h,
 *   MDB_NOLOCK: "ensure that no readers are using old transactions while a
 *   writer is active"). The price: readers wait for a writer and a writer
 *   for readers, so transactions stay short (include/isocache/meta.h).
 * - Threads of one process share the description, and OFD locks do not
 *   exclude them from one another, so a mutex and a condition variable
 *   order them; the process holds the byte shared while any of its threads
 *   reads, exclusive while one writes. A thread waiting to write keeps new
 *   readers of its own process out, so they cannot starve it.
 * - Across processes the kernel grants a shared lock while a writer waits
 *   for an exclusive one, so overlapping readers of many processes (twenty
 *   servers opening the store at once, each walking it under the read
 *   lock) could starve a writer. So a process takes the byte before it
 *   (META_LOCK_GATE), shared to read and exclusive to write, waits for the
 *   reader-writer byte while holding it, and lets it go as soon as it has
 *   that byte: a waiting writer holds the gate, and readers who come after
 *   it queue behind it. Nobody asks for the gate while holding the other
 *   byte, so the order cannot deadlock.
 * - An isocache from before this change (or an LMDB tool such as mdb_stat)
 *   still uses LMDB's own locking, and would neither see our readers nor
 *   wait for our writer. Every process of ours holds, for as long as the
 *   store is open, a shared OFD lock over every byte LMDB could lock for a
 *   pid (META_LOCK_PIDS): such a process then fails to register its first
 *   reader (EAGAIN), and one that was there first makes our open fail with
 *   a message that names it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "meta/internal.h"

/* Bytes [1, 2^22): every pid Linux hands out (PID_MAX_LIMIT is 2^22). */
#define META_LOCK_PIDS_START 1
#define META_LOCK_PIDS_LEN ((off_t)1 << 22)
/* Far past them, and past anything LMDB ever writes into the file: the
 * turnstile every process passes to take the reader-writer byte next to it. */
#define META_LOCK_GATE ((off_t)1 << 40)
#define META_LOCK_RW (META_LOCK_GATE + 1)

/* The transactions this thread holds on one store (the first it uses; a
 * thread that mixes stores only loses the nesting checks on the second). */
static _Thread_local struct meta_held {
	const struct meta_lock *lock;
	unsigned reads;
	bool write;
} meta_held;

static int
lock_ofd(int fd, int cmd, short type, off_t start, off_t len, struct flock *fl)
{
	*fl = (struct flock){ .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	while (fcntl(fd, cmd, fl) != 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

/* Refuse a store a process with LMDB's own locking holds: name it. A
 * holder seen by F_OFD_SETLK may be gone by F_OFD_GETLK: then try again. */
static int
lock_fence(int fd, const char *path)
{
	struct flock fl;
	int rc = -EAGAIN;

	for (int tries = 0; tries < 3 && (rc == -EAGAIN || rc == -EACCES); tries++) {
		rc = lock_ofd(fd, F_OFD_SETLK, F_RDLCK, META_LOCK_PIDS_START, META_LOCK_PIDS_LEN,
			      &fl);
		if (rc != -EAGAIN && rc != -EACCES)
			break;
		if (lock_ofd(fd, F_OFD_GETLK, F_RDLCK, META_LOCK_PIDS_START, META_LOCK_PIDS_LEN,
			     &fl) != 0 || fl.l_type == F_UNLCK)
			continue;
		if (fl.l_pid > 0 && fl.l_pid == fl.l_start)
			ic_log(IC_LOG_ERR, "%s: process %d has this store open with LMDB's own "
					   "locking (an older isocache, or an LMDB tool); stop it first",
			       path, (int)fl.l_pid);
		else
			ic_log(IC_LOG_ERR, "%s: a process with pid %lld in another PID namespace "
					   "(pid %d here, 0 = not visible) has this store open with LMDB's "
					   "own locking (an older isocache, or an LMDB tool); stop it first",
			       path, (long long)fl.l_start, (int)fl.l_pid);
		return -EBUSY;
	}
	if (rc)
		ic_log(IC_LOG_ERR, "%s: cannot lock: %s", path, strerror(-rc));
	return rc;
}

int
meta_lock_open(struct meta_lock *l, const char *path, mode_t mode)
{
	int flags = O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
	struct stat st;
	int rc;

	*l = (struct meta_lock){ .fd = open(path, flags) };
	if (l->fd < 0 && errno == ENOENT) {
		l->fd = open(path, flags | O_CREAT | O_EXCL, mode);
		if (l->fd >= 0 && fchmod(l->fd, mode) != 0)
			ic_log(IC_LOG_WARN, "%s: %s", path, strerror(errno));
	}
	if (l->fd < 0) {
		rc = -errno;
		if (rc == -ELOOP)
			ic_log(IC_LOG_ERR, "%s is a symbolic link; refusing", path);
		else
			ic_log(IC_LOG_ERR, "%s: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(l->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		ic_log(IC_LOG_ERR, "%s is not a regular file; refusing", path);
		close(l->fd);
		return -EUCLEAN;
	}
	rc = lock_fence(l->fd, path);
	if (rc) {
		close(l->fd);
		return rc;
	}
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	return 0;
}

void
meta_lock_close(struct meta_lock *l)
{
	close(l->fd); /* drops every OFD lock of the description */
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
}

static int
lock_byte(struct meta_lock *l, off_t at, short type, int cmd)
{
	struct flock fl;
	int rc = lock_ofd(l->fd, cmd, type, at, 1, &fl);

	if (rc)
		ic_log(IC_LOG_ERR, "metadata lock: %s", strerror(-rc));
	return rc;
}

/* Take the reader-writer byte (type F_RDLCK or F_WRLCK) through the gate. */
static int
lock_rw(struct meta_lock *l, short type)
{
	int rc = lock_byte(l, META_LOCK_GATE, type, F_OFD_SETLKW);

	if (rc)
		return rc;
	rc = lock_byte(l, META_LOCK_RW, type, F_OFD_SETLKW);
	lock_byte(l, META_LOCK_GATE, F_UNLCK, F_OFD_SETLK);
	return rc;
}

static bool
lock_mine(const struct meta_lock *l)
{
	return meta_held.lock == l;
}

static void
lock_note(const struct meta_lock *l, int reads, bool write)
{
	if (!meta_held.lock)
		meta_held.lock = l;
	if (!lock_mine(l))
		return;
	meta_held.reads += reads;
	meta_held.write = write;
	if (!meta_held.reads && !meta_held.write)
		meta_held.lock = NULL;
}

int
meta_lock_read(struct meta_lock *l)
{
	bool nested = lock_mine(l);
	int rc = 0;

	pthread_mutex_lock(&l->mu);
	/* A thread that holds a transaction already must not wait for a
	 * writer that waits for it. */
	while (!nested && (l->writer || l->writers_waiting))
		pthread_cond_wait(&l->cv, &l->mu);
	if (!l->readers && !l->writer)
		rc = lock_rw(l, F_RDLCK);
	if (rc == 0)
		l->readers++;
	pthread_mutex_unlock(&l->mu);
	if (rc == 0)
		lock_note(l, 1, nested && meta_held.write);
	return rc;
}

void
meta_lock_read_end(struct meta_lock *l)
{
	pthread_mutex_lock(&l->mu);
	if (--l->readers == 0 && !l->writer) {
		lock_byte(l, META_LOCK_RW, F_UNLCK, F_OFD_SETLK);
		pthread_cond_broadcast(&l->cv);
	}
	pthread_mutex_unlock(&l->mu);
	lock_note(l, -1, lock_mine(l) && meta_held.write);
}

int
meta_lock_write(struct meta_lock *l)
{
	int rc;

	if (lock_mine(l)) {
		ic_log(IC_LOG_ERR, "metadata: a write transaction begun by a thread that holds a "
				   "transaction already would wait for itself");
		return -EDEADLK;
	}
	pthread_mutex_lock(&l->mu);
	l->writers_waiting++;
	while (l->writer || l->readers)
		pthread_cond_wait(&l->cv, &l->mu);
	l->writers_waiting--;
	l->writer = true;
	pthread_mutex_unlock(&l->mu);
	/* Other threads of this process wait on l->writer meanwhile. */
	rc = lock_rw(l, F_WRLCK);
	if (rc) {
		pthread_mutex_lock(&l->mu);
		l->writer = false;
		pthread_cond_broadcast(&l->cv);
		pthread_mutex_unlock(&l->mu);
		return rc;
	}
	lock_note(l, 0, true);
	return 0;
}

void
meta_lock_write_end(struct meta_lock *l)
{
	pthread_mutex_lock(&l->mu);
	/* A read this thread began inside the write keeps the byte, shared:
	 * the kernel converts the lock in place. */
	lock_byte(l, META_LOCK_RW, l->readers ? F_RDLCK : F_UNLCK, F_OFD_SETLK);
	l->writer = false;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	lock_note(l, 0, false);
}
