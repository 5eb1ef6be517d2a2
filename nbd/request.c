/* Transmission-phase framing: request headers in, reply headers and block
 * status descriptors out (NBD proto.md, "Transmission phase"). Pure
 * functions over byte buffers, so the unit tests and the fuzzer drive them
 * without a socket. */
#include "nbd/nbd.h"

#include <errno.h>
#include <string.h>

int
ic_nbd_request_decode(const uint8_t raw[IC_NBD_REQUEST_SIZE], struct ic_nbd_request *req)
{
	if (ic_nbd_get32(raw) != NBD_REQUEST_MAGIC)
		return -EPROTO;
	req->flags = ic_nbd_get16(raw + 4);
	req->type = ic_nbd_get16(raw + 6);
	req->cookie = ic_nbd_get64(raw + 8);
	req->offset = ic_nbd_get64(raw + 16);
	req->length = ic_nbd_get32(raw + 24);
	return 0;
}

static bool
req_in_range(const struct ic_nbd_request *req, uint64_t size)
{
	return req->offset <= size && req->length <= size - req->offset;
}

uint32_t
ic_nbd_request_check(const struct ic_nbd_request *req, const struct ic_nbd_session *s)
{
	const struct ic_nbd_export *exp = s->export;
	bool ro = exp->tflags & NBD_FLAG_READ_ONLY;
	uint16_t allowed = NBD_CMD_FLAG_FUA;
	uint32_t range_err = NBD_EINVAL;
	bool sized = true;

	switch (req->type) {
	case NBD_CMD_READ:
		if (s->structured)
			allowed |= NBD_CMD_FLAG_DF;
		break;
	case NBD_CMD_WRITE:
		range_err = NBD_ENOSPC;
		break;
	case NBD_CMD_WRITE_ZEROES:
		allowed |= NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO;
		range_err = NBD_ENOSPC;
		sized = false;
		break;
	case NBD_CMD_TRIM:
		/* Not offered (--discard=ignore): a client sending it anyway
		 * breaks the protocol, and the data stays. */
		if (!(exp->tflags & NBD_FLAG_SEND_TRIM) && !ro)
			return NBD_EINVAL;
		sized = false;
		break;
	case NBD_CMD_CACHE:
		sized = false;
		break;
	case NBD_CMD_BLOCK_STATUS:
		allowed |= NBD_CMD_FLAG_REQ_ONE;
		if (!s->ctx_base && !s->ctx_layer)
			return NBD_EINVAL;
		sized = false;
		break;
	case NBD_CMD_FLUSH:
		return req->flags & ~allowed || req->offset || req->length ? NBD_EINVAL : 0;
	case NBD_CMD_DISC:
		return 0;
	default:
		return NBD_EINVAL;
	}
	if (req->flags & ~allowed)
		return NBD_EINVAL;
	if (ro && (req->type == NBD_CMD_WRITE || req->type == NBD_CMD_WRITE_ZEROES ||
		   req->type == NBD_CMD_TRIM))
		return NBD_EPERM;
	if (sized && req->length > IC_NBD_MAX_PAYLOAD)
		return s->structured ? NBD_EOVERFLOW : NBD_EINVAL;
	if (req->length == 0)
		return NBD_EINVAL;
	return req_in_range(req, exp->size) ? 0 : range_err;
}

uint32_t
ic_nbd_errno(int err)
{
	switch (-err) {
	case 0:
		return 0;
	case EPERM:
	case EACCES:
	case EROFS:
	case ESTALE: /* fenced: another process owns the vdisk now */
		return NBD_EPERM;
	case ENOMEM:
		return NBD_ENOMEM;
	case EINVAL:
		return NBD_EINVAL;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return NBD_ENOSPC;
	case EOVERFLOW:
		return NBD_EOVERFLOW;
	case ENOTSUP:
		return NBD_ENOTSUP;
	case ESHUTDOWN:
		return NBD_ESHUTDOWN;
	default:
		return NBD_EIO;
	}
}

void
ic_nbd_simple_reply(uint8_t out[IC_NBD_SIMPLE_REPLY_SIZE], uint64_t cookie, uint32_t err)
{
	ic_nbd_put32(out, NBD_SIMPLE_REPLY_MAGIC);
	ic_nbd_put32(out + 4, err);
	ic_nbd_put64(out + 8, cookie);
}

void
ic_nbd_chunk(uint8_t out[IC_NBD_CHUNK_SIZE], uint16_t flags, uint16_t type, uint64_t cookie,
	     uint32_t length)
{
	ic_nbd_put32(out, NBD_STRUCTURED_REPLY_MAGIC);
	ic_nbd_put16(out + 4, flags);
	ic_nbd_put16(out + 6, type);
	ic_nbd_put64(out + 8, cookie);
	ic_nbd_put32(out + 16, length);
}

void
ic_nbd_status_init(struct ic_nbd_status *st, uint8_t *buf, uint32_t cap, uint32_t ctx_id,
		   uint64_t off, uint64_t len)
{
	ic_nbd_put32(buf, ctx_id);
	st->buf = buf;
	st->cap = cap;
	st->count = 0;
	st->end = off;
	st->limit = off + len;
	st->last = 0;
}

bool
ic_nbd_status_add(struct ic_nbd_status *st, uint64_t len, uint32_t status)
{
	uint8_t *d;

	if (len > st->limit - st->end)
		len = st->limit - st->end;
	if (len == 0)
		return false;
	if (st->count && st->last == status) {
		/* The request is at most 4 GiB - 1, so the sum fits. */
		d = st->buf + 4 + 8 * (st->count - 1);
		ic_nbd_put32(d, (uint32_t)(ic_nbd_get32(d) + len));
	} else {
		if (st->count == st->cap)
			return false;
		d = st->buf + 4 + 8 * st->count;
		ic_nbd_put32(d, (uint32_t)len);
		ic_nbd_put32(d + 4, status);
		st->count++;
		st->last = status;
	}
	st->end += len;
	return st->end < st->limit;
}

uint32_t
ic_nbd_status_base(const struct ic_nbd_extent *ext)
{
	return ext->depth < 0 || ext->zero ? NBD_STATE_HOLE | NBD_STATE_ZERO : 0;
}

uint32_t
ic_nbd_status_layer(const struct ic_nbd_extent *ext)
{
	return ext->depth < 0 ? IC_NBD_LAYER_NONE : (uint32_t)ext->depth;
}
