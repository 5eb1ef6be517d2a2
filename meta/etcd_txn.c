/* The etcd backend's transactions (docs/MULTI-HOST.md §2). etcd has no
 * interactive transactions, so they run optimistically, as etcd's own
 * concurrency.STM does:
 *
 * - Reads are made at one revision, the first read's, so a transaction
 *   sees one snapshot as an LMDB one does. Every key read or written is
 *   kept (struct etcd_entry): a key is read from etcd at most once, and a
 *   transaction's reads see its own writes.
 * - Writes are buffered and sent at commit as one etcd txn, applied only if
 *   what the transaction read still holds: each key read alone has the
 *   mod_revision it was read with (create_revision 0 if it was absent), and
 *   no key under a prefix walked is newer than the snapshot. A deletion
 *   leaves no key to be newer, so it also rewrites the head of its range (a
 *   marker key, the prefix itself, never walked): a walk that missed the
 *   deletion conflicts as with an insertion. One compare per walk keeps a
 *   commit far under etcd's 128 compares, whatever a walk read.
 * - A commit whose compares fail writes nothing and returns -EAGAIN, or
 *   -ESTALE when a fence (ic_meta_txn_fence) is what failed.
 * - The commit itself is meta/etcd_commit.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "meta/codec.h"
#include "meta/etcd.h"

int
etcd_txn_begin(struct ic_meta *base, bool write, struct ic_meta_txn **out)
{
	struct etcd_meta *meta = container_of(base, struct etcd_meta, base);
	struct etcd_txn *txn;
	int rc;

	if (write && meta->readonly)
		return -EACCES;
	txn = calloc(1, sizeof(*txn));
	if (!txn)
		return -ENOMEM;
	rc = etcd_client_get(meta, &txn->client);
	if (rc) {
		free(txn);
		return rc;
	}
	txn->base = (struct ic_meta_txn){ .meta = base, .write = write };
	txn->meta = meta;
	*out = &txn->base;
	return 0;
}

static void
etcd_txn_free(struct etcd_txn *txn)
{
	for (size_t i = 0; i < txn->n; i++) {
		free(txn->e[i].key);
		free(txn->e[i].val);
	}
	free(txn->e);
	for (size_t i = 0; i < txn->nranges; i++)
		free(txn->ranges[i]);
	free(txn->ranges);
	for (unsigned i = 0; i < txn->nfences; i++)
		free(txn->fence[i].key);
	etcd_maps_free(txn);
	etcd_client_put(txn->meta, txn->client);
	free(txn);
}

void
etcd_txn_abort(struct ic_meta_txn *base)
{
	etcd_txn_free(etcd_txn(base));
}

static struct etcd_entry *
etcd_entry_find(struct etcd_txn *txn, const char *key)
{
	for (size_t i = 0; i < txn->n; i++)
		if (strcmp(txn->e[i].key, key) == 0)
			return &txn->e[i];
	return NULL;
}

static struct etcd_entry *
etcd_entry_add(struct etcd_txn *txn, const char *key)
{
	struct etcd_entry *e;

	if (txn->n == txn->cap) {
		size_t cap = txn->cap ? 2 * txn->cap : 16;

		e = realloc(txn->e, cap * sizeof(*e));
		if (!e)
			return NULL;
		txn->e = e;
		txn->cap = cap;
	}
	e = &txn->e[txn->n];
	*e = (struct etcd_entry){ .key = strdup(key) };
	if (!e->key)
		return NULL;
	txn->n++;
	return e;
}

/* Take kv (as read) into the transaction, unless it knows the key already. */
static int
etcd_entry_take(struct etcd_txn *txn, struct ic_etcd_kv *kv, bool point_read)
{
	struct etcd_entry *e = etcd_entry_find(txn, kv->key);

	if (e)
		return 0;
	e = etcd_entry_add(txn, kv->key);
	if (!e)
		return -ENOMEM;
	e->val = kv->value;
	e->len = kv->value_len;
	kv->value = NULL;
	e->present = true;
	e->point_read = point_read;
	e->mod = kv->mod_revision;
	return 0;
}

/* Read key (or the keys under it) at the snapshot's revision, fixing that
 * revision at the first read. */
static int
etcd_txn_range(struct etcd_txn *txn, const char *key, bool prefix, struct ic_etcd_kvs *kvs)
{
	int rc = ic_etcd_range(txn->client, key, prefix, txn->rev, kvs);

	if (rc) {
		ic_log(IC_LOG_ERR, "%s: metadata read failed: %s", txn->meta->text,
		       ic_etcd_last_error(txn->client));
		return rc;
	}
	if (txn->rev == 0)
		txn->rev = kvs->revision;
	return 0;
}

