/* The control socket's messages: every type round-trips, and every
 * malformed field is refused (docs/CONTROL-PROTOCOL.md). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "owner/ctlmsg.h"

static uint8_t buf[CTL_REPLY_BUF];

static struct ctl_msg
ctlmsg_release(void)
{
	struct ctl_msg m = { .type = CTL_RELEASE, .seq = 7 };

	strcpy(m.release.name, "vm1");
	memset(m.release.owner_id, 0xa5, 16);
	m.release.deadline_ms = 5000;
	m.release.flags = CTL_RELEASE_FORCE;
	strcpy(m.release.who, "isocache-nbd open vm1");
	strcpy(m.release.reason, "test");
	strcpy(m.release.socket, "/run/isocache/x/1.sock");
	return m;
}

static void
ctlmsg_roundtrip(void **state)
{
	struct ctl_msg in = ctlmsg_release(), out;
	size_t len = ctl_encode(&in, buf);

	(void)state;
	assert_int_equal(len, ctl_size(&in));
	assert_int_equal(ctl_decode(buf, len, &out), 0);
	assert_int_equal(out.type, CTL_RELEASE);
	assert_int_equal(out.seq, 7);
	assert_string_equal(out.release.name, "vm1");
	assert_memory_equal(out.release.owner_id, in.release.owner_id, 16);
	assert_int_equal(out.release.deadline_ms, 5000);
	assert_int_equal(out.release.flags, CTL_RELEASE_FORCE);
	assert_string_equal(out.release.who, in.release.who);
	assert_string_equal(out.release.socket, in.release.socket);

	in = (struct ctl_msg){ .type = CTL_FILTER, .seq = 9 };
	in.filter.op = 1;
	in.filter.pos = -1;
	strcpy(in.filter.arg, "delay:read=1ms");
	len = ctl_encode(&in, buf);
	assert_int_equal(ctl_decode(buf, len, &out), 0);
	assert_int_equal(out.filter.pos, -1);
	assert_string_equal(out.filter.arg, "delay:read=1ms");

	in = (struct ctl_msg){ .type = CTL_REPLY, .seq = 3 };
	in.reply.result = CTL_RELEASED;
	in.reply.generation = 1ull << 40;
	in.reply.text = "released after 3 ms";
	len = ctl_encode(&in, buf);
	assert_int_equal(ctl_decode(buf, len, &out), 0);
	assert_int_equal(out.reply.generation, 1ull << 40);
	assert_string_equal(out.reply.text, "released after 3 ms");

	in = (struct ctl_msg){ .type = CTL_STATS, .seq = 1 };
	len = ctl_encode(&in, buf);
	assert_int_equal(len, CTL_HDR_SIZE);
	assert_int_equal(ctl_decode(buf, len, &out), 0);
}

/* Encode m, let edit spoil the bytes, expect decode to say want. */
static void
ctlmsg_expect(const struct ctl_msg *m, void (*edit)(uint8_t *b, size_t *len), int want)
{
	struct ctl_msg out;
	size_t len = ctl_encode(m, buf);

	edit(buf, &len);
	assert_int_equal(ctl_decode(buf, len, &out), want);
}

static void
edit_magic(uint8_t *b, size_t *len)
{
	(void)len;
	b[0] ^= 1;
}

static void
edit_version(uint8_t *b, size_t *len)
{
	(void)len;
	b[4] = 2;
}

static void
edit_type(uint8_t *b, size_t *len)
{
	(void)len;
	b[6] = 99;
}

static void
edit_length(uint8_t *b, size_t *len)
{
	(void)len;
	b[8] ^= 4;
}

static void
edit_short(uint8_t *b, size_t *len)
{
	b[8] -= 1;
	(*len)--;
}

static void
edit_tiny(uint8_t *b, size_t *len)
{
	(void)b;
	*len = 7;
}

static void
edit_name_nul(uint8_t *b, size_t *len)
{
	(void)len;
	memset(b + 16, 'a', CTL_NAME_LEN);
}

