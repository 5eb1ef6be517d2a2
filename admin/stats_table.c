/* isocache-admin stats NAME: a live process's STATS reply (JSON, built by
 * the control socket from each filter's report) shown as tables. The stats
 * filter's per-layer, per-operation counters get a table of their own;
 * other filters' reports are shown as key=value lines. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/json.h"
#include "common/size.h"

/* "key=value" for each scalar member of an object, on one line. */
static void
table_scalars(FILE *out, const struct json_doc *d, const struct json_node *obj)
{
	for (const struct json_node *c = json_first(d, obj); c; c = json_next(d, c)) {
		switch (c->type) {
		case JSON_STRING:
			fprintf(out, " %.*s=%.*s", (int)c->key_len, c->key, (int)c->len, c->str);
			break;
		case JSON_NUMBER:
			fprintf(out, " %.*s=%.0f", (int)c->key_len, c->key, c->num);
			break;
		case JSON_BOOL:
			fprintf(out, " %.*s=%s", (int)c->key_len, c->key, c->num ? "yes" : "no");
			break;
		default:
			break;
		}
	}
	fputc('\n', out);
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

static void
table_stats_filter(FILE *out, const struct json_doc *d, const struct json_node *report)
{
	static const char *const ops[] = { "pread", "pwrite", "trim", "zero", "cache", "flush" };
	char bytes[32], p50[32], p99[32];

	fprintf(out, "  %-8s %-7s %10s %10s %7s %10s %10s\n", "LAYER", "OP", "COUNT", "BYTES",
		"ERRORS", "LAT p50", "LAT p99");
	for (const struct json_node *l = json_first(d, json_get(d, report, "layers")); l;
	     l = json_next(d, l)) {
		const struct json_node *id = json_get(d, l, "disk_id");

		for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
			const struct json_node *o = json_get(d, l, ops[i]), *n;
			const struct json_node *lat = json_get(d, o, "latency_ns_log2");

			if (!o)
				continue;
			n = json_get(d, o, "bytes");
			ic_size_format(n ? (uint64_t)n->num : 0, bytes, sizeof(bytes));
			fprintf(out, "  %-8.0f %-7s %10.0f %10s %7.0f %10s %10s\n", id ? id->num : -1,
				ops[i], json_get(d, o, "count") ? json_get(d, o, "count")->num : 0,
				bytes, json_get(d, o, "errors") ? json_get(d, o, "errors")->num : 0,
				table_ns(table_quantile(d, lat, 0.5), p50, sizeof(p50)),
				table_ns(table_quantile(d, lat, 0.99), p99, sizeof(p99)));
		}
	}
}

int
admin_stats_table(const char *text, FILE *out)
{
	const struct json_node *root, *f, *name;
	struct json_doc d;

	if (json_parse(text, &d))
		return -EINVAL;
	root = &d.nodes[0];
	fprintf(out, "process");
	table_scalars(out, &d, root);
	for (f = json_first(&d, json_get(&d, root, "vdisks")); f; f = json_next(&d, f)) {
		fprintf(out, "vdisk:");
		table_scalars(out, &d, f);
	}
	fprintf(out, "\nfilter stack, top first:\n");
	for (f = json_first(&d, json_get(&d, root, "stack")); f; f = json_next(&d, f)) {
		const struct json_node *report = json_get(&d, f, "report");

		name = json_get(&d, f, "name");
		if (!name)
			continue;
		fprintf(out, "%.*s:", (int)name->len, name->str);
		if (name->len == 5 && memcmp(name->str, "stats", 5) == 0) {
			fputc('\n', out);
			table_stats_filter(out, &d, report);
		} else {
			table_scalars(out, &d, report);
		}
	}
	json_free(&d);
	return 0;
}
