/* The etcd backend's handle (docs/MULTI-HOST.md §3): the store's records
 * under "/isocache/PREFIX/" of the cluster an etcd:// URL names, a pool of
 * clients (a client serves one thread at a time: etcd/etcd.h), create and
 * open, and the ops table. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "meta/etcd.h"

static const char *const etcd_tables[DB_COUNT] = {
	[DB_INFO] = "info/",	 [DB_DISKS] = "disks/",	      [DB_NAMES] = "names/",
	[DB_ALLOC] = "alloc/", [DB_RESOLVED] = "resolved/", [DB_OWNERS] = "owners/",
};

int
etcd_db_prefix(const struct etcd_meta *meta, enum meta_db db, char *buf)
{
	int n = snprintf(buf, ETCD_KEY_MAX, "%s%s", meta->root, etcd_tables[db]);

	return n < ETCD_KEY_MAX ? 0 : -ENAMETOOLONG;
}

/* The deletion marker of a record's key: its table's prefix, which every
 * deletion in the table rewrites (etcd_txn_remove). -ENOENT for a key of
 * no record table: a map's chunk, whose map's prefix is its marker. */
int
etcd_record_marker(const struct etcd_meta *meta, const char *key, char *buf)
{
	for (enum meta_db db = 0; db < DB_COUNT; db++) {
		if (db == DB_ALLOC || db == DB_RESOLVED || etcd_db_prefix(meta, db, buf) != 0)
			continue;
		if (strncmp(key, buf, strlen(buf)) == 0)
			return 0;
	}
	return -ENOENT;
}

/* Disk ids are 8 big-endian bytes in LMDB; here 16 lowercase hex digits,
 * which sort the same way. Other tables' keys are text already. */
int
etcd_db_key(const struct etcd_meta *meta, enum meta_db db, const void *key, size_t klen,
	    char *buf)
{
	size_t at;
	int rc = etcd_db_prefix(meta, db, buf);

	if (rc)
		return rc;
	at = strlen(buf);
	if (db == DB_DISKS) {
		const uint8_t *k = key;

		if (klen != 8)
			return -EINVAL;
		for (size_t i = 0; i < 8; i++)
			snprintf(buf + at + 2 * i, 3, "%02x", k[i]);
		return 0;
	}
	if (memchr(key, '\0', klen))
		return -EINVAL;
	if (at + klen >= ETCD_KEY_MAX)
		return -ENAMETOOLONG;
	memcpy(buf + at, key, klen);
	buf[at + klen] = '\0';
	return 0;
}

int
etcd_client_get(struct etcd_meta *meta, struct ic_etcd **out)
{
	*out = NULL;
	pthread_mutex_lock(&meta->mu);
	if (meta->nidle)
		*out = meta->idle[--meta->nidle];
	pthread_mutex_unlock(&meta->mu);
	return *out ? 0 : ic_etcd_open(&meta->url, meta->timeout_ms, out);
}

void
etcd_client_put(struct etcd_meta *meta, struct ic_etcd *client)
{
	pthread_mutex_lock(&meta->mu);
	if (meta->nidle < ETCD_CLIENTS) {
		meta->idle[meta->nidle++] = client;
		client = NULL;
	}
	pthread_mutex_unlock(&meta->mu);
	ic_etcd_close(client);
}

static void
etcd_close(struct ic_meta *base)
{
	struct etcd_meta *meta = container_of(base, struct etcd_meta, base);

	for (unsigned i = 0; i < meta->nidle; i++)
		ic_etcd_close(meta->idle[i]);
	pthread_mutex_destroy(&meta->mu);
	free(meta);
}

static const struct ic_etcd_url *
etcd_url(const struct ic_meta *base)
{
	return &container_of(base, const struct etcd_meta, base)->url;
}

