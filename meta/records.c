/* The record databases: disks, names and owners, and their fixed
 * little-endian encodings (docs/FORMAT.md). */
#include <errno.h>
#include <stdio.h>

#include "common/log.h"
#include "meta/internal.h"

/* disks value: parent, size, created (u64), flags (u32), uuid[16], name. */
#define DISK_FIXED (8 + 8 + 8 + 4 + 16)

static int
meta_get(struct ic_meta_txn *txn, enum meta_db db, MDB_val *key, MDB_val *val)
{
	return meta_err(mdb_get(txn->txn, txn->meta->dbi[db], key, val));
}

static int
meta_put(struct ic_meta_txn *txn, enum meta_db db, MDB_val *key, const void *data, size_t len)
{
	MDB_val v = { len, (void *)data };

	return meta_err(mdb_put(txn->txn, txn->meta->dbi[db], key, &v, 0));
}

static int
meta_del(struct ic_meta_txn *txn, enum meta_db db, MDB_val *key)
{
	return meta_err(mdb_del(txn->txn, txn->meta->dbi[db], key, NULL));
}

static int
meta_disk_decode(uint64_t id, const MDB_val *v, struct ic_disk_rec *out)
{
	const uint8_t *p = v->mv_data;
	size_t name_len;

	if (v->mv_size < DISK_FIXED || v->mv_size - DISK_FIXED >= IC_META_NAME_MAX) {
		ic_log(IC_LOG_ERR, "metadata: record of disk %llu is damaged (%zu bytes)",
		       (unsigned long long)id, v->mv_size);
		return -EUCLEAN;
	}
	out->id = id;
	out->parent = meta_get64(p);
	out->size = meta_get64(p + 8);
	out->created = meta_get64(p + 16);
	out->flags = meta_get32(p + 24);
	memcpy(out->uuid, p + 28, 16);
	name_len = v->mv_size - DISK_FIXED;
	memcpy(out->name, p + DISK_FIXED, name_len);
	out->name[name_len] = '\0';
	return 0;
}

int
ic_meta_disk_get(struct ic_meta_txn *txn, uint64_t id, struct ic_disk_rec *out)
{
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v;
	int rc;

	meta_key64(kb, id);
	rc = meta_get(txn, DB_DISKS, &k, &v);
	return rc ? rc : meta_disk_decode(id, &v, out);
}

int
ic_meta_disk_put(struct ic_meta_txn *txn, const struct ic_disk_rec *rec)
{
	uint8_t kb[8], vb[DISK_FIXED + IC_META_NAME_MAX];
	MDB_val k = { 8, kb };
	size_t name_len = strnlen(rec->name, IC_META_NAME_MAX - 1);

	meta_key64(kb, rec->id);
	meta_put64(vb, rec->parent);
	meta_put64(vb + 8, rec->size);
	meta_put64(vb + 16, rec->created);
	meta_put32(vb + 24, rec->flags);
	memcpy(vb + 28, rec->uuid, 16);
	memcpy(vb + DISK_FIXED, rec->name, name_len);
	return meta_put(txn, DB_DISKS, &k, vb, DISK_FIXED + name_len);
}

int
ic_meta_disk_del(struct ic_meta_txn *txn, uint64_t id)
{
	uint8_t kb[8];
	MDB_val k = { 8, kb };

	meta_key64(kb, id);
	return meta_del(txn, DB_DISKS, &k);
}

int
ic_meta_disk_new_id(struct ic_meta_txn *txn, uint64_t *out)
{
	MDB_val k = { 12, "next_disk_id" }, v;
	uint8_t buf[8];
	int rc = meta_get(txn, DB_INFO, &k, &v);

	if (rc == -ENOENT || (rc == 0 && v.mv_size != 8)) {
		ic_log(IC_LOG_ERR, "metadata: next_disk_id is missing or damaged");
		rc = -EUCLEAN;
	}
	if (rc)
		return rc;
	*out = meta_get64(v.mv_data);
	meta_put64(buf, *out + 1);
	return meta_put(txn, DB_INFO, &k, buf, 8);
}

/* Call fn for every entry of db in key order; stops at fn's first non-zero
 * return, which is returned. */
static int
meta_walk(struct ic_meta_txn *txn, enum meta_db db,
	  int (*fn)(void *arg, const MDB_val *k, const MDB_val *v), void *arg)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = meta_cursor(txn, db, &cur);

	for (int op = MDB_FIRST; rc == 0; op = MDB_NEXT) {
		rc = mdb_cursor_get(cur, &k, &v, op);
		if (rc == MDB_NOTFOUND)
			return 0;
		rc = rc ? meta_err(rc) : fn(arg, &k, &v);
	}
	return rc;
}

struct meta_disk_walk {
	int (*fn)(void *arg, const struct ic_disk_rec *rec);
	void *arg;
};

