/* Layer arenas: where the daemon keeps a layer's cached blocks, in a memfd
 * that clients who registered the layer map read-only (docs/CACHED.md,
 * "Shared hits"). The store decides which blocks are cached and charges
 * them against --memory; the arena only holds them, at a fixed place per
 * block, and keeps the seqlock of each slot.
 *
 * Sealing. The daemon maps the memfd writable, then seals it against
 * shrinking and growing (a client's mapping can never fault past the end)
 * and against further seals (F_SEAL_SEAL). F_SEAL_FUTURE_WRITE would also
 * refuse FALLOC_FL_PUNCH_HOLE (shmem_fallocate returns EPERM, checked on
 * Linux 6.18), and punching is how an evicted block gives its memory back,
 * so clients get a read-only reopen instead: a description opened O_RDONLY
 * cannot be mapped shared and writable, mprotect cannot add PROT_WRITE,
 * ftruncate, write and fallocate fail, and seals cannot be added through
 * it. The memfd's mode is 0400, so no other uid can reopen it writable
 * through /proc/PID/fd either (docs/SECURITY.md).
 */
#include "cached/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"

int
cached_arena_init(struct cached_arena *a, const uint8_t uuid[16], uint64_t nblocks)
{
	uint64_t index_off, data_off, size = ic_cached_arena_layout(nblocks, &index_off, &data_off);
	struct ic_cached_arena_hdr *h;
	char path[64];
	int fd, rc;

	memset(a, 0, sizeof(*a));
	a->fd = a->ro_fd = -1;
	fd = memfd_create("isocached-layer", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0 || fchmod(fd, 0400) < 0)
		goto fail_errno;
	a->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (a->base == MAP_FAILED) {
		a->base = NULL;
		goto fail_errno;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto fail_errno;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	a->ro_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (a->ro_fd < 0)
		goto fail_errno;
	a->fd = fd;
	a->size = size;
	a->slots = (struct ic_cached_slot *)(a->base + index_off);
	a->data = a->base + data_off;
	h = (struct ic_cached_arena_hdr *)a->base;
	*h = (struct ic_cached_arena_hdr){
		.magic = IC_CACHED_ARENA_MAGIC,
		.version = IC_CACHED_ARENA_VERSION,
		.nblocks = nblocks,
		.index_off = index_off,
		.data_off = data_off,
		.size = size,
	};
	memcpy(h->uuid, uuid, 16);
	return 0;

fail_errno:
	rc = -errno;
	ic_log(IC_LOG_ERR, "layer arena of %llu blocks: %s", (unsigned long long)nblocks,
	       strerror(-rc));
	if (a->base)
		munmap(a->base, size);
	close(fd);
	memset(a, 0, sizeof(*a));
	a->fd = a->ro_fd = -1;
	return rc;
}

void
cached_arena_fini(struct cached_arena *a)
{
	if (a->base)
		munmap(a->base, a->size);
	if (a->fd >= 0)
		close(a->fd);
	if (a->ro_fd >= 0)
		close(a->ro_fd);
	memset(a, 0, sizeof(*a));
	a->fd = a->ro_fd = -1;
}

/* Give the blocks' pages back. Best effort: a page that stays is memory
 * over the bound until the block is filled again, never a wrong byte. A
 * run of blocks takes one call: a syscall on the loop, and the unmapping
 * of pages the daemon has mapped (with its TLB flush), once per run
 * rather than once per block. */
void
cached_arena_punch(struct cached_arena *a, uint64_t block, uint64_t n)
{
	off_t off = (off_t)(a->data - a->base) + (off_t)(block << IC_CACHED_BLOCK_SHIFT);

	if (fallocate(a->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
		      (off_t)(n << IC_CACHED_BLOCK_SHIFT)) < 0)
		ic_log(IC_LOG_DEBUG, "layer arena: punch of %llu blocks at %llu: %s",
		       (unsigned long long)n, (unsigned long long)block, strerror(errno));
}

void
cached_arena_publish(struct cached_arena *a, uint64_t block)
{
	ic_cached_slot_publish(&a->slots[block], block);
}

void
cached_arena_evict(struct cached_arena *a, uint64_t block, bool valid)
{
	if (valid)
		ic_cached_slot_begin(&a->slots[block]);
	cached_arena_punch(a, block, 1);
	if (valid)
		ic_cached_slot_clear(&a->slots[block]);
}