static int
etcd_key(const struct ic_meta *base, const char *kind, const char *name, char *buf, size_t len)
{
	const struct etcd_meta *meta = container_of(base, const struct etcd_meta, base);
	int n = snprintf(buf, len, "%s%s/%s", meta->root, kind, name);

	return n >= 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

static int
etcd_erase(struct ic_meta *base)
{
	struct etcd_meta *meta = container_of(base, struct etcd_meta, base);
	struct ic_etcd *client;
	int64_t deleted = 0;
	int rc = etcd_client_get(meta, &client);

	if (rc == 0) {
		rc = ic_etcd_delete(client, meta->root, true, &deleted);
		etcd_client_put(meta, client);
	}
	if (rc)
		ic_log(IC_LOG_ERR, "%s: the records under %s were not removed: %s", meta->text,
		       meta->root, strerror(-rc));
	else
		ic_log(IC_LOG_DEBUG, "%s: %lld records removed under %s", meta->text,
		       (long long)deleted, meta->root);
	return rc;
}

static const struct meta_backend etcd_ops = {
	.name = "etcd",
	.close = etcd_close,
	.begin = etcd_txn_begin,
	.commit = etcd_txn_commit,
	.abort = etcd_txn_abort,
	.get = etcd_get,
	.put = etcd_put,
	.del = etcd_del,
	.walk = etcd_walk,
	.extent_find = etcd_extent_find,
	.extent_foreach = etcd_extent_foreach,
	.extent_replace = etcd_extent_replace,
	.new_id = etcd_new_id,
	.fence = etcd_txn_fence,
	.etcd_url = etcd_url,
	.etcd_key = etcd_key,
	.erase = etcd_erase,
};

/* The per-call timeout: ISOCACHE_ETCD_TIMEOUT_MS, else ETCD_TIMEOUT_MS. */
static unsigned
etcd_timeout(void)
{
	const char *env = getenv("ISOCACHE_ETCD_TIMEOUT_MS");
	char *end;
	unsigned long v;

	if (!env || !*env)
		return ETCD_TIMEOUT_MS;
	v = strtoul(env, &end, 10);
	if (*end || v < 100 || v > 600000) {
		ic_log(IC_LOG_WARN, "ISOCACHE_ETCD_TIMEOUT_MS=%s: not 100..600000; using %u", env,
		       ETCD_TIMEOUT_MS);
		return ETCD_TIMEOUT_MS;
	}
	return (unsigned)v;
}

/* A handle on url's store, nothing read yet. */
static int
etcd_new(const char *url, bool readonly, struct etcd_meta **out)
{
	IC_AUTOFREE struct etcd_meta *meta = calloc(1, sizeof(*meta));
	int rc;

	if (!meta)
		return -ENOMEM;
	rc = ic_etcd_url_parse(url, &meta->url);
	if (rc)
		return rc;
	snprintf(meta->text, sizeof(meta->text), "%s", url);
	snprintf(meta->root, sizeof(meta->root), "/isocache/%s/", meta->url.prefix);
	meta->base.ops = &etcd_ops;
	meta->readonly = readonly;
	meta->timeout_ms = etcd_timeout();
	pthread_mutex_init(&meta->mu, NULL);
	*out = ic_steal(&meta);
	return 0;
}

/* The info records and "no store here" are written in one etcd txn whose
 * compare is that info/magic was absent when read: of two inits of one
 * prefix at once, one wins and the other finds a store. */
int
meta_etcd_create(const char *url, const uint8_t store_uuid[16], uint32_t cluster_size)
{
	struct etcd_meta *meta;
	struct ic_meta_txn *txn;
	struct meta_val v;
	int rc = etcd_new(url, false, &meta);

	if (rc)
		return rc;
	rc = etcd_txn_begin(&meta->base, true, &txn);
	if (rc == 0) {
		rc = etcd_get(txn, DB_INFO, "magic", 5, &v);
		if (rc == 0)
			rc = -EEXIST;
		else if (rc == -ENOENT)
			rc = meta_info_init(txn, store_uuid, cluster_size);
		rc = rc ? (etcd_txn_abort(txn), rc) : etcd_txn_commit(txn);
	}
	if (rc == -EEXIST || rc == -EAGAIN) {
		ic_log(IC_LOG_ERR, "%s: a store exists already under this prefix", url);
		rc = -EEXIST;
	} else if (rc) {
		ic_log(IC_LOG_ERR, "%s: cannot create the store's metadata: %s", url, strerror(-rc));
	}
	etcd_close(&meta->base);
	return rc;
}

int
meta_etcd_open(const char *url, bool readonly, struct ic_meta **out)
{
	struct etcd_meta *meta;
	int rc = etcd_new(url, readonly, &meta);

	if (rc)
		return rc;
	rc = meta_info_check(&meta->base, meta->text);
	if (rc) {
		if (rc != -EUCLEAN && rc != -EPROTONOSUPPORT)
			ic_log(IC_LOG_ERR, "%s: cannot open the store's metadata: %s", url,
			       strerror(-rc));
		etcd_close(&meta->base);
		return rc;
	}
	*out = &meta->base;
	return 0;
}
