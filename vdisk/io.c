/* Vdisk I/O: requests are resolved cluster run by cluster run to the layer
 * holding each byte, split into segments and sent down the filter stack.
 * Writes go to the leaf, copying a partial cluster up from below first
 * (copy-on-write). The leaf's map changes in memory at once and reaches
 * the metadata file at flush, after the layer data it describes. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/tsan.h"
#include "vdisk/vdisk.h"

#define VD_MAX_SEG (1u << 30) /* longest segment, bytes */

static const char vd_zeroes[2u << 20]; /* the largest cluster, all zero */

/* Send segments down the stack, or to the layer backend when there is none. */
static int
vd_submit(struct ic_vdisk *vd, enum ic_filter_op op, struct ic_seg *segs, unsigned n,
	  uint32_t flags)
{
	const struct ic_filter_ops *b = &ic_layer_backend_ops;

	if (n == 0)
		return 0;
	/* Checked again immediately before submission: across hosts the claim
	 * can lapse (its lease unrenewed) while a request waits for its locks. */
	if (op != IC_OP_PREAD && op != IC_OP_CACHE && vd_fenced(vd))
		return -ESTALE;
	if (vd->stack) {
		switch (op) {
		case IC_OP_PREAD: return ic_stack_pread(vd->stack, segs, n, flags);
		case IC_OP_PWRITE: return ic_stack_pwrite(vd->stack, segs, n, flags);
		case IC_OP_TRIM: return ic_stack_trim(vd->stack, segs, n, flags);
		case IC_OP_CACHE: return ic_stack_cache(vd->stack, segs, n);
		default: return -EINVAL;
		}
	}
	switch (op) {
	case IC_OP_PREAD: return b->pread(NULL, NULL, segs, n, flags);
	case IC_OP_PWRITE: return b->pwrite(NULL, NULL, segs, n, flags);
	case IC_OP_TRIM: return b->trim(NULL, NULL, segs, n, flags);
	case IC_OP_CACHE: return b->cache(NULL, NULL, segs, n);
	default: return -EINVAL;
	}
}

/* A batch of segments filled run by run and submitted when full. */
struct vd_batch {
	struct ic_vdisk *vd;
	enum ic_filter_op op;
	uint32_t flags;
	int *pipe; /* IC_REQ_PIPE: every segment's buf */
	unsigned n;
	struct ic_seg seg[IC_MAX_SEGS];
};

static int
vd_batch_add(struct vd_batch *b, const struct ic_layer *layer, uint64_t off, uint64_t len,
	     char *buf)
{
	while (len) {
		uint32_t piece = len > VD_MAX_SEG ? VD_MAX_SEG : (uint32_t)len;
		struct ic_seg *last = b->n ? &b->seg[b->n - 1] : NULL;

		if (last && last->layer == layer && last->off + last->len == off &&
		    (!buf || (char *)last->buf + last->len == buf) &&
		    (uint64_t)last->len + piece <= VD_MAX_SEG) {
			last->len += piece;
		} else {
			if (b->n == IC_MAX_SEGS) {
				int rc = vd_submit(b->vd, b->op, b->seg, b->n, b->flags);

				b->n = 0;
				if (rc)
					return rc;
			}
			b->seg[b->n++] = (struct ic_seg){ layer, off, piece, buf ? (void *)buf : b->pipe };
		}
		off += piece;
		len -= piece;
		if (buf)
			buf += piece;
	}
	return 0;
}

static int
vd_batch_end(struct vd_batch *b)
{
	int rc = vd_submit(b->vd, b->op, b->seg, b->n, b->flags);

	b->n = 0;
	return rc;
}

int
vd_quiesce(struct ic_vdisk *vd, long long deadline_ms)
{
	struct timespec ts = { .tv_sec = deadline_ms / 1000,
			       .tv_nsec = (deadline_ms % 1000) * 1000000 };
	int rc;

	ic_tsan_pre_wrlock(&vd->io_lock);
	rc = pthread_rwlock_clockwrlock(&vd->io_lock, CLOCK_MONOTONIC, &ts);
	ic_tsan_post_wrlock(&vd->io_lock, rc);
	return -rc;
}

