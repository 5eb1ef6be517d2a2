/* isocached internals (docs/CACHED.md), shared by the daemon's files and
 * its unit tests. Single-threaded: everything here runs on the event loop.
 *
 * - store.c: the block cache. 4 KiB blocks keyed by (layer, block) in an
 *   XXH3-hashed table, a fixed number of entries under a hard memory bound,
 *   SIEVE eviction, per-uid accounting and quotas, per-layer counters.
 * - arena.c: each layer's blocks, in a memfd clients may map read-only.
 * - dedup.c: keyed digests of filled blocks, so a block equal to one
 *   already cached for a layer of the same dedup domain is held once.
 * - hitring.c: draining the hits clients report through shared memory.
 * - fill.c: requests against the store and singleflight fills: the first
 *   miss on a block starts one backing read, later misses wait on it.
 * - l2.c: the L2 tier, a local cache file of checksummed 4 KiB slots
 *   with a persisted index, read and written through the loop's ring.
 * - layer.c: what makes an fd a layer the daemon will cache.
 * - trace.c: recording each layer's boot trace and keeping it on disk;
 *   prefetch.c: replaying one ahead of the readers (docs/CACHED.md, "Boot
 *   traces"). The file format is trace_file.c.
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
#include <xxhash.h>

#include "isocache/cached_proto.h"
#include "isocache/cached_shm.h"
#include "isocache/cached_trace.h"

#define cached_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define CACHED_NIL UINT32_MAX
/* Fills read at least a cluster and grow to this on sequential misses. */
#define CACHED_FILL_MIN 16 /* 64 KiB */
#define CACHED_FILL_MAX 64 /* 256 KiB */
#define CACHED_MAX_LAYERS 4096
#define CACHED_MAX_UIDS 256
#define CACHED_MAX_FILLS 256
#define CACHED_MAX_SESSIONS 4096
/* Sessions one uid other than root may hold (--sessions-per-uid). */
#define CACHED_UID_SESSIONS 256
/* An L2 slot whose filler is unknown (loaded from the file): uncharged. */
#define CACHED_NO_UID UINT16_MAX
/* L2 staging buffers (CACHED_FILL_MAX blocks each), and the smallest L2:
 * twice what they can have in flight, so in-flight writes never overlap. */
#define CACHED_L2_WRITES 32
#define CACHED_L2_MIN_SLOTS (2 * CACHED_L2_WRITES * CACHED_FILL_MAX)
/* Milliseconds between drains of the sessions' hit rings (hitring.c). */
#define CACHED_HIT_TICK_MS 100
/* Seconds between index writes of the L2 file. */
#define CACHED_L2_SYNC_SEC 10
/* Trace replay: requests in flight at most (each waits on one fill at a
 * time), and the share of the fill pool beyond which it starts no more,
 * so demand misses always find fills. */
#define CACHED_PREFETCH_LANES 32
#define CACHED_PREFETCH_WINDOW CACHED_PREFETCH_LANES /* runs put in block order together */
#define CACHED_PREFETCH_FILLS (CACHED_MAX_FILLS / 2)
_Static_assert(CACHED_PREFETCH_LANES <= CACHED_PREFETCH_FILLS, "prefetch stays under its cap");

/* An io_uring operation: user_data points here, done runs on completion. */
struct ic_op {
	void (*done)(struct ic_op *op, int res);
	uint32_t cqe_flags; /* of the completion being handled (IORING_CQE_F_MORE) */
};

/* A layer's arena (arena.c): block b's data and slot sit at fixed places. */
struct cached_arena {
	int fd;	   /* the daemon's, writable */
	int ro_fd; /* a read-only reopen, the one clients get */
	uint8_t *base;
	uint64_t size;
	struct ic_cached_slot *slots;
	uint8_t *data;
};

