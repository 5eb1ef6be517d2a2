/* The FUSE lowlevel operations: a flat directory with one regular file
 * per image of the store, and byte I/O on those files passed to the vdisk
 * core. Called from libfuse's worker threads, many at once.
 *
 * Errors: the library's negative errno goes back to the kernel as is,
 * except -ESTALE (this process was fenced: another one took the vdisk
 * over), which a file system reports as EROFS. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "common/cleanup.h"
#include "common/pipe.h"
#include "fuse/internal.h"

#define FS_TIMEOUT 1.0 /* seconds the kernel may cache names and attributes */

static struct fs_config *
fs_config(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static int
fs_errno(int rc)
{
	return rc == -ESTALE ? EROFS : -rc;
}

/* The entry behind a file inode, if its image still exists. */
static struct files_entry *
fs_entry(fuse_req_t req, fuse_ino_t ino)
{
	struct files_entry *e = files_get(&fs_config(req)->files, ino);

	if (!e)
		fuse_reply_err(req, ino == FS_ROOT_INO ? EISDIR : ENOENT);
	return e;
}

/* The file handle remembers whether it was opened for write. */
static bool
fs_fh_writable(const struct fuse_file_info *fi)
{
	return fi->fh != 0;
}

static void
fs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->max_write = FS_MAX_IO;
	conn->max_readahead = FS_MAX_IO;
	/* A write must reach the vdisk before it is acknowledged, or an
	 * ownership handoff could lose it (docs/ARCHITECTURE.md §6). */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
	/* fs_read_pipe's replies go to /dev/fuse by splice (libfuse uses it
	 * only for replies of fuse_reply_data with a descriptor). */
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
}

static void
fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct files *f = &fs_config(req)->files;
	struct fuse_entry_param ep = { .attr_timeout = FS_TIMEOUT, .entry_timeout = FS_TIMEOUT };
	struct files_entry *e;
	int rc;

	if (parent != FS_ROOT_INO) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	rc = files_refresh(f);
	e = rc == 0 ? files_find(f, name) : NULL;
	if (rc == 0 && !e)
		rc = -ENOENT;
	if (rc == 0)
		rc = files_stat(f, e, &ep.attr);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	ep.ino = e->ino;
	fuse_reply_entry(req, &ep);
}

static void
fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct files *f = &fs_config(req)->files;
	struct files_entry *e;
	struct stat st;
	int rc;

	(void)fi;
	if (ino == FS_ROOT_INO) {
		files_root_stat(f, &st);
		fuse_reply_attr(req, &st, FS_TIMEOUT);
		return;
	}
	e = fs_entry(req, ino);
	if (!e)
		return;
	rc = files_stat(f, e, &st);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, FS_TIMEOUT);
}

/* The virtual size is fixed: truncate(2) and O_TRUNC fail with EPERM
 * ("isocache-admin resize" changes it). Setting the times is accepted (tar
 * and cp -p do it) and kept as the mtime until the next write. Owner and
 * mode belong to the mount, so chmod and chown fail with EPERM too. */
static void
fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
	   struct fuse_file_info *fi)
{
	struct files *f = &fs_config(req)->files;
	struct files_entry *e;
	struct stat st;
	int rc;

	if (ino == FS_ROOT_INO) {
		fuse_reply_err(req, EPERM);
		return;
	}
	e = fs_entry(req, ino);
	if (!e)
		return;
	rc = files_stat(f, e, &st);
	if (rc == 0 && (to_set & FUSE_SET_ATTR_SIZE) && attr->st_size != st.st_size)
		rc = -EPERM;
	if (rc == 0 && (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		rc = -EPERM;
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
		files_touch(f, e);
		if (to_set & FUSE_SET_ATTR_MTIME) {
			pthread_mutex_lock(&f->mu);
			e->mtime = attr->st_mtim;
			pthread_mutex_unlock(&f->mu);
		}
	}
	fs_getattr(req, ino, fi);
}

static void
fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct files *f = &fs_config(req)->files;
	IC_AUTOFREE char *buf = NULL;
	size_t used = 0;
	int rc;

