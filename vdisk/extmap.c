#include "vdisk/extmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void
extmap_free(struct extmap *map)
{
	free(map->ext);
	*map = (struct extmap){ 0 };
}

size_t
extmap_lower(const struct extmap *map, uint64_t cluster)
{
	size_t lo = 0, hi = map->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (map->ext[mid].start + map->ext[mid].count <= cluster)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct ic_meta_extent *
extmap_find(const struct extmap *map, uint64_t cluster, uint64_t *next)
{
	size_t i = extmap_lower(map, cluster);

	if (i < map->n && map->ext[i].start <= cluster)
		return &map->ext[i];
	*next = i < map->n ? map->ext[i].start : UINT64_MAX;
	return NULL;
}

static int
extmap_reserve(struct extmap *map, size_t extra)
{
	size_t cap = map->cap ? map->cap : 16;
	struct ic_meta_extent *ext;

	if (map->n + extra <= map->cap)
		return 0;
	while (cap < map->n + extra)
		cap *= 2;
	ext = realloc(map->ext, cap * sizeof(*ext));
	if (!ext)
		return -ENOMEM;
	map->ext = ext;
	map->cap = cap;
	return 0;
}

int
extmap_set(struct extmap *map, uint64_t start, uint64_t count, uint64_t holder)
{
	uint64_t end = start + count;
	struct ic_meta_extent repl[3];
	size_t first, last, nrepl = 0;

	if (count == 0)
		return 0;
	/* Room for the worst case (one extent split in two around the new one)
	 * first, so a failure leaves the map as it was. */
	if (extmap_reserve(map, 2))
		return -ENOMEM;
	first = extmap_lower(map, start);
	/* Take in the neighbours that touch the range too, to merge with them. */
	if (first > 0 && map->ext[first - 1].start + map->ext[first - 1].count == start)
		first--;
	last = first;
	while (last < map->n && map->ext[last].start <= end)
		last++;

	/* [first, last) overlap or touch the range: rebuild that slice. */
	if (first < last && map->ext[first].start < start)
		repl[nrepl++] = (struct ic_meta_extent){ map->ext[first].start,
							 start - map->ext[first].start,
							 map->ext[first].holder };
	if (holder != EXTMAP_NONE) {
		if (nrepl && repl[nrepl - 1].holder == holder)
			repl[nrepl - 1].count += count;
		else
			repl[nrepl++] = (struct ic_meta_extent){ start, count, holder };
	}
	if (first < last) {
		const struct ic_meta_extent *l = &map->ext[last - 1];
		uint64_t l_end = l->start + l->count;

		if (l_end > end) {
			if (nrepl && repl[nrepl - 1].holder == l->holder &&
			    repl[nrepl - 1].start + repl[nrepl - 1].count == end)
				repl[nrepl - 1].count += l_end - end;
			else
				repl[nrepl++] = (struct ic_meta_extent){ end, l_end - end, l->holder };
		}
	}
	memmove(&map->ext[first + nrepl], &map->ext[last], (map->n - last) * sizeof(*map->ext));
	memcpy(&map->ext[first], repl, nrepl * sizeof(*repl));
	map->n = map->n - (last - first) + nrepl;
	return 0;
}
