/* The error filter: fault injection for reliability tests.
 *
 * Parameters (all optional):
 *   rate=R        probability that any op fails (0..1, or "50%"); default 1
 *   read=R, write=R, trim=R, zero=R, cache=R, flush=R   per op, overriding rate
 *   errno=NAME    the error returned: EIO (default), ENOSPC, ... or a number
 *   file=PATH     inject only while PATH exists
 *   after=N       the first N ops pass; injection starts at op N + 1
 *   seed=N        seed of the random choice, for repeatable runs
 */
#include "filter/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

struct error_inst {
	double rate[IC_OP_COUNT];
	int err; /* positive errno */
	char *file;
	uint64_t after;
	struct ic_filter_rand rng;
	_Atomic uint64_t ops;
	_Atomic uint64_t injected;
};

/* What create collects before it makes the instance. */
struct error_params {
	double rate[IC_OP_COUNT];
	bool rate_set[IC_OP_COUNT];
	double all;
	int err;
	uint64_t after;
	uint64_t seed;
	bool seed_set;
	char *file_copy;
};

static const struct {
	const char *name;
	int err;
} error_names[] = {
	{ "EIO", EIO },       { "ENOSPC", ENOSPC },         { "EPERM", EPERM },
	{ "EROFS", EROFS },   { "ESTALE", ESTALE },         { "EINVAL", EINVAL },
	{ "ENOMEM", ENOMEM }, { "EAGAIN", EAGAIN },         { "EBUSY", EBUSY },
	{ "ENODEV", ENODEV }, { "ETIMEDOUT", ETIMEDOUT },   { "EDQUOT", EDQUOT },
	{ "EFBIG", EFBIG },   { "EOPNOTSUPP", EOPNOTSUPP }, { "ENXIO", ENXIO },
};

static int
error_parse_errno(const char *text, int *err)
{
	uint64_t v;

	for (size_t i = 0; i < sizeof(error_names) / sizeof(error_names[0]); i++) {
		if (strcmp(text, error_names[i].name) == 0) {
			*err = error_names[i].err;
			return 0;
		}
	}
	if (ic_filter_parse_u64(text, &v) < 0 || v == 0 || v > 4095)
		return -EINVAL;
	*err = (int)v;
	return 0;
}

static int
error_parse_rate(const char *text, double *rate)
{
	char *end;
	double v = strtod(text, &end);

	if (end == text)
		return -EINVAL;
	if (strcmp(end, "%") == 0)
		v /= 100;
	else if (*end)
		return -EINVAL;
	if (!(v >= 0 && v <= 1))
		return -EINVAL;
	*rate = v;
	return 0;
}

static int
error_param(void *ctx, const char *key, const char *value)
{
	struct error_params *p = ctx;
	int op = ic_filter_op_key(key);
	int rc = -EINVAL;

	if (op >= 0) {
		rc = error_parse_rate(value, &p->rate[op]);
		p->rate_set[op] = true;
	} else if (strcmp(key, "rate") == 0) {
		rc = error_parse_rate(value, &p->all);
	} else if (strcmp(key, "errno") == 0) {
		rc = error_parse_errno(value, &p->err);
	} else if (strcmp(key, "file") == 0) {
		free(p->file_copy);
		p->file_copy = strdup(value);
		rc = p->file_copy && *value ? 0 : -EINVAL;
	} else if (strcmp(key, "after") == 0) {
		rc = ic_filter_parse_u64(value, &p->after);
	} else if (strcmp(key, "seed") == 0) {
		rc = ic_filter_parse_u64(value, &p->seed);
		p->seed_set = true;
	}
	if (rc < 0)
		ic_log(IC_LOG_ERR, "filter error: bad parameter %s=%s", key, value);
	return rc;
}

static int
error_create(const char *params, void **out)
{
	struct error_params p = { .all = 1, .err = EIO };
	struct error_inst *e = NULL;
	int rc = ic_filter_params_each("error", params, error_param, &p);

	if (rc == 0 && !(e = calloc(1, sizeof(*e))))
		rc = -ENOMEM;
	if (rc < 0) {
		free(p.file_copy);
		return rc;
	}
	for (unsigned op = IC_OP_PREAD; op < IC_OP_COUNT; op++)
		e->rate[op] = p.rate_set[op] ? p.rate[op] : p.all;
	e->err = p.err;
	e->file = p.file_copy;
	e->after = p.after;
	ic_filter_rand_seed(&e->rng, p.seed_set, p.seed);
	*out = e;
	return 0;
}

static void
error_destroy(void *inst)
{
	struct error_inst *e = inst;

	free(e->file);
	free(e);
}

/* Whether this op fails: past `after`, the trigger file present, the dice. */
static int
error_op(struct ic_next *next, void *inst, enum ic_filter_op op, struct ic_seg *segs, unsigned n,
	 uint32_t flags, const struct ic_layer *layer)
{
	struct error_inst *e = inst;
	uint64_t seen = atomic_fetch_add_explicit(&e->ops, 1, memory_order_relaxed);
	double rate = e->rate[op];

	if (seen < e->after || rate <= 0 || (e->file && access(e->file, F_OK) != 0) ||
	    (rate < 1 && ic_filter_rand_unit(&e->rng) >= rate))
		return ic_filter_next_op(next, op, segs, n, flags, layer);
	atomic_fetch_add_explicit(&e->injected, 1, memory_order_relaxed);
	return -e->err;
}

IC_FILTER_DATA_OPS(error)

static int
error_report(void *inst, char *buf, size_t cap)
{
	struct error_inst *e = inst;
	struct json_object *o = json_object_new_object();

	if (!o)
		return -ENOMEM;
	ic_json_add_u64(o, "ops", atomic_load(&e->ops));
	ic_json_add_u64(o, "injected", atomic_load(&e->injected));
	json_object_object_add(o, "errno", json_object_new_int(e->err));
	json_object_object_add(o, "file", e->file ? json_object_new_string(e->file) : NULL);
	return ic_json_emit(o, buf, cap);
}

const struct ic_filter_ops ic_filter_error_ops = {
	IC_FILTER_OPS_INIT,
	.name = "error",
	.usage = "rate=R read=R write=R trim=R zero=R cache=R flush=R errno=EIO file=PATH "
		 "after=N seed=N",
	.create = error_create,
	.destroy = error_destroy,
	IC_FILTER_DATA_OPS_INIT(error),
	.report = error_report,
};
