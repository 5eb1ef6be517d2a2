/* Private to meta/: the etcd backend (docs/MULTI-HOST.md §2, §3).
 *
 * meta/etcd.c     the handle: URL, key names, a pool of clients, create and open
 * meta/etcd_txn.c optimistic transactions: snapshot reads, buffered writes,
 *                 one etcd txn at commit comparing what was read
 * meta/etcd_extents.c extent maps in chunks of 2^16 clusters
 * meta/etcd_commit.c  the commit: one etcd txn, sent again when its outcome
 *                     is unknown, in steps when too large
 */
#ifndef IC_META_ETCD_H
#define IC_META_ETCD_H

#include <pthread.h>

#include "etcd/etcd.h"
#include "meta/backend.h"

/* "/isocache/PREFIX/" and a table's or a chunk's key after it. */
#define ETCD_KEY_MAX 1024
#define ETCD_CLIENTS 16	      /* idle clients kept for the next transactions */
#define ETCD_TIMEOUT_MS 5000  /* per call; ISOCACHE_ETCD_TIMEOUT_MS overrides */
#define ETCD_TXN_OPS_MAX 128  /* etcd's --max-txn-ops default */
#define ETCD_TXN_BYTES_MAX (1u << 20) /* values per commit: etcd takes 1.5 MiB, base64 4/3 */
#define ETCD_FENCES_MAX 8
#define ETCD_RETRY_PAUSE_MS 100 /* before a commit of unknown outcome is sent again */
#define ETCD_CHUNK_BITS 16    /* clusters per extent-map chunk: 2^16 */

struct etcd_meta {
	struct ic_meta base;
	struct ic_etcd_url url;
	char text[1024];			   /* the URL as given, for messages */
	char root[IC_ETCD_PREFIX_MAX + 16]; /* "/isocache/PREFIX/" */
	unsigned timeout_ms;
	bool readonly;
	pthread_mutex_t mu;
	struct ic_etcd *idle[ETCD_CLIENTS];
	unsigned nidle;
};

/* A key this transaction read or wrote, as the transaction sees it. */
struct etcd_entry {
	char *key; /* full key */
	void *val;
	size_t len;
	bool present;
	bool point_read; /* read alone: its mod_revision is compared at commit */
	bool dirty;	 /* written: sent at commit */
	int64_t mod;	 /* mod_revision read (0: absent) */
};

struct etcd_map; /* meta/etcd_extents.c */

struct etcd_txn {
	struct ic_meta_txn base;
	struct etcd_meta *meta;
	struct ic_etcd *client;
	int64_t rev; /* the snapshot's revision: 0 until the first read */
	struct etcd_entry *e;
	size_t n, cap;
	char **ranges; /* prefixes walked: compared as "nothing newer than rev" */
	size_t nranges;
	struct {
		char *key;
		int64_t mod;
		bool (*valid)(void *arg); /* NULL: always */
		void *arg;
	} fence[ETCD_FENCES_MAX];
	unsigned nfences;
	bool guarded; /* some fence has a validity (etcd_txn_valid) */
	struct etcd_map *maps; /* extent maps loaded, with their dirty chunks */
};

static inline struct etcd_txn *
etcd_txn(struct ic_meta_txn *txn)
{
	return container_of(txn, struct etcd_txn, base);
}

/* meta/etcd.c: a client for a transaction (from the pool, else new), and
 * back. */
int etcd_client_get(struct etcd_meta *meta, struct ic_etcd **out);
void etcd_client_put(struct etcd_meta *meta, struct ic_etcd *client);
/* The full key of db's record key (klen bytes) into buf (ETCD_KEY_MAX),
 * and the prefix of db's table; -ENAMETOOLONG. */
int etcd_db_key(const struct etcd_meta *meta, enum meta_db db, const void *key, size_t klen,
		char *buf);
int etcd_db_prefix(const struct etcd_meta *meta, enum meta_db db, char *buf);
/* The deletion marker of record key (its table's prefix) into buf
 * (ETCD_KEY_MAX); -ENOENT when key is no record's (a map's chunk). */
int etcd_record_marker(const struct etcd_meta *meta, const char *key, char *buf);