	(void)fi;
	if (ino != FS_ROOT_INO) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	/* Offsets: 1 after ".", 2 after "..", 3 + i after the i-th image. */
	if (off == 0 && (rc = files_refresh(f)) < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (;; off++) {
		struct stat st = { 0 };
		const char *name;
		struct files_entry *e = NULL;
		size_t need;

		if (off < 2) {
			name = off == 0 ? "." : "..";
			st.st_ino = FS_ROOT_INO;
			st.st_mode = S_IFDIR;
		} else {
			e = files_nth(f, (size_t)off - 2);
			if (!e)
				break;
			name = e->name;
			st.st_ino = e->ino;
			st.st_mode = S_IFREG;
		}
		need = fuse_add_direntry(req, buf + used, size - used, name, &st, off + 1);
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
}

static void
fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_config *cfg = fs_config(req);
	bool write = (fi->flags & O_ACCMODE) != O_RDONLY;
	struct files_entry *e = fs_entry(req, ino);
	int rc;

	if (!e)
		return;
	rc = files_open(&cfg->files, e, write);
	if (rc < 0) {
		fuse_reply_err(req, fs_errno(rc));
		return;
	}
	fi->fh = write;
	fi->direct_io = cfg->direct_io;
	/* Pages cached before this open may predate another owner's writes. */
	fi->keep_cache = 0;
	if (fuse_reply_open(req, fi) == -ENOENT)
		files_release(&cfg->files, e, write); /* the opener was interrupted */
}

static void
fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct files_entry *e = fs_entry(req, ino);

	if (!e)
		return;
	files_release(&fs_config(req)->files, e, fs_fh_writable(fi));
	fuse_reply_err(req, 0);
}

/* Reads larger than FS_PIPE_MIN, up to FS_PIPE_MAX, try fs_read_pipe
 * first. libfuse splices a reply only when its own pipe holds the reply's
 * data, header and three pages more, and a pipe holds at most 1 MiB
 * (/proc/sys/fs/pipe-max-size): it read a 1 MiB reply out of our pipe
 * into memory and wrote that, two copies again. */
#define FS_PIPE_MIN (64u << 10)
#define FS_PIPE_MAX (FS_MAX_IO / 2)

/* What each worker thread keeps for reads, made at its first read and
 * freed when libfuse retires the thread: a buffer for read replies, up to
 * max_read, and a pipe for fs_read_pipe, FS_PIPE_MAX long. */
struct fs_thread {
	char buf[FS_MAX_IO];
	struct ic_pipe pipe;
};

static pthread_key_t fs_thread_key;
static pthread_once_t fs_thread_once = PTHREAD_ONCE_INIT;

static void
fs_thread_free(void *arg)
{
	struct fs_thread *t = arg;

	ic_pipe_fini(&t->pipe);
	free(t);
}

static void
fs_thread_key_make(void)
{
	pthread_key_create(&fs_thread_key, fs_thread_free);
}

static struct fs_thread *
fs_thread(void)
{
	struct fs_thread *t;

	pthread_once(&fs_thread_once, fs_thread_key_make);
	t = pthread_getspecific(fs_thread_key);
	if (!t) {
		/* Page-aligned: a layer opened O_DIRECT (--cache none) reads into
		 * an aligned buffer only, and into any other through the page
		 * cache (vdisk/backend.c). */
		if (posix_memalign((void **)&t, 4096, sizeof(*t)))
			return NULL;
		if (pthread_setspecific(fs_thread_key, t)) {
			free(t);
			return NULL;
		}
		t->pipe = (struct ic_pipe){ .state = 0 };
	}
	return t;
}

/* Answer a read of [off, off + size) of vd without copying its bytes, when
 * every one is a block isocached holds for a frozen layer, or does once it
 * filled them (ic_vdisk_pread_pipe): the pipe takes references to the
 * daemon's pages and libfuse splices them into /dev/fuse, where the
 * kernel copies them to the reader. false: not answered (the caller reads
 * the usual way). The pages stay right in the pipe (docs/CACHED.md,
 * "Spliced reads"). */
