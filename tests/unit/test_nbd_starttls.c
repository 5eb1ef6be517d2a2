/* NBD_OPT_STARTTLS in option haggling: a server that requires TLS refuses
 * every option before it with NBD_REP_ERR_TLS_REQD (and hangs up on
 * EXPORT_NAME), STARTTLS switches the stream and forgets what was
 * negotiated in the clear, and a server without TLS refuses STARTTLS and
 * goes on. The TLS layer is a stub that counts its calls: the stream stays
 * the in-memory one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>

#include "nbd/nbd.h"
#include "tests/unit/test_nbd_mem.h"

static const struct ic_nbd_export one[] = {
	{ .name = "vm1", .size = 1 << 20, .tflags = NBD_FLAG_HAS_FLAGS },
};
static const struct ic_nbd_catalog cat = { .exports = one, .count = 1 };

static int starts;

static int
stub_start(void *arg, struct ic_nbd_io *io)
{
	(void)io;
	starts++;
	return arg ? -ECONNRESET : 0; /* arg set: the TLS handshake fails */
}

static int
run(struct mem *m, bool required, bool fail, struct ic_nbd_session *s, bool *on)
{
	struct ic_nbd_io io;
	struct ic_nbd_tls tls = { .required = required, .start = stub_start,
				  .arg = fail ? m : NULL };

	starts = 0;
	mem_io(&io, m);
	return ic_nbd_handshake_tls(&io, &cat, &tls, s, on);
}

static uint32_t
reply_type(struct mem *m)
{
	uint32_t type, len;

	mem_reply(m, &type, &len);
	return type;
}

static void
test_required_refuses_until_starttls(void **state)
{
	struct mem m = { 0 };
	struct ic_nbd_session s;
	bool on;

	(void)state;
	mem_start(&m, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	mem_opt(&m, NBD_OPT_LIST, NULL, 0);
	mem_opt(&m, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	mem_go(&m, NBD_OPT_INFO, "vm1", 0xffff);
	mem_opt(&m, NBD_OPT_STARTTLS, NULL, 0);
	mem_opt(&m, NBD_OPT_STARTTLS, NULL, 0);
	mem_opt(&m, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	mem_go(&m, NBD_OPT_GO, "vm1", 0xffff);
	assert_int_equal(run(&m, true, false, &s, &on), 0);
	assert_true(on);
	assert_int_equal(starts, 1);
	assert_ptr_equal(s.export, &one[0]);
	assert_true(s.structured);
	m.rpos = 18;
	assert_int_equal(reply_type(&m), NBD_REP_ERR_TLS_REQD); /* LIST: no names leak */
	assert_int_equal(reply_type(&m), NBD_REP_ERR_TLS_REQD);
	assert_int_equal(reply_type(&m), NBD_REP_ERR_TLS_REQD);
	assert_int_equal(reply_type(&m), NBD_REP_ACK);		/* STARTTLS */
	assert_int_equal(reply_type(&m), NBD_REP_ERR_INVALID);	/* twice */
	assert_int_equal(reply_type(&m), NBD_REP_ACK);		/* STRUCTURED_REPLY */
}

static void
test_required_export_name_hangs_up(void **state)
{
	struct mem m = { 0 };
	struct ic_nbd_session s;
	bool on;

	(void)state;
	mem_start(&m, NBD_FLAG_FIXED_NEWSTYLE);
	mem_opt(&m, NBD_OPT_EXPORT_NAME, "vm1", 3);
	assert_int_equal(run(&m, true, false, &s, &on), -EPERM);
	assert_false(on);
	assert_int_equal(m.olen, 18); /* the greeting, nothing else */
}

static void
test_clear_state_forgotten(void **state)
{
	struct mem m = { 0 };
	struct ic_nbd_session s;
	bool on;

	(void)state;
	mem_start(&m, NBD_FLAG_FIXED_NEWSTYLE);
	mem_opt(&m, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	mem_opt(&m, NBD_OPT_STARTTLS, NULL, 0);
	mem_go(&m, NBD_OPT_GO, "vm1", 0xffff);
	assert_int_equal(run(&m, false, false, &s, &on), 0);
	assert_true(on);
	assert_false(s.structured);
}

static void
test_optional_serves_plain(void **state)
{
	struct mem m = { 0 };
	struct ic_nbd_session s;
	bool on;

	(void)state;
	mem_start(&m, NBD_FLAG_FIXED_NEWSTYLE);
	mem_go(&m, NBD_OPT_GO, "vm1", 0xffff);
	assert_int_equal(run(&m, false, false, &s, &on), 0);
	assert_false(on);
	assert_int_equal(starts, 0);
}

static void
test_failed_tls_drops(void **state)
{
	struct mem m = { 0 };
	struct ic_nbd_session s;
	bool on;

	(void)state;
	mem_start(&m, NBD_FLAG_FIXED_NEWSTYLE);
	mem_opt(&m, NBD_OPT_STARTTLS, NULL, 0);
	mem_go(&m, NBD_OPT_GO, "vm1", 0xffff);
	assert_int_equal(run(&m, true, true, &s, &on), -ECONNRESET);
	assert_false(on);
	assert_null(s.export);
}

static void
test_no_tls_refuses_starttls(void **state)
{
	struct mem m = { 0 };
	struct ic_nbd_session s;
	struct ic_nbd_io io;

	(void)state;
	mem_start(&m, NBD_FLAG_FIXED_NEWSTYLE);
	mem_opt(&m, NBD_OPT_STARTTLS, NULL, 0);
	mem_go(&m, NBD_OPT_GO, "vm1", 0xffff);
	mem_io(&io, &m);
	assert_int_equal(ic_nbd_handshake(&io, &cat, &s), 0);
	m.rpos = 18;
	assert_int_equal(reply_type(&m), NBD_REP_ERR_POLICY);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_required_refuses_until_starttls),
		cmocka_unit_test(test_required_export_name_hangs_up),
		cmocka_unit_test(test_clear_state_forgotten),
		cmocka_unit_test(test_optional_serves_plain),
		cmocka_unit_test(test_failed_tls_drops),
		cmocka_unit_test(test_no_tls_refuses_starttls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
