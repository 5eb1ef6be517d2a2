/* isocache-admin stats NAME and filter: a live process's STATS reply and
 * its filter stack (JSON, built by the control socket from each filter's
 * report) shown as tables. The stats filter's per-layer, per-operation
 * counters get a table of their own; other filters' reports are shown as
 * key=value in the stack's REPORT column. */
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/json.h"
#include "common/size.h"

/* "key=value" for each scalar member of an object, space-separated. */
static const char *
table_scalars(struct json_object *obj, char *buf, size_t cap)
{
	size_t n = 0;

	buf[0] = '\0';
	if (!json_object_is_type(obj, json_type_object))
		return buf;
	json_object_object_foreach(obj, key, val) {
		const char *sep = n ? " " : "";

		if (n >= cap)
			break;
		if (json_object_is_type(val, json_type_boolean))
			n += (size_t)snprintf(buf + n, cap - n, "%s%s=%s", sep, key,
					      json_object_get_boolean(val) ? "yes" : "no");
		else if (json_object_is_type(val, json_type_string) ||
			 json_object_is_type(val, json_type_int) ||
			 json_object_is_type(val, json_type_double))
			n += (size_t)snprintf(buf + n, cap - n, "%s%s=%s", sep, key,
					      json_object_get_string(val));
	}
	return buf;
}

/* obj[key], or NULL when obj is not an object or has no such member. */
static struct json_object *
table_get(struct json_object *obj, const char *key)
{
	struct json_object *m = NULL;

	return json_object_object_get_ex(obj, key, &m) ? m : NULL;
}

/* Member key of obj as text ("-" when missing). */
static const char *
table_member(struct json_object *obj, const char *key, char *buf, size_t cap)
{
	struct json_object *m = table_get(obj, key);

	if (!m)
		snprintf(buf, cap, "-");
	else if (json_object_is_type(m, json_type_boolean))
		snprintf(buf, cap, "%s", json_object_get_boolean(m) ? "yes" : "no");
	else
		snprintf(buf, cap, "%s", json_object_get_string(m));
	return buf;
}

