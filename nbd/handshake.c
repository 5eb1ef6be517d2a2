/* Fixed newstyle handshake and option haggling (NBD proto.md, "Newstyle
 * negotiation"). Every length the client sends is checked against what it
 * claims to contain before anything is read from it; a malformed option
 * gets NBD_REP_ERR_INVALID and negotiation goes on, while a broken framing
 * (bad magic, oversized option) drops the connection.
 *
 * TLS (proto.md, "TLS support"): a server that requires it answers
 * NBD_REP_ERR_TLS_REQD to every option before STARTTLS but ABORT, and
 * hangs up on EXPORT_NAME, which has no error reply. STARTTLS starts from a
 * clean slate: what was negotiated in the clear does not carry over. */
#include "nbd/nbd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"

/* Options one client may send before it must choose an export. */
#define HS_MAX_OPTIONS 256

struct hs {
	struct ic_nbd_io *io;
	const struct ic_nbd_catalog *cat;
	const struct ic_nbd_tls *tls;
	bool tls_on;
	struct ic_nbd_session *s;
	bool no_zeroes;
	uint32_t opt;
	/* The export SET_META_CONTEXT chose contexts for. */
	char ctx_export[IC_NBD_NAME_MAX + 1];
};

static int
hs_send(struct hs *hs, const void *a, size_t alen, const void *b, size_t blen)
{
	struct iovec iov[2] = {
		{ .iov_base = (void *)a, .iov_len = alen },
		{ .iov_base = (void *)b, .iov_len = blen },
	};

	return hs->io->send(hs->io->arg, iov, blen ? 2 : 1);
}

static int
hs_reply(struct hs *hs, uint32_t type, const void *data, uint32_t len)
{
	uint8_t h[20];

	ic_nbd_put64(h, NBD_REP_MAGIC);
	ic_nbd_put32(h + 8, hs->opt);
	ic_nbd_put32(h + 12, type);
	ic_nbd_put32(h + 16, len);
	return hs_send(hs, h, sizeof(h), data, len);
}

static int
hs_error(struct hs *hs, uint32_t type, const char *msg)
{
	ic_log(IC_LOG_DEBUG, "nbd: option %u refused: %s", hs->opt, msg);
	return hs_reply(hs, type, msg, (uint32_t)strlen(msg));
}

static const struct ic_nbd_export *
hs_find(const struct ic_nbd_catalog *cat, const uint8_t *name, uint32_t len)
{
	size_t i;

	if (len == 0 && cat->count == 1)
		return &cat->exports[0];
	for (i = 0; i < cat->count; i++) {
		const char *n = cat->exports[i].name;
		if (strlen(n) == len && memcmp(n, name, len) == 0)
			return &cat->exports[i];
	}
	return NULL;
}

/* A reader over an option's payload that refuses to run past its end. */
struct cursor {
	const uint8_t *p;
	uint32_t left;
	bool bad;
};

static const uint8_t *
cur_take(struct cursor *c, uint32_t n)
{
	const uint8_t *p = c->p;

	if (c->bad || n > c->left) {
		c->bad = true;
		return NULL;
	}
	c->p += n;
	c->left -= n;
	return p;
}

static uint32_t
cur_u32(struct cursor *c)
{
	const uint8_t *p = cur_take(c, 4);

	return p ? ic_nbd_get32(p) : 0;
}

static uint16_t
cur_u16(struct cursor *c)
{
	const uint8_t *p = cur_take(c, 2);

	return p ? ic_nbd_get16(p) : 0;
}

static uint16_t
hs_tflags(const struct hs *hs, const struct ic_nbd_export *exp)
{
	uint16_t f = exp->tflags;

	/* DF only means something once structured replies are on. */
	if (!hs->s->structured)
		f &= (uint16_t)~NBD_FLAG_SEND_DF;
	return f;
}

static int
hs_select(struct hs *hs, const struct ic_nbd_export *exp, char *msg, size_t cap)
{
	if (!hs->cat->select)
		return 0;
	msg[0] = '\0';
	return hs->cat->select(hs->cat->arg, exp, msg, cap);
}

static int
hs_info(struct hs *hs, uint16_t type, const void *data, uint32_t len)
{
	uint8_t h[2];
	uint8_t buf[2 + IC_NBD_NAME_MAX];

	ic_nbd_put16(h, type);
	if (len > IC_NBD_NAME_MAX)
		len = IC_NBD_NAME_MAX;
	memcpy(buf, h, 2);
	memcpy(buf + 2, data, len);
	return hs_reply(hs, NBD_REP_INFO, buf, 2 + len);
}

