/* isocached internals (docs/CACHED.md), shared by the daemon's files and
 * its unit tests. Single-threaded: everything here runs on the event loop.
 *
 * - store.c: the block cache. 4 KiB blocks keyed by (layer, block) in an
 *   XXH3-hashed table, a fixed slab under a hard memory bound, SIEVE
 *   eviction, per-uid accounting and quotas, per-layer counters.
 * - fill.c: requests against the store and singleflight fills: the first
 *   miss on a block starts one backing read, later misses wait on it.
 * - layer.c: what makes an fd a layer the daemon will cache.
 * - session.c, loop.c, main.c: the protocol, the io_uring loop, options.
 */
#ifndef IC_CACHED_INTERNAL_H
#define IC_CACHED_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <liburing.h>
#include <sys/signalfd.h>

#include "isocache/cached_proto.h"

#define cached_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define CACHED_NIL UINT32_MAX
/* Fills read at least a cluster and grow to this on sequential misses. */
#define CACHED_FILL_MIN 16 /* 64 KiB */
#define CACHED_FILL_MAX 64 /* 256 KiB */
#define CACHED_MAX_LAYERS 4096
#define CACHED_MAX_UIDS 256
#define CACHED_MAX_FILLS 256
#define CACHED_MAX_SESSIONS 4096

/* An io_uring operation: user_data points here, done runs on completion. */
struct ic_op {
	void (*done)(struct ic_op *op, int res);
	uint32_t cqe_flags; /* of the completion being handled (IORING_CQE_F_MORE) */
};

struct cached_layer {
	uint8_t uuid[16];
	dev_t dev;
	ino_t ino;
	int fd;		  /* the daemon's own reference, read-only */
	uint64_t size;	  /* bytes */
	uint64_t nblocks; /* blocks, the last one maybe partial */
	uint32_t id;	  /* index in the store's layer table */
	uint64_t seq_next; /* the block after the last fill: sequential stream detection */
	uint32_t ra;	   /* the current fill window in blocks */
	uint64_t stats[IC_CACHED_STAT_COUNT];
};

enum cached_state { CACHED_FREE, CACHED_FILLING, CACHED_VALID };

struct cached_entry {
	uint64_t block;
	uint32_t layer;
	uint32_t hnext;	     /* hash chain */
	uint32_t newer, older; /* SIEVE queue of valid entries; free list uses older */
	uint32_t fill;	     /* while FILLING */
	uint16_t uid;	     /* accounting slot */
	uint8_t state;
	uint8_t visited;
};

struct cached_uid {
	uid_t uid;
	bool capped;	/* has a --quota */
	uint64_t quota; /* blocks, when capped (0: this uid causes no fills) */
	uint64_t used;	/* blocks */
};

struct cached_req;

/* One backing read of up to CACHED_FILL_MAX blocks into slab slots. */
struct cached_fill {
	struct ic_op op; /* first: the readv completion */
	struct cached_store *store;
	struct cached_layer *layer;
	uint64_t block;
	uint32_t nblocks;
	uint32_t done_bytes; /* read so far; short reads are resumed */
	uint32_t iov_first;  /* the first iovec still to read */
	uint32_t next_free;
	uint32_t entries[CACHED_FILL_MAX];
	struct iovec iov[CACHED_FILL_MAX];
	struct cached_req *waiters;
};

/* A READ or PREFETCH in progress. The session owns it; the store drives it. */
struct cached_req {
	struct cached_layer *layer;
	uint64_t block;
	uint32_t nblocks;
	uint32_t cursor; /* blocks before it are done */
	uint16_t uid;	 /* accounting slot of the asking session */
	bool wait;	 /* read-through: wait for fills */
	bool resumed;	 /* the block at cursor was counted before the wait */
	bool failed;	 /* a fill it waited on failed: serve no more misses */
	uint8_t *dst;	 /* slot to copy into, or NULL (PREFETCH) */
	uint64_t hits;	 /* bitmap of blocks copied (or found, for PREFETCH) */
	struct cached_req *wait_next;
};

struct cached_store {
	uint32_t cap; /* blocks */
	uint32_t used;
	uint8_t *data; /* cap blocks */
	struct cached_entry *e;
	uint32_t *buckets;
	uint32_t bucket_mask;
	uint32_t free_head;
	uint32_t newest, oldest, hand;

	struct cached_uid uids[CACHED_MAX_UIDS];
	uint32_t nuids;

	struct cached_layer **layers;
	uint32_t nlayers;

	struct cached_fill *fills;
	uint32_t fill_free;
	uint32_t fills_busy;

