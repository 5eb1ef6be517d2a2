/* bench/filter_overhead: what a stack of filters costs per I/O.
 *
 * 4 KiB random preads of a real file (page-cache warm, so the stack's cost
 * is not hidden behind a disk) through stacks over the same bottom: empty;
 * 8 filters with no ops (resolved away when the stack is built); 8 filters
 * whose pread forwards to ic_next_pread (8 real hops, each checking the
 * contract and the result); and the same with results checked at the top
 * only (ic_filter_check_results(false)). Runs alternate between the stacks; each prints the
 * median IOPS of its runs (per CPU second of the reading thread, see
 * bench_run) and the ratio to the empty stack.
 *
 *   filter_overhead FILE [SIZE_MIB [SECONDS_PER_RUN [RUNS]]]
 *
 * FILE is made (SIZE_MIB, default 256) when it is missing or smaller.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "isocache/filter.h"

#define BENCH_BLOCK 4096
#define BENCH_FILTERS 8
#define BENCH_MAX_RUNS 256

static int
bench_pread(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n, uint32_t flags)
{
	(void)next;
	(void)inst;
	(void)flags;
	for (unsigned i = 0; i < n; i++)
		if (pread(segs[i].layer->fd, segs[i].buf, segs[i].len, (off_t)segs[i].off) !=
		    (ssize_t)segs[i].len)
			return -EIO;
	return 0;
}

/* The bottom is read-only: the benchmark never writes. */
static int
bench_readonly(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n, uint32_t flags)
{
	(void)next;
	(void)inst;
	(void)segs;
	(void)n;
	(void)flags;
	return -EROFS;
}

static int
bench_cache(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n)
{
	(void)next;
	(void)inst;
	(void)segs;
	(void)n;
	return 0;
}

static int
bench_flush(struct ic_next *next, void *inst, const struct ic_layer *layer)
{
	(void)next;
	(void)inst;
	(void)layer;
	return 0;
}

static uint32_t
bench_caps(struct ic_next *next, void *inst)
{
	(void)next;
	(void)inst;
	return 0;
}

static const struct ic_filter_ops bench_bottom = {
	IC_FILTER_OPS_INIT,     .name = "bench-file",     .caps = bench_caps,
	.pread = bench_pread,   .pwrite = bench_readonly, .trim = bench_readonly,
	.zero = bench_readonly, .cache = bench_cache,     .flush = bench_flush,
};

static const struct ic_filter_ops bench_nop = { IC_FILTER_OPS_INIT, .name = "bench-nop" };

static int
bench_forward_pread(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n,
		    uint32_t flags)
{
	(void)inst;
	return ic_next_pread(next, segs, n, flags);
}

static const struct ic_filter_ops bench_forward = {
	IC_FILTER_OPS_INIT,
	.name = "bench-forward",
	.pread = bench_forward_pread,
};

static double
bench_now(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Make path hold at least size bytes of data (not holes), and warm it. */
static int
bench_prepare(const char *path, uint64_t size, int *out)
{
	IC_AUTOFREE uint8_t *buf = malloc(1 << 20);
	IC_AUTOCLOSE int fd = open(path, O_RDWR | O_CREAT, 0600);
	struct stat st;

	if (fd < 0 || !buf || fstat(fd, &st) < 0)
		return -errno;
	for (uint64_t off = 0; off < size; off += 1 << 20) {
		ssize_t r;

		if ((uint64_t)st.st_size >= size) {
			r = pread(fd, buf, 1 << 20, (off_t)off);
		} else {
			memset(buf, (int)(off >> 20) | 1, 1 << 20);
			r = pwrite(fd, buf, 1 << 20, (off_t)off);
		}
		if (r != 1 << 20)
			return r < 0 ? -errno : -EIO;
	}
	*out = ic_steal_fd(&fd);
	return 0;
}

/* Random 4 KiB reads for `seconds`; returns IOPS, or -1 on a failed read.
 * The rate is per second of this thread's CPU time (user and system): the
 * reads never block on a warm page cache, so on an idle host it equals the
 * wall-clock rate, and on a busy one other processes do not skew it. */
static double
bench_run(struct ic_stack *stack, const struct ic_layer *layer, double seconds, uint64_t *rng)
{
	static uint8_t buf[BENCH_BLOCK];
	const uint64_t blocks = layer->size / BENCH_BLOCK;
	double t0 = bench_now(CLOCK_MONOTONIC), t = t0;
	double cpu0 = bench_now(CLOCK_THREAD_CPUTIME_ID);
	uint64_t ops = 0;

	while (t - t0 < seconds) {
		for (unsigned i = 0; i < 1024; i++) {
			struct ic_seg seg = { layer, 0, BENCH_BLOCK, buf };

			*rng ^= *rng << 13;
			*rng ^= *rng >> 7;
			*rng ^= *rng << 17;
			seg.off = (*rng % blocks) * BENCH_BLOCK;
			if (ic_stack_pread(stack, &seg, 1, 0) != 0)
				return -1;
		}
		ops += 1024;
		t = bench_now(CLOCK_MONOTONIC);
	}
	return (double)ops / (bench_now(CLOCK_THREAD_CPUTIME_ID) - cpu0);
}

static int
bench_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
bench_median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), bench_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A stack over the file with BENCH_FILTERS copies of `filter` (none if NULL). */
static struct ic_stack *
bench_stack(const char *filter)
{
	struct ic_stack *stack;
	char spec[256] = "";

	if (ic_stack_new(&bench_bottom, NULL, &stack) < 0)
		exit(1);
	for (unsigned i = 0; filter && i < BENCH_FILTERS; i++)
		snprintf(spec + strlen(spec), sizeof(spec) - strlen(spec), "%s%s", i ? "," : "",
			 filter);
	if (filter && ic_stack_add(stack, spec, 0) < 0)
		exit(1);
	return stack;
}

