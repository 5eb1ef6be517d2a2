/* The stats filter: per layer (disk_id) and per op, the number of segments,
 * their bytes, errors, and log2 histograms of latency, request size and
 * offset alignment. Counters are relaxed atomics in per-layer slots made at
 * create time, so the data path takes no lock and allocates nothing; a
 * report reads them while I/O runs.
 *
 * Parameters: layers=N, how many layers get their own slot (default 64);
 * layers beyond that are counted together under disk_id -1.
 */
#include "filter/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

#define STATS_LAT_BUCKETS 40   /* 2^k ns: up to about 18 minutes */
#define STATS_SIZE_BUCKETS 33  /* 2^k bytes, for any uint32_t length */
#define STATS_ALIGN_BUCKETS 22 /* offset divisible by 2^k; 21 = 2 MiB or more */

struct stats_op {
	_Atomic uint64_t count;
	_Atomic uint64_t bytes;
	_Atomic uint64_t errors;
	_Atomic uint64_t latency[STATS_LAT_BUCKETS];
	_Atomic uint64_t size[STATS_SIZE_BUCKETS];
	_Atomic uint64_t align[STATS_ALIGN_BUCKETS];
};

struct stats_layer {
	struct stats_op op[IC_OP_COUNT]; /* IC_OP_CAPS unused */
};

struct stats_inst {
	struct ic_layer_table table;
	struct stats_layer *layers;   /* table.cap slots */
	struct stats_layer *overflow; /* layers that found no slot */
};

static unsigned
stats_log2(uint64_t v, unsigned buckets)
{
	unsigned k = v ? 63u - (unsigned)__builtin_clzll(v) : 0;

	return k < buckets ? k : buckets - 1;
}

static struct stats_layer *
stats_layer(struct stats_inst *s, const struct ic_layer *layer)
{
	int slot = ic_layer_table_slot(&s->table, layer->disk_id);

	return slot < 0 ? s->overflow : &s->layers[slot];
}

static void
stats_add(_Atomic uint64_t *counter, uint64_t v)
{
	atomic_fetch_add_explicit(counter, v, memory_order_relaxed);
}

static void
stats_record(struct stats_op *o, uint64_t ns, int rc, uint64_t off, uint32_t len, bool data)
{
	stats_add(&o->count, 1);
	stats_add(&o->latency[stats_log2(ns, STATS_LAT_BUCKETS)], 1);
	if (rc < 0)
		stats_add(&o->errors, 1);
	if (!data)
		return;
	stats_add(&o->bytes, len);
	stats_add(&o->size[stats_log2(len, STATS_SIZE_BUCKETS)], 1);
	stats_add(
	    &o->align[off ? stats_log2(off & -off, STATS_ALIGN_BUCKETS) : STATS_ALIGN_BUCKETS - 1],
	    1);
}

static uint64_t
stats_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Each segment counts once, with the latency of the call that carried it. */
static int
stats_op(struct ic_next *next, void *inst, enum ic_filter_op op, struct ic_seg *segs, unsigned n,
	 uint32_t flags, const struct ic_layer *layer)
{
	struct stats_inst *s = inst;
	uint64_t t0 = stats_now(), ns;
	int rc = ic_filter_next_op(next, op, segs, n, flags, layer);

	ns = stats_now() - t0;
	if (rc == -EAGAIN && (flags & (IC_REQ_NOWAIT | IC_REQ_PIPE)))
		return rc; /* not served: it is read again, and counted then */
	if (op == IC_OP_FLUSH) {
		stats_record(&stats_layer(s, layer)->op[op], ns, rc, 0, 0, false);
		return rc;
	}
	for (unsigned i = 0; i < n; i++)
		stats_record(&stats_layer(s, segs[i].layer)->op[op], ns, rc, segs[i].off,
			     segs[i].len, true);
	return rc;
}

IC_FILTER_DATA_OPS(stats)

