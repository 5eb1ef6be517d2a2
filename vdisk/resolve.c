/* Flattened maps of frozen layers (docs/ARCHITECTURE.md §4 "resolved"): computed once
 * when a layer freezes, so a read of any chain costs at most two lookups. */
#include <errno.h>

#include "vdisk/internal.h"

static int
extmap_load_one(void *arg, const struct ic_meta_extent *ext)
{
	return extmap_set(arg, ext->start, ext->count, ext->holder);
}

int
extmap_load(struct ic_meta_txn *txn, enum ic_map map, uint64_t disk, struct extmap *out)
{
	*out = (struct extmap){ 0 };
	int rc = ic_meta_extent_foreach(txn, map, disk, extmap_load_one, out);

	if (rc)
		extmap_free(out);
	return rc;
}

int
extmap_save(struct ic_meta_txn *txn, enum ic_map kind, uint64_t disk, const struct extmap *map)
{
	int rc = ic_meta_extent_clear(txn, kind, disk);

	for (size_t i = 0; rc == 0 && i < map->n; i++)
		rc = ic_meta_extent_replace(txn, kind, disk, map->ext[i].start, map->ext[i].count,
					    &map->ext[i], 1);
	return rc;
}

int
resolve_build(struct ic_meta_txn *txn, uint64_t id, uint64_t parent)
{
	struct extmap map = { 0 }, own;
	int rc = parent ? extmap_load(txn, IC_MAP_RESOLVED, parent, &map) : 0;

	if (rc == 0)
		rc = extmap_load(txn, IC_MAP_ALLOC, id, &own);
	if (rc) {
		extmap_free(&map);
		return rc;
	}
	for (size_t i = 0; rc == 0 && i < own.n; i++)
		rc = extmap_set(&map, own.ext[i].start, own.ext[i].count, own.ext[i].holder);
	if (rc == 0)
		rc = extmap_save(txn, IC_MAP_RESOLVED, id, &map);
	extmap_free(&own);
	extmap_free(&map);
	return rc;
}

struct resolve_rename_ctx {
	struct ic_meta_txn *txn;
	uint64_t from, to;
};

static int
resolve_rename_one(void *arg, const struct ic_disk_rec *rec)
{
	struct resolve_rename_ctx *c = arg;
	struct extmap map;
	bool changed = false;
	int rc;

	if (!(rec->flags & IC_DISK_FROZEN))
		return 0;
	rc = extmap_load(c->txn, IC_MAP_RESOLVED, rec->id, &map);
	for (size_t i = 0; rc == 0 && i < map.n; i++) {
		if (map.ext[i].holder == c->from) {
			map.ext[i].holder = c->to;
			changed = true;
		}
	}
	if (rc == 0 && changed)
		rc = extmap_save(c->txn, IC_MAP_RESOLVED, rec->id, &map);
	extmap_free(&map);
	return rc;
}

int
resolve_rename(struct ic_meta_txn *txn, uint64_t from, uint64_t to)
{
	struct resolve_rename_ctx c = { txn, from, to };

	return ic_meta_disk_foreach(txn, resolve_rename_one, &c);
}
