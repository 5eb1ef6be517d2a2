/* The power-cut shim: an LD_PRELOAD library that records, in a journal,
 * every write and every sync a process makes to the files under one
 * directory (PC_ROOT), so that replay.c can rebuild those files as a power
 * cut at any point would have left them. PC_JOURNAL names the journal.
 * Without both variables the shim only passes calls through.
 *
 * Writes land in the page cache as usual; the journal holds their bytes.
 * A sync is recorded after it succeeds, covering only what was journaled
 * before it began: a write racing with an fdatasync is not known durable,
 * so the model never credits a sync with more than it promised.
 *
 * io_uring submissions bypass libc, so the shim refuses to set up a ring
 * (-ENOSYS): isocache's layer backend then uses preadv2/pwritev2, which
 * the shim sees. A shared writable mapping of a tracked file would bypass
 * it too; the shim aborts rather than miss writes. LMDB's lock file is
 * shared memory, not data, and is left alone.
 *
 * Names under the root are journaled too: a file made by open(O_CREAT), a
 * directory made by mkdir, unlink and rename (journal.h says when each
 * survives). A directory opened (O_DIRECTORY or not) is tracked like a
 * file, so its fsync is recorded; opendir's descriptor is glibc's own and
 * not seen, which suits isocache: it syncs directories through open(). */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "journal.h"

#define PC_MAX_FD 4096
#define PC_MAX_FILES 256
#define PC_EXPORT __attribute__((visibility("default")))

struct io_uring;

static pthread_once_t pc_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t pc_lock = PTHREAD_MUTEX_INITIALIZER;
static bool pc_active;
static int pc_journal = -1;
static uint64_t pc_pos; /* the journal's length */
static char pc_root[PATH_MAX];
static size_t pc_root_len;
static char *pc_files[PC_MAX_FILES];
static uint32_t pc_nfiles;
static int pc_fd_file[PC_MAX_FD]; /* file id + 1, 0 = not tracked */
static bool pc_fd_dsync[PC_MAX_FD];

static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev2)(int, const struct iovec *, int, off_t, int);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static void (*real_sync)(void);
static int (*real_syncfs)(int);
static int (*real_ftruncate)(int, off_t);
static int (*real_fallocate)(int, int, off_t, off_t);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned);
static int (*real_mkdirat)(int, const char *, mode_t);

static void __attribute__((noreturn))
pc_die(const char *what)
{
	fprintf(stderr, "powercut shim: %s: %s\n", what, strerror(errno));
	abort();
}

static void *
pc_sym(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);

	if (!p)
		pc_die(name);
	return p;
}