static bool
fs_read_pipe(fuse_req_t req, struct files_entry *e, struct ic_vdisk *vd, struct fs_thread *t,
	     size_t size, off_t off)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

	if (size <= FS_PIPE_MIN || size > FS_PIPE_MAX || !ic_pipe_ready(&t->pipe, FS_PIPE_MAX))
		return false;
	if (ic_vdisk_pread_pipe(vd, t->pipe.fd[1], size, (uint64_t)off, true) < 0) {
		ic_pipe_drain(&t->pipe, t->buf, FS_PIPE_MAX);
		return false;
	}
	bv.buf[0].flags = FUSE_BUF_IS_FD;
	bv.buf[0].fd = t->pipe.fd[0];
	if (fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE) < 0)
		ic_pipe_drain(&t->pipe, t->buf, FS_PIPE_MAX); /* the reader is gone */
	atomic_fetch_add_explicit(&e->spliced, 1, memory_order_relaxed);
	return true;
}

/* Clip [off, off + *len) to the disk; returns false when it starts past the end. */
static bool
fs_clip(const struct ic_vdisk *vd, off_t off, size_t *len)
{
	uint64_t size = ic_vdisk_size(vd);

	if (off < 0 || (uint64_t)off >= size) {
		*len = 0;
		return false;
	}
	if (*len > size - (uint64_t)off)
		*len = size - (uint64_t)off;
	return true;
}

static void
fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct files_entry *e = fs_entry(req, ino);
	struct ic_vdisk *vd;
	struct fs_thread *t = fs_thread();
	uint64_t t0 = ic_iostats_now();
	int rc = 0;

	(void)fi;
	if (!e)
		return;
	if (!t || size > FS_MAX_IO) {
		fuse_reply_err(req, t ? EINVAL : ENOMEM);
		return;
	}
	vd = files_io_begin(e);
	if (!vd) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if (fs_clip(vd, off, &size) && fs_read_pipe(req, e, vd, t, size, off)) {
		ic_iostats_done(&e->io, IC_IO_READ, size, t0, 0);
		files_io_end(e);
		return;
	}
	if (size)
		rc = ic_iostats_done(&e->io, IC_IO_READ, size, t0,
				     ic_vdisk_pread(vd, t->buf, size, (uint64_t)off));
	files_io_end(e);
	if (rc < 0)
		fuse_reply_err(req, fs_errno(rc));
	else
		fuse_reply_buf(req, t->buf, size);
}

/* Run one data-changing call on e's writable vdisk and update its mtime. */
enum fs_change { FS_WRITE, FS_TRIM, FS_ZERO };
static const enum ic_io_op fs_change_ops[] = { IC_IO_WRITE, IC_IO_TRIM, IC_IO_ZERO };

static int
fs_change(fuse_req_t req, struct files_entry *e, enum fs_change op, const char *buf,
	  size_t *len, off_t off, uint32_t flags)
{
	struct files *f = &fs_config(req)->files;
	struct ic_vdisk *vd = files_io_begin(e);
	int rc = 0;

	if (!vd)
		return -EBADF;
	if (ic_vdisk_readonly(vd)) {
		rc = -EBADF;
	} else if (!fs_clip(vd, off, len)) {
		rc = op == FS_WRITE ? -EFBIG : 0;
	} else {
		uint64_t t0 = ic_iostats_now();

		switch (op) {
		case FS_WRITE: rc = ic_vdisk_pwrite(vd, buf, *len, (uint64_t)off, flags); break;
		case FS_TRIM: rc = ic_vdisk_trim(vd, *len, (uint64_t)off, flags); break;
		case FS_ZERO: rc = ic_vdisk_zero(vd, *len, (uint64_t)off, flags); break;
		}
		ic_iostats_done(&e->io, fs_change_ops[op], *len, t0, rc);
	}
	files_io_end(e);
	if (rc == 0 && *len)
		files_touch(f, e);
	/* Fenced: another process owns the vdisk now and writes it. */
	if (rc == -ESTALE)
		files_invalidate(f, e);
	return rc;
}

static void
fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	 struct fuse_file_info *fi)
{
	struct files_entry *e = fs_entry(req, ino);
	uint32_t flags = fi->flags & (O_DSYNC | O_SYNC) ? IC_REQ_FUA : 0;
	int rc;

	if (!e)
		return;
	rc = fs_change(req, e, FS_WRITE, buf, &size, off, flags);
	if (rc < 0)
		fuse_reply_err(req, fs_errno(rc));
	else
		fuse_reply_write(req, size);
}