/* NBD_OPT_INFO and NBD_OPT_GO: returns 1 when GO entered transmission. */
static int
hs_info_go(struct hs *hs, const uint8_t *data, uint32_t len)
{
	struct cursor c = { .p = data, .left = len };
	uint32_t nlen = cur_u32(&c);
	const uint8_t *name = cur_take(&c, nlen);
	uint16_t nreq = cur_u16(&c);
	const uint8_t *reqs = cur_take(&c, 2u * nreq);
	const struct ic_nbd_export *exp;
	uint8_t ex[12];
	char msg[256];
	uint16_t i;
	int rc;

	if (c.bad || c.left)
		return hs_error(hs, NBD_REP_ERR_INVALID, "malformed INFO/GO request");
	exp = hs_find(hs->cat, name, nlen);
	if (!exp)
		return hs_error(hs, NBD_REP_ERR_UNKNOWN, "no such export");
	if (hs->opt == NBD_OPT_GO) {
		rc = hs_select(hs, exp, msg, sizeof(msg));
		if (rc < 0)
			return hs_error(hs, NBD_REP_ERR_POLICY, msg[0] ? msg : "export refused");
	}
	ic_nbd_put16(ex, NBD_INFO_EXPORT);
	ic_nbd_put64(ex + 2, exp->size);
	ic_nbd_put16(ex + 10, hs_tflags(hs, exp));
	rc = hs_reply(hs, NBD_REP_INFO, ex, sizeof(ex));
	for (i = 0; rc == 0 && i < nreq; i++) {
		uint16_t t = ic_nbd_get16(reqs + 2 * i);
		uint8_t bs[12];

		if (t == NBD_INFO_NAME) {
			rc = hs_info(hs, t, exp->name, (uint32_t)strlen(exp->name));
		} else if (t == NBD_INFO_DESCRIPTION && exp->description) {
			rc = hs_info(hs, t, exp->description, (uint32_t)strlen(exp->description));
		} else if (t == NBD_INFO_BLOCK_SIZE) {
			ic_nbd_put32(bs, 1);
			ic_nbd_put32(bs + 4, IC_NBD_PREF_BLOCK);
			ic_nbd_put32(bs + 8, IC_NBD_MAX_PAYLOAD);
			rc = hs_info(hs, t, bs, sizeof(bs));
		}
	}
	if (rc == 0)
		rc = hs_reply(hs, NBD_REP_ACK, NULL, 0);
	if (rc < 0 || hs->opt != NBD_OPT_GO)
		return rc;
	/* Contexts chosen for another export do not carry over. */
	if (strlen(hs->ctx_export) != nlen || memcmp(hs->ctx_export, name, nlen) != 0)
		hs->s->ctx_base = hs->s->ctx_layer = false;
	hs->s->export = exp;
	return 1;
}

static int
hs_export_name(struct hs *hs, const uint8_t *data, uint32_t len)
{
	const struct ic_nbd_export *exp = hs_find(hs->cat, data, len);
	uint8_t buf[10 + 124] = { 0 };
	char msg[256];

	/* This option has no error reply: all the server can do is hang up. */
	if (!exp) {
		ic_log(IC_LOG_INFO, "nbd: client asked for an unknown export");
		return -ENOENT;
	}
	if (hs_select(hs, exp, msg, sizeof(msg)) < 0) {
		ic_log(IC_LOG_INFO, "nbd: export %s refused: %s", exp->name, msg);
		return -EPERM;
	}
	ic_nbd_put64(buf, exp->size);
	ic_nbd_put16(buf + 8, hs_tflags(hs, exp));
	hs->s->export = exp;
	hs->s->ctx_base = hs->s->ctx_layer = false;
	return hs_send(hs, buf, hs->no_zeroes ? 10 : sizeof(buf), NULL, 0) ?: 1;
}

static int
hs_list(struct hs *hs, uint32_t len)
{
	uint8_t buf[4 + 2 * IC_NBD_NAME_MAX];
	size_t i;
	int rc;

	if (len)
		return hs_error(hs, NBD_REP_ERR_INVALID, "LIST takes no data");
	for (i = 0; i < hs->cat->count; i++) {
		const struct ic_nbd_export *e = &hs->cat->exports[i];
		int n = snprintf((char *)buf + 4, sizeof(buf) - 4, "%s%s", e->name,
				 e->description ? e->description : "");

		if (n < 0 || (size_t)n >= sizeof(buf) - 4)
			n = (int)strnlen((char *)buf + 4, sizeof(buf) - 4);
		ic_nbd_put32(buf, (uint32_t)strlen(e->name));
		rc = hs_reply(hs, NBD_REP_SERVER, buf, 4 + (uint32_t)n);
		if (rc < 0)
			return rc;
	}
	return hs_reply(hs, NBD_REP_ACK, NULL, 0);
}

