/* Writing a file whole: readers see the old contents or the new, never a
 * part (a temporary file beside it, renamed over it). */
#ifndef IC_COMMON_REPLACE_H
#define IC_COMMON_REPLACE_H

#include <stddef.h>
#include <sys/types.h>

/* Write len bytes of buf to path.tmp.PID (created with mode, never through
 * a symbolic link), then rename it over path. No fsync: a crash may leave
 * the old file, or none. 0, or -errno (the temporary file is removed). */
int ic_file_replace(const char *path, const void *buf, size_t len, mode_t mode);

#endif
