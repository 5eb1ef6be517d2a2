/* isocached's dedup (cached/dedup.c): equal blocks of layers of one dedup
 * domain are held once, never across domains, never on a digest alone;
 * aliases cost no memory and no quota, and leave with what they alias. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cached/internal.h"

#define CAP 64 /* the smallest store: 256 KiB */

struct fixture {
	struct cached_store st;
	struct cached_layer *a, *b; /* root's, on one filesystem: one domain */
	struct cached_layer *t;	    /* a tenant's (uid 1000), same filesystem */
};

static struct cached_layer *
add_layer(struct fixture *fx, ino_t ino, uid_t owner)
{
	struct stat sb = { .st_dev = 1, .st_ino = ino, .st_uid = owner, .st_size = 1 << 24 };
	uint8_t uuid[16] = { (uint8_t)ino };
	struct cached_layer *l;

	assert_int_equal(cached_store_layer(&fx->st, uuid, &sb, open("/dev/null", O_RDONLY), &l),
			 0);
	return l;
}

static int
setup(void **state)
{
	static struct fixture fx;

	assert_int_equal(cached_store_init(&fx.st, CAP * IC_CACHED_BLOCK), 0);
	assert_int_equal(cached_store_dedup(&fx.st), 0);
	fx.a = add_layer(&fx, 2, 0);
	fx.b = add_layer(&fx, 3, 0);
	fx.t = add_layer(&fx, 4, 1000);
	*state = &fx;
	return 0;
}

/* After every test: each alias points at a valid data entry that chains
 * it, and the blocks charged add up to the blocks holding pages. */
static int
teardown(void **state)
{
	struct fixture *fx = *state;
	struct cached_store *st = &fx->st;
	uint64_t charged = 0, data = 0;

	for (uint32_t u = 0; u < st->nuids; u++)
		charged += st->uids[u].used;
	for (uint32_t i = 0; i < st->nentries; i++) {
		const struct cached_entry *e = &st->e[i];
		uint32_t c = e->canon, a;

		if (e->state == CACHED_FREE)
			continue;
		if (c == CACHED_NIL) {
			data++;
			continue;
		}
		assert_int_equal(st->e[c].state, CACHED_VALID);
		assert_int_equal(st->e[c].canon, CACHED_NIL);
		for (a = st->e[c].anext; a != i; a = st->e[a].anext)
			assert_int_not_equal(a, CACHED_NIL);
	}
	assert_int_equal(charged, st->used);
	assert_int_equal(data, st->used);
	cached_store_fini(st);
	return 0;
}

/* Fill block blk of l with bytes `fill` for uid slot u, as a completed
 * fill does, and publish it; returns the entry. */
static uint32_t
put(struct fixture *fx, struct cached_layer *l, uint64_t blk, int fill, uint16_t u)
{
	uint32_t i = cached_store_alloc(&fx->st, l->id, blk, u);

	assert_int_not_equal(i, CACHED_NIL);
	memset(cached_store_data(&fx->st, i), fill, IC_CACHED_BLOCK);
	if (cached_store_publish(&fx->st, i))
		cached_arena_punch(&l->arena, blk, 1);
	return i;
}

/* What a reader of (l, blk) gets from the daemon: the first byte, every
 * byte checked equal; -1 when it is not cached. */
static int
read_byte(struct fixture *fx, struct cached_layer *l, uint64_t blk)
{
	uint32_t i = cached_store_lookup(&fx->st, l->id, blk);
	const uint8_t *d;

	if (i == CACHED_NIL)
		return -1;
	d = cached_store_data(&fx->st, i);
	for (unsigned k = 1; k < IC_CACHED_BLOCK; k++)
		assert_int_equal(d[k], d[0]);
	return d[0];
}

static bool
in_arena(struct cached_layer *l, uint64_t blk)
{
	return (atomic_load(&l->arena.slots[blk].seq) & IC_CACHED_SEQ_VALID) != 0;
}

static void
test_equal_blocks_of_one_domain_held_once(void **state)
{
	struct fixture *fx = *state;
	uint16_t u = cached_store_uid(&fx->st, 0);

	put(fx, fx->a, 5, 0xab, u);
	put(fx, fx->a, 6, 0x01, u);
	put(fx, fx->b, 9, 0xab, u); /* equal to a's block 5 */
	put(fx, fx->b, 10, 0x02, u);
	assert_int_equal(fx->st.used, 3);
	assert_int_equal(fx->st.uids[u].used, 3);
	assert_int_equal(read_byte(fx, fx->b, 9), 0xab);
	assert_int_equal(read_byte(fx, fx->b, 10), 0x02);
	assert_int_equal(fx->b->stats[IC_CACHED_STAT_DEDUP_BYTES], IC_CACHED_BLOCK);
	assert_int_equal(fx->b->stats[IC_CACHED_STAT_BLOCKS], 1);
	assert_int_equal(fx->a->stats[IC_CACHED_STAT_DEDUP_BYTES], 0);
	/* b's arena has only b's own page: the shared block is read through
	 * the daemon, from a's arena, which b's clients never map. */
	assert_false(in_arena(fx->b, 9));
	assert_true(in_arena(fx->b, 10));
	assert_true(in_arena(fx->a, 5));
	/* Equal blocks within one layer count too. */
	put(fx, fx->a, 7, 0x01, u);
	assert_int_equal(fx->st.used, 3);
	assert_int_equal(fx->a->stats[IC_CACHED_STAT_DEDUP_BYTES], IC_CACHED_BLOCK);
}

