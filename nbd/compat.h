/* qemu-nbd's options, as isocache-nbd takes them, so that a script
 * written for qemu-nbd runs with the binary name changed: each is honoured
 * where it means something here, or accepted with one message saying it
 * does not apply. Every function logs what is wrong and returns -EINVAL
 * on a value qemu-nbd would refuse too. */
#ifndef IC_NBD_COMPAT_H
#define IC_NBD_COMPAT_H

#include <stdbool.h>

/* -f, --format: only raw, since what an export serves is a raw disk. */
int compat_format(const char *fmt);
/* --cache: none and directsync open layer files O_DIRECT (*direct true);
 * writeback, writethrough and unsafe go through the page cache. */
int compat_cache(const char *mode, bool *direct);
/* --discard: unmap/on pass trims to the vdisk (*trim true, the default),
 * ignore/off do not offer trim. */
int compat_discard(const char *mode, bool *trim);
/* --detect-zeroes and --aio: checked, then said once not to apply. */
int compat_detect_zeroes(const char *mode);
int compat_aio(const char *mode);

#endif
