/* Subcommands that show the store: ls, info, tree, check. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/json.h"
#include "common/size.h"
#include "common/timefmt.h"
#include "common/uuid.h"

static const struct ic_layer_info *
show_find(const struct ic_layer_info *v, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].disk_id == id)
			return &v[i];
	return NULL;
}

static const char *
show_parent_name(const struct ic_layer_info *v, size_t n, uint64_t parent)
{
	const struct ic_layer_info *p = parent ? show_find(v, n, parent) : NULL;

	return p ? p->name : "-";
}

static int
show_ls_json(const struct ic_layer_info *v, size_t n)
{
	struct json_object *list = json_object_new_array();

	for (size_t i = 0; list && i < n; i++) {
		struct json_object *o;

		if (!v[i].name[0] || !(o = json_object_new_object()))
			continue;
		json_object_object_add(o, "name", json_object_new_string(v[i].name));
		json_object_object_add(o, "type",
				       json_object_new_string(v[i].frozen ? "snapshot" : "vdisk"));
		json_object_object_add(o, "size", json_object_new_uint64(v[i].size));
		json_object_object_add(o, "used", json_object_new_uint64(v[i].allocated));
		json_object_object_add(o, "disk_id", json_object_new_uint64(v[i].disk_id));
		json_object_object_add(o, "parent",
				       json_object_new_string(show_parent_name(v, n, v[i].parent)));
		json_object_array_add(list, o);
	}
	return admin_json_print(list);
}

static int
show_ls_table(const struct ic_layer_info *v, size_t n)
{
	struct admin_table *t = admin_table_new(5, "llrrl", "NAME", "TYPE", "SIZE", "USED", "PARENT");
	char sz[32], used[32];
	int rc;

	for (size_t i = 0; t && i < n; i++) {
		if (v[i].name[0])
			admin_table_row(t, v[i].name, v[i].frozen ? "snapshot" : "vdisk",
					ic_size_format(v[i].size, sz, sizeof(sz)),
					ic_size_format(v[i].allocated, used, sizeof(used)),
					show_parent_name(v, n, v[i].parent));
	}
	rc = admin_table_print(t, stdout, "");
	admin_table_free(t);
	return rc ? admin_fail("ls", "%s", strerror(-rc)) : 0;
}

static int
run_ls(struct ic_store *store, const char *dir, int argc, char **argv)
{
	struct admin_opts opts = { 0 };
	struct ic_layer_info *v;
	size_t n;
	int rc = 0, code, first = admin_parse(&admin_cmd_ls, argc, argv, &opts, 0, 0, &code);

	(void)dir;
	if (first < 0)
		return code;
	if (ic_store_layers(store, &v, &n))
		return 1;
	if (opts.json)
		rc = show_ls_json(v, n);
	else
		rc = show_ls_table(v, n);
	free(v);
	return rc;
}

const struct admin_cmd admin_cmd_ls = {
	"ls", "[--json]", "List vdisks and snapshots",
	"USED is the data each image's own layer holds, not its chain's.\n", true, run_ls,
	ADMIN_OPT_JSON,
};

static int
run_info(struct ic_store *store, const char *dir, int argc, char **argv)
{
	struct admin_opts opts = { 0 };
	struct ic_image_info info;
	char sz[32], used[32], uuid[IC_UUID_STRLEN], when[32], depth[16], id[24];
	struct admin_table *tab = NULL;
	struct json_object *doc = NULL, *chain = NULL;
	int rc = 0, code, first = admin_parse(&admin_cmd_info, argc, argv, &opts, 1, 1, &code);

	(void)dir;
	if (first < 0)
		return code;
	if (ic_image_info(store, argv[first], &info))
		return 1;
	if (opts.json) {
		doc = json_object_new_object();
		chain = json_object_new_array();
		json_object_object_add(doc, "name", json_object_new_string(info.name));
		json_object_object_add(doc, "type",
				       json_object_new_string(info.snapshot ? "snapshot" : "vdisk"));
		json_object_object_add(doc, "size", json_object_new_uint64(info.size));
		json_object_object_add(doc, "cluster_size", json_object_new_uint64(info.cluster_size));
		json_object_object_add(doc, "chain", chain);
	} else {
		printf("image:        %s (%s)\nsize:         %s (%" PRIu64 " bytes)\n"
		       "cluster size: %s\nchain:        %u layer%s, leaf first\n\n",
		       info.name, info.snapshot ? "snapshot" : "vdisk",
		       ic_size_format(info.size, sz, sizeof(sz)), info.size,
		       ic_size_format(info.cluster_size, used, sizeof(used)), info.depth,
		       info.depth == 1 ? "" : "s");
		tab = admin_table_new(8, "rrllrrll", "DEPTH", "DISK_ID", "NAME", "STATE", "SIZE",
				    "USED", "UUID", "CREATED");
	}
	for (unsigned i = 0; i < info.depth; i++) {
		const struct ic_layer_info *l = &info.chain[i];

		ic_uuid_format(l->uuid, uuid);
		ic_time_format(l->created, when, sizeof(when));
		if (opts.json) {
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "depth", json_object_new_uint64(i));
			json_object_object_add(o, "disk_id", json_object_new_uint64(l->disk_id));
			json_object_object_add(o, "name", json_object_new_string(l->name));
			json_object_object_add(o, "frozen", json_object_new_boolean(l->frozen));
			json_object_object_add(o, "size", json_object_new_uint64(l->size));
			json_object_object_add(o, "allocated", json_object_new_uint64(l->allocated));
			json_object_object_add(o, "uuid", json_object_new_string(uuid));
			json_object_object_add(o, "created", json_object_new_uint64(l->created));
			json_object_array_add(chain, o);
		} else {
			snprintf(depth, sizeof(depth), "%u", i);
			snprintf(id, sizeof(id), "%" PRIu64, l->disk_id);
			admin_table_row(tab, depth, id, l->name[0] ? l->name : "-",
					l->frozen ? "frozen" : "writable",
					ic_size_format(l->size, sz, sizeof(sz)),
					ic_size_format(l->allocated, used, sizeof(used)), uuid, when);
		}
	}
	free(info.chain);
	if (opts.json)
		return admin_json_print(doc);
	rc = admin_table_print(tab, stdout, "");
	admin_table_free(tab);
	return rc ? admin_fail(argv[first], "%s", strerror(-rc)) : 0;
}

const struct admin_cmd admin_cmd_info = {
	"info", "NAME[@SNAP] [--json]", "Show an image's chain of layers",
	"DEPTH 0 is the image's own layer, 1 its parent, and so on: the depths that\n"
	"isocache-nbd's isocache:layer meta context reports.\n",
	true, run_info, ADMIN_OPT_JSON,
};

static void
show_tree(const struct ic_layer_info *v, size_t n, uint64_t parent, const char *prefix)
{
	size_t kids = 0, seen = 0;
	char sub[512], sz[32];

	for (size_t i = 0; i < n; i++)
		kids += v[i].parent == parent;
	for (size_t i = 0; i < n; i++) {
		bool last;

		if (v[i].parent != parent)
			continue;
		last = ++seen == kids;
		printf("%s%s%s  (%s, %s)\n", prefix, parent ? (last ? "└── " : "├── ") : "",
		       v[i].name[0] ? v[i].name : "(unnamed)", v[i].frozen ? "snapshot" : "vdisk",
		       ic_size_format(v[i].allocated, sz, sizeof(sz)));
		snprintf(sub, sizeof(sub), "%s%s", prefix, parent ? (last ? "    " : "│   ") : "");
		show_tree(v, n, v[i].disk_id, sub);
	}
}

static int
run_tree(struct ic_store *store, const char *dir, int argc, char **argv)
{
	struct admin_opts opts = { 0 };
	struct ic_layer_info *v;
	size_t n;
	int code, first = admin_parse(&admin_cmd_tree, argc, argv, &opts, 0, 0, &code);

	if (first < 0)
		return code;
	if (ic_store_layers(store, &v, &n))
		return 1;
	printf("%s\n", dir);
	show_tree(v, n, 0, "");
	free(v);
	return 0;
}

const struct admin_cmd admin_cmd_tree = {
	"tree", "", "Show the store as a tree of images, snapshots and clones",
	"Each line shows the data held by that layer itself.\n", true, run_tree, 0,
};

static void
show_finding(void *arg, enum ic_check_kind kind, const char *msg)
{
	static const char *const label[] = {
		[IC_CHECK_PROBLEM] = "problem",
		[IC_CHECK_UNREFERENCED] = "unreferenced",
		[IC_CHECK_REPAIRED] = "repaired",
	};
	unsigned *unreferenced = arg;

	*unreferenced += kind == IC_CHECK_UNREFERENCED;
	printf("%s: %s\n", label[kind], msg);
}

static int
run_check(struct ic_store *store, const char *dir, int argc, char **argv)
{
	struct admin_opts opts = { 0 };
	unsigned unreferenced = 0;
	int code, rc, first = admin_parse(&admin_cmd_check, argc, argv, &opts, 0, 0, &code);

	if (first < 0)
		return code;
	rc = ic_store_check(store, opts.repair ? IC_CHECK_REPAIR : 0, show_finding, &unreferenced);
	if (rc < 0)
		return admin_fail(dir, "check could not finish: %s", strerror(-rc));
	if (rc > 0) {
		fprintf(stderr, "isocache-admin: %s: %d problem%s found\n", dir, rc, rc == 1 ? "" : "s");
		return 1;
	}
	printf("%s: metadata and layer files agree\n", dir);
	if (unreferenced)
		printf("%s: %u layer file%s hold%s data no map references "
		       "(isocache-admin check --repair reclaims it)\n",
		       dir, unreferenced, unreferenced == 1 ? "" : "s", unreferenced == 1 ? "s" : "");
	return 0;
}

const struct admin_cmd admin_cmd_check = {
	"check", "[--repair]", "Verify that the metadata file and the layer files agree",
	"Also reports data in a layer file that no map references (a write that\n"
	"failed half-way, on a full filesystem for instance, or one a crash cut off\n"
	"before a flush): space leaked, not a disagreement; vdisks a live process\n"
	"serves are skipped for that. Exit status 0 when all agree; 1, with each\n"
	"problem listed, when not.\n"
	"\n"
	"  --repair  punch the unreferenced data out of each leaf's layer file\n"
	"            (claiming the vdisk while it does), and report it as repaired\n",
	true,
	run_check,
	ADMIN_OPT_REPAIR,
};
