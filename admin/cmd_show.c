/* Subcommands that show the store: ls, info, tree, check. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin.h"
#include "common/size.h"
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

static void
show_ls_json(const struct ic_layer_info *v, size_t n)
{
	bool sep = false;

	printf("[");
	for (size_t i = 0; i < n; i++) {
		if (!v[i].name[0])
			continue;
		printf("%s\n  {\"name\": ", sep ? "," : "");
		admin_json_str(stdout, v[i].name);
		printf(", \"type\": \"%s\", \"size\": %" PRIu64 ", \"used\": %" PRIu64
		       ", \"disk_id\": %" PRIu64 ", \"parent\": ",
		       v[i].frozen ? "snapshot" : "vdisk", v[i].size, v[i].allocated, v[i].disk_id);
		admin_json_str(stdout, show_parent_name(v, n, v[i].parent));
		printf("}");
		sep = true;
	}
	printf("\n]\n");
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
		show_ls_json(v, n);
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
	int rc = 0, code, first = admin_parse(&admin_cmd_info, argc, argv, &opts, 1, 1, &code);

	(void)dir;
	if (first < 0)
		return code;
	if (ic_image_info(store, argv[first], &info))
		return 1;
	if (opts.json) {
		printf("{\"name\": ");
		admin_json_str(stdout, info.name);
		printf(", \"type\": \"%s\", \"size\": %" PRIu64 ", \"cluster_size\": %u, \"chain\": [",
		       info.snapshot ? "snapshot" : "vdisk", info.size, info.cluster_size);
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
		time_t t = (time_t)l->created;

		ic_uuid_format(l->uuid, uuid);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
		if (opts.json) {
			printf("%s\n  {\"depth\": %u, \"disk_id\": %" PRIu64 ", \"name\": ", i ? "," : "",
			       i, l->disk_id);
			admin_json_str(stdout, l->name);
			printf(", \"frozen\": %s, \"size\": %" PRIu64 ", \"allocated\": %" PRIu64
			       ", \"uuid\": \"%s\", \"created\": %" PRIu64 "}",
			       l->frozen ? "true" : "false", l->size, l->allocated, uuid, l->created);
		} else {
			snprintf(depth, sizeof(depth), "%u", i);
			snprintf(id, sizeof(id), "%" PRIu64, l->disk_id);
			admin_table_row(tab, depth, id, l->name[0] ? l->name : "-",
					l->frozen ? "frozen" : "writable",
					ic_size_format(l->size, sz, sizeof(sz)),
					ic_size_format(l->allocated, used, sizeof(used)), uuid, when);
		}
	}
	if (opts.json)
		printf("\n]}\n");
	else
		rc = admin_table_print(tab, stdout, "");
	admin_table_free(tab);
	free(info.chain);
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
show_problem(void *arg, const char *problem)
{
	(void)arg;
	printf("problem: %s\n", problem);
}

static int
run_check(struct ic_store *store, const char *dir, int argc, char **argv)
{
	struct admin_opts opts = { 0 };
	int code, rc, first = admin_parse(&admin_cmd_check, argc, argv, &opts, 0, 0, &code);

	if (first < 0)
		return code;
	rc = ic_store_check(store, show_problem, NULL);
	if (rc < 0)
		return admin_fail(dir, "check could not finish");
	if (rc > 0) {
		fprintf(stderr, "isocache-admin: %s: %d problem%s found\n", dir, rc, rc == 1 ? "" : "s");
		return 1;
	}
	printf("%s: metadata and layer files agree\n", dir);
	return 0;
}

const struct admin_cmd admin_cmd_check = {
	"check", "", "Verify that the metadata file and the layer files agree",
	"Exit status 0 when they do; 1, with each problem listed, when they do not.\n", true,
	run_check, 0,
};