static void
pc_init(void)
{
	const char *journal = getenv("PC_JOURNAL"), *root = getenv("PC_ROOT");

	real_openat = pc_sym("openat");
	real_close = pc_sym("close");
	real_write = pc_sym("write");
	real_writev = pc_sym("writev");
	real_pwrite = pc_sym("pwrite");
	real_pwritev = pc_sym("pwritev");
	real_pwritev2 = pc_sym("pwritev2");
	real_fsync = pc_sym("fsync");
	real_fdatasync = pc_sym("fdatasync");
	real_sync = pc_sym("sync");
	real_syncfs = pc_sym("syncfs");
	real_ftruncate = pc_sym("ftruncate");
	real_fallocate = pc_sym("fallocate");
	real_mmap = pc_sym("mmap");
	real_unlinkat = pc_sym("unlinkat");
	real_renameat2 = pc_sym("renameat2");
	real_mkdirat = pc_sym("mkdirat");
	if (!journal || !root)
		return;
	if (!realpath(root, pc_root))
		pc_die(root);
	pc_root_len = strlen(pc_root);
	pc_journal = real_openat(AT_FDCWD, journal, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (pc_journal < 0)
		pc_die(journal);
	pc_pos = (uint64_t)lseek(pc_journal, 0, SEEK_END);
	pc_active = true;
}

static bool
pc_ready(void)
{
	pthread_once(&pc_once, pc_init);
	return pc_active;
}

static void
pc_put(const void *buf, size_t len)
{
	while (len) {
		ssize_t n = real_write(pc_journal, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			pc_die("journal write");
		buf = (const char *)buf + n;
		len -= (size_t)n;
		pc_pos += (uint64_t)n;
	}
}

/* Append a record whose data is the first len bytes of iov; pc_lock held. */
static void
pc_record(struct pc_rec *r, const struct iovec *iov, int iovcnt)
{
	uint64_t left = pc_rec_data(r);

	r->magic = PC_MAGIC;
	pc_put(r, sizeof(*r));
	for (int i = 0; i < iovcnt && left; i++) {
		size_t n = iov[i].iov_len < left ? iov[i].iov_len : left;

		pc_put(iov[i].iov_base, n);
		left -= n;
	}
}

/* The file id + 1 of fd, 0 if it is not tracked; pc_lock held. */
static uint32_t
pc_file(int fd)
{
	return fd >= 0 && fd < PC_MAX_FD ? (uint32_t)pc_fd_file[fd] : 0;
}

/* path relative to the root ("." for the root itself), or NULL when path
 * is not under it. */
static const char *
pc_rel(const char *path)
{
	if (strncmp(path, pc_root, pc_root_len) != 0)
		return NULL;
	if (path[pc_root_len] == '\0')
		return ".";
	return path[pc_root_len] == '/' ? path + pc_root_len + 1 : NULL;
}

/* The absolute path of (dirfd, path) without following its last
 * component, into out (PATH_MAX): the parent resolved, the name appended. */
static bool
pc_abs(int dirfd, const char *path, char *out)
{
	char full[2 * PATH_MAX], real[PATH_MAX], link[64], *slash;
	ssize_t n;

	if (path[0] == '/') {
		real[0] = '\0';
	} else if (dirfd == AT_FDCWD) {
		if (!getcwd(real, sizeof(real)))
			return false;
	} else {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
		n = readlink(link, real, sizeof(real) - 1);
		if (n <= 0)
			return false;
		real[n] = '\0';
	}
	if (snprintf(full, sizeof(full), "%s/%s", real, path) >= (int)sizeof(full))
		return false;
	slash = strrchr(full, '/');
	*slash = '\0';
	if (!realpath(full[0] ? full : "/", real))
		return false;
	return snprintf(out, PATH_MAX, "%s/%s", real, slash + 1) < PATH_MAX;
}

/* Journal a change of names (PC_CREATE ...): paths a and b (or NULL) when
 * both are under the root. */
static void
pc_name(enum pc_type type, const char *a, const char *b)
{
	const char *ra = pc_rel(a), *rb = b ? pc_rel(b) : NULL;
	struct iovec iov[2];
	struct pc_rec r = { .type = (uint16_t)type };

	if (!ra || (b && !rb))
		return;
	iov[0] = (struct iovec){ (void *)ra, strlen(ra) + (b ? 1 : 0) };
	iov[1] = (struct iovec){ (void *)rb, b ? strlen(rb) : 0 };
	r.len = iov[0].iov_len + iov[1].iov_len;
	pthread_mutex_lock(&pc_lock);
	pc_record(&r, iov, 2);
	pthread_mutex_unlock(&pc_lock);
}

/* Start tracking fd if it names a data file under the root. */
static void
pc_track(int fd, int flags)
{
	char link[64], path[PATH_MAX];
	ssize_t n;
	uint32_t id;

	if (fd < 0 || !pc_ready())
		return;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0)
		return;
	path[n] = '\0';
	if (!pc_rel(path) || (n > 5 && strcmp(path + n - 5, "-lock") == 0))
		return;
	if (fd >= PC_MAX_FD) {
		errno = EMFILE;
		pc_die(path);
	}
	pthread_mutex_lock(&pc_lock);
	for (id = 0; id < pc_nfiles; id++)
		if (strcmp(pc_files[id], path) == 0)
			break;
	if (id == pc_nfiles) {
		const char *rel = pc_rel(path);
		struct iovec iov = { (void *)rel, strlen(rel) };
		struct pc_rec r = { .type = PC_OPEN, .file = id, .len = iov.iov_len };

		if (id == PC_MAX_FILES || !(pc_files[id] = strdup(path)))
			pc_die("too many files");
		pc_nfiles++;
		pc_record(&r, &iov, 1);
	}
	pc_fd_file[fd] = (int)id + 1;
	pc_fd_dsync[fd] = flags & O_DSYNC;
	if (flags & O_TRUNC) {
		struct pc_rec r = { .type = PC_TRUNC, .file = id };

		pc_record(&r, NULL, 0);
	}
	pthread_mutex_unlock(&pc_lock);
}

/* After a successful write of n bytes at off (-1: at the fd's position). */
static ssize_t
pc_wrote(int fd, const struct iovec *iov, int iovcnt, off_t off, ssize_t n, int rwflags)
{
	int saved = errno;
	uint32_t f;

	if (n <= 0 || !pc_ready())
		return n;
	pthread_mutex_lock(&pc_lock);
	f = pc_file(fd);
	if (f) {
		struct pc_rec r = { .type = PC_WRITE, .file = f - 1, .len = (uint64_t)n };

		r.off = (uint64_t)(off >= 0 ? off : lseek(fd, 0, SEEK_CUR) - n);
		if (pc_fd_dsync[fd] || (rwflags & (RWF_DSYNC | RWF_SYNC)))
			r.flags = PC_DURABLE;
		pc_record(&r, iov, iovcnt);
	}
	pthread_mutex_unlock(&pc_lock);
	errno = saved;
	return n;
}

/* Journal a metadata change of fd (truncate, fallocate) if it succeeded. */
static int
pc_changed(int fd, int rc, struct pc_rec r)
{
	int saved = errno;
	uint32_t f;

	if (rc != 0 || !pc_ready())
		return rc;
	pthread_mutex_lock(&pc_lock);
	f = pc_file(fd);
	if (f) {
		r.file = f - 1;
		pc_record(&r, NULL, 0);
	}
	pthread_mutex_unlock(&pc_lock);
	errno = saved;
	return rc;
}

/* The journal's length before a sync of fd starts (every file: fd < 0),
 * or UINT64_MAX when the sync is nothing to record. */
static uint64_t
pc_sync_begin(int fd)
{
	uint64_t pos = UINT64_MAX;

	if (!pc_ready())
		return pos;
	pthread_mutex_lock(&pc_lock);
	if (fd < 0 || pc_file(fd))
		pos = pc_pos;
	pthread_mutex_unlock(&pc_lock);
	return pos;
}

static int
pc_sync_end(int fd, uint64_t pos, int rc)
{
	int saved = errno;
	struct pc_rec r = { .type = fd < 0 ? PC_SYNCALL : PC_SYNC, .arg = pos };

	if (rc != 0 || pos == UINT64_MAX)
		return rc;
	pthread_mutex_lock(&pc_lock);
	r.file = fd < 0 ? 0 : pc_file(fd) - 1;
	pc_record(&r, NULL, 0);
	pthread_mutex_unlock(&pc_lock);
	errno = saved;
	return rc;
}

static int
pc_mode(int flags, va_list ap)
{
	return flags & (O_CREAT | O_TMPFILE) ? va_arg(ap, int) : 0;
}

PC_EXPORT int
openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	int mode, fd;

	va_start(ap, flags);
	mode = pc_mode(flags, ap);
	va_end(ap);
	char abs[PATH_MAX];
	struct stat st;
	bool create;

	pthread_once(&pc_once, pc_init);
	create = pc_active && (flags & O_CREAT) &&
		 fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT &&
		 pc_abs(dirfd, path, abs);
	fd = real_openat(dirfd, path, flags, mode);
	if (fd >= 0 && create)
		pc_name(PC_CREATE, abs, NULL);
	pc_track(fd, flags);
	return fd;
}