static int
meta_disk_one(void *arg, const MDB_val *k, const MDB_val *v)
{
	struct meta_disk_walk *w = arg;
	struct ic_disk_rec rec;
	int rc;

	if (k->mv_size != 8) {
		ic_log(IC_LOG_ERR, "metadata: a disk record has a %zu-byte key", k->mv_size);
		return -EUCLEAN;
	}
	rc = meta_disk_decode(meta_unkey64(k->mv_data), v, &rec);
	return rc ? rc : w->fn(w->arg, &rec);
}

int
ic_meta_disk_foreach(struct ic_meta_txn *txn,
		     int (*fn)(void *arg, const struct ic_disk_rec *rec), void *arg)
{
	struct meta_disk_walk w = { fn, arg };

	return meta_walk(txn, DB_DISKS, meta_disk_one, &w);
}

static MDB_val
meta_name_key(const char *name)
{
	return (MDB_val){ strlen(name), (void *)name };
}

int
ic_meta_name_get(struct ic_meta_txn *txn, const char *name, uint64_t *id)
{
	MDB_val k = meta_name_key(name), v;
	int rc = meta_get(txn, DB_NAMES, &k, &v);

	if (rc == 0 && v.mv_size != 8) {
		ic_log(IC_LOG_ERR, "metadata: the name record of %s is damaged", name);
		rc = -EUCLEAN;
	}
	if (rc == 0)
		*id = meta_get64(v.mv_data);
	return rc;
}

int
ic_meta_name_put(struct ic_meta_txn *txn, const char *name, uint64_t id)
{
	MDB_val k = meta_name_key(name);
	uint8_t buf[8];

	meta_put64(buf, id);
	return meta_put(txn, DB_NAMES, &k, buf, 8);
}

int
ic_meta_name_del(struct ic_meta_txn *txn, const char *name)
{
	MDB_val k = meta_name_key(name);

	return meta_del(txn, DB_NAMES, &k);
}

struct meta_name_walk {
	int (*fn)(void *arg, const char *name, uint64_t id);
	void *arg;
};

static int
meta_name_one(void *arg, const MDB_val *k, const MDB_val *v)
{
	struct meta_name_walk *w = arg;
	char name[IC_META_NAME_MAX];

	if (v->mv_size != 8 || k->mv_size == 0 || k->mv_size >= sizeof(name)) {
		ic_log(IC_LOG_ERR, "metadata: a name record is damaged");
		return -EUCLEAN;
	}
	memcpy(name, k->mv_data, k->mv_size);
	name[k->mv_size] = '\0';
	return w->fn(w->arg, name, meta_get64(v->mv_data));
}

int
ic_meta_name_foreach(struct ic_meta_txn *txn,
		     int (*fn)(void *arg, const char *name, uint64_t id), void *arg)
{
	struct meta_name_walk w = { fn, arg };

	return meta_walk(txn, DB_NAMES, meta_name_one, &w);
}

/* owners value: owner_id[16], boot_id[16], generation, start_time,
 * acquired (u64), pid (u32), socket[108], who[64]. */
#define OWNER_SIZE (16 + 16 + 8 + 8 + 8 + 4 + 108 + 64)

int
ic_meta_owner_get(struct ic_meta_txn *txn, const char *name, struct ic_owner_rec *out)
{
	MDB_val k = meta_name_key(name), v;
	const uint8_t *p;
	int rc = meta_get(txn, DB_OWNERS, &k, &v);

	if (rc)
		return rc;
	if (v.mv_size != OWNER_SIZE) {
		ic_log(IC_LOG_ERR, "metadata: ownership record of %s is damaged", name);
		return -EUCLEAN;
	}
	p = v.mv_data;
	memcpy(out->owner_id, p, 16);
	memcpy(out->boot_id, p + 16, 16);
	out->generation = meta_get64(p + 32);
	out->start_time = meta_get64(p + 40);
	out->acquired = meta_get64(p + 48);
	out->pid = meta_get32(p + 56);
	memcpy(out->socket, p + 60, sizeof(out->socket));
	out->socket[sizeof(out->socket) - 1] = '\0';
	memcpy(out->who, p + 60 + 108, sizeof(out->who));
	out->who[sizeof(out->who) - 1] = '\0';
	return 0;
}

int
ic_meta_owner_put(struct ic_meta_txn *txn, const char *name, const struct ic_owner_rec *rec)
{
	MDB_val k = meta_name_key(name);
	uint8_t p[OWNER_SIZE] = { 0 };

	memcpy(p, rec->owner_id, 16);
	memcpy(p + 16, rec->boot_id, 16);
	meta_put64(p + 32, rec->generation);
	meta_put64(p + 40, rec->start_time);
	meta_put64(p + 48, rec->acquired);
	meta_put32(p + 56, rec->pid);
	memcpy(p + 60, rec->socket, strnlen(rec->socket, sizeof(rec->socket) - 1));
	memcpy(p + 60 + 108, rec->who, strnlen(rec->who, sizeof(rec->who) - 1));
	return meta_put(txn, DB_OWNERS, &k, p, sizeof(p));
}

int
ic_meta_owner_del(struct ic_meta_txn *txn, const char *name)
{
	MDB_val k = meta_name_key(name);

	return meta_del(txn, DB_OWNERS, &k);
}
