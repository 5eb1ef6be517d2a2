/* Image operations: create, snapshot, clone, resize, rollback, info and
 * listing. Each changes the metadata in one write transaction, run again
 * when it loses a race (vdisk/again.c); layer files are created before it
 * commits and removed if it does not. Operations on a vdisk claim its
 * ownership for their duration. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/uuid.h"
#include "vdisk/internal.h"

/* snap's claims when a process claims the vdisk after each look for its
 * owner: the last claims as any claimant (asking that process to release). */
#define IMAGE_SNAP_ATTEMPTS 3

static int
image_check_size(uint64_t size)
{
	if (size == 0 || size % 512 || size > (1ull << 50)) {
		ic_log(IC_LOG_ERR, "size %llu: must be a non-zero multiple of 512 bytes, at most 1 PiB",
		       (unsigned long long)size);
		return -EINVAL;
	}
	return 0;
}

static int
image_name_free(struct ic_store *store, struct ic_meta_txn *txn, const char *image)
{
	uint64_t id;
	int rc = ic_meta_name_get(txn, image, &id);

	if (rc == 0) {
		ic_log(IC_LOG_ERR, "%s: an image of that name exists in %s", image, store->dir);
		return -EEXIST;
	}
	return rc == -ENOENT ? 0 : rc;
}

/* Put a new empty leaf record (and its name) into txn and create its file. */
static int
image_new_leaf(struct ic_store *store, struct ic_meta_txn *txn, const char *name, uint64_t parent,
	       uint64_t size, struct ic_disk_rec *rec)
{
	int rc;

	*rec = (struct ic_disk_rec){ .parent = parent, .size = size,
				     .created = (uint64_t)time(NULL) };
	snprintf(rec->name, sizeof(rec->name), "%s", name);
	rc = ic_uuid_generate(rec->uuid);
	if (rc == 0)
		rc = ic_meta_disk_new_id(txn, &rec->id);
	if (rc == 0)
		rc = ic_meta_disk_put(txn, rec);
	if (rc == 0)
		rc = ic_meta_name_put(txn, name, rec->id);
	if (rc == 0)
		rc = store_layer_create(store, rec->id, size);
	return rc;
}

/* Commit txn if rc is 0, else abort it; when that fails, remove the new
 * layer file (if any) again, unless the commit may be applied. */
static int
image_finish(struct ic_store *store, struct ic_meta_txn *txn, int rc, uint64_t new_file)
{
	bool committed = rc == 0;

	if (rc == 0)
		rc = ic_meta_commit(txn);
	else
		ic_meta_abort(txn);
	if (rc && new_file && !(committed && ic_meta_commit_unknown(rc)))
		store_layer_unlink(store, new_file);
	return rc;
}

/* A new vdisk name in one transaction: a clone of the snapshot from, or
 * (from NULL) an empty one of size bytes. */
static int
image_create_txn(struct ic_store *store, const char *name, const char *from, uint64_t size)
{
	struct ic_meta_txn *txn;
	struct ic_disk_rec snap = { .size = size }, rec = { 0 };
	int rc = ic_meta_begin(store->meta, true, &txn);

	if (rc)
		return rc;
	if (from)
		rc = store_image_get(store, txn, from, &snap);
	if (rc == 0)
		rc = image_name_free(store, txn, name);
	if (rc == 0)
		rc = image_new_leaf(store, txn, name, snap.id, snap.size, &rec);
	return image_finish(store, txn, rc, rec.id);
}

int
ic_image_create(struct ic_store *store, const char *name, uint64_t size)
{
	char base[IC_NAME_MAX + 1];
	unsigned tries = 0;
	int rc = store_split_name(name, false, base);

	if (rc == 0)
		rc = image_check_size(size);
	if (rc)
		return rc;
	do
		rc = image_create_txn(store, name, NULL, size);
	while (store_again(rc, &tries, name));
	return rc;
}