PC_EXPORT int
open(const char *path, int flags, ...)
{
	va_list ap;
	int mode;

	va_start(ap, flags);
	mode = pc_mode(flags, ap);
	va_end(ap);
	return openat(AT_FDCWD, path, flags, mode);
}

PC_EXPORT int open64(const char *path, int flags, ...) __attribute__((alias("open")));
PC_EXPORT int openat64(int dirfd, const char *path, int flags, ...)
	__attribute__((alias("openat")));

PC_EXPORT int
creat(const char *path, mode_t mode)
{
	return open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
}

/* The names: each path is resolved before the call (pc_before), and the
 * change journaled once the call succeeded (pc_after). */
static bool
pc_before(int dirfd, const char *path, char *abs)
{
	pthread_once(&pc_once, pc_init);
	return pc_active && pc_abs(dirfd, path, abs);
}

static int
pc_after(int rc, bool known, enum pc_type type, const char *a, const char *b)
{
	if (rc == 0 && known)
		pc_name(type, a, b);
	return rc;
}

/* unlinkat (arg: its flags) or mkdirat (arg: the mode). */
static int
pc_one_name(enum pc_type type, int dirfd, const char *path, int arg)
{
	char abs[PATH_MAX];
	bool known = pc_before(dirfd, path, abs);
	int rc = type == PC_UNLINK ? real_unlinkat(dirfd, path, arg)
				   : real_mkdirat(dirfd, path, (mode_t)arg);

	return pc_after(rc, known, type, abs, NULL);
}

