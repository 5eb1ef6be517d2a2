/* The LMDB backend's environment: create, open (with the checks that tell a
 * corrupt or foreign file from ours), transactions and the read pool, and
 * its ops table (meta/backend.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "meta/internal.h"

/* LMDB reserves address space, not disk; the file grows as it needs. 32 GiB
 * is far beyond any store's metadata, and valgrind still maps it (64 does not). */
#define META_MAP_SIZE (32ull << 30)

static const char *const meta_db_names[DB_COUNT] = {
	[DB_INFO] = "info",	  [DB_DISKS] = "disks",		[DB_NAMES] = "names",
	[DB_ALLOC] = "alloc",	  [DB_RESOLVED] = "resolved", [DB_OWNERS] = "owners",
};

/* Not found and exists are answers; everything else is a failure the
 * caller may only propagate, so it is logged here, where LMDB's own words
 * for it are known (a damaged page deep in a put would otherwise fail a
 * command with no message at all: tests/e2e/fault-meta-damage.sh). */
int
meta_err(int rc)
{
	if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND && rc != MDB_KEYEXIST)
		ic_log(IC_LOG_ERR, "metadata: %s", mdb_strerror(rc));
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_KEYEXIST:
		return -EEXIST;
	case MDB_MAP_FULL:
		return -ENOSPC;
	case MDB_CORRUPTED:
	case MDB_INVALID:
	case MDB_PAGE_NOTFOUND:
	case MDB_PANIC:
	case MDB_BAD_TXN:
	case MDB_INCOMPATIBLE:
		return -EUCLEAN;
	case MDB_VERSION_MISMATCH:
		return -EPROTONOSUPPORT;
	case MDB_READERS_FULL:
	case MDB_TXN_FULL:
	case MDB_CURSOR_FULL:
	case MDB_DBS_FULL:
		return -EAGAIN;
	default:
		return rc > 0 ? -rc : -EIO;
	}
}

static void meta_read_free(struct lmdb_txn *txn);

/* A handle on the store whose metadata file is path, with its lock file
 * open (made, with mode, when missing) and no environment yet. */
static int
meta_new(const char *path, mode_t mode, struct lmdb_meta **out)
{
	IC_AUTOFREE struct lmdb_meta *meta = calloc(1, sizeof(*meta));
	char lock[PATH_MAX];
	int rc;

	if (!meta)
		return -ENOMEM;
	meta->base.ops = &meta_lmdb_ops;
	snprintf(lock, sizeof(lock), "%s-lock", path);
	rc = meta_lock_open(&meta->lock, lock, mode);
	if (rc)
		return rc;
	pthread_mutex_init(&meta->pool_mu, NULL);
	*out = ic_steal(&meta);
	return 0;
}

/* LMDB's environment on path, without LMDB's locking (MDB_NOLOCK: it marks
 * readers by pid, which PID namespaces make ambiguous); meta/lock.c locks
 * instead, and the caller holds meta->lock. */
static int
meta_env_open(struct lmdb_meta *meta, const char *path, unsigned flags)
{
	int rc = mdb_env_create(&meta->env);

	if (rc)
		return meta_err(rc);
	mdb_env_set_maxdbs(meta->env, DB_COUNT);
	mdb_env_set_mapsize(meta->env, META_MAP_SIZE);
	rc = mdb_env_open(meta->env, path, MDB_NOSUBDIR | MDB_NOTLS | MDB_NOLOCK | flags, 0600);
	if (rc) {
		mdb_env_close(meta->env);
		meta->env = NULL;
		rc = meta_err(rc);
		if (rc == -EUCLEAN)
			ic_log(IC_LOG_ERR, "%s: not an isocache metadata file (corrupt or foreign)",
			       path);
		else
			ic_log(IC_LOG_ERR, "%s: cannot open the metadata file: %s", path,
			       strerror(-rc));
		return rc;
	}
	return 0;
}

/* Open every named database; create them in a new file. */
static int
meta_open_dbs(struct lmdb_meta *meta, bool create)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(meta->env, NULL, create ? 0 : MDB_RDONLY, &txn);

	if (rc)
		return meta_err(rc);
	for (int i = 0; i < DB_COUNT; i++) {
		rc = mdb_dbi_open(txn, meta_db_names[i], create ? MDB_CREATE : 0, &meta->dbi[i]);
		if (rc) {
			mdb_txn_abort(txn);
			return rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE ? -EUCLEAN : meta_err(rc);
		}
	}
	return meta_err(mdb_txn_commit(txn));
}

