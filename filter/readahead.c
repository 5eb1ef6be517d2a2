/* The readahead filter: spots sequential reads per layer and sends cache()
 * hints for the window after them, so a cache below (the daemon) fills
 * ahead of the reader.
 *
 * Parameters: window=SIZE hinted ahead (default 256K, at most 64M),
 * trigger=N sequential reads before hints start (default 2), layers=N
 * layers tracked (default 64; others get no readahead).
 *
 * A layer's state is a few relaxed atomics: threads reading one layer at
 * once may spoil each other's detection, which costs a hint, never data.
 * A hint is sent when less than half a window is left hinted ahead.
 */
#include "filter/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/size.h"

struct readahead_layer {
	_Atomic uint64_t next_off;  /* where a sequential read would start; 0: none yet */
	_Atomic uint64_t hinted_to; /* hints sent up to here */
	_Atomic uint32_t streak;    /* sequential reads in a row */
};

struct readahead_inst {
	uint64_t window;
	uint64_t trigger;
	struct ic_layer_table table;
	struct readahead_layer *layers;
	_Atomic uint64_t hints;
	_Atomic uint64_t hinted_bytes;
};

struct readahead_params {
	uint64_t window, trigger, layers;
};

static int
readahead_param(void *ctx, const char *key, const char *value)
{
	struct readahead_params *p = ctx;
	int rc = -EINVAL;

	if (strcmp(key, "window") == 0)
		rc = ic_size_parse(value, &p->window) == 0 && p->window >= 4096 &&
			     p->window <= (64u << 20)
			 ? 0
			 : -EINVAL;
	else if (strcmp(key, "trigger") == 0)
		rc = ic_filter_parse_u64(value, &p->trigger);
	else if (strcmp(key, "layers") == 0)
		rc = ic_filter_parse_u64(value, &p->layers) == 0 && p->layers && p->layers <= 65536
			 ? 0
			 : -EINVAL;
	if (rc < 0)
		ic_log(IC_LOG_ERR, "filter readahead: bad parameter %s=%s", key, value);
	return rc;
}

static void
readahead_destroy(void *inst)
{
	struct readahead_inst *r = inst;

	if (!r)
		return;
	ic_layer_table_fini(&r->table);
	free(r->layers);
	free(r);
}

static int
readahead_create(const char *params, void **out)
{
	struct readahead_params p = { .window = 256 * 1024, .trigger = 2, .layers = 64 };
	struct readahead_inst *r;
	int rc = ic_filter_params_each("readahead", params, readahead_param, &p);

	if (rc < 0)
		return rc;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->window = p.window;
	r->trigger = p.trigger;
	if (ic_layer_table_init(&r->table, (unsigned)p.layers) < 0 ||
	    !(r->layers = calloc(r->table.cap, sizeof(*r->layers)))) {
		readahead_destroy(r);
		return -ENOMEM;
	}
	*out = r;
	return 0;
}

/* Note the read s; fill *hint and return true when a hint is due. */
static bool
readahead_track(struct readahead_inst *r, const struct ic_seg *s, struct ic_seg *hint)
{
	int slot = ic_layer_table_slot(&r->table, s->layer->disk_id);
	struct readahead_layer *l;
	uint64_t end = s->off + s->len, prev, from, to;

	if (slot < 0)
		return false;
	l = &r->layers[slot];
	prev = atomic_exchange_explicit(&l->next_off, end, memory_order_relaxed);
	/* No read ends at 0, so prev == 0 means a fresh slot, not a sequence. */
	if (prev == 0 || prev != s->off) {
		atomic_store_explicit(&l->streak, 0, memory_order_relaxed);
		atomic_store_explicit(&l->hinted_to, 0, memory_order_relaxed);
		return false;
	}
	if (atomic_fetch_add_explicit(&l->streak, 1, memory_order_relaxed) + 1 < r->trigger)
		return false;
	from = atomic_load_explicit(&l->hinted_to, memory_order_relaxed);
	if (from >= end + r->window / 2)
		return false;
	if (from < end)
		from = end;
	to = end + r->window < s->layer->size ? end + r->window : s->layer->size;
	if (to <= from)
		return false;
	atomic_store_explicit(&l->hinted_to, to, memory_order_relaxed);
	*hint = (struct ic_seg){ s->layer, from, (uint32_t)(to - from), NULL };
	return true;
}

static int
readahead_pread(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n, uint32_t flags)
{
	struct readahead_inst *r = inst;
	struct ic_seg hints[IC_MAX_SEGS];
	unsigned k = 0;
	int rc;

	if (ic_next_caps(next) & IC_CAP_CACHE) {
		for (unsigned i = 0; i < n && i < IC_MAX_SEGS; i++)
			k += readahead_track(r, &segs[i], &hints[k]);
	}
	/* Hints first, so the cache below can fill while this read runs. A
	 * hint that fails costs nothing but the hint. */
	if (k) {
		rc = ic_next_cache(next, hints, k);
		if (rc < 0)
			ic_log(IC_LOG_DEBUG, "filter readahead: hint failed: %s", strerror(-rc));
		atomic_fetch_add_explicit(&r->hints, k, memory_order_relaxed);
		for (unsigned i = 0; i < k; i++)
			atomic_fetch_add_explicit(&r->hinted_bytes, hints[i].len,
						  memory_order_relaxed);
	}
	return ic_next_pread(next, segs, n, flags);
}

static int
readahead_report(void *inst, char *buf, size_t cap)
{
	struct readahead_inst *r = inst;
	struct json_object *o = json_object_new_object();

	if (!o)
		return -ENOMEM;
	ic_json_add_u64(o, "window", r->window);
	ic_json_add_u64(o, "trigger", r->trigger);
	ic_json_add_u64(o, "hints", atomic_load(&r->hints));
	ic_json_add_u64(o, "hinted_bytes", atomic_load(&r->hinted_bytes));
	return ic_json_emit(o, buf, cap);
}

const struct ic_filter_ops ic_filter_readahead_ops = {
	IC_FILTER_OPS_INIT,
	.name = "readahead",
	.usage = "window=SIZE (256K) trigger=N (2) layers=N (64)",
	.create = readahead_create,
	.destroy = readahead_destroy,
	.pread = readahead_pread,
	.report = readahead_report,
};
