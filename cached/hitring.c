/* Hits clients report through shared memory (docs/CACHED.md, "Shared
 * hits"). A client that served blocks from an arena appends (handle,
 * block, nblocks) to the hit ring at the end of its HELLO buffer; the
 * daemon drains it here, so SIEVE still sees what is hot and STATS still
 * counts every hit, without a syscall per hit.
 *
 * The ring is the client's memory: anything may be in it, and it may change
 * while it is read. Each entry is loaded once and checked like a READ of
 * that session: a handle it registered, a range inside the layer. So an
 * entry can do no more than the same READ over the socket would (mark the
 * blocks visited, count hits on a layer the session proved access to), and
 * a drain looks at no more than one ring's worth of entries.
 */
#include "cached/internal.h"

uint64_t
cached_hitring_drain(struct cached_store *st, struct ic_cached_ring *ring, uint64_t *tail,
		     struct cached_layer *const *handles, uint32_t nhandles)
{
	uint64_t head = atomic_load_explicit(&ring->head, memory_order_acquire);
	uint64_t t = *tail, n = 0;

	/* A head behind the tail, or too far ahead, is garbage: look at the
	 * last ring's worth of entries only. */
	if (head - t > IC_CACHED_RING_ENTRIES)
		t = head - IC_CACHED_RING_ENTRIES;
	for (; t != head; t++) {
		struct ic_cached_hit *e = &ring->e[t % IC_CACHED_RING_ENTRIES];
		uint64_t block = atomic_load_explicit(&e->block, memory_order_relaxed);
		uint64_t span = atomic_load_explicit(&e->span, memory_order_relaxed);
		uint32_t h = (uint32_t)(span >> 32), nb = (uint32_t)span;
		struct cached_layer *l;

		if (h >= nhandles || nb < 1 || nb > IC_CACHED_MAX_BLOCKS)
			continue;
		l = handles[h];
		if (block >= l->nblocks || nb > l->nblocks - block)
			continue;
		for (uint32_t k = 0; k < nb; k++) {
			uint32_t i = cached_store_lookup(st, l->id, block + k);

			if (i != CACHED_NIL && st->e[i].state == CACHED_VALID)
				cached_store_touch(st, i);
			if (l->trace)
				cached_trace_touch(l, block + k);
		}
		l->stats[IC_CACHED_STAT_LOOKUPS] += nb;
		l->stats[IC_CACHED_STAT_HITS] += nb;
		l->stats[IC_CACHED_STAT_SHARED_HITS] += nb;
		l->stats[IC_CACHED_STAT_BYTES_SERVED] += (uint64_t)nb << IC_CACHED_BLOCK_SHIFT;
		n += nb;
	}
	*tail = head;
	atomic_store_explicit(&ring->tail, head, memory_order_release);
	return n;
}