static int lmdb_begin(struct ic_meta *base, bool write, struct ic_meta_txn **out);
static int lmdb_commit(struct ic_meta_txn *base);
static void lmdb_abort(struct ic_meta_txn *base);
static void lmdb_close(struct ic_meta *base);

int
meta_lmdb_create(const char *path, const uint8_t store_uuid[16], uint32_t cluster_size)
{
	struct lmdb_meta *meta;
	struct ic_meta_txn *txn;
	struct stat st;
	int rc;

	if (lstat(path, &st) == 0) {
		ic_log(IC_LOG_ERR, "%s: a metadata file exists already", path);
		return -EEXIST;
	}
	rc = meta_new(path, 0600, &meta);
	if (rc)
		return rc;
	rc = meta_lock_write(&meta->lock);
	if (rc == 0) {
		rc = meta_env_open(meta, path, 0);
		if (rc == 0)
			rc = meta_open_dbs(meta, true);
		meta_lock_write_end(&meta->lock);
	}
	if (rc == 0)
		rc = lmdb_begin(&meta->base, true, &txn);
	if (rc == 0) {
		rc = meta_info_init(txn, store_uuid, cluster_size);
		rc = rc ? (lmdb_abort(txn), rc) : lmdb_commit(txn);
	}
	lmdb_close(&meta->base);
	if (rc)
		ic_log(IC_LOG_ERR, "%s: cannot create the metadata file: %s", path, strerror(-rc));
	return rc;
}

/* LMDB maps the file and trusts its two meta pages: it is not hardened
 * against corrupt files (lmdb.h), and a page number past the end of the
 * file is a SIGBUS when read, not an error. So before mdb_env_open, check
 * what it will trust in each meta page (LMDB 0.9's MDB_meta after the
 * 16-byte page header, host byte order): the magic, the data version, a
 * page size that is a power of two, and a last page inside the file.
 * An empty or short file is refused too: mdb_env_open would make a new
 * environment in it. Found by tests/fuzz/fuzz_meta (docs/FUZZING.md).
 * It runs under the store's read lock (meta/lock.c), so no commit rewrites
 * a meta page meanwhile; the size is still taken after the meta pages are
 * read, the order that is right even without the lock (a meta page names
 * only pages written before it, and the file only grows). */
#define LMDB_MAGIC 0xBEEFC0DEu
#define LMDB_DATA_VERSION 1u
#define LMDB_OFF_MAGIC 16
#define LMDB_OFF_VERSION 20
#define LMDB_OFF_PSIZE 40 /* mm_dbs[FREE_DBI].md_pad */
#define LMDB_OFF_LAST_PG 136
#define LMDB_PSIZE_MIN 512u
#define LMDB_PSIZE_MAX 65536u

static int
meta_check_lmdb(const char *path)
{
	IC_AUTOCLOSE int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	uint8_t page[LMDB_OFF_LAST_PG + 8];
	uint32_t magic, version, ps, psize = 0;
	uint64_t last_pg[2];
	struct stat st;

	if (fd < 0)
		return -errno;
	for (int i = 0; i < 2; i++) {
		if (pread(fd, page, sizeof(page), (off_t)i * psize) != (ssize_t)sizeof(page))
			return -EUCLEAN;
		memcpy(&magic, page + LMDB_OFF_MAGIC, 4);
		memcpy(&version, page + LMDB_OFF_VERSION, 4);
		memcpy(&ps, page + LMDB_OFF_PSIZE, 4);
		memcpy(&last_pg[i], page + LMDB_OFF_LAST_PG, 8);
		psize = i == 0 ? ps : psize;
		if (magic != LMDB_MAGIC || version != LMDB_DATA_VERSION || ps != psize ||
		    psize < LMDB_PSIZE_MIN || psize > LMDB_PSIZE_MAX || (psize & (psize - 1)) ||
		    last_pg[i] < 1)
			return -EUCLEAN;
	}
	if (fstat(fd, &st) != 0)
		return -errno;
	for (int i = 0; i < 2; i++)
		if (last_pg[i] >= (uint64_t)st.st_size / psize)
			return -EUCLEAN;
	return 0;
}

