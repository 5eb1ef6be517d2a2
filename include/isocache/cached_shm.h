/* The memory isocached shares with its clients (docs/CACHED-PROTOCOL.md,
 * "Shared memory"), beside the wire protocol of cached_proto.h.
 *
 * Arena: one per cached layer, a memfd the daemon fills and a client maps
 * read-only once it has registered that layer's file (MAP). Block b of the
 * layer lives at data_off + b * 4 KiB whenever it is cached, and its slot
 * in the index, at index_off + b * 16, says whether it is:
 *
 *   header (4 KiB) | index: nblocks slots | data: nblocks blocks
 *
 * A slot is a seqlock generation and a tag. The generation's low bits say
 * BUSY (being evicted) and VALID (the data holds block `tag`); every change
 * of state adds IC_CACHED_SEQ_GEN, so it never repeats. A reader loads the
 * generation, copies, and checks the generation and the tag again
 * (ic_cached_slot_read); only an unchanged VALID slot naming the block asked
 * for is a hit. Evicted blocks are punched out of the memfd: a racing reader
 * copies zeroes, then sees the generation move and does not use them.
 *
 * Hit ring: at the end of the session's HELLO buffer (IC_CACHED_F_RING), the
 * client appends one entry per range it served from an arena and advances
 * head; the daemon drains entries up to head, validates each against the
 * session's handles, and publishes how far it got in tail.
 */
#ifndef ISOCACHE_CACHED_SHM_H
#define ISOCACHE_CACHED_SHM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "isocache/cached_proto.h"

#define IC_CACHED_ARENA_MAGIC 0x41434349u /* "ICCA" in memory order */
#define IC_CACHED_ARENA_VERSION 1
#define IC_CACHED_ARENA_HDR 4096u

struct ic_cached_arena_hdr {
	uint32_t magic;
	uint32_t version;
	uint64_t nblocks;
	uint64_t index_off; /* bytes from the start of the memfd */
	uint64_t data_off;
	uint64_t size; /* of the memfd */
	uint8_t uuid[16]; /* the layer's */
};

#define IC_CACHED_SEQ_BUSY 1u
#define IC_CACHED_SEQ_VALID 2u
#define IC_CACHED_SEQ_GEN 4u

struct ic_cached_slot {
	_Atomic uint64_t seq;
	_Atomic uint64_t tag; /* the block the data holds, while VALID */
};
_Static_assert(sizeof(struct ic_cached_slot) == 16, "slot layout");

/* Offsets and size of the arena of a layer of nblocks blocks. */
static inline uint64_t
ic_cached_arena_layout(uint64_t nblocks, uint64_t *index_off, uint64_t *data_off)
{
	uint64_t index = (nblocks * sizeof(struct ic_cached_slot) + IC_CACHED_BLOCK - 1) &
			 ~(uint64_t)(IC_CACHED_BLOCK - 1);

	*index_off = IC_CACHED_ARENA_HDR;
	*data_off = IC_CACHED_ARENA_HDR + index;
	return *data_off + (nblocks << IC_CACHED_BLOCK_SHIFT);
}

#define IC_CACHED_RING_ENTRIES 1024u

struct ic_cached_hit {
	_Atomic uint64_t block;
	_Atomic uint64_t span; /* handle << 32 | nblocks */
};

struct ic_cached_ring {
	_Atomic uint64_t head; /* client: entries appended */
	uint8_t pad0[56];
	_Atomic uint64_t tail; /* daemon: entries drained */
	uint8_t pad1[56];
	struct ic_cached_hit e[IC_CACHED_RING_ENTRIES];
};
/* The ring's share of a HELLO buffer with IC_CACHED_F_RING, in whole pages. */
#define IC_CACHED_RING_SIZE                                                                   \
	((sizeof(struct ic_cached_ring) + IC_CACHED_BLOCK - 1) & ~(size_t)(IC_CACHED_BLOCK - 1))

/* Whether slot says it holds block now (a hint: it may be evicted the
 * next moment; only a checked read or splice is a hit). */
bool ic_cached_slot_holds(const struct ic_cached_slot *slot, uint64_t block);
/* Reader: copy the 4 KiB block at data into dst and say whether it was
 * block `block`, VALID and unchanged the whole time. On false, dst holds
 * garbage and the caller asks the daemon instead. Lock-free, no syscall. */
bool ic_cached_slot_read(const struct ic_cached_slot *slot, uint64_t block, const void *data,
			 void *dst);

/* Reader, a run of n <= IC_CACHED_MAX_BLOCKS blocks from block `block`:
 * the same check over every slot of the run around one pread of the
 * arena's memfd fd, whose data starts at data_off. One syscall instead of
 * a copy from the mapping: the kernel copies through its own mapping of
 * the memory, where a first copy from this process's mapping takes a page
 * fault for every 4 KiB page it has not touched before. */
bool ic_cached_run_pread(const struct ic_cached_slot *slots, uint64_t block, uint32_t n, int fd,
			 uint64_t data_off, void *dst);

/* Reader, bytes [off, off+len) of the run of n blocks from block `block`,
 * spliced from the memfd into pipe (its write end) rather than copied:
 * the pipe holds references to the arena's pages, checked as above after
 * the splice. False when any slot was not VALID or changed, or the pipe
 * took less than len (it never waits for room): the pipe may then hold
 * part of the bytes, which the caller drains. */
bool ic_cached_run_splice(const struct ic_cached_slot *slots, uint64_t block, uint32_t n, int fd,
			  uint64_t data_off, uint64_t off, uint32_t len, int pipe);

/* Writer (the daemon, one thread). A VALID slot is made BUSY before its
 * data changes (ic_cached_slot_begin), then empty (ic_cached_slot_clear);
 * an empty slot's data may be written freely and is then published. */
void ic_cached_slot_begin(struct ic_cached_slot *slot);
void ic_cached_slot_clear(struct ic_cached_slot *slot);
void ic_cached_slot_publish(struct ic_cached_slot *slot, uint64_t block);

#endif
