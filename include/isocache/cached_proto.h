/* The isocached wire protocol (docs/CACHED-PROTOCOL.md), shared by the
 * daemon and its client library.
 *
 * Transport: a Unix SOCK_SEQPACKET socket, one message per packet. Every
 * message is a 24-byte header and a body whose size is fixed by its type;
 * all integers are little-endian. Requests go client → daemon; each reply
 * carries the request's type with IC_CACHED_REPLY set and echoes its id.
 *
 *   header: magic u32 | version u16 | type u16 | len u32 | flags u32 | id u64
 *
 * A body is the fields its type lists in proto_fields (cached/proto.c), in
 * this order, each present or absent as a whole:
 *
 *   status i32 | handle u32 | slot u32 | nblocks u32 | block u64 |
 *   value u64 | uuid 16 bytes | stats u64[IC_CACHED_STAT_COUNT]
 *
 * ic_cached_decode() checks everything a message can get wrong on its own
 * (magic, version, type and direction, length, flags, ranges, status);
 * the daemon then checks what depends on the session (handle, slot).
 */
#ifndef ISOCACHE_CACHED_PROTO_H
#define ISOCACHE_CACHED_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define IC_CACHED_MAGIC 0x44434349u /* "ICCD" in memory order */
#define IC_CACHED_VERSION 6
#define IC_CACHED_BLOCK 4096u
#define IC_CACHED_BLOCK_SHIFT 12
#define IC_CACHED_HDR_SIZE 24
/* Larger than any valid message: a longer packet is refused unread. */
#define IC_CACHED_MSG_MAX 512

/* The most blocks in one READ or PREFETCH: one bit each in the hit bitmap. */
#define IC_CACHED_MAX_BLOCKS 64
/* HELLO limits on the shared buffer: slots of 4 KiB..256 KiB, 1..256 of them. */
#define IC_CACHED_MAX_SLOTS 256
/* STATS and DROP with this handle: the daemon's totals (STATS only). */
#define IC_CACHED_HANDLE_ALL 0xffffffffu

enum ic_cached_type {
	IC_CACHED_HELLO = 1,    /* slot = nslots, nblocks = blocks per slot; memfd attached */
	IC_CACHED_REGISTER = 2, /* layer fd attached → handle, value = size, uuid */
	IC_CACHED_READ = 3,     /* handle, slot, nblocks, block → value = hit bitmap */
	IC_CACHED_PREFETCH = 4, /* handle, nblocks, block → value = blocks already cached */
	IC_CACHED_STATS = 5,    /* handle → stats */
	IC_CACHED_DROP = 6,     /* handle → value = blocks dropped */
	IC_CACHED_BYE = 7,      /* no reply: the daemon ends the session */
	IC_CACHED_MAP = 8,      /* handle → value = arena size; the arena's memfd attached */
	IC_CACHED_TYPE_MAX = 8,
};
#define IC_CACHED_REPLY 0x8000u

/* READ flag: wait for the daemon's fill of missing blocks (read-through),
 * so the reply carries every block of the range. Without it, a READ returns
 * what is cached now and starts fills of the rest in the background. */
#define IC_CACHED_F_WAIT 0x1u
/* HELLO flag: the shared buffer ends with a hit ring of IC_CACHED_RING_SIZE
 * bytes (include/isocache/cached_shm.h) after its slots. */
#define IC_CACHED_F_RING 0x2u
/* READ flag: copy nothing into the slot; the client takes the blocks from
 * the layer's arena itself (a front end splicing them to its client). The
 * reply's bitmap then has only blocks held in this layer's own arena: a
 * block deduplicated with another layer's is not there (it is served
 * from the other's memory, which this client may not map). */
#define IC_CACHED_F_NODATA 0x4u

