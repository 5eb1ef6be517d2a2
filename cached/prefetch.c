/* Trace replay: at the first registration of a layer that has a boot
 * trace (trace.c), its blocks are prefetched in the trace's order, ahead
 * of the readers, through the fill path the readers use.
 *
 * A replay is cut into requests of up to IC_CACHED_MAX_BLOCKS blocks of
 * one run, each a read-through request without a destination: it walks
 * its blocks like a READ, skips what is cached, starts a fill on a miss
 * and waits for it, joins a fill already in flight. So singleflight holds
 * both ways: a demand miss on a block being prefetched joins the
 * prefetch's fill, and a prefetch never reads a block a reader is
 * filling. Up to CACHED_PREFETCH_LANES requests are in flight (each
 * waits on one fill at a time: the replay's queue depth), and none is
 * started while CACHED_PREFETCH_FILLS (half the fill pool) or more fills
 * are busy, so demand misses always find a fill. Every completed fill
 * starts more (loop.c).
 *
 * Readers that interleave (a request's blocks come in several fills,
 * several requests at once) leave a trace of short runs, as many small
 * reads: a sequential 64 MiB read at depth 4 was recorded as 1224 runs of
 * 53 KiB on average, and its replay, a read of 53 KiB each, was slower on
 * throttled storage than the readers alone. So each window of
 * CACHED_PREFETCH_WINDOW runs (what the lanes have in flight together) is
 * put in block order and its adjacent runs joined before the replay; the
 * order between windows stays the trace's.
 *
 * Readers that read scattered small pieces, as a boot does (its files lie
 * all over the image), leave runs of a few blocks in no order, which no
 * window joins: 16 KiB reads of a 64 MiB region in one random order were
 * 4096 runs of 4 blocks, and their replay, 4096 reads of 16 KiB, took the
 * device's IOPS where the readers' own misses, which the fill path reads
 * ahead of, took its bandwidth: with the trace, a storm of 8 such clones
 * on throttled storage was slower than without (bench/boot-storm
 * PATTERN=boot). So before the windows, a run inside one chunk of
 * PREFETCH_CHUNK blocks (the largest fill) of which the trace holds at
 * least a quarter is replaced by the whole chunk, where the trace first
 * reaches it, and the chunk's later runs go: one read of 256 KiB for a
 * region the trace reads most of anyway.
 *
 * A replay stops when its trace is done, or before its fills would evict
 * anything (the store has no free blocks for another fill, or its uid's
 * quota is reached): what readers touched is hotter than the rest of a
 * trace. Requests already in flight then fill only free blocks (fill.c
 * asks cached_prefetch_room before each block).
 */
#include "cached/internal.h"

#include <stdlib.h>

#include "common/log.h"

#define PREFETCH_CHUNK CACHED_FILL_MAX	    /* blocks: 256 KiB */
#define PREFETCH_DENSE (PREFETCH_CHUNK / 4) /* traced blocks that make a chunk whole */

struct cached_prefetch {
	struct cached_layer *layer;
	struct ic_cached_trace t;
	uint32_t run;	/* the next block: run's start + off */
	uint64_t off;
	uint16_t uid;	/* charged for the fills */
	unsigned lanes; /* requests in flight */
	bool done;	/* nothing more to start */
	struct cached_prefetch *next;
};

/* The lane pool, the first time: a lane in use belongs to a replay, so
 * no free lane and no replay means none was ever made. */
static void
prefetch_lanes_init(struct cached_traces *tr)
{
	if (tr->free_lanes || tr->replays)
		return;
	for (int i = CACHED_PREFETCH_LANES - 1; i >= 0; i--) {
		tr->lanes[i].next_free = tr->free_lanes;
		tr->free_lanes = &tr->lanes[i];
	}
}

