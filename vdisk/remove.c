/* Removing images: a vdisk goes with its leaf; a snapshot with no layer on
 * top goes; a snapshot with exactly one layer on top is merged into it
 * (like qemu-img commit, the other way round); a shared one is refused.
 * What rm found on top of a snapshot is checked again in the transaction
 * that removes it, and rm runs again when that, or anything else the
 * transaction read, changed (vdisk/again.c). Also flatten, which copies a
 * vdisk's whole chain into its leaf. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/uuid.h"
#include "vdisk/vdisk.h"

#define RM_CHUNK (1u << 20)

/* Drop a layer's records, maps and name (not its file) in txn. */
static int
rm_layer_records(struct ic_meta_txn *txn, const struct ic_disk_rec *rec)
{
	int rc = ic_meta_extent_clear(txn, IC_MAP_ALLOC, rec->id);

	if (rc == 0)
		rc = ic_meta_extent_clear(txn, IC_MAP_RESOLVED, rec->id);
	if (rc == 0)
		rc = ic_meta_disk_del(txn, rec->id);
	if (rc == 0 && rec->name[0])
		rc = ic_meta_name_del(txn, rec->name);
	if (rc == 0 && rec->name[0] && !(rec->flags & IC_DISK_FROZEN)) {
		rc = ic_meta_owner_del(txn, rec->name);
		if (rc == -ENOENT)
			rc = 0;
	}
	return rc;
}

struct rm_children {
	uint64_t parent;
	struct ic_disk_rec first;
	unsigned n;
	char names[512];
};

static int
rm_child(void *arg, const struct ic_disk_rec *rec)
{
	struct rm_children *c = arg;
	size_t used = strlen(c->names);

	if (rec->parent != c->parent)
		return 0;
	if (c->n++ == 0)
		c->first = *rec;
	snprintf(c->names + used, sizeof(c->names) - used, "%s%s", used ? ", " : "",
		 rec->name[0] ? rec->name : "(unnamed layer)");
	return 0;
}

/* Inside rm's write transaction: are the layers on top of s still only
 * child (0: none), as rm's look before found? A clone of s made since
 * would be left on a removed layer: -EAGAIN, and rm looks again. */
static int
rm_children_same(struct ic_meta_txn *txn, const struct ic_disk_rec *s, uint64_t child)
{
	struct rm_children kids = { .parent = s->id };
	int rc = ic_meta_disk_foreach(txn, rm_child, &kids);

	if (rc == 0 && (kids.n != (child != 0) || (child && kids.first.id != child))) {
		ic_log(IC_LOG_INFO, "%s: a layer was made on top of it meanwhile (%s)", s->name,
		       kids.names);
		rc = -EAGAIN;
	}
	return rc;
}

/* Is the claim on the layer a merge writes (NULL: a new layer, no one's
 * but ours) fenced? Then -ESTALE: another process may write there now. */
static int
rm_fenced(const struct owner_claim *claim, const char *name)
{
	const char *why = claim ? owner_fenced_why(claim) : NULL;

	if (!why)
		return 0;
	ic_log(IC_LOG_ERR, "%s: %s; not writing", name, why);
	return -ESTALE;
}

/* Copy [off, off+len) from one file to another with plain syscalls, each
 * write only while claim is not fenced. */
static int
rm_copy(int from, int to, uint64_t off, uint64_t len, char *buf, const struct owner_claim *claim,
	const char *name)
{
	while (len) {
		size_t n = len < RM_CHUNK ? len : RM_CHUNK;
		ssize_t r = pread(from, buf, n, (off_t)off), w;
		int rc = r < 0 ? -errno : r == 0 ? -EIO : rm_fenced(claim, name);

		if (rc)
			return rc;
		w = pwrite(to, buf, (size_t)r, (off_t)off);
		if (w != r) /* a short write: a full disk */
			return w < 0 ? -errno : -ENOSPC;
		off += (uint64_t)r;
		len -= (uint64_t)r;
	}
	return 0;
}