struct cached_layer {
	uint8_t uuid[16];
	dev_t dev;
	ino_t ino;
	uid_t owner;	  /* of the file: with root, the only uid that may DROP it */
	gid_t group;	  /* of the file: with owner and dev, its dedup domain */
	uint32_t head;	  /* the newest of its valid entries (list through lnext) */
	int fd;		  /* the daemon's own reference, read-only */
	uint64_t size;	  /* bytes */
	uint64_t nblocks; /* blocks, the last one maybe partial */
	uint32_t id;	  /* index in the store's layer table */
	uint64_t seq_next; /* the block after the last fill: sequential stream detection */
	uint32_t ra;	   /* the current fill window in blocks */
	/* Its readahead stream (fill_ahead): the blocks from ra_start to
	 * ra_end are read or being read; ra_dist: how far past the readers */
	uint64_t ra_start, ra_end;
	uint32_t ra_dist;
	uint64_t l2_ident; /* cached_l2_ident(): this file generation's key in L2 */
	uint64_t stats[IC_CACHED_STAT_COUNT];
	struct cached_arena arena;
	struct cached_trace_rec *trace; /* its boot trace, while being recorded */
	bool trace_seen; /* its trace was looked for: once in the daemon's life */
};

enum cached_state { CACHED_FREE, CACHED_FILLING, CACHED_VALID };

struct cached_entry {
	uint64_t block;
	uint32_t layer;
	uint32_t hnext;	     /* hash chain */
	uint32_t newer, older; /* SIEVE queue of valid entries; free list uses older */
	uint32_t lnext, lprev; /* the layer's valid entries, so DROP costs only those */
	uint32_t fill;	     /* while FILLING */
	uint32_t canon;	     /* an alias: the entry holding its data; else CACHED_NIL */
	uint32_t anext;	     /* a data entry: its first alias; an alias: the next one */
	uint32_t dnext;	     /* the digest table's chain (dedup.c) */
	uint16_t uid;	     /* accounting slot (CACHED_NO_UID: an alias, uncharged) */
	uint8_t state;
	uint8_t visited;
};

struct cached_uid {
	uid_t uid;
	bool capped;	/* has a --quota */
	uint64_t quota; /* blocks, when capped (0: this uid causes no fills), in each tier */
	uint64_t used;	/* blocks in L1 */
	uint64_t l2_used; /* L2 slots written (or being written) for it */
	unsigned sessions;
};

struct cached_req;

/* One read of up to CACHED_FILL_MAX blocks into slab slots: from the
 * layer file (a backing fill), or from consecutive L2 slots. */
struct cached_fill {
	struct ic_op op; /* first: the readv completion */
	struct cached_store *store;
	struct cached_layer *layer;
	uint64_t block;
	uint32_t l2_slot; /* the first L2 slot read, or CACHED_NIL: the layer file */
	uint16_t uid;	  /* accounting slot of the request that started it */
	int fd;		  /* read from: the layer's fd or the L2 file */
	uint64_t off;	  /* fd offset of block */
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
	bool prefetch;	 /* a trace replay's (prefetch.c): its fills count as trace_fills */
	bool reader;	 /* a READ: counted and traced, even without dst */
	uint8_t *dst;	 /* slot to copy into, or NULL (PREFETCH, READ with F_NODATA) */
	uint64_t hits;	 /* bitmap of blocks copied (or found: PREFETCH; found in
			  * the layer's own arena: READ with F_NODATA) */
	struct cached_req *wait_next;
	/* Called when done instead of the store's finish, when set. */
	void (*finish)(struct cached_store *st, struct cached_req *r);
};

struct cached_store {
	uint32_t cap; /* blocks holding data (--memory) */
	uint32_t used; /* entries holding data: filling, or valid and not an alias */
	uint32_t nentries; /* cap, or twice that with dedup (aliases need entries) */
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
	uint32_t readahead; /* the most blocks a stream is read ahead (--readahead); 0: off */

	struct cached_l2 *l2; /* NULL: no L2 tier */
	struct cached_dedup *dd; /* NULL: no dedup (--no-dedup) */

	/* Queue a fill's read (the loop's ring; tests fake it). 0 or -errno. */
	int (*submit)(struct cached_store *st, struct cached_fill *f);
	/* A request is complete: reply to it. */
	void (*finish)(struct cached_store *st, struct cached_req *r);
	void *ctx;
};

/* An L2 index entry, in memory and (host byte order) in the file. */
struct cached_l2_entry {
	uint64_t ident; /* the layer's cached_l2_ident(); 0: an empty slot */
	uint64_t block;
	uint64_t sum; /* XXH3 of the slot's 4 KiB, seeded with the hash of (ident, block) */
};