int
etcd_txn_read(struct etcd_txn *txn, const char *key, struct etcd_entry **out)
{
	struct ic_etcd_kvs kvs;
	int rc;

	*out = etcd_entry_find(txn, key);
	if (*out)
		return 0;
	rc = etcd_txn_range(txn, key, false, &kvs);
	if (rc)
		return rc;
	if (kvs.n > 0) {
		rc = etcd_entry_take(txn, &kvs.kv[0], true);
	} else {
		struct etcd_entry *e = etcd_entry_add(txn, key);

		rc = e ? 0 : -ENOMEM;
		if (e)
			e->point_read = true; /* absent: compared as create_revision 0 */
	}
	ic_etcd_kvs_free(&kvs);
	if (rc == 0)
		*out = etcd_entry_find(txn, key);
	return rc;
}

int
etcd_txn_write(struct etcd_txn *txn, const char *key, const void *val, size_t len)
{
	struct etcd_entry *e = etcd_entry_find(txn, key);
	void *copy = malloc(len + 1);

	if (!copy)
		return -ENOMEM;
	if (!e)
		e = etcd_entry_add(txn, key);
	if (!e) {
		free(copy);
		return -ENOMEM;
	}
	memcpy(copy, val, len);
	((char *)copy)[len] = '\0';
	free(e->val);
	e->val = copy;
	e->len = len;
	e->present = true;
	e->dirty = true;
	return 0;
}

int
etcd_txn_remove(struct etcd_txn *txn, const char *key, const char *range)
{
	struct etcd_entry *e;
	int rc = etcd_txn_read(txn, key, &e);

	if (rc)
		return rc;
	if (!e->present)
		return -ENOENT;
	free(e->val);
	e->val = NULL;
	e->len = 0;
	e->present = false;
	e->dirty = true;
	return etcd_txn_write(txn, range, "", 0);
}

static int
etcd_txn_load_range(struct etcd_txn *txn, const char *prefix)
{
	struct ic_etcd_kvs kvs;
	char **ranges, *copy;
	int rc;

	for (size_t i = 0; i < txn->nranges; i++)
		if (strcmp(txn->ranges[i], prefix) == 0)
			return 0;
	ranges = realloc(txn->ranges, (txn->nranges + 1) * sizeof(*ranges));
	if (!ranges)
		return -ENOMEM;
	txn->ranges = ranges;
	copy = strdup(prefix);
	if (!copy)
		return -ENOMEM;
	rc = etcd_txn_range(txn, prefix, true, &kvs);
	if (rc) {
		free(copy);
		return rc;
	}
	for (size_t i = 0; rc == 0 && i < kvs.n; i++)
		rc = etcd_entry_take(txn, &kvs.kv[i], false);
	ic_etcd_kvs_free(&kvs);
	if (rc) {
		free(copy);
		return rc;
	}
	txn->ranges[txn->nranges++] = copy;
	return 0;
}

static int
etcd_entry_cmp(const void *a, const void *b, void *arg)
{
	const struct etcd_txn *txn = arg;

	return strcmp(txn->e[*(const size_t *)a].key, txn->e[*(const size_t *)b].key);
}

