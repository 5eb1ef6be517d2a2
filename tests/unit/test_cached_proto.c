/* isocached wire protocol: every type round-trips, and decoding refuses
 * whatever a message can get wrong on its own. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "isocache/cached_proto.h"

static const struct ic_cached_msg proto_read = {
	.type = IC_CACHED_READ,
	.flags = IC_CACHED_F_WAIT,
	.id = 0x0102030405060708ull,
	.handle = 7,
	.slot = 3,
	.nblocks = 64,
	.block = 123456789,
};

static int
proto_encode(const struct ic_cached_msg *m, uint8_t *buf)
{
	int len = ic_cached_encode(m, buf, IC_CACHED_MSG_MAX);

	assert_int_equal(len, (int)ic_cached_msg_size(m->type));
	return len;
}

static void
test_roundtrip_every_type(void **state)
{
	(void)state;
	for (uint16_t t = IC_CACHED_HELLO; t <= IC_CACHED_TYPE_MAX; t++) {
		for (int reply = 0; reply < 2; reply++) {
			struct ic_cached_msg m = { .type = t | (reply ? IC_CACHED_REPLY : 0), .id = t };
			struct ic_cached_msg back;
			uint8_t buf[IC_CACHED_MSG_MAX], again[IC_CACHED_MSG_MAX];

			if (reply && t == IC_CACHED_BYE) {
				assert_int_equal(ic_cached_msg_size(m.type), 0);
				continue;
			}
			m.status = reply ? -ENOENT : 0;
			m.slot = m.nblocks = reply ? 5 : 1;
			m.handle = reply ? 9 : 0;
			m.value = 0xfeedfacecafebeefull;
			memset(m.uuid, 0xa5, 16);
			for (int s = 0; s < IC_CACHED_STAT_COUNT; s++)
				m.stats[s] = (uint64_t)s << 40 | 1;
			int len = proto_encode(&m, buf);
			assert_int_equal(ic_cached_decode(buf, (size_t)len, reply, &back), 0);
			assert_int_equal(back.type, m.type);
			assert_int_equal(back.id, m.id);
			/* What a type carries survives; the rest decodes as zero. */
			assert_int_equal(ic_cached_encode(&back, again, sizeof(again)), len);
			assert_memory_equal(again, buf, (size_t)len);
			if (reply && t == IC_CACHED_STATS)
				assert_memory_equal(back.stats, m.stats, sizeof(m.stats));
			if (reply && t == IC_CACHED_REGISTER)
				assert_memory_equal(back.uuid, m.uuid, 16);
		}
	}
}

static void
test_little_endian_layout(void **state)
{
	uint8_t buf[IC_CACHED_MSG_MAX];
	int len = proto_encode(&proto_read, buf);

	(void)state;
	assert_int_equal(len, IC_CACHED_HDR_SIZE + 20);
	assert_memory_equal(buf, "ICCD", 4);
	assert_int_equal(buf[4], IC_CACHED_VERSION);
	assert_int_equal(buf[6], IC_CACHED_READ);
	assert_int_equal(buf[8], len);
	assert_int_equal(buf[16], 0x08); /* id, least significant byte first */
	assert_int_equal(buf[24], 7);	 /* handle */
}

/* Corrupt one byte at off to v; the result must not decode. */
static void
proto_expect_bad(size_t off, uint8_t v, int err)
{
	uint8_t buf[IC_CACHED_MSG_MAX];
	struct ic_cached_msg m;
	int len = proto_encode(&proto_read, buf);

	buf[off] = v;
	assert_int_equal(ic_cached_decode(buf, (size_t)len, 0, &m), err);
}

static void
test_refuses_bad_header(void **state)
{
	(void)state;
	proto_expect_bad(0, 'X', -EBADMSG);		   /* magic */
	proto_expect_bad(4, IC_CACHED_VERSION + 1, -EPROTONOSUPPORT); /* version */
	proto_expect_bad(6, 99, -EPROTO);		   /* type */
	proto_expect_bad(6, 0, -EPROTO);		   /* type 0 */
	proto_expect_bad(7, 0x80, -EPROTO);		   /* a reply sent as a request */
	proto_expect_bad(8, 200, -EBADMSG);		   /* length field */
	proto_expect_bad(11, 1, -EBADMSG);		   /* length field, high byte */
	proto_expect_bad(12, 0x2, -EBADMSG);		   /* unknown flag */
}

