/* An in-memory extent map: sorted, non-overlapping runs of clusters, each
 * with a holder value; adjacent runs with the same holder are merged.
 * Used for a leaf's live allocation map and for its dirty ranges. Not
 * thread-safe: the owner locks. */
#ifndef IC_VDISK_EXTMAP_H
#define IC_VDISK_EXTMAP_H

#include <stddef.h>
#include <stdint.h>

#include "isocache/meta.h"

#define EXTMAP_NONE UINT64_MAX /* extmap_set with this holder removes the range */

struct extmap {
	struct ic_meta_extent *ext;
	size_t n, cap;
};

void extmap_free(struct extmap *map);
/* Make [start, start+count) hold holder (or nothing, with EXTMAP_NONE).
 * Returns 0 or -ENOMEM (the map is unchanged then). */
int extmap_set(struct extmap *map, uint64_t start, uint64_t count, uint64_t holder);
/* The extent containing cluster → its address. Otherwise NULL, and *next is
 * the first cluster after it that an extent covers (UINT64_MAX if none). */
const struct ic_meta_extent *extmap_find(const struct extmap *map, uint64_t cluster,
					 uint64_t *next);
/* Index of the first extent ending after cluster (n if none). */
size_t extmap_lower(const struct extmap *map, uint64_t cluster);

#endif
