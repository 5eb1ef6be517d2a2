/* Boot traces: recording which blocks of a frozen layer its readers ask
 * for in the first seconds after the daemon first sees it, and keeping
 * that on disk for the next cold start (docs/CACHED.md, "Boot traces").
 *
 * The first REGISTER of a layer in the daemon's life looks for its trace
 * (<dir>/<uuid>.trace). One that names this file (uuid, size, mtime) is
 * replayed (prefetch.c); none, a stale one or one refused as damaged or
 * huge starts a recording instead, which a successful one never does: a
 * layer is recorded until it has a trace, then replayed.
 *
 * A recording notes every block a READ asks for and every block a client
 * reports serving from the arena (hits and misses alike), the first time
 * only, in that order, as runs of consecutive blocks. Its window
 * (--trace-window) opens with the first block noted, not at REGISTER: a
 * layer registered only to be looked at (cache stats) and booted later is
 * still recorded. It ends when the window passes (checked every second),
 * when it covers
 * --trace-limit of data, or when its encoding would pass
 * IC_CACHED_TRACE_MAX; then, or at shutdown, it is written and forgotten.
 * Noting a block is a bit test in a bitmap of the layer (calloc'd, so
 * only the pages of blocks read are ever touched) and an append; the run
 * array grows by doubling, the one allocation on the data path, bounded
 * by the file bound and made only while a layer is recorded.
 *
 * The file is written whole, to a temporary name renamed over the old one,
 * without fsync: a trace is a hint. A crash that tears it leaves a file
 * the checksum refuses, and the layer is recorded again.
 */
#include "cached/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/replace.h"
#include "common/uuid.h"

struct cached_trace_rec {
	struct ic_cached_trace t; /* the runs so far, room for cap */
	uint32_t cap;
	uint64_t deadline; /* CLOCK_MONOTONIC ns; 0 until the first block */
	uint64_t window;   /* ns */
	uint64_t limit;	   /* blocks */
	size_t bytes;	   /* the encoding's size so far */
	uint64_t prev_end; /* where the run before the last one ended */
	bool full;	   /* a bound was reached: note no more */
	uint8_t *seen;	   /* a bit per block of the layer */
};

static void
trace_record_start(struct cached_daemon *d, struct cached_layer *l, const struct stat *sb)
{
	struct cached_trace_rec *rec = calloc(1, sizeof(*rec));

	if (rec)
		rec->seen = calloc((size_t)((l->nblocks + 7) / 8) + 1, 1);
	if (!rec || !rec->seen) {
		ic_log(IC_LOG_WARN, "layer %u: no memory to record its boot trace", l->id);
		if (rec)
			free(rec);
		return;
	}
	memcpy(rec->t.uuid, l->uuid, 16);
	rec->t.size = l->size;
	rec->t.mtime_ns = ic_cached_trace_mtime(sb);
	rec->window = d->traces.window_ns;
	rec->limit = d->traces.limit;
	rec->bytes = IC_CACHED_TRACE_HDR;
	l->trace = rec;
}

void
cached_trace_layer(struct cached_daemon *d, struct cached_layer *l, const struct stat *sb,
		   uint16_t uid)
{
	struct ic_cached_trace t;
	char name[IC_UUID_STRLEN];
	int rc;

	if (d->traces.off || l->trace_seen)
		return;
	l->trace_seen = true;
	ic_uuid_format(l->uuid, name);
	rc = ic_cached_trace_load(d->traces.dir, l->uuid, &t);
	if (rc == 0 && ic_cached_trace_matches(&t, l->uuid, sb)) {
		ic_log(IC_LOG_INFO, "layer %s: replaying its boot trace (%llu blocks in %u runs)",
		       name, (unsigned long long)t.blocks, t.nruns);
		cached_prefetch_start(d, l, &t, uid);
		return;
	}
	if (rc == 0) {
		ic_log(IC_LOG_INFO,
		       "layer %s: its trace is stale (recorded for a file of another size or "
		       "mtime): ignored, recording anew", name);
		ic_cached_trace_free(&t);
	} else if (rc != -ENOENT) {
		ic_log(IC_LOG_WARN, "layer %s: trace file in %s refused: %s; recording anew", name,
		       d->traces.dir, ic_cached_trace_strerror(rc));
	}
	trace_record_start(d, l, sb);
}