void
vd_resume(struct ic_vdisk *vd)
{
	pthread_rwlock_unlock(&vd->io_lock);
}

/* A released or fenced handle serves nothing: its leaf map may be stale
 * now that another process writes the leaf. */
static int
vd_check_range(const struct ic_vdisk *vd, uint64_t len, uint64_t off)
{
	if (vd_fenced(vd))
		return -ESTALE;
	if (off > vd->size || len > vd->size - off) {
		ic_log(IC_LOG_ERR, "%s: range %llu+%llu is past the end (%llu bytes)", vd->image,
		       (unsigned long long)off, (unsigned long long)len,
		       (unsigned long long)vd->size);
		return -EINVAL;
	}
	return 0;
}

/* A write request is over (done or failed): a flush has work again. */
static int
vd_written(struct ic_vdisk *vd, int rc)
{
	__atomic_add_fetch(&vd->writes, 1, __ATOMIC_RELEASE);
	return rc;
}

static int
vd_check_write(struct ic_vdisk *vd, uint64_t len, uint64_t off)
{
	if (vd->readonly)
		return -EROFS;
	__atomic_store_n(&vd->last_write_ms, (uint64_t)ic_now_ms(), __ATOMIC_RELAXED);
	return vd_check_range(vd, len, off);
}

void
vd_resolve(struct ic_vdisk *vd, uint64_t cluster, uint64_t limit, struct vd_run *run)
{
	const struct ic_meta_extent *e;
	uint64_t gap_end = limit, next;
	int depth = -2; /* -2: not found yet, -1: zero, else the layer */

	if (!vd->snapshot) {
		pthread_rwlock_rdlock(&vd->map_lock);
		e = extmap_find(&vd->leaf, cluster, &gap_end);
		if (e) {
			depth = e->holder ? 0 : -1;
			gap_end = e->start + e->count;
		}
		pthread_rwlock_unlock(&vd->map_lock);
	}
	if (depth == -2) {
		e = extmap_find(&vd->below_map, cluster, &next);
		if (e) {
			depth = (int)e->holder - 1;
			next = e->start + e->count;
		}
		if (next < gap_end)
			gap_end = next;
	}
	run->end = gap_end < limit ? gap_end : limit;
	run->zero = depth == -1;
	run->depth = depth < 0 ? -1 : depth;
	run->layer = depth < 0 ? NULL : &vd->layers[depth];
}

/* The run of bytes starting at pos (before end) that reads from one place:
 * fills *run and returns where the run stops. */
static uint64_t
vd_next_run(struct ic_vdisk *vd, uint64_t pos, uint64_t end, struct vd_run *run)
{
	unsigned shift = vd->store->cluster_shift;

	vd_resolve(vd, pos >> shift, ((end - 1) >> shift) + 1, run);
	return run->end << shift < end ? run->end << shift : end;
}

/* Extents reported as runs are resolved: like runs merge, and fn hears
 * each extent once it is whole. fn's non-zero return stops the reports
 * and is kept in rc. */
struct vd_report {
	int (*fn)(void *arg, const struct ic_extent *ext);
	void *arg;
	struct ic_extent cur;
	int rc;
};

static void
vd_report_run(struct vd_report *r, uint64_t pos, uint64_t stop, const struct vd_run *run)
{
	struct ic_extent *cur = &r->cur;

	if (cur->len && cur->depth == run->depth && cur->zero == run->zero) {
		cur->len += stop - pos;
		return;
	}
	if (cur->len && r->rc == 0)
		r->rc = r->fn(r->arg, cur);
	*cur = (struct ic_extent){ pos, stop - pos, run->depth, run->zero };
}

static int
vd_report_end(struct vd_report *r)
{
	if (r->cur.len && r->rc == 0)
		r->rc = r->fn(r->arg, &r->cur);
	return r->rc;
}

/* Read [off, off+len) without range checks: data runs go down the stack
 * with flags, the rest is zero-filled here. With report, each extent is
 * reported too, from the same resolve. With IC_REQ_PIPE, buf is the int
 * naming the pipe, and a range with no layer under it is -EAGAIN. */
