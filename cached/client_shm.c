/* The client's side of shared memory (docs/CACHED.md, "Shared hits"): a
 * hit is a slot lookup and a 4 KiB copy per block from an arena mapped
 * read-only, checked by the slot's seqlock, and one entry in the hit ring;
 * no syscall. Anything in doubt (a block missing, filling, evicted or
 * refilled during the copy, a full ring) goes to the daemon over the
 * socket instead, which is always right.
 *
 * One mapping per arena per process. A front end keeps several sessions
 * (the cache filter's conns=, 4 by default), each maps the arenas of the
 * layers it registered, and reads take turns across sessions. Each
 * mapping has page tables of its own, so with one mapping per session a
 * block that one session had faulted in was a page fault again in each
 * other: in isocache-nbd --cache none with a warm daemon, 4 KiB random
 * reads spent 22 % of the server's CPU in those faults (perf, QD1). The
 * sessions of a process now share the first mapping of an arena: found
 * by the memfd's inode, which names the same memory while any mapping of
 * it lives, and reached only by a session the daemon gave that memfd to,
 * after it registered the layer's fd (isolation per layer, as before).
 */
#include "cached/client_shm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

/* Runs of at least this many blocks are read with one pread of the memfd
 * rather than copied from the mapping. A copy from a page this process
 * has not touched yet takes a page fault, and in a boot storm every
 * clone's front end reads every block once: cold copies. On the 2-vCPU
 * VM of bench/results, copying fresh blocks from a second mapping ran at
 * 340 MB/s, a pread of 64 KiB runs of them at 1.5 GB/s, and a copy of
 * blocks already touched at 3 GB/s. Single blocks (random 4 KiB hits)
 * stay copies: random 4 KiB reads of a warm daemon at QD1 ran 4 % slower
 * as preads. Runs of 2 blocks up (a boot's 16 KiB reads) pread: 8 clones
 * reading 64 MiB each in 16 KiB pieces took 1.09-1.18 s where copies of
 * runs under 16 blocks took 1.40-1.51 s. */
#define CLIENT_PREAD_MIN 2

/* The arenas this process has mapped, each with the sessions using it,
 * and its memfd, which they pread (one descriptor per arena, however many
 * sessions). */
struct shm_map {
	dev_t dev;
	ino_t ino;
	size_t size;
	void *base;
	int fd; /* -1: could not be kept; runs are copied */
	unsigned users;
};

static pthread_mutex_t shm_maps_mu = PTHREAD_MUTEX_INITIALIZER;
static struct shm_map *shm_maps;
static size_t shm_nmaps, shm_cap;

/* Under shm_maps_mu: the process's mapping of the arena sb names, taken
 * for one more user, and its fd in *fd; or NULL. */
static void *
shm_map_find(const struct stat *sb, int *fd)
{
	for (size_t i = 0; i < shm_nmaps; i++) {
		struct shm_map *m = &shm_maps[i];

		if (m->dev == sb->st_dev && m->ino == sb->st_ino && m->size == (size_t)sb->st_size) {
			m->users++;
			*fd = m->fd;
			return m->base;
		}
	}
	return NULL;
}

/* Under shm_maps_mu: remember a new mapping; -ENOMEM leaves it unshared. */
static int
shm_map_add(const struct stat *sb, void *base, int fd)
{
	if (shm_nmaps == shm_cap) {
		size_t cap = shm_cap ? 2 * shm_cap : 16;
		struct shm_map *grown = realloc(shm_maps, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		shm_maps = grown;
		shm_cap = cap;
	}
	shm_maps[shm_nmaps++] =
		(struct shm_map){ sb->st_dev, sb->st_ino, (size_t)sb->st_size, base, fd, 1 };
	return 0;
}

/* Unmap base and close fd (when there is one). */
static void
shm_unmap(void *base, size_t size, int fd)
{
	munmap(base, size);
	if (fd >= 0)
		close(fd);
}

/* Let go of one user of base (and of its fd): both go with the last. */
static void
shm_map_put(void *base, size_t size, int fd)
{
	pthread_mutex_lock(&shm_maps_mu);
	for (size_t i = 0; i < shm_nmaps; i++) {
		if (shm_maps[i].base != base)
			continue;
		if (--shm_maps[i].users == 0) {
			shm_unmap(base, size, shm_maps[i].fd);
			shm_maps[i] = shm_maps[--shm_nmaps];
		}
		pthread_mutex_unlock(&shm_maps_mu);
		return;
	}
	pthread_mutex_unlock(&shm_maps_mu);
	shm_unmap(base, size, fd); /* mapped while the table was out of memory */
}

/* Check the header of the arena mapped at base and fill a from it; the
 * layout must be the one size implies. */
static bool
shm_hdr_read(struct client_arena *a, const uint8_t *base, uint64_t size)
{
	const struct ic_cached_arena_hdr *h = (const struct ic_cached_arena_hdr *)base;
	uint64_t nblocks = h->nblocks, index_off, data_off;

	if (h->magic != IC_CACHED_ARENA_MAGIC || h->version != IC_CACHED_ARENA_VERSION ||
	    h->size != size || ic_cached_arena_layout(nblocks, &index_off, &data_off) != size ||
	    h->index_off != index_off || h->data_off != data_off)
		return false;
	a->base = base;
	a->size = size;
	a->nblocks = nblocks;
	a->slots = (const struct ic_cached_slot *)(base + index_off);
	a->data = base + data_off;
	return true;
}

int
client_arena_map(struct client_arena *a, int fd, uint64_t size)
{
	int need = F_SEAL_SHRINK | F_SEAL_GROW, seals = fcntl(fd, F_GET_SEALS);
	struct stat sb;
	int own = -1;
	void *p;

	/* Without those seals the memfd could shrink under the mapping, and
	 * a copy would fault instead of failing its check. */
	if (seals < 0 || (seals & need) != need || fstat(fd, &sb) < 0 ||
	    (uint64_t)sb.st_size != size || size < IC_CACHED_ARENA_HDR) {
		ic_log(IC_LOG_WARN, "isocached arena: not sealed or not %llu bytes: not mapped",
		       (unsigned long long)size);
		return -EPROTO;
	}
	pthread_mutex_lock(&shm_maps_mu);
	p = shm_map_find(&sb, &own);
	if (!p) {
		p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			int rc = -errno;

			pthread_mutex_unlock(&shm_maps_mu);
			return rc;
		}
		own = fcntl(fd, F_DUPFD_CLOEXEC, 0); /* -1: runs are copied */
		shm_map_add(&sb, p, own); /* on failure this session's mapping is its own */
	}
	pthread_mutex_unlock(&shm_maps_mu);
	if (!shm_hdr_read(a, p, size)) {
		ic_log(IC_LOG_WARN, "isocached arena: bad header: not used");
		shm_map_put(p, size, own);
		return -EPROTO;
	}
	a->fd = own;
	return 0;
}

