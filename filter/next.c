/* Calls down the stack: the ic_next_* wrappers.
 *
 * Every hop checks the contract (nbdkit backend.c does the same): segments
 * lie within their layer, flags are known, and the result is 0 or -errno.
 * A violation is logged, naming the filter that broke it, and turned into an
 * error instead of an abort, since bad input must never crash the process.
 *
 * Capabilities are honoured here too, from the caps cached when the stack
 * last changed: without IC_CAP_TRIM or IC_CAP_CACHE those advisory calls
 * succeed without going down; without IC_CAP_ZERO a zero writes zeroes;
 * without IC_CAP_FUA a FUA request is followed by a flush. So a filter that
 * clears a bit suppresses that feature for everything above it, and one
 * that sets a bit takes the emulation on itself.
 *
 * Results are checked at every hop unless ic_filter_check_results(false)
 * leaves that to the top of the stack (see next_check_results).
 *
 * The first hop to see an error on the way up names the failing filter in
 * the log; hops above only propagate (a thread-local remembers it was said,
 * reset when a request enters the stack). The success path does not touch
 * it, and it uses the initial-exec TLS model: per hop, a call costs a few
 * branches and an indirect call (bench/filter-overhead).
 */
#include "filter/internal.h"

#include <errno.h>
#include <string.h>

#include "common/log.h"

/* Largest errno a result may carry (Linux's MAX_ERRNO). */
#define NEXT_MAX_ERRNO 4095

/* The body of a hop is inlined into each ic_next_* wrapper, where the op is
 * a constant: the compiler drops the checks and the switch cases that do
 * not apply to it. */
#define NEXT_INLINE static inline __attribute__((always_inline))

static const uint32_t next_flags_ok[IC_OP_COUNT] = {
	[IC_OP_PREAD] = IC_REQ_NOWAIT | IC_REQ_PIPE,
	[IC_OP_PWRITE] = IC_REQ_FUA,
	[IC_OP_TRIM] = IC_REQ_FUA,
	[IC_OP_ZERO] = IC_REQ_FUA,
};

/* Writes of zeroes when the stack below cannot zero; never written to. */
static char next_zeroes[64 * 1024];

static _Thread_local bool next_error_logged __attribute__((tls_model("initial-exec")));

/* Whether each hop checks the result of the filter it called (the default).
 * Checking needs the hop's frame after the call. Without it, a hop ends in
 * a tail call, so a request returns from the bottom in one step instead of
 * one per filter; that matters after a syscall at the bottom, where each of
 * those returns is mispredicted (the kernel refills the return stack
 * buffer): about 7 ns a hop with a real pread (bench/filter-overhead). */
/* Debug builds (the sanitizer suite) check at every hop; release builds
 * leave it to the top, where 8 forwarding filters then cost under 5 %. A
 * failing filter still names itself: filters log their own errors. */
#ifdef NDEBUG
static atomic_bool next_check_results = false;
#else
static atomic_bool next_check_results = true;
#endif

void
ic_filter_next_begin(void)
{
	next_error_logged = false;
}

NEXT_INLINE int
next_contract(const struct ic_next *next, enum ic_filter_op op, const struct ic_seg *segs,
	      unsigned n, uint32_t flags, const struct ic_layer *layer)
{
	const char *name = ic_filter_op_names[op];

	if (flags & ~next_flags_ok[op]) {
		ic_log(IC_LOG_ERR, "%s: %s with unknown flags 0x%x", next->caller, name, flags);
		return -EINVAL;
	}
	if (op == IC_OP_FLUSH) {
		if (!layer) {
			ic_log(IC_LOG_ERR, "%s: flush without a layer", next->caller);
			return -EINVAL;
		}
		return 0;
	}
	if (!segs || n == 0 || n > IC_MAX_SEGS) {
		ic_log(IC_LOG_ERR, "%s: %s of %u segments at %p (1 to %d)", next->caller, name, n,
		       (const void *)segs, IC_MAX_SEGS);
		return -EINVAL;
	}
	for (unsigned i = 0; i < n; i++) {
		const struct ic_seg *s = &segs[i];

		if (!s->layer || s->len == 0 || s->off > s->layer->size ||
		    s->len > s->layer->size - s->off) {
			ic_log(IC_LOG_ERR, "%s: %s segment %u (off %llu, len %u) outside disk %llu",
			       next->caller, name, i, (unsigned long long)s->off, s->len,
			       s->layer ? (unsigned long long)s->layer->disk_id : 0ull);
			return -EINVAL;
		}
		if ((op == IC_OP_PREAD || op == IC_OP_PWRITE) && !s->buf) {
			ic_log(IC_LOG_ERR, "%s: %s segment %u without a buffer", next->caller, name,
			       i);
			return -EINVAL;
		}
	}
	return 0;
}

