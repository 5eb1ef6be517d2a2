/* Removing images: a vdisk goes with its leaf; a snapshot with no layer on
 * top goes; a snapshot with exactly one layer on top is merged into it
 * (like qemu-img commit, the other way round); a shared one is refused.
 * Also flatten, which copies a vdisk's whole chain into its leaf. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
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

/* Copy [off, off+len) from one file to another with plain syscalls. */
static int
rm_copy(int from, int to, uint64_t off, uint64_t len, char *buf)
{
	while (len) {
		size_t n = len < RM_CHUNK ? len : RM_CHUNK;
		ssize_t r = pread(from, buf, n, (off_t)off);

		if (r <= 0 || pwrite(to, buf, (size_t)r, (off_t)off) != r)
			return r == 0 ? -EIO : -errno;
		off += (uint64_t)r;
		len -= (uint64_t)r;
	}
	return 0;
}

/* Merge snapshot s into its only child c: what c does not hold of s's
 * clusters is copied into c's file and map; c then sits on s's parent. */
static int
rm_merge(struct ic_store *store, const struct ic_disk_rec *s, struct ic_disk_rec *c,
	 ic_progress_fn progress, void *arg)
{
	struct extmap smap = { 0 }, cmap = { 0 };
	struct ic_meta_txn *txn = NULL;
	IC_AUTOCLOSE int sfd = -1;
	IC_AUTOCLOSE int cfd = -1;
	IC_AUTOFREE char *buf = malloc(RM_CHUNK);
	bool frozen = c->flags & IC_DISK_FROZEN;
	unsigned shift = store->cluster_shift;
	uint64_t total = 0, done = 0;
	int rc = buf ? ic_meta_begin(store->meta, false, &txn) : -ENOMEM;

	if (rc == 0)
		rc = extmap_load(txn, IC_MAP_ALLOC, s->id, &smap);
	if (rc == 0)
		rc = extmap_load(txn, IC_MAP_ALLOC, c->id, &cmap);
	ic_meta_abort(txn);
	txn = NULL;
	if (rc == 0 && frozen)
		rc = store_layer_thaw(store, c->id);
	if (rc == 0 && (sfd = store_layer_fd(store, s->id, O_RDONLY)) < 0)
		rc = sfd;
	if (rc == 0 && (cfd = store_layer_fd(store, c->id, O_RDWR)) < 0)
		rc = cfd;
	for (size_t i = 0; i < smap.n; i++)
		total += smap.ext[i].count << shift;

	/* Walk s's extents cluster run by cluster run, skipping what c holds. */
	for (size_t i = 0; rc == 0 && i < smap.n; i++) {
		const struct ic_meta_extent *e = &smap.ext[i];
		uint64_t cl = e->start, end = e->start + e->count;

		while (rc == 0 && cl < end) {
			uint64_t next, stop;
			const struct ic_meta_extent *held = extmap_find(&cmap, cl, &next);

			if (held) {
				cl = held->start + held->count;
				continue;
			}
			stop = next < end ? next : end;
			if (e->holder) {
				/* Sizes only grow along a chain: s->size <= c->size. */
				uint64_t off = cl << shift;
				uint64_t lim = (stop << shift) < s->size ? stop << shift : s->size;

				rc = rm_copy(sfd, cfd, off, lim > off ? lim - off : 0, buf);
			}
			if (rc == 0)
				rc = extmap_set(&cmap, cl, stop - cl, e->holder ? c->id : 0);
			done += (stop - cl) << shift;
			if (progress)
				progress(arg, done, total);
			cl = stop;
		}
	}
	if (rc == 0 && fsync(cfd) != 0)
		rc = -errno;
	if (rc == 0)
		rc = ic_meta_begin(store->meta, true, &txn);
	if (rc == 0)
		rc = ic_meta_extent_clear(txn, IC_MAP_ALLOC, c->id);
	for (size_t i = 0; rc == 0 && i < cmap.n; i++)
		rc = ic_meta_extent_replace(txn, IC_MAP_ALLOC, c->id, cmap.ext[i].start,
					    cmap.ext[i].count, &cmap.ext[i], 1);
	c->parent = s->parent;
	if (rc == 0)
		rc = ic_meta_disk_put(txn, c);
	if (rc == 0)
		rc = resolve_rename(txn, s->id, c->id);
	if (rc == 0)
		rc = rm_layer_records(txn, s);
	if (rc == 0)
		rc = ic_meta_commit(txn);
	else
		ic_meta_abort(txn);
	if (frozen)
		rc = store_layer_freeze(store, c->id, c->uuid) ?: rc;
	if (rc == 0)
		store_layer_unlink(store, s->id);
	extmap_free(&smap);
	extmap_free(&cmap);
	return rc;
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
		rc = owner_claim(store, kids.first.name, "isocache-admin rm (merge)", &claim);
		if (rc)
			return rc;
		claimed = true;
	}
	if (kids.n == 1) {
		rc = rm_merge(store, &s, &kids.first, progress, arg);
	} else {
		rc = store_layer_check(store, s.id);
		if (rc == 0)
			rc = ic_meta_begin(store->meta, true, &txn);
		if (rc == 0) {
			rc = rm_layer_records(txn, &s);
			rc = rc ? (ic_meta_abort(txn), rc) : ic_meta_commit(txn);
		}
		if (rc == 0)
			store_layer_unlink(store, s.id);
	}
	if (claimed)
		owner_release(store, &claim);
	return rc;
}

static int
rm_vdisk(struct ic_store *store, const char *name)
{
	struct owner_claim claim;
	struct ic_meta_txn *txn;
	struct ic_disk_rec rec;
	int rc = owner_claim(store, name, "isocache-admin rm", &claim);

	if (rc)
		return rc;
	rc = ic_meta_begin(store->meta, true, &txn);
	if (rc) {
		owner_release(store, &claim);
		return rc;
	}
	rc = store_image_get(store, txn, name, &rec);
	if (rc == 0)
		rc = store_layer_check(store, rec.id);
	if (rc == 0)
		rc = rm_layer_records(txn, &rec);
	if (rc) {
		ic_meta_abort(txn);
		owner_release(store, &claim);
		return rc;
	}
	rc = ic_meta_commit(txn);
	if (rc == 0)
		store_layer_unlink(store, rec.id);
	return rc;
}

int
ic_image_remove(struct ic_store *store, const char *image, ic_progress_fn progress, void *arg)
{
	int rc = ic_name_check(image);

	if (rc)
		return rc;
	return strchr(image, '@') ? rm_snapshot(store, image, progress, arg) : rm_vdisk(store, image);
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
	ic_vdisk_close(vd);
	return rc;
}