static int
vd_read(struct ic_vdisk *vd, char *buf, uint64_t len, uint64_t off, struct vd_report *report,
	uint32_t flags)
{
	bool pipe = flags & IC_REQ_PIPE;
	struct vd_batch b = {
		.vd = vd, .op = IC_OP_PREAD, .flags = flags, .pipe = pipe ? (int *)buf : NULL
	};
	uint64_t end = off + len, stop;
	struct vd_run run;
	int rc = 0;

	for (uint64_t pos = off; pos < end && rc == 0; pos = stop) {
		stop = vd_next_run(vd, pos, end, &run);
		if (run.layer)
			rc = vd_batch_add(&b, run.layer, pos, stop - pos,
					  pipe ? NULL : buf + (pos - off));
		else if (pipe)
			rc = -EAGAIN;
		else
			memset(buf + (pos - off), 0, stop - pos);
		if (report)
			vd_report_run(report, pos, stop, &run);
	}
	if (rc == 0)
		rc = vd_batch_end(&b);
	if (rc == 0 && report)
		rc = vd_report_end(report);
	return rc;
}

/* vd_read under the I/O lock, after the range checks. With IC_REQ_NOWAIT
 * the lock is only tried: it is held exclusively by a release, a snapshot
 * or a reopen, which wait for storage, so such a read does not wait for
 * them either. */
static int
vd_pread_locked(struct ic_vdisk *vd, void *buf, size_t len, uint64_t off,
		struct vd_report *report, uint32_t flags)
{
	int rc;

	if (!(flags & IC_REQ_NOWAIT))
		pthread_rwlock_rdlock(&vd->io_lock);
	else if (pthread_rwlock_tryrdlock(&vd->io_lock) != 0)
		return -EAGAIN;
	rc = vd_check_range(vd, len, off);
	if (rc == 0)
		rc = vd_read(vd, buf, len, off, report, flags);
	pthread_rwlock_unlock(&vd->io_lock);
	return rc;
}

int
ic_vdisk_pread(struct ic_vdisk *vd, void *buf, size_t len, uint64_t off)
{
	return vd_pread_locked(vd, buf, len, off, NULL, 0);
}

int
ic_vdisk_pread_nowait(struct ic_vdisk *vd, void *buf, size_t len, uint64_t off)
{
	return vd_pread_locked(vd, buf, len, off, NULL, IC_REQ_NOWAIT);
}

int
ic_vdisk_pread_pipe(struct ic_vdisk *vd, int pipe, size_t len, uint64_t off, bool wait)
{
	return vd_pread_locked(vd, &pipe, len, off, NULL,
			       wait ? IC_REQ_PIPE : IC_REQ_NOWAIT | IC_REQ_PIPE);
}

int
ic_vdisk_pread_extents(struct ic_vdisk *vd, void *buf, size_t len, uint64_t off,
		       int (*fn)(void *arg, const struct ic_extent *ext), void *arg)
{
	struct vd_report report = { .fn = fn, .arg = arg };

	return vd_pread_locked(vd, buf, len, off, &report, 0);
}

/* Does the leaf hold cluster's data itself? Returns the end of that run
 * (or of the run it does not hold), and sets *held. */
static uint64_t
vd_leaf_run(struct ic_vdisk *vd, uint64_t cluster, bool *held)
{
	const struct ic_meta_extent *e;
	uint64_t next;

	pthread_rwlock_rdlock(&vd->map_lock);
	e = extmap_find(&vd->leaf, cluster, &next);
	*held = e && e->holder == vd->layers[0].disk_id;
	if (e)
		next = e->start + e->count;
	pthread_rwlock_unlock(&vd->map_lock);
	return next;
}

/* Record in the leaf map that [start, start+count) now reads as holder. */
static int
vd_map_set(struct ic_vdisk *vd, uint64_t start, uint64_t count, uint64_t holder)
{
	int rc;

	pthread_rwlock_wrlock(&vd->map_lock);
	rc = extmap_set(&vd->leaf, start, count, holder);
	if (rc == 0)
		rc = extmap_set(&vd->dirty, start, count, 1);
	pthread_rwlock_unlock(&vd->map_lock);
	if (rc)
		ic_log(IC_LOG_ERR, "%s: out of memory for the allocation map", vd->image);
	return rc;
}

