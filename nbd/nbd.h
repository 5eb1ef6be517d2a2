/* The NBD protocol engine of isocache-nbd (library ic_nbd).
 *
 * Wire format after the NBD protocol specification (proto.md): fixed
 * newstyle handshake, option haggling, simple and structured replies. The
 * engine knows nothing about vdisks: an export is a size, flags and a
 * backend ops table, so the same code serves the vdisk library, the unit
 * tests' memory disks and the fuzzer.
 *
 * Errors are negative errno. Values on the wire are big-endian; the encode
 * and decode helpers below are the only places that swap bytes.
 */
#ifndef IC_NBD_NBD_H
#define IC_NBD_NBD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* ---- Wire constants ---- */

#define NBD_MAGIC 0x4e42444d41474943ull	 /* "NBDMAGIC" */
#define NBD_IHAVEOPT 0x49484156454f5054ull /* "IHAVEOPT" */
#define NBD_REP_MAGIC 0x0003e889045565a9ull
#define NBD_REQUEST_MAGIC 0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC 0x67446698u
#define NBD_STRUCTURED_REPLY_MAGIC 0x668e33efu

/* Handshake flags (server, u16) and client flags (u32). */
#define NBD_FLAG_FIXED_NEWSTYLE 0x1u
#define NBD_FLAG_NO_ZEROES 0x2u

/* Options. */
#define NBD_OPT_EXPORT_NAME 1u
#define NBD_OPT_ABORT 2u
#define NBD_OPT_LIST 3u
#define NBD_OPT_STARTTLS 5u
#define NBD_OPT_INFO 6u
#define NBD_OPT_GO 7u
#define NBD_OPT_STRUCTURED_REPLY 8u
#define NBD_OPT_LIST_META_CONTEXT 9u
#define NBD_OPT_SET_META_CONTEXT 10u

/* Option replies. */
#define NBD_REP_ACK 1u
#define NBD_REP_SERVER 2u
#define NBD_REP_INFO 3u
#define NBD_REP_META_CONTEXT 4u
#define NBD_REP_ERR_UNSUP 0x80000001u
#define NBD_REP_ERR_POLICY 0x80000002u
#define NBD_REP_ERR_INVALID 0x80000003u
#define NBD_REP_ERR_TLS_REQD 0x80000005u
#define NBD_REP_ERR_UNKNOWN 0x80000006u
#define NBD_REP_ERR_TOO_BIG 0x80000009u

/* NBD_REP_INFO types. */
#define NBD_INFO_EXPORT 0u
#define NBD_INFO_NAME 1u
#define NBD_INFO_DESCRIPTION 2u
#define NBD_INFO_BLOCK_SIZE 3u

/* Transmission flags (u16). */
#define NBD_FLAG_HAS_FLAGS (1u << 0)
#define NBD_FLAG_READ_ONLY (1u << 1)
#define NBD_FLAG_SEND_FLUSH (1u << 2)
#define NBD_FLAG_SEND_FUA (1u << 3)
#define NBD_FLAG_SEND_TRIM (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN (1u << 8)
#define NBD_FLAG_SEND_CACHE (1u << 10)
#define NBD_FLAG_SEND_FAST_ZERO (1u << 11)

/* Commands and their flags. */
#define NBD_CMD_READ 0u
#define NBD_CMD_WRITE 1u
#define NBD_CMD_DISC 2u
#define NBD_CMD_FLUSH 3u
#define NBD_CMD_TRIM 4u
#define NBD_CMD_CACHE 5u
#define NBD_CMD_WRITE_ZEROES 6u
#define NBD_CMD_BLOCK_STATUS 7u

#define NBD_CMD_FLAG_FUA (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE (1u << 1)
#define NBD_CMD_FLAG_DF (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE (1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO (1u << 4)

/* Structured reply chunks. */
#define NBD_REPLY_FLAG_DONE 0x1u
#define NBD_REPLY_TYPE_NONE 0u
#define NBD_REPLY_TYPE_OFFSET_DATA 1u
#define NBD_REPLY_TYPE_OFFSET_HOLE 2u
#define NBD_REPLY_TYPE_BLOCK_STATUS 5u
#define NBD_REPLY_TYPE_ERROR 0x8001u

