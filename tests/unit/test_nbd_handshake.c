/* Option haggling: every option, good and malformed, against the server
 * side of ic_nbd_handshake over an in-memory stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>

#include "nbd/nbd.h"
#include "tests/unit/test_nbd_mem.h"

static const struct ic_nbd_export two[] = {
	{ .name = "vm1", .description = "a vdisk", .size = 1 << 20,
	  .tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_DF },
	{ .name = "vm1@s", .size = 1 << 20, .tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY },
};
static const struct ic_nbd_catalog cat2 = { .exports = two, .count = 2 };
static const struct ic_nbd_catalog cat1 = { .exports = two, .count = 1 };

static int
run(struct mem *m, const struct ic_nbd_catalog *cat, struct ic_nbd_session *s)
{
	struct ic_nbd_io io;

	mem_io(&io, m);
	return ic_nbd_handshake(&io, cat, s);
}

static void
test_greeting_and_go(void **state)
{
	struct mem m = { 0 };
	struct ic_nbd_session s;
	uint32_t type, len;
	const uint8_t *d;

	(void)state;
	mem_start(&m, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	mem_opt(&m, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	mem_go(&m, NBD_OPT_GO, "vm1", NBD_INFO_BLOCK_SIZE);
	assert_int_equal(run(&m, &cat2, &s), 0);
	assert_ptr_equal(s.export, &two[0]);
	assert_true(s.structured);
	assert_int_equal(ic_nbd_get64(m.out), NBD_MAGIC);
	assert_int_equal(ic_nbd_get64(m.out + 8), NBD_IHAVEOPT);
	m.rpos = 18;
	assert_int_equal(mem_reply(&m, &type, &len), NBD_OPT_STRUCTURED_REPLY);
	assert_int_equal(type, NBD_REP_ACK);
	mem_reply(&m, &type, &len);
	d = m.out + m.rpos - len;
	assert_int_equal(type, NBD_REP_INFO);
	assert_int_equal(ic_nbd_get16(d), NBD_INFO_EXPORT);
	assert_int_equal(ic_nbd_get64(d + 2), 1 << 20);
	assert_true(ic_nbd_get16(d + 10) & NBD_FLAG_SEND_DF);
	mem_reply(&m, &type, &len);
	d = m.out + m.rpos - len;
	assert_int_equal(ic_nbd_get16(d), NBD_INFO_BLOCK_SIZE);
	assert_int_equal(ic_nbd_get32(d + 2), 1);
	assert_int_equal(ic_nbd_get32(d + 10), IC_NBD_MAX_PAYLOAD);
	mem_reply(&m, &type, &len);
	assert_int_equal(type, NBD_REP_ACK);
	assert_int_equal(m.rpos, m.olen);
}

static void
test_df_hidden_without_structured(void **state)
{
	struct mem m = { 0 };
	struct ic_nbd_session s;
	uint32_t type, len;

	(void)state;
	mem_start(&m, NBD_FLAG_FIXED_NEWSTYLE);
	mem_go(&m, NBD_OPT_GO, "vm1", 0xffff);
	assert_int_equal(run(&m, &cat2, &s), 0);
	m.rpos = 18;
	mem_reply(&m, &type, &len);
	assert_false(ic_nbd_get16(m.out + m.rpos - 2) & NBD_FLAG_SEND_DF);
}

static void
test_default_export_only_when_one(void **state)
{
	struct mem m = { 0 };
	struct ic_nbd_session s;
	uint32_t type, len;

	(void)state;
	mem_start(&m, NBD_FLAG_FIXED_NEWSTYLE);
	mem_go(&m, NBD_OPT_GO, "", 0xffff);
	assert_int_equal(run(&m, &cat1, &s), 0);
	assert_ptr_equal(s.export, &two[0]);

	mem_start(&m, NBD_FLAG_FIXED_NEWSTYLE);
	mem_go(&m, NBD_OPT_GO, "", 0xffff);
	assert_int_equal(run(&m, &cat2, &s), -ECONNRESET);
	m.rpos = 18;
	mem_reply(&m, &type, &len);
	assert_int_equal(type, NBD_REP_ERR_UNKNOWN);
}

static void
test_unknown_option_goes_on(void **state)
{
	struct mem m = { 0 };
	struct ic_nbd_session s;
	uint32_t type, len;

	(void)state;
	mem_start(&m, NBD_FLAG_FIXED_NEWSTYLE);
	mem_opt(&m, 42, "junk", 4);
	mem_opt(&m, NBD_OPT_STRUCTURED_REPLY, "x", 1);
	mem_opt(&m, NBD_OPT_LIST, NULL, 0);
	mem_go(&m, NBD_OPT_INFO, "nope", 0xffff);
	mem_opt(&m, NBD_OPT_EXPORT_NAME, "vm1@s", 5);
	assert_int_equal(run(&m, &cat2, &s), 0);
	assert_ptr_equal(s.export, &two[1]);
	assert_false(s.structured);
	m.rpos = 18;
	assert_int_equal(mem_reply(&m, &type, &len), 42);
	assert_int_equal(type, NBD_REP_ERR_UNSUP);
	mem_reply(&m, &type, &len);
	assert_int_equal(type, NBD_REP_ERR_INVALID);
	mem_reply(&m, &type, &len);
	assert_int_equal(type, NBD_REP_SERVER);
	assert_int_equal(ic_nbd_get32(m.out + m.rpos - len), 3);
	assert_memory_equal(m.out + m.rpos - len + 4, "vm1a vdisk", 10);
	mem_reply(&m, &type, &len);
	assert_int_equal(type, NBD_REP_SERVER);
	mem_reply(&m, &type, &len);
	assert_int_equal(type, NBD_REP_ACK);
	mem_reply(&m, &type, &len);
	assert_int_equal(type, NBD_REP_ERR_UNKNOWN);
	/* EXPORT_NAME: size, flags and 124 zero bytes (NO_ZEROES not asked). */
	assert_int_equal(m.olen - m.rpos, 134);
	assert_int_equal(ic_nbd_get64(m.out + m.rpos), 1 << 20);
	assert_true(ic_nbd_get16(m.out + m.rpos + 8) & NBD_FLAG_READ_ONLY);
}

