/* A client of isocached, the host's shared block cache (docs/CACHED.md).
 *
 * A client is one session: connect, register layer files by fd, read
 * blocks. Calls are synchronous; a client serializes them with its own
 * mutex, so threads may share one, or open one each for parallel requests.
 * The daemon is an accelerator: when a call fails with -ECONNRESET,
 * -ETIMEDOUT, -EPIPE or -ENOTCONN, read the layer file directly, drop the
 * client, and connect again later. Handles belong to the session.
 *
 * Every call returns 0 or a negative errno.
 */
#ifndef ISOCACHE_CACHED_H
#define ISOCACHE_CACHED_H

#include <stdbool.h>
#include <stdint.h>

#include "isocache/cached_proto.h"

#define IC_CACHED_DEFAULT_SOCKET "/run/isocache/cached.sock"

struct ic_cached_client;

/* The socket path: path if not NULL, else $ISOCACHE_SOCKET, else the default. */
const char *ic_cached_socket_path(const char *path);

/* Connect to the daemon at ic_cached_socket_path(path) and say HELLO with
 * a fresh sealed shared buffer. A reply slower than timeout_ms (0: 5000)
 * fails the call with -ETIMEDOUT and breaks the client. Before any
 * descriptor is passed, the listener's credentials are checked: a socket
 * served by neither root nor this process's effective uid is refused with
 * -EPERM (and a warning naming the socket and its owner). */
int ic_cached_connect(const char *path, unsigned timeout_ms, struct ic_cached_client **out);
/* Say BYE and free the client. NULL is ignored. */
void ic_cached_disconnect(struct ic_cached_client *c);
/* Give back the pages of the client's reply slot (up to 256 KiB of the
 * buffer it shares with the daemon, held by both), for a session that
 * has gone quiet; the next reply that needs them faults them in again.
 * Waits for a call in progress on c. */
void ic_cached_trim(struct ic_cached_client *c);

/* Register the layer file open on fd (read-only; the daemon checks it is a
 * frozen layer and keeps its own reference). Out: the session's handle for
 * it, its size in bytes and layer uuid (either may be NULL). Errors the
 * daemon reports: -EBADF (not a regular file), -EACCES (not opened
 * read-only), -EPERM (mode is not 0444), -ENODATA (no frozen layer xattr). */
int ic_cached_register(struct ic_cached_client *c, int fd, uint32_t *handle, uint64_t *size,
		       uint8_t uuid[16]);

/* Map the cached blocks of a registered layer read-only (the daemon's
 * arena of it), so that ic_cached_read() serves hits from memory without
 * a syscall and reports them through the session's hit ring; whatever is
 * not cached there, or changes during the copy, still goes to the daemon.
 * Optional: without it every read is a request. Errors: -EOPNOTSUPP (the
 * daemon runs with --no-shared), -EPROTO (the memfd is not sealed or its
 * header is wrong), -EINVAL (handle). */
int ic_cached_map(struct ic_cached_client *c, uint32_t handle);

/* Read nblocks (1..IC_CACHED_MAX_BLOCKS) 4 KiB blocks from block on into
 * buf. Bit i of *hits says block i was copied; the others are left alone
 * (a read tried from a mapped arena first may have scribbled on them).
 * With IC_CACHED_F_WAIT the daemon fills misses first (read-through), so
 * every bit is set unless a fill failed. -EINVAL: past the layer's end. */
int ic_cached_read(struct ic_cached_client *c, uint32_t handle, uint64_t block, uint32_t nblocks,
		   uint32_t flags, void *buf, uint64_t *hits);
/* The same read served only from the layer's mapped arena, never asking
 * the daemon: true when every block was copied (and reported as hits),
 * false when any was not there or changed during the copy (buf may have
 * been scribbled on) or the layer is not mapped. It never waits. */
bool ic_cached_read_mapped(struct ic_cached_client *c, uint32_t handle, uint64_t block,
			   uint32_t nblocks, void *buf);
/* Bytes [off, off+len) of the layer, spliced from its mapped arena into
 * pipe (the write end) without a copy, never asking the daemon: true when
 * all went in (with report, reported as hits), false otherwise (the pipe
 * may hold part of them). It never waits. */
bool ic_cached_splice_mapped(struct ic_cached_client *c, uint32_t handle, uint64_t off,
			     uint32_t len, int pipe, bool report);
/* Whether every block of bytes [off, off+len) is in the layer's mapped
 * arena now (1) or not (0), or -ENODEV when the arena is not mapped; a
 * hint for choosing between the calls around it. */
int ic_cached_mapped_has(struct ic_cached_client *c, uint32_t handle, uint64_t off, uint32_t len);
/* READ with IC_CACHED_F_WAIT | IC_CACHED_F_NODATA: wait for the fills of
 * blocks [block, block + nblocks), counted as a read, copying nothing;
 * *hits gets the bitmap of those now in the layer's own arena. */
int ic_cached_fill(struct ic_cached_client *c, uint32_t handle, uint64_t block, uint32_t nblocks,
		   uint64_t *hits);
/* Start fills of the blocks not cached yet; *cached (may be NULL) gets the
 * bitmap of those that were. */
int ic_cached_prefetch(struct ic_cached_client *c, uint32_t handle, uint64_t block,
		       uint32_t nblocks, uint64_t *cached);
/* Counters of one layer, or the daemon's totals with IC_CACHED_HANDLE_ALL. */
int ic_cached_stats(struct ic_cached_client *c, uint32_t handle,
		    uint64_t stats[IC_CACHED_STAT_COUNT]);
/* Evict the layer's cached blocks; *dropped (may be NULL) gets how many. */
int ic_cached_drop(struct ic_cached_client *c, uint32_t handle, uint64_t *dropped);

#endif
