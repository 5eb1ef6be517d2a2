/* The stack: pass-through, ordering, capabilities, ops-table size and
 * version, spec errors (and their capture for a client), contract checks,
 * open/close (a layer that moved included) and reports. */
#include "test_filter_fixture.h"

#include <pthread.h>

#include "common/log.h"

/* ---- test filters ---- */

static const struct ic_filter_ops nop_ops = { IC_FILTER_OPS_INIT, .name = "nop" };

/* trace:tag=X appends X to trace_buf on every pread. */
static char trace_buf[64];

static int
trace_create(const char *params, void **inst)
{
	if (strncmp(params, "tag=", 4) != 0 || strlen(params) != 5)
		return -EINVAL;
	*inst = (void *)(uintptr_t)params[4];
	return 0;
}

static int
trace_pread(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n, uint32_t flags)
{
	size_t len = strlen(trace_buf);

	if (len + 1 < sizeof(trace_buf)) {
		trace_buf[len] = (char)(uintptr_t)inst;
		trace_buf[len + 1] = '\0';
	}
	return ic_next_pread(next, segs, n, flags);
}

static const struct ic_filter_ops trace_ops = {
	IC_FILTER_OPS_INIT,
	.name = "trace",
	.create = trace_create,
	.pread = trace_pread,
};

/* nocaps: suppresses trim, zero and FUA for everything above it. */
static uint32_t
nocaps_caps(struct ic_next *next, void *inst)
{
	(void)inst;
	return ic_next_caps(next) & ~(IC_CAP_TRIM | IC_CAP_ZERO | IC_CAP_FUA);
}

static const struct ic_filter_ops nocaps_ops = {
	IC_FILTER_OPS_INIT,
	.name = "nocaps",
	.caps = nocaps_caps,
};

/* emucache: acts on cache() hints although the bottom does not. */
static _Atomic unsigned emucache_calls;

static uint32_t
emucache_caps(struct ic_next *next, void *inst)
{
	(void)inst;
	return ic_next_caps(next) | IC_CAP_CACHE;
}

static int
emucache_cache(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n)
{
	(void)next;
	(void)inst;
	(void)segs;
	(void)n;
	emucache_calls++;
	return 0;
}

static const struct ic_filter_ops emucache_ops = {
	IC_FILTER_OPS_INIT,
	.name = "emucache",
	.caps = emucache_caps,
	.cache = emucache_cache,
};

/* liar: breaks the contract, pread returns a byte count, pwrite sends a
 * segment past the end of the layer down. */
static int
liar_pread(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n, uint32_t flags)
{
	int rc = ic_next_pread(next, segs, n, flags);

	(void)inst;
	return rc < 0 ? rc : (int)segs[0].len;
}

static int
liar_pwrite(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n, uint32_t flags)
{
	struct ic_seg bad = segs[0];

	(void)inst;
	(void)n;
	bad.off = bad.layer->size - bad.len + 1;
	return ic_next_pwrite(next, &bad, 1, flags);
}

static const struct ic_filter_ops liar_ops = {
	IC_FILTER_OPS_INIT,
	.name = "liar",
	.pread = liar_pread,
	.pwrite = liar_pwrite,
};

/* An ops table from an older header: it ends before pread, so the pread
 * pointer that follows in memory must never be called. */
static int
old_pread(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n, uint32_t flags)
{
	(void)next;
	(void)inst;
	(void)segs;
	(void)n;
	(void)flags;
	fail_msg("an op beyond the table's size was called");
	return -EIO;
}

static const struct ic_filter_ops old_ops = {
	.size = offsetof(struct ic_filter_ops, pread),
	.abi_version = IC_FILTER_ABI_VERSION,
	.name = "old",
	.pread = old_pread,
};

/* opens: counts layers open in it. */
static _Atomic int opens_open;

static int
opens_open_fn(struct ic_next *next, void *inst, const struct ic_layer *layer)
{
	(void)next;
	(void)inst;
	(void)layer;
	opens_open++;
	return 0;
}

static void
opens_close_fn(struct ic_next *next, void *inst, const struct ic_layer *layer)
{
	(void)next;
	(void)inst;
	(void)layer;
	opens_open--;
}

static const struct ic_filter_ops opens_ops = {
	IC_FILTER_OPS_INIT,
	.name = "opens",
	.open = opens_open_fn,
	.close = opens_close_fn,
};

