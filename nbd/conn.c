/* One connection in transmission. Each worker thread of the connection
 * takes the read lock, reads one request (and its payload), lets go of the
 * lock, runs the request and sends the reply, as nbdkit does: no hand-off
 * between threads on the data path, which matters on small machines. A
 * small read that can be served without waiting (a cache hit) is served
 * before the lock is let go, and the next request read (conn_inline); the
 * replies of such reads of up to 4 KiB that arrived together leave
 * together (conn_batch_*).
 *
 * The connection starts with one worker and adds one whenever every worker
 * is busy with a request, up to `slots`: the threads are sized to the
 * requests the client keeps in flight, not to cores, because filters
 * block. Each worker owns a slot with everything one request needs (payload
 * buffer up to the advertised maximum, block status and chunk header
 * space), made when the worker starts, so the data path allocates nothing.
 * Replies may leave out of order; the reply queue (sendq.c) keeps each
 * reply contiguous on the stream and sends the replies that are ready
 * together in one go.
 *
 * Memory is bounded per connection: the payload bytes of the requests in
 * flight (a read's reply buffer, a write's data) may not pass
 * max_inflight. A request that would pass it waits, holding the read lock,
 * so no further request is read from the stream until replies have left:
 * a client that pipelines large reads and never reads the replies stalls
 * itself, not the server. The pages a slot's requests touched stay
 * resident for the next request while the connection's slots hold at most
 * CONN_RESIDENT; past that, a slot answered gives its pages beyond
 * CONN_KEEP back to the kernel, so idle slots do not keep the peak.
 *
 * Why keep them: a page handed back is a page fault and a zeroed page on
 * the next request that reaches it. Giving back everything past 256 KiB
 * after each request cost a 1 MiB read 192 faults, and the server
 * 3.4 ms of CPU per 1 MiB read against nbdkit's 0.54 ms (fio, 1 MiB
 * sequential reads at QD8, hot page cache, loaded 2-vCPU VM; most of it
 * in the faults taken inside the read's copy, the rest in madvise and its
 * TLB shootdown). Kept: 0.35 ms and no fault. */
#include "nbd/nbd.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/log.h"
#include "common/pipe.h"
#include "nbd/sendq.h"

/* Descriptors per context in one BLOCK_STATUS reply, and extents (chunks)
 * in one structured READ reply. */
#define CONN_STATUS_MAX 512
#define CONN_EXTENTS_MAX 256
/* Chunk header + offset + hole length. */
#define CONN_HDR 32
/* Structured reads are resolved once. Up to this size they are read
 * whole, and granules that read as zeroes become hole chunks; larger ones
 * are read with their extents from the same lookup (pread_extents), and
 * the extents that read as zeroes become hole chunks, neither read from a
 * layer nor sent. Before, a large read was planned from the extents and
 * then read run by run: two lookups, each under the vdisk's I/O lock
 * (their cost was below 0.5 % of the server's CPU for 1 MiB reads, perf). */
#define CONN_SCAN_MAX (64u << 10)
/* The largest read tried on the thread that reads the stream (conn_inline):
 * it holds the stream while it copies and sends. 1 MiB reads from the page
 * cache went from 2707 to 3398 MB/s at QD8 when served there (fio, taking
 * turns with the build that kept them to 64 KiB). */
#define CONN_INLINE_MAX (1u << 20)
/* Reads larger than CONN_SCAN_MAX, up to this, are first tried through
 * the slot's pipe (conn_read_pipe): their bytes go from the cache daemon's
 * memory to the socket by splice, with no copy of ours. 1 MiB is the most
 * a pipe may hold without privilege (/proc/sys/fs/pipe-max-size). A slot
 * that cannot have its pipe (out of descriptors, or past the user's
 * pipe-user-pages-soft) copies, as before. */
#define CONN_PIPE (1u << 20)
#define CONN_GRANULE 4096u
/* Small reads served inline while more requests wait in the read-ahead
 * buffer are answered together, in one send, up to this many (conn_batch):
 * 32 reads that arrive together leave in one writev, not 32. */
#define CONN_BATCH_MAX 32
/* Read-ahead of the request stream: a client with many requests in flight
 * sends them back to back, and one read() then yields many headers. */
#define CONN_RBUF (64u << 10)
/* Bytes of each slot's buffer always kept resident between requests, and
 * of all slots of a connection while none is trimmed (QD16 of 1 MiB). */
#define CONN_KEEP (256u << 10)
#define CONN_RESIDENT (16u << 20)
/* A stream quiet this long, with more than CONN_KEEP resident: the
 * connection is idle, and its slots not serving a request give all their
 * pages back. */
#define CONN_IDLE_MS 5000

struct conn_run {
	uint64_t off, len;
	bool hole;
};

/* A slot's reply space, at the start of its one mapping; the payload
 * buffer follows on the next page. */
