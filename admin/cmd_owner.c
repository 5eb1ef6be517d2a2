/* Subcommands that talk about and to the processes writing vdisks: owner
 * (show, ls, release, takeover), and stats and filter, which go to a live
 * process's control socket (docs/OWNERSHIP.md, docs/CONTROL-PROTOCOL.md). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/json.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "common/uuid.h"
#include "isocache/control.h"

#define OWNER_TEXT_MAX 65536

static bool
owner_owned(const struct ic_owner_info *info)
{
	static const uint8_t zero[16];

	return memcmp(info->rec.owner_id, zero, 16) != 0;
}

static void
owner_print(const char *name, const struct ic_owner_info *info)
{
	bool owned = owner_owned(info);
	char when[IC_TIME_STRLEN] = "-";

	if (owned)
		ic_time_format(info->rec.acquired, when, sizeof(when));
	printf("%-24s %-6s %7" PRIu32 " %-5s %-9s %-19s %4" PRIu64 "  %s\n", name,
	       owned ? "owned" : "free", owned ? info->rec.pid : 0,
	       !owned ? "-" : info->alive ? "yes" : "no", info->policy[0] ? info->policy : "-",
	       when, info->rec.generation, owned ? info->rec.who : "-");
}

static struct json_object *
owner_json(const char *name, const struct ic_owner_info *info)
{
	struct json_object *o = json_object_new_object();
	char id[IC_UUID_STRLEN];

	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "owned", json_object_new_boolean(owner_owned(info)));
	json_object_object_add(o, "alive", json_object_new_boolean(info->alive));
	json_object_object_add(o, "generation", json_object_new_uint64(info->rec.generation));
	if (!owner_owned(info))
		return o;
	ic_uuid_format(info->rec.owner_id, id);
	json_object_object_add(o, "owner_id", json_object_new_string(id));
	json_object_object_add(o, "pid", json_object_new_uint64(info->rec.pid));
	json_object_object_add(o, "start_time", json_object_new_uint64(info->rec.start_time));
	json_object_object_add(o, "acquired", json_object_new_uint64(info->rec.acquired));
	json_object_object_add(o, "who", json_object_new_string(info->rec.who));
	json_object_object_add(o, "socket", json_object_new_string(info->rec.socket));
	json_object_object_add(o, "policy", json_object_new_string(info->policy));
	return o;
}

static void
owner_header(void)
{
	printf("%-24s %-6s %7s %-5s %-9s %-19s %4s  %s\n", "VDISK", "STATE", "PID", "ALIVE",
	       "POLICY", "SINCE", "GEN", "WHO");
}

/* owner ls: a row each, or (list non-NULL) an element of the JSON list. */
static int
owner_ls_one(void *list, const char *name, const struct ic_owner_info *info)
{
	if (list)
		json_object_array_add(list, owner_json(name, info));
	else
		owner_print(name, info);
	return 0;
}

static long long
owner_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One line on stdout with both times, which measure different things: the
 * whole handoff as we saw it, and the owner's own drain and flush ("released
 * after N ms"). The library's INFO line about the first would only repeat
 * it on stderr with another number; -v still shows it. */
static int
owner_ask_release(struct ic_store *store, const char *name, unsigned timeout_ms)
{
	enum ic_log_level level = ic_log_level;
	long long t0 = owner_now_ms();
	char said[256] = "";
	int rc;

	if (ic_log_level == IC_LOG_INFO)
		ic_log_level = IC_LOG_WARN;
	rc = ic_owner_release(store, name, timeout_ms, said, sizeof(said));
	ic_log_level = level;
	if (rc)
		return 1;
	printf("%s: released in %lld ms (its owner: \"%s\")\n", name, owner_now_ms() - t0,
	       said[0] ? said : "nobody owned it");
	return 0;
}

