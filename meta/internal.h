/* Private to meta/: the environment, its databases, and key/value codecs. */
#ifndef IC_META_INTERNAL_H
#define IC_META_INTERNAL_H

#include <endian.h>
#include <lmdb.h>
#include <pthread.h>
#include <string.h>
#include <sys/types.h>

#include "isocache/meta.h"

enum meta_db { DB_INFO, DB_DISKS, DB_NAMES, DB_ALLOC, DB_RESOLVED, DB_OWNERS, DB_COUNT };

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

struct ic_meta_txn {
	struct ic_meta *meta;
	MDB_txn *txn;
	MDB_cursor *cur[DB_COUNT]; /* opened on first use */
	bool write;
};

struct ic_meta {
	MDB_env *env;
	struct meta_lock lock;
	MDB_dbi dbi[DB_COUNT];
	uint32_t cluster_size;
	uint8_t store_uuid[16];
	pthread_mutex_t pool_mu;
	struct ic_meta_txn *pool[META_POOL];
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
int meta_verify(struct ic_meta *meta, const char *path);
/* Top up the reserve past the end of the metadata file (meta/reserve.c):
 * 0 or -errno (logged when it is the filesystem's lack of space). */
int meta_reserve(struct ic_meta *meta);
/* The cursor of txn on db, opened (or renewed) on first use. */
int meta_cursor(struct ic_meta_txn *txn, enum meta_db db, MDB_cursor **out);

static inline void
meta_put64(void *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static inline uint64_t
meta_get64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

static inline void
meta_put32(void *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static inline uint32_t
meta_get32(const void *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

/* Keys sort as memcmp does, so integers in keys are big-endian. */
static inline void
meta_key64(void *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, 8);
}

static inline uint64_t
meta_unkey64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return be64toh(v);
}

#endif