struct slot_mem {
	uint8_t status[2][4 + 8 * CONN_STATUS_MAX];
	uint8_t hdr[CONN_EXTENTS_MAX + 1][CONN_HDR];
	struct conn_run runs[CONN_EXTENTS_MAX];
	struct iovec iov[2 * CONN_EXTENTS_MAX + 2];
};
#define CONN_SLOT_MEM (((sizeof(struct slot_mem) - 1) / 4096 + 1) * 4096)

/* The replies of small reads served inline, not yet sent (conn_batch_*):
 * each read no longer than a granule (so at most two chunks), its data
 * read straight into data[i]. data comes first, so that each data[i] is
 * page-aligned as a slot's buffer is: a layer opened O_DIRECT (--cache
 * none) reads into an aligned buffer only (vdisk/backend.c), and into
 * any other through the page cache, where a read then went inline. */
struct conn_batch {
	uint8_t data[CONN_BATCH_MAX][CONN_GRANULE];
	struct ic_nbd_sendq_entry sent;
	unsigned replies;
	int niov, nhdr;
	uint8_t hdr[2 * CONN_BATCH_MAX][CONN_HDR];
	struct iovec iov[4 * CONN_BATCH_MAX];
};

struct slot {
	struct ic_nbd_conn *conn;
	pthread_t thread;
	struct ic_nbd_request req;
	uint32_t err; /* NBD error decided before running, or 0 */
	uint32_t cost; /* bytes of buf this request holds (counted in inflight) */
	uint32_t resident; /* under conn->mu: bytes of buf touched since last given back */
	struct slot_mem *m; /* the mapping: reply space, then buf */
	uint8_t *buf;
	unsigned nruns;
	struct ic_nbd_sendq_entry sent; /* its reply in the reply queue */
	struct ic_pipe pipe; /* conn_read_pipe's: CONN_PIPE bytes, made at first use */
};

struct ic_nbd_conn {
	struct ic_nbd_conn_config cfg;
	struct slot *slots;
	pthread_mutex_t read_mu; /* one reader of the stream at a time; guards rbuf */
	uint8_t *rbuf;
	size_t rpos, rlen;
	pthread_mutex_t mu;	 /* the counters below */
	pthread_cond_t drained;	 /* signalled when inflight drops */
	uint64_t inflight;	 /* sum of the costs of requests in flight */
	uint64_t resident;	 /* sum of the slots' resident bytes */
	unsigned workers, idle;
	bool closing;		 /* under mu: no more workers start */
	bool eof;		 /* under read_mu: the stream ended, workers exit */
	bool hung_up;		 /* atomic: the export was taken away */
	int rc;			 /* why it ended */
	struct ic_nbd_sendq sendq;
	struct conn_batch *batch; /* under read_mu; made at the first small inline read */
	bool no_batch;		  /* it could not be made */
};

/* Let go of what conn_slot_init gave s. */
static void
conn_slot_fini(struct ic_nbd_conn *c, struct slot *s)
{
	if (s->m)
		munmap(s->m, CONN_SLOT_MEM + c->cfg.max_payload);
	if (s->conn)
		ic_nbd_sendq_entry_fini(&s->sent);
	ic_pipe_fini(&s->pipe);
	*s = (struct slot){ 0 };
}

/* Give s what one request needs, when its worker is about to start: a
 * connection holds the slots of the workers its client made it start
 * (one at queue depth 1), not all `slots`. Made up front for every slot,
 * their reply space (30 KiB each) was 480 KiB a connection.
 *
 * One anonymous mapping, not malloc: pages are touched only as requests
 * reach them, and they go back to the kernel with the connection. From
 * malloc they came from the arena of the thread that asked (a worker
 * thread gets one of its own), which kept them after the client left:
 * 322 KiB of arenas per front end whose client had gone. */
