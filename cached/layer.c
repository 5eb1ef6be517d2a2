/* What makes an fd a layer the daemon will cache (docs/ARCHITECTURE.md §5): it
 * believes only the file itself. Regular, opened read-only, mode 0444, the
 * IC_LAYER_XATTR value in exactly its canonical form, saying frozen, and,
 * for a file root owns on a filesystem with inode flags, the immutable
 * attribute (the store freezes root's layers with it), so that the bytes
 * the daemon caches cannot change under it. */
#include "cached/internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "isocache/layer.h"

int
cached_uuid_parse(const char *text, uint8_t uuid[16])
{
	int n = 0;

	for (int i = 0; i < 36; i++) {
		char c = text[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return -EINVAL;
			continue;
		}
		if (!isxdigit((unsigned char)c) || isupper((unsigned char)c))
			return -EINVAL;
		int v = isdigit((unsigned char)c) ? c - '0' : c - 'a' + 10;
		uuid[n / 2] = (uint8_t)(n % 2 ? (uuid[n / 2] | v) : v << 4);
		n++;
	}
	return text[36] == '\0' ? 0 : -EINVAL;
}

int
cached_layer_check(int fd, uint8_t uuid[16], struct stat *sb)
{
	char value[160], canon[160], store[40], layer[40];
	uint8_t store_id[16];
	ssize_t len;
	int fl, attr;

	if (fstat(fd, sb) < 0)
		return -errno;
	if (!S_ISREG(sb->st_mode))
		return -EBADF;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if ((fl & O_ACCMODE) != O_RDONLY)
		return -EACCES;
	if ((sb->st_mode & 07777) != 0444)
		return -EPERM;
	len = fgetxattr(fd, IC_LAYER_XATTR, value, sizeof(value) - 1);
	if (len < 0)
		return errno == ERANGE || errno == ENODATA || errno == ENOTSUP ? -ENODATA : -errno;
	value[len] = '\0';
	if (sscanf(value, "isocache-layer v1 store=%36s layer=%36s", store, layer) != 2)
		return -ENODATA;
	snprintf(canon, sizeof(canon), IC_LAYER_XATTR_FMT, store, layer);
	if (strcmp(canon, value) || cached_uuid_parse(store, store_id) ||
	    cached_uuid_parse(layer, uuid))
		return -ENODATA;
	if (sb->st_uid == 0 && ioctl(fd, FS_IOC_GETFLAGS, &attr) == 0 && !(attr & FS_IMMUTABLE_FL))
		return -EPERM;
	return 0;
}

/* The daemon's own descriptor for fills: the same file reopened O_DIRECT,
 * so the cache is the only copy in memory and fills cost device reads, not
 * page-cache copies. Where that fails (a filesystem without O_DIRECT, no
 * access to /proc) the client's fd serves. Takes fd; returns the one to use. */
int
cached_layer_direct(int fd)
{
	char path[64];
	int dfd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	dfd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (dfd < 0)
		return fd;
	close(fd);
	return dfd;
}
