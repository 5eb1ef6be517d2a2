/* Private to owner/: the control socket's messages (docs/CONTROL-PROTOCOL.md).
 *
 * Every message is one SOCK_SEQPACKET record: a 16-byte header (magic,
 * version, type, total length, sequence number), then a body whose size is
 * fixed per type (a REPLY's text is the only variable part). All integers
 * are little-endian; strings sit in fixed fields, NUL-terminated inside
 * them. ctl_decode accepts a message only when every field is valid.
 */
#ifndef IC_OWNER_CTLMSG_H
#define IC_OWNER_CTLMSG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CTL_MAGIC 0x4c544349u /* "ICTL" as little-endian bytes */
#define CTL_VERSION 1u
#define CTL_HDR_SIZE 16u
#define CTL_NAME_LEN 256u  /* NAME or NAME@SNAP field */
#define CTL_WHO_LEN 64u
#define CTL_REASON_LEN 128u
#define CTL_SOCKET_LEN 108u
#define CTL_ARG_LEN 1024u
#define CTL_TEXT_MAX 65536u /* reply text, NUL included */
#define CTL_REQ_MAX 1024u + 64u /* no request is longer; a reply may be */
#define CTL_DEADLINE_MAX 600000u /* ms */

enum ctl_type {
	CTL_RELEASE = 1,
	CTL_SNAPSHOT = 2,
	CTL_STATS = 3,
	CTL_FILTER = 4,
	CTL_REPLY = 0x80,
};

#define CTL_RELEASE_FORCE 0x1u /* ignore the release policy */

enum ctl_result {
	CTL_DONE = 0,     /* the request was carried out (status 0) */
	CTL_RELEASED = 1, /* RELEASE: the requester owns the vdisk now */
	CTL_DENIED = 2,   /* RELEASE: refused by policy; text says why */
	CTL_FAILED = 3,   /* status holds -errno; text says why */
};

struct ctl_msg {
	uint16_t type;
	uint32_t seq;
	union {
		struct {
			char name[CTL_NAME_LEN];
			uint8_t owner_id[16]; /* the requester's new owner id */
			uint32_t deadline_ms;
			uint32_t flags;       /* CTL_RELEASE_* */
			char who[CTL_WHO_LEN];
			char reason[CTL_REASON_LEN];
			char socket[CTL_SOCKET_LEN]; /* the requester's, or "" */
		} release;
		struct {
			char image[CTL_NAME_LEN]; /* NAME@SNAP */
		} snapshot;
		struct {
			uint32_t op; /* enum ic_control_filter_cmd */
			int32_t pos;
			char arg[CTL_ARG_LEN];
		} filter;
		struct {
			int32_t status; /* 0 or -errno */
			uint32_t result; /* enum ctl_result */
			uint64_t generation; /* RELEASED: of the new record */
			const char *text; /* points into the decoded buffer; "" when none */
		} reply;
	};
};

/* Size of the encoded message (a REPLY's includes its text and NUL). */
size_t ctl_size(const struct ctl_msg *m);
/* Encode m into buf (at least ctl_size(m) bytes); returns the length. */
size_t ctl_encode(const struct ctl_msg *m, uint8_t *buf);
/* Decode and validate len bytes. Returns 0, -EPROTONOSUPPORT (another
 * version: the header is valid), or -EBADMSG (anything else wrong). */
int ctl_decode(const uint8_t *buf, size_t len, struct ctl_msg *m);

/* Send req to the control socket at path and wait until timeout_ms for the
 * reply, decoded into reply (its text lives in buf, CTL_HDR_SIZE + 16 +
 * CTL_TEXT_MAX bytes). -ECONNREFUSED/-ENOENT: nobody listens there;
 * -ETIMEDOUT: no reply in time; -EBADMSG: a malformed reply. */
#define CTL_REPLY_BUF (CTL_HDR_SIZE + 16u + CTL_TEXT_MAX)
int ctl_call(const char *path, const struct ctl_msg *req, unsigned timeout_ms, uint8_t *buf,
	     struct ctl_msg *reply);

/* Connect to the control socket at path and return a pidfd of the process
 * listening on it (SO_PEERPIDFD; before Linux 6.5, SO_PEERCRED's pid, as
 * the kernel translates it into our PID namespace, and pidfd_open), with
 * that pid (0: not visible in our namespace) in *pid. -ESRCH when the peer
 * cannot be named in our namespace. */
int ctl_peer_pidfd(const char *path, unsigned timeout_ms, pid_t *pid);

#endif