/* ---- tests ---- */

static void
test_passthrough_empty_and_nop(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[8192], back[8192];
	struct ic_seg w = { &fx->layer[1], 12288, sizeof(buf), buf };
	struct ic_seg r = { &fx->layer[1], 12288, sizeof(back), back };

	assert_int_equal(fx_read(fx, 0, 4096, 8192, buf), 0);
	assert_true(fx_intact(buf, 4096, 8192));
	assert_int_equal(ic_stack_add(fx->stack, "nop,nop,nop", 0), 0);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(fx_read(fx, 0, 1000, 5000, buf), 0);
	assert_true(fx_intact(buf, 1000, 5000));
	memset(buf, 0xab, sizeof(buf));
	assert_int_equal(ic_stack_pwrite(fx->stack, &w, 1, 0), 0);
	assert_int_equal(ic_stack_pread(fx->stack, &r, 1, 0), 0);
	assert_memory_equal(buf, back, sizeof(buf));
	assert_int_equal(fx->bottom.pread, 3);
	assert_int_equal(fx->bottom.pwrite, 1);
	assert_int_equal(ic_stack_flush(fx->stack, &fx->layer[1]), 0);
	assert_int_equal(fx->bottom.flush, 1);
}

static void
test_several_segments(void **state)
{
	struct fx *fx = *state;
	static uint8_t bufs[IC_MAX_SEGS][512];
	struct ic_seg segs[IC_MAX_SEGS];

	for (unsigned i = 0; i < IC_MAX_SEGS; i++)
		segs[i] = (struct ic_seg){ &fx->layer[i % 2], i * 65536 + 17, 512, bufs[i] };
	assert_int_equal(ic_stack_add(fx->stack, "nop", 0), 0);
	assert_int_equal(ic_stack_pread(fx->stack, segs, IC_MAX_SEGS, 0), 0);
	for (unsigned i = 0; i < IC_MAX_SEGS; i++)
		assert_true(fx_intact(bufs[i], i * 65536 + 17, 512));
	assert_int_equal(fx->bottom.segs_read, IC_MAX_SEGS);
}

static void
test_order_top_first(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[512];

	assert_int_equal(ic_stack_add(fx->stack, "trace:tag=a,trace:tag=b", 0), 0);
	trace_buf[0] = '\0';
	assert_int_equal(fx_read(fx, 0, 0, 512, buf), 0);
	assert_string_equal(trace_buf, "ab");

	assert_int_equal(ic_stack_add(fx->stack, "trace:tag=c", 1), 0);
	assert_int_equal(ic_stack_add(fx->stack, "trace:tag=d", -1), 0);
	assert_int_equal(ic_stack_add(fx->stack, "trace:tag=e", 0), 0);
	trace_buf[0] = '\0';
	assert_int_equal(fx_read(fx, 0, 0, 512, buf), 0);
	assert_string_equal(trace_buf, "eacbd");

	/* remove takes the topmost filter of that name */
	assert_int_equal(ic_stack_remove(fx->stack, "trace"), 0);
	assert_int_equal(ic_stack_remove(fx->stack, "trace"), 0);
	trace_buf[0] = '\0';
	assert_int_equal(fx_read(fx, 0, 0, 512, buf), 0);
	assert_string_equal(trace_buf, "cbd");
	assert_int_equal(ic_stack_remove(fx->stack, "nosuch"), -ENOENT);
	assert_int_equal(ic_stack_add(fx->stack, "nop", 5), -EINVAL);
	assert_int_equal(ic_stack_add(fx->stack, "nop", -2), -EINVAL);
}

