/* Stores and layer files: init, open, layer file lifecycle and the frozen
 * marks of docs/ARCHITECTURE.md §1. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/uuid.h"
#include "etcd/etcd.h"
#include "vdisk/internal.h"

const char *
ic_store_path(const char *dir)
{
	const char *env;

	if (dir && *dir)
		return dir;
	env = getenv("ISOCACHE_STORE");
	return env && *env ? env : IC_DEFAULT_STORE;
}

static void
store_meta_path(const char *dir, char *buf)
{
	snprintf(buf, PATH_MAX, "%s/meta.mdb", dir);
}

/* Give fd (named rel in messages) its mode and, when shared, the group. */
static int
store_own(const char *dir, const char *rel, int fd, gid_t group, mode_t mode)
{
	if ((group != IC_STORE_PRIVATE && fchown(fd, (uid_t)-1, group) != 0) ||
	    fchmod(fd, mode) != 0) {
		int rc = -errno;

		ic_log(IC_LOG_ERR, "%s/%s: cannot set mode %04o%s: %s", dir, rel, (unsigned)mode,
		       group != IC_STORE_PRIVATE ? " and the group" : "", strerror(errno));
		return rc;
	}
	return 0;
}

/* Open rel in dirfd, no symlink followed, and give it mode (and group). */
static int
store_own_at(const char *dir, int dirfd, const char *rel, int flags, gid_t group, mode_t mode)
{
	IC_AUTOCLOSE int fd = openat(dirfd, rel, flags | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		int rc = -errno;

		ic_log(IC_LOG_ERR, "%s/%s: %s", dir, rel,
		       errno == ELOOP ? "a symbolic link; refusing" : strerror(errno));
		return rc;
	}
	return store_own(dir, rel, fd, group, mode);
}

/* A store's metadata is either the LMDB file meta.mdb or, for a store
 * shared by hosts, in etcd: then STORE_ETCD_FILE holds its etcd:// URL on
 * one line (docs/FORMAT.md). Never both. */
#define STORE_ETCD_FILE "meta.etcd"
#define STORE_URL_MAX 2048

/* Which of the two dirfd holds: 0 none, 1 meta.mdb, 2 meta.etcd, 3 both. */
static int
store_meta_kind(int dirfd)
{
	struct stat st;

	return (fstatat(dirfd, "meta.mdb", &st, AT_SYMLINK_NOFOLLOW) == 0) |
	       (fstatat(dirfd, STORE_ETCD_FILE, &st, AT_SYMLINK_NOFOLLOW) == 0) << 1;
}

/* The URL in dir's STORE_ETCD_FILE into url (STORE_URL_MAX): a regular
 * file, no symbolic link followed, one line. */