/* One staged write of a fill's blocks to consecutive L2 slots. */
struct cached_l2_write {
	struct ic_op op; /* first: the write completion */
	struct cached_l2 *l2;
	struct cached_layer *layer;
	uint32_t slot, nblocks, done_bytes, next_free;
	uint16_t uid; /* charged for these slots */
	uint8_t *buf; /* CACHED_FILL_MAX blocks, aligned for O_DIRECT */
	struct cached_l2_entry e[CACHED_FILL_MAX];
};

struct cached_l2 {
	int fd;
	uint32_t nslots;
	uint32_t hand; /* FIFO: the next slot written */
	uint32_t used; /* slots holding an entry */
	uint64_t region_size; /* one index region: header and index */
	uint64_t data_off;    /* slot 0 */
	uint64_t seq;	      /* of the newest index region on disk */
	uint64_t secret;      /* the seed of identities (cached_l2_ident) */
	struct cached_l2_entry *slots;
	uint16_t *owner; /* per slot: the accounting slot charged, or CACHED_NO_UID */
	struct cached_uid *uids; /* the store's table (cached_store_attach_l2) */
	uint32_t *buckets, *hnext;
	uint32_t bucket_mask;
	uint8_t *snap; /* the region image being written */
	bool dirty;    /* the index changed since the last image */
	bool syncing;  /* an image write is in flight */
	bool csum_warned; /* a checksum mismatch was logged at WARN */
	struct ic_op sync_op;
	struct cached_l2_write *writes;
	uint8_t *wbuf;
	uint32_t write_free;
	uint64_t evictions;
	/* Queue a write of len bytes at off of the L2 file (the loop's ring;
	 * tests do it at once). 0 or -errno; op->done gets the result. */
	int (*write)(struct cached_l2 *l2, struct ic_op *op, const void *buf, size_t len,
		     uint64_t off);
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
/* A filled block becomes valid (newest in the queue), or goes back free.
 * publish returns true when the block became an alias of an equal one
 * (dedup.c): its page is no longer used, and the caller gives it back with
 * cached_arena_punch, a run of a fill's blocks in one call. */
bool cached_store_publish(struct cached_store *st, uint32_t i);
void cached_store_release(struct cached_store *st, uint32_t i);
/* Entry i's 4 KiB, in its layer's arena (an alias's: in its canonical
 * entry's layer's arena). */
static inline uint8_t *
cached_store_data(struct cached_store *st, uint32_t i)
{
	if (st->e[i].canon != CACHED_NIL)
		i = st->e[i].canon;
	return st->layers[st->e[i].layer]->arena.data + (st->e[i].block << IC_CACHED_BLOCK_SHIFT);
}
/* A hit on valid entry i, for SIEVE: an alias's hit keeps its data too. */
static inline void
cached_store_touch(struct cached_store *st, uint32_t i)
{
	st->e[i].visited = 1;
	if (st->e[i].canon != CACHED_NIL)
		st->e[st->e[i].canon].visited = 1;
}
/* Hold equal blocks of a dedup domain once (dedup.c): call right after
 * cached_store_init, before any block is cached. 0 or -ENOMEM, -errno. */
int cached_store_dedup(struct cached_store *st);
/* Drop every valid block of a layer, in time linear in their number;
 * returns how many. */
uint64_t cached_store_drop(struct cached_store *st, uint32_t layer);
/* Use l2 (opened) as the store's second tier, its slots charged to the
 * store's uids. */
void cached_store_attach_l2(struct cached_store *st, struct cached_l2 *l2);
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

/* dedup.c: the digest table. Only valid data entries are in it. */
struct cached_dedup {
	uint8_t secret[192]; /* XXH3's key: getrandom at start, never stored */
	uint32_t *buckets;
	uint32_t bucket_mask;
	XXH128_hash_t *digest; /* per entry, while it is in the table */
};
int cached_dedup_init(struct cached_dedup *dd, uint32_t nentries);
void cached_dedup_fini(struct cached_dedup *dd);
/* The data entry of l's dedup domain holding the same 4 KiB as filled
 * entry i (compared byte for byte, not only by digest), or CACHED_NIL.
 * Remembers i's digest for cached_dedup_insert. */
uint32_t cached_dedup_find(struct cached_store *st, uint32_t i);
/* Valid data entry i holds its block's bytes for its domain from now on. */
void cached_dedup_insert(struct cached_store *st, uint32_t i);
/* Data entry i leaves the cache: out of the table. */
void cached_dedup_remove(struct cached_store *st, uint32_t i);

/* l2.c */
/* Open or create the L2 file at path with size bytes of slots, and load
 * its newer valid index (none: the tier starts empty). Blocking: call
 * before the loop runs. 0, or -ERANGE (size), -ENOMEM, -errno. */
int cached_l2_open(struct cached_l2 *l2, const char *path, uint64_t size);
/* Write the index if it changed (blocking: after the loop) and free all. */
void cached_l2_close(struct cached_l2 *l2);
/* The key of a file generation in this L2 file (l2 may be NULL): a hash
 * of uuid, device, inode, size, mtime and ctime keyed by l2->secret. */
uint64_t cached_l2_ident(const struct cached_l2 *l2, const uint8_t uuid[16],
			 const struct stat *sb);
/* The slot holding (ident, block), or CACHED_NIL (also when l2 is NULL). */
uint32_t cached_l2_lookup(const struct cached_l2 *l2, uint64_t ident, uint64_t block);
/* Is data (NULL: the read failed) what slot holds for block of l? A
 * mismatch is counted and drops the entry, so the next lookup misses. */
bool cached_l2_check(struct cached_l2 *l2, uint32_t slot, struct cached_layer *l, uint64_t block,
		     const uint8_t *data);
/* Copy n blocks of l from block on into L2 and queue their write at the
 * hand, evicting what the slots held, charged to accounting slot uid. Best
 * effort; l2 may be NULL. A uid with a quota that would pass it in L2 is
 * not written (its blocks stay in L1 only). */
void cached_l2_put(struct cached_l2 *l2, struct cached_layer *l, uint64_t block, uint32_t n,
		   uint8_t *const *data, uint16_t uid);
/* Forget every entry of l's file generation; returns how many. Costs
 * O(min(l's blocks, L2 slots)). */
uint64_t cached_l2_drop_layer(struct cached_l2 *l2, const struct cached_layer *l);
/* Queue a write of the index, if it changed and none is in flight. */
int cached_l2_sync(struct cached_l2 *l2);
/* The tier's totals: evictions, resident blocks, capacity. */
void cached_l2_totals(const struct cached_l2 *l2, uint64_t out[IC_CACHED_STAT_COUNT]);
static inline uint64_t
cached_l2_offset(const struct cached_l2 *l2, uint32_t slot)
{
	return l2->data_off + ((uint64_t)slot << IC_CACHED_BLOCK_SHIFT);
}

/* arena.c */
/* Create the arena of a layer of nblocks blocks: memfd, header, the
 * daemon's writable mapping, seals, the read-only reopen. 0 or -errno. */
int cached_arena_init(struct cached_arena *a, const uint8_t uuid[16], uint64_t nblocks);
void cached_arena_fini(struct cached_arena *a);
/* Block's data is in place: readers may copy it. */
void cached_arena_publish(struct cached_arena *a, uint64_t block);
/* Block leaves the cache (valid: it was published) and its page is freed. */
void cached_arena_evict(struct cached_arena *a, uint64_t block, bool valid);
/* Free the pages of n blocks from block on, which no reader may be told
 * are there (never published, or evicted). Best effort. */
void cached_arena_punch(struct cached_arena *a, uint64_t block, uint64_t n);

/* hitring.c */
/* Count the hits reported in ring since *tail against the session's
 * handles, mark their blocks visited, and advance *tail (the daemon's own
 * copy; the ring's tail is only told). Entries that fit no handle are
 * skipped. Returns the blocks counted. */
uint64_t cached_hitring_drain(struct cached_store *st, struct ic_cached_ring *ring, uint64_t *tail,
			      struct cached_layer *const *handles, uint32_t nhandles);

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
struct cached_daemon;
struct cached_prefetch;

/* A periodic job on the ring: run every period until the daemon stops. */
struct cached_tick {
	struct ic_op op; /* first: the timeout's completion */
	struct cached_daemon *d;
	struct __kernel_timespec period, ts;
	void (*run)(struct cached_daemon *d);
};

/* One request of a trace replay in flight (prefetch.c). */
struct cached_prefetch_lane {
	struct cached_req r;
	struct cached_prefetch *p;
	struct cached_prefetch_lane *next_free;
};

/* Boot traces: the options, the recordings' timer, the replays. */
struct cached_traces {
	bool off;	    /* --no-trace: neither record nor replay */
	const char *dir;    /* --trace-dir */
	uint64_t window_ns; /* --trace-window */
	uint64_t limit;	    /* --trace-limit, in blocks */
	struct cached_tick tick; /* ends recordings whose window passed */
	struct cached_prefetch *replays;
	struct cached_prefetch_lane lanes[CACHED_PREFETCH_LANES];
	struct cached_prefetch_lane *free_lanes;
	bool kicking; /* in cached_prefetch_kick: lanes done meanwhile do not recurse */
};

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
	struct cached_l2 l2;	 /* used when store.l2 points here */
	struct cached_tick l2_tick;  /* the L2 index write, every CACHED_L2_SYNC_SEC */
	struct cached_tick hit_tick; /* the hit rings' drain, every CACHED_HIT_TICK_MS */
	struct cached_traces traces;
	bool stopping;
	bool no_shared; /* --no-shared: MAP is refused, every hit takes the socket */
	bool accept_single; /* the kernel has no multishot accept (before 5.19) */
	uint64_t drain_deadline; /* CLOCK_MONOTONIC ns: stop waiting for stuck clients */
	unsigned inflight; /* operations whose last completion has not come */
	struct cached_session *sessions;
	unsigned nsessions;
	unsigned uid_sessions; /* per uid but root (--sessions-per-uid) */
};

