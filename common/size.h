/* Sizes as people type them: an integer with an optional binary suffix
 * K, M, G, T (or KB/KiB, MB/MiB, ...): "512", "64K", "20G". */
#ifndef IC_COMMON_SIZE_H
#define IC_COMMON_SIZE_H

#include <stddef.h>
#include <stdint.h>

/* Parse text into *out. Returns 0, or -EINVAL (not a size) or -ERANGE (too big). */
int ic_size_parse(const char *text, uint64_t *out);

/* Format bytes as "64 KiB", "1.5 GiB" into buf; returns buf. */
const char *ic_size_format(uint64_t bytes, char *buf, size_t cap);

#endif
