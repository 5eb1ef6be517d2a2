/* ic_store_destroy: remove a whole store. Frozen layer files are mode 0444
 * and immutable when made by root, so rm -rf fails on them; this lifts the
 * marks and removes every layer file, the metadata file and its lock, or a
 * store in etcd's records. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/uuid.h"
#include "vdisk/internal.h"

struct destroy_ctx {
	bool force;
	unsigned live; /* vdisks a live process owns */
};

static int
destroy_owner(void *arg, const char *name, const struct ic_owner_info *info)
{
	struct destroy_ctx *c = arg;
	static const uint8_t zero[16];

	if (!info->alive || memcmp(info->rec.owner_id, zero, 16) == 0)
		return 0;
	c->live++;
	ic_log(c->force ? IC_LOG_WARN : IC_LOG_ERR, "%s is in use by %s (pid %" PRIu32 ")%s",
	       name, info->rec.who, info->rec.pid,
	       c->force ? "; destroying anyway (--force): its I/O will fail" : "");
	return 0;
}

/* Remove every file of layers/: "<id>.raw" through store_layer_unlink,
 * which lifts the frozen marks; anything else (a stray) as it is. layers/
 * is opened beneath the store (no symbolic link followed) and strays are
 * removed relative to it, so a link planted as layers/ removes nothing
 * outside the store. */
static int
destroy_layers(struct ic_store *store)
{
	struct dirent *e;
	DIR *d;
	int dfd = store_openat(store, "layers", O_RDONLY | O_DIRECTORY, 0);
	int rc = 0;

	if (dfd < 0)
		return dfd == -ENOENT ? 0 : dfd;
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -errno;
	}
	while (rc == 0 && (e = readdir(d))) {
		uint64_t id;
		char tail;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (sscanf(e->d_name, "%" SCNu64 ".ra%c", &id, &tail) == 2 && tail == 'w') {
			rc = store_layer_unlink(store, id);
			continue;
		}
		if (unlinkat(dirfd(d), e->d_name, 0) != 0) {
			rc = -errno;
			ic_log(IC_LOG_ERR, "%s/layers/%s: %s", store->dir, e->d_name, strerror(errno));
		}
	}
	closedir(d);
	if (rc == 0 && unlinkat(store->dirfd, "layers", AT_REMOVEDIR) != 0) {
		rc = -errno;
		ic_log(IC_LOG_ERR, "%s/layers: %s", store->dir, strerror(errno));
	}
	return rc;
}

/* The metadata file and its lock (or meta.etcd, naming an etcd store), the
 * ownership lock file, an interrupted import's temporary file, and the
 * store directory itself when nothing else is left in it. */
static int
destroy_rest(const char *dir)
{
	static const char *const names[] = { "meta.mdb", "meta.mdb-lock", "meta.etcd", "owners.lock" };
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d;
	int rc = 0;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (unlink(path) != 0 && errno != ENOENT && rc == 0) {
			rc = -errno;
			ic_log(IC_LOG_ERR, "%s: %s", path, strerror(errno));
		}
	}
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, "import-", 7) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	if (rc == 0 && rmdir(dir) != 0)
		ic_log(IC_LOG_WARN, "%s: left in place: %s (files that are not the store's)", dir,
		       strerror(errno));
	return rc;
}

int
ic_store_destroy(const char *dir, bool force)
{
	struct destroy_ctx c = { .force = force };
	struct ic_store *store;
	struct ic_meta_txn *txn;
	char run[PATH_MAX], uuid[IC_UUID_STRLEN];
	const char *run_dir = getenv("ISOCACHE_RUN_DIR");
	int sealed, rc = ic_store_open(dir, &store);

	if (rc)
		return rc;
	/* The write transaction is held to the end: no process can claim a
	 * vdisk or make an image while its files go. Ownership in etcd is not
	 * under it: there the store is sealed first, so that every claim
	 * fails from then on, and the owners are listed after. */
	sealed = owner_seal(&store->owners, "isocache-admin destroy");
	rc = sealed < 0 ? sealed : ic_meta_begin(store->meta, true, &txn);
	if (rc == 0) {
		rc = ic_owner_list(store, destroy_owner, &c);
		if (rc == 0 && c.live && !force) {
			ic_log(IC_LOG_ERR, "%s: %u vdisk%s in use; stop %s or give --force", dir,
			       c.live, c.live == 1 ? "" : "s", c.live == 1 ? "its owner" : "their owners");
			rc = -EBUSY;
		}
		if (rc == 0)
			rc = destroy_layers(store);
		ic_meta_abort(txn);
	}
	/* A store in etcd: its records go after its layers, as a local
	 * store's metadata file does; left there, destroy may be run again. */
	if (rc == 0)
		rc = ic_meta_erase(store->meta);
	/* Refused, nothing was removed: the store serves on. Done: a new store
	 * may take the prefix. Failed midway: claims stay refused, naming
	 * destroy, until it is run again. */
	if (sealed > 0 && (rc == 0 || rc == -EBUSY))
		owner_unseal(&store->owners);
	ic_uuid_format(ic_meta_store_uuid(store->meta), uuid);
	ic_store_close(store);
	if (rc == 0)
		rc = destroy_rest(dir);
	/* The control sockets' directory goes when its owners have. */
	snprintf(run, sizeof(run), "%s/%s", run_dir && *run_dir ? run_dir : IC_DEFAULT_RUN_DIR, uuid);
	if (rc == 0)
		rmdir(run);
	return rc;
}