/* Keep the size in every mode: PUNCH_HOLE (with KEEP_SIZE, as the kernel
 * requires) trims, ZERO_RANGE writes zeroes; both read as zeroes after.
 * Plain allocation cannot be promised by a thin disk: EOPNOTSUPP. */
static void
fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
	     struct fuse_file_info *fi)
{
	struct files_entry *e = fs_entry(req, ino);
	size_t n = len > 0 ? (size_t)len : 0;
	int rc;

	(void)fi;
	if (!e)
		return;
	if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE))
		rc = fs_change(req, e, FS_TRIM, NULL, &n, off, 0);
	else if ((mode & ~FALLOC_FL_KEEP_SIZE) == FALLOC_FL_ZERO_RANGE)
		rc = fs_change(req, e, FS_ZERO, NULL, &n, off, 0);
	else
		rc = -EOPNOTSUPP;
	fuse_reply_err(req, rc < 0 ? fs_errno(rc) : 0);
}

/* fsync and fdatasync: every acknowledged write becomes durable, data
 * first, then the map (docs/ARCHITECTURE.md §7, invariant 2). */
static void
fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct files_entry *e = fs_entry(req, ino);
	struct ic_vdisk *vd;
	int rc = 0;

	(void)datasync;
	(void)fi;
	if (!e)
		return;
	/* Any descriptor may ask, as with fsync(2) on a local file. */
	vd = files_io_begin(e);
	if (vd) {
		uint64_t t0 = ic_iostats_now();

		if (!ic_vdisk_readonly(vd))
			rc = ic_iostats_done(&e->io, IC_IO_FLUSH, 0, t0, ic_vdisk_flush(vd));
		files_io_end(e);
	}
	fuse_reply_err(req, rc < 0 ? fs_errno(rc) : 0);
}

/* SEEK_DATA / SEEK_HOLE from the chain's allocation: data is what some
 * layer holds; holes are clusters nothing wrote and zero extents. */
struct fs_seek {
	bool want_data;
	uint64_t found;
};

static int
fs_seek_extent(void *arg, const struct ic_extent *x)
{
	struct fs_seek *s = arg;

	if ((x->depth >= 0) == s->want_data) {
		s->found = x->off;
		return 1;
	}
	return 0;
}

static void
fs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	struct files_entry *e = fs_entry(req, ino);
	struct fs_seek s = { .want_data = whence == SEEK_DATA };
	struct ic_vdisk *vd;
	uint64_t size;
	int rc;

	(void)fi;
	if (!e)
		return;
	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	vd = files_io_begin(e);
	if (!vd) {
		fuse_reply_err(req, EBADF);
		return;
	}
	size = ic_vdisk_size(vd);
	if (off < 0 || (uint64_t)off >= size) {
		files_io_end(e);
		fuse_reply_err(req, ENXIO);
		return;
	}
	rc = ic_vdisk_extents(vd, (uint64_t)off, size - (uint64_t)off, fs_seek_extent, &s);
	files_io_end(e);
	if (rc < 0) {
		fuse_reply_err(req, fs_errno(rc));
	} else if (rc == 0 && s.want_data) {
		fuse_reply_err(req, ENXIO);
	} else {
		/* The virtual end of the disk is the last hole. */
		uint64_t at = rc ? s.found : size;

		fuse_reply_lseek(req, (off_t)(at > (uint64_t)off ? at : (uint64_t)off));
	}
}

static void
fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	if (statvfs(ic_store_dir(fs_config(req)->files.store), &sv) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	sv.f_namemax = 2 * IC_NAME_MAX + 1;
	fuse_reply_statfs(req, &sv);
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_init,
	.lookup = fs_lookup,
	.getattr = fs_getattr,
	.setattr = fs_setattr,
	.readdir = fs_readdir,
	.open = fs_open,
	.release = fs_release,
	.read = fs_read,
	.write = fs_write,
	.fsync = fs_fsync,
	.fallocate = fs_fallocate,
	.lseek = fs_lseek,
	.statfs = fs_statfs,
};
