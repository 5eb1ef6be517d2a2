/* Subcommands that make and change images: init, create, snap, clone, rm,
 * resize, flatten. The library logs why a call failed; these return 1. */
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "isocache/control.h"
#include "common/size.h"

#define PARSE(min, max)                                                                   \
	struct admin_opts opts = { 0 };                                                   \
	int code, first = admin_parse(self, argc, argv, &opts, (min), (max), &code);      \
	if (first < 0)                                                                    \
		return code

/* A destructive command never takes a vdisk from a live owner (a server
 * with a client, a mount with a writer) unless --force says so. */
#define DESTRUCTIVE(store, opts) \
	ic_owner_set_takeover((store), (opts).force ? IC_TAKEOVER_FORCE : IC_TAKEOVER_NEVER)

/* In the column of ADMIN_PROGRESS_HELP, which follows it. */
#define FORCE_HELP                                                                        \
	"  --force         take the vdisk from a live owner: it is asked to release\n"  \
	"                  it whatever its policy, and killed when it does not\n"       \
	"                  answer; its clients then get errors. Without it, a vdisk\n"  \
	"                  a server or a mount owns is refused, naming that\n"        \
	"                  process; another admin command is waited for (5 s).\n"

static int
run_init(struct ic_store *store, const char *dir, int argc, char **argv)
{
	const struct admin_cmd *self = &admin_cmd_init;
	gid_t group = IC_STORE_PRIVATE;
	char buf[32];
	PARSE(0, 0);

	(void)store;
	(void)first;
	if (opts.has_size && opts.size > UINT32_MAX)
		return admin_fail("--cluster-size", "too large");
	if (opts.group) {
		const struct group *gr = getgrnam(opts.group);

		if (!gr)
			return admin_fail("--group", "'%s': no such group", opts.group);
		group = gr->gr_gid;
	}
	if (opts.meta ? ic_store_init_etcd(dir, (uint32_t)opts.size, group, opts.meta)
		      : ic_store_init(dir, (uint32_t)opts.size, group))
		return 1;
	printf("initialized store %s (cluster size %s, %s%s%s%s)\n", dir,
	       ic_size_format(opts.size ? opts.size : IC_DEFAULT_CLUSTER, buf, sizeof(buf)),
	       opts.group ? "shared with group " : "private", opts.group ? opts.group : "",
	       opts.meta ? ", metadata in " : "", opts.meta ? opts.meta : "");
	return 0;
}

const struct admin_cmd admin_cmd_init = {
	"init", "[--cluster-size SIZE] [--group NAME] [--meta URL]",
	"Create a store in the store directory",
	"A new store is private whatever the umask: its directories are 0700 and\n"
	"its files 0600 (frozen layers 0444 inside them), so no other user reads\n"
	"a disk.\n"
	"\n"
	"Options:\n"
	"  --cluster-size SIZE  copy-on-write unit, a power of two from 4K to 2M (default 64K)\n"
	"  --group NAME         share the store with group NAME: directories 2750 and\n"
	"                       files 0640, of that group (members read, never write)\n"
	"  --meta URL           keep the metadata in etcd, under /isocache/PREFIX/ of the\n"
	"                       cluster etcd://HOST:PORT[,HOST:PORT...]/PREFIX names, for\n"
	"                       hosts that share the store directory (docs/MULTI-HOST.md);\n"
	"                       the directory holds the layers and meta.etcd naming the URL.\n"
	"                       etcds://... speaks TLS (ISOCACHE_ETCD_CA, _CERT, _KEY);\n"
	"                       etcd users: ISOCACHE_ETCD_USER, _PASSWORD_FILE.\n"
	"                       A prefix that holds a store already is refused.\n",
	false, run_init, ADMIN_OPT_SIZE | ADMIN_OPT_GROUP | ADMIN_OPT_META,
};

static int
run_create(struct ic_store *store, const char *dir, int argc, char **argv)
{
	const struct admin_cmd *self = &admin_cmd_create;
	PARSE(1, 1);

	(void)dir;
	if (!opts.has_size)
		return admin_fail("create", "--size is required");
	return ic_image_create(store, argv[first], opts.size) ? 1 : 0;
}

const struct admin_cmd admin_cmd_create = {
	"create", "NAME --size SIZE", "Create an empty vdisk",
	"Never-written ranges read as zeroes and take no space.\n", true, run_create,
	ADMIN_OPT_SIZE,
};

static int
run_snap(struct ic_store *store, const char *dir, int argc, char **argv)
{
	const struct admin_cmd *self = &admin_cmd_snap;
	PARSE(1, 2);

	(void)dir;
	if (argc - first == 2) {
		if (strcmp(argv[first], "rollback") != 0)
			return admin_fail("snap", "unknown action '%s' (see --help)", argv[first]);
		DESTRUCTIVE(store, opts);
		return ic_image_rollback(store, argv[first + 1]) ? 1 : 0;
	}
	if (admin_only(&opts, 0, "snap NAME@SNAP"))
		return 1;
	if (ic_image_snapshot(store, argv[first]))
		return 1;
	return admin_made(store, argv[first], "made");
}

