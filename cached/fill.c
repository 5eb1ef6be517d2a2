/* Requests and singleflight fills.
 *
 * A request walks its blocks in order. A valid block is copied into the
 * client's slot. The first miss on a block starts a fill: one readv from
 * the daemon's own fd of the layer straight into freshly allocated slab
 * blocks, which stay FILLING (in the table, not evictable) until the read
 * completes. A later miss on a FILLING block joins that fill: the request
 * parks on the fill's waiter list, so N sessions missing one block cost one
 * backing read. A request waits on at most one fill at a time and resumes
 * its walk where it stopped when that fill completes.
 *
 * Fills read at least CACHED_FILL_MIN blocks (a 64 KiB cluster), starting
 * at the cluster boundary when the blocks before the miss are absent, and
 * double their window up to CACHED_FILL_MAX while misses stay sequential.
 * A boot trace replay's request (prefetch.c) fills the rest of its request
 * in one read instead, nothing before or past it, leaves the sequential
 * detection to the readers, and takes only free blocks: it never evicts.
 * A sequential stream of misses is also read ahead of its readers, in
 * fills of their own (fill_ahead).
 *
 * With an L2 tier, a miss on a block L2 holds becomes a fill from the L2
 * file instead: the run of blocks it holds in consecutive slots, one read,
 * each block checked against its checksum before it is published (a block
 * that fails is released, so its waiters find it missing and fill it from
 * the layer). A backing fill stops short of blocks L2 holds, and once read
 * is written to L2 (write-through: L2 holds every recent fill, so an L1
 * eviction costs nothing and a restarted daemon finds L1's working set).
 */
#include "cached/internal.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/valgrind.h"

static uint64_t
fill_want(const struct cached_fill *f)
{
	uint64_t off = f->block << IC_CACHED_BLOCK_SHIFT;
	uint64_t len = (uint64_t)f->nblocks << IC_CACHED_BLOCK_SHIFT;

	if (f->l2_slot != CACHED_NIL)
		return len; /* L2 slots are whole blocks */
	return off + len > f->layer->size ? f->layer->size - off : len;
}

static void
fill_put(struct cached_store *st, struct cached_fill *f)
{
	f->next_free = st->fill_free;
	st->fill_free = (uint32_t)(f - st->fills);
	st->fills_busy--;
}

/* Point the fill's iovecs past what was read already and queue the read. */
static int
fill_submit(struct cached_store *st, struct cached_fill *f)
{
	uint32_t k = f->done_bytes >> IC_CACHED_BLOCK_SHIFT;
	uint32_t skip = f->done_bytes & (IC_CACHED_BLOCK - 1);

	f->iov_first = k;
	f->iov[k].iov_base = cached_store_data(st, f->entries[k]) + skip;
	f->iov[k].iov_len = IC_CACHED_BLOCK - skip;
	return st->submit(st, f);
}

/* The block where the data run holding block b ends: b itself when b is
 * in a hole. Readahead stops at a hole: its blocks read as zeroes without
 * the cache (the vdisk never asks for unallocated clusters), so reading
 * them would only cost backing I/O. One lseek per fill; without hole
 * information, the whole layer. */
static uint64_t
fill_data_end(const struct cached_layer *l, uint64_t b)
{
	off_t off = (off_t)(b << IC_CACHED_BLOCK_SHIFT);
	off_t hole = lseek(l->fd, off, SEEK_HOLE);

	if (hole < off)
		return l->nblocks;
	return ((uint64_t)hole + IC_CACHED_BLOCK - 1) >> IC_CACHED_BLOCK_SHIFT;
}

/* What a fill is for: its stats say, and only a demand fill says where
 * the readers' sequential stream goes. */
enum fill_kind {
	FILL_DEMAND, /* a reader's miss */
	FILL_TRACE,  /* a boot trace replay's (prefetch.c) */
	FILL_AHEAD,  /* sequential readahead (fill_ahead) */
};

/* Take blocks start, start + 1, ... (before end) of l into fill f, which
 * is st->fills[fi]; from block from on, stop at one the store has. Stop
 * at one L2 does not hold in the slot after the last (slot: the first's,
 * CACHED_NIL for a fill from the layer file: then at one L2 holds), and,
 * unless evict, when no free room is left. Returns how many. */