/* Freeze rec (a leaf) under the name snap: its flattened map, the frozen
 * flag, the new name, and the marks on its file. */
static int
image_freeze(struct ic_store *store, struct ic_meta_txn *txn, struct ic_disk_rec *rec,
	     const char *snap)
{
	int rc = resolve_build(txn, rec->id, rec->parent);

	rec->flags |= IC_DISK_FROZEN;
	snprintf(rec->name, sizeof(rec->name), "%s", snap);
	if (rc == 0)
		rc = ic_meta_disk_put(txn, rec);
	if (rc == 0)
		rc = ic_meta_name_put(txn, snap, rec->id);
	if (rc == 0)
		rc = store_layer_freeze(store, rec->id, rec->uuid);
	return rc;
}

static int
image_snapshot_txn(struct ic_store *store, const struct owner_claim *claim, const char *image,
		   struct ic_disk_rec *leaf, struct ic_disk_rec *next)
{
	struct ic_meta_txn *txn;
	int rc;

	*next = (struct ic_disk_rec){ 0 };
	leaf->flags = 0;
	rc = ic_meta_begin(store->meta, true, &txn);
	if (rc)
		return rc;
	rc = owner_check(txn, claim);
	if (rc == 0)
		rc = store_image_get(store, txn, claim->name, leaf);
	if (rc == 0)
		rc = image_name_free(store, txn, image);
	if (rc == 0)
		rc = image_freeze(store, txn, leaf, image);
	if (rc == 0)
		rc = image_new_leaf(store, txn, claim->name, leaf->id, leaf->size, next);
	rc = image_finish(store, txn, rc, next->id);
	if (rc && (leaf->flags & IC_DISK_FROZEN))
		store_layer_thaw(store, leaf->id);
	return rc;
}

int
image_snapshot_commit(struct ic_store *store, const struct owner_claim *claim, const char *image,
		      struct ic_disk_rec *leaf, struct ic_disk_rec *next)
{
	unsigned tries = 0;
	/* A live snapshot's name comes from a request (the control socket,
	 * etcd), not only from our own tools. */
	int rc = ic_name_check(image);

	if (rc == 0) {
		do
			rc = image_snapshot_txn(store, claim, image, leaf, next);
		while (store_again(rc, &tries, image));
	}
	return rc;
}

/* A vdisk that a live process serves is snapshotted by that process, so
 * its clients go on undisturbed (a live snapshot); otherwise here. */
int
ic_image_snapshot(struct ic_store *store, const char *name_at_snap)
{
	char name[IC_NAME_MAX + 1];
	struct owner_claim claim;
	struct ic_disk_rec leaf, next;
	bool claimed = false;
	int rc = store_split_name(name_at_snap, true, name);

	/* Ask the owner, if there is one, else claim it and snapshot here. A
	 * server that claimed it after we found no owner is asked for the
	 * snapshot in turn, not to release it; the last attempt claims as any
	 * claimant does, and a refusal names the owner. */
	if (rc == 0)
		rc = owner_remote_snapshot(&store->owners, name, name_at_snap);
	for (int attempt = 1; rc > 0; attempt++) {
		rc = attempt < IMAGE_SNAP_ATTEMPTS
			     ? owner_claim_free(&store->owners, name, "isocache-admin snap", &claim)
			     : owner_claim(&store->owners, name, "isocache-admin snap", &claim);
		claimed = rc == 0;
		if (rc == -EBUSY && attempt < IMAGE_SNAP_ATTEMPTS) {
			ic_log(IC_LOG_INFO, "%s: claimed by another process meanwhile; asking it",
			       name);
			rc = owner_remote_snapshot(&store->owners, name, name_at_snap);
		}
	}
	if (!claimed)
		return rc; /* taken by the owner (0), or why not */
	rc = image_snapshot_commit(store, &claim, name_at_snap, &leaf, &next);
	if (rc == 0) /* the leaf a previous owner may still write is frozen */
		claim.taken_over = false;
	return owner_release_after(&store->owners, &claim, rc);
}

