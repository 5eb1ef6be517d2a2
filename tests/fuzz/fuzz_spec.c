/* libFuzzer target: filter spec strings, as `isocache-admin filter add` and
 * --filter pass them: ic_stack_add on a stack over a bottom that does
 * nothing, then the stack's report and the removal of what was added. The
 * first byte picks the position (top, just above the bottom, or second);
 * the rest is the spec. A layer is open throughout, so the new filters
 * open it when added and close it when removed. No I/O goes down the stack: a spec may ask for an
 * hour of delay or a daemon socket anywhere, which is its right. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "isocache/filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t
fz_caps(struct ic_next *next, void *inst)
{
	(void)next;
	(void)inst;
	return IC_CAP_TRIM | IC_CAP_ZERO | IC_CAP_FUA | IC_CAP_CACHE;
}

static int
fz_io(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n, uint32_t flags)
{
	(void)next;
	(void)inst;
	(void)segs;
	(void)n;
	(void)flags;
	return 0;
}

static int
fz_cache(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n)
{
	return fz_io(next, inst, segs, n, 0);
}

static int
fz_flush(struct ic_next *next, void *inst, const struct ic_layer *layer)
{
	(void)next;
	(void)inst;
	(void)layer;
	return 0;
}

static const struct ic_filter_ops fz_bottom = {
	IC_FILTER_OPS_INIT,
	.name = "fuzz-bottom",
	.caps = fz_caps,
	.pread = fz_io,
	.pwrite = fz_io,
	.trim = fz_io,
	.zero = fz_io,
	.cache = fz_cache,
	.flush = fz_flush,
};

/* The name of the first filter in spec: up to its ':' or ','. */
static void
fz_first_name(const char *spec, char *name, size_t cap)
{
	size_t len = strcspn(spec, ":,");

	if (len >= cap)
		len = cap - 1;
	memcpy(name, spec, len);
	name[len] = '\0';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int pos[] = { 0, -1, 1 };
	static const struct ic_layer layer = { .disk_id = 1, .fd = -1, .direct_fd = -1,
					       .size = 1 << 20 };
	static char report[1 << 16];
	struct ic_stack *stack;
	char name[64];
	char *spec;

	if (size < 1)
		return 0;
	ic_log_level = IC_LOG_ERR;
	spec = strndup((const char *)data + 1, size - 1);
	if (!spec || ic_stack_new(&fz_bottom, NULL, &stack) < 0 || ic_stack_open(stack, &layer) < 0)
		abort();
	if (ic_stack_add(stack, spec, pos[data[0] % 3]) == 0) {
		if (ic_stack_report(stack, report, sizeof(report)) < 0)
			abort();
		fz_first_name(spec, name, sizeof(name));
		if (ic_stack_remove(stack, name) < 0)
			abort();
	}
	ic_stack_close(stack, &layer);
	ic_stack_free(stack);
	free(spec);
	return 0;
}