static int
conn_slot_init(struct ic_nbd_conn *c, struct slot *s)
{
	void *p = mmap(NULL, CONN_SLOT_MEM + c->cfg.max_payload, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return -ENOMEM;
	s->m = p;
	s->buf = (uint8_t *)p + CONN_SLOT_MEM;
	if (ic_nbd_sendq_entry_init(&s->sent) < 0) {
		conn_slot_fini(c, s);
		return -ENOMEM;
	}
	s->conn = c;
	return 0;
}

static void
conn_free_slots(struct ic_nbd_conn *c)
{
	unsigned i;

	for (i = 0; c->slots && i < c->cfg.slots; i++)
		conn_slot_fini(c, &c->slots[i]);
	free(c->slots);
	free(c->rbuf);
	if (c->batch) {
		ic_nbd_sendq_entry_fini(&c->batch->sent);
		munmap(c->batch, sizeof(*c->batch));
	}
	ic_nbd_sendq_fini(&c->sendq);
}

int
ic_nbd_conn_new(const struct ic_nbd_conn_config *cfg, struct ic_nbd_conn **out)
{
	struct ic_nbd_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->cfg = *cfg;
	if (!c->cfg.max_payload || c->cfg.max_payload > IC_NBD_MAX_PAYLOAD)
		c->cfg.max_payload = IC_NBD_MAX_PAYLOAD;
	if (!c->cfg.slots)
		c->cfg.slots = IC_NBD_SLOTS;
	if (!c->cfg.max_inflight)
		c->cfg.max_inflight = IC_NBD_MAX_INFLIGHT;
	c->slots = calloc(c->cfg.slots, sizeof(*c->slots));
	c->rbuf = malloc(CONN_RBUF);
	if (!c->slots || !c->rbuf || ic_nbd_sendq_init(&c->sendq, c->cfg.io, c->cfg.stats) < 0 ||
	    conn_slot_init(c, &c->slots[0]) < 0)
		goto err;
	pthread_mutex_init(&c->read_mu, NULL);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->drained, NULL);
	*out = c;
	return 0;
err:
	conn_free_slots(c);
	free(c);
	return -ENOMEM;
}

void
ic_nbd_conn_free(struct ic_nbd_conn *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->read_mu);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->drained);
	conn_free_slots(c);
	free(c);
}

/* s's reply; a failure means the client is gone, and its reader sees
 * the end of the stream. */
static void
conn_send(struct ic_nbd_conn *c, struct slot *s, const struct iovec *iov, int n)
{
	ic_nbd_sendq_send(&c->sendq, &s->sent, iov, n);
}

static void
conn_simple(struct ic_nbd_conn *c, struct slot *s, uint32_t err, void *data, uint32_t len)
{
	uint8_t h[IC_NBD_SIMPLE_REPLY_SIZE];
	struct iovec iov[2] = { { h, sizeof(h) }, { data, len } };

	ic_nbd_simple_reply(h, s->req.cookie, err);
	conn_send(c, s, iov, err || !len ? 1 : 2);
}

static void
conn_error(struct ic_nbd_conn *c, struct slot *s, uint32_t err)
{
	uint8_t h[IC_NBD_CHUNK_SIZE + 6] = { 0 };
	struct iovec iov = { h, sizeof(h) };
	bool chunked = c->cfg.session.structured &&
		       (s->req.type == NBD_CMD_READ || s->req.type == NBD_CMD_BLOCK_STATUS);

	if (!chunked) {
		conn_simple(c, s, err, NULL, 0);
		return;
	}
	ic_nbd_chunk(h, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, s->req.cookie, 6);
	ic_nbd_put32(h + IC_NBD_CHUNK_SIZE, err);
	conn_send(c, s, &iov, 1);
}

/* ---- READ ---- */

struct runs_ctx {
	struct slot *s;
	uint64_t end;
};

static int
conn_run_add(void *arg, const struct ic_nbd_extent *ext)
{
	struct runs_ctx *rc = arg;
	struct slot *s = rc->s;
	uint64_t end = ext->off + ext->len;
	bool hole = ext->depth < 0 || ext->zero;
	struct conn_run *last = s->nruns ? &s->m->runs[s->nruns - 1] : NULL;

	if (end <= rc->end)
		return 0;
	if (last && (last->hole == hole || s->nruns == CONN_EXTENTS_MAX)) {
		/* Merge like runs; when out of runs, the rest is read as data. */
		last->hole = last->hole && hole;
		last->len = end - last->off;
	} else {
		s->m->runs[s->nruns++] = (struct conn_run){ rc->end, end - rc->end, hole };
	}
	rc->end = end;
	return 0;
}

/* Whether len bytes at p are all zero. */
static bool
conn_zero(const uint8_t *p, size_t len)
{
	static const uint8_t zero[CONN_GRANULE];

	return len <= sizeof(zero) && memcmp(p, zero, len) == 0;
}

/* The runs of read r, read whole into buf: granules (aligned to
 * CONN_GRANULE on the disk, the edges partial) that read as zeroes are
 * holes. No second resolve, and NBD_REPLY_TYPE_OFFSET_HOLE means exactly
 * "reads as zeroes". Returns how many runs (at most CONN_EXTENTS_MAX, and
 * at most two for a read no longer than a granule). */
static unsigned
conn_scan(const struct ic_nbd_request *r, const uint8_t *buf, struct conn_run *runs)
{
	uint64_t off = r->offset, end = r->offset + r->length;
	unsigned n = 0;

	while (off < end) {
		uint64_t g = (off / CONN_GRANULE + 1) * CONN_GRANULE;
		uint64_t stop = g < end ? g : end;
		bool hole = conn_zero(buf + (off - r->offset), stop - off);
		struct conn_run *last = n ? &runs[n - 1] : NULL;

		if (last && (last->hole == hole || n == CONN_EXTENTS_MAX)) {
			last->hole = last->hole && hole;
			last->len = stop - last->off;
		} else {
			runs[n++] = (struct conn_run){ off, stop - off, hole };
		}
		off = stop;
	}
	if ((r->flags & NBD_CMD_FLAG_DF) && n > 1) {
		runs[0] = (struct conn_run){ r->offset, r->length, false };
		n = 1;
	}
	return n;
}

