/* The event loop: one io_uring carries accepts (multishot), session
 * receives and sends, fills from the daemon's own layer fds and the
 * signalfd. Nothing blocks and nothing runs on another thread, except the
 * kernel's io-wq workers for buffered file reads, which are bounded.
 */
#include "cached/internal.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define LOOP_ENTRIES 256
/* io-wq workers per node: bounded (regular file reads) and unbounded. */
#define LOOP_IOWQ_BOUNDED 4
#define LOOP_IOWQ_UNBOUNDED 4
/* After SIGTERM, how long replies may wait on clients that do not read. */
#define LOOP_DRAIN_NS 5000000000ull

uint64_t
cached_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct io_uring_sqe *
cached_sqe(struct cached_daemon *d, struct ic_op *op)
{
	struct io_uring_sqe *sqe;

	/* A full SQ drains with one submit; completions wait in the CQ. */
	while (!(sqe = io_uring_get_sqe(&d->ring)))
		io_uring_submit(&d->ring);
	io_uring_sqe_set_data(sqe, op);
	if (op)
		d->inflight++;
	return sqe;
}

static void
loop_on_fill(struct ic_op *op, int res)
{
	struct cached_fill *f = cached_container_of(op, struct cached_fill, op);
	struct cached_daemon *d = f->store->ctx;

	cached_fill_complete(f, res);
	cached_prefetch_kick(d); /* a fill is free: a trace replay may go on */
}

static int
loop_submit_fill(struct cached_store *st, struct cached_fill *f)
{
	struct io_uring_sqe *sqe = cached_sqe(st->ctx, &f->op);

	f->op.done = loop_on_fill;
	io_uring_prep_readv(sqe, f->fd, f->iov + f->iov_first, f->nblocks - f->iov_first,
			    f->off + f->done_bytes);
	return 0;
}

static int
loop_submit_l2_write(struct cached_l2 *l2, struct ic_op *op, const void *buf, size_t len,
		     uint64_t off)
{
	io_uring_prep_write(cached_sqe(l2->ctx, op), l2->fd, buf, (unsigned)len, off);
	return 0;
}

static void
loop_arm_tick(struct cached_tick *t)
{
	t->ts = t->period;
	io_uring_prep_timeout(cached_sqe(t->d, &t->op), &t->ts, 0, 0);
}

static void
loop_on_tick(struct ic_op *op, int res)
{
	struct cached_tick *t = (struct cached_tick *)op;

	(void)res;
	if (t->d->stopping)
		return;
	t->run(t->d);
	loop_arm_tick(t);
}

static void
loop_tick_start(struct cached_daemon *d, struct cached_tick *t, struct __kernel_timespec period,
		void (*run)(struct cached_daemon *d))
{
	*t = (struct cached_tick){ .op.done = loop_on_tick, .d = d, .period = period, .run = run };
	loop_arm_tick(t);
}

/* Write the L2 index if it changed: a crash loses at most a period of it. */
static void
loop_l2_sync(struct cached_daemon *d)
{
	cached_l2_sync(d->store.l2);
}

