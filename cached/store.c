/* The block store: a fixed slab of 4 KiB blocks under a hard memory bound.
 *
 * Every block is an entry in one array, found through an XXH3-hashed chain
 * table keyed by (layer id, block). Valid entries sit in one queue, newest
 * first, and are evicted by SIEVE (docs/CACHED.md says why): a hit only
 * sets `visited`; the hand walks from the oldest entry towards the newest,
 * clears visited bits and evicts the first entry it finds unvisited. A
 * filling entry is in the table but not the queue, so it cannot be evicted.
 *
 * Each layer also keeps its valid entries in a list of its own, so that
 * DROP costs the blocks it drops, not a walk of the whole slab on the
 * event loop (which let any tenant stall every other's reads).
 *
 * An entry's data lives in its layer's arena (arena.c), at the block's own
 * place: the slab is virtual, and --memory bounds the entries in use. Every
 * change of a block's state goes through the arena's seqlock, because
 * clients may be copying it (docs/CACHED.md, "Shared hits").
 *
 * Accounting: an entry is charged to the uid whose session caused its fill.
 * A uid at its quota gets blocks only by evicting its own, so it cannot push
 * another tenant's working set out past its share.
 *
 * Dedup (dedup.c): a filled block whose bytes a valid entry of the same
 * dedup domain holds already becomes an *alias* of that entry: still the
 * (layer, block) entry that lookups find, in the queue and its layer's
 * list, but its page is punched and its data read through the canonical
 * entry, to which it is chained (anext). An alias holds no memory, so it
 * is not charged and does not count against --memory; the entry array
 * has room for as many aliases as data blocks. A data entry that leaves
 * takes its aliases with it, so no alias ever points at a freed block.
 */
#include "cached/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/log.h"

#define STORE_ANY_UID UINT16_MAX

static uint32_t
store_hash(const struct cached_store *st, uint32_t layer, uint64_t block)
{
	uint64_t key[2] = { layer, block };

	return (uint32_t)XXH3_64bits(key, sizeof(key)) & st->bucket_mask;
}

/* Every entry on the free list, in order. */
static void
store_free_all(struct cached_store *st)
{
	for (uint32_t i = 0; i < st->nentries; i++)
		st->e[i].older = i + 1 < st->nentries ? i + 1 : CACHED_NIL;
	st->free_head = 0;
}

int
cached_store_init(struct cached_store *st, uint64_t memory)
{
	uint64_t cap = memory >> IC_CACHED_BLOCK_SHIFT;
	uint32_t nb = 1;

	if (cap < CACHED_FILL_MAX || cap > UINT32_MAX / 2)
		return -ERANGE;
	memset(st, 0, sizeof(*st));
	st->cap = (uint32_t)cap;
	while (nb < st->cap)
		nb <<= 1;
	st->bucket_mask = nb - 1;
	st->e = calloc(cap, sizeof(*st->e));
	st->buckets = malloc((size_t)nb * sizeof(*st->buckets));
	st->fills = calloc(CACHED_MAX_FILLS, sizeof(*st->fills));
	if (!st->e || !st->buckets || !st->fills) {
		cached_store_fini(st);
		return -ENOMEM;
	}
	memset(st->buckets, 0xff, (size_t)nb * sizeof(*st->buckets));
	st->nentries = st->cap;
	store_free_all(st);
	for (uint32_t i = 0; i < CACHED_MAX_FILLS; i++)
		st->fills[i].next_free = i + 1 < CACHED_MAX_FILLS ? i + 1 : CACHED_NIL;
	st->fill_free = 0;
	st->newest = st->oldest = st->hand = CACHED_NIL;
	st->nuids = 1; /* slot 0: uids past the table, uncapped */
	return 0;
}

int
cached_store_dedup(struct cached_store *st)
{
	struct cached_entry *e = calloc((size_t)st->cap * 2, sizeof(*e));
	struct cached_dedup *dd = calloc(1, sizeof(*dd));
	int rc = -ENOMEM;

	if (e && dd)
		rc = cached_dedup_init(dd, st->cap * 2);
	if (rc < 0) {
		free(e);
		free(dd);
		return rc;
	}
	free(st->e);
	st->e = e;
	st->dd = dd;
	st->nentries = st->cap * 2;
	store_free_all(st);
	return 0;
}