static uint32_t
fill_take(struct cached_store *st, struct cached_fill *f, uint32_t fi, struct cached_layer *l,
	  uint64_t start, uint64_t end, uint64_t from, uint32_t slot, uint16_t uid, bool evict)
{
	uint32_t n = 0;

	for (uint64_t blk = start; blk < end; blk++) {
		/* L2 fills take consecutive slots; backing fills what L2 lacks. */
		uint32_t l2_want = slot == CACHED_NIL ? CACHED_NIL : slot + n;

		if (blk >= from && cached_store_lookup(st, l->id, blk) != CACHED_NIL)
			break;
		if (cached_l2_lookup(st->l2, l->l2_ident, blk) != l2_want)
			break;
		if (!evict && !cached_prefetch_room(st, uid, 1))
			break;
		uint32_t i = cached_store_alloc(st, l->id, blk, uid);
		if (i == CACHED_NIL)
			break;
		st->e[i].fill = fi;
		f->entries[n] = i;
		f->iov[n].iov_base = cached_store_data(st, i);
		f->iov[n].iov_len = IC_CACHED_BLOCK;
		n++;
	}
	return n;
}

/* Queue the read of the n blocks fill_take took for f, the first free
 * fill, from block start of l (from L2 slot on, unless CACHED_NIL); NULL
 * when it cannot be queued (its blocks are let go). */
static struct cached_fill *
fill_go(struct cached_store *st, struct cached_fill *f, struct cached_layer *l, uint64_t start,
	uint32_t n, uint32_t slot, uint16_t uid, enum fill_kind kind)
{
	st->fill_free = f->next_free;
	st->fills_busy++;
	f->store = st;
	f->layer = l;
	f->block = start;
	f->nblocks = n;
	f->done_bytes = 0;
	f->waiters = NULL;
	f->l2_slot = slot;
	f->uid = uid;
	f->fd = slot == CACHED_NIL ? l->fd : st->l2->fd;
	f->off = slot == CACHED_NIL ? start << IC_CACHED_BLOCK_SHIFT : cached_l2_offset(st->l2, slot);
	if (kind == FILL_DEMAND) /* the others' reads say nothing of the readers' stream */
		l->seq_next = start + n;
	if (kind == FILL_TRACE) {
		l->stats[IC_CACHED_STAT_TRACE_FILLS]++;
		l->stats[IC_CACHED_STAT_TRACE_BLOCKS] += n;
	} else if (kind == FILL_AHEAD) {
		l->stats[IC_CACHED_STAT_AHEAD_FILLS]++;
		l->stats[IC_CACHED_STAT_AHEAD_BLOCKS] += n;
	}
	if (slot == CACHED_NIL) {
		l->stats[IC_CACHED_STAT_FILLS]++;
		l->stats[IC_CACHED_STAT_L2_MISSES] += st->l2 ? n : 0;
	}
	if (fill_submit(st, f) < 0) {
		while (n > 0)
			cached_store_release(st, f->entries[--n]);
		fill_put(st, f);
		return NULL;
	}
	return f;
}

/* Sequential readahead (--readahead). A stream of demand misses, each on
 * the block after the layer's last demand fill, is read ahead of its
 * readers: up to ra_dist blocks past the block a reader has just asked
 * for, in fills of CACHED_FILL_MAX blocks (from L2 where it holds them).
 * The distance starts at one fill and doubles each time the readers are
 * seen in the stream, up to st->readahead. Hits in shared arenas never
 * reach the daemon: readers are seen when they ask for a block of the
 * stream it is still filling or has not got. Like a trace replay, it takes
 * only free room (it never evicts) and at most CACHED_PREFETCH_FILLS
 * fills, so demand misses always find one. It stops at a hole. */
