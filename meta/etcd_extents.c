/* The etcd backend's extent maps (docs/MULTI-HOST.md §3, docs/FORMAT.md):
 * a disk's map is chunked by the first cluster of its extents, chunk c
 * holding those that start in [c * 2^16, (c + 1) * 2^16) at the key
 * "alloc/<disk>/<c>" (or "resolved/..."), both numbers 16 hex digits. Its
 * value is the chunk's extents in order, each (start, count, holder) as
 * three little-endian u64. An extent may reach past its chunk's end.
 *
 * A transaction loads a map whole (one range read) the first time it
 * touches it and keeps it in memory; a replace marks the chunks whose
 * extents it changed, and at commit only those are rewritten (or deleted
 * when empty), so a flush of a few clusters rewrites one chunk. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "meta/codec.h"
#include "meta/etcd.h"

#define EXT_BYTES 24

struct etcd_map {
	struct etcd_map *next;
	enum ic_map map;
	uint64_t disk;
	char prefix[ETCD_KEY_MAX]; /* ".../alloc/<disk>/" */
	struct ic_meta_extent *e;  /* in order, not overlapping */
	size_t n, cap;
	uint64_t *dirty; /* chunks changed */
	size_t ndirty;
	bool fresh; /* no chunk at the snapshot */
};

static uint64_t
ext_chunk(uint64_t cluster)
{
	return cluster >> ETCD_CHUNK_BITS;
}

/* Room for len extents. */
static int
map_reserve(struct etcd_map *m, size_t len)
{
	size_t cap = m->cap ? m->cap : 8;
	struct ic_meta_extent *e;

	if (len <= m->cap)
		return 0;
	while (cap < len)
		cap *= 2;
	e = realloc(m->e, cap * sizeof(*e));
	if (!e)
		return -ENOMEM;
	m->e = e;
	m->cap = cap;
	return 0;
}

bool
etcd_chunk_name(const char *name, uint64_t *chunk)
{
	uint64_t c = 0;
	int i;

	for (i = 0; i < 16 && name[i]; i++) {
		char d = name[i];

		if (d >= '0' && d <= '9')
			c = c << 4 | (uint64_t)(d - '0');
		else if (d >= 'a' && d <= 'f')
			c = c << 4 | (uint64_t)(d - 'a' + 10);
		else
			return false;
	}
	if (i != 16 || name[16])
		return false;
	*chunk = c;
	return true;
}

void
etcd_chunk_range(const char *prefix, char *from, char *to)
{
	/* Chunks are named by 16 hex digits after the prefix: [0, g). */
	snprintf(from, ETCD_KEY_MAX + 2, "%s0", prefix);
	snprintf(to, ETCD_KEY_MAX + 2, "%sg", prefix);
}

static int
map_decode_chunk(void *arg, const struct etcd_entry *entry)
{
	struct etcd_map *m = arg;
	const uint8_t *p = entry->val;
	uint64_t chunk;

	if (!etcd_chunk_name(entry->key + strlen(m->prefix), &chunk) || entry->len % EXT_BYTES ||
	    entry->len == 0)
		goto bad;
	for (size_t i = 0; i < entry->len; i += EXT_BYTES) {
		struct ic_meta_extent ext = { meta_get64(p + i), meta_get64(p + i + 8),
					      meta_get64(p + i + 16) };

		if (ext.count == 0 || ext.start + ext.count < ext.start ||
		    ext_chunk(ext.start) != chunk ||
		    (m->n && ext.start < m->e[m->n - 1].start + m->e[m->n - 1].count))
			goto bad;
		if (map_reserve(m, m->n + 1))
			return -ENOMEM;
		m->e[m->n++] = ext;
	}
	return 0;
bad:
	ic_log(IC_LOG_ERR, "metadata: extent chunk %s is damaged", entry->key);
	return -EUCLEAN;
}

static void
map_free(struct etcd_map *m)
{
	free(m->e);
	free(m->dirty);
	free(m);
}

void
etcd_maps_free(struct etcd_txn *txn)
{
	while (txn->maps) {
		struct etcd_map *m = txn->maps;

		txn->maps = m->next;
		map_free(m);
	}
}

/* disk's map as the transaction sees it, loaded on first use. */
static int
map_get(struct etcd_txn *txn, enum ic_map map, uint64_t disk, struct etcd_map **out)
{
	struct etcd_map *m;
	int rc;

	for (m = txn->maps; m; m = m->next)
		if (m->map == map && m->disk == disk) {
			*out = m;
			return 0;
		}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->map = map;
	m->disk = disk;
	rc = etcd_db_prefix(txn->meta, map == IC_MAP_ALLOC ? DB_ALLOC : DB_RESOLVED, m->prefix);
	if (rc == 0 && strlen(m->prefix) + 34 >= ETCD_KEY_MAX)
		rc = -ENAMETOOLONG;
	if (rc == 0) {
		snprintf(m->prefix + strlen(m->prefix), 18, "%016llx/", (unsigned long long)disk);
		rc = etcd_txn_walk(txn, m->prefix, map_decode_chunk, m);
		m->fresh = m->n == 0;
	}
	if (rc) {
		map_free(m);
		return rc;
	}
	m->next = txn->maps;
	txn->maps = m;
	*out = m;
	return 0;
}

/* The index of the first extent starting after cluster. */
static size_t
map_upper(const struct etcd_map *m, uint64_t cluster)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->e[mid].start <= cluster)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int
etcd_extent_find(struct ic_meta_txn *base, enum ic_map map, uint64_t disk, uint64_t cluster,
		 struct ic_meta_extent *out)
{
	struct etcd_map *m;
	size_t i;
	int rc = map_get(etcd_txn(base), map, disk, &m);

