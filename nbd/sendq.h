/* The reply queue of one connection (nbd/sendq.c): workers hand it their
 * finished replies, and replies that are ready together leave in one send
 * (one writev on a socket, one corked run of TLS records). Private to the
 * protocol engine. */
#ifndef IC_NBD_SENDQ_H
#define IC_NBD_SENDQ_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/uio.h>

#include "nbd/nbd.h"

/* One reply waiting to leave. Owned by a worker (one per slot); its iov
 * and the memory it points to stay untouched until ic_nbd_sendq_send
 * returns. */
struct ic_nbd_sendq_entry {
	pthread_cond_t cond; /* its worker waits here for "sent" or "lead" */
	const struct iovec *iov;
	int n;
	size_t bytes;
	unsigned replies; /* in iov: 1 (ic_nbd_sendq_entry_init) unless set */
	int pipe;	  /* >= 0: pipe_len bytes of it follow iov (send_pipe) */
	size_t pipe_len;
	struct ic_nbd_sendq_entry *next;
	bool done; /* sent (or dropped) by another worker; rc says how */
	bool lead; /* handed the queue: this worker sends the next batch */
	int rc;
};

struct ic_nbd_sendq {
	const struct ic_nbd_io *io;
	struct ic_nbd_reply_stats *stats; /* NULL: not counted */
	pthread_mutex_t mu;		  /* everything below */
	struct ic_nbd_sendq_entry *head, **tail;
	bool sending; /* a worker is sending; with head set, one is about to (stored
		       * atomically, for ic_nbd_sendq_busy) */
	int broken;   /* -errno once a send failed: the client is gone */
	struct iovec *batch; /* the sender's vector, IC_NBD_SENDQ_IOV long */
};

/* Iovecs and bytes in one batch. A reply is never split, and the first
 * one of a batch goes whatever its size. */
#define IC_NBD_SENDQ_IOV 1024
#define IC_NBD_SENDQ_BYTES (256u << 10)

int ic_nbd_sendq_init(struct ic_nbd_sendq *q, const struct ic_nbd_io *io,
		      struct ic_nbd_reply_stats *stats);
void ic_nbd_sendq_fini(struct ic_nbd_sendq *q);
int ic_nbd_sendq_entry_init(struct ic_nbd_sendq_entry *e);
void ic_nbd_sendq_entry_fini(struct ic_nbd_sendq_entry *e);

/* Send the reply iov[0..n) (n <= IC_NBD_SENDQ_IOV) contiguously on the
 * stream, with e as its entry; returns once it has left: 0, or -errno
 * when the stream is broken (that send and every later one fail). The
 * calling worker may send other workers' replies with its own, or wait
 * while another sends it. */
int ic_nbd_sendq_send(struct ic_nbd_sendq *q, struct ic_nbd_sendq_entry *e,
		      const struct iovec *iov, int n);
/* The same, the reply's last pipe_len bytes taken from pipe (its read
 * end) by the transport's send_pipe, which the caller checked is set. A
 * batch ends with such a reply. */
int ic_nbd_sendq_send_pipe(struct ic_nbd_sendq *q, struct ic_nbd_sendq_entry *e,
			   const struct iovec *iov, int n, int pipe, size_t pipe_len);
/* Whether a send is under way, so that a reply handed in now would wait
 * for it. A hint: a send may begin or end the next moment. */
static inline bool
ic_nbd_sendq_busy(const struct ic_nbd_sendq *q)
{
	return __atomic_load_n(&q->sending, __ATOMIC_RELAXED);
}

/* Whether a send has failed: the client is gone, and no reply will reach it. */
static inline bool
ic_nbd_sendq_broken(const struct ic_nbd_sendq *q)
{
	return __atomic_load_n(&q->broken, __ATOMIC_ACQUIRE) != 0;
}

#endif