NEXT_INLINE int
next_dispatch(const struct stack_hop *h, enum ic_filter_op op, struct ic_seg *segs, unsigned n,
	      uint32_t flags, const struct ic_layer *layer)
{
	switch (op) {
	case IC_OP_PREAD:
	case IC_OP_PWRITE:
	case IC_OP_TRIM:
	case IC_OP_ZERO:
		return ((stack_data_fn)h->fn)(h->below, h->inst, segs, n, flags);
	case IC_OP_CACHE:
		return ((stack_cache_fn)h->fn)(h->below, h->inst, segs, n);
	case IC_OP_FLUSH:
		return ((stack_flush_fn)h->fn)(h->below, h->inst, layer);
	default:
		return -EINVAL;
	}
}

/* The contract on the way down; a violation names the caller, once. */
NEXT_INLINE int
next_check(const struct ic_next *next, enum ic_filter_op op, const struct ic_seg *segs, unsigned n,
	   uint32_t flags, const struct ic_layer *layer)
{
	int rc = next_contract(next, op, segs, n, flags, layer);

	if (rc < 0)
		next_error_logged = true;
	return rc;
}

/* A result from filter `who`: 0 or -errno, logged once on the way up.
 * A read asked not to wait that would have (-EAGAIN) is no failure. */
NEXT_INLINE int
next_result(const char *who, enum ic_filter_op op, int rc, uint32_t flags,
	    const struct ic_seg *segs, const struct ic_layer *layer)
{
	const struct ic_layer *l;

	if (rc == 0 || (rc == -EAGAIN && (flags & (IC_REQ_NOWAIT | IC_REQ_PIPE))))
		return rc;
	if (rc > 0 || rc < -NEXT_MAX_ERRNO) {
		ic_log(IC_LOG_ERR, "filter %s: %s returned %d, not 0 or -errno", who,
		       ic_filter_op_names[op], rc);
		next_error_logged = true;
		return -EIO;
	}
	if (!next_error_logged) {
		l = segs ? segs[0].layer : layer;
		ic_log(IC_LOG_ERR, "filter %s: %s on disk %llu (off %llu, len %u): %s", who,
		       ic_filter_op_names[op], (unsigned long long)l->disk_id,
		       segs ? (unsigned long long)segs[0].off : 0ull, segs ? segs[0].len : 0,
		       strerror(-rc));
		next_error_logged = true;
	}
	return rc;
}

