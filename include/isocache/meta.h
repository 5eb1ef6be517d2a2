/* The metadata of a store (docs/ARCHITECTURE.md §4, docs/FORMAT.md), behind one
 * interface with two backends (meta/backend.h):
 * - LMDB, the default: one environment per store in single-file mode, on
 *   one host. Only meta/ includes <lmdb.h>.
 * - etcd (docs/MULTI-HOST.md): the store's records under one key prefix of
 *   an etcd cluster, for stores shared by several hosts. "path" is then
 *   etcd://HOST:PORT[,HOST:PORT...]/PREFIX.
 * Everything happens inside a transaction from ic_meta_begin, with either.
 *
 * LMDB: read transactions are snapshots that share the store's lock
 * (meta/lock.c); a write transaction holds it alone, across all processes,
 * PID namespaces included. So readers wait for a commit and a writer for
 * every reader: hold any transaction only for what it reads or writes,
 * never across I/O or a wait for another process. A transaction ends on
 * the thread that began it; a thread may begin reads inside its
 * transaction, but a write inside its own read fails with -EDEADLK (it
 * would wait for itself). After fork(), only one of the two processes may
 * use a handle (as with LMDB itself): they share the lock's open file
 * description.
 *
 * etcd: no lock is taken, and transactions may run on several threads at
 * once (each takes a client of its own). A read transaction is a snapshot:
 * every read after the first is made at the first one's revision. A write
 * transaction buffers its writes (its reads see them) and remembers the
 * revision of every key it read; ic_meta_commit sends them as one etcd
 * transaction that applies only if none of those keys (nor any key in a
 * range it walked) changed meanwhile. Otherwise nothing is written and
 * commit fails with -EAGAIN ("changed under us": begin again and redo the
 * work, if the caller wants to). ic_meta_disk_new_id takes its id at once:
 * never handed out twice, even to transactions that then fail. A commit is
 * all or nothing also when etcd fails: -ETIMEDOUT (no answer: quorum
 * lost?), -ECONNREFUSED (no member reachable), logged with
 * ic_etcd_last_error()'s words naming the member. A commit that would
 * exceed etcd's 128 operations per transaction or its request size is
 * refused with -E2BIG before anything is sent.
 *
 * Functions return 0 or -errno:
 * -ENOENT not found, -EEXIST exists, -EUCLEAN corrupt or foreign file,
 * -EPROTONOSUPPORT newer schema, -ENOSPC map full, -EBUSY (at open) a
 * process using LMDB's own locking holds the store; on etcd also those
 * above.
 */
#ifndef ISOCACHE_META_H
#define ISOCACHE_META_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IC_META_SCHEMA 1
#define IC_META_NAME_MAX 257 /* "NAME@SNAP" and its NUL */

struct ic_meta;
struct ic_meta_txn;
struct ic_etcd_url;

/* Create meta file path (must not exist) for a new store; for an etcd://
 * URL, the store's records under its prefix (-EEXIST if a store is there
 * already, checked and written in one etcd transaction). */
int ic_meta_create(const char *path, const uint8_t store_uuid[16], uint32_t cluster_size);
/* Open an existing meta file; checks magic and schema version. */
int ic_meta_open(const char *path, struct ic_meta **out);
/* The same, read-only (LMDB MDB_RDONLY): the meta file itself is opened
 * O_RDONLY and write transactions fail with -EACCES. Taking part in the
 * store's lock still needs write access to path-lock; without it this
 * fails with -EACCES after saying so. */
int ic_meta_open_readonly(const char *path, struct ic_meta **out);
void ic_meta_close(struct ic_meta *meta);
uint32_t ic_meta_cluster_size(const struct ic_meta *meta);
const uint8_t *ic_meta_store_uuid(const struct ic_meta *meta);

int ic_meta_begin(struct ic_meta *meta, bool write, struct ic_meta_txn **out);
/* Commit a write transaction (a read one just ends); frees txn either way.
 * On a store in etcd, -ETIMEDOUT or -ECONNRESET say that whether it was
 * applied is unknown (ic_meta_commit_unknown); any other error, that
 * nothing was written. */
int ic_meta_commit(struct ic_meta_txn *txn);
/* rc of ic_meta_commit: may the commit be applied all the same? Then what
 * it names (a new layer file) must be kept: isocache-admin check reports a
 * file no record names. */
static inline bool
ic_meta_commit_unknown(int rc)
{
	return rc == -ETIMEDOUT || rc == -ECONNRESET;
}
/* Abandon; NULL is fine. Frees txn. */
void ic_meta_abort(struct ic_meta_txn *txn);

/* ---- multi-host stores (docs/MULTI-HOST.md) ---- */
/* The URL of a store whose metadata is in etcd; NULL for a local (LMDB) store.
 * Valid while meta is open. */
const struct ic_etcd_url *ic_meta_etcd_url(const struct ic_meta *meta);
/* The full etcd key of a record of a multi-host store: kind is "owners",
 * "release", "held" or "destroying", giving "/isocache/PREFIX/owners/NAME"
 * (MULTI-HOST.md §3).
 * Returns 0, -ENAMETOOLONG (buf of len bytes too small), -EINVAL for a
 * local store or another kind. */
int ic_meta_etcd_key(const struct ic_meta *meta, const char *kind, const char *name, char *buf,
		     size_t len);
/* Remove every record of a store in etcd (its whole prefix), for
 * ic_store_destroy once the layer files are gone; 0 at once for a local
 * store, whose records go with its files. */
