/* Private API of filter/: shared by the stack and the built-in filters.
 * Nothing outside filter/ includes this header. */
#ifndef IC_FILTER_INTERNAL_H
#define IC_FILTER_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/json.h"
#include "isocache/filter.h"

/* "pread", "pwrite", ... for logs and reports. */
extern const char *const ic_filter_op_names[IC_OP_COUNT];

/* One filter in a stack: its ops table as loaded (zero beyond its size),
 * its instance and the spec item that made it. Shared by every chain that
 * contains it; freed when it leaves the stack. */
struct stack_filter {
	struct ic_filter_ops ops;
	void *inst;
	char *spec;
};

/* The types of the ops, to call a struct stack_hop's fn. */
typedef uint32_t (*stack_caps_fn)(struct ic_next *next, void *inst);
typedef int (*stack_data_fn)(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n,
			     uint32_t flags);
typedef int (*stack_cache_fn)(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n);
typedef int (*stack_flush_fn)(struct ic_next *next, void *inst, const struct ic_layer *layer);

/* Who implements one op at or below a point of the stack: the op itself
 * (cast back to its stack_*_fn type to call), its instance and the `next`
 * it receives, all in one place so a hop reads one cache line. f is NULL
 * below the bottom. */
struct stack_hop {
	void (*fn)(void);
	void *inst;
	struct ic_next *below;
	const struct stack_filter *f;
};

/* A point of the stack: "everything below filter X". The hops are resolved
 * when the stack changes, so a NULL op costs nothing per call. */
struct ic_next {
	struct stack_hop hop[IC_OP_COUNT];
	uint32_t caps;      /* caps as seen from above this point */
	const char *caller; /* the filter above this point, for contract logs */
};

/* ---- registry.c ---- */

/* Validate ops (size, abi_version, name) and copy it into *out, with every
 * field beyond ops->size zeroed. origin (a name or a path) names the table
 * in logs. Returns 0 or -EINVAL after logging. */
int ic_filter_ops_load(const struct ic_filter_ops *ops, const char *origin,
		       struct ic_filter_ops *out);

/* The filter a spec item names: a registered name, or a path (anything with
 * a '/') of a filter built out of tree, loaded and registered on first use.
 * Returns 0, -ENOENT (no such name or file), -EINVAL (refused: not a
 * shared object, no entry point, another ABI version or size) or -EEXIST
 * (its name is another filter's), after logging. */
int ic_filter_resolve(const char *name_or_path, const struct ic_filter_ops **out);

/* ---- plugin.c ---- */

/* Load the shared object at path and return the ops table its
 * IC_REGISTER_FILTER entry point gives, unchecked (the registry checks it).
 * The object stays loaded for the life of the process. Returns 0, -ENOENT
 * or -EINVAL after logging. */
int ic_filter_plugin_open(const char *path, const struct ic_filter_ops **out);

/* ---- builtin.c ---- */

/* The built-in filters, NULL-terminated; registered on first use. */
extern const struct ic_filter_ops *const ic_filter_builtins[];

/* ---- spec.c ---- */

/* Make the filters of spec, top first, into a new array *out of *n.
 * Returns 0, or -EINVAL/-ENOENT after logging what was wrong. */
int ic_filter_spec_parse(const char *spec, struct stack_filter ***out, unsigned *n);
void ic_filter_spec_free(struct stack_filter *f);

/* ---- params.c ---- */

/* Call fn(ctx, key, value) for each "key=value" of params (":"-separated).
 * Stops at the first nonzero return and returns it; -EINVAL after logging
 * when an item is not key=value. `filter` names the filter in logs. */
int ic_filter_params_each(const char *filter, const char *params,
			  int (*fn)(void *ctx, const char *key, const char *value), void *ctx);
/* The data op a parameter key names ("read", "write", "trim", "zero",
 * "cache", "flush"), or -ENOENT. */
int ic_filter_op_key(const char *key);
/* A duration with a unit: "200us", "1.5ms", "2s", "100ns" (or "0").
 * Returns 0 or -EINVAL. */
int ic_filter_parse_duration(const char *text, uint64_t *ns);
/* A non-negative integer. Returns 0 or -EINVAL. */
int ic_filter_parse_u64(const char *text, uint64_t *out);

/* ---- layertab.c ---- */

