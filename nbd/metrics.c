/* isocache-nbd's --metrics: per export, the requests served (counts, bytes,
 * errors, latency histograms), the clients connected now and the ownership
 * handoffs, and the replies with the sends that carried them. Runs on the
 * metrics listener's thread: the request and reply counters are
 * atomics, the rest is read under the export's lock. */
#include "nbd/server.h"

#include "common/metrics.h"

/* One gauge or counter family with a sample per export. */
static void
nbd_metrics_per_export(FILE *out, struct srv_exports *ex, const char *name, const char *type,
		       const char *help, uint64_t (*value)(struct srv_export *e))
{
	ic_metrics_family(out, name, type, help);
	for (size_t i = 0; i < ex->count; i++) {
		fprintf(out, "%s{export=\"", name);
		ic_metrics_label(out, ex->pub[i].name);
		fprintf(out, "\"} %llu\n", (unsigned long long)value(&ex->items[i]));
	}
}

static uint64_t
nbd_metrics_clients(struct srv_export *e)
{
	uint64_t n;

	pthread_mutex_lock(&e->mu);
	n = e->clients;
	pthread_mutex_unlock(&e->mu);
	return n;
}

static uint64_t
nbd_metrics_owned(struct srv_export *e)
{
	bool owned;

	pthread_mutex_lock(&e->mu);
	owned = e->vd && !ic_vdisk_fenced(e->vd);
	pthread_mutex_unlock(&e->mu);
	return owned;
}

static uint64_t
nbd_metrics_handoffs(struct srv_export *e)
{
	return atomic_load_explicit(&e->handoffs, memory_order_relaxed);
}

static uint64_t
nbd_metrics_replies(struct srv_export *e)
{
	return atomic_load_explicit(&e->replies.replies, memory_order_relaxed);
}

static uint64_t
nbd_metrics_reply_batches(struct srv_export *e)
{
	return atomic_load_explicit(&e->replies.batches, memory_order_relaxed);
}

static uint64_t
nbd_metrics_inline_reads(struct srv_export *e)
{
	return atomic_load_explicit(&e->replies.inline_reads, memory_order_relaxed);
}

static uint64_t
nbd_metrics_spliced_reads(struct srv_export *e)
{
	return atomic_load_explicit(&e->replies.spliced_reads, memory_order_relaxed);
}

static void
nbd_metrics_write(FILE *out, void *arg)
{
	struct srv_exports *ex = arg;
	struct ic_iostats_item items[ex->count ? ex->count : 1];

	for (size_t i = 0; i < ex->count; i++)
		items[i] = (struct ic_iostats_item){ ex->pub[i].name, &ex->items[i].io };
	ic_iostats_write(out, "isocache_nbd", "export", items, ex->count);
	nbd_metrics_per_export(out, ex, "isocache_nbd_clients", "gauge",
			       "Clients in transmission on the export now.", nbd_metrics_clients);
	nbd_metrics_per_export(out, ex, "isocache_nbd_export_open", "gauge",
			       "1 while this server holds the export's vdisk open and owns it.",
			       nbd_metrics_owned);
	nbd_metrics_per_export(out, ex, "isocache_nbd_handoffs_total", "counter",
			       "Times the export's vdisk was released to another process and "
			       "claimed back for a new client.",
			       nbd_metrics_handoffs);
	nbd_metrics_per_export(out, ex, "isocache_nbd_replies_total", "counter",
			       "Replies sent to the export's clients.", nbd_metrics_replies);
	nbd_metrics_per_export(out, ex, "isocache_nbd_reply_batches_total", "counter",
			       "Sends that carried those replies: replies ready together "
			       "leave in one.",
			       nbd_metrics_reply_batches);
	nbd_metrics_per_export(out, ex, "isocache_nbd_reads_inline_total", "counter",
			       "Reads served by the thread that read them from the stream: "
			       "they needed no waiting (cache hits).",
			       nbd_metrics_inline_reads);
	nbd_metrics_per_export(out, ex, "isocache_nbd_reads_spliced_total", "counter",
			       "Reads whose bytes went from the cache daemon's memory to the "
			       "socket by splice, not copied.",
			       nbd_metrics_spliced_reads);
}

int
srv_metrics_start(const char *where, struct srv_exports *ex)
{
	return where ? ic_metrics_start(where, nbd_metrics_write, ex, &ex->metrics) : 0;
}