/* The structured reply chunk of run (its data at data unless a hole; the
 * request's last if last): its header in hdr, its iovecs at iov; returns
 * how many. */
static int
conn_chunk(const struct ic_nbd_request *r, const struct conn_run *run, uint8_t *data, bool last,
	   uint8_t *hdr, struct iovec *iov)
{
	uint16_t flags = last ? NBD_REPLY_FLAG_DONE : 0;
	int n = 0;

	if (run->hole) {
		ic_nbd_chunk(hdr, flags, NBD_REPLY_TYPE_OFFSET_HOLE, r->cookie, 12);
		ic_nbd_put32(hdr + IC_NBD_CHUNK_SIZE + 8, (uint32_t)run->len);
		iov[n++] = (struct iovec){ hdr, IC_NBD_CHUNK_SIZE + 12 };
	} else {
		ic_nbd_chunk(hdr, flags, NBD_REPLY_TYPE_OFFSET_DATA, r->cookie,
			     (uint32_t)(8 + run->len));
		iov[n++] = (struct iovec){ hdr, IC_NBD_CHUNK_SIZE + 8 };
		iov[n++] = (struct iovec){ data, run->len };
	}
	ic_nbd_put64(hdr + IC_NBD_CHUNK_SIZE, run->off);
	return n;
}

/* Read the request with its extents, split into hole and data runs. A
 * client that asked for one chunk with data in it gets everything as
 * data (the holes' bytes are zeroes). */
static int
conn_read_extents(struct ic_nbd_conn *c, struct slot *s)
{
	const struct ic_nbd_request *r = &s->req;
	struct runs_ctx rc = { .s = s, .end = r->offset };
	uint64_t end = r->offset + r->length;
	bool single = r->flags & NBD_CMD_FLAG_DF;
	int err;

	s->nruns = 0;
	err = c->cfg.ops->pread_extents(c->cfg.backend, s->buf, r->length, r->offset,
					conn_run_add, &rc);
	if (err < 0)
		return err;
	if (s->nruns == 0 || rc.end < end || (single && s->nruns > 1)) {
		s->m->runs[0] = (struct conn_run){ r->offset, r->length, false };
		s->nruns = 1;
	}
	s->m->runs[s->nruns - 1].len = end - s->m->runs[s->nruns - 1].off;
	return 0;
}

/* Send the reply to read s, whose bytes (or runs, with extents) are in
 * place when rc is 0; returns rc. */
static int
conn_read_reply(struct ic_nbd_conn *c, struct slot *s, int rc, bool extents)
{
	const struct ic_nbd_request *r = &s->req;
	bool structured = c->cfg.session.structured;
	unsigned i;
	int n = 0;

	if (!structured) {
		conn_simple(c, s, ic_nbd_errno(rc), s->buf, r->length);
		return rc;
	}
	if (!extents && rc == 0)
		s->nruns = conn_scan(r, s->buf, s->m->runs);
	for (i = 0; i < s->nruns && rc == 0; i++)
		n += conn_chunk(r, &s->m->runs[i], s->buf + (s->m->runs[i].off - r->offset),
				i + 1 == s->nruns, s->m->hdr[i], s->m->iov + n);
	if (rc < 0)
		conn_error(c, s, ic_nbd_errno(rc));
	else
		conn_send(c, s, s->m->iov, n);
	return rc;
}

/* Serve read s without copying its bytes, when every one is a block the
 * cache daemon holds, or (with wait) does once it has filled them
 * (ops->pread_pipe): the pipe takes references to the daemon's pages and
 * the socket takes them from the pipe, one reply of one data chunk. Only
 * reads larger than CONN_SCAN_MAX, which would be one data chunk anyway
 * unless the disk has holes there (then the range is not all cached
 * blocks, and the usual way answers). false: not served, nothing sent. */
