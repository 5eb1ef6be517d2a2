/* The LMDB backend's record tables: one named database each, keys and
 * values as meta/records.c encodes them. */
#include <errno.h>

#include "meta/internal.h"

int
lmdb_get(struct ic_meta_txn *base, enum meta_db db, const void *key, size_t klen,
	 struct meta_val *out)
{
	struct lmdb_txn *txn = lmdb_txn(base);
	MDB_val k = { klen, (void *)key }, v;
	int rc = meta_err(mdb_get(txn->txn, txn->meta->dbi[db], &k, &v));

	if (rc == 0)
		*out = (struct meta_val){ v.mv_size, v.mv_data };
	return rc;
}

int
lmdb_put(struct ic_meta_txn *base, enum meta_db db, const void *key, size_t klen,
	 const void *val, size_t vlen)
{
	struct lmdb_txn *txn = lmdb_txn(base);
	MDB_val k = { klen, (void *)key }, v = { vlen, (void *)val };

	return meta_err(mdb_put(txn->txn, txn->meta->dbi[db], &k, &v, 0));
}

int
lmdb_del(struct ic_meta_txn *base, enum meta_db db, const void *key, size_t klen)
{
	struct lmdb_txn *txn = lmdb_txn(base);
	MDB_val k = { klen, (void *)key };

	return meta_err(mdb_del(txn->txn, txn->meta->dbi[db], &k, NULL));
}

int
lmdb_walk(struct ic_meta_txn *base, enum meta_db db, meta_walk_fn fn, void *arg)
{
	struct lmdb_txn *txn = lmdb_txn(base);
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = meta_cursor(txn, db, &cur);

	for (int op = MDB_FIRST; rc == 0; op = MDB_NEXT) {
		rc = mdb_cursor_get(cur, &k, &v, op);
		if (rc == MDB_NOTFOUND)
			return 0;
		rc = rc ? meta_err(rc)
			: fn(arg, &(struct meta_val){ k.mv_size, k.mv_data },
			     &(struct meta_val){ v.mv_size, v.mv_data });
	}
	return rc;
}
