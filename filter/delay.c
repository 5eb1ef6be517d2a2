/* The delay filter: latency per op, to stand in for slow storage.
 *
 * Parameters: read=, write=, trim=, zero=, cache=, flush= and all= (for the
 * ops not named), each a duration ("200us", "1ms", "1.5s") or a range
 * "100us-2ms" drawn uniformly per call; seed=N makes the draws repeatable.
 * The delay comes before the call goes down.
 */
#include "filter/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

struct delay_range {
	uint64_t min_ns, max_ns;
	bool set;
};

struct delay_inst {
	struct delay_range range[IC_OP_COUNT];
	struct ic_filter_rand rng;
	_Atomic uint64_t delayed;
	_Atomic uint64_t total_ns;
};

struct delay_params {
	struct delay_range range[IC_OP_COUNT];
	struct delay_range all;
	uint64_t seed;
	bool seed_set;
};

/* "D" or "D1-D2" with D1 <= D2. */
static int
delay_parse_range(const char *text, struct delay_range *r)
{
	char lo[64];
	const char *dash = strchr(text, '-');
	size_t n = dash ? (size_t)(dash - text) : strlen(text);

	if (n >= sizeof(lo))
		return -EINVAL;
	memcpy(lo, text, n);
	lo[n] = '\0';
	if (ic_filter_parse_duration(lo, &r->min_ns) < 0)
		return -EINVAL;
	r->max_ns = r->min_ns;
	if (dash && ic_filter_parse_duration(dash + 1, &r->max_ns) < 0)
		return -EINVAL;
	r->set = true;
	return r->min_ns <= r->max_ns ? 0 : -EINVAL;
}

static int
delay_param(void *ctx, const char *key, const char *value)
{
	struct delay_params *p = ctx;
	int op = ic_filter_op_key(key);
	int rc = -EINVAL;

	if (op >= 0)
		rc = delay_parse_range(value, &p->range[op]);
	else if (strcmp(key, "all") == 0)
		rc = delay_parse_range(value, &p->all);
	else if (strcmp(key, "seed") == 0)
		rc = ic_filter_parse_u64(value, &p->seed);
	p->seed_set |= strcmp(key, "seed") == 0;
	if (rc < 0)
		ic_log(IC_LOG_ERR,
		       "filter delay: bad parameter %s=%s (DURATION or MIN-MAX, "
		       "with a unit: ns us ms s)",
		       key, value);
	return rc;
}

static int
delay_create(const char *params, void **out)
{
	struct delay_params p = { 0 };
	struct delay_inst *d;
	int rc = ic_filter_params_each("delay", params, delay_param, &p);

	if (rc < 0)
		return rc;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	for (unsigned op = IC_OP_PREAD; op < IC_OP_COUNT; op++)
		d->range[op] = p.range[op].set ? p.range[op] : p.all;
	ic_filter_rand_seed(&d->rng, p.seed_set, p.seed);
	*out = d;
	return 0;
}

static void
delay_destroy(void *inst)
{
	free(inst);
}

/* Sleep to an absolute deadline, so signals do not shorten the delay. */
static void
delay_sleep(uint64_t ns)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	ns += (uint64_t)t.tv_nsec;
	t.tv_sec += (time_t)(ns / 1000000000u);
	t.tv_nsec = (long)(ns % 1000000000u);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR)
		;
}

static int
delay_op(struct ic_next *next, void *inst, enum ic_filter_op op, struct ic_seg *segs, unsigned n,
	 uint32_t flags, const struct ic_layer *layer)
{
	struct delay_inst *d = inst;
	const struct delay_range *r = &d->range[op];
	uint64_t ns = r->min_ns;

	if (r->max_ns > r->min_ns)
		ns += ic_filter_rand_next(&d->rng) % (r->max_ns - r->min_ns + 1);
	if (ns && (flags & IC_REQ_NOWAIT))
		return -EAGAIN; /* the delay is drawn again when it is read again */
	if (ns) {
		delay_sleep(ns);
		atomic_fetch_add_explicit(&d->delayed, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&d->total_ns, ns, memory_order_relaxed);
	}
	return ic_filter_next_op(next, op, segs, n, flags, layer);
}

IC_FILTER_DATA_OPS(delay)

static int
delay_report(void *inst, char *buf, size_t cap)
{
	struct delay_inst *d = inst;
	struct json_object *o = json_object_new_object();
	char key[32];

	if (!o)
		return -ENOMEM;
	ic_json_add_u64(o, "delayed", atomic_load(&d->delayed));
	ic_json_add_u64(o, "total_ns", atomic_load(&d->total_ns));
	for (unsigned op = IC_OP_PREAD; op < IC_OP_COUNT; op++) {
		struct json_object *range = json_object_new_array();

		if (range) {
			json_object_array_add(range, json_object_new_uint64(d->range[op].min_ns));
			json_object_array_add(range, json_object_new_uint64(d->range[op].max_ns));
		}
		snprintf(key, sizeof(key), "%s_ns", ic_filter_op_names[op]);
		json_object_object_add(o, key, range);
	}
	return ic_json_emit(o, buf, cap);
}

const struct ic_filter_ops ic_filter_delay_ops = {
	IC_FILTER_OPS_INIT,
	.name = "delay",
	.usage = "read=D write=D trim=D zero=D cache=D flush=D all=D seed=N "
		 "(D: 200us, 1ms, or a range 100us-2ms)",
	.create = delay_create,
	.destroy = delay_destroy,
	IC_FILTER_DATA_OPS_INIT(delay),
	.report = delay_report,
	.honours = IC_REQ_NOWAIT | IC_REQ_PIPE,
};
