/* The public metadata API (include/isocache/meta.h): each call goes to the
 * store's backend (meta/backend.h), chosen at create and open by the path:
 * an etcd:// (or etcds://) URL is a store whose metadata is in etcd, anything else an
 * LMDB file. Checks every backend needs are made here, once. */
#include <errno.h>
#include <string.h>

#include "etcd/etcd.h"
#include "meta/backend.h"

static bool
meta_is_etcd(const char *path)
{
	return ic_etcd_url_like(path);
}

int
ic_meta_create(const char *path, const uint8_t store_uuid[16], uint32_t cluster_size)
{
	return meta_is_etcd(path) ? meta_etcd_create(path, store_uuid, cluster_size)
				  : meta_lmdb_create(path, store_uuid, cluster_size);
}

int
ic_meta_open(const char *path, struct ic_meta **out)
{
	return meta_is_etcd(path) ? meta_etcd_open(path, false, out)
				  : meta_lmdb_open(path, false, out);
}

int
ic_meta_open_readonly(const char *path, struct ic_meta **out)
{
	return meta_is_etcd(path) ? meta_etcd_open(path, true, out)
				  : meta_lmdb_open(path, true, out);
}

void
ic_meta_close(struct ic_meta *meta)
{
	if (meta)
		meta->ops->close(meta);
}

uint32_t
ic_meta_cluster_size(const struct ic_meta *meta)
{
	return meta->cluster_size;
}

const uint8_t *
ic_meta_store_uuid(const struct ic_meta *meta)
{
	return meta->store_uuid;
}

const struct ic_etcd_url *
ic_meta_etcd_url(const struct ic_meta *meta)
{
	return meta->ops->etcd_url ? meta->ops->etcd_url(meta) : NULL;
}

int
ic_meta_etcd_key(const struct ic_meta *meta, const char *kind, const char *name, char *buf,
		 size_t len)
{
	if (!meta->ops->etcd_key ||
	    (strcmp(kind, "owners") && strcmp(kind, "release") && strcmp(kind, "held") &&
	     strcmp(kind, "destroying")))
		return -EINVAL;
	return meta->ops->etcd_key(meta, kind, name, buf, len);
}

int
ic_meta_erase(struct ic_meta *meta)
{
	return meta->ops->erase ? meta->ops->erase(meta) : 0;
}

int
ic_meta_begin(struct ic_meta *meta, bool write, struct ic_meta_txn **out)
{
	return meta->ops->begin(meta, write, out);
}

int
ic_meta_commit(struct ic_meta_txn *txn)
{
	return txn->meta->ops->commit(txn);
}

void
ic_meta_abort(struct ic_meta_txn *txn)
{
	if (txn)
		txn->meta->ops->abort(txn);
}

int
ic_meta_txn_fence(struct ic_meta_txn *txn, const char *key, int64_t mod_revision,
		  bool (*valid)(void *arg), void *arg)
{
	if (!txn->meta->ops->fence)
		return -EOPNOTSUPP;
	if (!txn->write)
		return -EINVAL;
	return txn->meta->ops->fence(txn, key, mod_revision, valid, arg);
}

int
ic_meta_extent_find(struct ic_meta_txn *txn, enum ic_map map, uint64_t disk, uint64_t cluster,
		    struct ic_meta_extent *out)
{
	return txn->meta->ops->extent_find(txn, map, disk, cluster, out);
}

int
ic_meta_extent_foreach(struct ic_meta_txn *txn, enum ic_map map, uint64_t disk,
		       int (*fn)(void *arg, const struct ic_meta_extent *ext), void *arg)
{
	return txn->meta->ops->extent_foreach(txn, map, disk, fn, arg);
}

int
ic_meta_extent_replace(struct ic_meta_txn *txn, enum ic_map map, uint64_t disk, uint64_t start,
		       uint64_t count, const struct ic_meta_extent *ext, size_t n)
{
	uint64_t end = start + count;

	if (!txn->write || end < start)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (ext[i].count == 0 || ext[i].start < start || ext[i].start + ext[i].count > end)
			return -EINVAL;
	return txn->meta->ops->extent_replace(txn, map, disk, start, count, ext, n);
}

int
ic_meta_extent_clear(struct ic_meta_txn *txn, enum ic_map map, uint64_t disk)
{
	return ic_meta_extent_replace(txn, map, disk, 0, UINT64_MAX, NULL, 0);
}
