/* Progress of isocache-admin's long work (import, export, flatten, resize,
 * the merge of rm, cache warm), one operation at a time: a bar on stderr
 * like qemu-img convert -p ("    (42.00/100%)", redrawn in place) when -p
 * is given and stderr is a terminal, and JSON lines on stdout with --json,
 * for scripts. Both are drawn at most every ADMIN_PROGRESS_MS, so a fast
 * loop costs a clock read per step, not a write; the start and the end are
 * always drawn. */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "common/clock.h"
#include "common/json.h"

/* Five updates a second: the bar looks alive, and a script reading the
 * lines is never flooded (a 1 MiB chunk can take a millisecond). */
#define ADMIN_PROGRESS_MS 200

static struct {
	bool bar;           /* drawing on stderr */
	bool json;          /* writing lines on stdout */
	bool bar_drawn;     /* the cursor sits after a bar: end with a newline */
	uint64_t total, done;
	int64_t start_ms, last_ms;
} admin_prog;

static double
progress_percent(void)
{
	return admin_prog.total ? 100.0 * (double)admin_prog.done / (double)admin_prog.total : 100.0;
}

/* One JSON line on stdout: {"event":EVENT,"done":N,"total":M,"percent":P},
 * and how long the work took on the last one. Flushed, so a script sees it
 * as it happens. */
static void
progress_json(const char *event, bool last)
{
	struct json_object *o = json_object_new_object();
	char line[256], pct[16];
	double p = progress_percent();

	if (o) {
		json_object_object_add(o, "event", json_object_new_string(event));
		ic_json_add_u64(o, "done", admin_prog.done);
		ic_json_add_u64(o, "total", admin_prog.total);
		snprintf(pct, sizeof(pct), "%.2f", p);
		json_object_object_add(o, "percent", json_object_new_double_s(p, pct));
		if (last)
			ic_json_add_u64(o, "elapsed_ms",
					(uint64_t)(ic_now_ms() - admin_prog.start_ms));
	}
	if (ic_json_emit(o, line, sizeof(line)) < 0) {
		admin_fail("progress", "out of memory");
		return;
	}
	printf("%s\n", line);
	fflush(stdout);
}

static void
progress_draw(void)
{
	if (admin_prog.bar) {
		fprintf(stderr, "\r    (%.2f/100%%)", progress_percent());
		admin_prog.bar_drawn = true;
	}
	if (admin_prog.json)
		progress_json("progress", false);
	admin_prog.last_ms = ic_now_ms();
}

void
admin_progress_begin(const struct admin_opts *opts, uint64_t total)
{
	admin_prog.bar = opts->progress && isatty(STDERR_FILENO);
	admin_prog.json = opts->json;
	admin_prog.bar_drawn = false;
	admin_prog.total = total;
	admin_prog.done = 0;
	admin_prog.start_ms = ic_now_ms();
	admin_prog.last_ms = 0;
	if ((admin_prog.bar || admin_prog.json) && total)
		progress_draw();
}

void
admin_progress_advance(uint64_t n)
{
	if (!admin_prog.bar && !admin_prog.json)
		return;
	admin_prog.done = admin_prog.done + n < admin_prog.total ? admin_prog.done + n
								  : admin_prog.total;
	if (ic_now_ms() - admin_prog.last_ms >= ADMIN_PROGRESS_MS)
		progress_draw();
}

void
admin_progress_fn(void *arg, uint64_t done, uint64_t total)
{
	(void)arg;
	if (!admin_prog.total)
		admin_prog.total = total; /* the library's count: begin could not know it */
	if (done > admin_prog.done)
		admin_progress_advance(done - admin_prog.done);
}

int
admin_progress_end(int rc)
{
	if (rc == 0)
		admin_prog.done = admin_prog.total;
	if (admin_prog.bar) {
		if (rc == 0)
			fprintf(stderr, "\r    (%.2f/100%%)", progress_percent());
		if (rc == 0 || admin_prog.bar_drawn)
			fputc('\n', stderr);
	}
	if (admin_prog.json)
		progress_json(rc == 0 ? "done" : "failed", true);
	admin_prog.bar = admin_prog.json = admin_prog.bar_drawn = false;
	return rc;
}

void
admin_progress_break(void)
{
	if (admin_prog.bar_drawn)
		fputc('\n', stderr);
	admin_prog.bar_drawn = false;
}
