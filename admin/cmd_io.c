/* import and export: raw images in and out of the store, sparse both ways.
 * qcow2, vmdk and vhdx files are converted to raw with qemu-img first
 * (qemu_img.c). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/admin.h"
#include "common/cleanup.h"

#define IO_CHUNK (1u << 20)

static bool
io_all_zero(const char *buf, size_t n)
{
	return n == 0 || (buf[0] == 0 && memcmp(buf, buf + 1, n - 1) == 0);
}

/* The image format named by a file's first bytes, or NULL for raw. */
static const char *
io_format(int fd)
{
	char head[32] = { 0 };

	if (pread(fd, head, sizeof(head), 0) < 8)
		return NULL;
	if (memcmp(head, "QFI\xfb", 4) == 0)
		return "qcow2";
	if (memcmp(head, "KDMV", 4) == 0 || memcmp(head, "# Disk DescriptorFile", 21) == 0)
		return "vmdk";
	if (memcmp(head, "vhdxfile", 8) == 0)
		return "vhdx";
	return NULL;
}

/* Copy the data regions of fd into vd, skipping holes and zero chunks. */
static int
io_import_data(int fd, const char *file, struct ic_vdisk *vd, uint64_t size)
{
	IC_AUTOFREE char *buf = malloc(IO_CHUNK);
	off_t data = 0, hole, prev = 0;

	if (!buf)
		return admin_fail(file, "out of memory");
	while ((data = lseek(fd, data, SEEK_DATA)) >= 0 && (uint64_t)data < size) {
		admin_progress_advance((uint64_t)(data - prev)); /* the hole skipped */
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			hole = (off_t)size;
		/* Chunks aligned to IO_CHUNK, so whole clusters are written. */
		for (off_t pos = data; pos < hole;) {
			off_t stop = (pos / IO_CHUNK + 1) * IO_CHUNK;
			size_t n = (size_t)((stop < hole ? stop : hole) - pos);
			ssize_t r = pread(fd, buf, n, pos);

			if (r < 0)
				return admin_fail(file, "read: %s", strerror(errno));
			if (r == 0)
				break;
			if (!io_all_zero(buf, (size_t)r) && ic_vdisk_pwrite(vd, buf, (size_t)r, (uint64_t)pos, 0))
				return 1;
			pos += r;
			admin_progress_advance((uint64_t)r);
		}
		data = prev = hole;
	}
	return 0;
}

/* Import the raw image fd as vdisk name. counted: the bytes progress has
 * already begun with (a conversion's), or 0 to begin it here. */
static int
io_import_raw(struct ic_store *store, const char *file, int fd, const char *name,
	      const struct admin_opts *opts, uint64_t counted)
{
	struct ic_vdisk *vd;
	struct stat st;
	uint64_t size;
	int rc;

	if (fstat(fd, &st) != 0)
		return admin_fail(file, "%s", strerror(errno));
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return admin_fail(file, "not a regular file or block device");
	size = (uint64_t)st.st_size;
	if (size == 0)
		return admin_fail(file, "the image is empty");
	/* As create: a disk is whole 512-byte sectors; rounding up silently
	 * would make a disk that reads back longer than the file. */
	if (size % 512)
		return admin_fail(file, "%" PRIu64 " bytes, not a multiple of 512; pad it "
				  "first (truncate -s %" PRIu64 " FILE) to import it", size,
				  (size + 511) / 512 * 512);
	if (ic_image_create(store, name, size))
		return 1;
	if (ic_vdisk_open(store, name, 0, NULL, &vd)) {
		ic_image_remove(store, name, NULL, NULL);
		return 1;
	}
	if (!counted)
		admin_progress_begin(opts, size);
	rc = io_import_data(fd, file, vd, size);
	if (ic_vdisk_close(vd))
		rc = 1;
	if (rc)
		ic_image_remove(store, name, NULL, NULL);
	return rc;
}

static int
run_import(struct ic_store *store, const char *dir, int argc, char **argv)
{
	const struct admin_cmd *self = &admin_cmd_import;
	struct admin_opts opts = { 0 };
	IC_AUTOCLOSE int fd = -1;
	const char *fmt, *file, *name;
	char tmp[PATH_MAX], how[PATH_MAX + 32];
	int code, rc, first = admin_parse(self, argc, argv, &opts, 2, 2, &code);

	if (first < 0)
		return code;
	file = argv[first];
	name = argv[first + 1];
	if (ic_name_check(name))
		return 1;
	if (strchr(name, '@'))
		return admin_fail(name, "import makes a vdisk: give a NAME without '@'");
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return admin_fail(file, "%s", strerror(errno));
	fmt = io_format(fd);
	if (!fmt) {
		rc = io_import_raw(store, file, fd, name, &opts, 0);
	} else {
		/* Progress goes through the image twice: qemu-img converts it,
		 * then its raw copy is imported. */
		uint64_t vsize = opts.progress || opts.json ? admin_qemu_size(file, fmt) : 0;

		if (vsize)
			admin_progress_begin(&opts, 2 * vsize);
		snprintf(tmp, sizeof(tmp), "%s/import-%d.raw", dir, (int)getpid());
		rc = admin_qemu_convert(file, fmt, tmp, vsize);
		close(fd);
		fd = rc ? -1 : open(tmp, O_RDONLY | O_CLOEXEC);
		if (rc == 0) {
			admin_progress_fn(NULL, vsize, 0);
			rc = fd < 0 ? admin_fail(tmp, "%s", strerror(errno))
				    : io_import_raw(store, file, fd, name, &opts, vsize);
		}
		unlink(tmp);
	}
	if (admin_progress_end(rc) || opts.json)
		return rc; /* --json: the "done" line says it */
	snprintf(how, sizeof(how), "imported %s (%s) as", file, fmt ? fmt : "raw");
	return admin_made(store, name, how);
}