/* loop.c */
/* Set up the ring over listen_fd, with SIGTERM and SIGINT blocked and read
 * through a signalfd on the ring. The store, and d->l2 when store.l2 points
 * to it, must be initialised (opened) first. 0 or -errno. */
int cached_daemon_init(struct cached_daemon *d, int listen_fd);
/* Serve until SIGTERM or SIGINT, then finish in-flight work. 0 or -errno. */
int cached_daemon_run(struct cached_daemon *d);
void cached_daemon_fini(struct cached_daemon *d);
/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t cached_now(void);
/* An SQE whose completion calls op->done (op may be NULL: ignored). */
struct io_uring_sqe *cached_sqe(struct cached_daemon *d, struct ic_op *op);

/* session.c */
void cached_session_new(struct cached_daemon *d, int fd);
/* Stop reading from every session; each ends once its replies are out. */
void cached_session_stop_all(struct cached_daemon *d);
/* The store's finish hook: reply to a READ or PREFETCH. */
void cached_session_finish(struct cached_store *st, struct cached_req *r);
/* Drain every session's hit ring (before STATS, and on a timer). */
void cached_session_drain_all(struct cached_daemon *d);

/* trace.c */
struct cached_trace_rec;
/* The first registration of l in this daemon's life (sb: its file, uid:
 * the accounting slot of the session): replay its trace when one matches
 * the file, else start recording one. Reads the trace file (blocking, at
 * most IC_CACHED_TRACE_MAX bytes, once per layer). */