static bool
conn_read_pipe(struct ic_nbd_conn *c, struct slot *s, bool wait)
{
	const struct ic_nbd_request *r = &s->req;
	struct iovec iov[2];
	int rc;

	if (r->length <= CONN_SCAN_MAX || r->length > CONN_PIPE || !c->cfg.ops->pread_pipe ||
	    !c->cfg.io->send_pipe || !ic_pipe_ready(&s->pipe, CONN_PIPE))
		return false;
	if (c->cfg.ops->pread_pipe(c->cfg.backend, s->pipe.fd[1], r->length, r->offset, wait) < 0) {
		ic_pipe_drain(&s->pipe, s->buf, r->length);
		return false;
	}
	if (c->cfg.session.structured) {
		struct conn_run run = { r->offset, r->length, false };

		conn_chunk(r, &run, NULL, true, s->m->hdr[0], iov);
	} else {
		ic_nbd_simple_reply(s->m->hdr[0], r->cookie, 0);
		iov[0] = (struct iovec){ s->m->hdr[0], IC_NBD_SIMPLE_REPLY_SIZE };
	}
	rc = ic_nbd_sendq_send_pipe(&c->sendq, &s->sent, iov, 1, s->pipe.fd[0], r->length);
	if (rc < 0)
		ic_pipe_drain(&s->pipe, s->buf, r->length);
	if (c->cfg.stats)
		atomic_fetch_add_explicit(&c->cfg.stats->spliced_reads, 1, memory_order_relaxed);
	return true;
}

static int
conn_read(struct ic_nbd_conn *c, struct slot *s)
{
	const struct ic_nbd_request *r = &s->req;
	bool extents = c->cfg.session.structured && r->length > CONN_SCAN_MAX &&
		       c->cfg.ops->pread_extents;
	int rc;

	if (conn_read_pipe(c, s, true))
		return 0;
	if (extents)
		rc = conn_read_extents(c, s);
	else
		rc = c->cfg.ops->pread(c->cfg.backend, s->buf, r->length, r->offset);
	return conn_read_reply(c, s, rc, extents);
}

/* ---- BLOCK_STATUS ---- */

struct status_ctx {
	struct ic_nbd_status st[2];
	bool on[2];
};

static int
conn_status_add(void *arg, const struct ic_nbd_extent *ext)
{
	struct status_ctx *sc = arg;
	uint64_t end = ext->off + ext->len;
	bool more = false;
	int i;

	for (i = 0; i < 2; i++) {
		struct ic_nbd_status *st = &sc->st[i];
		uint32_t v = i ? ic_nbd_status_layer(ext) : ic_nbd_status_base(ext);

		if (sc->on[i] && end > st->end)
			more |= ic_nbd_status_add(st, end - st->end, v);
	}
	return !more;
}

static int
conn_block_status(struct ic_nbd_conn *c, struct slot *s)
{
	const struct ic_nbd_request *r = &s->req;
	uint32_t cap = r->flags & NBD_CMD_FLAG_REQ_ONE ? 1 : CONN_STATUS_MAX;
	static const uint32_t ids[2] = { IC_NBD_CTX_BASE_ID, IC_NBD_CTX_LAYER_ID };
	struct status_ctx sc = { .on = { c->cfg.session.ctx_base, c->cfg.session.ctx_layer } };
	int i, n = 0, last = sc.on[1] ? 1 : 0;
	int rc = 0;

	for (i = 0; i < 2; i++)
		ic_nbd_status_init(&sc.st[i], s->m->status[i], cap, ids[i], r->offset, r->length);
	if (c->cfg.ops->extents) {
		rc = c->cfg.ops->extents(c->cfg.backend, r->offset, r->length, conn_status_add,
					 &sc);
	} else {
		struct ic_nbd_extent all = { r->offset, r->length, 0, false };
		conn_status_add(&sc, &all);
	}
	for (i = 0; i < 2 && rc >= 0; i++) {
		if (sc.on[i] && sc.st[i].count == 0)
			rc = -EIO;
	}
	if (rc < 0) {
		conn_error(c, s, ic_nbd_errno(rc));
		return rc;
	}
	for (i = 0; i < 2; i++) {
		uint32_t len = ic_nbd_status_bytes(&sc.st[i]);

		if (!sc.on[i])
			continue;
		ic_nbd_chunk(s->m->hdr[i], i == last ? NBD_REPLY_FLAG_DONE : 0,
			     NBD_REPLY_TYPE_BLOCK_STATUS, r->cookie, len);
		s->m->iov[n++] = (struct iovec){ s->m->hdr[i], IC_NBD_CHUNK_SIZE };
		s->m->iov[n++] = (struct iovec){ s->m->status[i], len };
	}
	conn_send(c, s, s->m->iov, n);
	return 0;
}

/* ---- Dispatch ---- */

