/* libFuzzer target: the metadata file reader. The input is written over
 * meta.mdb in a store of its own, whose layers/1.raw .. layers/8.raw
 * exist, and the store is used as the tools use it: ic_store_open,
 * ic_store_layers, ic_image_info of each named layer, a read-only
 * ic_vdisk_open and two reads of it, and ic_store_check. Anything may fail
 * with an error; nothing may crash, hang or leak. The seeds are real files
 * made by isocache-admin (docs/FUZZING.md).
 *
 * The store is made at the first input under $TMPDIR and removed at exit;
 * a crash skips that, so tests/fuzz/run points $TMPDIR into the build tree
 * and empties it after each run. */
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int
fz_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
fz_cleanup(void)
{
	nftw(fz_dir, fz_rm, 8, FTW_DEPTH | FTW_PHYS);
}

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

/* The store directory and its layer files, each holding its own byte. */
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
	atexit(fz_cleanup);
	for (unsigned i = 1; i <= FZ_LAYERS; i++) {
		memset(fz_buf, (int)i, sizeof(fz_buf));
		snprintf(path, sizeof(path), "%s/layers/%u.raw", fz_dir, i);
		if (fz_write_file(path, fz_buf, sizeof(fz_buf)) < 0 || truncate(path, FZ_LAYER_SIZE) < 0)
			abort();
	}
}

static void
fz_report(void *arg, const char *problem)
{
	(void)arg;
	(void)problem;
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ic_layer_info *layers;
	struct ic_store *store;
	char path[320];
	size_t n;

	ic_log_level = IC_LOG_ERR;
	if (!fz_dir[0])
		fz_setup();
	snprintf(path, sizeof(path), "%s/meta.mdb", fz_dir);
	if (fz_write_file(path, data, size) < 0)
		abort();
	if (ic_store_open(fz_dir, &store) < 0)
		return 0;
	if (ic_store_layers(store, &layers, &n) == 0) {
		for (size_t i = 0; i < n && i < FZ_LAYERS; i++)
			if (layers[i].name[0])
				fz_read_image(store, layers[i].name);
		free(layers);
	}
	ic_store_check(store, fz_report, NULL);
	ic_store_close(store);
	return 0;
}
