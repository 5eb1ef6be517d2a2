/* isocache-fuse's --metrics: per image of the mount, the requests served
 * (counts, bytes, errors, latency histograms) and the ownership this mount
 * took (a first open for write) and gave back (the last writer's close).
 * Runs on the metrics listener's thread; the table's lock keeps the list
 * of images still while it is written, the counters are atomics. */
#include "fuse/internal.h"

#include <stdlib.h>

#include "common/log.h"
#include "common/metrics.h"

/* A counter family with a sample per image listed. */
static void
files_metrics_counter(FILE *out, struct files *f, const char *name, const char *help,
		      size_t field)
{
	ic_metrics_family(out, name, "counter", help);
	for (size_t i = 0; i < f->n; i++) {
		const struct files_entry *e = f->ent[i];

		if (!e->present)
			continue;
		fprintf(out, "%s{image=\"", name);
		ic_metrics_label(out, e->name);
		fprintf(out, "\"} %llu\n",
			(unsigned long long)atomic_load_explicit(
				(const _Atomic uint64_t *)((const char *)e + field),
				memory_order_relaxed));
	}
}

static void
files_metrics_write(FILE *out, void *arg)
{
	struct files *f = arg;
	struct ic_iostats_item *items;
	size_t n = 0;

	pthread_mutex_lock(&f->mu);
	items = calloc(f->n ? f->n : 1, sizeof(*items));
	for (size_t i = 0; items && i < f->n; i++) {
		if (f->ent[i]->present)
			items[n++] = (struct ic_iostats_item){ f->ent[i]->name, &f->ent[i]->io };
	}
	if (items)
		ic_iostats_write(out, "isocache_fuse", "image", items, n);
	else
		ic_log(IC_LOG_WARN, "metrics: out of memory");
	free(items);
	files_metrics_counter(out, f, "isocache_fuse_claims_total",
			      "Times this mount took ownership of the vdisk (first open for write).",
			      offsetof(struct files_entry, claims));
	files_metrics_counter(out, f, "isocache_fuse_releases_total",
			      "Times this mount gave ownership back (last writer closed).",
			      offsetof(struct files_entry, releases));
	files_metrics_counter(out, f, "isocache_fuse_reads_spliced_total",
			      "Reads whose bytes went from isocached's memory to the kernel by "
			      "splice, not copied.",
			      offsetof(struct files_entry, spliced));
	pthread_mutex_unlock(&f->mu);
}

int
files_metrics_start(struct files *f, const char *where)
{
	return where ? ic_metrics_start(where, files_metrics_write, f, &f->metrics) : 0;
}