/* Run s and send its reply; returns the backend's result. */
static int
conn_exec(struct ic_nbd_conn *c, struct slot *s)
{
	const struct ic_nbd_request *r = &s->req;
	const struct ic_nbd_backend_ops *ops = c->cfg.ops;
	bool fua = r->flags & NBD_CMD_FLAG_FUA;
	void *h = c->cfg.backend;
	int rc;

	if (s->err) {
		conn_error(c, s, s->err);
		return 0;
	}
	switch (r->type) {
	case NBD_CMD_READ:
		return conn_read(c, s);
	case NBD_CMD_BLOCK_STATUS:
		return conn_block_status(c, s);
	case NBD_CMD_WRITE:
		rc = ops->pwrite(h, s->buf, r->length, r->offset, fua);
		break;
	case NBD_CMD_TRIM:
		rc = ops->trim(h, r->length, r->offset, fua);
		break;
	case NBD_CMD_WRITE_ZEROES:
		/* Zeroing is a map update below us, so FAST_ZERO always holds and
		 * NO_HOLE needs nothing: the range reads as zeroes either way. */
		rc = ops->zero(h, r->length, r->offset, fua);
		break;
	case NBD_CMD_CACHE:
		rc = ops->cache(h, r->length, r->offset);
		break;
	default: /* NBD_CMD_FLUSH; request_check let nothing else through */
		rc = ops->flush(h);
		break;
	}
	conn_simple(c, s, ic_nbd_errno(rc), NULL, 0);
	return rc;
}

/* After a request: taken away (rc -ESTALE), nothing more can be served
 * here, so hang up and let the client find the new owner (a new GO is
 * refused with its name). */
static void
conn_done(struct ic_nbd_conn *c, int rc)
{
	const struct ic_nbd_io *io = c->cfg.io;

	if (rc == -ESTALE) {
		ic_log(IC_LOG_INFO, "nbd: export %s was released, closing its connection",
		       c->cfg.session.export->name);
		__atomic_store_n(&c->hung_up, true, __ATOMIC_RELEASE);
		if (io->hangup)
			io->hangup(io->arg);
	}
}

static void
conn_run(struct ic_nbd_conn *c, struct slot *s)
{
	conn_done(c, conn_exec(c, s));
}

/* Under read_mu, before a read that may block: once the stream has been
 * quiet for CONN_IDLE_MS, every slot not serving a request gives all its
 * pages back. Such a slot's worker touches its buffer again only after
 * reading a request, under read_mu, which the caller holds; s->cost and
 * s->resident change under mu. A VM that booted and went quiet kept up to
 * CONN_RESIDENT per connection (6 MiB after a 1 MiB read stream at depth
 * 4) for as long as it stayed connected; the next large read after a
 * quiet spell faults its pages in again, once. */
static void
conn_idle(struct ic_nbd_conn *c)
{
	const struct ic_nbd_io *io = c->cfg.io;
	unsigned i;

	pthread_mutex_lock(&c->mu);
	if (!io->wait || c->resident <= CONN_KEEP) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	pthread_mutex_unlock(&c->mu);
	if (io->wait(io->arg, CONN_IDLE_MS) != 0)
		return;
	pthread_mutex_lock(&c->mu);
	for (i = 0; i < c->workers; i++) {
		struct slot *s = &c->slots[i];

		if (s->cost || !s->resident)
			continue;
		madvise(s->buf, s->resident, MADV_DONTNEED);
		c->resident -= s->resident;
		s->resident = 0;
	}
	pthread_mutex_unlock(&c->mu);
}


/* ---- replies of small inline reads, sent together ---- */

/* Under read_mu: send the replies gathered, if any, and wait until they
 * have left (their buffers are reused next). */
static void
conn_batch_send(struct ic_nbd_conn *c)
{
	struct conn_batch *b = c->batch;

	if (!b || !b->replies)
		return;
	b->sent.replies = b->replies;
	ic_nbd_sendq_send(&c->sendq, &b->sent, b->iov, b->niov);
	b->replies = 0;
	b->niov = b->nhdr = 0;
}

/* Under read_mu: where read r, served inline, is read to be answered with
 * the batch, or NULL when it is not batched: it is larger than a granule,
 * or no more requests are waiting in the read-ahead buffer and none was
 * gathered (a client at depth 1: its reply goes at once, as before). The
 * batch is made on first use. */
