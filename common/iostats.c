/* Request counters and latency histograms of the front ends. Buckets are
 * kept per bucket and summed into Prometheus's cumulative form only when
 * written, so recording a request is one increment per counter. */
#include "common/iostats.h"

#include <time.h>

#include "common/metrics.h"

static const char *const iostats_op_names[IC_IO_OPS] = { "read", "write", "trim",
							 "zero", "cache", "flush" };

/* 50 us to 10 s: a page-cache hit at the bottom, a stalled disk at the top. */
static const uint64_t iostats_bounds_us[IC_IO_LAT_BOUNDS] = {
	50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000,
	10000000,
};

uint64_t
ic_iostats_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int
ic_iostats_done(struct ic_iostats *s, enum ic_io_op op, uint64_t len, uint64_t t0, int rc)
{
	uint64_t ns = ic_iostats_now() - t0;
	unsigned b = 0;

	while (b < IC_IO_LAT_BOUNDS && ns > iostats_bounds_us[b] * 1000)
		b++;
	atomic_fetch_add_explicit(&s->op[op].requests, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->op[op].lat[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->op[op].lat_sum_ns, ns, memory_order_relaxed);
	if (rc < 0)
		atomic_fetch_add_explicit(&s->op[op].errors, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&s->op[op].bytes, len, memory_order_relaxed);
	return rc;
}

static uint64_t
iostats_load(const _Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

/* `name{label="value",op="read"` (the caller closes the brace). */
static void
iostats_labels(FILE *out, const char *name, const char *label, const char *value, unsigned op)
{
	fprintf(out, "%s{%s=\"", name, label);
	ic_metrics_label(out, value);
	fprintf(out, "\",op=\"%s\"", iostats_op_names[op]);
}

/* One counter family: field of every item and op. */
static void
iostats_counter(FILE *out, const char *prefix, const char *suffix, const char *help,
		const char *label, const struct ic_iostats_item *items, size_t n, size_t field)
{
	char name[128];

	snprintf(name, sizeof(name), "%s_%s", prefix, suffix);
	ic_metrics_family(out, name, "counter", help);
	for (size_t i = 0; i < n; i++) {
		for (unsigned op = 0; op < IC_IO_OPS; op++) {
			const _Atomic uint64_t *v =
				(const _Atomic uint64_t *)((const char *)&items[i].stats->op[op] + field);

			iostats_labels(out, name, label, items[i].label, op);
			fprintf(out, "} %llu\n", (unsigned long long)iostats_load(v));
		}
	}
}

void
ic_iostats_write(FILE *out, const char *prefix, const char *label,
		 const struct ic_iostats_item *items, size_t n)
{
	char name[128], bucket[140], sum[140], count[140];

	iostats_counter(out, prefix, "requests_total", "Requests completed, by operation.", label,
			items, n, offsetof(struct ic_iostats_op, requests));
	iostats_counter(out, prefix, "bytes_total", "Bytes of requests that succeeded.", label,
			items, n, offsetof(struct ic_iostats_op, bytes));
	iostats_counter(out, prefix, "errors_total", "Requests that failed.", label, items, n,
			offsetof(struct ic_iostats_op, errors));
	snprintf(name, sizeof(name), "%s_request_duration_seconds", prefix);
	snprintf(bucket, sizeof(bucket), "%s_bucket", name);
	snprintf(sum, sizeof(sum), "%s_sum", name);
	snprintf(count, sizeof(count), "%s_count", name);
	ic_metrics_family(out, name, "histogram",
			  "Time from a request's start to its result, by operation.");
	for (size_t i = 0; i < n; i++) {
		for (unsigned op = 0; op < IC_IO_OPS; op++) {
			const struct ic_iostats_op *o = &items[i].stats->op[op];
			uint64_t cum = 0;

			for (unsigned b = 0; b <= IC_IO_LAT_BOUNDS; b++) {
				cum += iostats_load(&o->lat[b]);
				iostats_labels(out, bucket, label, items[i].label, op);
				if (b < IC_IO_LAT_BOUNDS)
					fprintf(out, ",le=\"%g\"} %llu\n",
						(double)iostats_bounds_us[b] / 1e6,
						(unsigned long long)cum);
				else
					fprintf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
			}
			iostats_labels(out, sum, label, items[i].label, op);
			fprintf(out, "} %.9f\n", (double)iostats_load(&o->lat_sum_ns) / 1e9);
			iostats_labels(out, count, label, items[i].label, op);
			fprintf(out, "} %llu\n", (unsigned long long)cum);
		}
	}
}