static int
run_owner(struct ic_store *store, const char *dir, int argc, char **argv)
{
	struct admin_opts o = { 0 };
	struct ic_owner_info info;
	int code, first = admin_parse(&admin_cmd_owner, argc, argv, &o, 1, 2, &code);
	const char *action, *name;

	(void)dir;
	if (first < 0)
		return code;
	action = argv[first];
	name = first + 1 < argc ? argv[first + 1] : NULL;
	if (strcmp(action, "ls") == 0 && !name) {
		struct json_object *list = o.json ? json_object_new_array() : NULL;

		if (admin_only(&o, ADMIN_OPT_JSON, "owner ls"))
			return 1;
		if (!o.json)
			owner_header();
		if (ic_owner_list(store, owner_ls_one, list)) {
			json_object_put(list);
			return 1;
		}
		return o.json ? admin_json_print(list) : 0;
	}
	if (!name)
		return admin_fail("owner", "expected %s (see --help)", admin_cmd_owner.args);
	if (strcmp(action, "show") == 0) {
		if (admin_only(&o, ADMIN_OPT_JSON, "owner show") || ic_owner_show(store, name, &info))
			return 1;
		if (o.json)
			return admin_json_print(owner_json(name, &info));
		owner_header();
		owner_print(name, &info);
		return 0;
	}
	if (strcmp(action, "release") == 0)
		return admin_only(&o, ADMIN_OPT_TIMEOUT, "owner release") ? 1 :
			owner_ask_release(store, name, o.timeout_ms);
	if (strcmp(action, "takeover") == 0) {
		if (admin_only(&o, ADMIN_OPT_FORCE | ADMIN_OPT_TIMEOUT, "owner takeover"))
			return 1;
		if (!o.force)
			return admin_fail("owner takeover", "--force is required: it kills an owner "
					  "that does not answer");
		if (ic_owner_takeover(store, name, o.timeout_ms))
			return 1;
		printf("%s: taken over; nobody owns it now\n", name);
		return 0;
	}
	return admin_fail("owner", "unknown action '%s' (see --help)", action);
}

const struct admin_cmd admin_cmd_owner = {
	"owner", "show NAME [--json] | ls [--json] | release NAME [--timeout S] | "
		 "takeover NAME --force [--timeout S]",
	"Show or change which process may write a vdisk",
	"show: the ownership record of NAME, whether its owner still runs (it holds\n"
	"  the vdisk's kernel lock), and its release policy (asked over its control\n"
	"  socket).\n"
	"ls: the same for every vdisk.\n"
	"release: ask the owner to let go (flush and stop writing); prints how long\n"
	"  the handoff took and the owner's answer (its own drain and flush time).\n"
	"  It may deny by its policy (isocache-nbd\n"
	"  --release=when-unused|when-idle|never|always).\n"
	"takeover --force: ask, ignoring the policy; an owner that does not answer\n"
	"  within the timeout (default 5 s) is killed (SIGKILL through a pidfd of the\n"
	"  process behind its control socket, in any PID namespace) first. Refused,\n"
	"  naming the owner, when it cannot be reached or signalled.\n"
	"Afterwards nobody owns NAME; the next writer claims it.\n",
	true, run_owner, ADMIN_OPT_JSON | ADMIN_OPT_FORCE | ADMIN_OPT_TIMEOUT,
};

/* The control socket named by --socket, else the one of NAME's live owner. */
static int
owner_target(struct ic_store *store, const struct admin_opts *o, const char *name,
	     char *path, size_t cap)
{
	struct ic_owner_info info;

	if (o->socket) {
		snprintf(path, cap, "%s", o->socket);
		return 0;
	}
	if (!name)
		return admin_fail("control", "name a vdisk (its owner is asked) or --socket PATH");
	if (ic_owner_show(store, name, &info))
		return 1;
	if (!info.alive || !info.rec.socket[0])
		return admin_fail(name, "no live process with a control socket writes it");
	snprintf(path, cap, "%s", info.rec.socket);
	return 0;
}

static int
run_stats(struct ic_store *store, const char *dir, int argc, char **argv)
{
	struct admin_opts o = { 0 };
	char path[256];
	IC_AUTOFREE char *text = malloc(OWNER_TEXT_MAX);
	int code, first = admin_parse(&admin_cmd_stats, argc, argv, &o, 0, 1, &code);

	(void)dir;
	if (first < 0)
		return code;
	if (first == argc && !o.socket)
		return admin_cache_stats(store, o.json, o.watch);
	if (admin_only(&o, ADMIN_OPT_JSON | ADMIN_OPT_SOCKET,
		       first < argc ? "stats NAME" : "stats --socket") ||
	    owner_target(store, &o, first < argc ? argv[first] : NULL, path, sizeof(path)))
		return 1;
	if (!text || ic_control_stats(path, text, OWNER_TEXT_MAX))
		return 1;
	if (o.json || admin_stats_table(text, stdout))
		printf("%s\n", text);
	return 0;
}

const struct admin_cmd admin_cmd_stats = {
	"stats", "[--json] [--watch] | NAME | --socket PATH",
	"Show the shared cache's counters, or a live process's",
	"With no NAME: the cache daemon's counters for each frozen layer of the\n"
	"store and its totals, as a table (or --json), every second with --watch;\n"
	"the same as isocache-admin cache stats.\n"
	"With NAME: asks the process writing vdisk NAME (or listening on the\n"
	"control socket PATH) for its vdisks, release policy and filter stack with\n"
	"each filter's report: the stats filter's counters per layer and operation\n"
	"(count, bytes, errors, latency p50/p99) as a table, or all of it as JSON\n"
	"with --json.\n",
	true, run_stats, ADMIN_OPT_JSON | ADMIN_OPT_WATCH | ADMIN_OPT_SOCKET,
};

