/* qemu-nbd's options in isocache-nbd (see compat.h). The values accepted
 * are qemu-nbd's own (qemu-nbd(8)), so a typo fails here as it would
 * there. */
#include "nbd/compat.h"

#include <errno.h>
#include <string.h>

#include "common/log.h"

/* Index of s in the NULL-terminated list, or -1. */
static int
compat_pick(const char *s, const char *const *list)
{
	int i;

	for (i = 0; list[i]; i++) {
		if (strcmp(s, list[i]) == 0)
			return i;
	}
	return -1;
}

static int
compat_bad(const char *opt, const char *arg, const char *valid)
{
	ic_log(IC_LOG_ERR, "%s takes %s, not '%s'", opt, valid, arg);
	return -EINVAL;
}

int
compat_format(const char *fmt)
{
	if (strcmp(fmt, "raw") == 0)
		return 0;
	ic_log(IC_LOG_ERR, "-f %s: isocache-nbd serves images of its store, which clients see as "
	       "raw disks; a %s file must first become an image (isocache-admin import)", fmt, fmt);
	return -EINVAL;
}

int
compat_cache(const char *mode, bool *direct)
{
	static const char *const modes[] = { "none", "directsync", "writeback", "writethrough",
					     "unsafe", NULL };
	int i = compat_pick(mode, modes);

	if (i < 0)
		return compat_bad("--cache", mode,
				  "none, directsync, writeback, writethrough or unsafe");
	*direct = i < 2;
	if (i > 2)
		ic_log(IC_LOG_INFO, "--cache=%s: served as writeback (writes reach the disk "
		       "on flush and FUA, as with qemu-nbd's writeback)", mode);
	return 0;
}

int
compat_discard(const char *mode, bool *trim)
{
	static const char *const modes[] = { "ignore", "off", "unmap", "on", NULL };
	int i = compat_pick(mode, modes);

	if (i < 0)
		return compat_bad("--discard", mode, "ignore, off, unmap or on");
	*trim = i >= 2;
	return 0;
}

/* An option that does not apply: check its value, then say so once. */
static int
compat_note(const char *opt, const char *mode, const char *const *modes, const char *valid,
	    const char *why)
{
	if (compat_pick(mode, modes) < 0)
		return compat_bad(opt, mode, valid);
	ic_log(IC_LOG_INFO, "%s=%s does not apply: %s", opt, mode, why);
	return 0;
}

int
compat_detect_zeroes(const char *mode)
{
	static const char *const modes[] = { "off", "on", "unmap", NULL };

	return compat_note("--detect-zeroes", mode, modes, "off, on or unmap",
			   "writes are stored as sent, and clients that zero use WRITE_ZEROES, "
			   "which is a map update here");
}

int
compat_aio(const char *mode)
{
	static const char *const modes[] = { "threads", "native", "io_uring", NULL };

	return compat_note("--aio", mode, modes, "threads, native or io_uring",
			   "isocache's I/O path is its own");
}
