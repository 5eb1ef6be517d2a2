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
 * - Every commit applies at most once (applied, it breaks one of its own
 *   compares), so one whose outcome is unknown (a member died or froze
 *   with it) is sent again; its failure branch reads back what it wrote,
 *   to tell an earlier attempt that was applied from a conflict.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
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
etcd_txn_fence(struct ic_meta_txn *base, const char *key, int64_t mod_revision)
{
	struct etcd_txn *txn = etcd_txn(base);

	if (txn->nfences == ETCD_FENCES_MAX)
		return -E2BIG;
	txn->fence[txn->nfences].key = strdup(key);
	if (!txn->fence[txn->nfences].key)
		return -ENOMEM;
	txn->fence[txn->nfences++].mod = mod_revision;
	return 0;
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

/* ---- commit ---- */

/* Does a compare of the commit cover written key e, so that once the
 * commit is applied it can never be applied again? A key read alone is
 * compared with its mod_revision, a key under a walked prefix with
 * "nothing newer than the snapshot". */
static bool
etcd_entry_compared(const struct etcd_txn *txn, const struct etcd_entry *e)
{
	if (e->point_read)
		return true;
	for (size_t i = 0; i < txn->nranges; i++)
		if (strncmp(e->key, txn->ranges[i], strlen(txn->ranges[i])) == 0)
			return true;
	return false;
}

/* After a failed compare: was it a fence? The failure branch read every
 * fenced key (got, in order; an absent key is not there). */
static bool
etcd_fence_broken(const struct etcd_txn *txn, const struct ic_etcd_kvs *got)
{
	for (unsigned i = 0; i < txn->nfences; i++) {
		bool held = false;

		for (size_t j = 0; j < got->n; j++)
			if (strcmp(got->kv[j].key, txn->fence[i].key) == 0)
				held = got->kv[j].mod_revision == txn->fence[i].mod;
		if (!held)
			return true;
	}
	return false;
}

struct etcd_commit {
	struct ic_etcd_cmp cmp[ETCD_TXN_OPS_MAX];
	struct ic_etcd_op op[ETCD_TXN_OPS_MAX];
	/* The failure branch: every fenced key, then written keys, read back
	 * to tell an earlier attempt that was applied from a conflict. */
	struct ic_etcd_op check[ETCD_TXN_OPS_MAX];
	const struct etcd_entry *checked[ETCD_TXN_OPS_MAX]; /* check[nfences + i]'s */
	unsigned ncmp, nop, ncheck, nchecked;
	bool once; /* applying it breaks one of its compares: safe to send again */
	size_t bytes;
};

/* Read back written keys in the failure branch, as many as etcd takes
 * after the fences: keys with a value first (a deletion's marker holds
 * nothing of this commit's own). */
static void
etcd_commit_checks(const struct etcd_txn *txn, struct etcd_commit *c)
{
	for (int valued = 1; valued >= 0; valued--)
		for (size_t i = 0; i < txn->n && c->ncheck < ETCD_TXN_OPS_MAX; i++) {
			const struct etcd_entry *e = &txn->e[i];

			if (!e->dirty || (e->present && e->len > 0) != valued)
				continue;
			c->check[c->ncheck++] = (struct ic_etcd_op){ .type = IC_ETCD_OP_GET,
								     .key = e->key };
			c->checked[c->nchecked++] = e;
		}
}

/* What the commit compares, writes and reads back on failure; -E2BIG past
 * etcd's limits. A commit that writes only keys no compare covers (and
 * read something: a snapshot to compare with) gets one compare more, its
 * first written key unchanged since the snapshot, so that it too can be
 * sent again after an attempt whose outcome is unknown. */
static int
etcd_commit_build(struct etcd_txn *txn, struct etcd_commit *c)
{
	size_t ncmp = txn->nfences + txn->nranges, nop = 0;
	const struct etcd_entry *guard = NULL;

	for (size_t i = 0; i < txn->n; i++) {
		const struct etcd_entry *e = &txn->e[i];

		ncmp += e->point_read;
		if (!e->dirty)
			continue;
		nop++;
		c->bytes += e->len + strlen(e->key);
		c->once |= etcd_entry_compared(txn, e);
		guard = guard ? guard : e;
	}
	if (!guard)
		c->once = true; /* nothing written: sent twice, the same */
	else if (!c->once && txn->rev)
		ncmp++;
	else
		guard = NULL;
	if (ncmp > ETCD_TXN_OPS_MAX || nop > ETCD_TXN_OPS_MAX || c->bytes > ETCD_TXN_BYTES_MAX) {
		ic_log(IC_LOG_ERR, "%s: a metadata commit of %zu compares, %zu writes and %zu bytes "
				   "is more than one etcd transaction takes (%u, %u, %u); nothing written",
		       txn->meta->text, ncmp, nop, c->bytes, ETCD_TXN_OPS_MAX, ETCD_TXN_OPS_MAX,
		       ETCD_TXN_BYTES_MAX);
		return -E2BIG;
	}
	for (unsigned i = 0; i < txn->nfences; i++) {
		c->cmp[c->ncmp++] = (struct ic_etcd_cmp){ .key = txn->fence[i].key,
							  .target = IC_ETCD_MOD,
							  .result = IC_ETCD_EQUAL,
							  .number = txn->fence[i].mod };
		c->check[c->ncheck++] =
			(struct ic_etcd_op){ .type = IC_ETCD_OP_GET, .key = txn->fence[i].key };
	}
	for (size_t i = 0; i < txn->nranges; i++)
		c->cmp[c->ncmp++] = (struct ic_etcd_cmp){ .key = txn->ranges[i], .prefix = true,
							  .target = IC_ETCD_MOD,
							  .result = IC_ETCD_LESS,
							  .number = txn->rev + 1 };
	if (guard) {
		c->cmp[c->ncmp++] = (struct ic_etcd_cmp){ .key = guard->key, .target = IC_ETCD_MOD,
							  .result = IC_ETCD_LESS,
							  .number = txn->rev + 1 };
		c->once = true;
	}
	for (size_t i = 0; i < txn->n; i++) {
		const struct etcd_entry *e = &txn->e[i];

		if (e->point_read)
			c->cmp[c->ncmp++] = (struct ic_etcd_cmp){
				.key = e->key, .target = e->mod ? IC_ETCD_MOD : IC_ETCD_CREATE,
				.result = IC_ETCD_EQUAL, .number = e->mod
			};
		if (e->dirty)
			c->op[c->nop++] = (struct ic_etcd_op){
				.type = e->present ? IC_ETCD_OP_PUT : IC_ETCD_OP_DELETE,
				.key = e->key, .value = e->val, .value_len = e->len
			};
	}
	etcd_commit_checks(txn, c);
	return 0;
}

/* After a failed compare: was the commit applied by an earlier attempt
 * whose answer was lost (a connection cut after the request was sent, an
 * attempt that timed out, libcurl sending the request again on a new
 * connection)? Then every written key read back holds what the commit
 * wrote, all at one revision after the snapshot, and every deleted key is
 * gone. */
static bool
etcd_commit_applied(const struct etcd_txn *txn, const struct etcd_commit *c,
		    const struct ic_etcd_kvs *got)
{
	int64_t at = 0;

	for (unsigned i = 0; i < c->nchecked; i++) {
		const struct etcd_entry *e = c->checked[i];
		const struct ic_etcd_kv *kv = NULL;

		for (size_t j = 0; j < got->n && !kv; j++)
			if (strcmp(got->kv[j].key, e->key) == 0)
				kv = &got->kv[j];
		if (!e->present) {
			if (kv)
				return false;
			continue;
		}
		if (!kv || kv->mod_revision <= txn->rev || (at && kv->mod_revision != at) ||
		    kv->value_len != e->len || (e->len && memcmp(kv->value, e->val, e->len) != 0))
			return false;
		at = kv->mod_revision;
	}
	return at != 0;
}

/* The request reached a member and no answer came (-ETIMEDOUT,
 * -ECONNRESET), or no member could take it (-EAGAIN: no leader, an
 * election under way): it may be applied, or may yet be. */
static bool
etcd_commit_unknown(int rc)
{
	return rc == -ETIMEDOUT || rc == -ECONNRESET || rc == -EAGAIN;
}

/* Send c; while its outcome is unknown and it is safe to send again (c->once),
 * send it again (the transport begins at another member) until the
 * client's timeout has passed once more. *tries: how many were sent. */
static int
etcd_commit_attempts(struct etcd_txn *txn, const struct etcd_commit *c,
		     struct ic_etcd_txn_result *res, unsigned *tries)
{
	int64_t deadline = 0, left = 0;
	int rc;

	for (*tries = 1;; ++*tries) {
		rc = ic_etcd_txn(txn->client, c->cmp, c->ncmp, c->op, c->nop, c->check, c->ncheck,
				 (unsigned)left, res);
		if (!c->once || !(etcd_commit_unknown(rc) || (*tries > 1 && rc == -ECONNREFUSED)))
			return rc;
		if (!deadline)
			deadline = ic_now_ms() + txn->meta->timeout_ms;
		left = deadline - ic_now_ms();
		if (left < ETCD_RETRY_PAUSE_MS)
			return rc;
		ic_log(IC_LOG_WARN, "%s: metadata commit: %s; its outcome is unknown: sending it "
				    "again, %lld ms left (it is applied at most once)",
		       txn->meta->text, ic_etcd_last_error(txn->client), (long long)left);
		if (rc != -ECONNRESET) /* a cut: another member at once; else a pause */
			ic_sleep_ms(ETCD_RETRY_PAUSE_MS);
		left = deadline - ic_now_ms();
	}
}

static int
etcd_commit_send(struct etcd_txn *txn)
{
	struct etcd_commit *c = calloc(1, sizeof(*c));
	struct ic_etcd_txn_result res;
	unsigned tries;
	bool answered;
	int rc;

	if (!c)
		return -ENOMEM;
	rc = etcd_commit_build(txn, c);
	if (rc || (c->nop == 0 && txn->nfences == 0)) {
		free(c);
		return rc;
	}
	rc = etcd_commit_attempts(txn, c, &res, &tries);
	answered = rc == 0;
	if (rc) {
		ic_log(IC_LOG_ERR, "%s: metadata commit failed: %s%s", txn->meta->text,
		       ic_etcd_last_error(txn->client),
		       tries > 1 || etcd_commit_unknown(rc)
			       ? " (whether it was applied is unknown; it is applied whole or not at "
				 "all)"
			       : "; nothing written");
	} else if (res.succeeded) {
		if (tries > 1)
			ic_log(IC_LOG_WARN, "%s: metadata commit applied at attempt %u",
			       txn->meta->text, tries);
	} else if (etcd_commit_applied(txn, c, &res.got)) {
		ic_log(IC_LOG_WARN, "%s: metadata commit: an earlier attempt was applied, its "
				    "answer lost (what it wrote is there, at one revision)",
		       txn->meta->text);
	} else {
		rc = etcd_fence_broken(txn, &res.got) ? -ESTALE : -EAGAIN;
		ic_log(rc == -ESTALE ? IC_LOG_ERR : IC_LOG_WARN,
		       "%s: metadata commit refused: %s since revision %lld; %s", txn->meta->text,
		       rc == -ESTALE ? "the owner's fencing record changed (deposed)"
				     : "what this transaction read changed",
		       (long long)txn->rev,
		       tries > 1 ? "an earlier attempt of it may have been applied"
				 : "nothing written");
	}
	if (answered)
		ic_etcd_kvs_free(&res.got);
	free(c);
	return rc;
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
