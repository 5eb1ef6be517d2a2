/* The I/O filter framework (docs/ARCHITECTURE.md §2-3).
 *
 * Every I/O the vdisk core sends to a layer passes down a stack of filters.
 * A request is a vector of segments, each naming the layer it touches. A
 * filter is a `struct ic_filter_ops` with designated initializers; it
 * implements only what it changes: a NULL op passes the call to the filter
 * below. The bottom of every stack is the layer backend, itself an ops table.
 *
 * Ownership and context:
 * - Data ops are called from many threads at once; a filter protects its own
 *   state.
 * - A filter may complete segments itself (a cache hit), change them, split
 *   them, or call down with any subset; `next` is only valid during the call.
 * - Errors are negative errno. A filter that fails logs why with its name
 *   (ic_log); callers only propagate.
 * - A filter must not call ic_stack_* of the stack it is in: a live change
 *   waits for the calls in flight, and such a call would wait for itself.
 * docs/FILTERS.md is the guide, with a complete example filter.
 */
#ifndef ISOCACHE_FILTER_H
#define ISOCACHE_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "isocache/layer.h"

#define IC_FILTER_ABI_VERSION 1

/* One piece of a request: `len` bytes at byte `off` of `layer`'s file.
 * `buf` is the data for pread/pwrite and NULL for trim, zero and cache. */
struct ic_seg {
	const struct ic_layer *layer;
	uint64_t off;
	uint32_t len;
	void *buf;
};

/* The most segments in one call; a vdisk request is split to fit. */
#define IC_MAX_SEGS 64

/* Request flags. */
#define IC_REQ_FUA 0x1u /* pwrite, zero, trim: durable on return */
/* pread: complete without waiting for storage or a daemon (a cache hit, a
 * page-cache read), or return -EAGAIN; the caller then reads again without
 * it. Only a filter that sets it in `honours` is ever called with it: a
 * stack with any other filter that has a pread answers -EAGAIN at once. */
#define IC_REQ_NOWAIT 0x2u
/* pread: copy nothing; put the segments' bytes, in the order of the
 * segments, into a pipe by splice(2), whose write end is the int every
 * segment's buf points to. Only bytes that can never change once in the
 * pipe may go there (a frozen layer's block the cache daemon holds,
 * docs/CACHED.md "Spliced reads"); otherwise -EAGAIN, and the caller
 * drains the pipe, which may hold part of the bytes, and reads again
 * without the flag. With IC_REQ_NOWAIT too, it never waits either.
 * Honoured like IC_REQ_NOWAIT: a stack with any filter that has a pread
 * and does not set it in `honours` answers -EAGAIN. */
#define IC_REQ_PIPE 0x4u

/* Capabilities, asked down the stack with caps(); a filter may clear bits
 * (suppress) or set them (emulate). */
#define IC_CAP_TRIM 0x1u       /* trim deallocates */
#define IC_CAP_ZERO 0x2u       /* zero is cheaper than writing zeroes */
#define IC_CAP_FUA 0x4u        /* IC_REQ_FUA is native */
#define IC_CAP_MULTI_CONN 0x8u /* a flush on one connection covers all */
#define IC_CAP_CACHE 0x10u     /* cache() hints are acted on */

struct ic_next; /* the rest of the stack below a filter */

struct ic_filter_ops {
	/* Required: sizeof(struct ic_filter_ops) and IC_FILTER_ABI_VERSION as
	 * the filter was built; IC_FILTER_OPS_INIT fills both. The stack reads
	 * only the ops that fit in `size`, so older filters keep working. */
	uint32_t size;
	uint32_t abi_version;
	/* Required: the name used in a spec ("stats"). */
	const char *name;
	/* Optional: one line per parameter, for --help. */
	const char *usage;

	/* Optional: make an instance from the spec's parameters ("read=200us",
	 * or "" when none). Parameters are "key=value" separated by ":",
	 * as in "error:rate=0.01:errno=EIO:file=/run/trigger".
	 * Returns 0 or -EINVAL after logging which parameter was wrong. */
	int (*create)(const char *params, void **inst);
	/* Optional: free what create made. */
	void (*destroy)(void *inst);