static void
test_other_owner_never_shares(void **state)
{
	struct fixture *fx = *state;
	uint16_t root = cached_store_uid(&fx->st, 0), tenant = cached_store_uid(&fx->st, 1000);

	put(fx, fx->a, 1, 0x5a, root);
	put(fx, fx->t, 1, 0x5a, tenant); /* the same bytes in a tenant's layer */
	assert_int_equal(fx->st.used, 2);
	assert_int_equal(fx->t->stats[IC_CACHED_STAT_DEDUP_BYTES], 0);
	assert_true(in_arena(fx->t, 1));
	/* And the other way round: root's block is not an alias of hers. */
	put(fx, fx->t, 2, 0x77, tenant);
	put(fx, fx->b, 2, 0x77, root);
	assert_int_equal(fx->st.used, 4);
	assert_int_equal(fx->b->stats[IC_CACHED_STAT_DEDUP_BYTES], 0);
}

/* A digest collision (made here by filing a's block under the digest of
 * b's different bytes, as a tenant who knew the secret would try) must
 * cost only a compare: b keeps and serves its own bytes. */
static void
test_collision_is_never_served(void **state)
{
	struct fixture *fx = *state;
	uint16_t u = cached_store_uid(&fx->st, 0);
	uint8_t mine[IC_CACHED_BLOCK];
	uint32_t victim = put(fx, fx->a, 3, 0x11, u);

	memset(mine, 0x22, sizeof(mine));
	cached_dedup_remove(&fx->st, victim);
	fx->st.dd->digest[victim] = XXH3_128bits_withSecret(mine, sizeof(mine), fx->st.dd->secret,
							    sizeof(fx->st.dd->secret));
	cached_dedup_insert(&fx->st, victim);
	put(fx, fx->b, 3, 0x22, u);
	assert_int_equal(read_byte(fx, fx->b, 3), 0x22);
	assert_int_equal(read_byte(fx, fx->a, 3), 0x11);
	assert_int_equal(fx->b->stats[IC_CACHED_STAT_DEDUP_BYTES], 0);
	assert_int_equal(fx->st.used, 2);
}

/* Aliases hold no page: with the store full of a's blocks but one (a fill
 * needs a page before its bytes are known), b's equal blocks all fit
 * without evicting any; a data block that leaves takes its aliases along
 * (evicted or dropped), so none points at a freed page. */
static void
test_aliases_cost_no_memory_and_leave_with_their_block(void **state)
{
	struct fixture *fx = *state;
	uint16_t u = cached_store_uid(&fx->st, 0);
	uint64_t evicted;

	for (int k = 0; k < CAP - 1; k++)
		put(fx, fx->a, (uint64_t)k, k, u);
	for (int k = 0; k < CAP - 1; k++)
		put(fx, fx->b, (uint64_t)k + 100, k, u);
	assert_int_equal(fx->a->stats[IC_CACHED_STAT_EVICTIONS], 0);
	assert_int_equal(fx->st.used, CAP - 1);
	assert_int_equal(fx->b->stats[IC_CACHED_STAT_DEDUP_BYTES], (CAP - 1) * IC_CACHED_BLOCK);
	for (int k = 0; k < CAP - 1; k++)
		assert_int_equal(read_byte(fx, fx->b, (uint64_t)k + 100), k);
	/* Two new blocks: the second must evict a data block of a, and the
	 * alias in b goes with it. */
	put(fx, fx->b, 500, 0xee, u);
	put(fx, fx->b, 501, 0xef, u);
	assert_int_equal(fx->st.used, CAP);
	assert_int_equal(fx->a->stats[IC_CACHED_STAT_EVICTIONS], 1);
	assert_int_equal(fx->b->stats[IC_CACHED_STAT_EVICTIONS], 1);
	assert_int_equal(fx->b->stats[IC_CACHED_STAT_DEDUP_BYTES], (CAP - 2) * IC_CACHED_BLOCK);
	evicted = 0;
	for (int k = 0; k < CAP - 1; k++)
		evicted += read_byte(fx, fx->b, (uint64_t)k + 100) == -1;
	assert_int_equal(evicted, 1);
	/* DROP of a: every alias in b goes; b's own blocks stay. */
	assert_int_equal(cached_store_drop(&fx->st, fx->a->id), CAP - 2);
	assert_int_equal(fx->b->stats[IC_CACHED_STAT_DEDUP_BYTES], 0);
	assert_int_equal(fx->b->stats[IC_CACHED_STAT_BLOCKS], 2);
	for (int k = 0; k < CAP - 1; k++)
		assert_int_equal(read_byte(fx, fx->b, (uint64_t)k + 100), -1);
	assert_int_equal(read_byte(fx, fx->b, 500), 0xee);
	assert_int_equal(fx->st.used, 2);
	/* The freed entries serve again: the store fills to its bound. */
	for (int k = 0; k < 2 * CAP; k++)
		put(fx, fx->a, (uint64_t)k + 1000, k + 1, u);
	assert_true(fx->st.used <= CAP);
	assert_int_equal(read_byte(fx, fx->a, 2 * CAP - 1 + 1000), 2 * CAP);
}

