/* Private to meta/: the metadata backend interface (docs/MULTI-HOST.md §2).
 *
 * Every public ic_meta_* call (include/isocache/meta.h) goes through the
 * ops table of the store's backend: LMDB (meta/meta.c, records in
 * meta/lmdb_records.c, maps in meta/extents.c) for a local store, etcd
 * (meta/etcd*.c) for a multi-host one. The records (disks, names, owners,
 * info) are encoded once, in FORMAT.md's bytes, by meta/records.c on top of
 * the backend's key/value ops; extent maps are the backend's own, since
 * LMDB keeps one entry per extent and etcd one value per chunk of a map.
 *
 * A backend's handle and transaction begin with struct ic_meta and struct
 * ic_meta_txn (below) and are reached from them with container_of.
 */
#ifndef IC_META_BACKEND_H
#define IC_META_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "isocache/meta.h"

/* The record tables, in LMDB's database order. */
enum meta_db { DB_INFO, DB_DISKS, DB_NAMES, DB_ALLOC, DB_RESOLVED, DB_OWNERS, DB_COUNT };

/* Bytes a backend hands out: valid until its transaction ends. */
struct meta_val {
	size_t len;
	const void *data;
};

typedef int (*meta_walk_fn)(void *arg, const struct meta_val *key, const struct meta_val *val);

/* Every member is Required unless it says Optional. Errors are -errno as
 * in meta.h; a backend logs a failure where it knows the cause. */
struct meta_backend {
	const char *name; /* "lmdb", "etcd" */
	void (*close)(struct ic_meta *meta);
	int (*begin)(struct ic_meta *meta, bool write, struct ic_meta_txn **out);
	/* Commit a write transaction (end a read one); frees txn either way. */
	int (*commit)(struct ic_meta_txn *txn);
	void (*abort)(struct ic_meta_txn *txn);

	/* Records of db (DB_INFO, DB_DISKS, DB_NAMES, DB_OWNERS): keys are
	 * bytes that sort as memcmp does (DB_DISKS: 8 bytes big-endian). */
	int (*get)(struct ic_meta_txn *txn, enum meta_db db, const void *key, size_t klen,
		   struct meta_val *out);
	int (*put)(struct ic_meta_txn *txn, enum meta_db db, const void *key, size_t klen,
		   const void *val, size_t vlen);
	int (*del)(struct ic_meta_txn *txn, enum meta_db db, const void *key, size_t klen);
	/* fn for every entry of db in key order; stops at fn's first non-zero. */
	int (*walk)(struct ic_meta_txn *txn, enum meta_db db, meta_walk_fn fn, void *arg);

	/* Extent maps: as ic_meta_extent_find, _foreach and _replace. */
	int (*extent_find)(struct ic_meta_txn *txn, enum ic_map map, uint64_t disk,
			   uint64_t cluster, struct ic_meta_extent *out);
	int (*extent_foreach)(struct ic_meta_txn *txn, enum ic_map map, uint64_t disk,
			      int (*fn)(void *arg, const struct ic_meta_extent *ext), void *arg);
	int (*extent_replace)(struct ic_meta_txn *txn, enum ic_map map, uint64_t disk,
			      uint64_t start, uint64_t count, const struct ic_meta_extent *ext,
			      size_t n);

	/* Optional (NULL: info/next_disk_id read and rewritten in txn, as
	 * meta/records.c does): ic_meta_disk_new_id. A backend whose commits
	 * may lose a race must hand an id out at once, never twice: the caller
	 * names a layer file after it before it commits. */
	int (*new_id)(struct ic_meta_txn *txn, uint64_t *out);
	/* Optional (NULL: -EOPNOTSUPP): ic_meta_txn_fence. */
	int (*fence)(struct ic_meta_txn *txn, const char *key, int64_t mod_revision,
		     bool (*valid)(void *arg), void *arg);
	/* Optional (NULL: a local store): the etcd URL and record keys. */
	const struct ic_etcd_url *(*etcd_url)(const struct ic_meta *meta);
	int (*etcd_key)(const struct ic_meta *meta, const char *kind, const char *name, char *buf,
			size_t len);
	/* Optional (NULL: the records go with the store's files): remove
	 * every record of the store, outside any transaction. */
	int (*erase)(struct ic_meta *meta);
};

/* The head of every backend's handle. */
struct ic_meta {
	const struct meta_backend *ops;
	uint32_t cluster_size;
	uint8_t store_uuid[16];
};

/* The head of every backend's transaction. */
struct ic_meta_txn {
	struct ic_meta *meta;
	bool write;
};

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#endif

/* The store's info records (meta/info.c), the same in every backend:
 * write them in a new store's first transaction, or check them at open
 * (magic, schema, uuid and cluster size into meta; where names the store
 * in messages). */
int meta_info_init(struct ic_meta_txn *txn, const uint8_t store_uuid[16], uint32_t cluster_size);
int meta_info_check(struct ic_meta *meta, const char *where);

/* The backends' constructors. */
int meta_lmdb_create(const char *path, const uint8_t store_uuid[16], uint32_t cluster_size);
int meta_lmdb_open(const char *path, bool readonly, struct ic_meta **out);
int meta_etcd_create(const char *url, const uint8_t store_uuid[16], uint32_t cluster_size);
int meta_etcd_open(const char *url, bool readonly, struct ic_meta **out);

#endif