/* Error values on the wire. */
#define NBD_EPERM 1u
#define NBD_EIO 5u
#define NBD_ENOMEM 12u
#define NBD_EINVAL 22u
#define NBD_ENOSPC 28u
#define NBD_EOVERFLOW 75u
#define NBD_ENOTSUP 95u
#define NBD_ESHUTDOWN 108u

/* base:allocation status bits. */
#define NBD_STATE_HOLE 0x1u
#define NBD_STATE_ZERO 0x2u

/* Meta contexts this server offers, and the ids it gives them. */
#define IC_NBD_CTX_BASE "base:allocation"
#define IC_NBD_CTX_LAYER "isocache:layer"
#define IC_NBD_CTX_BASE_ID 1u
#define IC_NBD_CTX_LAYER_ID 2u
/* isocache:layer value of an extent no layer holds. */
#define IC_NBD_LAYER_NONE 0xffffffffu

#define IC_NBD_REQUEST_SIZE 28
#define IC_NBD_SIMPLE_REPLY_SIZE 16
#define IC_NBD_CHUNK_SIZE 20
#define IC_NBD_NAME_MAX 4096	    /* longest export name or meta context query */
#define IC_NBD_OPTION_MAX 65536	    /* longest option payload accepted */
#define IC_NBD_MAX_PAYLOAD (32u << 20) /* advertised maximum request */
#define IC_NBD_PREF_BLOCK 4096u

/* ---- Byte order ---- */

static inline void
ic_nbd_put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static inline void
ic_nbd_put32(uint8_t *p, uint32_t v)
{
	ic_nbd_put16(p, v >> 16);
	ic_nbd_put16(p + 2, v);
}

static inline void
ic_nbd_put64(uint8_t *p, uint64_t v)
{
	ic_nbd_put32(p, v >> 32);
	ic_nbd_put32(p + 4, v);
}

static inline uint16_t
ic_nbd_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
ic_nbd_get32(const uint8_t *p)
{
	return (uint32_t)ic_nbd_get16(p) << 16 | ic_nbd_get16(p + 2);
}

static inline uint64_t
ic_nbd_get64(const uint8_t *p)
{
	return (uint64_t)ic_nbd_get32(p) << 32 | ic_nbd_get32(p + 4);
}

/* ---- Transport ---- */

/* How the engine reads and writes the client's byte stream. recv fills all
 * of buf (0) or fails (-errno; -ECONNRESET at end of stream); recv_some
 * (optional) returns what one read gives, 1 to cap bytes, or fails alike;
 * send writes all of iov (0) or fails. A socket uses ic_nbd_io_fd; tests
 * use memory. */
struct ic_nbd_io {
	int (*recv)(void *arg, void *buf, size_t len);
	int (*recv_some)(void *arg, void *buf, size_t cap);
	int (*send)(void *arg, const struct iovec *iov, int n);
	/* Optional: end the stream now (both directions), from any thread. */
	void (*hangup)(void *arg);
	/* Optional: wait at most timeout_ms for bytes to read (or the end of
	 * the stream). 1 when there are, 0 when the time ran out, or -errno.
	 * Without it a connection never finds itself idle (nbd/conn.c). */
	int (*wait)(void *arg, int timeout_ms);
	/* Optional: send iov[0..n) and then len bytes taken from pipe (its
	 * read end, holding at least len) with splice(2), contiguously; 0 or
	 * -errno as send. Set only where the stream can take a splice. */
	int (*send_pipe)(void *arg, const struct iovec *iov, int n, int pipe, size_t len);
	void *arg;
};

/* The fds of one connection (in == out for a socket, 0 and 1 for -s). */
struct ic_nbd_fds {
	int in, out;
};

/* An io over fds (arg must point to a struct ic_nbd_fds). */
void ic_nbd_io_fd(struct ic_nbd_io *io, struct ic_nbd_fds *fds);

/* ---- Exports and handshake ---- */

/* The storage behind an export. All ops return 0 or -errno and are called
 * from many threads at once. -ESTALE means the export was taken away
 * (another process owns the vdisk now): the client gets EPERM for that
 * request and the connection is hung up. */