static void
loop_arm_accept(struct cached_daemon *d)
{
	struct io_uring_sqe *sqe = cached_sqe(d, &d->accept_op);

	if (d->accept_single)
		io_uring_prep_accept(sqe, d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	else
		io_uring_prep_multishot_accept(sqe, d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
}

static void
loop_on_accept(struct ic_op *op, int res)
{
	struct cached_daemon *d = cached_container_of(op, struct cached_daemon, accept_op);
	bool again = res >= 0;

	if (res >= 0 && d->stopping)
		close(res);
	else if (res >= 0)
		cached_session_new(d, res);
	else if (res == -EINVAL && !d->accept_single)
		again = d->accept_single = true; /* no multishot: one accept at a time */
	if (op->cqe_flags & IORING_CQE_F_MORE || d->stopping)
		return;
	if (again) {
		loop_arm_accept(d);
		return;
	}
	/* Out of fds or memory: accepting again at once would spin. */
	ic_log(IC_LOG_WARN, "accept: %s; retrying in 100 ms", strerror(-res));
	d->accept_pause = (struct __kernel_timespec){ .tv_nsec = 100000000 };
	io_uring_prep_timeout(cached_sqe(d, &d->accept_pause_op), &d->accept_pause, 0, 0);
}

static void
loop_on_accept_pause(struct ic_op *op, int res)
{
	struct cached_daemon *d = cached_container_of(op, struct cached_daemon, accept_pause_op);

	(void)res;
	if (!d->stopping)
		loop_arm_accept(d);
}

static void
loop_on_signal(struct ic_op *op, int res)
{
	struct cached_daemon *d = cached_container_of(op, struct cached_daemon, sig_op);

	(void)res;
	ic_log(IC_LOG_INFO, "signal %u: finishing in-flight requests", d->si.ssi_signo);
	d->stopping = true;
	d->drain_deadline = cached_now() + LOOP_DRAIN_NS;
	io_uring_prep_cancel(cached_sqe(d, NULL), &d->accept_op, 0);
	if (d->store.l2)
		io_uring_prep_cancel(cached_sqe(d, NULL), &d->l2_tick.op, 0);
	if (!d->no_shared) /* hits served from shared arenas reach SIEVE within a tick */
		io_uring_prep_cancel(cached_sqe(d, NULL), &d->hit_tick.op, 0);
	if (!d->traces.off) /* recordings in progress are written at exit */
		io_uring_prep_cancel(cached_sqe(d, NULL), &d->traces.tick.op, 0);
	cached_session_stop_all(d);
}

/* Every opcode the loop issues must exist: fail at start, not mid-request. */
static int
loop_probe(struct io_uring *ring)
{
	static const int ops[] = { IORING_OP_ACCEPT, IORING_OP_RECVMSG, IORING_OP_SEND,
				   IORING_OP_SENDMSG, IORING_OP_READV, IORING_OP_READ,
				   IORING_OP_ASYNC_CANCEL, IORING_OP_WRITE, IORING_OP_TIMEOUT };
	struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
	int rc = 0;

	if (!probe) {
		ic_log(IC_LOG_ERR, "io_uring: cannot probe opcodes (kernel 5.6 or later needed)");
		return -ENOSYS;
	}
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (!io_uring_opcode_supported(probe, ops[i])) {
			ic_log(IC_LOG_ERR, "io_uring: opcode %d not supported by this kernel", ops[i]);
			rc = -ENOSYS;
		}
	}
	io_uring_free_probe(probe);
	return rc;
}

int
cached_daemon_init(struct cached_daemon *d, int listen_fd)
{
	struct io_uring_params p = {
		.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
	};
	unsigned workers[2] = { LOOP_IOWQ_BOUNDED, LOOP_IOWQ_UNBOUNDED };
	sigset_t set;
	int rc;

	d->listen_fd = listen_fd;
	d->store.submit = loop_submit_fill;
	d->store.finish = cached_session_finish;
	d->store.ctx = d;
	d->l2.write = loop_submit_l2_write;
	d->l2.ctx = d;
	rc = io_uring_queue_init_params(LOOP_ENTRIES, &d->ring, &p);
	if (rc == -EINVAL) {
		ic_log(IC_LOG_INFO, "io_uring without SINGLE_ISSUER|DEFER_TASKRUN");
		memset(&p, 0, sizeof(p));
		rc = io_uring_queue_init_params(LOOP_ENTRIES, &d->ring, &p);
	}
	if (rc < 0) {
		ic_log(IC_LOG_ERR, "io_uring_queue_init: %s", strerror(-rc));
		return rc;
	}
	rc = loop_probe(&d->ring);
	if (rc < 0) {
		io_uring_queue_exit(&d->ring);
		return rc;
	}
	rc = io_uring_register_iowq_max_workers(&d->ring, workers);
	if (rc < 0)
		ic_log(IC_LOG_WARN, "cannot bound io-wq workers: %s", strerror(-rc));
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->sig_fd = signalfd(-1, &set, SFD_CLOEXEC);
	if (d->sig_fd < 0) {
		rc = -errno;
		io_uring_queue_exit(&d->ring);
		return rc;
	}
	d->accept_op.done = loop_on_accept;
	d->accept_pause_op.done = loop_on_accept_pause;
	d->sig_op.done = loop_on_signal;
	loop_arm_accept(d);
	io_uring_prep_read(cached_sqe(d, &d->sig_op), d->sig_fd, &d->si, sizeof(d->si), 0);
	if (d->store.l2)
		loop_tick_start(d, &d->l2_tick, (struct __kernel_timespec){ .tv_sec = CACHED_L2_SYNC_SEC },
				loop_l2_sync);
	if (!d->no_shared)
		loop_tick_start(d, &d->hit_tick,
				(struct __kernel_timespec){ .tv_nsec = CACHED_HIT_TICK_MS * 1000000ll },
				cached_session_drain_all);
	if (!d->traces.off)
		loop_tick_start(d, &d->traces.tick, (struct __kernel_timespec){ .tv_sec = 1 },
				cached_trace_tick);
	return 0;
}

/* The loop body: submit and wait, run every completion's handler, then
 * hand the whole batch back with one cq_advance (cheaper than seen-per-CQE).
 * Once stopping, it wakes every 100 ms to give up on stuck clients. */
int
cached_daemon_run(struct cached_daemon *d)
{
	struct __kernel_timespec tick = { .tv_nsec = 100000000 };

	while (!d->stopping || (d->inflight > 0 && cached_now() < d->drain_deadline)) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		int rc;

		rc = io_uring_submit_and_wait_timeout(&d->ring, &cqe, 1, d->stopping ? &tick : NULL,
						      NULL);
		if (rc < 0 && rc != -EINTR && rc != -ETIME) {
			ic_log(IC_LOG_ERR, "io_uring_submit_and_wait: %s", strerror(-rc));
			return rc;
		}
		io_uring_for_each_cqe(&d->ring, head, cqe) {
			struct ic_op *op = io_uring_cqe_get_data(cqe);

			n++;
			if (!op)
				continue;
			if (!(cqe->flags & IORING_CQE_F_MORE))
				d->inflight--;
			op->cqe_flags = cqe->flags;
			op->done(op, cqe->res);
		}
		io_uring_cq_advance(&d->ring, n);
	}
	if (d->inflight > 0)
		ic_log(IC_LOG_WARN, "%u operations still in flight after %llu s: exiting anyway",
		       d->inflight, LOOP_DRAIN_NS / 1000000000ull);
	return 0;
}

void
cached_daemon_fini(struct cached_daemon *d)
{
	io_uring_queue_exit(&d->ring);
	close(d->sig_fd);
}
