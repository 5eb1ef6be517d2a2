/* The seqlock of the shared arenas (include/isocache/cached_shm.h), the one
 * place both sides of it live, so reader and writer cannot drift apart.
 *
 * C11 seqlock (Boehm, "Can seqlocks get along with programming language
 * memory models?"): the writer stores BUSY (relaxed) and issues a release
 * fence before it touches the data, and publishes a new generation with a
 * release store; the reader loads the generation with acquire, copies,
 * issues an acquire fence and loads it again. If the copy saw any byte the
 * writer wrote after the fence, the second load sees BUSY or a newer
 * generation. The daemon's data writes are mostly the kernel's (readv
 * into the arena, hole punching), which order at least as strongly; so
 * does a reader's pread of the memfd in place of the copy (a syscall
 * between the two loads).
 *
 * A splice of the memfd into a pipe copies nothing: the pipe takes
 * references to the arena's pages. It is checked the same way, and what
 * it took stays right after the check because a VALID slot's page is
 * never written in place: eviction punches it out of the memfd first
 * (cached/arena.c), so a later fill writes a new page while the pipe,
 * and the socket after it, keep the old one.
 */
#include "isocache/cached_shm.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common/tsan.h"

/* The copy races with the writer by design and is checked afterwards:
 * the only access ThreadSanitizer is told to overlook. */
static void
shm_racy_copy(void *dst, const void *src, size_t n)
{
	ic_tsan_ignore_reads_begin();
	memcpy(dst, src, n);
	ic_tsan_ignore_reads_end();
}

/* Whether generation seq says VALID and not BUSY. */
static bool
shm_seq_valid(uint64_t seq)
{
	return (seq & (IC_CACHED_SEQ_BUSY | IC_CACHED_SEQ_VALID)) == IC_CACHED_SEQ_VALID;
}

bool
ic_cached_slot_holds(const struct ic_cached_slot *slot, uint64_t block)
{
	struct ic_cached_slot *s = (struct ic_cached_slot *)slot; /* loads only */

	return shm_seq_valid(atomic_load_explicit(&s->seq, memory_order_relaxed)) &&
	       atomic_load_explicit(&s->tag, memory_order_relaxed) == block;
}

bool
ic_cached_slot_read(const struct ic_cached_slot *slot, uint64_t block, const void *data, void *dst)
{
	struct ic_cached_slot *s = (struct ic_cached_slot *)slot; /* loads only */
	uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);

	if (!shm_seq_valid(seq))
		return false;
	shm_racy_copy(dst, data, IC_CACHED_BLOCK);
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&s->tag, memory_order_relaxed) == block &&
	       atomic_load_explicit(&s->seq, memory_order_relaxed) == seq;
}

/* The generations of a run of n <= IC_CACHED_MAX_BLOCKS slots, before the
 * read; false when any slot is not VALID. */
static bool
shm_run_begin(struct ic_cached_slot *s, uint32_t n, uint64_t seq[IC_CACHED_MAX_BLOCKS])
{
	if (n == 0 || n > IC_CACHED_MAX_BLOCKS)
		return false;
	for (uint32_t k = 0; k < n; k++) {
		seq[k] = atomic_load_explicit(&s[k].seq, memory_order_acquire);
		if (!shm_seq_valid(seq[k]))
			return false;
	}
	return true;
}

/* After the read: whether every slot still holds its block, unchanged. */
static bool
shm_run_check(struct ic_cached_slot *s, uint64_t block, uint32_t n,
	      const uint64_t seq[IC_CACHED_MAX_BLOCKS])
{
	atomic_thread_fence(memory_order_acquire);
	for (uint32_t k = 0; k < n; k++)
		if (atomic_load_explicit(&s[k].tag, memory_order_relaxed) != block + k ||
		    atomic_load_explicit(&s[k].seq, memory_order_relaxed) != seq[k])
			return false;
	return true;
}

bool
ic_cached_run_pread(const struct ic_cached_slot *slots, uint64_t block, uint32_t n, int fd,
		    uint64_t data_off, void *dst)
{
	struct ic_cached_slot *s = (struct ic_cached_slot *)slots; /* loads only */
	size_t len = (size_t)n << IC_CACHED_BLOCK_SHIFT;
	uint64_t seq[IC_CACHED_MAX_BLOCKS];

	if (!shm_run_begin(s, n, seq) ||
	    pread(fd, dst, len, (off_t)(data_off + (block << IC_CACHED_BLOCK_SHIFT))) != (ssize_t)len)
		return false;
	return shm_run_check(s, block, n, seq);
}

bool
ic_cached_run_splice(const struct ic_cached_slot *slots, uint64_t block, uint32_t n, int fd,
		     uint64_t data_off, uint64_t off, uint32_t len, int pipe)
{
	struct ic_cached_slot *s = (struct ic_cached_slot *)slots; /* loads only */
	uint64_t seq[IC_CACHED_MAX_BLOCKS];
	loff_t pos = (loff_t)(data_off + (block << IC_CACHED_BLOCK_SHIFT) + off);

	if (off + len > (uint64_t)n << IC_CACHED_BLOCK_SHIFT || !shm_run_begin(s, n, seq))
		return false;
	while (len) {
		ssize_t got = splice(fd, &pos, pipe, NULL, len, SPLICE_F_NONBLOCK);

		if (got <= 0)
			return false; /* a full pipe, or an error the socket path meets */
		len -= (uint32_t)got;
	}
	return shm_run_check(s, block, n, seq);
}

void
ic_cached_slot_begin(struct ic_cached_slot *slot)
{
	uint64_t seq = atomic_load_explicit(&slot->seq, memory_order_relaxed);

	atomic_store_explicit(&slot->seq, seq | IC_CACHED_SEQ_BUSY, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

/* The next generation, with the given state bits. */
static uint64_t
shm_next(const struct ic_cached_slot *slot, uint64_t state)
{
	struct ic_cached_slot *s = (struct ic_cached_slot *)slot;
	uint64_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);

	return ((seq & ~(uint64_t)(IC_CACHED_SEQ_GEN - 1)) + IC_CACHED_SEQ_GEN) | state;
}

void
ic_cached_slot_clear(struct ic_cached_slot *slot)
{
	atomic_store_explicit(&slot->seq, shm_next(slot, 0), memory_order_release);
}

void
ic_cached_slot_publish(struct ic_cached_slot *slot, uint64_t block)
{
	atomic_store_explicit(&slot->tag, block, memory_order_relaxed);
	atomic_store_explicit(&slot->seq, shm_next(slot, IC_CACHED_SEQ_VALID),
			      memory_order_release);
}
