/* isocache-admin stats NAME and filter: a live process's STATS reply and
 * its filter stack (JSON, built by the control socket from each filter's
 * report) shown as tables. The stats filter's per-layer, per-operation
 * counters get a table of their own; other filters' reports are shown as
 * key=value in the stack's REPORT column. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/json.h"
#include "common/size.h"

/* "key=value" for each scalar member of an object, space-separated. */
static const char *
table_scalars(const struct json_doc *d, const struct json_node *obj, char *buf, size_t cap)
{
	size_t n = 0;

	buf[0] = '\0';
	for (const struct json_node *c = json_first(d, obj); c && n < cap; c = json_next(d, c)) {
		const char *sep = n ? " " : "";

		if (c->type == JSON_STRING)
			n += (size_t)snprintf(buf + n, cap - n, "%s%.*s=%.*s", sep, (int)c->key_len,
					      c->key, (int)c->len, c->str);
		else if (c->type == JSON_NUMBER)
			n += (size_t)snprintf(buf + n, cap - n, "%s%.*s=%.0f", sep, (int)c->key_len,
					      c->key, c->num);
		else if (c->type == JSON_BOOL)
			n += (size_t)snprintf(buf + n, cap - n, "%s%.*s=%s", sep, (int)c->key_len,
					      c->key, c->num ? "yes" : "no");
	}
	return buf;
}

/* Member key of obj as text ("-" when missing). */
static const char *
table_member(const struct json_doc *d, const struct json_node *obj, const char *key, char *buf,
	     size_t cap)
{
	const struct json_node *m = json_get(d, obj, key);

	if (!m)
		snprintf(buf, cap, "-");
	else if (m->type == JSON_STRING)
		snprintf(buf, cap, "%.*s", (int)m->len, m->str);
	else if (m->type == JSON_BOOL)
		snprintf(buf, cap, "%s", m->num ? "yes" : "no");
	else
		snprintf(buf, cap, "%.0f", m->num);
	return buf;
}

/* The upper bound of the log2 latency bucket holding quantile q, in ns. */
static double
table_quantile(const struct json_doc *d, const struct json_node *buckets, double q)
{
	double total = 0, seen = 0;
	int i = 0;

	for (const struct json_node *b = json_first(d, buckets); b; b = json_next(d, b))
		total += b->num;
	for (const struct json_node *b = json_first(d, buckets); b; b = json_next(d, b), i++) {
		seen += b->num;
		if (total > 0 && seen >= q * total)
			return (double)(2ull << i);
	}
	return 0;
}

static const char *
table_ns(double ns, char *buf, size_t cap)
{
	if (ns == 0)
		snprintf(buf, cap, "-");
	else if (ns < 1e3)
		snprintf(buf, cap, "<%.0f ns", ns);
	else if (ns < 1e6)
		snprintf(buf, cap, "<%.0f us", ns / 1e3);
	else
		snprintf(buf, cap, "<%.0f ms", ns / 1e6);
	return buf;
}

static int
table_stats_filter(FILE *out, const struct json_doc *d, const struct json_node *report)
{
	static const char *const ops[] = { "pread", "pwrite", "trim", "zero", "cache", "flush" };
	struct admin_table *t = admin_table_new(7, "llrrrrr", "LAYER", "OP", "COUNT", "BYTES",
						"ERRORS", "LAT p50", "LAT p99");
	char layer[32], count[32], bytes[32], errors[32], p50[32], p99[32];
	int rc;

	for (const struct json_node *l = json_first(d, json_get(d, report, "layers")); t && l;
	     l = json_next(d, l)) {
		table_member(d, l, "disk_id", layer, sizeof(layer));
		for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
			const struct json_node *o = json_get(d, l, ops[i]), *n;
			const struct json_node *lat = json_get(d, o, "latency_ns_log2");

			if (!o)
				continue;
			n = json_get(d, o, "bytes");
			admin_table_row(t, layer, ops[i], table_member(d, o, "count", count, sizeof(count)),
					ic_size_format(n ? (uint64_t)n->num : 0, bytes, sizeof(bytes)),
					table_member(d, o, "errors", errors, sizeof(errors)),
					table_ns(table_quantile(d, lat, 0.5), p50, sizeof(p50)),
					table_ns(table_quantile(d, lat, 0.99), p99, sizeof(p99)));
		}
	}
	rc = admin_table_print(t, out, "  ");
	admin_table_free(t);
	return rc;
}

