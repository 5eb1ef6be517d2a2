/* destroy: remove a whole store, which rm -rf cannot (frozen layers are
 * immutable). The store is named twice, by --store (or $ISOCACHE_STORE)
 * and as the operand, so that a stray environment never destroys the
 * wrong one. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"

static int
run_destroy(struct ic_store *store, const char *dir, int argc, char **argv)
{
	const struct admin_cmd *self = &admin_cmd_destroy;
	char want[PATH_MAX], named[PATH_MAX];
	struct admin_opts opts = { 0 };
	int code, first = admin_parse(self, argc, argv, &opts, 1, 1, &code);

	(void)store;
	if (first < 0)
		return code;
	if (!realpath(dir, want))
		return admin_fail(dir, "no store here");
	if (!realpath(argv[first], named) || strcmp(want, named) != 0)
		return admin_fail(argv[first], "is not the store in use (%s): name the store to "
				  "destroy with --store and again as the operand", want);
	if (ic_store_destroy(want, opts.force))
		return admin_fail(want, "not destroyed");
	printf("destroyed store %s\n", want);
	return 0;
}

const struct admin_cmd admin_cmd_destroy = {
	"destroy", "DIR [-f|--force]", "Remove a whole store, frozen layers included",
	"DIR must be the store in use (--store DIR, else $ISOCACHE_STORE), named\n"
	"again on purpose. Every layer file (frozen ones are mode 0444 and, made by\n"
	"root, immutable: rm -rf cannot remove them), the metadata file and its lock\n"
	"are removed, then DIR itself unless other files are left in it. A store in\n"
	"etcd loses every record under its prefix (meta.etcd goes last: should etcd\n"
	"not answer, destroy fails and may be run again); it is sealed there first,\n"
	"so that every claim of a vdisk fails, naming destroy, while its files go.\n"
	"Refused, naming each vdisk and process, while a live process (an NBD\n"
	"server, a FUSE mount) owns a vdisk; -f (--force) destroys it anyway, and\n"
	"that process's I/O then fails.\n",
	false, run_destroy, ADMIN_OPT_FORCE,
};