void cached_trace_layer(struct cached_daemon *d, struct cached_layer *l, const struct stat *sb,
			uint16_t uid);
/* A reader asked for block of l: note it if l is being recorded. */
void cached_trace_touch(struct cached_layer *l, uint64_t block);
/* Every second: write and end the recordings whose window passed or that
 * are full. */
void cached_trace_tick(struct cached_daemon *d);
/* After the loop: write the recordings in progress, end the replays. */
void cached_trace_fini(struct cached_daemon *d);

/* prefetch.c */
/* Prefetch l's blocks in t's order, charged to accounting slot uid; takes t. */
void cached_prefetch_start(struct cached_daemon *d, struct cached_layer *l,
			   struct ic_cached_trace *t, uint16_t uid);
/* May a trace replay's fill of uid take blocks more without evicting? */
bool cached_prefetch_room(const struct cached_store *st, uint16_t uid, uint32_t blocks);
/* Put each window of CACHED_PREFETCH_WINDOW runs of t in block order and
 * join the adjacent runs (t->blocks is unchanged). */
/* A trace's runs, each inside a chunk of 256 KiB of which the trace holds
 * a quarter or more, replaced by the whole chunk where the trace first
 * reaches it (clipped to the layer's size; none when it is 0). */
void cached_prefetch_widen(struct ic_cached_trace *t);
void cached_prefetch_coalesce(struct ic_cached_trace *t);
/* Start replay requests while lanes are free and demand leaves fills. */
void cached_prefetch_kick(struct cached_daemon *d);
void cached_prefetch_fini(struct cached_daemon *d);

#endif