static uint8_t *
conn_batch_room(struct ic_nbd_conn *c, const struct ic_nbd_request *r)
{
	struct conn_batch *b = c->batch;

	if (r->length == 0 || r->length > CONN_GRANULE || c->no_batch ||
	    (!(b && b->replies) && c->rlen - c->rpos < IC_NBD_REQUEST_SIZE))
		return NULL;
	if (!b) {
		void *p = mmap(NULL, sizeof(*b), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (p == MAP_FAILED || ic_nbd_sendq_entry_init(&((struct conn_batch *)p)->sent) < 0) {
			if (p != MAP_FAILED)
				munmap(p, sizeof(*b));
			c->no_batch = true;
			return NULL;
		}
		b = c->batch = p;
	}
	return b->data[b->replies];
}

/* Under read_mu: add the reply to s's read, its data read at d (from
 * conn_batch_room), to the batch; send the batch once it is full. */
static void
conn_batch_add(struct ic_nbd_conn *c, struct slot *s, uint8_t *d)
{
	const struct ic_nbd_request *r = &s->req;
	struct conn_batch *b = c->batch;

	if (c->cfg.session.structured) {
		struct conn_run runs[2]; /* a granule's length spans at most two */
		unsigned n = conn_scan(r, d, runs);

		for (unsigned i = 0; i < n; i++)
			b->niov += conn_chunk(r, &runs[i], d + (runs[i].off - r->offset),
					      i + 1 == n, b->hdr[b->nhdr++], b->iov + b->niov);
	} else {
		uint8_t *h = b->hdr[b->nhdr++];

		ic_nbd_simple_reply(h, r->cookie, 0);
		b->iov[b->niov++] = (struct iovec){ h, IC_NBD_SIMPLE_REPLY_SIZE };
		b->iov[b->niov++] = (struct iovec){ d, r->length };
	}
	if (++b->replies == CONN_BATCH_MAX)
		conn_batch_send(c);
}
/* Under read_mu: len bytes of the stream, through rbuf. Large payloads
 * bypass it once it is drained. */
static int
conn_recv(struct ic_nbd_conn *c, void *dst, size_t len)
{
	const struct ic_nbd_io *io = c->cfg.io;
	uint8_t *d = dst;

	while (len) {
		size_t n = c->rlen - c->rpos;
		int got;

		if (n) {
			n = n < len ? n : len;
			memcpy(d, c->rbuf + c->rpos, n);
			c->rpos += n;
			d += n;
			len -= n;
			continue;
		}
		/* About to wait for the client, which may be waiting for these. */
		conn_batch_send(c);
		conn_idle(c);
		if (!io->recv_some || len >= CONN_RBUF)
			return io->recv(io->arg, d, len);
		got = io->recv_some(io->arg, c->rbuf, CONN_RBUF);
		if (got < 0)
			return got;
		c->rpos = 0;
		c->rlen = (size_t)got;
	}
	return 0;
}

/* Read a write's payload into the slot; one over the limit is read in
 * pieces and dropped, so the stream stays in step. */
static int
conn_payload(struct ic_nbd_conn *c, struct slot *s)
{
	uint32_t left = s->req.length;

	if (left <= c->cfg.max_payload)
		return conn_recv(c, s->buf, left);
	while (left) {
		uint32_t n = left < c->cfg.max_payload ? left : c->cfg.max_payload;
		int rc = conn_recv(c, s->buf, n);

		if (rc < 0)
			return rc;
		left -= n;
	}
	return 0;
}

static void *conn_worker(void *arg);

/* Under read_mu: account for the buffer bytes s is about to hold, waiting
 * while the requests in flight hold too many. One request alone always
 * proceeds, so a limit below the largest request cannot stall. */
static void
conn_budget_take(struct ic_nbd_conn *c, struct slot *s)
{
	const struct ic_nbd_request *r = &s->req;
	bool uses_buf = r->type == NBD_CMD_WRITE || (r->type == NBD_CMD_READ && !s->err);

	uint32_t cost = uses_buf ? (r->length < c->cfg.max_payload ? r->length : c->cfg.max_payload)
				 : 0;

	if (!cost)
		return;
	pthread_mutex_lock(&c->mu);
	while (c->inflight && c->inflight + cost > c->cfg.max_inflight)
		pthread_cond_wait(&c->drained, &c->mu);
	c->inflight += cost;
	s->cost = cost;
	pthread_mutex_unlock(&c->mu);
}

/* s was answered: give its bytes back to the in-flight budget, and its
 * pages beyond CONN_KEEP to the kernel when the connection's slots hold
 * more than CONN_RESIDENT. */
static void
conn_budget_give(struct ic_nbd_conn *c, struct slot *s)
{
	uint32_t trim = 0;

	if (!s->cost)
		return;
	pthread_mutex_lock(&c->mu);
	c->inflight -= s->cost;
	if (s->cost > s->resident) {
		c->resident += s->cost - s->resident;
		s->resident = s->cost;
	}
	if (c->resident > CONN_RESIDENT && s->resident > CONN_KEEP) {
		trim = s->resident - CONN_KEEP;
		s->resident = CONN_KEEP;
		c->resident -= trim;
	}
	s->cost = 0;
	pthread_cond_broadcast(&c->drained);
	pthread_mutex_unlock(&c->mu);
	/* Only this worker uses s->buf until it reads its next request (and
	 * conn_idle, below CONN_KEEP). */
	if (trim)
		madvise(s->buf + CONN_KEEP, trim, MADV_DONTNEED);
}

/* Under read_mu: read the next request into s. Returns false when the
 * stream has ended (c->eof set, c->rc says why). */
static bool
conn_next(struct ic_nbd_conn *c, struct slot *s)
{
	uint8_t raw[IC_NBD_REQUEST_SIZE];
	int rc;

	/* After a hang-up, requests already read ahead are not served either;
	 * nor once a reply could not be sent: the client is gone, and reading
	 * what it queued (a stalled client shut out at SIGTERM may have queued
	 * gigabytes of reads) would only delay the exit. */
	if (c->eof || __atomic_load_n(&c->hung_up, __ATOMIC_ACQUIRE) ||
	    ic_nbd_sendq_broken(&c->sendq)) {
		c->eof = true;
		return false;
	}
	rc = conn_recv(c, raw, sizeof(raw));
	if (rc == 0)
		rc = ic_nbd_request_decode(raw, &s->req);
	if (rc == 0 && s->req.type != NBD_CMD_DISC) {
		s->err = ic_nbd_request_check(&s->req, &c->cfg.session);
		if (!s->err && s->req.length > c->cfg.max_payload &&
		    (s->req.type == NBD_CMD_READ || s->req.type == NBD_CMD_WRITE))
			s->err = NBD_EOVERFLOW;
		conn_budget_take(c, s);
		if (ic_nbd_request_has_payload(&s->req))
			rc = conn_payload(c, s);
		if (rc == 0)
			return true;
		conn_budget_give(c, s);
	}
	if (rc == -EPROTO)
		ic_log(IC_LOG_INFO, "nbd: bad request magic, dropping the client");
	c->eof = true;
	c->rc = rc;
	return false;
}

/* Start another worker if every one is busy and slots remain. */
static void
conn_grow(struct ic_nbd_conn *c)
{
	struct slot *s;

	pthread_mutex_lock(&c->mu);
	c->idle--;
	if (c->idle == 0 && c->workers < c->cfg.slots && !c->closing) {
		s = &c->slots[c->workers];
		if ((s->conn || conn_slot_init(c, s) == 0) &&
		    pthread_create(&s->thread, NULL, conn_worker, s) == 0) {
			c->workers++;
			c->idle++;
		}
	}
	pthread_mutex_unlock(&c->mu);
}

/* Under read_mu, with read s just read: serve it here, on the thread that
 * reads the stream, if that needs no waiting (a hit in the daemon's
 * arena or the page cache: ops->pread_nowait); false leaves it to the
 * usual way. A client with many reads in flight that all hit is then
 * served by one thread, with no hand-off between threads per request; a
 * request that would wait goes to a worker as before, and the stream is
 * read on by another. Nor is a read served here while another worker's
 * reply is being sent: its reply would wait for that send, and so would
 * the stream (a client that does not read a large reply would stop the
 * server from reading, and batching, the requests it sent after it). */
static bool
conn_inline(struct ic_nbd_conn *c, struct slot *s)
{
	const struct ic_nbd_request *r = &s->req;
	uint8_t *batched;
	int rc;

	if (s->err || r->type != NBD_CMD_READ || r->length > CONN_INLINE_MAX ||
	    !c->cfg.ops->pread_nowait || ic_nbd_sendq_busy(&c->sendq))
		return false;
	if (!conn_read_pipe(c, s, false)) {
		batched = conn_batch_room(c, r);
		rc = c->cfg.ops->pread_nowait(c->cfg.backend, batched ? batched : s->buf,
					      r->length, r->offset);
		if (rc == -EAGAIN)
			return false;
		if (batched && rc == 0)
			conn_batch_add(c, s, batched);
		else
			conn_done(c, conn_read_reply(c, s, rc, false));
	}
	conn_budget_give(c, s);
	if (c->cfg.stats)
		atomic_fetch_add_explicit(&c->cfg.stats->inline_reads, 1, memory_order_relaxed);
	return true;
}

static void *
conn_worker(void *arg)
{
	struct slot *s = arg;
	struct ic_nbd_conn *c = s->conn;

	for (;;) {
		bool got;

		pthread_mutex_lock(&c->read_mu);
		while ((got = conn_next(c, s)) && conn_inline(c, s))
			;
		conn_batch_send(c);
		pthread_mutex_unlock(&c->read_mu);
		if (!got)
			break;
		conn_grow(c);
		conn_run(c, s);
		conn_budget_give(c, s);
		pthread_mutex_lock(&c->mu);
		c->idle++;
		pthread_mutex_unlock(&c->mu);
	}
	return NULL;
}

int
ic_nbd_conn_serve(struct ic_nbd_conn *c)
{
	unsigned i, n;

	c->workers = c->idle = 1;
	conn_worker(&c->slots[0]);
	/* The stream has ended; once closing is set no worker starts another. */
	pthread_mutex_lock(&c->mu);
	c->closing = true;
	n = c->workers;
	pthread_mutex_unlock(&c->mu);
	for (i = 1; i < n; i++)
		pthread_join(c->slots[i].thread, NULL);
	if (!(c->cfg.session.export->tflags & NBD_FLAG_READ_ONLY))
		c->cfg.ops->flush(c->cfg.backend);
	/* A client that hangs up without DISC is not an error of ours. */
	return c->rc == -ECONNRESET ? 0 : c->rc;
}