static int
prefetch_run_cmp(const void *a, const void *b)
{
	const struct ic_cached_trace_run *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* A chunk the trace reaches, and how many of its blocks it holds. */
struct prefetch_chunk {
	uint64_t chunk;
	uint64_t blocks;
	bool emitted; /* its whole-chunk run is in the replay already */
};

static int
prefetch_chunk_cmp(const void *a, const void *b)
{
	const struct prefetch_chunk *x = a, *y = b;

	return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

/* The chunk of a run inside one chunk, or UINT64_MAX. */
static uint64_t
prefetch_chunk_of(const struct ic_cached_trace_run *r)
{
	uint64_t first = r->start / PREFETCH_CHUNK;

	return (r->start + r->len - 1) / PREFETCH_CHUNK == first ? first : UINT64_MAX;
}

void
cached_prefetch_widen(struct ic_cached_trace *t)
{
	uint64_t layer_blocks = (t->size + IC_CACHED_BLOCK - 1) / IC_CACHED_BLOCK;
	struct prefetch_chunk *c = t->nruns ? calloc(t->nruns, sizeof(*c)) : NULL;
	uint32_t nc = 0, joined = 0, out = 0;

	if (!c)
		return; /* replayed as recorded */
	for (uint32_t i = 0; i < t->nruns; i++) {
		uint64_t chunk = prefetch_chunk_of(&t->runs[i]);

		if (chunk != UINT64_MAX)
			c[nc++] = (struct prefetch_chunk){ chunk, t->runs[i].len, false };
	}
	qsort(c, nc, sizeof(*c), prefetch_chunk_cmp);
	for (uint32_t i = 0; i < nc; i++) { /* one entry per chunk */
		if (joined && c[joined - 1].chunk == c[i].chunk)
			c[joined - 1].blocks += c[i].blocks;
		else
			c[joined++] = c[i];
	}
	t->blocks = 0;
	for (uint32_t i = 0; i < t->nruns; i++) {
		struct ic_cached_trace_run r = t->runs[i];
		struct prefetch_chunk key = { .chunk = prefetch_chunk_of(&r) }, *hit;

		hit = key.chunk == UINT64_MAX ? NULL
					      : bsearch(&key, c, joined, sizeof(*c), prefetch_chunk_cmp);
		if (hit && hit->blocks >= PREFETCH_DENSE && hit->chunk * PREFETCH_CHUNK < layer_blocks) {
			if (hit->emitted)
				continue;
			hit->emitted = true;
			r.start = hit->chunk * PREFETCH_CHUNK;
			r.len = layer_blocks - r.start < PREFETCH_CHUNK ? layer_blocks - r.start
									: PREFETCH_CHUNK;
		}
		t->runs[out++] = r;
		t->blocks += r.len;
	}
	t->nruns = out;
	free(c);
}

void
cached_prefetch_coalesce(struct ic_cached_trace *t)
{
	uint32_t out = 0;

	for (uint32_t w = 0; w < t->nruns; w += CACHED_PREFETCH_WINDOW) {
		uint32_t n = t->nruns - w < CACHED_PREFETCH_WINDOW ? t->nruns - w
								   : CACHED_PREFETCH_WINDOW;

		qsort(t->runs + w, n, sizeof(*t->runs), prefetch_run_cmp);
		for (uint32_t i = w; i < w + n; i++) {
			struct ic_cached_trace_run *prev = out ? &t->runs[out - 1] : NULL;

			if (prev && prev->start + prev->len == t->runs[i].start)
				prev->len += t->runs[i].len;
			else
				t->runs[out++] = t->runs[i];
		}
	}
	t->nruns = out;
}

void
cached_prefetch_start(struct cached_daemon *d, struct cached_layer *l, struct ic_cached_trace *t,
		      uint16_t uid)
{
	struct cached_prefetch *p = calloc(1, sizeof(*p));

	if (!p) {
		ic_log(IC_LOG_WARN, "layer %u: no memory to replay its boot trace", l->id);
		ic_cached_trace_free(t);
		return;
	}
	prefetch_lanes_init(&d->traces);
	p->layer = l;
	p->t = *t;
	*t = (struct ic_cached_trace){ 0 };
	cached_prefetch_widen(&p->t);
	cached_prefetch_coalesce(&p->t);
	p->uid = uid;
	p->next = d->traces.replays;
	d->traces.replays = p;
	cached_prefetch_kick(d);
}

static void
prefetch_lane_done(struct cached_store *st, struct cached_req *r)
{
	struct cached_daemon *d = st->ctx;
	struct cached_prefetch_lane *lane = cached_container_of(r, struct cached_prefetch_lane, r);

	lane->p->lanes--;
	lane->next_free = d->traces.free_lanes;
	d->traces.free_lanes = lane;
	cached_prefetch_kick(d);
}

bool
cached_prefetch_room(const struct cached_store *st, uint16_t uid, uint32_t blocks)
{
	const struct cached_uid *u = &st->uids[uid];

	return st->cap - st->used >= blocks && (!u->capped || u->used + blocks <= u->quota);
}

/* Would another request of p evict a block? Then stop: it is hotter. */
static bool
prefetch_would_evict(const struct cached_store *st, const struct cached_prefetch *p)
{
	return !cached_prefetch_room(st, p->uid, CACHED_FILL_MAX);
}

/* The replay to start a request of, dropping those finished; or NULL. */
static struct cached_prefetch *
prefetch_next(struct cached_daemon *d)
{
	struct cached_prefetch **pp = &d->traces.replays;

	while (*pp) {
		struct cached_prefetch *p = *pp;

		if (!p->done && prefetch_would_evict(&d->store, p)) {
			ic_log(IC_LOG_INFO, "layer %u: boot trace replay stopped at run %u of %u: "
			       "the cache is full", p->layer->id, p->run, p->t.nruns);
			p->done = true;
		}
		if (!p->done)
			return p;
		if (p->lanes == 0) {
			*pp = p->next;
			ic_cached_trace_free(&p->t);
			free(p);
			continue;
		}
		pp = &p->next;
	}
	return NULL;
}

void
cached_prefetch_kick(struct cached_daemon *d)
{
	struct cached_traces *tr = &d->traces;
	struct cached_prefetch *p;

	if (tr->kicking || d->stopping)
		return;
	tr->kicking = true;
	while (tr->free_lanes && d->store.fills_busy < CACHED_PREFETCH_FILLS &&
	       (p = prefetch_next(d))) {
		struct cached_prefetch_lane *lane = tr->free_lanes;
		const struct ic_cached_trace_run *run = &p->t.runs[p->run];
		uint64_t n = run->len - p->off;

		if (n > IC_CACHED_MAX_BLOCKS)
			n = IC_CACHED_MAX_BLOCKS;
		tr->free_lanes = lane->next_free;
		lane->p = p;
		lane->r = (struct cached_req){
			.layer = p->layer,
			.block = run->start + p->off,
			.nblocks = (uint32_t)n,
			.uid = p->uid,
			.wait = true,
			.prefetch = true,
			.finish = prefetch_lane_done,
		};
		p->off += n;
		if (p->off == run->len) {
			p->off = 0;
			p->done = ++p->run == p->t.nruns;
		}
		p->lanes++;
		cached_req_run(&d->store, &lane->r);
	}
	tr->kicking = false;
}

void
cached_prefetch_fini(struct cached_daemon *d)
{
	while (d->traces.replays) {
		struct cached_prefetch *p = d->traces.replays;

		d->traces.replays = p->next;
		ic_cached_trace_free(&p->t);
		free(p);
	}
}
