/* libFuzzer target: the metadata file, read and written. The input is
 * written over meta.mdb in a store of its own, whose layers/1.raw ..
 * layers/8.raw exist, and the store is used as the tools use it:
 * ic_store_open, ic_store_layers, ic_image_info of each named layer, a
 * read-only ic_vdisk_open and two reads of it, and ic_store_check; then the
 * writing commands, each of which commits (or refuses) a write transaction
 * on the damaged file: create, snapshot, clone and resize, a writable open
 * with a write and a flush, flatten and remove, and ic_store_check with
 * IC_CHECK_REPAIR. Anything may fail with an
 * error; nothing may crash, hang or leak. The seeds are real files made by
 * isocache-admin (docs/FUZZING.md).
 *
 * The store is made at the first input under $TMPDIR and removed at exit;
 * a crash skips that, so tests/fuzz/run points $TMPDIR into the build tree
 * and empties it after each run. */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "isocache/vdisk.h"

#define FZ_LAYERS 8
#define FZ_LAYER_SIZE (64u << 10)
#define FZ_READ (16u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fz_dir[256];
static uint8_t fz_buf[FZ_READ];



/* Write len bytes to path (created, truncated); 0 or -1. */
static int
fz_write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc = fd < 0 ? -1 : 0;

	if (fd >= 0 && (size_t)write(fd, data, len) != len)
		rc = -1;
	if (fd >= 0)
		close(fd);
	return rc;
}

/* A snapshot leaves its layer read-only, and immutable when root: undo. */
static void
fz_unfreeze(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), flags;

	if (fd >= 0 && ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_IMMUTABLE_FL)) {
		flags &= ~FS_IMMUTABLE_FL;
		ioctl(fd, FS_IOC_SETFLAGS, &flags);
	}
	if (fd >= 0)
		close(fd);
	chmod(path, 0644);
}

static int
fz_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_F)
		fz_unfreeze(path);
	return remove(path);
}

static void
fz_cleanup(void)
{
	nftw(fz_dir, fz_rm, 8, FTW_DEPTH | FTW_PHYS);
}

/* The writing commands of the last input made, froze and removed layer
 * files: back to layers 1..8, each holding its own byte. */
static void
fz_reset_layers(void)
{
	char path[320];
	struct dirent *d;
	DIR *dp;

	snprintf(path, sizeof(path), "%s/layers", fz_dir);
	dp = opendir(path);
	if (!dp)
		abort();
	while ((d = readdir(dp))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/layers/%s", fz_dir, d->d_name);
		fz_unfreeze(path);
		remove(path);
	}
	closedir(dp);
	for (unsigned i = 1; i <= FZ_LAYERS; i++) {
		memset(fz_buf, (int)i, sizeof(fz_buf));
		snprintf(path, sizeof(path), "%s/layers/%u.raw", fz_dir, i);
		if (fz_write_file(path, fz_buf, sizeof(fz_buf)) < 0 || truncate(path, FZ_LAYER_SIZE) < 0)
			abort();
	}
}

/* The store directory, removed at exit. */
static void
fz_setup(void)
{
	char path[320];
	const char *tmp = getenv("TMPDIR");

	snprintf(fz_dir, sizeof(fz_dir), "%s/isocache-fuzz-meta.XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(fz_dir))
		abort();
	snprintf(path, sizeof(path), "%s/layers", fz_dir);
	if (mkdir(path, 0755) < 0)
		abort();
	/* Ownership claims put their control sockets here. */
	snprintf(path, sizeof(path), "%s/run", fz_dir);
	setenv("ISOCACHE_RUN_DIR", path, 1);
	atexit(fz_cleanup);
}

static void
fz_report(void *arg, enum ic_check_kind kind, const char *msg)
{
	(void)arg;
	(void)kind;
	(void)msg;
}

/* Read the start and the end of an image, through a read-only open. */
static void
fz_read_image(struct ic_store *store, const char *image)
{
	struct ic_image_info info;
	struct ic_vdisk *vd;
	uint64_t size, len;

	if (ic_image_info(store, image, &info) == 0)
		free(info.chain);
	if (ic_vdisk_open(store, image, IC_OPEN_RDONLY, NULL, &vd) < 0)
		return;
	size = ic_vdisk_size(vd);
	len = size < FZ_READ ? size : FZ_READ;
	ic_vdisk_pread(vd, fz_buf, len, 0);
	ic_vdisk_pread(vd, fz_buf, len, size - len);
	ic_vdisk_close(vd);
}

/* The commands that write the metadata, on a vdisk and a snapshot the
 * file names (or made-up names when it names none). */
static void
fz_write_commands(struct ic_store *store, const char *vdisk, const char *snap)
{
	char name[2 * IC_NAME_MAX + 8];
	struct ic_vdisk *vd;

	ic_image_create(store, "fz-new", FZ_LAYER_SIZE);
	snprintf(name, sizeof(name), "%s@fz", vdisk);
	ic_image_snapshot(store, name);
	ic_image_clone(store, snap, "fz-clone");
	ic_image_resize(store, vdisk, 2 * FZ_LAYER_SIZE);
	if (ic_vdisk_open(store, vdisk, 0, NULL, &vd) == 0) {
		memset(fz_buf, 0x5a, sizeof(fz_buf));
		ic_vdisk_pwrite(vd, fz_buf, sizeof(fz_buf), 0, 0);
		ic_vdisk_flush(vd);
		ic_vdisk_close(vd);
	}
	ic_image_flatten(store, "fz-clone", NULL, NULL);
	ic_image_remove(store, vdisk, NULL, NULL);
	ic_image_remove(store, snap, NULL, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ic_layer_info *layers;
	struct ic_store *store;
	char path[320], vdisk[2 * IC_NAME_MAX + 2] = "vm", snap[2 * IC_NAME_MAX + 2] = "gold@v1";
	size_t n;

	ic_log_level = IC_LOG_ERR;
	if (!fz_dir[0])
		fz_setup();
	fz_reset_layers();
	snprintf(path, sizeof(path), "%s/meta.mdb", fz_dir);
	if (fz_write_file(path, data, size) < 0)
		abort();
	if (ic_store_open(fz_dir, &store) < 0)
		return 0;
	if (ic_store_layers(store, &layers, &n) == 0) {
		for (size_t i = 0; i < n && i < FZ_LAYERS; i++) {
			if (!layers[i].name[0])
				continue;
			fz_read_image(store, layers[i].name);
			snprintf(layers[i].frozen ? snap : vdisk, 2 * IC_NAME_MAX + 2, "%s",
				 layers[i].name);
		}
		free(layers);
	}
	ic_store_check(store, 0, fz_report, NULL);
	fz_write_commands(store, vdisk, snap);
	ic_store_check(store, IC_CHECK_REPAIR, fz_report, NULL);
	ic_store_close(store);
	return 0;
}