int
main(int argc, char **argv)
{
	static const struct {
		const char *label;
		const char *filter;
		bool check_results;
	} cfg[] = {
		{ "empty stack", NULL, true },
		{ "8 filters, no ops (skipped)", "bench-nop", true },
		{ "8 forwarding, results checked per hop", "bench-forward", true },
		{ "8 forwarding, results checked at top", "bench-forward", false },
	};
	enum {
		NCFG = sizeof(cfg) / sizeof(cfg[0])
	};
	uint64_t size = (argc > 2 ? strtoull(argv[2], NULL, 10) : 256) << 20;
	double seconds = argc > 3 ? strtod(argv[3], NULL) : 0.05;
	unsigned runs = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 10) : 61;
	static double iops[NCFG][BENCH_MAX_RUNS];
	double med[NCFG];
	struct ic_stack *stacks[NCFG];
	struct ic_layer layer = { .disk_id = 1, .direct_fd = -1, .size = size };
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	int rc;

	if (argc < 2 || size < BENCH_BLOCK || seconds <= 0 || runs == 0 || runs > BENCH_MAX_RUNS) {
		fprintf(stderr, "usage: %s FILE [SIZE_MIB [SECONDS_PER_RUN [RUNS (1-%d)]]]\n",
			argv[0], BENCH_MAX_RUNS);
		return 2;
	}
	rc = bench_prepare(argv[1], size, &layer.fd);
	if (rc < 0) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(-rc));
		return 1;
	}
	ic_log_level = IC_LOG_WARN;
	if (ic_filter_register(&bench_nop) < 0 || ic_filter_register(&bench_forward) < 0)
		return 1;
	for (unsigned s = 0; s < NCFG; s++)
		stacks[s] = bench_stack(cfg[s].filter);
	printf("4 KiB random preads of a %llu MiB file, %u runs of %.2f s per stack, "
	       "IOPS per CPU second\n",
	       (unsigned long long)(size >> 20), runs, seconds);
	/* Alternate the stacks run by run, so drift (page cache, frequency)
	 * spreads over all of them. */
	for (unsigned r = 0; r < runs; r++) {
		for (unsigned s = 0; s < NCFG; s++) {
			ic_filter_check_results(cfg[s].check_results);
			iops[s][r] = bench_run(stacks[s], &layer, seconds, &rng);
			if (iops[s][r] < 0) {
				fprintf(stderr, "a read failed\n");
				return 1;
			}
		}
	}
	for (unsigned s = 0; s < NCFG; s++) {
		med[s] = bench_median(iops[s], runs);
		printf("%-40s %9.0f IOPS", cfg[s].label, med[s]);
		if (s)
			printf("  ratio %.3f  overhead %+.1f %%", med[s] / med[0],
			       100.0 * (1 - med[s] / med[0]));
		printf("\n");
		ic_stack_free(stacks[s]);
	}
	printf("target, 8 filters cost < 5 %%: %s with results checked per hop, "
	       "%s with results checked at the top\n",
	       1 - med[2] / med[0] < 0.05 ? "met" : "NOT met",
	       1 - med[3] / med[0] < 0.05 ? "met" : "NOT met");
	close(layer.fd);
	return 0;
}