static int
store_read_url(const char *dir, int dirfd, char *url)
{
	IC_AUTOCLOSE int fd = openat(dirfd, STORE_ETCD_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	ssize_t n;
	int rc;

	if (fd < 0 || fstat(fd, &st) != 0) {
		rc = -errno;
		ic_log(IC_LOG_ERR, "%s/" STORE_ETCD_FILE ": %s", dir,
		       errno == ELOOP ? "a symbolic link; refusing" : strerror(errno));
		return rc;
	}
	n = S_ISREG(st.st_mode) ? read(fd, url, STORE_URL_MAX) : -1;
	if (n > 0 && url[n - 1] == '\n')
		n--;
	if (n > 0 && n < STORE_URL_MAX)
		url[n] = '\0';
	if (n <= 0 || n >= STORE_URL_MAX || memchr(url, '\n', (size_t)n) ||
	    memchr(url, '\0', (size_t)n) || !ic_etcd_url_like(url)) {
		ic_log(IC_LOG_ERR, "%s/" STORE_ETCD_FILE ": not one etcd[s]://HOST:PORT[,...]/PREFIX "
		       "line", dir);
		return -EUCLEAN;
	}
	url[n] = '\0';
	return 0;
}

/* Write url into dir's new STORE_ETCD_FILE, durably, with mode (and group). */
static int
store_write_url(const char *dir, int dirfd, const char *url, gid_t group, mode_t mode)
{
	IC_AUTOCLOSE int fd = openat(dirfd, STORE_ETCD_FILE,
				     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	size_t len = strlen(url);
	int rc;

	if (fd < 0 || write(fd, url, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
	    fsync(fd) != 0 || fsync(dirfd) != 0) {
		rc = fd < 0 || errno ? -errno : -EIO;
		ic_log(IC_LOG_ERR, "%s/" STORE_ETCD_FILE ": %s", dir, strerror(-rc));
		return rc;
	}
	return store_own(dir, STORE_ETCD_FILE, fd, group, mode);
}

/* A new store is private whatever the umask: the directories 0700 and the
 * files 0600 (frozen layers 0444, readable only through the directory), so
 * no other local user reads a VM's disk. Shared with a group, 2750 and
 * 0640: the set-group-id directories give new files the group. The lock
 * file stays 0600 even then: whoever may open it can hold a shared lock
 * and so hold every writer up, so letting a group take part in it is a
 * grant of its own (chmod g+rw, docs/CLI.md). Modes are set with fchmod,
 * which the umask does not touch. */
static int
store_init(const char *dir, uint32_t cluster_size, gid_t group, const char *meta_url)
{
	bool shared = group != IC_STORE_PRIVATE;
	mode_t dmode = shared ? 02750 : 0700, fmode = shared ? 0640 : 0600;
	char path[PATH_MAX];
	IC_AUTOCLOSE int dfd = -1;
	uint8_t uuid[16];
	int rc;

	if (cluster_size == 0)
		cluster_size = IC_DEFAULT_CLUSTER;
	if (cluster_size < 4096 || cluster_size > (2u << 20) || (cluster_size & (cluster_size - 1))) {
		ic_log(IC_LOG_ERR, "cluster size %u: must be a power of two from 4 KiB to 2 MiB",
		       cluster_size);
		return -EINVAL;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		rc = -errno;
		ic_log(IC_LOG_ERR, "%s: cannot create the store directory: %s", dir, strerror(errno));
		return rc;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		rc = -errno;
		ic_log(IC_LOG_ERR, "%s: %s", dir, strerror(errno));
		return rc;
	}
	/* Refuse before any mode changes: init never touches an existing store. */
	if (store_meta_kind(dfd)) {
		ic_log(IC_LOG_ERR, "%s/%s", dir,
		       store_meta_kind(dfd) & 1
			       ? "meta.mdb: a metadata file exists already"
			       : STORE_ETCD_FILE ": a store exists here already (its metadata in etcd)");
		return -EEXIST;
	}
	rc = store_own(dir, ".", dfd, group, dmode);
	if (rc)
		return rc;
	if (mkdirat(dfd, "layers", 0700) && errno != EEXIST) {
		rc = -errno;
		ic_log(IC_LOG_ERR, "%s/layers: %s", dir, strerror(errno));
		return rc;
	}
	rc = store_own_at(dir, dfd, "layers", O_RDONLY | O_DIRECTORY, group, dmode);
	store_meta_path(dir, path);
	if (rc == 0)
		rc = ic_uuid_generate(uuid);
	if (rc == 0)
		rc = ic_meta_create(meta_url ? meta_url : path, uuid, cluster_size);
	if (rc == 0 && meta_url)
		return store_write_url(dir, dfd, meta_url, group, fmode);
	if (rc == 0)
		rc = store_own_at(dir, dfd, "meta.mdb", O_RDONLY, group, fmode);
	if (rc == 0)
		rc = store_own_at(dir, dfd, "meta.mdb-lock", O_RDONLY, group, 0600);
	return rc;
}

int
ic_store_init(const char *dir, uint32_t cluster_size, gid_t group)
{
	return store_init(dir, cluster_size, group, NULL);
}

int
ic_store_init_etcd(const char *dir, uint32_t cluster_size, gid_t group, const char *meta_url)
{
	if (!ic_etcd_url_like(meta_url)) {
		ic_log(IC_LOG_ERR, "--meta %s: not an etcd[s]://HOST:PORT[,HOST:PORT...]/PREFIX URL",
		       meta_url);
		return -EINVAL;
	}
	if (strlen(meta_url) >= STORE_URL_MAX) {
		ic_log(IC_LOG_ERR, "--meta: the URL is longer than %d bytes", STORE_URL_MAX - 1);
		return -ENAMETOOLONG;
	}
	return store_init(dir, cluster_size, group, meta_url);
}

static int
store_open(const char *dir, bool readonly, struct ic_store **out)
{
	IC_AUTOFREE struct ic_store *store = calloc(1, sizeof(*store));
	char path[PATH_MAX > STORE_URL_MAX ? PATH_MAX : STORE_URL_MAX];
	struct stat st;
	int rc = 0, kind;

	if (!store || !(store->dir = strdup(dir))) {
		free(store ? store->dir : NULL);
		return -ENOMEM;
	}
	/* The directory the user named is the root of trust; below it,
	 * nothing is followed (beneath.c). */
	store->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	kind = store->dirfd < 0 ? 0 : store_meta_kind(store->dirfd);
	if (store->dirfd < 0 || kind == 0 || fstat(store->dirfd, &st) != 0) {
		rc = store->dirfd < 0 || kind ? -errno : -ENOENT;
		if (rc == -ENOENT)
			ic_log(IC_LOG_ERR, "%s: no store here (run isocache-admin init)", dir);
		else
			ic_log(IC_LOG_ERR, "%s: %s", dir, strerror(-rc));
		goto err;
	}
	if (kind == 3) {
		ic_log(IC_LOG_ERR, "%s: both meta.mdb and " STORE_ETCD_FILE " are here: a store "
				   "is local or in etcd, never both; refusing",
		       dir);
		rc = -EUCLEAN;
		goto err;
	}
	store->file_mode = st.st_mode & S_IRGRP ? 0640 : 0600;
	if (kind == 2)
		rc = store_read_url(dir, store->dirfd, path);
	else
		store_meta_path(dir, path);
	if (rc == 0)
		rc = readonly ? ic_meta_open_readonly(path, &store->meta)
			      : ic_meta_open(path, &store->meta);
	if (rc)
		goto err;
	store->cluster_size = ic_meta_cluster_size(store->meta);
	store->cluster_shift = (unsigned)__builtin_ctz(store->cluster_size);
	store->owners = (struct owner_store){ .dir = store->dir, .meta = store->meta };
	*out = ic_steal(&store);
	return 0;
err:
	if (store->dirfd >= 0)
		close(store->dirfd);
	free(store->dir);
	return rc;
}

int
ic_store_open(const char *dir, struct ic_store **out)
{
	return store_open(dir, false, out);
}

int
ic_store_open_readonly(const char *dir, struct ic_store **out)
{
	return store_open(dir, true, out);
}

void
ic_store_close(struct ic_store *store)
{
	if (!store)
		return;
	ic_meta_close(store->meta);
	close(store->dirfd);
	free(store->dir);
	free(store);
}

unsigned
ic_store_file_mode(const struct ic_store *store)
{
	return store->file_mode;
}

uint32_t
ic_store_cluster_size(const struct ic_store *store)
{
	return store->cluster_size;
}

void
ic_store_uuid(const struct ic_store *store, uint8_t uuid[16])
{
	memcpy(uuid, ic_meta_store_uuid(store->meta), 16);
}

const char *
ic_store_dir(const struct ic_store *store)
{
	return store->dir;
}

void
store_layer_path(const struct ic_store *store, uint64_t id, char *buf)
{
	snprintf(buf, PATH_MAX, "%s/layers/%llu.raw", store->dir, (unsigned long long)id);
}

/* fsync layers/: the names made or removed in it become durable. */
static int
store_sync_layers_dir(struct ic_store *store)
{
	IC_AUTOCLOSE int fd = store_openat(store, "layers", O_RDONLY | O_DIRECTORY, 0);

	if (fd < 0)
		return fd;
	if (fsync(fd) != 0) {
		int rc = -errno;

		ic_log(IC_LOG_ERR, "%s/layers: cannot sync the directory: %s", store->dir,
		       strerror(-rc));
		return rc;
	}
	return 0;
}

static void
store_layer_rel(uint64_t id, char *buf)
{
	snprintf(buf, PATH_MAX, "layers/%llu.raw", (unsigned long long)id);
}

/* As store_layer_fd, with a mode for O_CREAT; ENOENT logged unless quiet. */
static int
store_layer_openat(const struct ic_store *store, uint64_t id, int flags, mode_t mode, bool quiet)
{
	char rel[PATH_MAX];
	int fd;

	store_layer_rel(id, rel);
	fd = store_openat(store, rel, flags, mode);
	if (fd == -ENOENT && !quiet)
		ic_log(IC_LOG_ERR, "store %s: %s: %s", store->dir, rel, strerror(ENOENT));
	return fd;
}

int
store_layer_fd(const struct ic_store *store, uint64_t id, int flags)
{
	return store_layer_openat(store, id, flags, 0, false);
}

int
store_layer_check(const struct ic_store *store, uint64_t id)
{
	int fd = store_layer_openat(store, id, O_PATH, 0, true);

	if (fd >= 0)
		close(fd);
	return fd == -ENOENT || fd >= 0 ? 0 : fd;
}

int
store_layer_create(struct ic_store *store, uint64_t id, uint64_t size)
{
	char path[PATH_MAX];
	IC_AUTOCLOSE int fd = -1;
	int rc;

	/* A file of this fresh id can only be left over from a transaction
	 * that never committed: replace it. */
	rc = store_layer_unlink(store, id);
	if (rc)
		return rc;
	fd = store_layer_openat(store, id, O_RDWR | O_CREAT | O_EXCL, store->file_mode, false);
	if (fd < 0)
		return fd;
	/* fchmod: the umask must not decide who reads a disk. The metadata
	 * will name this file once the caller commits: its size and its
	 * directory entry must be durable first, or a power cut leaves a record
	 * naming a missing or empty file. A new name survives a cut only once
	 * its directory is synced (found by tests/e2e/powercut-admin). */
	if (fchmod(fd, store->file_mode) != 0 || ftruncate(fd, (off_t)size) != 0 ||
	    fsync(fd) != 0) {
		rc = -errno;
		store_layer_path(store, id, path);
		ic_log(IC_LOG_ERR, "%s: cannot create layer file: %s", path, strerror(errno));
		store_layer_unlink(store, id);
		return rc;
	}
	return store_sync_layers_dir(store);
}

int
store_layer_resize(struct ic_store *store, uint64_t id, uint64_t size)
{
	char path[PATH_MAX];
	IC_AUTOCLOSE int fd = store_layer_fd(store, id, O_RDWR);

	if (fd < 0)
		return fd;
	if (ftruncate(fd, (off_t)size) != 0) {
		int rc = -errno;

		store_layer_path(store, id, path);
		ic_log(IC_LOG_ERR, "%s: cannot resize: %s", path, strerror(errno));
		return rc;
	}
	return 0;
}

/* Set or clear FS_IMMUTABLE_FL on an open layer file. Only root may;
 * others skip it quietly, and so do filesystems without it (tmpfs). */
static void
store_immutable(int fd, const char *path, bool on)
{
	int flags;

	if (geteuid() != 0 || ioctl(fd, FS_IOC_GETFLAGS, &flags) != 0)
		return;
	flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
	if (ioctl(fd, FS_IOC_SETFLAGS, &flags) != 0 && on)
		ic_log(IC_LOG_DEBUG, "%s: immutable attribute not set: %s", path, strerror(errno));
}

int
store_layer_freeze(struct ic_store *store, uint64_t id, const uint8_t uuid[16])
{
	char path[PATH_MAX], value[128], su[IC_UUID_STRLEN], lu[IC_UUID_STRLEN];
	IC_AUTOCLOSE int fd = store_layer_fd(store, id, O_RDONLY);
	bool marked;
	int rc;

	if (fd < 0)
		return fd;
	store_layer_path(store, id, path);
	ic_uuid_format(ic_meta_store_uuid(store->meta), su);
	ic_uuid_format(uuid, lu);
	snprintf(value, sizeof(value), IC_LAYER_XATTR_FMT, su, lu);
	/* The xattr before the mode: a user xattr needs write access to set.
	 * A filesystem without extended attributes (sshfs, NFS before 4.2)
	 * freezes the layer unmarked: its metadata says frozen, and only
	 * isocached, which believes the file alone, will not cache it. */
	rc = fsync(fd);
	marked = rc == 0 && fsetxattr(fd, IC_LAYER_XATTR, value, strlen(value), 0) == 0;
	if (rc != 0 || (!marked && errno != ENOTSUP) || fchmod(fd, 0444) != 0) {
		rc = -errno;
		ic_log(IC_LOG_ERR, "%s: cannot freeze layer file: %s", path, strerror(errno));
		return rc;
	}
	if (!marked)
		ic_log(IC_LOG_INFO,
		       "%s: frozen without its %s mark (the filesystem keeps no extended "
		       "attributes), so isocached will not cache it",
		       path, IC_LAYER_XATTR);
	store_immutable(fd, path, true);
	return 0;
}

int
store_layer_thaw(struct ic_store *store, uint64_t id)
{
	char path[PATH_MAX];
	IC_AUTOCLOSE int fd = store_layer_fd(store, id, O_RDONLY | O_NONBLOCK);

	if (fd < 0)
		return fd;
	store_layer_path(store, id, path);
	store_immutable(fd, path, false);
	if (fchmod(fd, store->file_mode) != 0 ||
	    (fremovexattr(fd, IC_LAYER_XATTR) != 0 && errno != ENODATA && errno != ENOTSUP)) {
		int rc = -errno;
		ic_log(IC_LOG_ERR, "%s: cannot thaw layer file: %s", path, strerror(errno));
		return rc;
	}
	return 0;
}

int
store_layer_unlink(struct ic_store *store, uint64_t id)
{
	char path[PATH_MAX], name[32];
	IC_AUTOCLOSE int fd = store_layer_openat(store, id, O_RDONLY | O_NONBLOCK, 0, true);

	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	store_layer_path(store, id, path);
	store_immutable(fd, path, false);
	snprintf(name, sizeof(name), "%llu.raw", (unsigned long long)id);
	return store_unlinkat(store, "layers", name);
}

int
store_layer_open(struct ic_store *store, const struct ic_disk_rec *rec, bool writable,
		 bool direct, struct ic_layer *out)
{
	char path[PATH_MAX];
	int flags = writable ? O_RDWR : O_RDONLY;
	struct stat st;
	int rc;

	store_layer_path(store, rec->id, path);
	*out = (struct ic_layer){ .disk_id = rec->id, .frozen = rec->flags & IC_DISK_FROZEN,
				  .fd = -1, .direct_fd = -1, .size = rec->size };
	memcpy(out->uuid, rec->uuid, 16);
	out->fd = store_layer_fd(store, rec->id, flags);
	if (out->fd < 0) {
		rc = out->fd;
		goto fail;
	}
	if (fstat(out->fd, &st) != 0) {
		rc = -errno;
		ic_log(IC_LOG_ERR, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if ((uint64_t)st.st_size < rec->size) {
		ic_log(IC_LOG_ERR, "%s: layer file is truncated (%lld of %llu bytes)", path,
		       (long long)st.st_size, (unsigned long long)rec->size);
		rc = -EUCLEAN;
		goto fail;
	}
	if (direct) {
		out->direct_fd = store_layer_fd(store, rec->id, flags | O_DIRECT);
		if (out->direct_fd < 0) {
			rc = out->direct_fd;
			goto fail;
		}
	}
	return 0;
fail:
	ic_log(IC_LOG_ERR, "%s: cannot open layer file: %s", path, strerror(-rc));
	store_layer_close(out);
	return rc;
}

void
store_layer_close(struct ic_layer *layer)
{
	if (layer->fd >= 0)
		close(layer->fd);
	if (layer->direct_fd >= 0)
		close(layer->direct_fd);
	layer->fd = layer->direct_fd = -1;
}

int
ic_name_check(const char *image)
{
	const char *at = strchr(image, '@');
	size_t parts = at ? 2 : 1;
	const char *p = image;

	for (size_t i = 0; i < parts; i++) {
		size_t len = i == 0 && at ? (size_t)(at - p) : strlen(p);

		if (len == 0 || len > IC_NAME_MAX || p[0] == '.' || p[0] == '-')
			goto bad;
		for (size_t j = 0; j < len; j++)
			if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
				    p[j]))
				goto bad;
		if (at)
			p = at + 1;
	}
	return 0;
bad:
	ic_log(IC_LOG_ERR,
	       "'%s': invalid image name (use NAME or NAME@SNAP: letters, digits, '.', '_', '-'; "
	       "1-%d characters each, not starting with '.' or '-')",
	       image, IC_NAME_MAX);
	return -EINVAL;
}

int
store_split_name(const char *image, bool want_snap, char *name)
{
	const char *at = strchr(image, '@');
	int rc = ic_name_check(image);

	if (rc)
		return rc;
	if (want_snap && !at) {
		ic_log(IC_LOG_ERR, "'%s': a snapshot is named NAME@SNAP", image);
		return -EINVAL;
	}
	if (!want_snap && at) {
		ic_log(IC_LOG_ERR, "'%s': a snapshot, but a vdisk NAME is needed here", image);
		return -EINVAL;
	}
	snprintf(name, IC_NAME_MAX + 1, "%.*s", at ? (int)(at - image) : IC_NAME_MAX, image);
	return 0;
}

int
store_image_get(struct ic_store *store, struct ic_meta_txn *txn, const char *image,
		struct ic_disk_rec *rec)
{
	uint64_t id;
	int rc = ic_name_check(image);

	if (rc)
		return rc;
	rc = ic_meta_name_get(txn, image, &id);
	if (rc == -ENOENT) {
		ic_log(IC_LOG_ERR, "%s: no such image in %s", image, store->dir);
		return rc;
	}
	if (rc == 0)
		rc = ic_meta_disk_get(txn, id, rec);
	if (rc == -ENOENT) {
		ic_log(IC_LOG_ERR, "%s: the name points to disk %llu, which does not exist",
		       image, (unsigned long long)id);
		return -EUCLEAN;
	}
	return rc;
}