/* meta/etcd_txn.c: the transaction's key/value level, full keys. */
int etcd_txn_begin(struct ic_meta *meta, bool write, struct ic_meta_txn **out);
int etcd_txn_commit(struct ic_meta_txn *txn);
void etcd_txn_abort(struct ic_meta_txn *txn);
int etcd_txn_fence(struct ic_meta_txn *txn, const char *key, int64_t mod_revision,
		   bool (*valid)(void *arg), void *arg);
/* Do the holders of txn's fences still wait for its commit (each fence's
 * valid)? An ic_etcd_set_go_on function; arg is the etcd_txn. */
bool etcd_txn_valid(void *arg);
/* A fresh disk id: info/next_disk_id moved on by compare-and-swap at once,
 * outside the transaction, so that no two transactions get one id. */
int etcd_new_id(struct ic_meta_txn *txn, uint64_t *out);
/* The entry of key as the transaction sees it (read once from etcd); its
 * present flag says whether the key exists. */
int etcd_txn_read(struct etcd_txn *txn, const char *key, struct etcd_entry **out);
int etcd_txn_write(struct etcd_txn *txn, const char *key, const void *val, size_t len);
/* Delete key (which must exist, as the transaction sees it): the head of
 * the range (the key "range" itself, a marker) is written too, so that any
 * transaction that walked the range conflicts as with an insertion. */
int etcd_txn_remove(struct etcd_txn *txn, const char *key, const char *range);
/* fn for every key under prefix (the marker left out) in key order, as the
 * transaction sees them; the range is then compared at commit. */
int etcd_txn_walk(struct etcd_txn *txn, const char *prefix,
		  int (*fn)(void *arg, const struct etcd_entry *e), void *arg);
int etcd_get(struct ic_meta_txn *txn, enum meta_db db, const void *key, size_t klen,
	     struct meta_val *out);
int etcd_put(struct ic_meta_txn *txn, enum meta_db db, const void *key, size_t klen,
	     const void *val, size_t vlen);
int etcd_del(struct ic_meta_txn *txn, enum meta_db db, const void *key, size_t klen);
int etcd_walk(struct ic_meta_txn *txn, enum meta_db db, meta_walk_fn fn, void *arg);

/* meta/etcd_commit.c: send txn's writes (after etcd_maps_flush) as one
 * etcd txn, or in steps when too large (see there). 0, -EAGAIN (what it
 * read changed; nothing written), -ESTALE (a fence), -E2BIG, -ETIMEDOUT
 * or -ECONNRESET (its outcome unknown: it may be applied), or the etcd
 * call's -errno. */
int etcd_commit_send(struct etcd_txn *txn);

/* meta/etcd_extents.c */
int etcd_extent_find(struct ic_meta_txn *txn, enum ic_map map, uint64_t disk, uint64_t cluster,
		     struct ic_meta_extent *out);
int etcd_extent_foreach(struct ic_meta_txn *txn, enum ic_map map, uint64_t disk,
			int (*fn)(void *arg, const struct ic_meta_extent *ext), void *arg);
int etcd_extent_replace(struct ic_meta_txn *txn, enum ic_map map, uint64_t disk, uint64_t start,
			uint64_t count, const struct ic_meta_extent *ext, size_t n);
/* Before a commit: the chunks the transaction changed become writes. */
int etcd_maps_flush(struct etcd_txn *txn);
/* Is name (what follows a map's prefix) a chunk's: 16 lower-case hex
 * digits? Its number in *chunk. */
bool etcd_chunk_name(const char *name, uint64_t *chunk);
/* The keys of every chunk under a map's prefix: [from, to), each
 * ETCD_KEY_MAX + 2 bytes. */
void etcd_chunk_range(const char *prefix, char *from, char *to);
/* May the chunks under prefix (a map's, "…/resolved/<disk>/") be written
 * ahead of the commit (meta/etcd_commit.c)? Only a flattened map that had
 * no chunk at the snapshot: one is read only once its disk is frozen,
 * which the commit itself does, so no one sees chunks written ahead. */
bool etcd_map_ahead(const struct etcd_txn *txn, const char *prefix);
void etcd_maps_free(struct etcd_txn *txn);

#endif
