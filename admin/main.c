/* isocache-admin: make and inspect golden images, snapshots and linked
 * clones in a store. Subcommands are named like rbd's. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "common/log.h"

const struct admin_cmd *const admin_cmds[] = {
	&admin_cmd_init,   &admin_cmd_create, &admin_cmd_import, &admin_cmd_export,
	&admin_cmd_snap,   &admin_cmd_clone,  &admin_cmd_ls,	 &admin_cmd_info,
	&admin_cmd_tree,   &admin_cmd_rm,     &admin_cmd_resize, &admin_cmd_flatten,
	&admin_cmd_check,  &admin_cmd_owner, &admin_cmd_stats, &admin_cmd_filter,
	&admin_cmd_cache,  &admin_cmd_destroy, NULL,
};

/* Commands that only read the store open it read-only, so that users who
 * may read it but not write it can run them (docs/CLI.md). */
static bool
main_reads_only(const struct admin_cmd *cmd)
{
	static const struct admin_cmd *const readers[] = {
		&admin_cmd_ls,	  &admin_cmd_info,  &admin_cmd_tree,  &admin_cmd_check,
		&admin_cmd_stats, &admin_cmd_export, &admin_cmd_cache, NULL,
	};

	for (const struct admin_cmd *const *r = readers; *r; r++)
		if (*r == cmd)
			return true;
	return false;
}

static void
main_usage(FILE *out)
{
	fprintf(out,
		"Usage: isocache-admin [--store DIR] [-v] COMMAND [ARGS...]\n"
		"\n"
		"Manage an isocache store: virtual disks made of snapshot layers.\n"
		"\n"
		"Options:\n"
		"  --store DIR   the store (default: $ISOCACHE_STORE, else %s)\n"
		"  -v, --verbose more messages\n"
		"  -h, --help    this help; COMMAND --help for a command's\n"
		"\n"
		"Commands:\n",
		IC_DEFAULT_STORE);
	for (const struct admin_cmd *const *c = admin_cmds; *c; c++)
		fprintf(out, "  %-9s %s\n", (*c)->name, (*c)->summary);
	fprintf(out, "\nImages are named NAME (a vdisk) or NAME@SNAP (a snapshot).\n"
		     "Sizes take K, M, G or T suffixes (powers of 1024).\n");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "store", required_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	const struct admin_cmd *cmd = NULL;
	struct ic_store *store = NULL;
	int c, rc;

	ic_log_set_program("isocache-admin");
	while ((c = getopt_long(argc, argv, "+vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'S':
			dir = optarg;
			break;
		case 'v':
			ic_log_level = IC_LOG_DEBUG;
			break;
		case 'h':
			main_usage(stdout);
			return 0;
		default:
			main_usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		main_usage(stderr);
		return 2;
	}
	for (const struct admin_cmd *const *p = admin_cmds; *p; p++)
		if (strcmp((*p)->name, argv[optind]) == 0)
			cmd = *p;
	if (!cmd)
		return admin_fail(argv[optind], "unknown command (see isocache-admin --help)");
	dir = ic_store_path(dir);
	if (cmd->needs_store) {
		/* Let "COMMAND --help" work without a store. */
		for (int i = optind + 1; i < argc; i++) {
			if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
				admin_usage(cmd, stdout);
				return 0;
			}
		}
		if ((main_reads_only(cmd) ? ic_store_open_readonly : ic_store_open)(dir, &store))
			return admin_fail(dir, "cannot open the store");
	}
	rc = cmd->run(store, dir, argc - optind, argv + optind);
	ic_store_close(store);
	return rc;
}