/* Per-layer counters (STATS with a handle) or totals (IC_CACHED_HANDLE_ALL). */
enum ic_cached_stat {
	IC_CACHED_STAT_LOOKUPS,       /* blocks asked for by READ */
	IC_CACHED_STAT_HITS,          /* ... found cached */
	IC_CACHED_STAT_MISSES,        /* ... not cached (or still filling) */
	IC_CACHED_STAT_FILLS,         /* backing reads issued */
	IC_CACHED_STAT_JOINS,         /* requests that waited on another's fill */
	IC_CACHED_STAT_EVICTIONS,     /* blocks evicted */
	IC_CACHED_STAT_BYTES_SERVED,  /* bytes copied into client buffers */
	IC_CACHED_STAT_BACKING_BYTES, /* bytes read from layer files */
	IC_CACHED_STAT_BLOCKS,        /* blocks resident now */
	IC_CACHED_STAT_MEM_LIMIT,     /* totals only: --memory in bytes */
	/* The L2 tier (version 2). */
	IC_CACHED_STAT_L2_HITS,          /* blocks read from L2 into L1, checksum good */
	IC_CACHED_STAT_L2_MISSES,        /* blocks of backing fills while L2 is on */
	IC_CACHED_STAT_L2_BYTES_READ,    /* bytes read from the L2 file */
	IC_CACHED_STAT_L2_BYTES_WRITTEN, /* bytes written to the L2 file */
	IC_CACHED_STAT_L2_CSUM_FAILS,    /* L2 blocks whose checksum did not match */
	IC_CACHED_STAT_L2_EVICTIONS,     /* totals only: L2 entries overwritten */
	IC_CACHED_STAT_L2_BLOCKS,        /* totals only: L2 entries now */
	IC_CACHED_STAT_L2_LIMIT,         /* totals only: --l2-size in bytes (0: no L2) */
	/* Version 3: hits clients served from shared arenas and reported in
	 * their hit rings (also counted in lookups, hits and bytes_served). */
	IC_CACHED_STAT_SHARED_HITS,
	/* Version 4: bytes of the layer's cached blocks held once for the
	 * dedup domain, in another entry's page (a gauge, like blocks, which
	 * counts only blocks holding a page of their own). */
	IC_CACHED_STAT_DEDUP_BYTES,
	/* Version 4: boot trace replay (docs/CACHED.md, "Boot traces"). */
	IC_CACHED_STAT_TRACE_FILLS,  /* fills a trace replay started (layer file or L2) */
	IC_CACHED_STAT_TRACE_BLOCKS, /* blocks those fills read */
	/* Version 5: sequential readahead (docs/CACHED.md, "Fills"). */
	IC_CACHED_STAT_AHEAD_FILLS,  /* fills readahead started (layer file or L2) */
	IC_CACHED_STAT_AHEAD_BLOCKS, /* blocks those fills read */
	/* READ latency, request received to reply queued: bucket i counts
	 * reads of [2^i, 2^(i+1)) microseconds; the last bucket is open. */
	IC_CACHED_STAT_LAT0,
	IC_CACHED_STAT_COUNT = IC_CACHED_STAT_LAT0 + 16,
};
#define IC_CACHED_LAT_BUCKETS (IC_CACHED_STAT_COUNT - IC_CACHED_STAT_LAT0)

/* A decoded message in host order. Fields a type does not carry are zero. */
struct ic_cached_msg {
	uint16_t type;
	uint32_t flags;
	uint64_t id;
	int32_t status; /* replies: 0 or -errno */
	uint32_t handle;
	uint32_t slot;
	uint32_t nblocks;
	uint64_t block;
	uint64_t value;
	uint8_t uuid[16];
	uint64_t stats[IC_CACHED_STAT_COUNT];
};

/* Bytes a message of this type takes on the wire, or 0 for an unknown type. */
size_t ic_cached_msg_size(uint16_t type);

/* Encode m into buf (cap bytes). Returns the length, or -EINVAL for an
 * unknown type, -ENOSPC when cap is too small. */
int ic_cached_encode(const struct ic_cached_msg *m, uint8_t *buf, size_t cap);

/* Decode and validate the len bytes of one packet into m. `reply` says
 * which direction is expected. Returns 0, or -EBADMSG (bad magic, length
 * or field), -EPROTONOSUPPORT (other version), -EPROTO (type or direction). */
int ic_cached_decode(const uint8_t *buf, size_t len, int reply, struct ic_cached_msg *m);

/* Send one message of len bytes on a SEQPACKET socket, with fd attached
 * (SCM_RIGHTS) when fd >= 0. Returns 0 or -errno. */
int ic_cached_send(int sock, const void *buf, size_t len, int fd);

/* The control buffer of a message carrying one descriptor. */
union ic_cached_cmsg {
	char buf[CMSG_SPACE(sizeof(int))];
	struct cmsghdr align;
};
/* Point mh's control data at cb, holding fd (SCM_RIGHTS). */
void ic_cached_attach_fd(struct msghdr *mh, union ic_cached_cmsg *cb, int fd);

/* A stable name for a stat, as "hits" or "lat_16us", for tools and JSON. */
const char *ic_cached_stat_name(enum ic_cached_stat s, char *buf, size_t cap);

#endif