static void
fill_ahead(struct cached_store *st, struct cached_layer *l, uint16_t uid, uint64_t b)
{
	uint64_t to;

	if (!st->readahead || b < l->ra_start || b >= l->ra_end) /* ra_end 0: no stream */
		return;
	l->ra_dist = l->ra_dist * 2 < st->readahead ? l->ra_dist * 2 : st->readahead;
	to = b + l->ra_dist < l->nblocks ? b + l->ra_dist : l->nblocks;
	while (l->ra_end < to && st->fill_free != CACHED_NIL &&
	       st->fills_busy < CACHED_PREFETCH_FILLS) {
		uint64_t blk = l->ra_end, end = blk + CACHED_FILL_MAX;
		uint32_t slot = cached_l2_lookup(st->l2, l->l2_ident, blk);
		struct cached_fill *f = &st->fills[st->fill_free];
		uint32_t n;

		if (cached_store_lookup(st, l->id, blk) != CACHED_NIL) {
			l->ra_end++;
			continue;
		}
		if (slot == CACHED_NIL) {
			uint64_t data_end = fill_data_end(l, blk);

			end = end < data_end ? end : data_end;
		}
		end = end < to ? end : to;
		n = fill_take(st, f, st->fill_free, l, blk, end, blk, slot, uid, false);
		if (n == 0)
			return; /* a hole, or no room */
		if (!fill_go(st, f, l, blk, n, slot, uid, FILL_AHEAD))
			return;
		l->ra_end = blk + n;
	}
}

/* A demand fill of [start, end) for a miss on b has begun: begin or go on
 * with the layer's readahead stream (fill_ahead). seq: b is sequential. */
static void
fill_stream(struct cached_store *st, struct cached_layer *l, uint16_t uid, uint64_t b,
	    uint64_t start, uint64_t end, bool seq)
{
	if (!st->readahead)
		return;
	if (!l->ra_end || b < l->ra_start || b > l->ra_end) { /* not the stream's */
		if (!seq)
			return;
		l->ra_start = start;
		l->ra_dist = CACHED_FILL_MAX / 2; /* fill_ahead doubles it */
	}
	if (end > l->ra_end)
		l->ra_end = end;
	fill_ahead(st, l, uid, b);
}

/* Allocate blocks for a fill that covers block b and queue its read: from
 * L2 when it holds b, else from the layer file. */
static struct cached_fill *
fill_start(struct cached_store *st, struct cached_req *r, uint64_t b)
{
	struct cached_layer *l = r->layer;
	uint32_t slot = cached_l2_lookup(st->l2, l->l2_ident, b);
	uint64_t start = b, end, align = b & ~(uint64_t)(CACHED_FILL_MIN - 1);
	/* Sequential: after the last demand fill, or where readahead stopped. */
	bool seq = b == l->seq_next || (l->ra_end && b == l->ra_end);
	struct cached_fill *f;
	uint32_t fi = st->fill_free, n, window;

	if (fi == CACHED_NIL)
		return NULL;
	f = &st->fills[fi];
	if (r->prefetch) /* a trace replay: the rest of its request in one read, no more */
		window = r->nblocks - r->cursor;
	else if (seq)
		window = l->ra = l->ra * 2 > CACHED_FILL_MAX ? CACHED_FILL_MAX : l->ra * 2;
	else
		window = l->ra = CACHED_FILL_MIN;
	while (!r->prefetch && slot == CACHED_NIL && start > align &&
	       cached_store_lookup(st, l->id, start - 1) == CACHED_NIL &&
	       cached_l2_lookup(st->l2, l->l2_ident, start - 1) == CACHED_NIL)
		start--;
	end = start + window < l->nblocks ? start + window : l->nblocks;
	if (slot == CACHED_NIL && end > b + 1) {
		uint64_t data_end = fill_data_end(l, b);

		if (data_end > b) /* b in a hole (the vdisk thinks not): read the window */
			end = end < data_end ? end : data_end;
	}
	/* A trace replay never evicts. */
	n = fill_take(st, f, fi, l, start, end, b, slot, r->uid, !r->prefetch);
	if (start + n <= b) {
		while (n > 0)
			cached_store_release(st, f->entries[--n]);
		return NULL;
	}
	f = fill_go(st, f, l, start, n, slot, r->uid, r->prefetch ? FILL_TRACE : FILL_DEMAND);
	if (f && !r->prefetch)
		fill_stream(st, l, r->uid, b, start, start + n, seq);
	return f;
}

