/* Boot traces of isocached (docs/CACHED.md, "Boot traces"): which blocks of
 * a frozen layer its readers asked for in the first seconds after the
 * daemon first saw it, in first-touch order, so that the next cold start
 * of any clone can prefetch them ahead of the readers.
 *
 * A trace is one file, <dir>/<layer uuid>.trace, written whole by the
 * daemon (a temporary file renamed over it). Little-endian:
 *
 *   0  magic u32 "ICTR" | 4 version u32 (1) | 8 layer uuid [16]
 *   24 layer size u64 | 32 layer mtime u64 (ns) | 40 recorded u64 (Unix s)
 *   48 blocks u64 (sum of the run lengths) | 56 runs u32 | 60 zero u32
 *   64 XXH3-64 of the runs, seeded with the XXH3-64 of bytes 0..63
 *   72 runs: each a varint of zigzag(start - end of the run before), then a
 *      varint of its length (>= 1); every run inside the layer (the
 *      recorder writes each block once; a repeat would only be a no-op)
 *
 * The uuid, size and mtime name the layer's content: a trace whose layer
 * has another size or mtime (or a file named for another uuid) is stale
 * and ignored. A copy that keeps mtimes (cp -a) keeps its traces valid.
 * A file is at most IC_CACHED_TRACE_MAX bytes; a longer one is refused
 * unread.
 *
 * Every call returns 0 (or a length) or a negative errno.
 */
#ifndef ISOCACHE_CACHED_TRACE_H
#define ISOCACHE_CACHED_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define IC_CACHED_TRACE_MAGIC 0x52544349u /* "ICTR" in memory order */
#define IC_CACHED_TRACE_VERSION 1
#define IC_CACHED_TRACE_HDR 72
/* The bound on a trace file, header included. */
#define IC_CACHED_TRACE_MAX (1u << 20)
#define IC_CACHED_TRACE_DEFAULT_DIR "/var/lib/isocache/traces"

struct ic_cached_trace_run {
	uint64_t start; /* block */
	uint64_t len;	/* blocks, >= 1 */
};

struct ic_cached_trace {
	uint8_t uuid[16];
	uint64_t size;	   /* of the layer file, bytes */
	uint64_t mtime_ns; /* of the layer file */
	uint64_t recorded; /* Unix seconds */
	uint64_t blocks;   /* sum of the run lengths */
	uint32_t nruns;
	struct ic_cached_trace_run *runs; /* malloc'd; in trace order */
};

/* The directory of traces: dir if not NULL, else $ISOCACHE_TRACE_DIR, else
 * IC_CACHED_TRACE_DEFAULT_DIR. */
const char *ic_cached_trace_dir(const char *dir);

/* dir/<uuid>.trace into buf (cap bytes). -ENAMETOOLONG if it does not fit. */
int ic_cached_trace_path(const char *dir, const uint8_t uuid[16], char *buf, size_t cap);

/* Bytes a run takes after a run that ended at prev_end. */
size_t ic_cached_trace_run_size(uint64_t prev_end, uint64_t start, uint64_t len);

/* Encode t into buf (cap bytes). Returns the length, or -ENOSPC. */
int ic_cached_trace_encode(const struct ic_cached_trace *t, uint8_t *buf, size_t cap);

/* Decode the len bytes of a trace file into t (t->runs allocated; free
 * with ic_cached_trace_free). -EFBIG: longer than IC_CACHED_TRACE_MAX;
 * -EUCLEAN: damaged (magic, checksum, a run out of the layer, counts that
 * disagree, bytes left over); -EPROTONOSUPPORT:
 * another version; -ENOMEM. t is left empty on error. */
int ic_cached_trace_decode(const uint8_t *buf, size_t len, struct ic_cached_trace *t);

/* Read and decode dir/<uuid>.trace: -ENOENT when there is none, -EFBIG
 * for a file past the bound (not read), -EUCLEAN also when it is not a
 * regular file or names another layer, the errors of decode, or -errno. */
int ic_cached_trace_load(const char *dir, const uint8_t uuid[16], struct ic_cached_trace *t);

/* Whether t was recorded for the layer file with this uuid and stat. */
int ic_cached_trace_matches(const struct ic_cached_trace *t, const uint8_t uuid[16],
			    const struct stat *sb);

/* The mtime of sb in nanoseconds: a trace's generation of its layer. */
uint64_t ic_cached_trace_mtime(const struct stat *sb);

/* Why a trace file was refused, in words: "larger than the 1 MiB bound"
 * (-EFBIG), "damaged" (-EUCLEAN), "of an unknown version"
 * (-EPROTONOSUPPORT), else strerror. */
const char *ic_cached_trace_strerror(int rc);

void ic_cached_trace_free(struct ic_cached_trace *t);

#endif