/* Per-thread bounce buffer of the largest cluster, O_DIRECT-aligned. */
static __thread char *vd_bounce;
static pthread_key_t vd_bounce_key;
static pthread_once_t vd_bounce_once = PTHREAD_ONCE_INIT;

static void
vd_bounce_key_init(void)
{
	pthread_key_create(&vd_bounce_key, free);
}

static char *
vd_bounce_buffer(void)
{
	if (!vd_bounce) {
		pthread_once(&vd_bounce_once, vd_bounce_key_init);
		vd_bounce = aligned_alloc(4096, sizeof(vd_zeroes));
		pthread_setspecific(vd_bounce_key, vd_bounce);
	}
	return vd_bounce;
}

/* Write [off, off+len) inside one cluster the leaf does not hold: copy the
 * cluster up (old contents from below, new bytes merged), write it whole to
 * the leaf, then map it. The cluster's stripe lock keeps two writers of one
 * cluster from copying up over each other. */
static int
vd_cow(struct ic_vdisk *vd, uint64_t cluster, const char *src, uint64_t len, uint64_t off)
{
	pthread_mutex_t *mu = &vd->cow_lock[cluster % VD_COW_LOCKS];
	uint64_t cs = cluster << vd->store->cluster_shift;
	uint64_t ce = cs + vd->store->cluster_size < vd->size ? cs + vd->store->cluster_size : vd->size;
	struct ic_seg seg = { &vd->layers[0], cs, (uint32_t)(ce - cs), (void *)src };
	bool held;
	int rc;

	pthread_mutex_lock(mu);
	vd_leaf_run(vd, cluster, &held);
	if (held) { /* another writer copied it up meanwhile */
		seg = (struct ic_seg){ &vd->layers[0], off, (uint32_t)len, (void *)src };
		rc = vd_submit(vd, IC_OP_PWRITE, &seg, 1, 0);
		goto out;
	}
	if (off != cs || off + len != ce) {
		char *tmp = vd_bounce_buffer();

		if (!tmp) {
			rc = -ENOMEM;
			goto out;
		}
		rc = vd_read(vd, tmp, ce - cs, cs, NULL, 0);
		if (rc)
			goto out;
		memcpy(tmp + (off - cs), src, len);
		seg.buf = tmp;
	}
	rc = vd_submit(vd, IC_OP_PWRITE, &seg, 1, 0);
	if (rc == 0)
		rc = vd_map_set(vd, cluster, 1, vd->layers[0].disk_id);
out:
	pthread_mutex_unlock(mu);
	return rc;
}

/* Write without checks; FUA is the caller's. */
static int
vd_write(struct ic_vdisk *vd, const char *buf, uint64_t len, uint64_t off)
{
	struct vd_batch b = { .vd = vd, .op = IC_OP_PWRITE };
	unsigned shift = vd->store->cluster_shift;
	uint64_t end = off + len, pos = off;
	int rc = 0;

	while (pos < end && rc == 0) {
		uint64_t cluster = pos >> shift;
		bool held;
		uint64_t run_end = vd_leaf_run(vd, cluster, &held);
		uint64_t stop;

		if (held) {
			stop = run_end << shift < end ? run_end << shift : end;
			rc = vd_batch_add(&b, &vd->layers[0], pos, stop - pos,
					  (char *)buf + (pos - off));
		} else {
			stop = (cluster + 1) << shift < end ? (cluster + 1) << shift : end;
			rc = vd_cow(vd, cluster, buf + (pos - off), stop - pos, pos);
		}
		pos = stop;
	}
	if (rc == 0)
		rc = vd_batch_end(&b);
	return rc;
}

