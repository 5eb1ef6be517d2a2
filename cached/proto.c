/* Encoding and validation of isocached messages (include/isocache/cached_proto.h).
 *
 * Each type's body is described once, as the set of fields it carries, so
 * the encoder, the decoder and the size check cannot disagree. */
#include "isocache/cached_proto.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

enum {
	F_STATUS = 1u << 0,
	F_HANDLE = 1u << 1,
	F_SLOT = 1u << 2,
	F_NBLOCKS = 1u << 3,
	F_BLOCK = 1u << 4,
	F_VALUE = 1u << 5,
	F_UUID = 1u << 6,
	F_STATS = 1u << 7,
};

/* Requests in [type], replies in [type + TYPE_MAX + 1]. */
static const uint8_t proto_fields[2 * (IC_CACHED_TYPE_MAX + 1)] = {
	[IC_CACHED_HELLO] = F_SLOT | F_NBLOCKS,
	[IC_CACHED_REGISTER] = 0,
	[IC_CACHED_READ] = F_HANDLE | F_SLOT | F_NBLOCKS | F_BLOCK,
	[IC_CACHED_PREFETCH] = F_HANDLE | F_NBLOCKS | F_BLOCK,
	[IC_CACHED_STATS] = F_HANDLE,
	[IC_CACHED_DROP] = F_HANDLE,
	[IC_CACHED_BYE] = 0,
	[IC_CACHED_TYPE_MAX + 1 + IC_CACHED_HELLO] = F_STATUS | F_SLOT | F_NBLOCKS,
	[IC_CACHED_TYPE_MAX + 1 + IC_CACHED_REGISTER] = F_STATUS | F_HANDLE | F_VALUE | F_UUID,
	[IC_CACHED_TYPE_MAX + 1 + IC_CACHED_READ] = F_STATUS | F_VALUE,
	[IC_CACHED_TYPE_MAX + 1 + IC_CACHED_PREFETCH] = F_STATUS | F_VALUE,
	[IC_CACHED_TYPE_MAX + 1 + IC_CACHED_STATS] = F_STATUS | F_STATS,
	[IC_CACHED_TYPE_MAX + 1 + IC_CACHED_DROP] = F_STATUS | F_VALUE,
};

/* Flags each request type accepts; replies carry none. */
static const uint32_t proto_flags[IC_CACHED_TYPE_MAX + 1] = {
	[IC_CACHED_READ] = IC_CACHED_F_WAIT,
};

/* Index into proto_fields, or -1 for an unknown type or a reply to BYE. */
static int
proto_index(uint16_t type)
{
	unsigned base = type & ~IC_CACHED_REPLY;

	if (base < IC_CACHED_HELLO || base > IC_CACHED_TYPE_MAX)
		return -1;
	if (type & IC_CACHED_REPLY)
		return base == IC_CACHED_BYE ? -1 : (int)(base + IC_CACHED_TYPE_MAX + 1);
	return (int)base;
}

static size_t
proto_body_size(unsigned f)
{
	return ((f & F_STATUS) ? 4 : 0) + ((f & F_HANDLE) ? 4 : 0) + ((f & F_SLOT) ? 4 : 0) +
	       ((f & F_NBLOCKS) ? 4 : 0) + ((f & F_BLOCK) ? 8 : 0) + ((f & F_VALUE) ? 8 : 0) +
	       ((f & F_UUID) ? 16 : 0) + ((f & F_STATS) ? 8 * IC_CACHED_STAT_COUNT : 0);
}

size_t
ic_cached_msg_size(uint16_t type)
{
	int i = proto_index(type);

	return i < 0 ? 0 : IC_CACHED_HDR_SIZE + proto_body_size(proto_fields[i]);
}

/* A cursor over a message; `put` selects the direction so that one walk
 * over the fields serves both encoding and decoding. */
struct proto_cur {
	uint8_t *p;
	int put;
};

static void
proto_u32(struct proto_cur *c, uint32_t *v)
{
	uint32_t le;

	if (c->put) {
		le = htole32(*v);
		memcpy(c->p, &le, 4);
	} else {
		memcpy(&le, c->p, 4);
		*v = le32toh(le);
	}
	c->p += 4;
}

static void
proto_u64(struct proto_cur *c, uint64_t *v)
{
	uint64_t le;

	if (c->put) {
		le = htole64(*v);
		memcpy(c->p, &le, 8);
	} else {
		memcpy(&le, c->p, 8);
		*v = le64toh(le);
	}
	c->p += 8;
}

static void
proto_u16(struct proto_cur *c, uint16_t *v)
{
	uint16_t le;

	if (c->put) {
		le = htole16(*v);
		memcpy(c->p, &le, 2);
	} else {
		memcpy(&le, c->p, 2);
		*v = le16toh(le);
	}
	c->p += 2;
}