	/* Optional: a layer enters or leaves use (vdisk open/close), or the
	 * filter is added to or removed from a stack while the layer is open.
	 * The stack calls every filter itself, open bottom first, close top
	 * first; `next` is for I/O the filter needs while opening. */
	int (*open)(struct ic_next *next, void *inst, const struct ic_layer *layer);
	void (*close)(struct ic_next *next, void *inst, const struct ic_layer *layer);

	/* Optional: capabilities; the default returns what is below. Asked
	 * when the stack changes and kept: ic_next_caps() returns the answer
	 * below at once. Each hop honours the caps below it: without TRIM or
	 * CACHE those calls succeed without going down, without ZERO a zero
	 * is written as zeroes, without FUA a FUA request is followed by a
	 * flush of each layer. So clearing a bit suppresses a feature for the
	 * filters above; setting one emulates it (the filter implements it). */
	uint32_t (*caps)(struct ic_next *next, void *inst);

	/* Optional data ops; each returns 0 or -errno for the whole call. */
	int (*pread)(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n,
		     uint32_t flags);
	int (*pwrite)(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n,
		      uint32_t flags);
	int (*trim)(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n,
		    uint32_t flags);
	int (*zero)(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n,
		    uint32_t flags);
	/* Prefetch hint: read ahead into whatever cache lies below. */
	int (*cache)(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n);
	/* Make everything written to `layer` durable. */
	int (*flush)(struct ic_next *next, void *inst, const struct ic_layer *layer);

	/* Optional: a JSON object describing the instance's state and counters,
	 * written into buf (at most cap bytes, NUL-terminated). Returns the
	 * length, or -ENOSPC when cap is too small. Called from any thread. */
	int (*report)(void *inst, char *buf, size_t cap);

	/* Optional: the request flags beyond IC_REQ_FUA that this filter's
	 * pread honours (IC_REQ_NOWAIT: it never waits when asked not to, and
	 * an -EAGAIN it returns leaves nothing half done that a second read
	 * would repeat, such as counting the read twice; IC_REQ_PIPE: it
	 * splices or refuses as that flag says). */
	uint32_t honours;
};

#define IC_FILTER_OPS_INIT .size = sizeof(struct ic_filter_ops), .abi_version = IC_FILTER_ABI_VERSION

/* A filter built out of tree as a shared object
 *   cc -shared -fPIC -o ro.so ro.c $(pkg-config --cflags --libs isocache)
 * names its ops table once, at file scope, with IC_REGISTER_FILTER(ro_ops);
 * a spec item that is a path (`--filter /path/to/ro.so:PARAMS`) loads it
 * and registers it under its name. The loader calls the entry point this
 * defines and checks the table's size and abi_version before anything else:
 * a filter built for another ABI version is refused, naming the file. */
#define IC_FILTER_PLUGIN_ENTRY "ic_filter_plugin"
#define IC_REGISTER_FILTER(ops)                                                        \
	__attribute__((visibility("default"))) const struct ic_filter_ops *ic_filter_plugin( \
		void);                                                                 \
	const struct ic_filter_ops *ic_filter_plugin(void)                             \
	{                                                                              \
		return &(ops);                                                         \
	}

/* Calls from a filter to the stack below it. Each checks the contract at
 * this hop: 1 to IC_MAX_SEGS segments, each with a layer, len > 0 and
 * off + len <= layer->size, a buffer for pread/pwrite, only known flags
 * (IC_REQ_FUA on pwrite, trim and zero); and that the result is 0 or
 * -errno. A violation is logged naming the filter and returns -EINVAL
 * (bad input) or -EIO (a bad result), never aborts. */
uint32_t ic_next_caps(struct ic_next *next);
int ic_next_pread(struct ic_next *next, struct ic_seg *segs, unsigned n, uint32_t flags);
int ic_next_pwrite(struct ic_next *next, struct ic_seg *segs, unsigned n, uint32_t flags);
int ic_next_trim(struct ic_next *next, struct ic_seg *segs, unsigned n, uint32_t flags);
int ic_next_zero(struct ic_next *next, struct ic_seg *segs, unsigned n, uint32_t flags);
int ic_next_cache(struct ic_next *next, struct ic_seg *segs, unsigned n);
int ic_next_flush(struct ic_next *next, const struct ic_layer *layer);