static void
test_caps_suppress(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[4096], back[4096];
	struct ic_seg seg = { &fx->layer[0], 65536, sizeof(buf), buf };
	struct ic_seg z = { &fx->layer[0], 131072, 100000, NULL };

	assert_int_equal(ic_stack_caps(fx->stack), fx->bottom.caps);
	assert_int_equal(ic_stack_add(fx->stack, "nocaps", 0), 0);
	assert_int_equal(ic_stack_caps(fx->stack), IC_CAP_CACHE);

	/* trim is advisory: it succeeds and never reaches the bottom */
	assert_int_equal(ic_stack_trim(fx->stack, &seg, 1, 0), 0);
	assert_int_equal(fx->bottom.trim, 0);
	assert_int_equal(fx_read(fx, 0, 65536, 4096, back), 0);
	assert_true(fx_intact(back, 65536, 4096));

	/* zero becomes writes of zeroes */
	assert_int_equal(ic_stack_zero(fx->stack, &z, 1, 0), 0);
	assert_int_equal(fx->bottom.zero, 0);
	assert_int_equal(fx->bottom.pwrite, 1);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(fx_read(fx, 0, 131072 + 100000 - 4096, 4096, back), 0);
	assert_memory_equal(buf, back, 4096);
	assert_int_equal(fx_read(fx, 0, 131072 + 100000, 4096, back), 0);
	assert_true(fx_intact(back, 131072 + 100000, 4096));

	/* FUA becomes a write, then a flush */
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(ic_stack_pwrite(fx->stack, &seg, 1, IC_REQ_FUA), 0);
	assert_int_equal(fx->bottom.pwrite_fua, 0);
	assert_int_equal(fx->bottom.flush, 1);

	/* without the filter, every op goes down natively */
	assert_int_equal(ic_stack_remove(fx->stack, "nocaps"), 0);
	assert_int_equal(ic_stack_pwrite(fx->stack, &seg, 1, IC_REQ_FUA), 0);
	assert_int_equal(fx->bottom.pwrite_fua, 1);
	assert_int_equal(ic_stack_trim(fx->stack, &seg, 1, 0), 0);
	assert_int_equal(fx->bottom.trim, 1);
	assert_int_equal(ic_stack_zero(fx->stack, &z, 1, 0), 0);
	assert_int_equal(fx->bottom.zero, 1);
}

static void
test_caps_emulate(void **state)
{
	struct fx *fx = *state;
	struct ic_seg seg = { &fx->layer[0], 0, 65536, NULL };

	/* a bottom without CACHE: hints stop at the stack */
	fx->bottom.caps = IC_CAP_TRIM;
	ic_stack_free(fx->stack);
	assert_int_equal(ic_stack_new(&fx_bottom_ops, &fx->bottom, &fx->stack), 0);
	assert_int_equal(ic_stack_cache(fx->stack, &seg, 1), 0);
	assert_int_equal(fx->bottom.cache, 0);

	emucache_calls = 0;
	assert_int_equal(ic_stack_add(fx->stack, "emucache", 0), 0);
	assert_int_equal(ic_stack_caps(fx->stack), IC_CAP_TRIM | IC_CAP_CACHE);
	assert_int_equal(ic_stack_cache(fx->stack, &seg, 1), 0);
	assert_int_equal(emucache_calls, 1);
	assert_int_equal(fx->bottom.cache, 0);
}

static void
test_ops_size_and_version(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[4096];
	struct ic_filter_ops bad = nop_ops;

	/* the old table passes through: pread lies beyond its size */
	assert_int_equal(ic_stack_add(fx->stack, "old", 0), 0);
	assert_int_equal(fx_read(fx, 0, 8192, 4096, buf), 0);
	assert_true(fx_intact(buf, 8192, 4096));
	assert_int_equal(fx->bottom.pread, 1);

	bad.name = "v2";
	bad.abi_version = IC_FILTER_ABI_VERSION + 1;
	assert_int_equal(ic_filter_register(&bad), -EINVAL);
	bad.abi_version = IC_FILTER_ABI_VERSION;
	bad.size = offsetof(struct ic_filter_ops, name);
	assert_int_equal(ic_filter_register(&bad), -EINVAL);
	bad.size = sizeof(bad) + 8;
	assert_int_equal(ic_filter_register(&bad), -EINVAL);
	bad.size = sizeof(bad);
	bad.name = "Bad Name";
	assert_int_equal(ic_filter_register(&bad), -EINVAL);
	assert_int_equal(ic_filter_register(&nop_ops), -EEXIST);
	assert_null(ic_filter_find("v2"));
	assert_non_null(ic_filter_find("stats"));
	assert_non_null(ic_filter_find("old"));
}

/* IC_REQ_NOWAIT reaches only a stack whose every pread honours it; any
 * other answers -EAGAIN at once, calling nothing, counting nothing. */