const struct admin_cmd admin_cmd_snap = {
	"snap", "NAME@SNAP | rollback NAME@SNAP [--force]", "Take a snapshot, or roll a vdisk back to one",
	"snap NAME@SNAP freezes NAME's current leaf as the snapshot NAME@SNAP; NAME\n"
	"goes on writing to a new empty leaf on top of it. A vdisk a live process\n"
	"serves is snapshotted by that process, its clients undisturbed (asked on\n"
	"its control socket, or through etcd on any host when ownership is there).\n"
	"snap rollback NAME@SNAP discards NAME's leaf and restarts it, empty, on the\n"
	"snapshot: NAME then reads exactly as NAME@SNAP.\n"
	"\nOptions (rollback):\n" FORCE_HELP,
	true, run_snap, ADMIN_OPT_FORCE,
};

static int
run_clone(struct ic_store *store, const char *dir, int argc, char **argv)
{
	const struct admin_cmd *self = &admin_cmd_clone;
	PARSE(2, 2);

	(void)dir;
	if (ic_image_clone(store, argv[first], argv[first + 1]))
		return 1;
	return admin_made(store, argv[first + 1], "made");
}

const struct admin_cmd admin_cmd_clone = {
	"clone", "NAME@SNAP NEWNAME", "Make a linked clone of a snapshot",
	"The clone shares every layer of the snapshot's chain and writes to its own\n"
	"new leaf; it costs no copy.\n",
	true, run_clone, 0,
};

static int
run_rm(struct ic_store *store, const char *dir, int argc, char **argv)
{
	const struct admin_cmd *self = &admin_cmd_rm;
	int rc;
	PARSE(1, 1);

	(void)dir;
	DESTRUCTIVE(store, opts);
	admin_progress_begin(&opts, 0); /* the merge's size is known once it starts */
	rc = ic_image_remove(store, argv[first], admin_progress_fn, NULL);
	return admin_progress_end(rc ? 1 : 0);
}

const struct admin_cmd admin_cmd_rm = {
	"rm", "NAME | NAME@SNAP [--force] [-p|--progress] [--json]", "Remove a vdisk or a snapshot",
	"A vdisk goes with its own leaf; its snapshots stay.\n"
	"A snapshot with nothing on top goes. A snapshot with exactly one layer on\n"
	"top is merged into that layer (its data is copied up where the layer has\n"
	"none), so every image reads as before. A snapshot that several linked\n"
	"clones share is refused, naming them. Progress counts the bytes the merge\n"
	"goes through; a vdisk, or a snapshot with nothing on top, goes at once.\n"
	"\nOptions:\n" FORCE_HELP ADMIN_PROGRESS_HELP,
	true, run_rm, ADMIN_OPT_FORCE | ADMIN_OPT_PROGRESS | ADMIN_OPT_JSON,
};

static int
run_resize(struct ic_store *store, const char *dir, int argc, char **argv)
{
	const struct admin_cmd *self = &admin_cmd_resize;
	PARSE(1, 1);

	(void)dir;
	if (!opts.has_size)
		return admin_fail("resize", "--size is required");
	DESTRUCTIVE(store, opts);
	admin_progress_begin(&opts, opts.size);
	return admin_progress_end(ic_image_resize(store, argv[first], opts.size) ? 1 : 0);
}

const struct admin_cmd admin_cmd_resize = {
	"resize", "NAME --size SIZE [--force] [-p|--progress] [--json]", "Grow a vdisk",
	"Shrinking is refused. Growing changes the metadata and the length of the\n"
	"leaf's file, whatever the size: nothing is copied or written, so it is\n"
	"immediate; -p and --json only report it done, as the other commands do.\n"
	"\nOptions:\n" FORCE_HELP ADMIN_PROGRESS_HELP,
	true, run_resize, ADMIN_OPT_SIZE | ADMIN_OPT_FORCE | ADMIN_OPT_PROGRESS | ADMIN_OPT_JSON,
};

static int
run_flatten(struct ic_store *store, const char *dir, int argc, char **argv)
{
	const struct admin_cmd *self = &admin_cmd_flatten;
	struct ic_image_info info;
	int rc;
	PARSE(1, 1);

	(void)dir;
	DESTRUCTIVE(store, opts);
	if (ic_image_info(store, argv[first], &info))
		return 1;
	free(info.chain);
	admin_progress_begin(&opts, info.size);
	rc = ic_image_flatten(store, argv[first], admin_progress_fn, NULL);
	return admin_progress_end(rc ? 1 : 0);
}

const struct admin_cmd admin_cmd_flatten = {
	"flatten", "NAME [--force] [-p|--progress] [--json]",
	"Copy a vdisk's whole chain into its leaf and detach it",
	"Afterwards NAME depends on no snapshot. Progress counts the bytes of the\n"
	"image gone through.\n\nOptions:\n" FORCE_HELP ADMIN_PROGRESS_HELP, true,
	run_flatten, ADMIN_OPT_FORCE | ADMIN_OPT_PROGRESS | ADMIN_OPT_JSON,
};
