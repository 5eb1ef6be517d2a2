/* Private to meta/: the LMDB backend's environment and databases, and the
 * fixed-width codecs every backend's records use (docs/FORMAT.md). */
#ifndef IC_META_INTERNAL_H
#define IC_META_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <string.h>
#include <sys/types.h>

#include "meta/backend.h"
#include "meta/codec.h"

/* Read transactions are pooled (reset, then renewed) with a cursor per
 * database, so a lookup on the data path allocates nothing. */
#define META_POOL 64

/* The store's reader-writer lock across processes and threads (meta/lock.c):
 * OFD locks on meta.mdb-lock, since LMDB runs with MDB_NOLOCK. */
struct meta_lock {
	int fd;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned readers;	  /* read transactions open in this process */
	unsigned writers_waiting; /* threads of this process waiting to write */
	bool writer;		  /* a write transaction open in this process */
};

struct lmdb_txn {
	struct ic_meta_txn base;
	struct lmdb_meta *meta; /* base.meta's backend */
	MDB_txn *txn;
	MDB_cursor *cur[DB_COUNT]; /* opened on first use */
};

struct lmdb_meta {
	struct ic_meta base;
	MDB_env *env;
	struct meta_lock lock;
	MDB_dbi dbi[DB_COUNT];
	pthread_mutex_t pool_mu;
	struct lmdb_txn *pool[META_POOL];
	unsigned pooled;
	off_t reserved_at; /* the file size when the reserve was last topped up */
};

/* Bytes of blocks kept allocated past the end of the metadata file. */
#define META_RESERVE (2u << 20)

/* Open the lock file path (made with mode when missing), refusing a symbolic link or
 * anything but a regular file, and a store that a process using LMDB's own
 * locking holds (-EBUSY, naming it): 0 or -errno, logged. */
int meta_lock_open(struct meta_lock *l, const char *path, mode_t mode);
void meta_lock_close(struct meta_lock *l);
/* Shared for a read transaction, exclusive for a write one; they wait as
 * long as the other kind is held anywhere. 0 or -errno (logged); a write
 * begun by a thread that holds a transaction of this store fails with
 * -EDEADLK. Each ends on the thread that took it. */
int meta_lock_read(struct meta_lock *l);
void meta_lock_read_end(struct meta_lock *l);
int meta_lock_write(struct meta_lock *l);
void meta_lock_write_end(struct meta_lock *l);

/* LMDB's return codes as negative errno: meta/ translates them at its edge,
 * so no caller sees an MDB_* code. */
int meta_err(int rc);
/* Walk every page of the file's trees and its free list (meta/verify.c):
 * 0, or -EUCLEAN with the damage logged, before LMDB may trust them. */
int meta_verify(struct lmdb_meta *meta, const char *path);
/* Top up the reserve past the end of the metadata file (meta/reserve.c):
 * 0 or -errno (logged when it is the filesystem's lack of space). */
int meta_reserve(struct lmdb_meta *meta);
/* The cursor of txn on db, opened (or renewed) on first use. */
int meta_cursor(struct lmdb_txn *txn, enum meta_db db, MDB_cursor **out);

static inline struct lmdb_txn *
lmdb_txn(struct ic_meta_txn *txn)
{
	return container_of(txn, struct lmdb_txn, base);
}

/* The LMDB backend's ops (meta/meta.c) and their parts elsewhere: records
 * (meta/lmdb_records.c) and extent maps (meta/extents.c). */
extern const struct meta_backend meta_lmdb_ops;
int lmdb_get(struct ic_meta_txn *txn, enum meta_db db, const void *key, size_t klen,
	     struct meta_val *out);
int lmdb_put(struct ic_meta_txn *txn, enum meta_db db, const void *key, size_t klen,
	     const void *val, size_t vlen);
int lmdb_del(struct ic_meta_txn *txn, enum meta_db db, const void *key, size_t klen);
int lmdb_walk(struct ic_meta_txn *txn, enum meta_db db, meta_walk_fn fn, void *arg);
int lmdb_extent_find(struct ic_meta_txn *txn, enum ic_map map, uint64_t disk, uint64_t cluster,
		     struct ic_meta_extent *out);
int lmdb_extent_foreach(struct ic_meta_txn *txn, enum ic_map map, uint64_t disk,
			int (*fn)(void *arg, const struct ic_meta_extent *ext), void *arg);
int lmdb_extent_replace(struct ic_meta_txn *txn, enum ic_map map, uint64_t disk, uint64_t start,
			uint64_t count, const struct ic_meta_extent *ext, size_t n);

#endif