/* The filter stack (ic_stack_report's array), top first, then the stats
 * filters' counters. */
static int
table_stack(FILE *out, const struct json_doc *d, const struct json_node *stack)
{
	struct admin_table *t = admin_table_new(4, "rlll", "POS", "FILTER", "SPEC", "REPORT");
	char pos[16], name[64], spec[256], report[1024];
	const struct json_node *f;
	int i = 0, rc;

	for (f = json_first(d, stack); t && f; f = json_next(d, f), i++) {
		const struct json_node *bottom = json_get(d, f, "bottom");

		snprintf(pos, sizeof(pos), "%d", i);
		if (bottom && bottom->num)
			snprintf(pos, sizeof(pos), "-");
		admin_table_row(t, pos, table_member(d, f, "name", name, sizeof(name)),
				bottom && bottom->num ? "(the layer files)"
						      : table_member(d, f, "spec", spec, sizeof(spec)),
				table_scalars(d, json_get(d, f, "report"), report, sizeof(report)));
	}
	rc = admin_table_print(t, out, "");
	admin_table_free(t);
	for (f = json_first(d, stack); rc == 0 && f; f = json_next(d, f)) {
		if (strcmp(table_member(d, f, "name", name, sizeof(name)), "stats") != 0)
			continue;
		fprintf(out, "\nstats filter (%s):\n", table_member(d, f, "spec", spec, sizeof(spec)));
		rc = table_stats_filter(out, d, json_get(d, f, "report"));
	}
	return rc;
}

/* "never", or how long ago the last write was. */
static const char *
table_idle(const struct json_doc *d, const struct json_node *vdisk, char *buf, size_t cap)
{
	const struct json_node *idle = json_get(d, vdisk, "idle_ms");

	if (!idle || idle->num < 0)
		snprintf(buf, cap, "never");
	else if (idle->num < 10000)
		snprintf(buf, cap, "%.0f ms ago", idle->num);
	else
		snprintf(buf, cap, "%.0f s ago", idle->num / 1000);
	return buf;
}

int
admin_stats_table(const char *text, FILE *out)
{
	char pid[32], program[64], policy[32], sock[256], name[300], owned[8], gen[32], idle[32];
	const struct json_node *root, *v;
	struct admin_table *t;
	struct json_doc d;
	int rc;

	if (json_parse(text, &d))
		return -EINVAL;
	root = &d.nodes[0];
	t = admin_table_new(4, "rlll", "PID", "PROGRAM", "POLICY", "CONTROL SOCKET");
	if (t)
		admin_table_row(t, table_member(&d, root, "pid", pid, sizeof(pid)),
				table_member(&d, root, "program", program, sizeof(program)),
				table_member(&d, root, "policy", policy, sizeof(policy)),
				table_member(&d, root, "socket", sock, sizeof(sock)));
	rc = admin_table_print(t, out, "");
	admin_table_free(t);
	t = admin_table_new(4, "llrl", "VDISK", "OWNED", "GENERATION", "LAST WRITE");
	for (v = json_first(&d, json_get(&d, root, "vdisks")); t && v; v = json_next(&d, v))
		admin_table_row(t, table_member(&d, v, "name", name, sizeof(name)),
				table_member(&d, v, "owned", owned, sizeof(owned)),
				table_member(&d, v, "generation", gen, sizeof(gen)),
				table_idle(&d, v, idle, sizeof(idle)));
	fputc('\n', out);
	if (rc == 0)
		rc = admin_table_print(t, out, "");
	admin_table_free(t);
	fprintf(out, "\nfilter stack, top first:\n");
	if (rc == 0)
		rc = table_stack(out, &d, json_get(&d, root, "stack"));
	json_free(&d);
	return rc;
}

int
admin_filter_table(const char *text, FILE *out)
{
	struct json_doc d;
	int rc;

	if (json_parse(text, &d))
		return -EINVAL;
	rc = d.nodes[0].type == JSON_ARRAY ? table_stack(out, &d, &d.nodes[0]) : -EINVAL;
	json_free(&d);
	return rc;
}
