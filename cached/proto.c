/* Encoding and validation of isocached messages (include/isocache/cached_proto.h).
 *
 * Each type's body is described once, as the set of fields it carries, so
 * the encoder, the decoder and the size check cannot disagree. */
#include "isocache/cached_proto.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

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
	[IC_CACHED_MAP] = F_HANDLE,
	[IC_CACHED_TYPE_MAX + 1 + IC_CACHED_HELLO] = F_STATUS | F_SLOT | F_NBLOCKS,
	[IC_CACHED_TYPE_MAX + 1 + IC_CACHED_REGISTER] = F_STATUS | F_HANDLE | F_VALUE | F_UUID,
	[IC_CACHED_TYPE_MAX + 1 + IC_CACHED_READ] = F_STATUS | F_VALUE,
	[IC_CACHED_TYPE_MAX + 1 + IC_CACHED_PREFETCH] = F_STATUS | F_VALUE,
	[IC_CACHED_TYPE_MAX + 1 + IC_CACHED_STATS] = F_STATUS | F_STATS,
	[IC_CACHED_TYPE_MAX + 1 + IC_CACHED_DROP] = F_STATUS | F_VALUE,
	[IC_CACHED_TYPE_MAX + 1 + IC_CACHED_MAP] = F_STATUS | F_VALUE,
};

/* Flags each request type accepts; replies carry none. */
static const uint32_t proto_flags[IC_CACHED_TYPE_MAX + 1] = {
	[IC_CACHED_HELLO] = IC_CACHED_F_RING,
	[IC_CACHED_READ] = IC_CACHED_F_WAIT | IC_CACHED_F_NODATA,
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

/* One little-endian integer of 2, 4 or 8 bytes at the cursor, written
 * byte by byte so the host's byte order does not matter. */
static void
proto_int(struct proto_cur *c, void *v, size_t size)
{
	uint16_t v16;
	uint32_t v32;
	uint64_t x = 0;

	if (c->put) {
		if (size == 2)
			x = (memcpy(&v16, v, 2), v16);
		else if (size == 4)
			x = (memcpy(&v32, v, 4), v32);
		else
			memcpy(&x, v, 8);
		for (size_t i = 0; i < size; i++)
			c->p[i] = (uint8_t)(x >> (8 * i));
	} else {
		for (size_t i = 0; i < size; i++)
			x |= (uint64_t)c->p[i] << (8 * i);
		v16 = (uint16_t)x;
		v32 = (uint32_t)x;
		memcpy(v, size == 2 ? (void *)&v16 : size == 4 ? (void *)&v32 : (void *)&x, size);
	}
	c->p += size;
}

#define PROTO_INT(c, p) proto_int((c), (p), sizeof(*(p)))

/* Walk the header and the fields of f; m is read (put) or written (get). */
static void
proto_walk(struct proto_cur *c, struct ic_cached_msg *m, uint32_t *magic, uint16_t *version,
	   uint32_t *len, unsigned f)
{
	PROTO_INT(c, magic);
	PROTO_INT(c, version);
	PROTO_INT(c, &m->type);
	PROTO_INT(c, len);
	PROTO_INT(c, &m->flags);
	PROTO_INT(c, &m->id);
	if (f & F_STATUS)
		PROTO_INT(c, &m->status);
	if (f & F_HANDLE)
		PROTO_INT(c, &m->handle);
	if (f & F_SLOT)
		PROTO_INT(c, &m->slot);
	if (f & F_NBLOCKS)
		PROTO_INT(c, &m->nblocks);
	if (f & F_BLOCK)
		PROTO_INT(c, &m->block);
	if (f & F_VALUE)
		PROTO_INT(c, &m->value);
	if (f & F_UUID) {
		if (c->put)
			memcpy(c->p, m->uuid, 16);
		else
			memcpy(m->uuid, c->p, 16);
		c->p += 16;
	}
	for (int i = 0; (f & F_STATS) && i < IC_CACHED_STAT_COUNT; i++)
		PROTO_INT(c, &m->stats[i]);
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
	int reply = !!(m->type & IC_CACHED_REPLY);

	if (m->flags & ~(reply ? 0 : proto_flags[base]))
		return -EBADMSG;
	if (reply)
		return m->status <= 0 && m->status >= -4095 ? 0 : -EBADMSG;
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
	PROTO_INT(&c, &magic);
	PROTO_INT(&c, &version);
	PROTO_INT(&c, &type);
	c.p = (uint8_t *)buf;
	if (magic != IC_CACHED_MAGIC)
		return -EBADMSG;
	if (version != IC_CACHED_VERSION)
		return -EPROTONOSUPPORT;
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

void
ic_cached_attach_fd(struct msghdr *mh, union ic_cached_cmsg *cb, int fd)
{
	struct cmsghdr *cm;

	memset(cb, 0, sizeof(*cb));
	mh->msg_control = cb->buf;
	mh->msg_controllen = sizeof(cb->buf);
	cm = CMSG_FIRSTHDR(mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
}

int
ic_cached_send(int sock, const void *buf, size_t len, int fd)
{
	union ic_cached_cmsg cbuf;
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0)
		ic_cached_attach_fd(&mh, &cbuf, fd);
	return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

const char *
ic_cached_stat_name(enum ic_cached_stat s, char *buf, size_t cap)
{
	static const char *const names[IC_CACHED_STAT_LAT0] = {
		"lookups", "hits",	   "misses",	       "fills",	 "joins",
		"evictions", "bytes_served", "backing_bytes", "blocks", "mem_limit",
		"l2_hits", "l2_misses", "l2_bytes_read", "l2_bytes_written", "l2_csum_fails",
		"l2_evictions", "l2_blocks", "l2_limit", "shared_hits", "dedup_bytes",
		"trace_fills", "trace_blocks", "readahead_fills", "readahead_blocks",
	};

	if ((int)s < 0 || s >= IC_CACHED_STAT_COUNT)
		snprintf(buf, cap, "unknown");
	else if (s < IC_CACHED_STAT_LAT0)
		snprintf(buf, cap, "%s", names[s]);
	else
		snprintf(buf, cap, "lat_%lluus", 1ull << (s - IC_CACHED_STAT_LAT0));
	return buf;
}