int ic_meta_erase(struct ic_meta *meta);
/* Make a write transaction's commit conditional on the etcd key (a full
 * key, as ic_meta_etcd_key gives) still having this mod_revision (the
 * fencing token of a multi-host owner): the commit then fails with -ESTALE
 * and writes nothing. valid (NULL: none) says whether the token's holder
 * may still write (its lease cannot have run out): once valid(arg) says
 * no, the commit is neither sent nor waited for any longer, and fails with
 * -ETIMEDOUT, its outcome unknown (sent already, it may yet be applied:
 * before another holder took the key, as the compare sees to). The owner
 * is fenced by then: its I/O fails with -ESTALE. Up to 8 fences per transaction
 * (-E2BIG past that). -EOPNOTSUPP on a local store, -EINVAL on a read
 * transaction. */
int ic_meta_txn_fence(struct ic_meta_txn *txn, const char *key, int64_t mod_revision,
		      bool (*valid)(void *arg), void *arg);

/* ---- disks: disk_id → record ---- */
#define IC_DISK_FROZEN 0x1u

struct ic_disk_rec {
	uint64_t id;
	uint64_t parent;  /* 0 = none */
	uint64_t size;    /* bytes */
	uint64_t created; /* seconds since the epoch */
	uint32_t flags;   /* IC_DISK_* */
	uint8_t uuid[16];
	char name[IC_META_NAME_MAX]; /* "vm1@s1" for a snapshot, "vm1" for a leaf, or "" */
};

int ic_meta_disk_get(struct ic_meta_txn *txn, uint64_t id, struct ic_disk_rec *out);
int ic_meta_disk_put(struct ic_meta_txn *txn, const struct ic_disk_rec *rec);
int ic_meta_disk_del(struct ic_meta_txn *txn, uint64_t id);
/* A fresh disk id; ids are never reused within a store. */
int ic_meta_disk_new_id(struct ic_meta_txn *txn, uint64_t *out);
/* Call fn for every disk in id order; stops at fn's first non-zero return. */
int ic_meta_disk_foreach(struct ic_meta_txn *txn,
			 int (*fn)(void *arg, const struct ic_disk_rec *rec), void *arg);

/* ---- names: "vm1" → leaf disk id, "vm1@s1" → frozen disk id ---- */
int ic_meta_name_get(struct ic_meta_txn *txn, const char *name, uint64_t *id);
int ic_meta_name_put(struct ic_meta_txn *txn, const char *name, uint64_t id);
int ic_meta_name_del(struct ic_meta_txn *txn, const char *name);
int ic_meta_name_foreach(struct ic_meta_txn *txn,
			 int (*fn)(void *arg, const char *name, uint64_t id), void *arg);

/* ---- extent maps, in clusters ----
 * IC_MAP_ALLOC: what a layer holds itself; holder = its own id (data) or 0
 * (zero: reads as zeroes and hides every layer below).
 * IC_MAP_RESOLVED: a frozen layer's whole chain flattened; holder = the id
 * of the layer holding the data, or 0 (zero). No extent = never written. */
enum ic_map { IC_MAP_ALLOC, IC_MAP_RESOLVED };

struct ic_meta_extent {
	uint64_t start; /* first cluster */
	uint64_t count; /* clusters */
	uint64_t holder;
};

/* The extent of disk's map containing cluster → 0 and *out. When no extent
 * contains it: -ENOENT, and out->start is the first cluster after it that
 * an extent covers (UINT64_MAX if none), so callers can skip the gap. */
int ic_meta_extent_find(struct ic_meta_txn *txn, enum ic_map map, uint64_t disk,
			uint64_t cluster, struct ic_meta_extent *out);
/* Every extent of disk's map in order; stops at fn's first non-zero return. */
int ic_meta_extent_foreach(struct ic_meta_txn *txn, enum ic_map map, uint64_t disk,
			   int (*fn)(void *arg, const struct ic_meta_extent *ext), void *arg);
/* Make [start, start+count) of disk's map hold exactly the n extents given
 * (sorted, inside the range, not overlapping); what was there is cut out. */
int ic_meta_extent_replace(struct ic_meta_txn *txn, enum ic_map map, uint64_t disk,
			   uint64_t start, uint64_t count, const struct ic_meta_extent *ext,
			   size_t n);
/* Drop disk's whole map. */
int ic_meta_extent_clear(struct ic_meta_txn *txn, enum ic_map map, uint64_t disk);

/* ---- owners: vdisk name → ownership record (docs/ARCHITECTURE.md §6) ---- */
struct ic_owner_rec {
	uint8_t owner_id[16]; /* all zero: nobody owns it */
	uint8_t boot_id[16];
	uint64_t generation;  /* +1 on every change */
	uint64_t start_time;  /* owner's start time, clock ticks since boot (/proc) */
	uint64_t acquired;    /* seconds since the epoch */
	uint32_t pid;
	char socket[108];     /* control socket path */
	char who[64];         /* "isocache-nbd export vm1" */
};

/* The ownership record as both backends store it (docs/FORMAT.md, "owners"):
 * fixed-size, little-endian. Decode: 0, or -EUCLEAN when malformed. */
#define IC_OWNER_REC_BYTES 232
void ic_meta_owner_encode(const struct ic_owner_rec *rec, uint8_t out[IC_OWNER_REC_BYTES]);
int ic_meta_owner_decode(const void *buf, size_t len, struct ic_owner_rec *out);

/* On an etcd store the record is the key ic_meta_etcd_key(meta, "owners",
 * name) gives; owner_put writes it without a lease (the cross-host claim
 * of owner/ attaches its own). */
int ic_meta_owner_get(struct ic_meta_txn *txn, const char *name, struct ic_owner_rec *out);
int ic_meta_owner_put(struct ic_meta_txn *txn, const char *name, const struct ic_owner_rec *rec);
int ic_meta_owner_del(struct ic_meta_txn *txn, const char *name);

#endif