/* A merge in progress: s goes into its only child c, whose merged map
 * is cmap and whose merged file is fd (c's own, or the new layer's). */
struct rm_merge {
	struct ic_store *store;
	const struct ic_disk_rec *s;
	struct ic_disk_rec *c;
	const struct owner_claim *claim; /* c's, when it is a vdisk */
	struct extmap smap, cmap;
	struct extmap copied; /* the ranges of s copied into fd */
	char *buf;
	uint64_t done, total;
	ic_progress_fn progress;
	void *arg;
};

/* Copy clusters [cl, stop) (up to size bytes) from one file to the
 * other, or nothing when from is -1 (a zeroed range), and show progress. */
static int
rm_merge_copy(struct rm_merge *m, int from, int to, uint64_t cl, uint64_t stop, uint64_t size)
{
	unsigned shift = m->store->cluster_shift;
	uint64_t off = cl << shift, lim = (stop << shift) < size ? stop << shift : size;
	int rc = from < 0 ? 0
			  : rm_copy(from, to, off, lim > off ? lim - off : 0, m->buf, m->claim,
				    m->c->name);

	if (rc && rc != -ESTALE) /* -ESTALE: rm_fenced said why */
		ic_log(IC_LOG_ERR, "%s: cannot copy %s's data into it: %s", m->c->name, m->s->name,
		       strerror(-rc));
	m->done += (stop - cl) << shift;
	if (m->progress)
		m->progress(m->arg, m->done, m->total);
	return rc;
}

/* Copy s's clusters that c does not hold from sfd into fd, and put them
 * into cmap as holder's (zeroed ranges stay zeroed). */
static int
rm_merge_snapshot_clusters(struct rm_merge *m, int sfd, int fd, uint64_t holder)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < m->smap.n; i++) {
		const struct ic_meta_extent *e = &m->smap.ext[i];
		uint64_t cl = e->start, end = e->start + e->count;

		while (rc == 0 && cl < end) {
			uint64_t next, stop;
			const struct ic_meta_extent *held = extmap_find(&m->cmap, cl, &next);

			if (held) {
				cl = held->start + held->count;
				continue;
			}
			stop = next < end ? next : end;
			/* Sizes only grow along a chain: s->size <= c->size. */
			rc = rm_merge_copy(m, e->holder ? sfd : -1, fd, cl, stop, m->s->size);
			if (e->holder && extmap_set(&m->copied, cl, stop - cl, 1) && rc == 0)
				rc = -ENOMEM;
			if (rc == 0)
				rc = extmap_set(&m->cmap, cl, stop - cl, e->holder ? holder : 0);
			cl = stop;
		}
	}
	return rc;
}

/* A leaf merge that did not commit gives back what it copied into the
 * leaf's file cfd: ranges that c's map does not name, and that no one
 * else writes while c's claim holds (not once it is fenced: another
 * process may write there now). */
static void
rm_merge_unwind(struct rm_merge *m, int cfd)
{
	unsigned shift = m->store->cluster_shift;

	for (size_t i = 0; cfd >= 0 && !owner_fenced(m->claim) && i < m->copied.n; i++) {
		const struct ic_meta_extent *e = &m->copied.ext[i];

		if (fallocate(cfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)(e->start << shift), (off_t)(e->count << shift)) != 0) {
			ic_log(IC_LOG_WARN, "%s: cannot give back what the merge copied (%s); "
					    "isocache-admin check --repair reclaims it",
			       m->c->name, strerror(errno));
			break;
		}
	}
	extmap_free(&m->copied);
}

/* A leaf c (its vdisk claimed by the caller, m->claim) takes s's clusters
 * into its own file and map, fenced as a server's writes are: each write
 * and the commit only while the claim holds. A merge that fails gives
 * them back; a crash before the commit leaves only unreferenced bytes in
 * the leaf. */