/* A shared block is charged once, to the uid whose fill brought it first;
 * a capped uid's alias does not count against its quota. */
static void
test_shared_block_charged_once(void **state)
{
	struct fixture *fx = *state;
	uint16_t first = cached_store_uid(&fx->st, 0), second = cached_store_uid(&fx->st, 42);

	assert_int_equal(cached_store_set_quota(&fx->st, 42, IC_CACHED_BLOCK), 0);
	put(fx, fx->a, 1, 0x33, first);
	put(fx, fx->b, 1, 0x33, second);
	put(fx, fx->b, 2, 0x44, second);
	assert_int_equal(fx->st.uids[first].used, 1);
	assert_int_equal(fx->st.uids[second].used, 1);
	assert_int_equal(read_byte(fx, fx->b, 1), 0x33);
	assert_int_equal(read_byte(fx, fx->b, 2), 0x44);
}

static struct cached_fill *submitted;

static int
fake_submit(struct cached_store *st, struct cached_fill *f)
{
	(void)st;
	submitted = f;
	return 0;
}

static void
fake_finish(struct cached_store *st, struct cached_req *r)
{
	(void)st;
	(void)r;
}

/* Bytes of the arena's memfd that hold pages. */
static uint64_t
arena_bytes(const struct cached_layer *l)
{
	struct stat sb;

	assert_int_equal(fstat(l->arena.fd, &sb), 0);
	return (uint64_t)sb.st_blocks * 512;
}

/* A fill whose blocks all equal blocks of another layer gives every page
 * back (in one punch per run), and its reader gets the bytes. */
static void
test_fill_of_equal_blocks_gives_its_pages_back(void **state)
{
	static uint8_t dst[CACHED_FILL_MIN * IC_CACHED_BLOCK];
	struct fixture *fx = *state;
	struct cached_layer *layers[2] = { fx->a, fx->b };
	uint64_t before = arena_bytes(fx->b);

	fx->st.submit = fake_submit;
	fx->st.finish = fake_finish;
	for (int n = 0; n < 2; n++) {
		struct cached_req r = { .layer = layers[n], .nblocks = CACHED_FILL_MIN, .wait = true,
					.dst = dst, .uid = cached_store_uid(&fx->st, 0) };

		submitted = NULL;
		cached_req_run(&fx->st, &r);
		assert_non_null(submitted);
		assert_int_equal(submitted->nblocks, CACHED_FILL_MIN);
		for (uint32_t k = 0; k < submitted->nblocks; k++)
			memset(submitted->iov[k].iov_base, (int)k + 1, IC_CACHED_BLOCK);
		cached_fill_complete(submitted, CACHED_FILL_MIN * IC_CACHED_BLOCK);
		assert_int_equal(r.hits, (1ull << CACHED_FILL_MIN) - 1);
		for (uint32_t k = 0; k < CACHED_FILL_MIN; k++)
			assert_int_equal(dst[k * IC_CACHED_BLOCK + 4095], k + 1);
	}
	assert_int_equal(fx->b->stats[IC_CACHED_STAT_DEDUP_BYTES], CACHED_FILL_MIN * IC_CACHED_BLOCK);
	assert_true(arena_bytes(fx->a) >= before + CACHED_FILL_MIN * IC_CACHED_BLOCK);
	assert_int_equal(arena_bytes(fx->b), before);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_equal_blocks_of_one_domain_held_once, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_other_owner_never_shares, setup, teardown),
		cmocka_unit_test_setup_teardown(test_collision_is_never_served, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aliases_cost_no_memory_and_leave_with_their_block,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_block_charged_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fill_of_equal_blocks_gives_its_pages_back, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