int
ic_image_clone(struct ic_store *store, const char *name_at_snap, const char *newname)
{
	char base[IC_NAME_MAX + 1];
	unsigned tries = 0;
	int rc = store_split_name(name_at_snap, true, base);

	if (rc == 0)
		rc = store_split_name(newname, false, base);
	if (rc)
		return rc;
	do
		rc = image_create_txn(store, newname, name_at_snap, 0);
	while (store_again(rc, &tries, newname));
	return rc;
}

static int
image_resize_txn(struct ic_store *store, const struct owner_claim *claim, const char *name,
		 uint64_t size)
{
	struct ic_meta_txn *txn;
	struct ic_disk_rec rec;
	int rc = ic_meta_begin(store->meta, true, &txn);

	if (rc)
		return rc;
	rc = owner_check(txn, claim);
	if (rc == 0)
		rc = store_image_get(store, txn, name, &rec);
	if (rc == 0 && size < rec.size) {
		ic_log(IC_LOG_ERR, "%s: cannot shrink from %llu to %llu bytes (grow only)", name,
		       (unsigned long long)rec.size, (unsigned long long)size);
		rc = -EINVAL;
	}
	if (rc == 0)
		rc = store_layer_resize(store, rec.id, size);
	rec.size = size;
	if (rc == 0)
		rc = ic_meta_disk_put(txn, &rec);
	return image_finish(store, txn, rc, 0);
}

int
ic_image_resize(struct ic_store *store, const char *name, uint64_t size)
{
	char base[IC_NAME_MAX + 1];
	struct owner_claim claim;
	unsigned tries = 0;
	int rc = store_split_name(name, false, base);

	if (rc == 0)
		rc = image_check_size(size);
	if (rc == 0)
		rc = owner_claim(&store->owners, name, "isocache-admin resize", &claim);
	if (rc)
		return rc;
	do
		rc = image_resize_txn(store, &claim, name, size);
	while (store_again(rc, &tries, name));
	return owner_release_after(&store->owners, &claim, rc);
}

/* Rollback starts NAME again on a new empty leaf above NAME@SNAP: one
 * transaction names the new leaf and drops the old one's records, and the
 * old leaf's file is removed only after it commits. A crash or a failed
 * commit before that point leaves the vdisk as it was (and at most an
 * empty file that no record names); after it, at most the old file. The
 * old leaf is never emptied in place, so no order of failures loses data
 * that the metadata still names. */
static int
image_rollback_txn(struct ic_store *store, const struct owner_claim *claim, const char *name,
		   const char *name_at_snap, struct ic_disk_rec *leaf)
{
	struct ic_meta_txn *txn;
	struct ic_disk_rec snap, next = { 0 };
	int rc = ic_meta_begin(store->meta, true, &txn);

	if (rc)
		return rc;
	rc = owner_check(txn, claim);
	if (rc == 0)
		rc = store_image_get(store, txn, name_at_snap, &snap);
	if (rc == 0)
		rc = store_image_get(store, txn, name, leaf);
	if (rc == 0)
		rc = ic_meta_extent_clear(txn, IC_MAP_ALLOC, leaf->id);
	if (rc == 0)
		rc = ic_meta_disk_del(txn, leaf->id);
	if (rc == 0)
		rc = image_new_leaf(store, txn, name, snap.id, snap.size, &next);
	return image_finish(store, txn, rc, next.id);
}

