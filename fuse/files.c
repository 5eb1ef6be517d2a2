/* The table of images shown by the mount and the vdisk handles behind
 * them.
 *
 * One ic_vdisk per image is shared by every file handle of this process:
 * the library allows one writable handle per vdisk per host, and sharing
 * also lets readers of a vdisk this process writes see its latest bytes.
 * The handle is writable while some file handle was opened for write and
 * read-only otherwise; switching between the two happens under the
 * entry's io_lock held exclusive, so no I/O uses a handle being closed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/metrics.h"
#include "fuse/internal.h"

#define FILES_FIRST_INO 2

int
files_init(struct files *f, struct ic_store *store, struct ic_stack *stack,
	   unsigned open_flags, bool readonly)
{
	*f = (struct files){
		.store = store,
		.stack = stack,
		.open_flags = open_flags,
		.readonly = readonly,
	};
	pthread_mutex_init(&f->mu, NULL);
	clock_gettime(CLOCK_REALTIME, &f->dir_mtime);
	return files_refresh(f);
}

int
files_fini(struct files *f)
{
	int failed = 0;

	ic_metrics_stop(f->metrics); /* it reads the entries */
	f->metrics = NULL;
	for (size_t i = 0; i < f->n; i++) {
		struct files_entry *e = f->ent[i];

		if (e->vd) {
			int rc = ic_vdisk_close(e->vd);

			if (rc < 0) {
				ic_log(IC_LOG_ERR, "%s: final flush failed: %s", e->name,
				       strerror(-rc));
				failed++;
			} else if (e->nrw) {
				ic_log(IC_LOG_INFO, "%s: flushed and released", e->name);
			}
		}
		pthread_rwlock_destroy(&e->io_lock);
		free(e);
	}
	free(f->ent);
	pthread_mutex_destroy(&f->mu);
	return failed;
}

/* The entry called name, present or not; f->mu held. */
static struct files_entry *
files_lookup_locked(struct files *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->ent[i]->name, name) == 0)
			return f->ent[i];
	return NULL;
}

static struct files_entry *
files_add_locked(struct files *f, const char *name)
{
	pthread_rwlockattr_t attr;
	struct files_entry *e;

	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 16;
		struct files_entry **grown = realloc(f->ent, cap * sizeof(*grown));

		if (!grown)
			return NULL;
		f->ent = grown;
		f->cap = cap;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->ino = FILES_FIRST_INO + f->n;
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->snapshot = strchr(name, '@') != NULL;
	/* Writers first: a steady stream of reads must not starve an open or
	 * a release (no path takes io_lock twice, so this cannot deadlock). */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&e->io_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	f->ent[f->n++] = e;
	return e;
}

/* Snapshots and clones made by isocache-admin while mounted appear here:
 * lookup and readdir call this before they answer. */
int
files_refresh(struct files *f)
{
	struct ic_layer_info *layers;
	size_t count;
	bool changed = false;
	int rc = ic_store_layers(f->store, &layers, &count);

	if (rc < 0)
		return rc;
	IC_LOCK_SCOPE(&f->mu);
	for (size_t i = 0; i < f->n; i++)
		f->ent[i]->present = false;
	for (size_t i = 0; i < count; i++) {
		const struct ic_layer_info *l = &layers[i];
		struct files_entry *e;

		if (!l->name[0])
			continue;
		e = files_lookup_locked(f, l->name);
		if (!e) {
			e = files_add_locked(f, l->name);
			if (!e) {
				rc = -ENOMEM;
				break;
			}
			changed = true;
		}
		if (e->leaf_id != l->disk_id)
			e->mtime = (struct timespec){ .tv_sec = (time_t)l->created };
		e->present = true;
		e->size = l->size;
		e->leaf_id = l->disk_id;
	}
	for (size_t i = 0; i < f->n && !changed; i++)
		changed = !f->ent[i]->present && f->ent[i]->leaf_id;
	for (size_t i = 0; i < f->n; i++)
		if (!f->ent[i]->present)
			f->ent[i]->leaf_id = 0;
	if (changed)
		clock_gettime(CLOCK_REALTIME, &f->dir_mtime);
	free(layers);
	return rc;
}