static int
hs_context(struct hs *hs, uint32_t id, const char *name)
{
	uint8_t buf[4 + 32];
	uint32_t n = (uint32_t)strlen(name);

	ic_nbd_put32(buf, id);
	memcpy(buf + 4, name, n);
	return hs_reply(hs, NBD_REP_META_CONTEXT, buf, 4 + n);
}

/* Which of our contexts a query names: bit 0 base:allocation, bit 1
 * isocache:layer. LIST also accepts a bare namespace ("base:"). */
static unsigned
hs_query(const uint8_t *q, uint32_t n, bool list)
{
	static const struct {
		const char *name;
		unsigned ns_len;
		unsigned bit;
	} ctx[] = { { IC_NBD_CTX_BASE, 5, 1 }, { IC_NBD_CTX_LAYER, 9, 2 } };
	unsigned i, bits = 0;

	for (i = 0; i < 2; i++) {
		if (n == strlen(ctx[i].name) && memcmp(q, ctx[i].name, n) == 0)
			bits |= ctx[i].bit;
		else if (list && n == ctx[i].ns_len && memcmp(q, ctx[i].name, n) == 0)
			bits |= ctx[i].bit;
	}
	return bits;
}

static int
hs_meta(struct hs *hs, const uint8_t *data, uint32_t len)
{
	bool list = hs->opt == NBD_OPT_LIST_META_CONTEXT;
	struct cursor c = { .p = data, .left = len };
	uint32_t nlen = cur_u32(&c);
	const uint8_t *name = cur_take(&c, nlen);
	uint32_t nq = cur_u32(&c), i;
	unsigned bits = 0;
	int rc = 0;

	if (!list && !hs->s->structured)
		return hs_error(hs, NBD_REP_ERR_INVALID, "structured replies not negotiated");
	for (i = 0; i < nq && !c.bad; i++) {
		uint32_t qlen = cur_u32(&c);
		const uint8_t *q = cur_take(&c, qlen);

		if (q)
			bits |= hs_query(q, qlen, list);
	}
	if (c.bad || c.left || nlen > IC_NBD_NAME_MAX)
		return hs_error(hs, NBD_REP_ERR_INVALID, "malformed meta context request");
	if (!hs_find(hs->cat, name, nlen))
		return hs_error(hs, NBD_REP_ERR_UNKNOWN, "no such export");
	if (list && nq == 0)
		bits = 3;
	if (!list) {
		hs->s->ctx_base = bits & 1;
		hs->s->ctx_layer = bits & 2;
		memcpy(hs->ctx_export, name, nlen);
		hs->ctx_export[nlen] = '\0';
	}
	if (bits & 1)
		rc = hs_context(hs, IC_NBD_CTX_BASE_ID, IC_NBD_CTX_BASE);
	if (rc == 0 && (bits & 2))
		rc = hs_context(hs, IC_NBD_CTX_LAYER_ID, IC_NBD_CTX_LAYER);
	return rc ?: hs_reply(hs, NBD_REP_ACK, NULL, 0);
}

static int
hs_starttls(struct hs *hs, uint32_t len)
{
	int rc;

	if (len)
		return hs_error(hs, NBD_REP_ERR_INVALID, "STARTTLS takes no data");
	if (!hs->tls)
		return hs_error(hs, NBD_REP_ERR_POLICY, "TLS is not configured on this server");
	if (hs->tls_on)
		return hs_error(hs, NBD_REP_ERR_INVALID, "TLS is already on");
	rc = hs_reply(hs, NBD_REP_ACK, NULL, 0);
	if (rc == 0)
		rc = hs->tls->start(hs->tls->arg, hs->io);
	if (rc < 0)
		return rc;
	hs->tls_on = true;
	memset(hs->s, 0, sizeof(*hs->s));
	hs->ctx_export[0] = '\0';
	return 0;
}