int
ic_image_rollback(struct ic_store *store, const char *name_at_snap)
{
	char name[IC_NAME_MAX + 1];
	struct owner_claim claim;
	struct ic_disk_rec leaf;
	unsigned tries = 0;
	int rc = store_split_name(name_at_snap, true, name);

	if (rc == 0)
		rc = owner_claim(&store->owners, name, "isocache-admin snap rollback", &claim);
	if (rc)
		return rc;
	do
		rc = image_rollback_txn(store, &claim, name, name_at_snap, &leaf);
	while (store_again(rc, &tries, name));
	if (rc == 0) {
		store_layer_unlink(store, leaf.id);
		claim.taken_over = false; /* the leaf a previous owner may still write is gone */
	}
	return owner_release_after(&store->owners, &claim, rc);
}

/* ---- info ---- */

struct image_alloc_ctx {
	uint64_t id, clusters;
};

static int
image_count_alloc(void *arg, const struct ic_meta_extent *ext)
{
	struct image_alloc_ctx *c = arg;

	if (ext->holder == c->id)
		c->clusters += ext->count;
	return 0;
}

static int
image_layer_info(struct ic_store *store, struct ic_meta_txn *txn, const struct ic_disk_rec *rec,
		 struct ic_layer_info *out)
{
	struct image_alloc_ctx c = { rec->id, 0 };
	int rc = ic_meta_extent_foreach(txn, IC_MAP_ALLOC, rec->id, image_count_alloc, &c);
	uint64_t bytes = c.clusters << store->cluster_shift;

	*out = (struct ic_layer_info){ .disk_id = rec->id, .parent = rec->parent,
				       .size = rec->size, .created = rec->created,
				       .frozen = rec->flags & IC_DISK_FROZEN,
				       .allocated = bytes < rec->size ? bytes : rec->size };
	memcpy(out->uuid, rec->uuid, 16);
	snprintf(out->name, sizeof(out->name), "%s", rec->name);
	return rc;
}

/* The chain is collected first, with its checks, so that damaged metadata
 * (a cycle of parents) fails there at the cost of record lookups, before
 * any layer's allocation map is walked. */
int
ic_image_info(struct ic_store *store, const char *image, struct ic_image_info *out)
{
	struct ic_disk_rec rec, *chain = NULL;
	struct ic_meta_txn *txn;
	int rc = ic_meta_begin(store->meta, false, &txn);

	*out = (struct ic_image_info){ .cluster_size = store->cluster_size,
				       .snapshot = strchr(image, '@') != NULL };
	snprintf(out->name, sizeof(out->name), "%s", image);
	if (rc)
		return rc;
	rc = store_image_get(store, txn, image, &rec);
	if (rc == 0) {
		out->size = rec.size;
		rc = vd_chain(txn, &rec, &chain, &out->depth);
	}
	if (rc == 0 && !(out->chain = calloc(out->depth, sizeof(*out->chain))))
		rc = -ENOMEM;
	for (unsigned i = 0; rc == 0 && i < out->depth; i++)
		rc = image_layer_info(store, txn, &chain[i], &out->chain[i]);
	free(chain);
	ic_meta_abort(txn);
	if (rc) {
		free(out->chain);
		out->chain = NULL;
		out->depth = 0;
	}
	return rc;
}

struct image_list_ctx {
	struct ic_store *store;
	struct ic_meta_txn *txn;
	struct ic_layer_info *v;
	size_t n;
};

static int
image_list_one(void *arg, const struct ic_disk_rec *rec)
{
	struct image_list_ctx *c = arg;
	struct ic_layer_info *grown = realloc(c->v, (c->n + 1) * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	c->v = grown;
	return image_layer_info(c->store, c->txn, rec, &c->v[c->n++]);
}

int
ic_store_layers(struct ic_store *store, struct ic_layer_info **out, size_t *count)
{
	struct image_list_ctx c = { store, NULL, NULL, 0 };
	int rc = ic_meta_begin(store->meta, false, &c.txn);

	if (rc)
		return rc;
	rc = ic_meta_disk_foreach(c.txn, image_list_one, &c);
	ic_meta_abort(c.txn);
	if (rc) {
		free(c.v);
		return rc;
	}
	*out = c.v;
	*count = c.n;
	return 0;
}