struct ic_nbd_extent {
	uint64_t off, len;
	int depth; /* layer holding it, 0 = leaf; -1 = no layer */
	bool zero; /* reads as zeroes */
};

struct ic_nbd_backend_ops {
	int (*pread)(void *h, void *buf, uint32_t len, uint64_t off);
	int (*pwrite)(void *h, const void *buf, uint32_t len, uint64_t off, bool fua);
	int (*trim)(void *h, uint32_t len, uint64_t off, bool fua);
	int (*zero)(void *h, uint32_t len, uint64_t off, bool fua);
	int (*cache)(void *h, uint32_t len, uint64_t off);
	int (*flush)(void *h);
	/* Extents of [off, off+len) in order; fn returns non-zero to stop. */
	int (*extents)(void *h, uint64_t off, uint64_t len,
		       int (*fn)(void *arg, const struct ic_nbd_extent *ext), void *arg);
	/* Optional: pread and extents of one range from one lookup, the bytes
	 * of extents that read as zeroes zero-filled; fn's non-zero return
	 * stops the extents, not the read. Structured reads larger than
	 * 64 KiB use it; without it they are read whole and scanned. */
	int (*pread_extents)(void *h, void *buf, uint32_t len, uint64_t off,
			     int (*fn)(void *arg, const struct ic_nbd_extent *ext), void *arg);
	/* Optional: pread only if it completes without waiting, else -EAGAIN
	 * (and buf may have been written). Reads of up to 1 MiB try it on
	 * the thread that reads the stream before a worker takes them. */
	int (*pread_nowait)(void *h, void *buf, uint32_t len, uint64_t off);
	/* Optional: pread into pipe (its write end) without copying the
	 * bytes, when the pipe may keep them; without wait, only if that
	 * needs no waiting. 0, or -EAGAIN (the pipe may hold part of them).
	 * Reads of more than 64 KiB over a transport that can splice
	 * (send_pipe) try it first (nbd/conn.c). */
	int (*pread_pipe)(void *h, int pipe, uint32_t len, uint64_t off, bool wait);
};

struct ic_nbd_export {
	const char *name;
	const char *description; /* may be NULL */
	uint64_t size;
	uint16_t tflags;	 /* transmission flags, HAS_FLAGS included */
	void *priv;		 /* the server's, untouched by the engine */
};

/* What the client may choose from. With exactly one export, the empty name
 * selects it too. */
struct ic_nbd_catalog {
	const struct ic_nbd_export *exports;
	size_t count;
	/* Optional: called when GO or EXPORT_NAME selects an export; a
	 * negative errno refuses it (the client gets ERR_POLICY with msg). */
	int (*select)(void *arg, const struct ic_nbd_export *exp, char *msg, size_t cap);
	void *arg;
};

/* What the handshake settled. */
struct ic_nbd_session {
	const struct ic_nbd_export *export;
	bool structured;
	bool ctx_base;  /* base:allocation selected */
	bool ctx_layer; /* isocache:layer selected */
};

/* Run the server side of the handshake on io. Returns 0 with *out filled
 * when the client entered transmission, -ECONNABORTED when it aborted
 * cleanly, or another -errno when the connection must be dropped. */
int ic_nbd_handshake(const struct ic_nbd_io *io, const struct ic_nbd_catalog *cat,
		     struct ic_nbd_session *out);

/* TLS as the handshake offers it (NBD_OPT_STARTTLS). The engine knows no
 * TLS library: start runs the TLS handshake on the stream and switches io
 * over to it (0), or fails (-errno: the client is dropped). */
struct ic_nbd_tls {
	bool required; /* until STARTTLS, refuse every option but ABORT */
	int (*start)(void *arg, struct ic_nbd_io *io);
	void *arg;
};

/* ic_nbd_handshake with STARTTLS offered (tls NULL: not offered). After
 * STARTTLS succeeds io is the TLS stream, which transmission must use;
 * *tls_on says whether it happened. */
int ic_nbd_handshake_tls(struct ic_nbd_io *io, const struct ic_nbd_catalog *cat,
			 const struct ic_nbd_tls *tls, struct ic_nbd_session *out, bool *tls_on);

/* ---- Requests and replies ---- */

struct ic_nbd_request {
	uint16_t flags;
	uint16_t type;
	uint64_t cookie;
	uint64_t offset;
	uint32_t length;
};