/* A fixed table of layers by disk_id, filled on first use without
 * allocating, so filters can keep per-layer state on the data path. */
struct ic_layer_table {
	unsigned cap;           /* a power of two */
	_Atomic uint64_t *keys; /* disk_id + 1; 0 is free */
};

int ic_layer_table_init(struct ic_layer_table *t, unsigned cap);
void ic_layer_table_fini(struct ic_layer_table *t);
/* The slot of disk_id in [0, cap), or -ENOSPC when the table is full. */
int ic_layer_table_slot(struct ic_layer_table *t, uint64_t disk_id);
/* The disk_id in slot i, or false when it is free. */
bool ic_layer_table_key(const struct ic_layer_table *t, unsigned i, uint64_t *disk_id);

/* ---- next.c ---- */

/* Call op at next, with the checks of the ic_next_* wrappers. `layer` is
 * for IC_OP_FLUSH, segs/n/flags for the others. */
int ic_filter_next_op(struct ic_next *next, enum ic_filter_op op, struct ic_seg *segs, unsigned n,
		      uint32_t flags, const struct ic_layer *layer);
/* Forget which filter failed last on this thread: a new request begins. */
void ic_filter_next_begin(void);
/* The result of a request at the top of the stack: checked here when the
 * hops do not check results themselves. */
int ic_filter_next_done(enum ic_filter_op op, int rc, uint32_t flags, const struct ic_seg *segs,
			const struct ic_layer *layer);

/* ---- a thread-safe PRNG (splitmix64 over an atomic counter) ---- */

struct ic_filter_rand {
	_Atomic uint64_t state;
};

static inline uint64_t
ic_filter_rand_next(struct ic_filter_rand *r)
{
	const uint64_t gamma = 0x9e3779b97f4a7c15ull;
	uint64_t z = atomic_fetch_add_explicit(&r->state, gamma, memory_order_relaxed) + gamma;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static inline double
ic_filter_rand_unit(struct ic_filter_rand *r)
{
	return (double)(ic_filter_rand_next(r) >> 11) * 0x1.0p-53;
}

/* Seed from "seed=" or, when seed_set is false, from the clock. */
static inline void
ic_filter_rand_seed(struct ic_filter_rand *r, bool seed_set, uint64_t seed)
{
	struct timespec ts;

	if (!seed_set) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		seed = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	}
	atomic_init(&r->state, seed);
}

/* ---- per-op adapters ----
 * A filter that treats every data op alike writes one function
 *   static int P_op(struct ic_next *next, void *inst, enum ic_filter_op op,
 *                   struct ic_seg *segs, unsigned n, uint32_t flags,
 *                   const struct ic_layer *layer);
 * and IC_FILTER_DATA_OPS(P) defines the six ops that call it;
 * IC_FILTER_DATA_OPS_INIT(P) lists them in the ops table. */
#define IC_FILTER_DATA_OP_(P, name, OP)                                                            \
	static int P##_##name(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n,   \
			      uint32_t flags)                                                      \
	{                                                                                          \
		return P##_op(next, inst, OP, segs, n, flags, NULL);                               \
	}
#define IC_FILTER_DATA_OPS(P)                                                                      \
	IC_FILTER_DATA_OP_(P, pread, IC_OP_PREAD)                                                  \
	IC_FILTER_DATA_OP_(P, pwrite, IC_OP_PWRITE)                                                \
	IC_FILTER_DATA_OP_(P, trim, IC_OP_TRIM)                                                    \
	IC_FILTER_DATA_OP_(P, zero, IC_OP_ZERO)                                                    \
	static int P##_cache(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n)    \
	{                                                                                          \
		return P##_op(next, inst, IC_OP_CACHE, segs, n, 0, NULL);                          \
	}                                                                                          \
	static int P##_flush(struct ic_next *next, void *inst, const struct ic_layer *layer)       \
	{                                                                                          \
		return P##_op(next, inst, IC_OP_FLUSH, NULL, 0, 0, layer);                         \
	}
#define IC_FILTER_DATA_OPS_INIT(P)                                                                 \
	.pread = P##_pread, .pwrite = P##_pwrite, .trim = P##_trim, .zero = P##_zero,              \
	.cache = P##_cache, .flush = P##_flush

#endif
