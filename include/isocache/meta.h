/* The metadata file (docs/ARCHITECTURE.md §4, docs/FORMAT.md): one LMDB environment
 * per store in single-file mode. Only meta/ includes <lmdb.h>.
 *
 * Everything happens inside a transaction from ic_meta_begin. Read
 * transactions are snapshots that share the store's lock (meta/lock.c);
 * a write transaction holds it alone, across all processes, PID
 * namespaces included. So readers wait for a commit and a writer for every
 * reader: hold any transaction only for what it reads or writes, never
 * across I/O or a wait for another process. A transaction ends on the
 * thread that began it; a thread may begin reads inside its transaction,
 * but a write inside its own read fails with -EDEADLK (it would wait for
 * itself). After fork(), only one of the two processes may use a handle
 * (as with LMDB itself): they share the lock's open file description.
 * Functions return 0 or -errno:
 * -ENOENT not found, -EEXIST exists, -EUCLEAN corrupt or foreign file,
 * -EPROTONOSUPPORT newer schema, -ENOSPC map full, -EBUSY (at open) a
 * process using LMDB's own locking holds the store.
 */
#ifndef ISOCACHE_META_H
#define ISOCACHE_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IC_META_SCHEMA 1
#define IC_META_NAME_MAX 257 /* "NAME@SNAP" and its NUL */

struct ic_meta;
struct ic_meta_txn;

/* Create meta file path (must not exist) for a new store. */
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
/* Commit a write transaction (a read one just ends); frees txn either way. */
int ic_meta_commit(struct ic_meta_txn *txn);
/* Abandon; NULL is fine. Frees txn. */
void ic_meta_abort(struct ic_meta_txn *txn);

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

int ic_meta_owner_get(struct ic_meta_txn *txn, const char *name, struct ic_owner_rec *out);
int ic_meta_owner_put(struct ic_meta_txn *txn, const char *name, const struct ic_owner_rec *rec);
int ic_meta_owner_del(struct ic_meta_txn *txn, const char *name);

#endif