int
ic_vdisk_pwrite(struct ic_vdisk *vd, const void *buf, size_t len, uint64_t off, uint32_t flags)
{
	int rc;

	pthread_rwlock_rdlock(&vd->io_lock);
	rc = vd_check_write(vd, len, off);
	if (rc == 0)
		rc = vd_written(vd, vd_write(vd, buf, len, off));
	if (rc == 0 && (flags & IC_REQ_FUA))
		rc = vd_flush(vd);
	pthread_rwlock_unlock(&vd->io_lock);
	return rc;
}

/* Trim and write-zeroes: whole clusters become a zero extent of the leaf
 * (hiding whatever lies below) and are punched out of the leaf file;
 * partial clusters at the edges get zeroes written. FUA is the caller's. */
static int
vd_zero_range(struct ic_vdisk *vd, uint64_t len, uint64_t off)
{
	unsigned shift = vd->store->cluster_shift;
	uint64_t csize = vd->store->cluster_size, end = off + len;
	uint64_t c0 = (off + csize - 1) >> shift, c1 = end >> shift;
	int rc = vd_check_write(vd, len, off);

	if (rc)
		return rc;
	if (end == vd->size) /* the disk's last, partial cluster counts as whole */
		c1 = (end + csize - 1) >> shift;
	if (c0 >= c1) { /* within one cluster */
		for (uint64_t pos = off; pos < end && rc == 0; pos += sizeof(vd_zeroes))
			rc = vd_write(vd, vd_zeroes, end - pos < sizeof(vd_zeroes) ? end - pos : sizeof(vd_zeroes), pos);
	} else {
		uint64_t head = (c0 << shift) - off, zs = c0 << shift;
		uint64_t ze = (c1 << shift) < end ? c1 << shift : end;
		struct vd_batch b = { .vd = vd, .op = IC_OP_TRIM };

		if (head)
			rc = vd_write(vd, vd_zeroes, head, off);
		if (rc == 0 && ze < end)
			rc = vd_write(vd, vd_zeroes, end - ze, ze);
		if (rc == 0)
			rc = vd_map_set(vd, c0, c1 - c0, 0);
		if (rc == 0)
			rc = vd_batch_add(&b, &vd->layers[0], zs, ze - zs, NULL);
		if (rc == 0)
			rc = vd_batch_end(&b);
	}
	return rc;
}

static int
vd_zero_locked(struct ic_vdisk *vd, size_t len, uint64_t off, uint32_t flags)
{
	int rc;

	pthread_rwlock_rdlock(&vd->io_lock);
	rc = vd_written(vd, vd_zero_range(vd, len, off));
	if (rc == 0 && (flags & IC_REQ_FUA))
		rc = vd_flush(vd);
	pthread_rwlock_unlock(&vd->io_lock);
	return rc;
}

int
ic_vdisk_trim(struct ic_vdisk *vd, size_t len, uint64_t off, uint32_t flags)
{
	return vd_zero_locked(vd, len, off, flags);
}

int
ic_vdisk_zero(struct ic_vdisk *vd, size_t len, uint64_t off, uint32_t flags)
{
	return vd_zero_locked(vd, len, off, flags);
}

static int
vd_cache(struct ic_vdisk *vd, size_t len, uint64_t off)
{
	struct vd_batch b = { .vd = vd, .op = IC_OP_CACHE };
	uint64_t end = off + len, stop;
	struct vd_run run;
	int rc = vd_check_range(vd, len, off);

	for (uint64_t pos = off; pos < end && rc == 0; pos = stop) {
		stop = vd_next_run(vd, pos, end, &run);
		if (run.layer)
			rc = vd_batch_add(&b, run.layer, pos, stop - pos, NULL);
	}
	if (rc == 0)
		rc = vd_batch_end(&b);
	return rc;
}

int
ic_vdisk_cache(struct ic_vdisk *vd, size_t len, uint64_t off)
{
	int rc;

	pthread_rwlock_rdlock(&vd->io_lock);
	rc = vd_cache(vd, len, off);
	pthread_rwlock_unlock(&vd->io_lock);
	return rc;
}