void
cached_store_fini(struct cached_store *st)
{
	for (uint32_t i = 0; i < st->nlayers; i++) {
		close(st->layers[i]->fd);
		cached_arena_fini(&st->layers[i]->arena);
		free(st->layers[i]);
	}
	free(st->layers);
	free(st->e);
	free(st->buckets);
	free(st->fills);
	if (st->dd) {
		cached_dedup_fini(st->dd);
		free(st->dd);
	}
	memset(st, 0, sizeof(*st));
}

uint16_t
cached_store_uid(struct cached_store *st, uid_t uid)
{
	for (uint32_t i = 1; i < st->nuids; i++)
		if (st->uids[i].uid == uid)
			return (uint16_t)i;
	if (st->nuids == CACHED_MAX_UIDS)
		return 0;
	st->uids[st->nuids].uid = uid;
	return (uint16_t)st->nuids++;
}

int
cached_store_set_quota(struct cached_store *st, uid_t uid, uint64_t bytes)
{
	uint16_t slot = cached_store_uid(st, uid);

	if (slot == 0)
		return -ENOSPC;
	st->uids[slot].capped = true;
	st->uids[slot].quota = bytes >> IC_CACHED_BLOCK_SHIFT;
	return 0;
}

uint32_t
cached_store_lookup(struct cached_store *st, uint32_t layer, uint64_t block)
{
	uint32_t i = st->buckets[store_hash(st, layer, block)];

	while (i != CACHED_NIL && (st->e[i].layer != layer || st->e[i].block != block))
		i = st->e[i].hnext;
	return i;
}

static void
store_unhash(struct cached_store *st, uint32_t i)
{
	uint32_t *p = &st->buckets[store_hash(st, st->e[i].layer, st->e[i].block)];

	while (*p != i)
		p = &st->e[*p].hnext;
	*p = st->e[i].hnext;
}

static void
store_dequeue(struct cached_store *st, uint32_t i)
{
	struct cached_entry *e = &st->e[i];

	if (st->hand == i)
		st->hand = e->newer;
	if (e->newer != CACHED_NIL)
		st->e[e->newer].older = e->older;
	else
		st->newest = e->older;
	if (e->older != CACHED_NIL)
		st->e[e->older].newer = e->newer;
	else
		st->oldest = e->newer;
}

/* Take entry i out of the table and its block out of the arena, and
 * charge it back; the caller reuses or frees it. */
static void
store_forget(struct cached_store *st, uint32_t i)
{
	struct cached_entry *e = &st->e[i];
	bool valid = e->state == CACHED_VALID;

	store_unhash(st, i);
	e->state = CACHED_FREE;
	if (e->canon != CACHED_NIL)
		return; /* an alias: no page, no charge */
	cached_arena_evict(&st->layers[e->layer]->arena, e->block, valid);
	st->uids[e->uid].used--;
	st->used--;
}

static void
store_free(struct cached_store *st, uint32_t i)
{
	st->e[i].older = st->free_head;
	st->free_head = i;
}

/* Alias i leaves its canonical entry's chain. */
static void
store_unchain(struct cached_store *st, uint32_t i)
{
	uint32_t *p = &st->e[st->e[i].canon].anext;

	while (*p != i)
		p = &st->e[*p].anext;
	*p = st->e[i].anext;
}

/* Take valid entry i out of its layer's list. */
static void
store_unlink_layer(struct cached_store *st, struct cached_layer *l, uint32_t i)
{
	struct cached_entry *e = &st->e[i];

	if (e->lprev != CACHED_NIL)
		st->e[e->lprev].lnext = e->lnext;
	else
		l->head = e->lnext;
	if (e->lnext != CACHED_NIL)
		st->e[e->lnext].lprev = e->lprev;
}

/* Valid entry i leaves the cache; a data entry takes its aliases along
 * (they are freed, i is left to the caller). */