	if (rc)
		return rc;
	i = map_upper(m, cluster);
	if (i > 0 && m->e[i - 1].start + m->e[i - 1].count > cluster) {
		*out = m->e[i - 1];
		return 0;
	}
	*out = (struct ic_meta_extent){ i < m->n ? m->e[i].start : UINT64_MAX, 0, 0 };
	return -ENOENT;
}

int
etcd_extent_foreach(struct ic_meta_txn *base, enum ic_map map, uint64_t disk,
		    int (*fn)(void *arg, const struct ic_meta_extent *ext), void *arg)
{
	struct etcd_map *m;
	int rc = map_get(etcd_txn(base), map, disk, &m);

	for (size_t i = 0; rc == 0 && i < m->n; i++)
		rc = fn(arg, &m->e[i]);
	return rc;
}

static int
map_mark(struct etcd_map *m, uint64_t cluster)
{
	uint64_t chunk = ext_chunk(cluster), *d;

	for (size_t i = 0; i < m->ndirty; i++)
		if (m->dirty[i] == chunk)
			return 0;
	d = realloc(m->dirty, (m->ndirty + 1) * sizeof(*d));
	if (!d)
		return -ENOMEM;
	m->dirty = d;
	m->dirty[m->ndirty++] = chunk;
	return 0;
}

/* Replace m->e[lo, hi) by the n extents of with: O(n + moved), so that a
 * map written in order (extmap_save) costs no more than its length. */
static int
map_splice(struct etcd_map *m, size_t lo, size_t hi, const struct ic_meta_extent *with, size_t n)
{
	size_t len = m->n - hi + lo + n;

	if (map_reserve(m, len ? len : 1)) /* never NULL: pointer arithmetic below */
		return -ENOMEM;
	memmove(m->e + lo + n, m->e + hi, (m->n - hi) * sizeof(*m->e));
	memcpy(m->e + lo, with, n * sizeof(*with));
	m->n = len;
	return 0;
}

/* Cut [start, end) out of the map, keeping the head and tail of extents
 * across either end, and put ext in (sorted, inside the range: checked by
 * ic_meta_extent_replace); every chunk whose extents change is marked. */
int
etcd_extent_replace(struct ic_meta_txn *base, enum ic_map map, uint64_t disk, uint64_t start,
		    uint64_t count, const struct ic_meta_extent *ext, size_t n)
{
	uint64_t end = start + count;
	struct ic_meta_extent *with;
	struct etcd_map *m;
	size_t lo, hi, k = 0;
	int rc = map_get(etcd_txn(base), map, disk, &m);

	if (rc)
		return rc;
	lo = map_upper(m, start);
	if (lo > 0 && m->e[lo - 1].start + m->e[lo - 1].count > start)
		lo--;
	hi = end ? map_upper(m, end - 1) : 0;
	if (hi < lo)
		hi = lo;
	with = malloc((n + 2) * sizeof(*with));
	if (!with)
		return -ENOMEM;
	for (size_t i = lo; rc == 0 && i < hi; i++)
		rc = map_mark(m, m->e[i].start);
	if (rc == 0 && hi > lo && m->e[lo].start < start)
		with[k++] = (struct ic_meta_extent){ m->e[lo].start, start - m->e[lo].start,
						     m->e[lo].holder };
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = map_mark(m, ext[i].start);
		with[k++] = ext[i];
	}
	if (rc == 0 && hi > lo && m->e[hi - 1].start + m->e[hi - 1].count > end) {
		const struct ic_meta_extent *x = &m->e[hi - 1];

		rc = map_mark(m, end);
		with[k++] = (struct ic_meta_extent){ end, x->start + x->count - end, x->holder };
	}
	if (rc == 0)
		rc = map_splice(m, lo, hi, with, k);
	free(with);
	return rc;
}

/* Chunk c of m as the transaction's write (or removal when empty). */
static int
map_flush_chunk(struct etcd_txn *txn, struct etcd_map *m, uint64_t c)
{
	char key[ETCD_KEY_MAX + 20];
	size_t i = c ? map_upper(m, (c << ETCD_CHUNK_BITS) - 1) : 0, j;
	uint8_t *buf;
	int rc;

	for (j = i; j < m->n && ext_chunk(m->e[j].start) == c; j++)
		;
	snprintf(key, sizeof(key), "%s%016llx", m->prefix, (unsigned long long)c);
	if (j == i) {
		rc = etcd_txn_remove(txn, key, m->prefix);
		return rc == -ENOENT ? 0 : rc;
	}
	buf = malloc((j - i) * EXT_BYTES);
	if (!buf)
		return -ENOMEM;
	for (size_t k = i; k < j; k++) {
		meta_put64(buf + (k - i) * EXT_BYTES, m->e[k].start);
		meta_put64(buf + (k - i) * EXT_BYTES + 8, m->e[k].count);
		meta_put64(buf + (k - i) * EXT_BYTES + 16, m->e[k].holder);
	}
	rc = etcd_txn_write(txn, key, buf, (j - i) * EXT_BYTES);
	free(buf);
	return rc;
}

int
etcd_maps_flush(struct etcd_txn *txn)
{
	int rc = 0;

	for (struct etcd_map *m = txn->maps; m && rc == 0; m = m->next) {
		for (size_t i = 0; rc == 0 && i < m->ndirty; i++)
			rc = map_flush_chunk(txn, m, m->dirty[i]);
		m->ndirty = 0;
	}
	return rc;
}

bool
etcd_map_ahead(const struct etcd_txn *txn, const char *prefix)
{
	for (const struct etcd_map *m = txn->maps; m; m = m->next)
		if (m->map == IC_MAP_RESOLVED && m->fresh && strcmp(m->prefix, prefix) == 0)
			return true;
	return false;
}