void
client_arena_unmap(struct client_arena *a)
{
	if (a->base)
		shm_map_put((void *)a->base, a->size, a->fd);
	memset(a, 0, sizeof(*a));
}

bool
client_arena_read(const struct client_arena *a, uint64_t block, uint32_t n, void *buf)
{
	if (!a->base || block >= a->nblocks || n > a->nblocks - block)
		return false;
	if (n >= CLIENT_PREAD_MIN && a->fd >= 0)
		return ic_cached_run_pread(a->slots + block, block, n, a->fd,
					   (uint64_t)(a->data - a->base), buf);
	for (uint32_t k = 0; k < n; k++) {
		uint64_t b = block + k;

		if (!ic_cached_slot_read(&a->slots[b], b, a->data + (b << IC_CACHED_BLOCK_SHIFT),
					 (uint8_t *)buf + ((size_t)k << IC_CACHED_BLOCK_SHIFT)))
			return false;
	}
	return true;
}

/* Whether pages the arena's memfd gives a pipe keep their bytes once their
 * slot is checked. They do while the memfd holds only small pages: an
 * evicted block's page is punched out whole, and its next fill writes a
 * new one. A huge page (transparent huge pages for shmem, which are off
 * unless the host's administrator turns them on) is split by the punch
 * only if nothing else holds it; one a pipe holds is zeroed in place
 * instead, under the reader that took it. So splicing needs every shmem
 * setting of /sys/kernel/mm/transparent_hugepage at "never" or "deny"
 * (per size: "never", or "inherit" of those), read once per process. */
static bool
splice_thp_off(const char *path, bool inherit_ok)
{
	char line[256];
	FILE *f = fopen(path, "re");
	bool off = false;

	if (!f)
		return true; /* no such setting: no such pages */
	if (fgets(line, sizeof(line), f))
		off = strstr(line, "[never]") || strstr(line, "[deny]") ||
		      (inherit_ok && strstr(line, "[inherit]"));
	fclose(f);
	return off;
}

static bool client_splice_ok;

static void
splice_check(void)
{
	const char *top = "/sys/kernel/mm/transparent_hugepage";
	char path[PATH_MAX];
	struct dirent *d;
	DIR *dir;

	snprintf(path, sizeof(path), "%s/shmem_enabled", top);
	client_splice_ok = splice_thp_off(path, false);
	dir = opendir(top);
	while (client_splice_ok && dir && (d = readdir(dir))) {
		if (strncmp(d->d_name, "hugepages-", 10) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s/shmem_enabled", top, d->d_name);
		client_splice_ok = splice_thp_off(path, true);
	}
	if (dir)
		closedir(dir);
	if (!client_splice_ok)
		ic_log(IC_LOG_INFO, "isocached arenas: shmem huge pages are on; hits are copied, "
				    "not spliced");
}

bool
client_arena_splice(const struct client_arena *a, uint64_t off, uint32_t len, int pipe)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	uint64_t end = off + len, data_off = (uint64_t)(a->data - a->base);

	pthread_once(&once, splice_check);
	if (!client_splice_ok || !a->base || a->fd < 0 || len == 0 ||
	    end > a->nblocks << IC_CACHED_BLOCK_SHIFT)
		return false;
	while (off < end) {
		uint64_t block = off >> IC_CACHED_BLOCK_SHIFT;
		uint64_t stop = (block + IC_CACHED_MAX_BLOCKS) << IC_CACHED_BLOCK_SHIFT;
		uint32_t n;

		if (stop > end)
			stop = end;
		n = (uint32_t)(((stop - 1) >> IC_CACHED_BLOCK_SHIFT) - block + 1);
		if (!ic_cached_run_splice(a->slots + block, block, n, a->fd, data_off,
					  off - (block << IC_CACHED_BLOCK_SHIFT), (uint32_t)(stop - off),
					  pipe))
			return false;
		off = stop;
	}
	return true;
}

bool
client_arena_has(const struct client_arena *a, uint64_t off, uint32_t len)
{
	uint64_t end = off + len;

	if (!a->base || len == 0 || end > a->nblocks << IC_CACHED_BLOCK_SHIFT)
		return false;
	for (uint64_t b = off >> IC_CACHED_BLOCK_SHIFT; b << IC_CACHED_BLOCK_SHIFT < end; b++)
		if (!ic_cached_slot_holds(&a->slots[b], b))
			return false;
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