static void
test_nowait(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[4096];
	struct ic_seg seg = { &fx->layer[0], 8192, 4096, buf };
	const char *report;

	/* The fixture's bottom has a pread and does not honour it. */
	assert_int_equal(ic_stack_pread(fx->stack, &seg, 1, IC_REQ_NOWAIT), -EAGAIN);
	assert_int_equal(fx->bottom.pread, 0);
	/* It is a flag of pread only. */
	assert_int_equal(ic_stack_pwrite(fx->stack, &seg, 1, IC_REQ_NOWAIT), -EINVAL);
	assert_int_equal(fx->bottom.pwrite, 0);

	ic_stack_free(fx->stack);
	assert_int_equal(ic_stack_new(&fx_bottom_nowait_ops, &fx->bottom, &fx->stack), 0);
	assert_int_equal(ic_stack_pread(fx->stack, &seg, 1, IC_REQ_NOWAIT), 0);
	assert_int_equal(fx->bottom.pread, 1);
	assert_int_equal(fx->bottom.pread_flags, IC_REQ_NOWAIT);
	assert_true(fx_intact(buf, 8192, 4096));

	/* Filters that honour it (stats, delay) or have no pread (nop) pass
	 * it down; a read delayed by 0 is not delayed. */
	assert_int_equal(ic_stack_add(fx->stack, "stats,nop,delay:write=1ms", 0), 0);
	assert_int_equal(ic_stack_pread(fx->stack, &seg, 1, IC_REQ_NOWAIT), 0);
	assert_int_equal(fx->bottom.pread, 2);
	assert_int_equal(fx->bottom.pread_flags, IC_REQ_NOWAIT);

	/* The bottom would wait: -EAGAIN all the way up, and stats does not
	 * count the read it will see again. */
	report = strdup(fx_report(fx));
	fx->bottom.nowait_miss = true;
	assert_int_equal(ic_stack_pread(fx->stack, &seg, 1, IC_REQ_NOWAIT), -EAGAIN);
	assert_int_equal(fx->bottom.pread, 3);
	assert_string_equal(fx_report(fx), report);
	assert_int_equal(ic_stack_pread(fx->stack, &seg, 1, 0), 0);
	assert_int_equal(fx->bottom.pread_flags, 0);
	assert_string_not_equal(fx_report(fx), report);
	free((void *)report);
	fx->bottom.nowait_miss = false;

	/* A read delay would sleep: -EAGAIN before anything goes down. */
	assert_int_equal(ic_stack_add(fx->stack, "delay:read=1ms", 0), 0);
	assert_int_equal(ic_stack_pread(fx->stack, &seg, 1, IC_REQ_NOWAIT), -EAGAIN);
	assert_int_equal(fx->bottom.pread, 4);
	assert_int_equal(ic_stack_remove(fx->stack, "delay"), 0);

	/* A filter with a pread that does not honour it shuts it out, and
	 * is not called; without the flag it is. */
	trace_buf[0] = 0;
	assert_int_equal(ic_stack_add(fx->stack, "trace:tag=n", 1), 0);
	assert_int_equal(ic_stack_pread(fx->stack, &seg, 1, IC_REQ_NOWAIT), -EAGAIN);
	assert_string_equal(trace_buf, "");
	assert_int_equal(fx->bottom.pread, 4);
	assert_int_equal(ic_stack_pread(fx->stack, &seg, 1, 0), 0);
	assert_string_equal(trace_buf, "n");
	assert_int_equal(fx->bottom.pread, 5);

	/* Gone again, the stack takes the flag again. */
	assert_int_equal(ic_stack_remove(fx->stack, "trace"), 0);
	assert_int_equal(ic_stack_pread(fx->stack, &seg, 1, IC_REQ_NOWAIT), 0);
	assert_int_equal(fx->bottom.pread, 6);
}