/* Version 3: MAP and its sizes, HELLO's RING flag (a flag of HELLO only),
 * the shared_hits counter; version 4: the trace replay's two counters. */
static void
test_version3(void **state)
{
	struct ic_cached_msg hello = { .type = IC_CACHED_HELLO, .flags = IC_CACHED_F_RING,
				       .slot = 1, .nblocks = 64 }, m;
	uint8_t buf[IC_CACHED_MSG_MAX];
	char name[32];
	int len = proto_encode(&hello, buf);

	(void)state;
	assert_int_equal(ic_cached_decode(buf, (size_t)len, 0, &m), 0);
	assert_int_equal(m.flags, IC_CACHED_F_RING);
	hello.flags = IC_CACHED_F_WAIT; /* READ's flag */
	len = proto_encode(&hello, buf);
	assert_int_equal(ic_cached_decode(buf, (size_t)len, 0, &m), -EBADMSG);
	assert_int_equal(ic_cached_msg_size(IC_CACHED_MAP), 28);
	assert_int_equal(ic_cached_msg_size(IC_CACHED_MAP | IC_CACHED_REPLY), 36);
	assert_string_equal(ic_cached_stat_name(IC_CACHED_STAT_SHARED_HITS, name, sizeof(name)),
			    "shared_hits");
}

/* Version 4: the dedup_bytes, trace_fills and trace_blocks counters;
 * version 5: readahead_fills and readahead_blocks; a u64 each in STATS
 * replies. Version 6: READ's NODATA flag, which no other type takes. */
static void
test_version6(void **state)
{
	struct ic_cached_msg read = { .type = IC_CACHED_READ,
				      .flags = IC_CACHED_F_WAIT | IC_CACHED_F_NODATA,
				      .handle = 1,
				      .block = 7,
				      .nblocks = 64 },
			     m;
	uint8_t buf[IC_CACHED_MSG_MAX];
	char name[32];
	int len;

	(void)state;
	assert_int_equal(IC_CACHED_VERSION, 6);
	len = proto_encode(&read, buf);
	assert_int_equal(ic_cached_decode(buf, (size_t)len, 0, &m), 0);
	assert_int_equal(m.flags, IC_CACHED_F_WAIT | IC_CACHED_F_NODATA);
	read.type = IC_CACHED_PREFETCH;
	len = proto_encode(&read, buf);
	assert_int_equal(ic_cached_decode(buf, (size_t)len, 0, &m), -EBADMSG);
	assert_int_equal(ic_cached_msg_size(IC_CACHED_STATS | IC_CACHED_REPLY), 348);
	assert_string_equal(ic_cached_stat_name(IC_CACHED_STAT_DEDUP_BYTES, name, sizeof(name)),
			    "dedup_bytes");
	assert_string_equal(ic_cached_stat_name(IC_CACHED_STAT_TRACE_FILLS, name, sizeof(name)),
			    "trace_fills");
	assert_string_equal(ic_cached_stat_name(IC_CACHED_STAT_TRACE_BLOCKS, name, sizeof(name)),
			    "trace_blocks");
	assert_string_equal(ic_cached_stat_name(IC_CACHED_STAT_AHEAD_FILLS, name, sizeof(name)),
			    "readahead_fills");
	assert_string_equal(ic_cached_stat_name(IC_CACHED_STAT_AHEAD_BLOCKS, name, sizeof(name)),
			    "readahead_blocks");
}

static void
test_refuses_bad_fields(void **state)
{
	(void)state;
	proto_expect_bad(IC_CACHED_HDR_SIZE + 8, 0, -EBADMSG);  /* nblocks 0 */
	proto_expect_bad(IC_CACHED_HDR_SIZE + 8, 65, -EBADMSG); /* nblocks > 64 */
	proto_expect_bad(IC_CACHED_HDR_SIZE + 19, 0xff, -EBADMSG); /* block overflows bytes */
}