/* FUA without IC_CAP_FUA below: the write, then a flush of each layer. */
static int
next_fua_flush(struct ic_next *next, const struct ic_seg *segs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		unsigned j = 0;
		int rc;

		while (j < i && segs[j].layer != segs[i].layer)
			j++;
		if (j < i)
			continue; /* flushed already */
		rc = ic_filter_next_op(next, IC_OP_FLUSH, NULL, 0, 0, segs[i].layer);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Zero without IC_CAP_ZERO below: write zeroes, IC_MAX_SEGS pieces at a time. */
static int
next_zero_by_writes(struct ic_next *next, const struct ic_seg *segs, unsigned n, uint32_t flags)
{
	struct ic_seg w[IC_MAX_SEGS];
	unsigned k = 0;
	int rc;

	for (unsigned i = 0; i < n; i++) {
		for (uint64_t done = 0; done < segs[i].len;) {
			uint32_t len = segs[i].len - (uint32_t)done;

			if (len > sizeof(next_zeroes))
				len = sizeof(next_zeroes);
			w[k++] =
			    (struct ic_seg){ segs[i].layer, segs[i].off + done, len, next_zeroes };
			done += len;
			if (k < IC_MAX_SEGS)
				continue;
			rc = ic_filter_next_op(next, IC_OP_PWRITE, w, k, flags, NULL);
			if (rc < 0)
				return rc;
			k = 0;
		}
	}
	return k ? ic_filter_next_op(next, IC_OP_PWRITE, w, k, flags, NULL) : 0;
}

NEXT_INLINE int
next_op(struct ic_next *next, enum ic_filter_op op, struct ic_seg *segs, unsigned n, uint32_t flags,
	const struct ic_layer *layer)
{
	const struct stack_hop *h;
	int rc;

	if (!next || !next->hop[op].f) {
		ic_log(IC_LOG_ERR, "%s: %s called below the bottom of the stack",
		       next ? next->caller : "filter", ic_filter_op_names[op]);
		return -EINVAL;
	}
	rc = next_check(next, op, segs, n, flags, layer);
	if (rc < 0)
		return rc;
	if ((op == IC_OP_TRIM && !(next->caps & IC_CAP_TRIM)) ||
	    (op == IC_OP_CACHE && !(next->caps & IC_CAP_CACHE)))
		return 0;
	if (op == IC_OP_ZERO && !(next->caps & IC_CAP_ZERO))
		return next_zero_by_writes(next, segs, n, flags);
	h = &next->hop[op];
	if ((flags & IC_REQ_FUA) && !(next->caps & IC_CAP_FUA)) {
		rc = next_result(h->f->ops.name, op,
				 next_dispatch(h, op, segs, n, flags & ~IC_REQ_FUA, NULL), flags,
				 segs, NULL);
		return rc < 0 ? rc : next_fua_flush(next, segs, n);
	}
	if (!atomic_load_explicit(&next_check_results, memory_order_relaxed))
		return next_dispatch(h, op, segs, n, flags, layer); /* a tail call */
	return next_result(h->f->ops.name, op, next_dispatch(h, op, segs, n, flags, layer), flags,
			   segs, layer);
}

void
ic_filter_check_results(bool on)
{
	atomic_store_explicit(&next_check_results, on, memory_order_relaxed);
}

int
ic_filter_next_done(enum ic_filter_op op, int rc, uint32_t flags, const struct ic_seg *segs,
		    const struct ic_layer *layer)
{
	if (rc == 0 || atomic_load_explicit(&next_check_results, memory_order_relaxed))
		return rc;
	return next_result("(one of the stack; per-hop result checks are off)", op, rc, flags,
			   segs, layer);
}

int
ic_filter_next_op(struct ic_next *next, enum ic_filter_op op, struct ic_seg *segs, unsigned n,
		  uint32_t flags, const struct ic_layer *layer)
{
	return next_op(next, op, segs, n, flags, layer);
}

uint32_t
ic_next_caps(struct ic_next *next)
{
	return next ? next->caps : 0;
}

int
ic_next_pread(struct ic_next *next, struct ic_seg *segs, unsigned n, uint32_t flags)
{
	return next_op(next, IC_OP_PREAD, segs, n, flags, NULL);
}

int
ic_next_pwrite(struct ic_next *next, struct ic_seg *segs, unsigned n, uint32_t flags)
{
	return next_op(next, IC_OP_PWRITE, segs, n, flags, NULL);
}

int
ic_next_trim(struct ic_next *next, struct ic_seg *segs, unsigned n, uint32_t flags)
{
	return next_op(next, IC_OP_TRIM, segs, n, flags, NULL);
}

int
ic_next_zero(struct ic_next *next, struct ic_seg *segs, unsigned n, uint32_t flags)
{
	return next_op(next, IC_OP_ZERO, segs, n, flags, NULL);
}

int
ic_next_cache(struct ic_next *next, struct ic_seg *segs, unsigned n)
{
	return next_op(next, IC_OP_CACHE, segs, n, 0, NULL);
}

int
ic_next_flush(struct ic_next *next, const struct ic_layer *layer)
{
	return next_op(next, IC_OP_FLUSH, NULL, 0, 0, layer);
}