static int
rm_merge_leaf(struct rm_merge *m)
{
	IC_AUTOCLOSE int sfd = store_layer_fd(m->store, m->s->id, O_RDONLY);
	IC_AUTOCLOSE int cfd = -1;
	struct ic_meta_txn *txn;
	int rc = sfd < 0 ? sfd : 0;

	if (rc == 0 && (cfd = store_layer_fd(m->store, m->c->id, O_RDWR)) < 0)
		rc = cfd;
	if (rc == 0)
		rc = rm_merge_snapshot_clusters(m, sfd, cfd, m->c->id);
	if (rc == 0 && fsync(cfd) != 0)
		rc = -errno;
	if (rc == 0)
		rc = ic_meta_begin(m->store->meta, true, &txn);
	if (rc) {
		rm_merge_unwind(m, cfd);
		return rc;
	}
	rc = owner_check(txn, m->claim);
	if (rc == 0)
		rc = rm_children_same(txn, m->s, m->c->id);
	if (rc == 0)
		rc = extmap_save(txn, IC_MAP_ALLOC, m->c->id, &m->cmap);
	m->c->parent = m->s->parent;
	if (rc == 0)
		rc = ic_meta_disk_put(txn, m->c);
	if (rc == 0)
		rc = resolve_rename(txn, m->s->id, m->c->id);
	if (rc == 0)
		rc = rm_layer_records(txn, m->s);
	rc = rc ? (ic_meta_abort(txn), rc) : ic_meta_commit(txn);
	if (rc && !ic_meta_commit_unknown(rc))
		rm_merge_unwind(m, cfd);
	return rc;
}

struct rm_reparent {
	uint64_t from;
	struct ic_disk_rec *kids;
	size_t n;
};