/* Options a server that requires TLS refuses before STARTTLS. */
static int
hs_tls_gate(struct hs *hs)
{
	if (hs->opt == NBD_OPT_EXPORT_NAME) {
		ic_log(IC_LOG_INFO, "nbd: plain client asked for an export, TLS is required");
		return -EPERM;
	}
	return hs_error(hs, NBD_REP_ERR_TLS_REQD, "TLS is required: send NBD_OPT_STARTTLS");
}

/* Handle one option: 0 to go on, 1 when transmission starts, -errno to drop. */
static int
hs_option(struct hs *hs, const uint8_t *data, uint32_t len)
{
	if (hs->tls && hs->tls->required && !hs->tls_on && hs->opt != NBD_OPT_STARTTLS &&
	    hs->opt != NBD_OPT_ABORT)
		return hs_tls_gate(hs);
	switch (hs->opt) {
	case NBD_OPT_STARTTLS:
		return hs_starttls(hs, len);
	case NBD_OPT_EXPORT_NAME:
		return hs_export_name(hs, data, len);
	case NBD_OPT_ABORT:
		hs_reply(hs, NBD_REP_ACK, NULL, 0);
		return -ECONNABORTED;
	case NBD_OPT_LIST:
		return hs_list(hs, len);
	case NBD_OPT_INFO:
	case NBD_OPT_GO:
		return hs_info_go(hs, data, len);
	case NBD_OPT_STRUCTURED_REPLY:
		if (len)
			return hs_error(hs, NBD_REP_ERR_INVALID, "STRUCTURED_REPLY takes no data");
		hs->s->structured = true;
		return hs_reply(hs, NBD_REP_ACK, NULL, 0);
	case NBD_OPT_LIST_META_CONTEXT:
	case NBD_OPT_SET_META_CONTEXT:
		return hs_meta(hs, data, len);
	default:
		return hs_error(hs, NBD_REP_ERR_UNSUP, "option not supported");
	}
}

int
ic_nbd_handshake(const struct ic_nbd_io *io, const struct ic_nbd_catalog *cat,
		 struct ic_nbd_session *out)
{
	struct ic_nbd_io plain = *io;
	bool tls_on;

	return ic_nbd_handshake_tls(&plain, cat, NULL, out, &tls_on);
}

int
ic_nbd_handshake_tls(struct ic_nbd_io *io, const struct ic_nbd_catalog *cat,
		     const struct ic_nbd_tls *tls, struct ic_nbd_session *out, bool *tls_on)
{
	struct hs hs = { .io = io, .cat = cat, .tls = tls, .s = out };
	IC_AUTOFREE uint8_t *data = malloc(IC_NBD_OPTION_MAX);
	uint8_t greet[18], h[16];
	uint32_t cflags;
	int i, rc;

	*tls_on = false;
	if (!data)
		return -ENOMEM;
	memset(out, 0, sizeof(*out));
	ic_nbd_put64(greet, NBD_MAGIC);
	ic_nbd_put64(greet + 8, NBD_IHAVEOPT);
	ic_nbd_put16(greet + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	rc = hs_send(&hs, greet, sizeof(greet), NULL, 0);
	if (rc == 0)
		rc = io->recv(io->arg, h, 4);
	if (rc < 0)
		return rc;
	cflags = ic_nbd_get32(h);
	if (cflags & ~(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES) ||
	    !(cflags & NBD_FLAG_FIXED_NEWSTYLE)) {
		ic_log(IC_LOG_INFO, "nbd: client flags %#x refused (fixed newstyle only)", cflags);
		return -EPROTO;
	}
	hs.no_zeroes = cflags & NBD_FLAG_NO_ZEROES;
	for (i = 0; i < HS_MAX_OPTIONS; i++) {
		uint32_t len;

		rc = io->recv(io->arg, h, sizeof(h));
		if (rc < 0)
			return rc;
		hs.opt = ic_nbd_get32(h + 8);
		len = ic_nbd_get32(h + 12);
		if (ic_nbd_get64(h) != NBD_IHAVEOPT || len > IC_NBD_OPTION_MAX) {
			ic_log(IC_LOG_INFO, "nbd: malformed option header, dropping the client");
			return -EPROTO;
		}
		rc = len ? io->recv(io->arg, data, len) : 0;
		if (rc == 0)
			rc = hs_option(&hs, data, len);
		*tls_on = hs.tls_on;
		if (rc)
			return rc > 0 ? 0 : rc;
	}
	ic_log(IC_LOG_INFO, "nbd: client sent over %d options, dropping it", HS_MAX_OPTIONS);
	return -EPROTO;
}