/* Decode a request header; -EPROTO on a bad magic. */
int ic_nbd_request_decode(const uint8_t raw[IC_NBD_REQUEST_SIZE], struct ic_nbd_request *req);

/* Is req acceptable on this session? Returns 0 or an NBD_E* to reply with. */
uint32_t ic_nbd_request_check(const struct ic_nbd_request *req, const struct ic_nbd_session *s);

/* Whether req carries a payload of req->length bytes to read. */
static inline bool
ic_nbd_request_has_payload(const struct ic_nbd_request *req)
{
	return req->type == NBD_CMD_WRITE;
}

/* The NBD error for a -errno. */
uint32_t ic_nbd_errno(int err);

void ic_nbd_simple_reply(uint8_t out[IC_NBD_SIMPLE_REPLY_SIZE], uint64_t cookie, uint32_t err);
void ic_nbd_chunk(uint8_t out[IC_NBD_CHUNK_SIZE], uint16_t flags, uint16_t type, uint64_t cookie,
		  uint32_t length);

/* Block status descriptors for one context, merged as they are added. */
struct ic_nbd_status {
	uint8_t *buf;	   /* 4 (context id) + 8 per descriptor */
	uint32_t cap;	   /* descriptors buf can hold */
	uint32_t count;
	uint64_t end;	   /* offset the next descriptor starts at */
	uint64_t limit;	   /* end of the request */
	uint32_t last;	   /* status of the last descriptor */
};

void ic_nbd_status_init(struct ic_nbd_status *st, uint8_t *buf, uint32_t cap, uint32_t ctx_id,
			uint64_t off, uint64_t len);
/* Add [off, off+len) with status; returns false once full (stop). */
bool ic_nbd_status_add(struct ic_nbd_status *st, uint64_t len, uint32_t status);
static inline uint32_t
ic_nbd_status_bytes(const struct ic_nbd_status *st)
{
	return 4 + 8 * st->count;
}

/* The base:allocation and isocache:layer values of an extent. */
uint32_t ic_nbd_status_base(const struct ic_nbd_extent *ext);
uint32_t ic_nbd_status_layer(const struct ic_nbd_extent *ext);

/* ---- Transmission ---- */

struct ic_nbd_conn;

/* Replies sent on a connection, and the sends that carried them: replies
 * ready at the same time leave in one send (nbd/sendq.c), so batches <
 * replies under load. Relaxed atomics; may be shared by connections. */
struct ic_nbd_reply_stats {
	_Atomic uint64_t replies;
	_Atomic uint64_t batches;
	_Atomic uint64_t inline_reads; /* served by the thread that read them */
	_Atomic uint64_t spliced_reads; /* their bytes sent from a pipe, not copied */
};

struct ic_nbd_conn_config {
	const struct ic_nbd_io *io;
	struct ic_nbd_session session;
	const struct ic_nbd_backend_ops *ops;
	void *backend;
	uint32_t max_payload; /* buffers per slot; IC_NBD_MAX_PAYLOAD when 0 */
	unsigned slots;	      /* requests in flight (worker threads); IC_NBD_SLOTS when 0 */
	/* Payload bytes of the requests in flight (read replies not yet sent,
	 * write data not yet written); later requests wait and the stream is
	 * not read meanwhile. IC_NBD_MAX_INFLIGHT when 0. */
	uint64_t max_inflight;
	struct ic_nbd_reply_stats *stats; /* optional: counted here */
};

#define IC_NBD_SLOTS 16
#define IC_NBD_MAX_INFLIGHT ((uint64_t)IC_NBD_MAX_PAYLOAD)

/* Allocate a connection and all its buffers. */
int ic_nbd_conn_new(const struct ic_nbd_conn_config *cfg, struct ic_nbd_conn **out);
/* Serve requests until the client disconnects or the stream breaks (a
 * server stopping shuts the socket down for reading), with up to `slots`
 * threads, the calling one included; then wait for the requests in flight
 * and flush a writable export.
 * Returns 0 on a clean end, else -errno. */
int ic_nbd_conn_serve(struct ic_nbd_conn *conn);
void ic_nbd_conn_free(struct ic_nbd_conn *conn);

#endif
