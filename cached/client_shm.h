/* The client's side of shared memory (client_shm.c): arenas mapped
 * read-only and the hit ring. Private to the client library. */
#ifndef IC_CACHED_CLIENT_SHM_H
#define IC_CACHED_CLIENT_SHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "isocache/cached_shm.h"

struct client_arena {
	const uint8_t *base; /* NULL: not mapped */
	size_t size;
	uint64_t nblocks;
	const struct ic_cached_slot *slots;
	const uint8_t *data;
	int fd; /* the memfd, for runs read with pread (the process's one
		 * for the arena, shared as the mapping is); -1: none */
};

/* Map the arena memfd fd (the daemon's MAP reply said size bytes)
 * read-only and check its header. Does not take fd. 0, or -EPROTO (seals,
 * size or header wrong), -errno. */
int client_arena_map(struct client_arena *a, int fd, uint64_t size);
void client_arena_unmap(struct client_arena *a);
/* Copy blocks [block, block + n) into buf if every one is cached and
 * stays put while copied; false otherwise (buf then holds garbage). */
bool client_arena_read(const struct client_arena *a, uint64_t block, uint32_t n, void *buf);
/* Splice bytes [off, off+len) of the layer from the arena into pipe (its
 * write end) if every block they touch is cached and stays put until the
 * pipe holds them; false otherwise, and the pipe may hold part of them.
 * Also false where a spliced page could change later (client_shm.c). */
bool client_arena_splice(const struct client_arena *a, uint64_t off, uint32_t len, int pipe);
/* Whether every block bytes [off, off+len) touch is cached now (a hint:
 * it may be evicted the next moment). */
bool client_arena_has(const struct client_arena *a, uint64_t off, uint32_t len);
/* Append a hit report; false when the daemon has not drained the ring
 * (the caller then asks over the socket, which counts the hits). */
bool client_ring_report(struct ic_cached_ring *ring, uint32_t handle, uint64_t block, uint32_t n);

#endif