static void
store_evict_entry(struct cached_store *st, uint32_t i)
{
	struct cached_layer *l = st->layers[st->e[i].layer];

	if (st->e[i].canon != CACHED_NIL) {
		store_unchain(st, i);
		l->stats[IC_CACHED_STAT_DEDUP_BYTES] -= IC_CACHED_BLOCK;
	} else {
		while (st->e[i].anext != CACHED_NIL) {
			uint32_t a = st->e[i].anext;

			store_evict_entry(st, a);
			store_free(st, a);
		}
		if (st->dd)
			cached_dedup_remove(st, i);
		l->stats[IC_CACHED_STAT_BLOCKS]--;
	}
	store_unlink_layer(st, l, i);
	store_dequeue(st, i);
	store_forget(st, i);
	l->stats[IC_CACHED_STAT_EVICTIONS]++;
}

/* SIEVE: evict the first unvisited entry from the hand on (of uid only,
 * unless STORE_ANY_UID). Two laps clear every bit, so the walk is bounded. */
static uint32_t
store_evict(struct cached_store *st, uint16_t uid)
{
	uint32_t h = st->hand;

	for (uint64_t steps = 0; steps < 2 * (uint64_t)st->nentries + 2; steps++) {
		if (h == CACHED_NIL)
			h = st->oldest;
		if (h == CACHED_NIL)
			return CACHED_NIL;
		struct cached_entry *e = &st->e[h];
		if ((uid == STORE_ANY_UID || e->uid == uid) && !e->visited) {
			store_evict_entry(st, h);
			return h;
		}
		if (uid == STORE_ANY_UID || e->uid == uid)
			e->visited = 0;
		h = e->newer;
		st->hand = h;
	}
	return CACHED_NIL;
}

uint32_t
cached_store_alloc(struct cached_store *st, uint32_t layer, uint64_t block, uint16_t uid)
{
	struct cached_uid *u = &st->uids[uid];
	uint32_t i, *bucket;

	/* Evict until a free entry and a free block are there: an evicted
	 * alias frees an entry but no block. Each turn frees at least one
	 * entry, so the loop ends. */
	for (;;) {
		bool capped = u->capped && u->used >= u->quota;

		if (!capped && st->used < st->cap && st->free_head != CACHED_NIL)
			break;
		i = store_evict(st, capped ? uid : STORE_ANY_UID);
		if (i == CACHED_NIL)
			return CACHED_NIL;
		store_free(st, i);
	}
	i = st->free_head;
	st->free_head = st->e[i].older;
	bucket = &st->buckets[store_hash(st, layer, block)];
	st->e[i] = (struct cached_entry){
		.block = block,
		.layer = layer,
		.hnext = *bucket,
		.newer = CACHED_NIL,
		.older = CACHED_NIL,
		.fill = CACHED_NIL,
		.canon = CACHED_NIL,
		.anext = CACHED_NIL,
		.dnext = CACHED_NIL,
		.lnext = CACHED_NIL,
		.lprev = CACHED_NIL,
		.uid = uid,
		.state = CACHED_FILLING,
	};
	*bucket = i;
	u->used++;
	st->used++;
	return i;
}

/* Filled entry i holds what data entry c holds: give its charge back and
 * read through c from now on (the caller punches its page). */
static void
store_alias(struct cached_store *st, uint32_t i, uint32_t c)
{
	struct cached_entry *e = &st->e[i];
	struct cached_layer *l = st->layers[e->layer];

	st->uids[e->uid].used--;
	st->used--;
	e->uid = CACHED_NO_UID;
	e->canon = c;
	e->anext = st->e[c].anext;
	st->e[c].anext = i;
	l->stats[IC_CACHED_STAT_DEDUP_BYTES] += IC_CACHED_BLOCK;
}

bool
cached_store_publish(struct cached_store *st, uint32_t i)
{
	struct cached_entry *e = &st->e[i];
	struct cached_layer *l = st->layers[e->layer];
	uint32_t c = st->dd ? cached_dedup_find(st, i) : CACHED_NIL;

	if (c != CACHED_NIL)
		store_alias(st, i, c);
	e->state = CACHED_VALID;
	e->fill = CACHED_NIL;
	e->visited = 0;
	e->newer = CACHED_NIL;
	e->older = st->newest;
	if (st->newest != CACHED_NIL)
		st->e[st->newest].newer = i;
	else
		st->oldest = i;
	st->newest = i;
	e->lprev = CACHED_NIL;
	e->lnext = l->head;
	if (l->head != CACHED_NIL)
		st->e[l->head].lprev = i;
	l->head = i;
	if (c != CACHED_NIL)
		return true; /* its arena slot stays empty: its readers ask the daemon */
	l->stats[IC_CACHED_STAT_BLOCKS]++;
	if (st->dd)
		cached_dedup_insert(st, i);
	cached_arena_publish(&l->arena, e->block);
	return false;
}