static int
rm_reparent_collect(void *arg, const struct ic_disk_rec *rec)
{
	struct rm_reparent *r = arg;
	struct ic_disk_rec *grown;

	if (rec->parent != r->from)
		return 0;
	grown = realloc(r->kids, (r->n + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	r->kids = grown;
	r->kids[r->n++] = *rec;
	return 0;
}

/* In txn, every layer on top of from goes on top of to. */
static int
rm_reparent(struct ic_meta_txn *txn, uint64_t from, uint64_t to)
{
	struct rm_reparent r = { from, NULL, 0 };
	int rc = ic_meta_disk_foreach(txn, rm_reparent_collect, &r);

	for (size_t i = 0; rc == 0 && i < r.n; i++) {
		r.kids[i].parent = to;
		rc = ic_meta_disk_put(txn, &r.kids[i]);
	}
	free(r.kids);
	return rc;
}

/* A frozen c is never rewritten in place: isocached knows a frozen layer
 * by its uuid and inode, and would go on serving blocks it cached from
 * before the merge. The merged layer is a new one, n (new id, file and
 * uuid): c's clusters and s's are copied into n's file, which is frozen;
 * then one transaction puts n in place of both (its map, the layers on
 * top of c, the name, every resolved map), and c's and s's files go only
 * after it commits. A crash or a failed commit leaves the chain as it
 * was, with at most n's file unreferenced. */
static int
rm_merge_frozen(struct rm_merge *m)
{
	struct ic_store *store = m->store;
	struct ic_disk_rec n = *m->c;
	IC_AUTOCLOSE int sfd = store_layer_fd(store, m->s->id, O_RDONLY);
	IC_AUTOCLOSE int cfd = -1;
	IC_AUTOCLOSE int nfd = -1;
	struct ic_meta_txn *txn;
	int rc = sfd < 0 ? sfd : 0;

	n.id = 0;
	n.parent = m->s->parent;
	if (rc == 0 && (cfd = store_layer_fd(store, m->c->id, O_RDONLY)) < 0)
		rc = cfd;
	/* The id in a transaction of its own: the copy must not hold the
	 * store's write lock. An id is never used twice, committed or not. */
	if (rc == 0)
		rc = ic_uuid_generate(n.uuid);
	if (rc == 0 && (rc = ic_meta_begin(store->meta, true, &txn)) == 0) {
		rc = ic_meta_disk_new_id(txn, &n.id);
		rc = rc ? (ic_meta_abort(txn), rc) : ic_meta_commit(txn);
	}
	if (rc == 0)
		rc = store_layer_create(store, n.id, n.size);
	if (rc == 0 && (nfd = store_layer_fd(store, n.id, O_RDWR)) < 0)
		rc = nfd;
	/* c's own clusters first, then s's that c does not hold. */
	for (size_t i = 0; rc == 0 && i < m->cmap.n; i++) {
		struct ic_meta_extent *e = &m->cmap.ext[i];

		if (e->holder)
			rc = rm_merge_copy(m, cfd, nfd, e->start, e->start + e->count, m->c->size);
		e->holder = e->holder ? n.id : 0;
	}
	if (rc == 0)
		rc = rm_merge_snapshot_clusters(m, sfd, nfd, n.id);
	if (rc == 0)
		rc = store_layer_freeze(store, n.id, n.uuid); /* fsyncs it */
	if (rc == 0)
		rc = ic_meta_begin(store->meta, true, &txn);
	if (rc) {
		if (n.id)
			store_layer_unlink(store, n.id);
		return rc;
	}
	rc = rm_children_same(txn, m->s, m->c->id);
	if (rc == 0)
		rc = rm_layer_records(txn, m->c);
	if (rc == 0)
		rc = rm_layer_records(txn, m->s);
	if (rc == 0)
		rc = ic_meta_disk_put(txn, &n);
	if (rc == 0 && n.name[0])
		rc = ic_meta_name_put(txn, n.name, n.id);
	if (rc == 0)
		rc = extmap_save(txn, IC_MAP_ALLOC, n.id, &m->cmap);
	if (rc == 0)
		rc = resolve_build(txn, n.id, n.parent);
	if (rc == 0)
		rc = resolve_rename(txn, m->s->id, n.id);
	if (rc == 0)
		rc = resolve_rename(txn, m->c->id, n.id);
	if (rc == 0)
		rc = rm_reparent(txn, m->c->id, n.id);
	if (rc) {
		ic_meta_abort(txn);
		store_layer_unlink(store, n.id);
		return rc;
	}
	rc = ic_meta_commit(txn);
	if (rc) {
		if (!ic_meta_commit_unknown(rc)) /* else the merged layer may be named */
			store_layer_unlink(store, n.id);
		return rc;
	}
	store_layer_unlink(store, m->c->id);
	*m->c = n;
	return 0;
}

/* Merge snapshot s into its only child c: what c does not hold of s's
 * clusters joins c, which then sits on s's parent; s's file goes after
 * the commit. */
static int
rm_merge(struct ic_store *store, const struct ic_disk_rec *s, struct ic_disk_rec *c,
	 const struct owner_claim *claim, ic_progress_fn progress, void *arg)
{
	IC_AUTOFREE char *buf = malloc(RM_CHUNK);
	struct rm_merge m = { .store = store, .s = s, .c = c, .claim = claim, .buf = buf,
			      .progress = progress, .arg = arg };
	bool frozen = c->flags & IC_DISK_FROZEN;
	struct ic_meta_txn *txn;
	int rc = buf ? ic_meta_begin(store->meta, false, &txn) : -ENOMEM;

	if (rc)
		return rc;
	rc = extmap_load(txn, IC_MAP_ALLOC, s->id, &m.smap);
	if (rc == 0)
		rc = extmap_load(txn, IC_MAP_ALLOC, c->id, &m.cmap);
	ic_meta_abort(txn);
	for (size_t i = 0; i < m.smap.n; i++)
		m.total += m.smap.ext[i].count << store->cluster_shift;
	for (size_t i = 0; frozen && i < m.cmap.n; i++)
		m.total += m.cmap.ext[i].holder ? m.cmap.ext[i].count << store->cluster_shift : 0;
	if (rc == 0)
		rc = frozen ? rm_merge_frozen(&m) : rm_merge_leaf(&m);
	if (rc == 0)
		store_layer_unlink(store, s->id);
	extmap_free(&m.smap);
	extmap_free(&m.cmap);
	extmap_free(&m.copied);
	return rc;
}

/* rm_merge found a layer file of s or c missing. Another rm merged one of
 * them away since rm looked, and removed its file: -EAGAIN, look again.
 * With both records still there, the file is lost: -ENOENT. */
static int
rm_merge_gone(struct ic_store *store, const struct ic_disk_rec *s, const struct ic_disk_rec *c)
{
	struct ic_meta_txn *txn;
	struct ic_disk_rec rec;
	int rc = ic_meta_begin(store->meta, false, &txn);

	if (rc)
		return rc;
	rc = ic_meta_disk_get(txn, s->id, &rec);
	if (rc == 0)
		rc = ic_meta_disk_get(txn, c->id, &rec);
	ic_meta_abort(txn);
	return rc == -ENOENT ? -EAGAIN : rc ? rc : -ENOENT;
}

static int
rm_snapshot(struct ic_store *store, const char *image, ic_progress_fn progress, void *arg)
{
	struct rm_children kids = { 0 };
	struct owner_claim claim;
	struct ic_meta_txn *txn;
	struct ic_disk_rec s;
	bool claimed = false;
	int rc = ic_meta_begin(store->meta, false, &txn);

	if (rc)
		return rc;
	rc = store_image_get(store, txn, image, &s);
	kids.parent = s.id;
	if (rc == 0)
		rc = ic_meta_disk_foreach(txn, rm_child, &kids);
	ic_meta_abort(txn);
	if (rc)
		return rc;
	if (kids.n > 1) {
		ic_log(IC_LOG_ERR, "%s is shared by %u layers (%s); remove or flatten those first",
		       image, kids.n, kids.names);
		return -EBUSY;
	}
	if (kids.n == 1 && !(kids.first.flags & IC_DISK_FROZEN)) {
		rc = owner_claim(&store->owners, kids.first.name, "isocache-admin rm (merge)",
				 &claim);
		if (rc)
			return rc;
		claimed = true;
	}
	if (kids.n == 1) {
		rc = rm_merge(store, &s, &kids.first, claimed ? &claim : NULL, progress, arg);
		if (rc == -ENOENT)
			rc = rm_merge_gone(store, &s, &kids.first);
	} else {
		rc = store_layer_check(store, s.id);
		if (rc == 0)
			rc = ic_meta_begin(store->meta, true, &txn);
		if (rc == 0) {
			rc = rm_children_same(txn, &s, 0);
			if (rc == 0)
				rc = rm_layer_records(txn, &s);
			rc = rc ? (ic_meta_abort(txn), rc) : ic_meta_commit(txn);
		}
		if (rc == 0)
			store_layer_unlink(store, s.id);
	}
	if (claimed)
		rc = owner_release_after(&store->owners, &claim, rc);
	return rc;
}

/* The records of the vdisk name (*rec) go, in one transaction that
 * claim still holds. */
static int
rm_vdisk_txn(struct ic_store *store, const struct owner_claim *claim, const char *name,
	     struct ic_disk_rec *rec)
{
	struct ic_meta_txn *txn;
	int rc = ic_meta_begin(store->meta, true, &txn);

	if (rc)
		return rc;
	rc = owner_check(txn, claim);
	if (rc == 0)
		rc = store_image_get(store, txn, name, rec);
	if (rc == 0)
		rc = store_layer_check(store, rec->id);
	if (rc == 0)
		rc = rm_layer_records(txn, rec);
	return rc ? (ic_meta_abort(txn), rc) : ic_meta_commit(txn);
}

static int
rm_vdisk(struct ic_store *store, const char *name)
{
	struct owner_claim claim;
	struct ic_disk_rec rec;
	unsigned tries = 0;
	int rc = owner_claim(&store->owners, name, "isocache-admin rm", &claim);

	if (rc)
		return rc;
	do
		rc = rm_vdisk_txn(store, &claim, name, &rec);
	while (store_again(rc, &tries, name));
	if (ic_meta_commit_unknown(rc)) {
		/* The records may be gone with the ownership record, or may
		 * stay for the next claimer to take over. */
		owner_drop(&claim);
		return rc;
	}
	if (rc) {
		owner_release(&store->owners, &claim);
		return rc;
	}
	store_layer_unlink(store, rec.id);
	/* The record went with the vdisk; across hosts the release also ends
	 * the lease and, the leaf gone, what says the vdisk is held (a vdisk
	 * made again under the name starts clean). */
	claim.taken_over = false;
	return owner_release(&store->owners, &claim);
}

int
ic_image_remove(struct ic_store *store, const char *image, ic_progress_fn progress, void *arg)
{
	unsigned tries = 0;
	int rc = ic_name_check(image);

	if (rc)
		return rc;
	if (!strchr(image, '@'))
		return rm_vdisk(store, image);
	do
		rc = rm_snapshot(store, image, progress, arg);
	while (store_again(rc, &tries, image));
	return rc;
}

struct flatten_ctx {
	struct ic_vdisk *vd;
	char *buf;
	ic_progress_fn progress;
	void *arg;
};

static int
flatten_extent(void *arg, const struct ic_extent *ext)
{
	struct flatten_ctx *c = arg;
	int rc = 0;

	if (ext->depth <= 0)
		return 0;
	for (uint64_t pos = ext->off; rc == 0 && pos < ext->off + ext->len; pos += RM_CHUNK) {
		uint64_t n = ext->off + ext->len - pos < RM_CHUNK ? ext->off + ext->len - pos : RM_CHUNK;

		rc = ic_vdisk_pread(c->vd, c->buf, n, pos);
		if (rc == 0)
			rc = ic_vdisk_pwrite(c->vd, c->buf, n, pos, 0);
		if (rc == 0 && c->progress)
			c->progress(c->arg, pos + n, c->vd->size);
	}
	return rc;
}

int
ic_image_flatten(struct ic_store *store, const char *name, ic_progress_fn progress, void *arg)
{
	IC_AUTOFREE char *buf = malloc(RM_CHUNK);
	struct ic_vdisk *vd;
	struct ic_meta_txn *txn;
	struct ic_disk_rec rec;
	int rc;

	if (!buf)
		return -ENOMEM;
	if (strchr(name, '@')) {
		ic_log(IC_LOG_ERR, "%s: only a vdisk can be flattened", name);
		return -EINVAL;
	}
	rc = ic_vdisk_open(store, name, 0, NULL, &vd);
	if (rc)
		return rc;
	struct flatten_ctx c = { vd, buf, progress, arg };
	rc = ic_vdisk_extents(vd, 0, vd->size, flatten_extent, &c);
	if (rc == 0)
		rc = ic_vdisk_flush(vd);
	if (rc == 0)
		rc = ic_meta_begin(store->meta, true, &txn);
	if (rc == 0) {
		rc = owner_check(txn, &vd->claim);
		if (rc == 0)
			rc = store_image_get(store, txn, name, &rec);
		rec.parent = 0;
		if (rc == 0)
			rc = ic_meta_disk_put(txn, &rec);
		rc = rc ? (ic_meta_abort(txn), rc) : ic_meta_commit(txn);
	}
	if (rc == 0)
		vd->below = 0;
	int closed = ic_vdisk_close(vd);

	return rc ? rc : closed;
}