/* Room for one more run, or false (the recording is then full). */
static bool
trace_grow(struct cached_trace_rec *rec)
{
	struct ic_cached_trace_run *runs;
	uint32_t cap = rec->cap ? rec->cap * 2 : 256;

	if (rec->t.nruns < rec->cap)
		return true;
	runs = realloc(rec->t.runs, cap * sizeof(*runs));
	if (!runs)
		return false;
	rec->t.runs = runs;
	rec->cap = cap;
	return true;
}

void
cached_trace_touch(struct cached_layer *l, uint64_t block)
{
	struct cached_trace_rec *rec = l->trace;
	struct ic_cached_trace_run *last;
	uint64_t end;
	size_t need;
	bool extend;

	if (!rec || rec->full || block >= l->nblocks || rec->seen[block / 8] & (1u << block % 8))
		return;
	last = rec->t.nruns ? &rec->t.runs[rec->t.nruns - 1] : NULL;
	extend = last && block == last->start + last->len;
	end = last ? last->start + last->len : 0;
	if (extend)
		need = ic_cached_trace_run_size(rec->prev_end, last->start, last->len + 1) -
		       ic_cached_trace_run_size(rec->prev_end, last->start, last->len);
	else
		need = ic_cached_trace_run_size(end, block, 1);
	/* trace_grow may move the runs: last is not used after it. */
	if (rec->bytes + need > IC_CACHED_TRACE_MAX || rec->t.blocks >= rec->limit ||
	    (!extend && !trace_grow(rec))) {
		rec->full = true;
		return;
	}
	if (extend) {
		last->len++;
	} else {
		rec->prev_end = end;
		rec->t.runs[rec->t.nruns++] = (struct ic_cached_trace_run){ block, 1 };
	}
	if (!rec->deadline)
		rec->deadline = cached_now() + rec->window;
	rec->bytes += need;
	rec->t.blocks++;
	rec->seen[block / 8] |= (uint8_t)(1u << block % 8);
}

/* Write rec's trace to dir/<uuid>.trace whole. 0 or -errno. */
static int
trace_save(const char *dir, struct cached_trace_rec *rec)
{
	IC_AUTOFREE uint8_t *buf = malloc(rec->bytes);
	char path[4096];
	int len, rc;

	if (!buf)
		return -ENOMEM;
	rec->t.recorded = (uint64_t)time(NULL);
	len = ic_cached_trace_encode(&rec->t, buf, rec->bytes);
	if (len < 0)
		return len;
	rc = ic_cached_trace_path(dir, rec->t.uuid, path, sizeof(path));
	return rc < 0 ? rc : ic_file_replace(path, buf, (size_t)len, 0600);
}

/* End l's recording: write it if it holds any block, and forget it. */
static void
trace_record_end(struct cached_daemon *d, struct cached_layer *l)
{
	struct cached_trace_rec *rec = l->trace;
	char name[IC_UUID_STRLEN];
	int rc = 0;

	ic_uuid_format(l->uuid, name);
	if (rec->t.blocks)
		rc = trace_save(d->traces.dir, rec);
	if (rc < 0)
		ic_log(IC_LOG_WARN, "layer %s: cannot write its boot trace in %s: %s", name,
		       d->traces.dir, strerror(-rc));
	else if (rec->t.blocks)
		ic_log(IC_LOG_INFO, "layer %s: boot trace recorded: %llu blocks in %u runs, %zu bytes",
		       name, (unsigned long long)rec->t.blocks, rec->t.nruns, rec->bytes);
	l->trace = NULL;
	ic_cached_trace_free(&rec->t);
	free(rec->seen);
	free(rec);
}

void
cached_trace_tick(struct cached_daemon *d)
{
	uint64_t now = cached_now();

	for (uint32_t i = 0; i < d->store.nlayers; i++) {
		struct cached_layer *l = d->store.layers[i];

		if (l->trace && (l->trace->full || (l->trace->deadline && now >= l->trace->deadline)))
			trace_record_end(d, l);
	}
}

void
cached_trace_fini(struct cached_daemon *d)
{
	for (uint32_t i = 0; i < d->store.nlayers; i++)
		if (d->store.layers[i]->trace)
			trace_record_end(d, d->store.layers[i]);
	cached_prefetch_fini(d);
}