PC_EXPORT int
unlinkat(int dirfd, const char *path, int flags)
{
	return pc_one_name(PC_UNLINK, dirfd, path, flags);
}

PC_EXPORT int
unlink(const char *path)
{
	return unlinkat(AT_FDCWD, path, 0);
}

PC_EXPORT int
rmdir(const char *path)
{
	return unlinkat(AT_FDCWD, path, AT_REMOVEDIR);
}

PC_EXPORT int
renameat2(int olddir, const char *oldpath, int newdir, const char *newpath, unsigned flags)
{
	char a[PATH_MAX], b[PATH_MAX];
	bool known = pc_before(olddir, oldpath, a) && pc_before(newdir, newpath, b);

	return pc_after(real_renameat2(olddir, oldpath, newdir, newpath, flags), known, PC_RENAME,
			a, b);
}

PC_EXPORT int
renameat(int olddir, const char *oldpath, int newdir, const char *newpath)
{
	return renameat2(olddir, oldpath, newdir, newpath, 0);
}

PC_EXPORT int
rename(const char *oldpath, const char *newpath)
{
	return renameat2(AT_FDCWD, oldpath, AT_FDCWD, newpath, 0);
}

PC_EXPORT int
mkdirat(int dirfd, const char *path, mode_t mode)
{
	return pc_one_name(PC_MKDIR, dirfd, path, (int)mode);
}

PC_EXPORT int
mkdir(const char *path, mode_t mode)
{
	return mkdirat(AT_FDCWD, path, mode);
}

PC_EXPORT int
close(int fd)
{
	pthread_once(&pc_once, pc_init);
	if (fd >= 0 && fd < PC_MAX_FD) {
		pthread_mutex_lock(&pc_lock);
		pc_fd_file[fd] = 0;
		pthread_mutex_unlock(&pc_lock);
	}
	return real_close(fd);
}

PC_EXPORT ssize_t
write(int fd, const void *buf, size_t len)
{
	struct iovec iov = { (void *)buf, len };

	pthread_once(&pc_once, pc_init);
	return pc_wrote(fd, &iov, 1, -1, real_write(fd, buf, len), 0);
}

PC_EXPORT ssize_t
writev(int fd, const struct iovec *iov, int iovcnt)
{
	pthread_once(&pc_once, pc_init);
	return pc_wrote(fd, iov, iovcnt, -1, real_writev(fd, iov, iovcnt), 0);
}

PC_EXPORT ssize_t
pwrite(int fd, const void *buf, size_t len, off_t off)
{
	struct iovec iov = { (void *)buf, len };

	pthread_once(&pc_once, pc_init);
	return pc_wrote(fd, &iov, 1, off, real_pwrite(fd, buf, len, off), 0);
}