void
cached_fill_complete(struct cached_fill *f, int res)
{
	struct cached_store *st = f->store;
	uint64_t want = fill_want(f);
	uint8_t *blocks[CACHED_FILL_MAX];
	struct cached_req *w;
	bool failed;

	if (res > 0)
		f->done_bytes += (uint32_t)res;
	if ((res > 0 && f->done_bytes < want) || res == -EAGAIN || res == -EINTR) {
		res = fill_submit(st, f);
		if (res == 0)
			return;
	}
	if (res == 0 && f->done_bytes < want)
		res = -EIO; /* a frozen layer file shrank */
	if (res < 0)
		ic_log(IC_LOG_WARN, "fill of %u blocks at block %llu: %s", f->nblocks,
		       (unsigned long long)f->block, strerror(-res));
	f->layer->stats[f->l2_slot == CACHED_NIL ? IC_CACHED_STAT_BACKING_BYTES
						 : IC_CACHED_STAT_L2_BYTES_READ] += f->done_bytes;
	for (uint32_t k = 0; k < f->nblocks; k++) {
		uint8_t *d = cached_store_data(st, f->entries[k]);
		uint64_t have = ((uint64_t)k << IC_CACHED_BLOCK_SHIFT);
		bool ok = res >= 0;

		if (ok)
			ic_mem_defined(d, IC_CACHED_BLOCK);
		if (f->l2_slot != CACHED_NIL)
			ok = cached_l2_check(st->l2, f->l2_slot + k, f->layer, f->block + k,
					     ok ? d : NULL);
		blocks[k] = NULL;
		if (!ok) {
			cached_store_release(st, f->entries[k]);
			continue;
		}
		/* The layer's last block may be partial: it reads as zeroes past the end. */
		if (have + IC_CACHED_BLOCK > want)
			memset(d + (want - have), 0, IC_CACHED_BLOCK - (want - have));
		blocks[k] = d;
	}
	if (res >= 0 && f->l2_slot == CACHED_NIL)
		cached_l2_put(st->l2, f->layer, f->block, f->nblocks, blocks, f->uid);
	/* After L2 took its copy: publishing may make a block an alias of an
	 * equal one (dedup.c), whose page goes back, a run at a time. */
	for (uint32_t k = 0, run = 0; k <= f->nblocks; k++) {
		if (k < f->nblocks && blocks[k] && cached_store_publish(st, f->entries[k])) {
			run++;
			continue;
		}
		if (run > 0)
			cached_arena_punch(&f->layer->arena, f->block + k - run, run);
		run = 0;
	}
	/* A failed L2 read is only a miss: the layer file may serve. */
	failed = res < 0 && f->l2_slot == CACHED_NIL;
	w = f->waiters;
	fill_put(st, f);
	while (w) {
		struct cached_req *r = w;

		w = w->wait_next;
		r->failed |= failed;
		cached_req_run(st, r);
	}
}

void
cached_req_run(struct cached_store *st, struct cached_req *r)
{
	struct cached_layer *l = r->layer;
	uint64_t *stats = l->stats;

	while (r->cursor < r->nblocks) {
		uint64_t b = r->block + r->cursor;
		uint32_t i = cached_store_lookup(st, l->id, b);
		bool count = r->reader && !r->resumed;
		struct cached_fill *f = NULL;

		r->resumed = false;
		stats[IC_CACHED_STAT_LOOKUPS] += count;
		if (count && l->trace)
			cached_trace_touch(l, b);
		if (i != CACHED_NIL && st->e[i].state == CACHED_VALID) {
			cached_store_touch(st, i);
			stats[IC_CACHED_STAT_HITS] += count;
			if (r->dst)
				memcpy(r->dst + ((size_t)r->cursor << IC_CACHED_BLOCK_SHIFT),
				       cached_store_data(st, i), IC_CACHED_BLOCK);
			if (r->reader)
				stats[IC_CACHED_STAT_BYTES_SERVED] += IC_CACHED_BLOCK;
			if (r->dst || !r->reader || st->e[i].canon == CACHED_NIL)
				r->hits |= 1ull << r->cursor;
			r->cursor++;
			continue;
		}
		stats[IC_CACHED_STAT_MISSES] += count;
		if (i == CACHED_NIL && !r->failed)
			f = fill_start(st, r, b);
		else if (i != CACHED_NIL && r->wait)
			stats[IC_CACHED_STAT_JOINS]++;
		if (i != CACHED_NIL && !r->prefetch) /* a reader caught up with the stream */
			fill_ahead(st, l, r->uid, b);
		if (i != CACHED_NIL && !f)
			f = &st->fills[st->e[i].fill];
		if (f && r->wait) {
			r->resumed = true;
			r->wait_next = f->waiters;
			f->waiters = r;
			return;
		}
		r->cursor++;
	}
	(r->finish ? r->finish : st->finish)(st, r);
}
