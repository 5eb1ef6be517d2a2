/* The LMDB backend's extent maps (alloc and resolved): key (disk, first cluster),
 * big-endian so a layer's extents are adjacent and in order; value
 * (count, holder). Extents of one map never overlap. */
#include <errno.h>

#include "common/log.h"
#include "meta/internal.h"

#define EXT_KEY 16
#define EXT_VAL 16

static enum meta_db
meta_map_db(enum ic_map map)
{
	return map == IC_MAP_ALLOC ? DB_ALLOC : DB_RESOLVED;
}

static void
meta_ext_key(uint8_t kb[EXT_KEY], uint64_t disk, uint64_t start)
{
	meta_key64(kb, disk);
	meta_key64(kb + 8, start);
}

/* Decode the cursor's current entry. Returns 1 if it belongs to disk, 0 if
 * it belongs to another disk, -EUCLEAN if damaged. */
static int
meta_ext_decode(const MDB_val *k, const MDB_val *v, uint64_t disk, struct ic_meta_extent *out)
{
	if (k->mv_size != EXT_KEY || v->mv_size != EXT_VAL) {
		ic_log(IC_LOG_ERR, "metadata: an extent record is damaged");
		return -EUCLEAN;
	}
	if (meta_unkey64(k->mv_data) != disk)
		return 0;
	out->start = meta_unkey64((const uint8_t *)k->mv_data + 8);
	out->count = meta_get64(v->mv_data);
	out->holder = meta_get64((const uint8_t *)v->mv_data + 8);
	if (out->count == 0 || out->start + out->count < out->start) {
		ic_log(IC_LOG_ERR, "metadata: extent at cluster %llu of disk %llu is damaged",
		       (unsigned long long)out->start, (unsigned long long)disk);
		return -EUCLEAN;
	}
	return 1;
}

/* Position cur on the first extent of disk at or after cluster, and also
 * report the one before it (which may contain cluster). */
static int
meta_ext_seek(MDB_cursor *cur, uint64_t disk, uint64_t cluster, struct ic_meta_extent *prev,
	      bool *have_prev, struct ic_meta_extent *next, bool *have_next)
{
	uint8_t kb[EXT_KEY];
	MDB_val k = { EXT_KEY, kb }, v;
	int rc;

	*have_prev = *have_next = false;
	meta_ext_key(kb, disk, cluster);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0) {
		rc = meta_ext_decode(&k, &v, disk, next);
		if (rc < 0)
			return rc;
		*have_next = rc;
		rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
	} else if (rc == MDB_NOTFOUND) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	}
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return meta_err(rc);
	rc = meta_ext_decode(&k, &v, disk, prev);
	if (rc < 0)
		return rc;
	*have_prev = rc;
	return 0;
}

int
lmdb_extent_find(struct ic_meta_txn *base, enum ic_map map, uint64_t disk, uint64_t cluster,
		 struct ic_meta_extent *out)
{
	struct lmdb_txn *txn = lmdb_txn(base);
	struct ic_meta_extent prev, next;
	bool have_prev, have_next;
	MDB_cursor *cur;
	int rc = meta_cursor(txn, meta_map_db(map), &cur);

	if (rc == 0)
		rc = meta_ext_seek(cur, disk, cluster, &prev, &have_prev, &next, &have_next);
	if (rc)
		return rc;
	if (have_next && next.start == cluster) {
		*out = next;
		return 0;
	}
	if (have_prev && prev.start + prev.count > cluster) {
		*out = prev;
		return 0;
	}
	out->start = have_next ? next.start : UINT64_MAX;
	out->count = 0;
	out->holder = 0;
	return -ENOENT;
}

int
lmdb_extent_foreach(struct ic_meta_txn *base, enum ic_map map, uint64_t disk,
		    int (*fn)(void *arg, const struct ic_meta_extent *ext), void *arg)
{
	struct lmdb_txn *txn = lmdb_txn(base);
	struct ic_meta_extent ext;
	uint8_t kb[EXT_KEY];
	MDB_val k = { EXT_KEY, kb }, v;
	MDB_cursor *cur;
	int rc = meta_cursor(txn, meta_map_db(map), &cur);

	meta_ext_key(kb, disk, 0);
	for (int op = MDB_SET_RANGE; rc == 0; op = MDB_NEXT) {
		rc = mdb_cursor_get(cur, &k, &v, op);
		if (rc == MDB_NOTFOUND)
			return 0;
		if (rc)
			return meta_err(rc);
		rc = meta_ext_decode(&k, &v, disk, &ext);
		if (rc <= 0)
			return rc;
		rc = fn(arg, &ext);
	}
	return rc;
}

static int
meta_ext_put(struct lmdb_txn *txn, enum meta_db db, uint64_t disk,
	     const struct ic_meta_extent *ext)
{
	uint8_t kb[EXT_KEY], vb[EXT_VAL];
	MDB_val k = { EXT_KEY, kb }, v = { EXT_VAL, vb };

	meta_ext_key(kb, disk, ext->start);
	meta_put64(vb, ext->count);
	meta_put64(vb + 8, ext->holder);
	return meta_err(mdb_put(txn->txn, txn->meta->dbi[db], &k, &v, 0));
}

int
lmdb_extent_replace(struct ic_meta_txn *base, enum ic_map map, uint64_t disk, uint64_t start,
		    uint64_t count, const struct ic_meta_extent *ext, size_t n)
{
	struct lmdb_txn *txn = lmdb_txn(base);
	enum meta_db db = meta_map_db(map);
	uint64_t end = start + count;
	struct ic_meta_extent prev, cur_ext, tail = { 0 };
	bool have_prev, have_cur;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	rc = meta_cursor(txn, db, &cur);
	if (rc == 0)
		rc = meta_ext_seek(cur, disk, start, &prev, &have_prev, &cur_ext, &have_cur);
	if (rc)
		return rc;

	/* An extent that starts before the range keeps its head (and its
	 * tail, if it also reaches past the range's end). */
	if (have_prev && prev.start + prev.count > start) {
		if (prev.start + prev.count > end)
			tail = (struct ic_meta_extent){ end, prev.start + prev.count - end,
							prev.holder };
		prev.count = start - prev.start;
		rc = meta_ext_put(txn, db, disk, &prev);
		if (rc)
			return rc;
	}

	/* Delete the extents that start inside the range; keep the tail of
	 * the last one if it reaches past the end. */
	while (have_cur && cur_ext.start < end) {
		uint8_t kb[EXT_KEY];

		if (cur_ext.start + cur_ext.count > end)
			tail = (struct ic_meta_extent){ end, cur_ext.start + cur_ext.count - end,
							cur_ext.holder };
		meta_ext_key(kb, disk, cur_ext.start);
		k = (MDB_val){ EXT_KEY, kb };
		rc = meta_err(mdb_del(txn->txn, txn->meta->dbi[db], &k, NULL));
		if (rc)
			return rc;
		k = (MDB_val){ EXT_KEY, kb };
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc == MDB_NOTFOUND)
			break;
		if (rc)
			return meta_err(rc);
		rc = meta_ext_decode(&k, &v, disk, &cur_ext);
		if (rc < 0)
			return rc;
		have_cur = rc;
	}
	if (tail.count) {
		rc = meta_ext_put(txn, db, disk, &tail);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < n; i++) {
		rc = meta_ext_put(txn, db, disk, &ext[i]);
		if (rc)
			return rc;
	}
	return 0;
}
