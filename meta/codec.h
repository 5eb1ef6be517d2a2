/* Private to meta/: the fixed-width integers of docs/FORMAT.md's records,
 * shared by every backend: little-endian in values, big-endian in keys. */
#ifndef IC_META_CODEC_H
#define IC_META_CODEC_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

static inline void
meta_put64(void *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static inline uint64_t
meta_get64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

static inline void
meta_put32(void *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static inline uint32_t
meta_get32(const void *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

/* Keys sort as memcmp does, so integers in keys are big-endian. */
static inline void
meta_key64(void *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, 8);
}

static inline uint64_t
meta_unkey64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return be64toh(v);
}

#endif
