/* The client's side of shared memory (docs/CACHED.md, "Shared hits"): a
 * hit is a slot lookup and a 4 KiB copy per block from an arena mapped
 * read-only, checked by the slot's seqlock, and one entry in the hit ring;
 * no syscall. Anything in doubt (a block missing, filling, evicted or
 * refilled during the copy, a full ring) goes to the daemon over the
 * socket instead, which is always right.
 */
#include "cached/client_shm.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "common/log.h"

int
client_arena_map(struct client_arena *a, int fd, uint64_t size)
{
	int need = F_SEAL_SHRINK | F_SEAL_GROW, seals = fcntl(fd, F_GET_SEALS);
	const struct ic_cached_arena_hdr *h;
	uint64_t index_off, data_off;
	struct stat sb;
	void *p;

	/* Without those seals the memfd could shrink under the mapping, and
	 * a copy would fault instead of failing its check. */
	if (seals < 0 || (seals & need) != need || fstat(fd, &sb) < 0 ||
	    (uint64_t)sb.st_size != size || size < IC_CACHED_ARENA_HDR) {
		ic_log(IC_LOG_WARN, "isocached arena: not sealed or not %llu bytes: not mapped",
		       (unsigned long long)size);
		return -EPROTO;
	}
	p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	h = p;
	if (h->magic != IC_CACHED_ARENA_MAGIC || h->version != IC_CACHED_ARENA_VERSION ||
	    h->size != size || ic_cached_arena_layout(h->nblocks, &index_off, &data_off) != size ||
	    h->index_off != index_off || h->data_off != data_off) {
		ic_log(IC_LOG_WARN, "isocached arena: bad header: not used");
		munmap(p, size);
		return -EPROTO;
	}
	a->base = p;
	a->size = size;
	a->nblocks = h->nblocks;
	a->slots = (const struct ic_cached_slot *)(a->base + index_off);
	a->data = a->base + data_off;
	return 0;
}

void
client_arena_unmap(struct client_arena *a)
{
	if (a->base)
		munmap((void *)a->base, a->size);
	memset(a, 0, sizeof(*a));
}

bool
client_arena_read(const struct client_arena *a, uint64_t block, uint32_t n, void *buf)
{
	if (!a->base || block >= a->nblocks || n > a->nblocks - block)
		return false;
	for (uint32_t k = 0; k < n; k++) {
		uint64_t b = block + k;

		if (!ic_cached_slot_read(&a->slots[b], b, a->data + (b << IC_CACHED_BLOCK_SHIFT),
					 (uint8_t *)buf + ((size_t)k << IC_CACHED_BLOCK_SHIFT)))
			return false;
	}
	return true;
}

bool
client_ring_report(struct ic_cached_ring *ring, uint32_t handle, uint64_t block, uint32_t n)
{
	uint64_t head = atomic_load_explicit(&ring->head, memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&ring->tail, memory_order_acquire);
	struct ic_cached_hit *e = &ring->e[head % IC_CACHED_RING_ENTRIES];

	if (head - tail >= IC_CACHED_RING_ENTRIES)
		return false;
	atomic_store_explicit(&e->block, block, memory_order_relaxed);
	atomic_store_explicit(&e->span, (uint64_t)handle << 32 | n, memory_order_relaxed);
	atomic_store_explicit(&ring->head, head + 1, memory_order_release);
	return true;
}
