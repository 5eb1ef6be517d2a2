/* vdisk/extmap: the in-memory extent map, against a per-cluster array. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "vdisk/extmap.h"

#define CLUSTERS 200

static void
check_against(const struct extmap *map, const uint64_t *model)
{
	for (uint64_t c = 0; c < CLUSTERS; c++) {
		uint64_t next;
		const struct ic_meta_extent *e = extmap_find(map, c, &next);

		if (model[c] == EXTMAP_NONE) {
			assert_null(e);
			assert_true(next > c);
			for (uint64_t k = c; k < next && k < CLUSTERS; k++)
				assert_true(model[k] == EXTMAP_NONE);
		} else {
			assert_non_null(e);
			assert_int_equal(e->holder, model[c]);
		}
	}
	/* Sorted, disjoint, and merged: neighbours that touch differ. */
	for (size_t i = 1; i < map->n; i++) {
		const struct ic_meta_extent *a = &map->ext[i - 1], *b = &map->ext[i];

		assert_true(a->start + a->count <= b->start);
		assert_false(a->start + a->count == b->start && a->holder == b->holder);
	}
}

static void
test_random_sets_match_model(void **state)
{
	uint64_t model[CLUSTERS];
	struct extmap map = { 0 };

	(void)state;
	srand(7);
	for (int i = 0; i < CLUSTERS; i++)
		model[i] = EXTMAP_NONE;
	for (int i = 0; i < 20000; i++) {
		uint64_t start = (uint64_t)rand() % CLUSTERS;
		uint64_t count = 1 + (uint64_t)rand() % (rand() % 4 ? 4 : 60);
		uint64_t holder = rand() % 5 == 0 ? EXTMAP_NONE : (uint64_t)rand() % 3;

		if (start + count > CLUSTERS)
			count = CLUSTERS - start;
		assert_int_equal(extmap_set(&map, start, count, holder), 0);
		for (uint64_t c = start; c < start + count; c++)
			model[c] = holder;
		if (i % 97 == 0)
			check_against(&map, model);
	}
	check_against(&map, model);
	extmap_free(&map);
}

static void
test_touching_runs_merge(void **state)
{
	struct extmap map = { 0 };

	(void)state;
	assert_int_equal(extmap_set(&map, 0, 4, 1), 0);
	assert_int_equal(extmap_set(&map, 8, 4, 1), 0);
	assert_int_equal(map.n, 2);
	assert_int_equal(extmap_set(&map, 4, 4, 1), 0);
	assert_int_equal(map.n, 1);
	assert_int_equal(map.ext[0].count, 12);
	assert_int_equal(extmap_set(&map, 5, 2, EXTMAP_NONE), 0);
	assert_int_equal(map.n, 2);
	assert_int_equal(extmap_lower(&map, 6), 1);
	extmap_free(&map);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_sets_match_model),
		cmocka_unit_test(test_touching_runs_merge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