	/* Queue a fill's read (the loop's ring; tests fake it). 0 or -errno. */
	int (*submit)(struct cached_store *st, struct cached_fill *f);
	/* A request is complete: reply to it. */
	void (*finish)(struct cached_store *st, struct cached_req *r);
	void *ctx;
};

/* store.c */
int cached_store_init(struct cached_store *st, uint64_t memory);
void cached_store_fini(struct cached_store *st);
/* The accounting slot for uid, created on first use (slot 0 collects uids
 * past CACHED_MAX_UIDS). */
uint16_t cached_store_uid(struct cached_store *st, uid_t uid);
int cached_store_set_quota(struct cached_store *st, uid_t uid, uint64_t bytes);
uint32_t cached_store_lookup(struct cached_store *st, uint32_t layer, uint64_t block);
/* Take a free block for (layer, block) in state FILLING, evicting if need
 * be; the uid's quota decides whose blocks may go. CACHED_NIL when none. */
uint32_t cached_store_alloc(struct cached_store *st, uint32_t layer, uint64_t block, uint16_t uid);
/* A filled block becomes valid (newest in the queue), or goes back free. */
void cached_store_publish(struct cached_store *st, uint32_t i);
void cached_store_release(struct cached_store *st, uint32_t i);
static inline uint8_t *
cached_store_data(struct cached_store *st, uint32_t i)
{
	return st->data + ((size_t)i << IC_CACHED_BLOCK_SHIFT);
}
/* Drop every valid block of a layer; returns how many. */
uint64_t cached_store_drop(struct cached_store *st, uint32_t layer);
/* Find or add the layer (uuid, dev, ino); fd is taken on add, else closed. */
int cached_store_layer(struct cached_store *st, const uint8_t uuid[16], const struct stat *sb,
		       int fd, struct cached_layer **out);
void cached_store_totals(struct cached_store *st, uint64_t out[IC_CACHED_STAT_COUNT]);
void cached_store_latency(struct cached_layer *l, uint64_t usec);

/* fill.c */
/* Serve blocks from r->cursor on: copy hits, start or join fills. Calls
 * st->finish(r) once the request is done, possibly before returning. */
void cached_req_run(struct cached_store *st, struct cached_req *r);
/* A fill's read completed with res (bytes or -errno). */
void cached_fill_complete(struct cached_fill *f, int res);

/* layer.c */
/* Check that fd is a frozen layer (regular, opened read-only, mode 0444,
 * immutable if root's, IC_LAYER_XATTR says frozen) and read its layer
 * uuid. 0, or -EBADF (not a regular file), -EACCES (writable), -EPERM
 * (mode, or root's file not immutable), -ENODATA (no or bad xattr). */
int cached_layer_check(int fd, uint8_t uuid[16], struct stat *sb);
int cached_uuid_parse(const char *text, uint8_t uuid[16]);
/* Reopen a checked layer fd O_DIRECT for fills (or keep it); takes fd. */
int cached_layer_direct(int fd);

/* The daemon: one ring, one thread (loop.c, session.c). */
struct cached_session;

struct cached_daemon {
	struct io_uring ring;
	struct cached_store store;
	int listen_fd;
	int sig_fd;
	struct ic_op accept_op;
	struct ic_op accept_pause_op; /* re-arms accept after an error */
	struct __kernel_timespec accept_pause;
	struct ic_op sig_op;
	struct signalfd_siginfo si;
	bool stopping;
	bool accept_single; /* the kernel has no multishot accept (before 5.19) */
	uint64_t drain_deadline; /* CLOCK_MONOTONIC ns: stop waiting for stuck clients */
	unsigned inflight; /* operations whose last completion has not come */
	struct cached_session *sessions;
	unsigned nsessions;
};

/* loop.c */
/* Set up the ring over listen_fd, with SIGTERM and SIGINT blocked and read
 * through a signalfd on the ring. The store must be initialised. 0 or -errno. */
int cached_daemon_init(struct cached_daemon *d, int listen_fd);
/* Serve until SIGTERM or SIGINT, then finish in-flight work. 0 or -errno. */
int cached_daemon_run(struct cached_daemon *d);
void cached_daemon_fini(struct cached_daemon *d);
/* An SQE whose completion calls op->done (op may be NULL: ignored). */
struct io_uring_sqe *cached_sqe(struct cached_daemon *d, struct ic_op *op);

/* session.c */
void cached_session_new(struct cached_daemon *d, int fd);
/* Stop reading from every session; each ends once its replies are out. */
void cached_session_stop_all(struct cached_daemon *d);
/* The store's finish hook: reply to a READ or PREFETCH. */
void cached_session_finish(struct cached_store *st, struct cached_req *r);

#endif