static int
vd_extents(struct ic_vdisk *vd, uint64_t off, uint64_t len,
	   int (*fn)(void *arg, const struct ic_extent *ext), void *arg)
{
	struct vd_report report = { .fn = fn, .arg = arg };
	uint64_t end = off + len, stop;
	struct vd_run run;
	int rc = vd_check_range(vd, len, off);

	for (uint64_t pos = off; pos < end && rc == 0 && report.rc == 0; pos = stop) {
		stop = vd_next_run(vd, pos, end, &run);
		vd_report_run(&report, pos, stop, &run);
	}
	return rc ? rc : vd_report_end(&report);
}

int
ic_vdisk_extents(struct ic_vdisk *vd, uint64_t off, uint64_t len,
		 int (*fn)(void *arg, const struct ic_extent *ext), void *arg)
{
	int rc;

	pthread_rwlock_rdlock(&vd->io_lock);
	rc = vd_extents(vd, off, len, fn, arg);
	pthread_rwlock_unlock(&vd->io_lock);
	return rc;
}

/* The leaf map's extents inside the dirty ranges, clipped to them. */
struct vd_commit {
	struct extmap ranges; /* what to replace */
	struct extmap ext;    /* the new contents */
};

static int
vd_commit_collect(struct ic_vdisk *vd, struct vd_commit *c)
{
	int rc = 0;

	c->ranges = vd->dirty;
	vd->dirty = (struct extmap){ 0 };
	c->ext = (struct extmap){ 0 };
	for (size_t i = 0; i < c->ranges.n && rc == 0; i++) {
		uint64_t s = c->ranges.ext[i].start, e = s + c->ranges.ext[i].count;

		for (size_t j = extmap_lower(&vd->leaf, s); j < vd->leaf.n && rc == 0; j++) {
			const struct ic_meta_extent *x = &vd->leaf.ext[j];
			uint64_t a = x->start > s ? x->start : s;
			uint64_t z = x->start + x->count < e ? x->start + x->count : e;

			if (x->start >= e)
				break;
			rc = extmap_set(&c->ext, a, z - a, x->holder);
		}
	}
	return rc;
}

/* Replace, in txn, the leaf's map over the dirty ranges of c inside
 * [lo, hi) (clusters) with c's extents there, clipped to them. */
static int
vd_commit_replace(struct ic_meta_txn *txn, uint64_t leaf, const struct vd_commit *c, uint64_t lo,
		  uint64_t hi)
{
	struct ic_meta_extent *part = NULL;
	size_t cap = 0;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < c->ranges.n; i++) {
		uint64_t s = c->ranges.ext[i].start, e = s + c->ranges.ext[i].count, n = 0;

		s = s > lo ? s : lo;
		e = e < hi ? e : hi;
		if (s >= e)
			continue;
		for (size_t z = extmap_lower(&c->ext, s); z < c->ext.n && c->ext.ext[z].start < e;
		     z++, n++) {
			const struct ic_meta_extent *x = &c->ext.ext[z];
			uint64_t a = x->start > s ? x->start : s;
			uint64_t b = x->start + x->count < e ? x->start + x->count : e;

			if (n == cap) {
				struct ic_meta_extent *grown =
					realloc(part, (cap = cap ? 2 * cap : 64) * sizeof(*part));

				if (!grown) {
					free(part);
					return -ENOMEM;
				}
				part = grown;
			}
			part[n] = (struct ic_meta_extent){ a, b - a, x->holder };
		}
		rc = ic_meta_extent_replace(txn, IC_MAP_ALLOC, leaf, s, e - s, part, n);
	}
	free(part);
	return rc;
}

/* Commit c's ranges inside [lo, hi) as one transaction. */
static int
vd_commit_write(struct ic_vdisk *vd, const struct vd_commit *c, uint64_t lo, uint64_t hi)
{
	struct ic_meta_txn *txn;
	int rc = ic_meta_begin(vd->store->meta, true, &txn);

	if (rc)
		return rc;
	rc = owner_check(txn, &vd->claim);
	if (rc == -ESTALE)
		vd_fence_deposed(vd);
	if (rc == 0)
		rc = vd_commit_replace(txn, vd->layers[0].disk_id, c, lo, hi);
	if (rc) {
		ic_meta_abort(txn);
		return rc;
	}
	rc = ic_meta_commit(txn);
	if (rc == -ESTALE) /* fenced by the commit itself (a store in etcd) */
		vd_fence_deposed(vd);
	return rc;
}