static void
test_spec_errors(void **state)
{
	struct fx *fx = *state;
	static const struct {
		const char *spec;
		int rc;
	} cases[] = {
		{ "", -EINVAL },
		{ ",", -EINVAL },
		{ "nop,", -EINVAL },
		{ ",nop", -EINVAL },
		{ "nop,,nop", -EINVAL },
		{ "nosuch", -ENOENT },
		{ "nop,nosuch", -ENOENT },
		{ "nop:x=1", -EINVAL },
		{ "stats:layers=0", -EINVAL },
		{ "stats:bogus", -EINVAL },
		{ "delay:read=5", -EINVAL },
		{ "delay:read=2ms-1ms", -EINVAL },
		{ "delay:read=1parsec", -EINVAL },
		{ "error:errno=EWHAT", -EINVAL },
		{ "error:rate=2", -EINVAL },
		{ "error:what=1", -EINVAL },
		{ "readahead:window=1", -EINVAL },
		{ "trace:tag=toolong", -EINVAL },
	};
	const char *before = strdup(fx_report(fx));

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("spec \"%s\"\n", cases[i].spec);
		assert_int_equal(ic_stack_add(fx->stack, cases[i].spec, 0), cases[i].rc);
	}
	assert_int_equal(ic_stack_add(fx->stack, NULL, 0), -EINVAL);
	/* a failed add leaves the stack as it was */
	assert_string_equal(fx_report(fx), before);
	free((void *)before);
	assert_int_equal(ic_stack_add(fx->stack,
				      "stats:layers=4,delay:read=1us-2us:write=0,"
				      "error:rate=0:errno=ENOSPC,readahead:window=64K",
				      0),
			 0);
}

static void
test_contract_checks(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[8192];
	struct ic_seg seg = { &fx->layer[0], FX_SIZE - 4096, 8192, buf };

	assert_int_equal(ic_stack_pread(fx->stack, &seg, 1, 0), -EINVAL);
	seg.off = UINT64_MAX - 100;
	assert_int_equal(ic_stack_pread(fx->stack, &seg, 1, 0), -EINVAL);
	seg.off = 0;
	assert_int_equal(ic_stack_pread(fx->stack, &seg, 1, IC_REQ_FUA), -EINVAL);
	assert_int_equal(ic_stack_pwrite(fx->stack, &seg, 1, 0x80), -EINVAL);
	assert_int_equal(ic_stack_pread(fx->stack, &seg, 0, 0), -EINVAL);
	assert_int_equal(ic_stack_pread(fx->stack, &seg, IC_MAX_SEGS + 1, 0), -EINVAL);
	assert_int_equal(ic_stack_pread(fx->stack, NULL, 1, 0), -EINVAL);
	assert_int_equal(ic_stack_flush(fx->stack, NULL), -EINVAL);
	seg.len = 0;
	assert_int_equal(ic_stack_pread(fx->stack, &seg, 1, 0), -EINVAL);
	seg.len = 512;
	seg.buf = NULL;
	assert_int_equal(ic_stack_pread(fx->stack, &seg, 1, 0), -EINVAL);
	seg.layer = NULL;
	assert_int_equal(ic_stack_trim(fx->stack, &seg, 1, 0), -EINVAL);
	assert_int_equal(fx->bottom.pread + fx->bottom.pwrite + fx->bottom.trim, 0);

	/* a filter that breaks the contract is caught at the next hop */
	seg = (struct ic_seg){ &fx->layer[0], 0, 512, buf };
	assert_int_equal(ic_stack_add(fx->stack, "liar,nop", 0), 0);
	assert_int_equal(ic_stack_pread(fx->stack, &seg, 1, 0), -EIO);
	assert_int_equal(ic_stack_pwrite(fx->stack, &seg, 1, 0), -EINVAL);
	assert_int_equal(fx->bottom.pwrite, 0);
}

static void
test_results_checked_at_top(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[512];

	/* with per-hop result checks off, the top still turns a bad result
	 * into -EIO and passes errors and data through */
	assert_int_equal(ic_stack_add(fx->stack, "nop,liar,nop", 0), 0);
	ic_filter_check_results(false);
	assert_int_equal(fx_read(fx, 0, 0, 512, buf), -EIO);
	assert_int_equal(ic_stack_remove(fx->stack, "liar"), 0);
	assert_int_equal(ic_stack_add(fx->stack, "error:read=1:errno=ENOSPC", -1), 0);
	assert_int_equal(fx_read(fx, 0, 0, 512, buf), -ENOSPC);
	assert_int_equal(ic_stack_remove(fx->stack, "error"), 0);
	assert_int_equal(fx_read(fx, 0, 512, 512, buf), 0);
	assert_true(fx_intact(buf, 512, 512));
	ic_filter_check_results(true);
}

static void
test_errors_travel_up(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[512];

	assert_int_equal(
	    ic_stack_add(fx->stack, "nop,trace:tag=x,error:read=1:errno=ENOSPC,nop", 0), 0);
	assert_int_equal(fx_read(fx, 0, 0, 512, buf), -ENOSPC);
	assert_int_equal(fx->bottom.pread, 0);
}

