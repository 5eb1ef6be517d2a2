/* The credentials of a cluster with authentication on (docs/MULTI-HOST.md,
 * "etcd users"): a user name from ISOCACHE_ETCD_USER and its password from
 * the file ISOCACHE_ETCD_PASSWORD_FILE, read at every authentication (a
 * password is rotated by writing the file, then changing it in etcd). The
 * file must be for its owner's eyes only, as ssh requires of a key: a
 * password others can read is no secret. */
#include "etcd/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

int
ic_etcd_auth_user(char *user)
{
	const char *name = getenv("ISOCACHE_ETCD_USER");
	const char *file = getenv("ISOCACHE_ETCD_PASSWORD_FILE");
	bool has_name = name && *name, has_file = file && *file;

	user[0] = '\0';
	if (has_name != has_file) {
		ic_log(IC_LOG_ERR, "etcd: ISOCACHE_ETCD_USER and ISOCACHE_ETCD_PASSWORD_FILE go "
				   "together: give both (the etcd user and a file holding its "
				   "password) or neither");
		return -EINVAL;
	}
	if (!has_name)
		return 0;
	if (strlen(name) >= IC_ETCD_USER_MAX) {
		ic_log(IC_LOG_ERR, "etcd: ISOCACHE_ETCD_USER is longer than %d bytes",
		       IC_ETCD_USER_MAX - 1);
		return -EINVAL;
	}
	strcpy(user, name);
	return 0;
}

int
ic_etcd_auth_password(char *out, char *why, size_t cap)
{
	const char *file = getenv("ISOCACHE_ETCD_PASSWORD_FILE");
	struct stat st;
	ssize_t n;
	int fd, rc = 0;

	if (!file || !*file) {
		snprintf(why, cap, "ISOCACHE_ETCD_PASSWORD_FILE is not set");
		return -EINVAL;
	}
	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(why, cap, "password file %s: %s", file, strerror(-rc));
	} else if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		snprintf(why, cap, "password file %s is not a regular file", file);
	} else if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		rc = -EPERM;
		snprintf(why, cap, "password file %s is open to group or others (mode %04o): "
			 "chmod 600 it", file, (unsigned)(st.st_mode & 07777));
	} else if ((n = read(fd, out, IC_ETCD_PASSWORD_MAX)) < 0) {
		rc = -errno;
		snprintf(why, cap, "password file %s: %s", file, strerror(-rc));
	} else {
		while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
			n--;
		if (n == 0 || n >= IC_ETCD_PASSWORD_MAX || memchr(out, '\0', (size_t)n)) {
			rc = -EINVAL;
			snprintf(why, cap, "password file %s: %s (at most %d bytes)", file,
				 n == 0 ? "empty" : n >= IC_ETCD_PASSWORD_MAX ? "too long"
									 : "holds a NUL byte",
				 IC_ETCD_PASSWORD_MAX - 1);
		} else {
			out[n] = '\0';
		}
	}
	if (fd >= 0)
		close(fd);
	return rc;
}