const struct admin_cmd admin_cmd_import = {
	"import", "FILE NAME [-p|--progress] [--json]", "Import a disk image as a new vdisk",
	"FILE is a raw image (holes stay unallocated), or a qcow2, vmdk or vhdx image\n"
	"read through qemu-img. An image that qemu-img check finds damaged is refused\n"
	"with its findings (leaked clusters alone are only reported). A raw image must\n"
	"be whole 512-byte sectors, as create's --size. The vdisk made is printed at\n"
	"the end. Progress counts the bytes of the raw image copied into the store;\n"
	"a qcow2, vmdk or vhdx image is gone through twice, qemu-img's conversion\n"
	"(as qemu-img convert -p counts it) and then the copy.\n"
	"\nOptions:\n" ADMIN_PROGRESS_HELP,
	true, run_import, ADMIN_OPT_PROGRESS | ADMIN_OPT_JSON,
};

struct io_export {
	struct ic_vdisk *vd;
	int fd;
	const char *file;
	char *buf;
	uint64_t size;
	bool device; /* a block device: no holes, so zeroes are written too */
};

static int
io_export_extent(void *arg, const struct ic_extent *ext)
{
	struct io_export *x = arg;

	if (ext->depth < 0 && !x->device) {
		admin_progress_advance(ext->len);
		return 0; /* zeroes: left as a hole */
	}
	for (uint64_t pos = ext->off; pos < ext->off + ext->len; pos += IO_CHUNK) {
		size_t n = ext->off + ext->len - pos < IO_CHUNK ? ext->off + ext->len - pos : IO_CHUNK;

		if (ext->depth < 0)
			memset(x->buf, 0, n);
		else if (ic_vdisk_pread(x->vd, x->buf, n, pos))
			return 1;
		if ((x->device || !io_all_zero(x->buf, n)) &&
		    pwrite(x->fd, x->buf, n, (off_t)pos) != (ssize_t)n)
			return admin_fail(x->file, "write: %s", strerror(errno));
		admin_progress_advance(n);
	}
	return 0;
}

/* Open the export's target. A file that exists, and any block device, is
 * written only with --force: export must never destroy data by accident.
 * Returns 0 with x->fd set and the file sized, or 1 after saying why. */
static int
io_export_open(struct io_export *x, bool force)
{
	struct stat st;
	uint64_t dev_size;

	x->fd = open(x->file, O_WRONLY | O_CREAT | O_CLOEXEC | (force ? 0 : O_EXCL), 0644);
	if (x->fd < 0 && errno == EEXIST) {
		bool blk = stat(x->file, &st) == 0 && S_ISBLK(st.st_mode);

		return admin_fail(x->file, "%s exists; give --force (-f) to overwrite it",
				  blk ? "a block device" : "the file");
	}
	if (x->fd < 0 || fstat(x->fd, &st) != 0)
		return admin_fail(x->file, "%s", strerror(errno));
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(x->fd, BLKGETSIZE64, &dev_size) != 0)
			return admin_fail(x->file, "BLKGETSIZE64: %s", strerror(errno));
		if (dev_size < x->size)
			return admin_fail(x->file, "the device holds %" PRIu64 " bytes, the image %" PRIu64,
					  dev_size, x->size);
		x->device = true;
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return admin_fail(x->file, "not a regular file or block device");
	/* Truncate to 0 first: old data must not show through the holes. */
	if (ftruncate(x->fd, 0) != 0 || ftruncate(x->fd, (off_t)x->size) != 0)
		return admin_fail(x->file, "%s", strerror(errno));
	return 0;
}

static int
run_export(struct ic_store *store, const char *dir, int argc, char **argv)
{
	const struct admin_cmd *self = &admin_cmd_export;
	struct admin_opts opts = { 0 };
	IC_AUTOFREE char *buf = malloc(IO_CHUNK);
	struct io_export x = { .fd = -1, .buf = buf };
	int code, rc, first = admin_parse(self, argc, argv, &opts, 2, 2, &code);

	(void)dir;
	if (first < 0)
		return code;
	if (!buf)
		return admin_fail("export", "out of memory");
	x.file = argv[first + 1];
	if (ic_vdisk_open(store, argv[first], IC_OPEN_RDONLY, NULL, &x.vd))
		return 1;
	x.size = ic_vdisk_size(x.vd);
	rc = io_export_open(&x, opts.force);
	if (rc == 0) {
		admin_progress_begin(&opts, x.size);
		rc = ic_vdisk_extents(x.vd, 0, x.size, io_export_extent, &x) ? 1 : 0;
	}
	if (rc == 0 && fsync(x.fd) != 0)
		rc = admin_fail(x.file, "fsync: %s", strerror(errno));
	if (x.fd >= 0)
		close(x.fd);
	ic_vdisk_close(x.vd);
	return admin_progress_end(rc);
}

const struct admin_cmd admin_cmd_export = {
	"export", "NAME[@SNAP] FILE [-f|--force] [-p|--progress] [--json]",
	"Write an image out as a sparse raw file",
	"The whole chain is flattened; ranges that read as zeroes are left as holes.\n"
	"FILE must not exist: an existing file, or a block device, is overwritten\n"
	"only with -f (--force). A block device must be at least as large as the\n"
	"image; every byte of the image is written to it, zeroes too.\n"
	"\nOptions:\n"
	"  -f, --force     overwrite FILE\n" ADMIN_PROGRESS_HELP,
	true, run_export, ADMIN_OPT_FORCE | ADMIN_OPT_PROGRESS | ADMIN_OPT_JSON,
};