/* The upper bound of the log2 latency bucket holding quantile q, in ns. */
static double
table_quantile(struct json_object *buckets, double q)
{
	size_t n = json_object_is_type(buckets, json_type_array)
			   ? json_object_array_length(buckets)
			   : 0;
	double total = 0, seen = 0;

	for (size_t i = 0; i < n; i++)
		total += (double)json_object_get_uint64(json_object_array_get_idx(buckets, i));
	for (size_t i = 0; i < n; i++) {
		seen += (double)json_object_get_uint64(json_object_array_get_idx(buckets, i));
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

/* The elements of a JSON array (none when a is not one). */
#define table_each(a, i, el)                                                                       \
	for (size_t i = 0; json_object_is_type((a), json_type_array) &&                            \
			   i < json_object_array_length(a) &&                                      \
			   ((el) = json_object_array_get_idx((a), i), 1);                          \
	     i++)

static int
table_stats_filter(FILE *out, struct json_object *report)
{
	static const char *const ops[] = { "pread", "pwrite", "trim", "zero", "cache", "flush" };
	struct admin_table *t = admin_table_new(7, "llrrrrr", "LAYER", "OP", "COUNT", "BYTES",
						"ERRORS", "LAT p50", "LAT p99");
	char layer[32], count[32], bytes[32], errors[32], p50[32], p99[32];
	struct json_object *l;
	int rc;

	table_each(table_get(report, "layers"), k, l) {
		if (!t)
			break;
		table_member(l, "disk_id", layer, sizeof(layer));
		for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
			struct json_object *o = table_get(l, ops[i]);
			struct json_object *lat = table_get(o, "latency_ns_log2");

			if (!o)
				continue;
			admin_table_row(t, layer, ops[i], table_member(o, "count", count, sizeof(count)),
					ic_size_format(json_object_get_uint64(table_get(o, "bytes")),
						       bytes, sizeof(bytes)),
					table_member(o, "errors", errors, sizeof(errors)),
					table_ns(table_quantile(lat, 0.5), p50, sizeof(p50)),
					table_ns(table_quantile(lat, 0.99), p99, sizeof(p99)));
		}
	}
	rc = admin_table_print(t, out, "  ");
	admin_table_free(t);
	return rc;
}

/* The filter stack (ic_stack_report's array), top first, then the stats
 * filters' counters. */
static int
table_stack(FILE *out, struct json_object *stack)
{
	struct admin_table *t = admin_table_new(4, "rlll", "POS", "FILTER", "SPEC", "REPORT");
	char pos[16], name[64], spec[256], report[1024];
	struct json_object *f;
	int rc;

	table_each(stack, i, f) {
		bool bottom = json_object_get_boolean(table_get(f, "bottom"));

		if (!t)
			break;
		snprintf(pos, sizeof(pos), bottom ? "-" : "%zu", i);
		admin_table_row(t, pos, table_member(f, "name", name, sizeof(name)),
				bottom ? "(the layer files)" : table_member(f, "spec", spec, sizeof(spec)),
				table_scalars(table_get(f, "report"), report, sizeof(report)));
	}
	rc = admin_table_print(t, out, "");
	admin_table_free(t);
	table_each(stack, i, f) {
		if (rc != 0)
			break;
		if (strcmp(table_member(f, "name", name, sizeof(name)), "stats") != 0)
			continue;
		fprintf(out, "\nstats filter (%s):\n", table_member(f, "spec", spec, sizeof(spec)));
		rc = table_stats_filter(out, table_get(f, "report"));
	}
	return rc;
}

/* "never", or how long ago the last write was. */
static const char *
table_idle(struct json_object *vdisk, char *buf, size_t cap)
{
	struct json_object *idle = table_get(vdisk, "idle_ms");
	double ms = idle ? json_object_get_double(idle) : -1;

	if (ms < 0)
		snprintf(buf, cap, "never");
	else if (ms < 10000)
		snprintf(buf, cap, "%.0f ms ago", ms);
	else
		snprintf(buf, cap, "%.0f s ago", ms / 1000);
	return buf;
}

int
admin_stats_table(const char *text, FILE *out)
{
	char pid[32], program[64], policy[32], sock[256], name[300], owned[8], gen[32], idle[32];
	struct json_object *root = json_tokener_parse(text), *v;
	struct admin_table *t;
	int rc;

	if (!json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return -EINVAL;
	}
	t = admin_table_new(4, "rlll", "PID", "PROGRAM", "POLICY", "CONTROL SOCKET");
	if (t)
		admin_table_row(t, table_member(root, "pid", pid, sizeof(pid)),
				table_member(root, "program", program, sizeof(program)),
				table_member(root, "policy", policy, sizeof(policy)),
				table_member(root, "socket", sock, sizeof(sock)));
	rc = admin_table_print(t, out, "");
	admin_table_free(t);
	t = admin_table_new(4, "llrl", "VDISK", "OWNED", "GENERATION", "LAST WRITE");
	table_each(table_get(root, "vdisks"), i, v) {
		if (!t)
			break;
		admin_table_row(t, table_member(v, "name", name, sizeof(name)),
				table_member(v, "owned", owned, sizeof(owned)),
				table_member(v, "generation", gen, sizeof(gen)),
				table_idle(v, idle, sizeof(idle)));
	}
	fputc('\n', out);
	if (rc == 0)
		rc = admin_table_print(t, out, "");
	admin_table_free(t);
	fprintf(out, "\nfilter stack, top first:\n");
	if (rc == 0)
		rc = table_stack(out, table_get(root, "stack"));
	json_object_put(root);
	return rc;
}

int
admin_filter_table(const char *text, FILE *out)
{
	struct json_object *root = json_tokener_parse(text);
	int rc = json_object_is_type(root, json_type_array) ? table_stack(out, root) : -EINVAL;

	json_object_put(root);
	return rc;
}