static void
test_open_close_live(void **state)
{
	struct fx *fx = *state;

	opens_open = 0;
	assert_int_equal(ic_stack_add(fx->stack, "opens", 0), 0);
	assert_int_equal(ic_stack_open(fx->stack, &fx->layer[0]), 0);
	assert_int_equal(ic_stack_open(fx->stack, &fx->layer[1]), 0);
	assert_int_equal(opens_open, 2);
	/* a filter added live is opened on the layers already open */
	assert_int_equal(ic_stack_add(fx->stack, "nop,opens", -1), 0);
	assert_int_equal(opens_open, 4);
	ic_stack_close(fx->stack, &fx->layer[0]);
	assert_int_equal(opens_open, 2);
	/* and one removed live is closed on them */
	assert_int_equal(ic_stack_remove(fx->stack, "opens"), 0);
	assert_int_equal(opens_open, 1);
	ic_stack_close(fx->stack, &fx->layer[1]);
	assert_int_equal(opens_open, 0);
}

/* A layer whose struct moves (a live snapshot reallocates the vdisk's
 * array) is closed, and opened by filters added later, at its new address. */
static void
test_layer_moved(void **state)
{
	struct fx *fx = *state;
	struct ic_layer moved = fx->layer[0];

	opens_open = 0;
	assert_int_equal(ic_stack_add(fx->stack, "opens", 0), 0);
	assert_int_equal(ic_stack_open(fx->stack, &fx->layer[0]), 0);
	ic_stack_layer_moved(fx->stack, &fx->layer[0], &moved);
	memset(&fx->layer[0], 0xa5, sizeof(fx->layer[0])); /* as if freed */
	assert_int_equal(ic_stack_add(fx->stack, "opens", 0), 0);
	assert_int_equal(opens_open, 2);
	ic_stack_close(fx->stack, &moved);
	assert_int_equal(opens_open, 0);
	fx->layer[0] = moved;
}

/* The first error the stack logs is what a control-socket client reads. */
static void
test_errors_captured(void **state)
{
	struct fx *fx = *state;
	char why[256];

	ic_log_capture(why, sizeof(why));
	assert_int_equal(ic_stack_add(fx->stack, "nop,bogus", 0), -ENOENT);
	assert_string_equal(why, "filter spec: no filter called \"bogus\"");
	ic_log_capture(why, sizeof(why));
	assert_int_equal(ic_stack_add(fx->stack, "delay:read=abc", 0), -EINVAL);
	assert_non_null(strstr(why, "bad parameter read=abc"));
	ic_log_capture(NULL, 0);
	assert_int_equal(ic_stack_add(fx->stack, "bogus", 0), -ENOENT);
	assert_non_null(strstr(why, "read=abc")); /* no longer captured */
}

static void
test_report(void **state)
{
	struct fx *fx = *state;
	char small[16];
	const char *r;

	assert_int_equal(ic_stack_add(fx->stack, "nop,delay:read=1us", 0), 0);
	r = fx_report(fx);
	assert_non_null(
	    strstr(r, "[{\"name\":\"nop\",\"bottom\":false,\"spec\":\"nop\",\"report\":null}"
		      ",{\"name\":\"delay\",\"bottom\":false,\"spec\":\"delay:read=1us\""));
	assert_non_null(strstr(r, "{\"name\":\"file\",\"bottom\":true"));
	assert_int_equal(ic_stack_report(fx->stack, small, sizeof(small)), -ENOSPC);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_passthrough_empty_and_nop, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_several_segments, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_order_top_first, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_caps_suppress, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_caps_emulate, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_ops_size_and_version, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_nowait, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_spec_errors, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_contract_checks, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_results_checked_at_top, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_errors_travel_up, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_open_close_live, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_layer_moved, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_errors_captured, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_report, fx_setup, fx_teardown),
	};
	const struct ic_filter_ops *mine[] = { &nop_ops,  &trace_ops, &nocaps_ops, &emucache_ops,
					       &liar_ops, &old_ops,   &opens_ops };

	for (size_t i = 0; i < sizeof(mine) / sizeof(mine[0]); i++)
		if (ic_filter_register(mine[i]) != 0)
			return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
