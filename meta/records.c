/* The records: disks, names and owners, and their fixed little-endian
 * encodings (docs/FORMAT.md), on any backend's key/value ops. */
#include <errno.h>
#include <stdio.h>

#include "common/log.h"
#include "meta/backend.h"
#include "meta/codec.h"

/* disks value: parent, size, created (u64), flags (u32), uuid[16], name. */
#define DISK_FIXED (8 + 8 + 8 + 4 + 16)

static int
meta_get(struct ic_meta_txn *txn, enum meta_db db, const void *key, size_t klen,
	 struct meta_val *val)
{
	return txn->meta->ops->get(txn, db, key, klen, val);
}

static int
meta_put(struct ic_meta_txn *txn, enum meta_db db, const void *key, size_t klen,
	 const void *data, size_t len)
{
	return txn->meta->ops->put(txn, db, key, klen, data, len);
}

static int
meta_del(struct ic_meta_txn *txn, enum meta_db db, const void *key, size_t klen)
{
	return txn->meta->ops->del(txn, db, key, klen);
}

static int
meta_disk_decode(uint64_t id, const struct meta_val *v, struct ic_disk_rec *out)
{
	const uint8_t *p = v->data;
	size_t name_len;

	if (v->len < DISK_FIXED || v->len - DISK_FIXED >= IC_META_NAME_MAX) {
		ic_log(IC_LOG_ERR, "metadata: record of disk %llu is damaged (%zu bytes)",
		       (unsigned long long)id, v->len);
		return -EUCLEAN;
	}
	out->id = id;
	out->parent = meta_get64(p);
	out->size = meta_get64(p + 8);
	out->created = meta_get64(p + 16);
	out->flags = meta_get32(p + 24);
	memcpy(out->uuid, p + 28, 16);
	name_len = v->len - DISK_FIXED;
	memcpy(out->name, p + DISK_FIXED, name_len);
	out->name[name_len] = '\0';
	return 0;
}

int
ic_meta_disk_get(struct ic_meta_txn *txn, uint64_t id, struct ic_disk_rec *out)
{
	uint8_t kb[8];
	struct meta_val v;
	int rc;

	meta_key64(kb, id);
	rc = meta_get(txn, DB_DISKS, kb, 8, &v);
	return rc ? rc : meta_disk_decode(id, &v, out);
}

int
ic_meta_disk_put(struct ic_meta_txn *txn, const struct ic_disk_rec *rec)
{
	uint8_t kb[8], vb[DISK_FIXED + IC_META_NAME_MAX];
	size_t name_len = strnlen(rec->name, IC_META_NAME_MAX - 1);

	meta_key64(kb, rec->id);
	meta_put64(vb, rec->parent);
	meta_put64(vb + 8, rec->size);
	meta_put64(vb + 16, rec->created);
	meta_put32(vb + 24, rec->flags);
	memcpy(vb + 28, rec->uuid, 16);
	memcpy(vb + DISK_FIXED, rec->name, name_len);
	return meta_put(txn, DB_DISKS, kb, 8, vb, DISK_FIXED + name_len);
}

int
ic_meta_disk_del(struct ic_meta_txn *txn, uint64_t id)
{
	uint8_t kb[8];

	meta_key64(kb, id);
	return meta_del(txn, DB_DISKS, kb, 8);
}

int
ic_meta_disk_new_id(struct ic_meta_txn *txn, uint64_t *out)
{
	struct meta_val v;
	uint8_t buf[8];
	int rc;

	if (txn->meta->ops->new_id)
		return txn->meta->ops->new_id(txn, out);
	rc = meta_get(txn, DB_INFO, "next_disk_id", 12, &v);

	if (rc == -ENOENT || (rc == 0 && v.len != 8)) {
		ic_log(IC_LOG_ERR, "metadata: next_disk_id is missing or damaged");
		rc = -EUCLEAN;
	}
	if (rc)
		return rc;
	*out = meta_get64(v.data);
	meta_put64(buf, *out + 1);
	return meta_put(txn, DB_INFO, "next_disk_id", 12, buf, 8);
}

struct meta_disk_walk {
	int (*fn)(void *arg, const struct ic_disk_rec *rec);
	void *arg;
};

static int
meta_disk_one(void *arg, const struct meta_val *k, const struct meta_val *v)
{
	struct meta_disk_walk *w = arg;
	struct ic_disk_rec rec;
	int rc;

	if (k->len != 8) {
		ic_log(IC_LOG_ERR, "metadata: a disk record has a %zu-byte key", k->len);
		return -EUCLEAN;
	}
	rc = meta_disk_decode(meta_unkey64(k->data), v, &rec);
	return rc ? rc : w->fn(w->arg, &rec);
}

