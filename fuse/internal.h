/* Private to fuse/: the table of images (files.c) and the lowlevel
 * operations (fs.c) that isocache-fuse's main.c puts together. */
#ifndef IC_FUSE_INTERNAL_H
#define IC_FUSE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <fuse_lowlevel.h>

#include "common/iostats.h"
#include "isocache/vdisk.h"

#define FS_ROOT_INO FUSE_ROOT_ID
#define FS_MAX_IO (1u << 20) /* max_read and max_write */

/* One image of the store, one file of the mount. Entries are never freed
 * while mounted, so an inode number always names the same image: ino is
 * fixed by the name, whatever happens to its layers underneath. */
struct files_entry {
	fuse_ino_t ino;
	char name[2 * IC_NAME_MAX + 2];
	bool snapshot;

	/* From the last listing of the store; protected by the table's mu. */
	bool present;
	uint64_t size;
	uint64_t leaf_id;
	struct timespec mtime; /* last write through this mount, else creation */

	/* I/O holds io_lock shared while it uses vd; opening and releasing
	 * hold it exclusive while they swap vd. vd is writable (this process
	 * owns the vdisk) while nrw > 0, read-only while only nro > 0, NULL
	 * when neither. */
	pthread_rwlock_t io_lock;
	struct ic_vdisk *vd;
	unsigned nrw, nro;

	/* For --metrics (metrics.c): requests, ownership taken and given, and
	 * reads whose bytes went to the kernel by splice (fs.c). */
	struct ic_iostats io;
	_Atomic uint64_t claims, releases, spliced;
};

struct files {
	struct ic_store *store;
	struct ic_stack *stack;      /* may be NULL */
	unsigned open_flags;         /* IC_OPEN_DIRECT for --cache none */
	bool readonly;               /* --read-only: never claim a vdisk */
	struct fuse_session *se;     /* for cache invalidation; set once mounted */

	pthread_mutex_t mu;          /* the array and every entry's listing fields */
	struct files_entry **ent;    /* ino = index + 2 */
	size_t n, cap;
	struct timespec dir_mtime;   /* last time the listing changed */
	struct ic_metrics *metrics;  /* --metrics, reading the entries */
};

/* ---- files.c ---- */
int files_init(struct files *f, struct ic_store *store, struct ic_stack *stack,
	       unsigned open_flags, bool readonly);
/* Flush and close every open vdisk (logging failures) and free the table.
 * Returns the number of vdisks whose final flush failed. */
int files_fini(struct files *f);
/* Bring the table up to date with the store's images. */
int files_refresh(struct files *f);
/* The entry of a present image by name or by inode, or NULL. */
struct files_entry *files_find(struct files *f, const char *name);
struct files_entry *files_get(struct files *f, fuse_ino_t ino);
/* The i-th present entry for readdir (i counts present entries), or NULL. */
struct files_entry *files_nth(struct files *f, size_t i);
/* stat of an entry: mode, size, blocks from the allocation, mtime. */
int files_stat(struct files *f, struct files_entry *e, struct stat *st);
void files_root_stat(struct files *f, struct stat *st);

/* An open(2) of the file: write claims the vdisk when this process holds no
 * writable handle yet; a read-only open refreshes the read-only view.
 * Returns 0 or -errno (-EBUSY when another process owns the vdisk). */
int files_open(struct files *f, struct files_entry *e, bool write);
/* The last release(2) of a file handle. */
void files_release(struct files *f, struct files_entry *e, bool write);

/* Use e's vdisk for one I/O: returns it with io_lock held shared (NULL,
 * unlocked, if none is open); files_io_end drops the lock. */
struct ic_vdisk *files_io_begin(struct files_entry *e);
void files_io_end(struct files_entry *e);
/* Drop the kernel's cached pages of e (its ownership changed). Call with
 * no lock held. */
void files_invalidate(struct files *f, struct files_entry *e);
/* Record a change of the contents (mtime). */
void files_touch(struct files *f, struct files_entry *e);

/* ---- metrics.c ---- */
/* Serve f's per-image counters on --metrics ADDR (where NULL: none), until
 * files_fini stops it first thing. Returns 0 or -errno (logged). */
int files_metrics_start(struct files *f, const char *where);

/* ---- fs.c ---- */
extern const struct fuse_lowlevel_ops fs_ops;

/* What fs.c needs from the command line. */
struct fs_config {
	struct files files;
	bool direct_io; /* -o direct_io: bypass the kernel's page cache */
};

#endif