int
etcd_txn_walk(struct etcd_txn *txn, const char *prefix,
	      int (*fn)(void *arg, const struct etcd_entry *e), void *arg)
{
	size_t plen = strlen(prefix), n = 0, *idx;
	int rc = etcd_txn_load_range(txn, prefix);

	if (rc)
		return rc;
	idx = malloc((txn->n + 1) * sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	for (size_t i = 0; i < txn->n; i++)
		if (txn->e[i].present && strncmp(txn->e[i].key, prefix, plen) == 0 &&
		    txn->e[i].key[plen])
			idx[n++] = i;
	/* etcd's order is strcmp's (bytes, unsigned). */
	qsort_r(idx, n, sizeof(*idx), etcd_entry_cmp, txn);
	/* By index: fn may read more keys, moving the array. */
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = fn(arg, &txn->e[idx[i]]);
	free(idx);
	return rc;
}

int
etcd_txn_fence(struct ic_meta_txn *base, const char *key, int64_t mod_revision,
	       bool (*valid)(void *arg), void *arg)
{
	struct etcd_txn *txn = etcd_txn(base);

	if (txn->nfences == ETCD_FENCES_MAX)
		return -E2BIG;
	txn->fence[txn->nfences].key = strdup(key);
	if (!txn->fence[txn->nfences].key)
		return -ENOMEM;
	txn->fence[txn->nfences].valid = valid;
	txn->guarded |= valid != NULL;
	txn->fence[txn->nfences].arg = arg;
	txn->fence[txn->nfences++].mod = mod_revision;
	return 0;
}

bool
etcd_txn_valid(void *arg)
{
	const struct etcd_txn *txn = arg;

	for (unsigned i = 0; i < txn->nfences; i++)
		if (txn->fence[i].valid && !txn->fence[i].valid(txn->fence[i].arg))
			return false;
	return true;
}

/* Optimistic as the rest, but at once and alone: the id is taken when the
 * CAS succeeds, whether the transaction then commits or not (ids are
 * never reused; one left unused is no harm). */
int
etcd_new_id(struct ic_meta_txn *base, uint64_t *out)
{
	struct etcd_txn *txn = etcd_txn(base);
	char key[ETCD_KEY_MAX];
	struct ic_etcd_kv kv;
	uint8_t next[8];
	int rc = etcd_db_key(txn->meta, DB_INFO, "next_disk_id", 12, key);

	if (!base->write)
		return -EACCES;
	for (int tries = 1; rc == 0; tries++) {
		rc = ic_etcd_get(txn->client, key, &kv);
		if (rc == -ENOENT || (rc == 0 && kv.value_len != 8)) {
			ic_log(IC_LOG_ERR, "metadata: next_disk_id is missing or damaged");
			rc = -EUCLEAN;
		}
		if (rc)
			break;
		*out = meta_get64(kv.value);
		meta_put64(next, *out + 1);
		rc = ic_etcd_cas(txn->client, key, kv.mod_revision, next, 8, 0, NULL);
		ic_etcd_kv_free(&kv);
		if (rc != -ECANCELED)
			break;
		rc = tries < 100 ? 0 : -EAGAIN; /* 100 lost races in a row: give up */
	}
	if (rc)
		ic_log(IC_LOG_ERR, "%s: cannot take a disk id: %s", txn->meta->text,
		       rc == -EUCLEAN || rc == -EAGAIN ? strerror(-rc)
						       : ic_etcd_last_error(txn->client));
	return rc;
}

/* ---- records: meta/records.c's key/value ops ---- */

int
etcd_get(struct ic_meta_txn *base, enum meta_db db, const void *key, size_t klen,
	 struct meta_val *out)
{
	struct etcd_txn *txn = etcd_txn(base);
	char full[ETCD_KEY_MAX];
	struct etcd_entry *e;
	int rc = etcd_db_key(txn->meta, db, key, klen, full);

	if (rc == 0)
		rc = etcd_txn_read(txn, full, &e);
	if (rc)
		return rc;
	if (!e->present)
		return -ENOENT;
	*out = (struct meta_val){ e->len, e->val };
	return 0;
}

int
etcd_put(struct ic_meta_txn *base, enum meta_db db, const void *key, size_t klen, const void *val,
	 size_t vlen)
{
	struct etcd_txn *txn = etcd_txn(base);
	char full[ETCD_KEY_MAX];
	int rc;

	if (!base->write)
		return -EACCES;
	rc = etcd_db_key(txn->meta, db, key, klen, full);
	return rc ? rc : etcd_txn_write(txn, full, val, vlen);
}

int
etcd_del(struct ic_meta_txn *base, enum meta_db db, const void *key, size_t klen)
{
	struct etcd_txn *txn = etcd_txn(base);
	char full[ETCD_KEY_MAX], range[ETCD_KEY_MAX];
	int rc;

	if (!base->write)
		return -EACCES;
	rc = etcd_db_key(txn->meta, db, key, klen, full);
	if (rc == 0)
		rc = etcd_db_prefix(txn->meta, db, range);
	return rc ? rc : etcd_txn_remove(txn, full, range);
}

struct etcd_walk {
	size_t plen;
	bool hex; /* DB_DISKS: the key is 16 hex digits of 8 bytes */
	meta_walk_fn fn;
	void *arg;
};

static int
etcd_walk_one(void *arg, const struct etcd_entry *e)
{
	struct etcd_walk *w = arg;
	const char *k = e->key + w->plen;
	uint8_t id[8];
	struct meta_val key = { strlen(k), k };

	if (w->hex) {
		unsigned byte;

		if (key.len != 16) {
			ic_log(IC_LOG_ERR, "metadata: %s is not a disk record's key", e->key);
			return -EUCLEAN;
		}
		for (int i = 0; i < 8; i++) {
			if (sscanf(k + 2 * i, "%2x", &byte) != 1) {
				ic_log(IC_LOG_ERR, "metadata: %s is not a disk record's key", e->key);
				return -EUCLEAN;
			}
			id[i] = (uint8_t)byte;
		}
		key = (struct meta_val){ 8, id };
	}
	return w->fn(w->arg, &key, &(struct meta_val){ e->len, e->val });
}

int
etcd_walk(struct ic_meta_txn *base, enum meta_db db, meta_walk_fn fn, void *arg)
{
	struct etcd_txn *txn = etcd_txn(base);
	char prefix[ETCD_KEY_MAX];
	struct etcd_walk w = { .hex = db == DB_DISKS, .fn = fn, .arg = arg };
	int rc = etcd_db_prefix(txn->meta, db, prefix);

	if (rc)
		return rc;
	w.plen = strlen(prefix);
	return etcd_txn_walk(txn, prefix, etcd_walk_one, &w);
}

int
etcd_txn_commit(struct ic_meta_txn *base)
{
	struct etcd_txn *txn = etcd_txn(base);
	int rc = 0;

	if (base->write) {
		rc = etcd_maps_flush(txn);
		if (rc == 0)
			rc = etcd_commit_send(txn);
	}
	etcd_txn_free(txn);
	return rc;
}
