/* Replies ready together leave together. Each worker of a connection runs
 * its request and then hands its reply here. When nobody is sending, the
 * worker sends its reply at once, alone: at queue depth 1 nothing waits
 * for company. While a send is under way, workers whose replies become
 * ready queue them; when it returns, the sender hands the queue to the
 * worker first in line, which sends every reply queued by then in one
 * send (one writev; one corked run of TLS records), up to
 * IC_NBD_SENDQ_IOV iovecs and IC_NBD_SENDQ_BYTES bytes, and wakes the
 * workers whose replies went with it. Group commit, for a socket.
 *
 * Measured on a 2-vCPU VM with fio at QD16/QD32 4 KiB random reads, one
 * writev per reply was the largest share of the server's time; most of
 * those replies were ready while another worker's writev ran.
 *
 * Memory: a batch is a vector of pointers into the workers' own buffers,
 * which the connection's in-flight cap already counts; nothing is copied.
 * A client that never reads its replies blocks the one sender; the other
 * workers wait here with their replies, as they waited for the send lock
 * before, and the connection reads no further requests once its workers or
 * its in-flight bytes run out.
 *
 * A reply whose data is in a pipe (a read spliced from the cache daemon's
 * memory) ends its batch: the transport writes the batch's iovecs and
 * then splices the pipe.
 *
 * The byte cap keeps the first replies of a batch from waiting on a long
 * write of later ones: a worker learns its reply left only when the whole
 * send returns. */
#include "nbd/sendq.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "common/log.h"

int
ic_nbd_sendq_init(struct ic_nbd_sendq *q, const struct ic_nbd_io *io,
		  struct ic_nbd_reply_stats *stats)
{
	*q = (struct ic_nbd_sendq){ .io = io, .stats = stats };
	q->batch = calloc(IC_NBD_SENDQ_IOV, sizeof(*q->batch));
	if (!q->batch)
		return -ENOMEM;
	q->tail = &q->head;
	pthread_mutex_init(&q->mu, NULL);
	return 0;
}

void
ic_nbd_sendq_fini(struct ic_nbd_sendq *q)
{
	if (!q->batch)
		return;
	pthread_mutex_destroy(&q->mu);
	free(q->batch);
	q->batch = NULL;
}

int
ic_nbd_sendq_entry_init(struct ic_nbd_sendq_entry *e)
{
	e->replies = 1;
	return -pthread_cond_init(&e->cond, NULL);
}

void
ic_nbd_sendq_entry_fini(struct ic_nbd_sendq_entry *e)
{
	pthread_cond_destroy(&e->cond);
}

/* Under mu, with e first in line: move the replies that fit one batch off
 * the queue into q->batch. Returns the iovecs taken; *last is the last
 * entry taken. */
static int
sendq_take(struct ic_nbd_sendq *q, struct ic_nbd_sendq_entry **last)
{
	struct ic_nbd_sendq_entry *e = q->head;
	size_t bytes = 0;
	int n = 0;

	do {
		for (int i = 0; i < e->n; i++)
			q->batch[n + i] = e->iov[i];
		n += e->n;
		bytes += e->bytes;
		*last = e;
		e = e->next;
	} while ((*last)->pipe < 0 && e && n + e->n <= IC_NBD_SENDQ_IOV &&
		 bytes + e->bytes <= IC_NBD_SENDQ_BYTES);
	q->head = e;
	if (!e)
		q->tail = &q->head;
	return n;
}

/* Under mu, e leading: send one batch, e's reply first in it, wake the
 * workers whose replies it carried, then hand the queue to the next in
 * line or leave it idle. */
static int
sendq_lead(struct ic_nbd_sendq *q, struct ic_nbd_sendq_entry *e)
{
	struct ic_nbd_sendq_entry *first = q->head, *last, *it;
	int n = sendq_take(q, &last);
	uint64_t replies = 0;
	int rc = q->broken;

	/* e is first in line (it found the queue idle, or was handed it as
	 * the head), so its own reply is in the batch. */
	__atomic_store_n(&q->sending, true, __ATOMIC_RELAXED);
	if (!rc) {
		pthread_mutex_unlock(&q->mu);
		rc = last->pipe < 0 ? q->io->send(q->io->arg, q->batch, n)
				    : q->io->send_pipe(q->io->arg, q->batch, n, last->pipe,
						       last->pipe_len);
		pthread_mutex_lock(&q->mu);
		if (rc < 0) {
			/* The client is gone; its reader sees the end of the stream. */
			__atomic_store_n(&q->broken, rc, __ATOMIC_RELEASE);
			ic_log(IC_LOG_DEBUG, "nbd: reply not sent, client gone");
		}
	}
	for (it = first;; it = it->next) {
		replies += it->replies;
		it->rc = rc;
		if (it != e) {
			it->done = true;
			pthread_cond_signal(&it->cond);
		}
		if (it == last)
			break;
	}
	if (q->stats && !q->broken) {
		atomic_fetch_add_explicit(&q->stats->replies, replies, memory_order_relaxed);
		atomic_fetch_add_explicit(&q->stats->batches, 1, memory_order_relaxed);
	}
	if (q->head) {
		q->head->lead = true;
		pthread_cond_signal(&q->head->cond);
	} else {
		__atomic_store_n(&q->sending, false, __ATOMIC_RELAXED);
	}
	return rc;
}

int
ic_nbd_sendq_send(struct ic_nbd_sendq *q, struct ic_nbd_sendq_entry *e, const struct iovec *iov,
		  int n)
{
	return ic_nbd_sendq_send_pipe(q, e, iov, n, -1, 0);
}

int
ic_nbd_sendq_send_pipe(struct ic_nbd_sendq *q, struct ic_nbd_sendq_entry *e,
		       const struct iovec *iov, int n, int pipe, size_t pipe_len)
{
	int rc;

	e->iov = iov;
	e->n = n;
	e->pipe = pipe;
	e->pipe_len = pipe_len;
	e->bytes = pipe_len;
	for (int i = 0; i < n; i++)
		e->bytes += iov[i].iov_len;
	e->next = NULL;
	e->done = e->lead = false;
	pthread_mutex_lock(&q->mu);
	*q->tail = e;
	q->tail = &e->next;
	/* Idle means nobody queued either: e is first in line and leads. */
	while (q->sending && !e->done && !e->lead)
		pthread_cond_wait(&e->cond, &q->mu);
	rc = e->done ? e->rc : sendq_lead(q, e);
	pthread_mutex_unlock(&q->mu);
	return rc;
}
