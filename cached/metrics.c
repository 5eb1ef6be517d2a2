/* isocached's --metrics: the daemon's totals (hits, misses, fills, joins,
 * bytes served and saved, evictions, L2, read latency), asked of the daemon
 * itself over its own socket at each scrape, with STATS on the handle of
 * the totals. So the loop's counters stay its own (no lock, no atomics on
 * the hit path), and a scrape costs the loop one small request.
 *
 * Totals only: per-layer and per-uid counters would tell whoever reaches
 * the listener which images every user of the host is reading and how
 * much; docs/SECURITY.md says why they are left out. */
#include "cached/metrics.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common/log.h"
#include "common/metrics.h"
#include "isocache/cached.h"

/* How long a scrape waits for the daemon to answer. */
#define CACHED_METRICS_WAIT_MS 2000

struct cached_metrics_ctx {
	char socket[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static const struct {
	const char *name, *type, *help;
	enum ic_cached_stat stat;
} cached_metrics_table[] = {
	{ "isocached_lookups_total", "counter", "Blocks asked for by reads.",
	  IC_CACHED_STAT_LOOKUPS },
	{ "isocached_hits_total", "counter", "Blocks found cached.", IC_CACHED_STAT_HITS },
	{ "isocached_misses_total", "counter", "Blocks not cached (or still filling).",
	  IC_CACHED_STAT_MISSES },
	{ "isocached_fills_total", "counter", "Backing reads issued.", IC_CACHED_STAT_FILLS },
	{ "isocached_joins_total", "counter", "Requests that waited on another's fill.",
	  IC_CACHED_STAT_JOINS },
	{ "isocached_evictions_total", "counter", "Blocks evicted from memory.",
	  IC_CACHED_STAT_EVICTIONS },
	{ "isocached_served_bytes_total", "counter", "Bytes copied into clients' buffers.",
	  IC_CACHED_STAT_BYTES_SERVED },
	{ "isocached_backing_bytes_total", "counter", "Bytes read from layer files.",
	  IC_CACHED_STAT_BACKING_BYTES },
	{ "isocached_blocks", "gauge", "Blocks resident in memory now.", IC_CACHED_STAT_BLOCKS },
	{ "isocached_memory_limit_bytes", "gauge", "The --memory capacity.",
	  IC_CACHED_STAT_MEM_LIMIT },
	{ "isocached_l2_hits_total", "counter", "Blocks read from L2, checksum good.",
	  IC_CACHED_STAT_L2_HITS },
	{ "isocached_l2_misses_total", "counter", "Blocks of backing fills while L2 is on.",
	  IC_CACHED_STAT_L2_MISSES },
	{ "isocached_l2_read_bytes_total", "counter", "Bytes read from the L2 file.",
	  IC_CACHED_STAT_L2_BYTES_READ },
	{ "isocached_l2_written_bytes_total", "counter", "Bytes written to the L2 file.",
	  IC_CACHED_STAT_L2_BYTES_WRITTEN },
	{ "isocached_l2_checksum_failures_total", "counter",
	  "L2 blocks whose checksum did not match.", IC_CACHED_STAT_L2_CSUM_FAILS },
	{ "isocached_l2_evictions_total", "counter", "L2 entries overwritten.",
	  IC_CACHED_STAT_L2_EVICTIONS },
	{ "isocached_l2_blocks", "gauge", "L2 entries now.", IC_CACHED_STAT_L2_BLOCKS },
	{ "isocached_l2_limit_bytes", "gauge", "The --l2-size capacity (0: no L2).",
	  IC_CACHED_STAT_L2_LIMIT },
	{ "isocached_dedup_bytes", "gauge",
	  "Bytes of cached blocks held once for an equal block (memory not needed).",
	  IC_CACHED_STAT_DEDUP_BYTES },
	{ "isocached_trace_fills_total", "counter", "Fills boot trace replays started.",
	  IC_CACHED_STAT_TRACE_FILLS },
	{ "isocached_trace_blocks_total", "counter", "Blocks boot trace replays filled.",
	  IC_CACHED_STAT_TRACE_BLOCKS },
	{ "isocached_readahead_fills_total", "counter", "Fills sequential readahead started.",
	  IC_CACHED_STAT_AHEAD_FILLS },
	{ "isocached_readahead_blocks_total", "counter", "Blocks sequential readahead filled.",
	  IC_CACHED_STAT_AHEAD_BLOCKS },
};

/* READ latency: bucket i of the daemon counts [2^i, 2^(i+1)) us, the last
 * one open; Prometheus wants cumulative counts with upper bounds. */
static void
cached_metrics_latency(FILE *out, const uint64_t *s)
{
	const char *name = "isocached_read_duration_seconds";
	uint64_t cum = 0;
	double sum = 0;

	ic_metrics_family(out, name, "histogram",
			  "READ requests, received to reply queued (the sum is estimated from "
			  "bucket midpoints).");
	for (unsigned i = 0; i < IC_CACHED_LAT_BUCKETS; i++) {
		uint64_t n = s[IC_CACHED_STAT_LAT0 + i];

		cum += n;
		sum += (double)n * 1.5 * (double)(1ull << i) / 1e6;
		if (i + 1 < IC_CACHED_LAT_BUCKETS)
			fprintf(out, "%s_bucket{le=\"%g\"} %llu\n", name,
				(double)(2ull << i) / 1e6, (unsigned long long)cum);
	}
	fprintf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
		(unsigned long long)cum, name, sum, name, (unsigned long long)cum);
}

static void
cached_metrics_write(FILE *out, void *arg)
{
	struct cached_metrics_ctx *ctx = arg;
	struct ic_cached_client *c = NULL;
	uint64_t s[IC_CACHED_STAT_COUNT];
	int rc = ic_cached_connect(ctx->socket, CACHED_METRICS_WAIT_MS, &c);

	if (rc == 0)
		rc = ic_cached_stats(c, IC_CACHED_HANDLE_ALL, s);
	ic_cached_disconnect(c);
	ic_metrics_family(out, "isocached_up", "gauge", "1 when the daemon answered this scrape.");
	fprintf(out, "isocached_up %d\n", rc == 0);
	if (rc < 0) {
		ic_log(IC_LOG_WARN, "metrics: the daemon did not answer STATS: %s", strerror(-rc));
		return;
	}
	for (size_t i = 0; i < sizeof(cached_metrics_table) / sizeof(cached_metrics_table[0]); i++) {
		ic_metrics_family(out, cached_metrics_table[i].name, cached_metrics_table[i].type,
				  cached_metrics_table[i].help);
		fprintf(out, "%s %llu\n", cached_metrics_table[i].name,
			(unsigned long long)s[cached_metrics_table[i].stat]);
	}
	ic_metrics_family(out, "isocached_saved_bytes_total", "counter",
			  "Bytes served beyond those read from layer files: backing I/O saved.");
	fprintf(out, "isocached_saved_bytes_total %llu\n",
		(unsigned long long)(s[IC_CACHED_STAT_BYTES_SERVED] > s[IC_CACHED_STAT_BACKING_BYTES]
					     ? s[IC_CACHED_STAT_BYTES_SERVED] -
						       s[IC_CACHED_STAT_BACKING_BYTES]
					     : 0));
	cached_metrics_latency(out, s);
}

int
cached_metrics_start(const char *where, int listen_fd, struct ic_metrics **out)
{
	static struct cached_metrics_ctx ctx;
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);

	*out = NULL;
	if (!where)
		return 0;
	/* The path we listen on, also when systemd passed the socket. */
	if (getsockname(listen_fd, (struct sockaddr *)&sa, &len) < 0 || sa.sun_family != AF_UNIX ||
	    !sa.sun_path[0]) {
		ic_log(IC_LOG_ERR, "--metrics: cannot tell the path of the daemon's own socket");
		return -ENOTSOCK;
	}
	snprintf(ctx.socket, sizeof(ctx.socket), "%s", sa.sun_path);
	return ic_metrics_start(where, cached_metrics_write, &ctx, out);
}