static void
test_refuses_bad_sizes(void **state)
{
	uint8_t buf[IC_CACHED_MSG_MAX + 8] = { 0 };
	struct ic_cached_msg m;
	int len = proto_encode(&proto_read, buf);

	(void)state;
	assert_int_equal(ic_cached_decode(buf, (size_t)len - 1, 0, &m), -EBADMSG);
	assert_int_equal(ic_cached_decode(buf, (size_t)len + 1, 0, &m), -EBADMSG);
	assert_int_equal(ic_cached_decode(buf, 3, 0, &m), -EBADMSG);
	assert_int_equal(ic_cached_decode(buf, sizeof(buf), 0, &m), -EBADMSG);
	assert_int_equal(ic_cached_encode(&proto_read, buf, 10), -ENOSPC);
	m = proto_read;
	m.type = 42;
	assert_int_equal(ic_cached_encode(&m, buf, sizeof(buf)), -EINVAL);
}

static void
test_refuses_wrong_direction_and_status(void **state)
{
	struct ic_cached_msg m = { .type = IC_CACHED_READ | IC_CACHED_REPLY, .status = 5 };
	uint8_t buf[IC_CACHED_MSG_MAX];
	int len = proto_encode(&m, buf);

	(void)state;
	assert_int_equal(ic_cached_decode(buf, (size_t)len, 0, &m), -EPROTO);
	assert_int_equal(ic_cached_decode(buf, (size_t)len, 1, &m), -EBADMSG);
	/* A reply carries no flags, not even the request's WAIT (found by fuzz_cached_proto). */
	m = (struct ic_cached_msg){ .type = IC_CACHED_READ | IC_CACHED_REPLY,
				    .flags = IC_CACHED_F_WAIT };
	len = proto_encode(&m, buf);
	assert_int_equal(ic_cached_decode(buf, (size_t)len, 1, &m), -EBADMSG);
	m = (struct ic_cached_msg){ .type = IC_CACHED_HELLO, .slot = IC_CACHED_MAX_SLOTS + 1,
				    .nblocks = 1 };
	len = proto_encode(&m, buf);
	assert_int_equal(ic_cached_decode(buf, (size_t)len, 0, &m), -EBADMSG);
}

/* Mutated and random packets: decoding never crashes, and whatever it
 * accepts re-encodes to exactly the bytes it came from (nothing ignored). */
static void
test_mutations_accepted_only_if_canonical(void **state)
{
	uint8_t buf[IC_CACHED_MSG_MAX], again[IC_CACHED_MSG_MAX];
	uint64_t x = 0x9e3779b97f4a7c15ull;
	struct ic_cached_msg m;
	unsigned accepted = 0;

	(void)state;
	for (int i = 0; i < 200000; i++) {
		int len = proto_encode(&proto_read, buf);

		for (int k = 0; k < 1 + i % 4; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			buf[x % (uint64_t)len] = (uint8_t)(x >> 32);
		}
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t n = i % 8 ? (size_t)len : (size_t)(x % sizeof(buf));
		for (int reply = 0; reply < 2; reply++) {
			if (ic_cached_decode(buf, n, reply, &m) != 0)
				continue;
			accepted++;
			assert_int_equal(ic_cached_encode(&m, again, sizeof(again)), (int)n);
			assert_memory_equal(again, buf, n);
		}
	}
	assert_true(accepted > 0); /* some mutations only touch values */
}

static void
test_stat_names(void **state)
{
	char b[32];

	(void)state;
	assert_string_equal(ic_cached_stat_name(IC_CACHED_STAT_HITS, b, sizeof(b)), "hits");
	assert_string_equal(ic_cached_stat_name(IC_CACHED_STAT_LAT0 + 4, b, sizeof(b)), "lat_16us");
	assert_string_equal(ic_cached_stat_name(IC_CACHED_STAT_COUNT, b, sizeof(b)), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_every_type),
		cmocka_unit_test(test_little_endian_layout),
		cmocka_unit_test(test_refuses_bad_header),
		cmocka_unit_test(test_version3),
		cmocka_unit_test(test_version6),
		cmocka_unit_test(test_refuses_bad_fields),
		cmocka_unit_test(test_refuses_bad_sizes),
		cmocka_unit_test(test_refuses_wrong_direction_and_status),
		cmocka_unit_test(test_mutations_accepted_only_if_canonical),
		cmocka_unit_test(test_stat_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