static void
test_meta_contexts(void **state)
{
	struct mem m = { 0 };
	struct ic_nbd_session s;
	uint32_t type, len;
	const char *q1[] = { IC_NBD_CTX_BASE, "qemu:dirty-bitmap:x", IC_NBD_CTX_LAYER };
	const char *q2[] = { "base:" };

	(void)state;
	mem_start(&m, NBD_FLAG_FIXED_NEWSTYLE);
	mem_meta(&m, NBD_OPT_SET_META_CONTEXT, "vm1", q1, 3); /* before structured: refused */
	mem_opt(&m, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	mem_meta(&m, NBD_OPT_LIST_META_CONTEXT, "vm1", q2, 1);
	mem_meta(&m, NBD_OPT_SET_META_CONTEXT, "vm1", q1, 3);
	mem_go(&m, NBD_OPT_GO, "vm1", 0xffff);
	assert_int_equal(run(&m, &cat2, &s), 0);
	assert_true(s.ctx_base);
	assert_true(s.ctx_layer);
	m.rpos = 18;
	mem_reply(&m, &type, &len);
	assert_int_equal(type, NBD_REP_ERR_INVALID);
	mem_reply(&m, &type, &len); /* structured ACK */
	mem_reply(&m, &type, &len);
	assert_int_equal(type, NBD_REP_META_CONTEXT);
	assert_int_equal(len, 4 + strlen(IC_NBD_CTX_BASE));
	mem_reply(&m, &type, &len);
	assert_int_equal(type, NBD_REP_ACK);
	mem_reply(&m, &type, &len);
	assert_int_equal(ic_nbd_get32(m.out + m.rpos - len), IC_NBD_CTX_BASE_ID);
	mem_reply(&m, &type, &len);
	assert_int_equal(ic_nbd_get32(m.out + m.rpos - len), IC_NBD_CTX_LAYER_ID);
	assert_memory_equal(m.out + m.rpos - len + 4, IC_NBD_CTX_LAYER, len - 4);
	mem_reply(&m, &type, &len);
	assert_int_equal(type, NBD_REP_ACK);
}

static void
test_contexts_dropped_for_other_export(void **state)
{
	struct mem m = { 0 };
	struct ic_nbd_session s;
	const char *q[] = { IC_NBD_CTX_BASE };

	(void)state;
	mem_start(&m, NBD_FLAG_FIXED_NEWSTYLE);
	mem_opt(&m, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	mem_meta(&m, NBD_OPT_SET_META_CONTEXT, "vm1", q, 1);
	mem_go(&m, NBD_OPT_GO, "vm1@s", 0xffff);
	assert_int_equal(run(&m, &cat2, &s), 0);
	assert_false(s.ctx_base);
}

static void
test_malformed(void **state)
{
	struct mem m = { 0 };
	struct ic_nbd_session s;
	uint8_t bad[8];

	(void)state;
	/* Unknown client flag bits: dropped. */
	mem_start(&m, 0x80 | NBD_FLAG_FIXED_NEWSTYLE);
	assert_int_equal(run(&m, &cat2, &s), -EPROTO);
	/* Truncated stream. */
	memset(&m, 0, sizeof(m));
	mem_in(&m, "\0\0", 2);
	assert_int_equal(run(&m, &cat2, &s), -ECONNRESET);
	/* Bad option magic. */
	mem_start(&m, NBD_FLAG_FIXED_NEWSTYLE);
	mem_in(&m, "IHAVEOPX\0\0\0\7\0\0\0\0", 16);
	assert_int_equal(run(&m, &cat2, &s), -EPROTO);
	/* Oversized option. */
	mem_start(&m, NBD_FLAG_FIXED_NEWSTYLE);
	ic_nbd_put64(bad, NBD_IHAVEOPT);
	mem_in(&m, bad, 8);
	mem_in(&m, "\0\0\0\7\xff\xff\xff\xff", 8);
	assert_int_equal(run(&m, &cat2, &s), -EPROTO);
	/* GO whose name length overruns the option: ERR_INVALID, then EOF. */
	mem_start(&m, NBD_FLAG_FIXED_NEWSTYLE);
	mem_opt(&m, NBD_OPT_GO, "\xff\xff\xff\xff" "ab", 6);
	assert_int_equal(run(&m, &cat2, &s), -ECONNRESET);
	/* ABORT. */
	mem_start(&m, NBD_FLAG_FIXED_NEWSTYLE);
	mem_opt(&m, NBD_OPT_ABORT, NULL, 0);
	assert_int_equal(run(&m, &cat2, &s), -ECONNABORTED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting_and_go),
		cmocka_unit_test(test_df_hidden_without_structured),
		cmocka_unit_test(test_default_export_only_when_one),
		cmocka_unit_test(test_unknown_option_goes_on),
		cmocka_unit_test(test_meta_contexts),
		cmocka_unit_test(test_contexts_dropped_for_other_export),
		cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