int
ic_meta_disk_foreach(struct ic_meta_txn *txn,
		     int (*fn)(void *arg, const struct ic_disk_rec *rec), void *arg)
{
	struct meta_disk_walk w = { fn, arg };

	return txn->meta->ops->walk(txn, DB_DISKS, meta_disk_one, &w);
}

int
ic_meta_name_get(struct ic_meta_txn *txn, const char *name, uint64_t *id)
{
	struct meta_val v;
	int rc = meta_get(txn, DB_NAMES, name, strlen(name), &v);

	if (rc == 0 && v.len != 8) {
		ic_log(IC_LOG_ERR, "metadata: the name record of %s is damaged", name);
		rc = -EUCLEAN;
	}
	if (rc == 0)
		*id = meta_get64(v.data);
	return rc;
}

int
ic_meta_name_put(struct ic_meta_txn *txn, const char *name, uint64_t id)
{
	uint8_t buf[8];

	meta_put64(buf, id);
	return meta_put(txn, DB_NAMES, name, strlen(name), buf, 8);
}

int
ic_meta_name_del(struct ic_meta_txn *txn, const char *name)
{
	return meta_del(txn, DB_NAMES, name, strlen(name));
}

struct meta_name_walk {
	int (*fn)(void *arg, const char *name, uint64_t id);
	void *arg;
};

static int
meta_name_one(void *arg, const struct meta_val *k, const struct meta_val *v)
{
	struct meta_name_walk *w = arg;
	char name[IC_META_NAME_MAX];

	if (v->len != 8 || k->len == 0 || k->len >= sizeof(name)) {
		ic_log(IC_LOG_ERR, "metadata: a name record is damaged");
		return -EUCLEAN;
	}
	memcpy(name, k->data, k->len);
	name[k->len] = '\0';
	return w->fn(w->arg, name, meta_get64(v->data));
}

int
ic_meta_name_foreach(struct ic_meta_txn *txn,
		     int (*fn)(void *arg, const char *name, uint64_t id), void *arg)
{
	struct meta_name_walk w = { fn, arg };

	return txn->meta->ops->walk(txn, DB_NAMES, meta_name_one, &w);
}

int
ic_meta_owner_get(struct ic_meta_txn *txn, const char *name, struct ic_owner_rec *out)
{
	struct meta_val v;
	int rc = meta_get(txn, DB_OWNERS, name, strlen(name), &v);

	if (rc == 0 && ic_meta_owner_decode(v.data, v.len, out) != 0) {
		ic_log(IC_LOG_ERR, "metadata: ownership record of %s is damaged", name);
		rc = -EUCLEAN;
	}
	return rc;
}

int
ic_meta_owner_put(struct ic_meta_txn *txn, const char *name, const struct ic_owner_rec *rec)
{
	uint8_t p[IC_OWNER_REC_BYTES];

	ic_meta_owner_encode(rec, p);
	return meta_put(txn, DB_OWNERS, name, strlen(name), p, sizeof(p));
}

int
ic_meta_owner_del(struct ic_meta_txn *txn, const char *name)
{
	return meta_del(txn, DB_OWNERS, name, strlen(name));
}

/* owners value: owner_id[16], boot_id[16], generation, start_time,
 * acquired (u64), pid (u32), socket[108], who[64]. */
_Static_assert(IC_OWNER_REC_BYTES == 16 + 16 + 8 + 8 + 8 + 4 + 108 + 64, "owner record size");

void
ic_meta_owner_encode(const struct ic_owner_rec *rec, uint8_t p[IC_OWNER_REC_BYTES])
{
	memset(p, 0, IC_OWNER_REC_BYTES);
	memcpy(p, rec->owner_id, 16);
	memcpy(p + 16, rec->boot_id, 16);
	meta_put64(p + 32, rec->generation);
	meta_put64(p + 40, rec->start_time);
	meta_put64(p + 48, rec->acquired);
	meta_put32(p + 56, rec->pid);
	memcpy(p + 60, rec->socket, strnlen(rec->socket, sizeof(rec->socket) - 1));
	memcpy(p + 60 + 108, rec->who, strnlen(rec->who, sizeof(rec->who) - 1));
}

int
ic_meta_owner_decode(const void *buf, size_t len, struct ic_owner_rec *out)
{
	const uint8_t *p = buf;

	if (len != IC_OWNER_REC_BYTES)
		return -EUCLEAN;
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