struct files_entry *
files_find(struct files *f, const char *name)
{
	struct files_entry *e;

	IC_LOCK_SCOPE(&f->mu);
	e = files_lookup_locked(f, name);
	return e && e->present ? e : NULL;
}

struct files_entry *
files_get(struct files *f, fuse_ino_t ino)
{
	IC_LOCK_SCOPE(&f->mu);
	if (ino < FILES_FIRST_INO || ino - FILES_FIRST_INO >= f->n)
		return NULL;
	return f->ent[ino - FILES_FIRST_INO];
}

struct files_entry *
files_nth(struct files *f, size_t i)
{
	IC_LOCK_SCOPE(&f->mu);
	for (size_t j = 0; j < f->n; j++)
		if (f->ent[j]->present && i-- == 0)
			return f->ent[j];
	return NULL;
}

static int
files_count_data(void *arg, const struct ic_extent *x)
{
	if (x->depth >= 0)
		*(uint64_t *)arg += x->len;
	return 0;
}

/* Bytes of e that some layer of its chain holds as data. Uses the open
 * handle when there is one (it sees unflushed allocations), else a
 * short-lived read-only one without filters. */
static int
files_allocated(struct files *f, struct files_entry *e, uint64_t size, uint64_t *out)
{
	struct ic_vdisk *vd = files_io_begin(e);
	int rc;

	*out = 0;
	if (size == 0) {
		if (vd)
			files_io_end(e);
		return 0;
	}
	if (vd) {
		rc = ic_vdisk_extents(vd, 0, size, files_count_data, out);
		files_io_end(e);
		return rc;
	}
	rc = ic_vdisk_open(f->store, e->name, IC_OPEN_RDONLY, NULL, &vd);
	if (rc < 0)
		return rc;
	rc = ic_vdisk_extents(vd, 0, ic_vdisk_size(vd), files_count_data, out);
	ic_vdisk_close(vd);
	return rc;
}

/* An image's mode: the store's (0600, or 0640 when it is shared with a
 * group), read bits only when read-only. A mount never shows a disk to
 * more users than its store does: with -o allow_other (and so
 * default_permissions) other users are held to it. */
static mode_t
files_mode(const struct files *f, bool readonly)
{
	mode_t mode = (mode_t)ic_store_file_mode(f->store);

	return readonly ? mode & 0444 : mode;
}

/* The mount's root: searchable by those who may read its files. */
static mode_t
files_dir_mode(const struct files *f)
{
	return ic_store_file_mode(f->store) & 0040 ? 0750 : 0700;
}

int
files_stat(struct files *f, struct files_entry *e, struct stat *st)
{
	uint64_t size, allocated;
	struct timespec mtime;
	int rc;

	pthread_mutex_lock(&f->mu);
	size = e->size;
	mtime = e->mtime;
	rc = e->present ? 0 : -ENOENT;
	pthread_mutex_unlock(&f->mu);
	if (rc == 0)
		rc = files_allocated(f, e, size, &allocated);
	if (rc < 0)
		return rc;
	*st = (struct stat){
		.st_ino = e->ino,
		.st_mode = S_IFREG | files_mode(f, e->snapshot || f->readonly),
		.st_nlink = 1,
		.st_uid = getuid(),
		.st_gid = getgid(),
		.st_size = (off_t)size,
		.st_blksize = (blksize_t)ic_store_cluster_size(f->store),
		.st_blocks = (blkcnt_t)(allocated / 512),
		.st_atim = mtime,
		.st_mtim = mtime,
		.st_ctim = mtime,
	};
	return 0;
}

void
files_root_stat(struct files *f, struct stat *st)
{
	IC_LOCK_SCOPE(&f->mu);
	*st = (struct stat){
		.st_ino = FS_ROOT_INO,
		.st_mode = S_IFDIR | files_dir_mode(f),
		.st_nlink = 2,
		.st_uid = getuid(),
		.st_gid = getgid(),
		.st_atim = f->dir_mtime,
		.st_mtim = f->dir_mtime,
		.st_ctim = f->dir_mtime,
	};
}