void
cached_store_release(struct cached_store *st, uint32_t i)
{
	store_forget(st, i);
	store_free(st, i);
}

uint64_t
cached_store_drop(struct cached_store *st, uint32_t layer)
{
	struct cached_layer *l = st->layers[layer];
	uint64_t n = 0;

	while (l->head != CACHED_NIL) {
		uint32_t i = l->head;

		store_evict_entry(st, i);
		store_free(st, i);
		n++;
	}
	return n;
}

void
cached_store_attach_l2(struct cached_store *st, struct cached_l2 *l2)
{
	st->l2 = l2;
	l2->uids = st->uids;
}

/* The cache key is the layer uuid, but a file that merely claims a uuid
 * must not read or poison another file's blocks: any user can write that
 * xattr on a 0444 file of their own. So a layer is (uuid, device, inode):
 * the same frozen file registered by many sessions shares one copy. */
int
cached_store_layer(struct cached_store *st, const uint8_t uuid[16], const struct stat *sb, int fd,
		   struct cached_layer **out)
{
	struct cached_layer *l, **grown;
	int rc;

	for (uint32_t i = 0; i < st->nlayers; i++) {
		l = st->layers[i];
		if (!memcmp(l->uuid, uuid, 16) && l->dev == sb->st_dev && l->ino == sb->st_ino) {
			close(fd);
			*out = l;
			return 0;
		}
	}
	if (st->nlayers == CACHED_MAX_LAYERS) {
		close(fd);
		return -ENOSPC;
	}
	grown = realloc(st->layers, (st->nlayers + 1) * sizeof(*grown));
	l = calloc(1, sizeof(*l));
	if (grown)
		st->layers = grown;
	if (!grown || !l) {
		free(l);
		close(fd);
		return -ENOMEM;
	}
	rc = cached_arena_init(&l->arena, uuid, ((uint64_t)sb->st_size + IC_CACHED_BLOCK - 1) >>
							IC_CACHED_BLOCK_SHIFT);
	if (rc < 0) {
		free(l);
		close(fd);
		return rc;
	}
	memcpy(l->uuid, uuid, 16);
	l->dev = sb->st_dev;
	l->ino = sb->st_ino;
	l->owner = sb->st_uid;
	l->group = sb->st_gid;
	l->head = CACHED_NIL;
	l->l2_ident = cached_l2_ident(st->l2, uuid, sb);
	l->fd = fd;
	l->size = (uint64_t)sb->st_size;
	l->nblocks = (l->size + IC_CACHED_BLOCK - 1) >> IC_CACHED_BLOCK_SHIFT;
	l->id = st->nlayers;
	l->seq_next = UINT64_MAX;
	l->ra = CACHED_FILL_MIN;
	st->layers[st->nlayers++] = l;
	*out = l;
	return 0;
}

void
cached_store_totals(struct cached_store *st, uint64_t out[IC_CACHED_STAT_COUNT])
{
	memset(out, 0, IC_CACHED_STAT_COUNT * sizeof(out[0]));
	for (uint32_t i = 0; i < st->nlayers; i++)
		for (int s = 0; s < IC_CACHED_STAT_COUNT; s++)
			out[s] += st->layers[i]->stats[s];
	out[IC_CACHED_STAT_MEM_LIMIT] = (uint64_t)st->cap << IC_CACHED_BLOCK_SHIFT;
	cached_l2_totals(st->l2, out);
}

void
cached_store_latency(struct cached_layer *l, uint64_t usec)
{
	int b = 0;

	while (usec > 1 && b < IC_CACHED_LAT_BUCKETS - 1) {
		usec >>= 1;
		b++;
	}
	l->stats[IC_CACHED_STAT_LAT0 + b]++;
}
