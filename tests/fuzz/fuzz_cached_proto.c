/* libFuzzer target: one isocached packet, decoded as a request and as a
 * reply (ic_cached_decode). Whatever the decoder accepts must carry only
 * the flags its type knows (none for a reply) and must re-encode to the
 * very same bytes: the decoder and the encoder agree on every field. */
#include <stdlib.h>
#include <string.h>

#include "isocache/cached_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The flags a request of type may carry (docs/CACHED-PROTOCOL.md); none
 * on replies. Written out here, not taken from the decoder, so that the
 * fuzzer checks the decoder against the protocol. */
static unsigned
fz_flags_allowed(unsigned type)
{
	switch (type) {
	case IC_CACHED_READ:
		return IC_CACHED_F_WAIT | IC_CACHED_F_NODATA;
	case IC_CACHED_HELLO:
		return IC_CACHED_F_RING;
	default:
		return 0;
	}
}

static void
fz_check(const uint8_t *data, size_t size, int reply)
{
	uint8_t again[IC_CACHED_MSG_MAX];
	struct ic_cached_msg m;
	int len;

	if (ic_cached_decode(data, size, reply, &m) < 0)
		return;
	if ((m.type & IC_CACHED_REPLY) != (reply ? IC_CACHED_REPLY : 0) ||
	    (m.flags & ~fz_flags_allowed(m.type)))
		abort();
	len = ic_cached_encode(&m, again, sizeof(again));
	if (len < 0 || (size_t)len != size || (size_t)len != ic_cached_msg_size(m.type) ||
	    memcmp(again, data, size))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[32];

	fz_check(data, size, 0);
	fz_check(data, size, 1);
	if (size >= 2)
		ic_cached_stat_name((enum ic_cached_stat)(int8_t)data[0], name, data[1] % sizeof(name));
	return 0;
}
