/* Per-operation request counters of a front end's export or image: counts,
 * bytes, errors and a latency histogram, updated lock-free on the data path
 * (relaxed atomics, no allocation) and written out as Prometheus families by
 * the metrics thread. */
#ifndef IC_COMMON_IOSTATS_H
#define IC_COMMON_IOSTATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum ic_io_op { IC_IO_READ, IC_IO_WRITE, IC_IO_TRIM, IC_IO_ZERO, IC_IO_CACHE, IC_IO_FLUSH,
		IC_IO_OPS };

/* Upper bounds of the latency buckets in microseconds (Prometheus "le", in
 * seconds on output); one more bucket above the last is +Inf. */
#define IC_IO_LAT_BOUNDS 14

struct ic_iostats_op {
	_Atomic uint64_t requests, bytes, errors, lat_sum_ns;
	_Atomic uint64_t lat[IC_IO_LAT_BOUNDS + 1]; /* per bucket, not cumulative */
};

struct ic_iostats {
	struct ic_iostats_op op[IC_IO_OPS];
};

/* A monotonic timestamp for ic_iostats_done. */
uint64_t ic_iostats_now(void);
/* Count one request of op: len bytes, result rc (< 0 counts an error),
 * started at t0. Returns rc, so a call can be wrapped. */
int ic_iostats_done(struct ic_iostats *s, enum ic_io_op op, uint64_t len, uint64_t t0, int rc);

/* One labelled set of counters, for ic_iostats_write. */
struct ic_iostats_item {
	const char *label; /* the value of the label */
	const struct ic_iostats *stats;
};

/* Write <prefix>_requests_total, _bytes_total, _errors_total and the
 * _request_duration_seconds histogram, each sample labelled
 * {<label>="<item label>",op="read"}. */
void ic_iostats_write(FILE *out, const char *prefix, const char *label,
		      const struct ic_iostats_item *items, size_t n);

#endif