static void
edit_deadline(uint8_t *b, size_t *len)
{
	(void)len;
	memset(b + 16 + CTL_NAME_LEN + 16, 0, 4);
}

static void
edit_flags(uint8_t *b, size_t *len)
{
	(void)len;
	b[16 + CTL_NAME_LEN + 20] = 0x2;
}

static void
edit_socket_nul(uint8_t *b, size_t *len)
{
	memset(b + *len - CTL_SOCKET_LEN, 'x', CTL_SOCKET_LEN);
}

static void
edit_none(uint8_t *b, size_t *len)
{
	(void)b;
	(void)len;
}

static void
ctlmsg_bad_fields(void **state)
{
	struct ctl_msg m = ctlmsg_release();

	(void)state;
	ctlmsg_expect(&m, edit_magic, -EBADMSG);
	ctlmsg_expect(&m, edit_version, -EPROTONOSUPPORT);
	ctlmsg_expect(&m, edit_type, -EBADMSG);
	ctlmsg_expect(&m, edit_length, -EBADMSG);
	ctlmsg_expect(&m, edit_short, -EBADMSG);
	ctlmsg_expect(&m, edit_tiny, -EBADMSG);
	ctlmsg_expect(&m, edit_name_nul, -EBADMSG);
	ctlmsg_expect(&m, edit_deadline, -EBADMSG);
	ctlmsg_expect(&m, edit_flags, -EBADMSG);
	ctlmsg_expect(&m, edit_socket_nul, -EBADMSG);

	m = (struct ctl_msg){ .type = CTL_FILTER, .seq = 1 };
	m.filter.op = 3; /* past IC_CONTROL_FILTER_RM */
	ctlmsg_expect(&m, edit_none, -EBADMSG);
	m.filter.op = 0;
	m.filter.pos = -2;
	ctlmsg_expect(&m, edit_none, -EBADMSG);

	/* A reply's status and result must agree. */
	m = (struct ctl_msg){ .type = CTL_REPLY, .seq = 1 };
	m.reply.text = "";
	m.reply.result = CTL_FAILED;
	ctlmsg_expect(&m, edit_none, -EBADMSG);
	m.reply.status = -EIO;
	ctlmsg_expect(&m, edit_none, 0);
	m.reply.status = 5;
	ctlmsg_expect(&m, edit_none, -EBADMSG);
}

/* A reply's text holds exactly one NUL, at its end. */
static void
ctlmsg_reply_text(void **state)
{
	struct ctl_msg m = { .type = CTL_REPLY, .seq = 1 }, out;
	size_t len;

	(void)state;
	m.reply.text = "abc";
	len = ctl_encode(&m, buf);
	buf[len - 1] = 'x';
	assert_int_equal(ctl_decode(buf, len, &out), -EBADMSG);
	buf[len - 1] = '\0';
	buf[len - 3] = '\0';
	assert_int_equal(ctl_decode(buf, len, &out), -EBADMSG);
}

/* Random bytes, and random single-byte changes of valid messages, never
 * crash the decoder (run under ASan in CI). */
static void
ctlmsg_garbage(void **state)
{
	struct ctl_msg m = ctlmsg_release(), out;
	unsigned seed = 12345;

	(void)state;
	for (int i = 0; i < 20000; i++) {
		size_t len = (size_t)rand_r(&seed) % (CTL_REQ_MAX + 64);

		for (size_t j = 0; j < len; j++)
			buf[j] = (uint8_t)rand_r(&seed);
		assert_int_not_equal(ctl_decode(buf, len, &out), 0);
	}
	for (int i = 0; i < 20000; i++) {
		size_t len = ctl_encode(&m, buf);

		buf[(size_t)rand_r(&seed) % len] = (uint8_t)rand_r(&seed);
		(void)ctl_decode(buf, len, &out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ctlmsg_roundtrip),
		cmocka_unit_test(ctlmsg_bad_fields),
		cmocka_unit_test(ctlmsg_reply_text),
		cmocka_unit_test(ctlmsg_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