PC_EXPORT ssize_t
pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	pthread_once(&pc_once, pc_init);
	return pc_wrote(fd, iov, iovcnt, off, real_pwritev(fd, iov, iovcnt, off), 0);
}

PC_EXPORT ssize_t
pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t off, int flags)
{
	pthread_once(&pc_once, pc_init);
	return pc_wrote(fd, iov, iovcnt, off, real_pwritev2(fd, iov, iovcnt, off, flags), flags);
}

PC_EXPORT ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
	__attribute__((alias("pwrite")));
PC_EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt, off_t off)
	__attribute__((alias("pwritev")));
PC_EXPORT ssize_t pwritev64v2(int fd, const struct iovec *iov, int iovcnt, off_t off, int flags)
	__attribute__((alias("pwritev2")));

PC_EXPORT int
fsync(int fd)
{
	uint64_t pos = pc_sync_begin(fd);

	return pc_sync_end(fd, pos, real_fsync(fd));
}

PC_EXPORT int
fdatasync(int fd)
{
	uint64_t pos = pc_sync_begin(fd);

	return pc_sync_end(fd, pos, real_fdatasync(fd));
}

PC_EXPORT void
sync(void)
{
	uint64_t pos = pc_sync_begin(-1);

	real_sync();
	pc_sync_end(-1, pos, 0);
}

PC_EXPORT int
syncfs(int fd)
{
	uint64_t pos = pc_sync_begin(-1);

	return pc_sync_end(-1, pos, real_syncfs(fd));
}

PC_EXPORT int
ftruncate(int fd, off_t len)
{
	pthread_once(&pc_once, pc_init);
	return pc_changed(fd, real_ftruncate(fd, len),
			  (struct pc_rec){ .type = PC_TRUNC, .off = (uint64_t)len });
}

PC_EXPORT int
fallocate(int fd, int mode, off_t off, off_t len)
{
	pthread_once(&pc_once, pc_init);
	return pc_changed(fd, real_fallocate(fd, mode, off, len),
			  (struct pc_rec){ .type = PC_FALLOC, .off = (uint64_t)off,
					   .len = (uint64_t)len, .arg = (uint64_t)mode });
}

PC_EXPORT int ftruncate64(int fd, off_t len) __attribute__((alias("ftruncate")));
PC_EXPORT int fallocate64(int fd, int mode, off_t off, off_t len)
	__attribute__((alias("fallocate")));

PC_EXPORT void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	pthread_once(&pc_once, pc_init);
	if (pc_active && (prot & PROT_WRITE) && (flags & MAP_SHARED)) {
		pthread_mutex_lock(&pc_lock);
		if (pc_file(fd)) {
			errno = ENOTSUP;
			pc_die("shared writable mapping of a tracked file");
		}
		pthread_mutex_unlock(&pc_lock);
	}
	return real_mmap(addr, len, prot, flags, fd, off);
}

PC_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
	__attribute__((alias("mmap")));

/* No rings: the layer backend falls back to the syscalls seen above. */
PC_EXPORT int
io_uring_queue_init(unsigned entries, struct io_uring *ring, unsigned flags)
{
	int (*real)(unsigned, struct io_uring *, unsigned);

	if (pc_ready())
		return -ENOSYS;
	real = pc_sym("io_uring_queue_init");
	return real(entries, ring, flags);
}

/* isocache opens layer files with openat2 (vdisk/beneath.c), which libc
 * reaches only through syscall(2): track what it opens as for openat.
 * syscall's callers pass up to six word-sized arguments; like libc's own
 * syscall, forward six. */
PC_EXPORT long
syscall(long nr, ...)
{
	static long (*real_syscall)(long, ...);
	va_list ap;
	long a[6], r;

	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	pthread_once(&pc_once, pc_init);
	if (!real_syscall)
		real_syscall = pc_sym("syscall");
	r = real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	if (nr == SYS_openat2 && r >= 0)
		pc_track((int)r, (int)((const struct open_how *)a[2])->flags);
	return r;
}