/* LMDB opens path by name and follows symbolic links: a link planted as
 * the metadata file would make it act on the link's target. So it is
 * opened here first with O_NOFOLLOW and must be a regular file (the lock
 * file gets the same check in meta/lock.c). *data gets its identity,
 * compared with the file LMDB then opened, so a swap in between is caught
 * too. */
static int
meta_check_data(const char *path, struct stat *data)
{
	IC_AUTOCLOSE int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0 && errno == ELOOP) {
		ic_log(IC_LOG_ERR, "%s is a symbolic link; refusing", path);
		return -ELOOP;
	}
	if (fd < 0 || fstat(fd, data) != 0) {
		int rc = -errno;

		ic_log(IC_LOG_ERR, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (!S_ISREG(data->st_mode)) {
		ic_log(IC_LOG_ERR, "%s is not a regular file; refusing", path);
		return -EUCLEAN;
	}
	return 0;
}

/* The store's lock file is opened read-write even for a read-only
 * environment: taking part in its locking can hold writers up, so it is a
 * grant of its own. Say what a reader without it needs. */
static void
meta_explain_lock(const char *path)
{
	char lock[PATH_MAX];

	snprintf(lock, sizeof(lock), "%s-lock", path);
	if (access(lock, W_OK) != 0 && errno == EACCES)
		ic_log(IC_LOG_ERR, "%s: readers need write access to this lock file (the store's "
				   "reader-writer lock), e.g. chgrp GROUP %s && chmod g+rw %s; see "
				   "docs/CLI.md",
		       lock, lock, lock);
}

/* The part of an open that reads the file as LMDB will trust it: under the
 * read lock, so no commit runs meanwhile. */
static int
meta_open_locked(struct lmdb_meta *meta, const char *path, bool readonly, const struct stat *st)
{
	struct stat opened;
	int rc = meta_check_lmdb(path);
	int fd;

	if (rc) {
		ic_log(IC_LOG_ERR, "%s: %s", path,
		       rc == -EUCLEAN ? "not an isocache metadata file (corrupt or foreign)"
				      : strerror(-rc));
		return rc;
	}
	rc = meta_env_open(meta, path, readonly ? MDB_RDONLY : 0);
	if (rc)
		return rc;
	if (mdb_env_get_fd(meta->env, &fd) != 0 || fstat(fd, &opened) != 0 ||
	    opened.st_dev != st->st_dev || opened.st_ino != st->st_ino) {
		ic_log(IC_LOG_ERR, "%s was replaced while it was opened; refusing", path);
		return -EUCLEAN;
	}
	rc = meta_verify(meta, path);
	if (rc == 0) {
		rc = meta_open_dbs(meta, false);
		if (rc == -EUCLEAN)
			ic_log(IC_LOG_ERR, "%s: an LMDB file, but not an isocache store", path);
	}
	return rc;
}

int
meta_lmdb_open(const char *path, bool readonly, struct ic_meta **out)
{
	struct lmdb_meta *meta;
	struct stat st;
	int rc = meta_check_data(path, &st);

	if (rc)
		return rc;
	/* A missing lock file is made here, with the data file's mode. */
	rc = meta_new(path, st.st_mode & 0660, &meta);
	if (rc == -EACCES && readonly)
		meta_explain_lock(path);
	if (rc)
		return rc;
	rc = meta_lock_read(&meta->lock);
	if (rc == 0) {
		rc = meta_open_locked(meta, path, readonly, &st);
		meta_lock_read_end(&meta->lock);
	}
	if (rc == 0)
		rc = meta_info_check(&meta->base, path);
	if (rc) {
		lmdb_close(&meta->base);
		return rc;
	}
	meta_reserve(meta);
	*out = &meta->base;
	return 0;
}

static void
lmdb_close(struct ic_meta *base)
{
	struct lmdb_meta *meta = container_of(base, struct lmdb_meta, base);

	for (unsigned i = 0; i < meta->pooled; i++)
		meta_read_free(meta->pool[i]);
	mdb_env_close(meta->env);
	meta_lock_close(&meta->lock);
	pthread_mutex_destroy(&meta->pool_mu);
	free(meta);
}

static void
meta_read_free(struct lmdb_txn *txn)
{
	for (int d = 0; d < DB_COUNT; d++)
		if (txn->cur[d])
			mdb_cursor_close(txn->cur[d]);
	mdb_txn_abort(txn->txn);
	meta_lock_write_end(&txn->meta->lock);
	free(txn);
}

static int
meta_txn_begin(struct lmdb_meta *meta, bool write, struct ic_meta_txn **out)
{
	struct lmdb_txn *txn = NULL;
	int rc;

	if (!write) {
		pthread_mutex_lock(&meta->pool_mu);
		if (meta->pooled)
			txn = meta->pool[--meta->pooled];
		pthread_mutex_unlock(&meta->pool_mu);
		if (txn) {
			rc = mdb_txn_renew(txn->txn);
			for (int d = 0; rc == 0 && d < DB_COUNT; d++)
				if (txn->cur[d])
					rc = mdb_cursor_renew(txn->txn, txn->cur[d]);
			if (rc == 0) {
				*out = &txn->base;
				return 0;
			}
			meta_read_free(txn);
			return meta_err(rc);
		}
	}
	txn = calloc(1, sizeof(*txn));
	if (!txn)
		return -ENOMEM;
	txn->base = (struct ic_meta_txn){ .meta = &meta->base, .write = write };
	txn->meta = meta;
	rc = mdb_txn_begin(meta->env, NULL, write ? 0 : MDB_RDONLY, &txn->txn);
	if (rc) {
		free(txn);
		rc = meta_err(rc);
		ic_log(IC_LOG_ERR, "metadata transaction: %s", strerror(-rc));
		return rc;
	}
	*out = &txn->base;
	return 0;
}

/* The store's lock first (meta/lock.c), then LMDB's transaction. */
static int
lmdb_begin(struct ic_meta *base, bool write, struct ic_meta_txn **out)
{
	struct lmdb_meta *meta = container_of(base, struct lmdb_meta, base);
	int rc = write ? meta_lock_write(&meta->lock) : meta_lock_read(&meta->lock);

	if (rc)
		return rc;
	rc = meta_txn_begin(meta, write, out);
	if (rc && write)
		meta_lock_write_end(&meta->lock);
	else if (rc)
		meta_lock_read_end(&meta->lock);
	return rc;
}

int
meta_cursor(struct lmdb_txn *txn, enum meta_db db, MDB_cursor **out)
{
	int rc;

	if (!txn->cur[db]) {
		rc = mdb_cursor_open(txn->txn, txn->meta->dbi[db], &txn->cur[db]);
		if (rc)
			return meta_err(rc);
	}
	*out = txn->cur[db];
	return 0;
}

/* End a read transaction and keep it (and its cursors) for the next one. */
static void
meta_read_end(struct lmdb_txn *txn)
{
	struct lmdb_meta *meta = txn->meta;

	mdb_txn_reset(txn->txn);
	pthread_mutex_lock(&meta->pool_mu);
	if (meta->pooled < META_POOL) {
		meta->pool[meta->pooled++] = txn;
		txn = NULL;
	}
	pthread_mutex_unlock(&meta->pool_mu);
	if (txn)
		meta_read_free(txn);
	meta_lock_read_end(&meta->lock);
}

static int
lmdb_commit(struct ic_meta_txn *base)
{
	struct lmdb_txn *txn = lmdb_txn(base);
	int rc;

	if (!base->write) {
		meta_read_end(txn);
		return 0;
	}
	/* Write cursors are freed by LMDB at commit; the lock is held until
	 * the commit's last write is done. */
	rc = meta_err(mdb_txn_commit(txn->txn));
	meta_lock_write_end(&txn->meta->lock);
	if (rc == 0)
		meta_reserve(txn->meta);
	free(txn);
	if (rc)
		ic_log(IC_LOG_ERR, "metadata commit failed: %s", strerror(-rc));
	return rc;
}

static void
lmdb_abort(struct ic_meta_txn *base)
{
	struct lmdb_txn *txn = lmdb_txn(base);

	if (!base->write) {
		meta_read_end(txn);
		return;
	}
	mdb_txn_abort(txn->txn);
	meta_lock_write_end(&txn->meta->lock);
	free(txn);
}

const struct meta_backend meta_lmdb_ops = {
	.name = "lmdb",
	.close = lmdb_close,
	.begin = lmdb_begin,
	.commit = lmdb_commit,
	.abort = lmdb_abort,
	.get = lmdb_get,
	.put = lmdb_put,
	.del = lmdb_del,
	.walk = lmdb_walk,
	.extent_find = lmdb_extent_find,
	.extent_foreach = lmdb_extent_foreach,
	.extent_replace = lmdb_extent_replace,
};
