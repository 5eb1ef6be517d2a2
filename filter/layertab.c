/* Per-layer slots for filters' counters: open addressing over disk_id with
 * a compare-and-swap claim, so the data path finds or makes its slot
 * without a lock or an allocation. Slots are never released: a layer that
 * comes back finds its counters again. */
#include "filter/internal.h"

#include <errno.h>
#include <stdlib.h>

int
ic_layer_table_init(struct ic_layer_table *t, unsigned cap)
{
	unsigned pow2 = 1;

	while (pow2 < cap)
		pow2 <<= 1;
	t->keys = calloc(pow2, sizeof(*t->keys));
	if (!t->keys)
		return -ENOMEM;
	t->cap = pow2;
	return 0;
}

void
ic_layer_table_fini(struct ic_layer_table *t)
{
	free(t->keys);
	t->keys = NULL;
}

int
ic_layer_table_slot(struct ic_layer_table *t, uint64_t disk_id)
{
	const uint64_t key = disk_id + 1;
	unsigned i = (unsigned)((key * 0x9e3779b97f4a7c15ull) >> 40) & (t->cap - 1);

	if (key == 0)
		return -ENOSPC;
	for (unsigned probe = 0; probe < t->cap; probe++, i = (i + 1) & (t->cap - 1)) {
		uint64_t cur = atomic_load_explicit(&t->keys[i], memory_order_acquire);

		if (cur == 0 && atomic_compare_exchange_strong(&t->keys[i], &cur, key))
			return (int)i;
		if (cur == key)
			return (int)i;
	}
	return -ENOSPC;
}

bool
ic_layer_table_key(const struct ic_layer_table *t, unsigned i, uint64_t *disk_id)
{
	uint64_t key = atomic_load_explicit(&t->keys[i], memory_order_acquire);

	*disk_id = key - 1;
	return key != 0;
}