/* Whether every hop checks the result of the filter below it (the default
 * in debug builds; release builds check at the top only): a result that is neither 0 nor -errno becomes -EIO, and the
 * filter that failed is named in the log. With false, a hop passes the call
 * on as a tail call, so a request returns from the bottom in one step: about
 * 7 ns a hop cheaper after a syscall (bench/filter-overhead). Results are
 * then checked once at the top of the stack, without naming the filter;
 * inputs are checked at every hop either way. Process-wide, any time. */
void ic_filter_check_results(bool on);

/* ---- The stack, as the vdisk core and the front ends use it. ---- */

/* The ops a call can resolve to, in the order of a stack hop's table. The
 * vdisk core names its requests by them too (IC_OP_PREAD ... IC_OP_CACHE). */
enum ic_filter_op {
	IC_OP_CAPS,
	IC_OP_PREAD,
	IC_OP_PWRITE,
	IC_OP_TRIM,
	IC_OP_ZERO,
	IC_OP_CACHE,
	IC_OP_FLUSH,
	IC_OP_COUNT
};

struct ic_stack;

/* Register a filter by name so specs can name it. The built-in filters are
 * registered already. Returns 0, -EEXIST, or -EINVAL (bad size/version). */
int ic_filter_register(const struct ic_filter_ops *ops);
/* The registered filter called name, or NULL. */
const struct ic_filter_ops *ic_filter_find(const char *name);

/* Make a stack over `bottom` (the layer backend; caps and every data op
 * must be set, open/close may be; `bottom_inst` is passed to them and never
 * freed by the stack). Empty until filters are added. Returns 0, -EINVAL
 * or -ENOMEM. */
int ic_stack_new(const struct ic_filter_ops *bottom, void *bottom_inst, struct ic_stack **out);
void ic_stack_free(struct ic_stack *stack);

/* Insert the filters of spec ("stats,delay:read=200us,cache") at position
 * pos (0 = top, -1 = just above the bottom), live: in-flight I/O drains
 * first. Returns 0, or -EINVAL/-ENOENT after logging what was wrong. */
int ic_stack_add(struct ic_stack *stack, const char *spec, int pos);
/* Remove the topmost filter called name (live, as above): it is closed on
 * the open layers and destroyed once no call can reach it. Returns 0 or
 * -ENOENT. */
int ic_stack_remove(struct ic_stack *stack, const char *name);
/* Write a JSON array describing the stack, top first, the bottom last:
 * [{"name":…,"bottom":false,"spec":"delay:read=200us","report":{…}|null},…].
 * Returns the length, or -ENOSPC when cap is too small. Any thread. */
int ic_stack_report(struct ic_stack *stack, char *buf, size_t cap);

/* Calls into the top of the stack (the vdisk core). */
int ic_stack_open(struct ic_stack *stack, const struct ic_layer *layer);
void ic_stack_close(struct ic_stack *stack, const struct ic_layer *layer);
/* An open layer's struct now lives at `to` (its owner moved its array):
 * later closes and filters added live must be given the new address. The
 * filters themselves are not called: the layer is the same file. */
void ic_stack_layer_moved(struct ic_stack *stack, const struct ic_layer *from,
			  const struct ic_layer *to);
uint32_t ic_stack_caps(struct ic_stack *stack);
int ic_stack_pread(struct ic_stack *stack, struct ic_seg *segs, unsigned n, uint32_t flags);
int ic_stack_pwrite(struct ic_stack *stack, struct ic_seg *segs, unsigned n, uint32_t flags);
int ic_stack_trim(struct ic_stack *stack, struct ic_seg *segs, unsigned n, uint32_t flags);
int ic_stack_zero(struct ic_stack *stack, struct ic_seg *segs, unsigned n, uint32_t flags);
int ic_stack_cache(struct ic_stack *stack, struct ic_seg *segs, unsigned n);
int ic_stack_flush(struct ic_stack *stack, const struct ic_layer *layer);

#endif