/* Commit c's ranges inside [lo, hi). A commit larger than the metadata
 * store takes in one transaction (-E2BIG: a store in etcd takes 128
 * chunks of the map and 1 MiB; an import that wrote a sparse image of
 * terabytes faster than the background commit) is split at the middle
 * cluster, each half its own transaction. The flush returns once all are
 * in: a crash between them leaves the first half committed, as a
 * background commit would have; nothing was acknowledged. */
static int
vd_commit_span(struct ic_vdisk *vd, const struct vd_commit *c, uint64_t lo, uint64_t hi)
{
	int rc = vd_commit_write(vd, c, lo, hi);

	if (rc == -E2BIG && hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;

		ic_log(IC_LOG_INFO, "%s: the map's changes of clusters [%" PRIu64 ", %" PRIu64
		       ") are more than one metadata commit takes: committing them in two",
		       vd->image, lo, hi);
		rc = vd_commit_span(vd, c, lo, mid);
		if (rc == 0)
			rc = vd_commit_span(vd, c, mid, hi);
	}
	return rc;
}

int
ic_vdisk_flush(struct ic_vdisk *vd)
{
	int rc;

	pthread_rwlock_rdlock(&vd->io_lock);
	rc = vd_flush(vd);
	pthread_rwlock_unlock(&vd->io_lock);
	return rc;
}

/* A flush with no write request done since the last one that succeeded
 * has nothing to make durable: no data, no map change (every change of
 * the map is made by a write request, which counts itself once it is
 * over). It returns at once, without an fdatasync of the leaf: an idle
 * vdisk handed to another process (docs/OWNERSHIP.md) then costs one
 * device flush, the metadata commit of the release, not two; so does a
 * guest that flushes with nothing written. A request still in flight
 * when the flush reads the count is not covered by it, as NBD's FLUSH
 * covers only what was acknowledged, and counts itself after: the next
 * flush syncs it. */
int
vd_flush(struct ic_vdisk *vd)
{
	struct vd_commit c;
	uint64_t writes;
	int rc;

	if (vd->readonly)
		return 0;
	if (vd_fenced(vd))
		return -ESTALE;
	pthread_mutex_lock(&vd->flush_lock);
	writes = __atomic_load_n(&vd->writes, __ATOMIC_ACQUIRE);
	if (writes == vd->synced) {
		pthread_mutex_unlock(&vd->flush_lock);
		return 0;
	}
	/* Take the map's changes before syncing the data: whatever is in the
	 * snapshot was written before the fdatasync below began, so the map
	 * never reaches the file ahead of the data it points to (invariant 2). */
	pthread_rwlock_wrlock(&vd->map_lock);
	rc = vd_commit_collect(vd, &c);
	pthread_rwlock_unlock(&vd->map_lock);
	if (rc == 0)
		rc = vd->stack ? ic_stack_flush(vd->stack, &vd->layers[0])
			       : ic_layer_backend_ops.flush(NULL, NULL, &vd->layers[0]);
	if (rc == 0 && c.ranges.n)
		rc = vd_commit_span(vd, &c, c.ranges.ext[0].start,
				    c.ranges.ext[c.ranges.n - 1].start +
					    c.ranges.ext[c.ranges.n - 1].count);
	if (rc) {
		/* Keep the ranges dirty so the next flush tries again. */
		pthread_rwlock_wrlock(&vd->map_lock);
		for (size_t i = 0; i < c.ranges.n; i++)
			if (extmap_set(&vd->dirty, c.ranges.ext[i].start, c.ranges.ext[i].count, 1))
				break;
		pthread_rwlock_unlock(&vd->map_lock);
		ic_log(IC_LOG_ERR, "%s: flush failed: %s", vd->image, strerror(-rc));
	} else {
		vd->synced = writes;
	}
	pthread_mutex_unlock(&vd->flush_lock);
	extmap_free(&c.ranges);
	extmap_free(&c.ext);
	return rc;
}