/* Drop what the kernel caches of e's pages: its ownership changed, so
 * another process may write it now, or this one may have. Called with no
 * lock held: invalidating waits for pages locked by reads in flight, and
 * those may wait for io_lock. */
void
files_invalidate(struct files *f, struct files_entry *e)
{
	int rc;

	if (!f->se)
		return;
	rc = fuse_lowlevel_notify_inval_inode(f->se, e->ino, 0, 0);
	if (rc < 0 && rc != -ENOENT)
		ic_log(IC_LOG_WARN, "%s: cannot invalidate cached pages: %s", e->name,
		       strerror(-rc));
}

/* Replace e->vd by a fresh read-only handle (io_lock held exclusive). A
 * fresh one loads the leaf's map as last flushed by its owner. */
static int
files_reopen_ro(struct files *f, struct files_entry *e)
{
	struct ic_vdisk *vd;
	int rc = ic_vdisk_open(f->store, e->name, IC_OPEN_RDONLY | f->open_flags, f->stack, &vd);

	if (rc < 0)
		return rc;
	if (e->vd)
		ic_vdisk_close(e->vd);
	e->vd = vd;
	return 0;
}

int
files_open(struct files *f, struct files_entry *e, bool write)
{
	struct ic_vdisk *vd;
	bool claimed = false;
	int rc = 0;

	if (write && (e->snapshot || f->readonly))
		return -EROFS;
	pthread_rwlock_wrlock(&e->io_lock);
	if (write && e->nrw == 0) {
		rc = ic_vdisk_open(f->store, e->name, f->open_flags, f->stack, &vd);
		if (rc == 0) {
			if (e->vd)
				ic_vdisk_close(e->vd);
			e->vd = vd;
			claimed = true;
			/* Open for writing is use: the default release policy
			 * keeps the vdisk until the last writer closes. */
			ic_vdisk_use(vd, 1);
			ic_log(IC_LOG_INFO, "%s: opened for write; this process owns it", e->name);
		}
	} else if (!write && e->nrw == 0) {
		/* Snapshots never change: keep a handle that is already open. */
		if (!e->vd || !e->snapshot)
			rc = files_reopen_ro(f, e);
	}
	if (rc == 0)
		write ? e->nrw++ : e->nro++;
	pthread_rwlock_unlock(&e->io_lock);
	if (claimed) {
		atomic_fetch_add_explicit(&e->claims, 1, memory_order_relaxed);
		files_invalidate(f, e);
	}
	return rc;
}

void
files_release(struct files *f, struct files_entry *e, bool write)
{
	bool released = false;
	int rc;

	pthread_rwlock_wrlock(&e->io_lock);
	write ? e->nrw-- : e->nro--;
	if (write && e->nrw == 0) {
		/* Flush and give up ownership before a reader reopens, so the
		 * read-only handle sees everything written. */
		rc = ic_vdisk_close(e->vd);
		if (rc < 0)
			ic_log(IC_LOG_ERR, "%s: flush at the last close failed: %s", e->name,
			       strerror(-rc));
		e->vd = NULL;
		released = true;
		ic_log(IC_LOG_INFO, "%s: last writer closed; ownership released", e->name);
		if (e->nro && files_reopen_ro(f, e) < 0)
			ic_log(IC_LOG_ERR, "%s: readers lost their handle", e->name);
	} else if (e->nrw == 0 && e->nro == 0 && e->vd) {
		ic_vdisk_close(e->vd);
		e->vd = NULL;
	}
	pthread_rwlock_unlock(&e->io_lock);
	if (released) {
		atomic_fetch_add_explicit(&e->releases, 1, memory_order_relaxed);
		files_invalidate(f, e);
	}
}

struct ic_vdisk *
files_io_begin(struct files_entry *e)
{
	pthread_rwlock_rdlock(&e->io_lock);
	if (!e->vd) {
		pthread_rwlock_unlock(&e->io_lock);
		return NULL;
	}
	return e->vd;
}

void
files_io_end(struct files_entry *e)
{
	pthread_rwlock_unlock(&e->io_lock);
}

void
files_touch(struct files *f, struct files_entry *e)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	IC_LOCK_SCOPE(&f->mu);
	e->mtime = now;
}