/* --position top|bottom|N as ic_stack_add's pos: 0 top, -1 bottom. */
static int
filter_position(const char *text, int *pos)
{
	char *end;
	long n;

	if (!text || strcmp(text, "top") == 0) {
		*pos = 0;
		return 0;
	}
	if (strcmp(text, "bottom") == 0) {
		*pos = -1;
		return 0;
	}
	n = strtol(text, &end, 10);
	if (*end || end == text || n < 0 || n > 1024)
		return admin_fail("--position", "'%s' is not top, bottom or a position (0 is the "
				  "top, as filter ls numbers them)", text);
	*pos = (int)n;
	return 0;
}

static int
run_filter(struct ic_store *store, const char *dir, int argc, char **argv)
{
	struct admin_opts o = { 0 };
	char path[256];
	IC_AUTOFREE char *text = malloc(OWNER_TEXT_MAX);
	enum ic_control_filter_cmd op;
	int code, first = admin_parse(&admin_cmd_filter, argc, argv, &o, 1, 3, &code), want, pos = 0;
	const char *action;

	(void)dir;
	if (first < 0)
		return code;
	action = argv[first];
	if (strcmp(action, "ls") == 0)
		op = IC_CONTROL_FILTER_LS;
	else if (strcmp(action, "add") == 0)
		op = IC_CONTROL_FILTER_ADD;
	else if (strcmp(action, "rm") == 0)
		op = IC_CONTROL_FILTER_RM;
	else
		return admin_fail("filter", "expected %s (see --help)", admin_cmd_filter.args);
	/* ls [NAME]; add|rm [NAME] ARG: NAME is left out with --socket. */
	want = (op == IC_CONTROL_FILTER_LS ? 0 : 1) + (o.socket ? 0 : 1);
	if (argc - first - 1 != want)
		return admin_fail("filter", "expected %s (see --help)", admin_cmd_filter.args);
	if (op != IC_CONTROL_FILTER_ADD &&
	    admin_only(&o, ADMIN_OPT_JSON | ADMIN_OPT_SOCKET, op == IC_CONTROL_FILTER_LS ?
							      "filter ls" : "filter rm"))
		return 1;
	if (filter_position(o.position, &pos))
		return 1;
	if (owner_target(store, &o, o.socket ? NULL : argv[first + 1], path, sizeof(path)))
		return 1;
	if (!text || ic_control_filter(path, op, op == IC_CONTROL_FILTER_LS ? NULL : argv[argc - 1],
				       pos, text, OWNER_TEXT_MAX))
		return 1;
	if (op != IC_CONTROL_FILTER_LS) {
		if (text[0])
			printf("%s\n", text);
		/* Show where it went: the stack as it is now. */
		if (ic_control_filter(path, IC_CONTROL_FILTER_LS, NULL, 0, text, OWNER_TEXT_MAX))
			return 1;
		if (!o.json)
			printf("filter stack of %s, top first:\n", o.socket ? path : argv[first + 1]);
	}
	if (o.json || admin_filter_table(text, stdout))
		printf("%s\n", text);
	return 0;
}

const struct admin_cmd admin_cmd_filter = {
	"filter",
	"ls NAME | add NAME SPEC [--position POS] | rm NAME FILTER  (or --socket PATH for NAME) "
	"[--json]",
	"List, add or remove filters of a live process's I/O stack",
	"The process writing vdisk NAME (or listening on the control socket PATH)\n"
	"changes its stack live: in-flight I/O drains first. ls prints the stack,\n"
	"top first (POS 0 is the top, where requests enter; \"-\" is the layer\n"
	"files at the bottom), with each filter's report; --json prints it as JSON.\n"
	"add puts SPEC (\"stats\", \"delay:read=200us\") at --position POS: top, the\n"
	"default, where it sees every request, cache hits included; bottom, just\n"
	"above the layer files (below the cache filter: it then sees only what\n"
	"reaches the files), --position N above the filter now at N. A SPEC may\n"
	"name a filter built out of tree by its absolute path\n"
	"(\"/usr/local/lib/isocache/ro.so:errno=EPERM\"); rm takes its name. add and\n"
	"rm print the stack afterwards.\n",
	true, run_filter, ADMIN_OPT_JSON | ADMIN_OPT_SOCKET | ADMIN_OPT_POSITION,
};