static int
stats_param(void *ctx, const char *key, const char *value)
{
	uint64_t *layers = ctx;

	if (strcmp(key, "layers") == 0 && ic_filter_parse_u64(value, layers) == 0 && *layers &&
	    *layers <= 65536)
		return 0;
	ic_log(IC_LOG_ERR, "filter stats: bad parameter %s=%s (layers=1..65536)", key, value);
	return -EINVAL;
}

static void
stats_destroy(void *inst)
{
	struct stats_inst *s = inst;

	if (!s)
		return;
	ic_layer_table_fini(&s->table);
	free(s->layers);
	free(s->overflow);
	free(s);
}

static int
stats_create(const char *params, void **out)
{
	struct stats_inst *s;
	uint64_t layers = 64;
	int rc = ic_filter_params_each("stats", params, stats_param, &layers);

	if (rc < 0)
		return rc;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	rc = ic_layer_table_init(&s->table, (unsigned)layers);
	if (rc == 0) {
		s->layers = calloc(s->table.cap, sizeof(*s->layers));
		s->overflow = calloc(1, sizeof(*s->overflow));
	}
	if (rc < 0 || !s->layers || !s->overflow) {
		stats_destroy(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

/* One layer's counters, {"disk_id":N,"pread":{...},...}, appended to layers;
 * disk_id -1 is the overflow row. */
static void
stats_report_layer(struct json_object *layers, uint64_t disk_id, const struct stats_layer *l)
{
	struct json_object *row = json_object_new_object();

	if (!row)
		return;
	json_object_object_add(row, "disk_id", json_object_new_int64((int64_t)disk_id));
	for (unsigned op = IC_OP_PREAD; op < IC_OP_COUNT; op++) {
		const struct stats_op *o = &l->op[op];
		struct json_object *c;

		if (!atomic_load_explicit(&o->count, memory_order_relaxed) ||
		    !(c = json_object_new_object()))
			continue;
		ic_json_add_u64(c, "count", o->count);
		ic_json_add_u64(c, "bytes", o->bytes);
		ic_json_add_u64(c, "errors", o->errors);
		ic_json_add_u64_array(c, "latency_ns_log2", o->latency, STATS_LAT_BUCKETS);
		ic_json_add_u64_array(c, "size_log2", o->size, STATS_SIZE_BUCKETS);
		ic_json_add_u64_array(c, "align_log2", o->align, STATS_ALIGN_BUCKETS);
		json_object_object_add(row, ic_filter_op_names[op], c);
	}
	json_object_array_add(layers, row);
}

static int
stats_report(void *inst, char *buf, size_t cap)
{
	struct stats_inst *s = inst;
	struct json_object *o = json_object_new_object(), *layers = json_object_new_array();
	uint64_t disk_id;

	if (!o || !layers) {
		json_object_put(o);
		json_object_put(layers);
		return -ENOMEM;
	}
	json_object_object_add(o, "layers", layers);
	for (unsigned i = 0; i < s->table.cap; i++) {
		if (ic_layer_table_key(&s->table, i, &disk_id))
			stats_report_layer(layers, disk_id, &s->layers[i]);
	}
	for (unsigned op = IC_OP_PREAD; op < IC_OP_COUNT; op++) {
		if (atomic_load(&s->overflow->op[op].count)) {
			stats_report_layer(layers, (uint64_t)-1, s->overflow);
			break;
		}
	}
	return ic_json_emit(o, buf, cap);
}

const struct ic_filter_ops ic_filter_stats_ops = {
	IC_FILTER_OPS_INIT,
	.name = "stats",
	.usage = "layers=N  layers with their own counters (64)",
	.create = stats_create,
	.destroy = stats_destroy,
	IC_FILTER_DATA_OPS_INIT(stats),
	.report = stats_report,
	.honours = IC_REQ_NOWAIT | IC_REQ_PIPE,
};
