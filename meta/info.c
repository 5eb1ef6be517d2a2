/* The store's info records (docs/FORMAT.md, "info"): written once when a
 * store is made and checked at every open, the same in every backend. */
#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "meta/backend.h"
#include "meta/codec.h"

#define META_MAGIC "isocache-store"

static int
info_put(struct ic_meta_txn *txn, const char *key, const void *data, size_t len)
{
	return txn->meta->ops->put(txn, DB_INFO, key, strlen(key), data, len);
}

static int
info_get(struct ic_meta_txn *txn, const char *key, struct meta_val *val)
{
	return txn->meta->ops->get(txn, DB_INFO, key, strlen(key), val);
}

int
meta_info_init(struct ic_meta_txn *txn, const uint8_t store_uuid[16], uint32_t cluster_size)
{
	uint8_t schema[4], cs[4], next[8];
	int rc;

	meta_put32(schema, IC_META_SCHEMA);
	meta_put32(cs, cluster_size);
	meta_put64(next, 1);
	rc = info_put(txn, "magic", META_MAGIC, sizeof(META_MAGIC) - 1);
	if (rc == 0)
		rc = info_put(txn, "schema", schema, 4);
	if (rc == 0)
		rc = info_put(txn, "uuid", store_uuid, 16);
	if (rc == 0)
		rc = info_put(txn, "cluster_size", cs, 4);
	if (rc == 0)
		rc = info_put(txn, "next_disk_id", next, 8);
	return rc;
}

/* Check that this is an isocache store we understand. */
static int
info_check(struct ic_meta_txn *txn, struct ic_meta *meta, const char *where)
{
	struct meta_val v;
	int rc = info_get(txn, "magic", &v);

	if (rc && rc != -ENOENT)
		return rc;
	if (rc || v.len != sizeof(META_MAGIC) - 1 || memcmp(v.data, META_MAGIC, v.len)) {
		ic_log(IC_LOG_ERR, "%s: %s", where,
		       strcmp(meta->ops->name, "lmdb") == 0
			       ? "an LMDB file, but not an isocache store"
			       : "no isocache store under this prefix (isocache-admin init --meta makes one)");
		return -EUCLEAN;
	}
	rc = info_get(txn, "schema", &v);
	if (rc || v.len != 4) {
		ic_log(IC_LOG_ERR, "%s: the schema version is missing", where);
		return -EUCLEAN;
	}
	if (meta_get32(v.data) > IC_META_SCHEMA) {
		ic_log(IC_LOG_ERR, "%s: schema version %u is newer than this isocache's (%u); upgrade isocache",
		       where, meta_get32(v.data), IC_META_SCHEMA);
		return -EPROTONOSUPPORT;
	}
	rc = info_get(txn, "uuid", &v);
	if (rc == 0 && v.len == 16)
		memcpy(meta->store_uuid, v.data, 16);
	if (rc == 0)
		rc = info_get(txn, "cluster_size", &v);
	if (rc == 0 && v.len == 4)
		meta->cluster_size = meta_get32(v.data);
	if (rc || meta->cluster_size < 4096 || meta->cluster_size > (2u << 20) ||
	    (meta->cluster_size & (meta->cluster_size - 1))) {
		ic_log(IC_LOG_ERR, "%s: store uuid or cluster size is missing or invalid", where);
		return -EUCLEAN;
	}
	return 0;
}

int
meta_info_check(struct ic_meta *meta, const char *where)
{
	struct ic_meta_txn *txn;
	int rc = meta->ops->begin(meta, false, &txn);

	if (rc)
		return rc;
	rc = info_check(txn, meta, where);
	meta->ops->abort(txn);
	return rc;
}