/* Walk the header and the fields of f; m is read (put) or written (get). */
static void
proto_walk(struct proto_cur *c, struct ic_cached_msg *m, uint32_t *magic, uint16_t *version,
	   uint32_t *len, unsigned f)
{
	proto_u32(c, magic);
	proto_u16(c, version);
	proto_u16(c, &m->type);
	proto_u32(c, len);
	proto_u32(c, &m->flags);
	proto_u64(c, &m->id);
	if (f & F_STATUS)
		proto_u32(c, (uint32_t *)&m->status);
	if (f & F_HANDLE)
		proto_u32(c, &m->handle);
	if (f & F_SLOT)
		proto_u32(c, &m->slot);
	if (f & F_NBLOCKS)
		proto_u32(c, &m->nblocks);
	if (f & F_BLOCK)
		proto_u64(c, &m->block);
	if (f & F_VALUE)
		proto_u64(c, &m->value);
	if (f & F_UUID) {
		if (c->put)
			memcpy(c->p, m->uuid, 16);
		else
			memcpy(m->uuid, c->p, 16);
		c->p += 16;
	}
	for (int i = 0; (f & F_STATS) && i < IC_CACHED_STAT_COUNT; i++)
		proto_u64(c, &m->stats[i]);
}

int
ic_cached_encode(const struct ic_cached_msg *m, uint8_t *buf, size_t cap)
{
	struct ic_cached_msg copy = *m;
	struct proto_cur c = { .p = buf, .put = 1 };
	uint32_t magic = IC_CACHED_MAGIC;
	uint16_t version = IC_CACHED_VERSION;
	int i = proto_index(m->type);
	uint32_t len;

	if (i < 0)
		return -EINVAL;
	len = (uint32_t)ic_cached_msg_size(m->type);
	if (cap < len)
		return -ENOSPC;
	proto_walk(&c, &copy, &magic, &version, &len, proto_fields[i]);
	return (int)len;
}

/* Range checks that need no session state. */
static int
proto_check_fields(const struct ic_cached_msg *m)
{
	unsigned base = m->type & ~IC_CACHED_REPLY;

	if (m->type & IC_CACHED_REPLY)
		return m->status <= 0 && m->status >= -4095 ? 0 : -EBADMSG;
	if (m->flags & ~proto_flags[base])
		return -EBADMSG;
	switch (base) {
	case IC_CACHED_HELLO:
		if (m->slot < 1 || m->slot > IC_CACHED_MAX_SLOTS || m->nblocks < 1 ||
		    m->nblocks > IC_CACHED_MAX_BLOCKS)
			return -EBADMSG;
		break;
	case IC_CACHED_READ:
	case IC_CACHED_PREFETCH:
		if (m->nblocks < 1 || m->nblocks > IC_CACHED_MAX_BLOCKS ||
		    m->block > (UINT64_MAX >> IC_CACHED_BLOCK_SHIFT) - m->nblocks)
			return -EBADMSG;
		break;
	}
	return 0;
}

int
ic_cached_decode(const uint8_t *buf, size_t len, int reply, struct ic_cached_msg *m)
{
	struct proto_cur c = { .p = (uint8_t *)buf, .put = 0 };
	uint32_t magic, wire_len;
	uint16_t version, type;
	int i;

	memset(m, 0, sizeof(*m));
	if (len < IC_CACHED_HDR_SIZE || len > IC_CACHED_MSG_MAX)
		return -EBADMSG;
	memcpy(&magic, buf, 4);
	memcpy(&version, buf + 4, 2);
	memcpy(&type, buf + 6, 2);
	if (le32toh(magic) != IC_CACHED_MAGIC)
		return -EBADMSG;
	if (le16toh(version) != IC_CACHED_VERSION)
		return -EPROTONOSUPPORT;
	type = le16toh(type);
	i = proto_index(type);
	if (i < 0 || !!(type & IC_CACHED_REPLY) != !!reply)
		return -EPROTO;
	if (len != ic_cached_msg_size(type))
		return -EBADMSG;
	proto_walk(&c, m, &magic, &version, &wire_len, proto_fields[i]);
	if (wire_len != len)
		return -EBADMSG;
	return proto_check_fields(m);
}

const char *
ic_cached_stat_name(enum ic_cached_stat s, char *buf, size_t cap)
{
	static const char *const names[IC_CACHED_STAT_LAT0] = {
		"lookups", "hits",	   "misses",	       "fills",	 "joins",
		"evictions", "bytes_served", "backing_bytes", "blocks", "mem_limit",
	};

	if ((int)s < 0 || s >= IC_CACHED_STAT_COUNT)
		snprintf(buf, cap, "unknown");
	else if (s < IC_CACHED_STAT_LAT0)
		snprintf(buf, cap, "%s", names[s]);
	else
		snprintf(buf, cap, "lat_%lluus", 1ull << (s - IC_CACHED_STAT_LAT0));
	return buf;
}
