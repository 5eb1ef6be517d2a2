/* Opening and closing a vdisk: the chain of layer records, the layer
 * files, the leaf's allocation map, the ownership claim, and the callbacks
 * through which the control socket (owner/) serves an owned vdisk. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "vdisk/vdisk.h"

static struct ic_vdisk *
vd_alloc(void)
{
	struct ic_vdisk *vd = calloc(1, sizeof(*vd));
	pthread_rwlockattr_t attr;

	if (!vd)
		return NULL;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&vd->io_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_rwlock_init(&vd->map_lock, NULL);
	pthread_mutex_init(&vd->flush_lock, NULL);
	vd->claim.lock_fd = -1;
	for (int i = 0; i < VD_COW_LOCKS; i++)
		pthread_mutex_init(&vd->cow_lock[i], NULL);
	return vd;
}

static void
vd_close_layer(struct ic_vdisk *vd, struct ic_layer *layer)
{
	if (vd->stack)
		ic_stack_close(vd->stack, layer);
	store_layer_close(layer);
}

/* Free vd; 0, or the -errno of an ownership record left behind. */
static int
vd_free(struct ic_vdisk *vd)
{
	int rc = 0;

	/* depth is set by vd_chain before the layers exist: a failure in
	 * between (extmap_load of a damaged map) leaves layers NULL. */
	for (unsigned i = 0; vd->layers && i < vd->depth; i++)
		if (vd->layers[i].fd >= 0)
			vd_close_layer(vd, &vd->layers[i]);
	/* Layers closed: nothing writes under the claim any more. */
	if (owner_held(&vd->claim))
		rc = owner_release(&vd->store->owners, &vd->claim);
	owner_drop(&vd->claim);
	free(vd->layers);
	extmap_free(&vd->leaf);
	extmap_free(&vd->dirty);
	extmap_free(&vd->below_map);
	pthread_rwlock_destroy(&vd->map_lock);
	pthread_rwlock_destroy(&vd->io_lock);
	pthread_mutex_destroy(&vd->flush_lock);
	for (int i = 0; i < VD_COW_LOCKS; i++)
		pthread_mutex_destroy(&vd->cow_lock[i]);
	free(vd);
	return rc;
}

/* Open one layer file and hand it to the stack; fd -1 when that fails. */
static int
vd_open_layer(struct ic_vdisk *vd, const struct ic_disk_rec *rec, bool writable,
	      struct ic_layer *out)
{
	int rc = store_layer_open(vd->store, rec, writable, vd->open_flags & IC_OPEN_DIRECT, out);

	if (rc == 0 && vd->stack) {
		rc = ic_stack_open(vd->stack, out);
		if (rc)
			store_layer_close(out);
	}
	return rc;
}

/* Open the layer files of the chain. */
static int
vd_open_layers(struct ic_vdisk *vd, const struct ic_disk_rec *chain)
{
	vd->layers = calloc(vd->depth, sizeof(*vd->layers));
	if (!vd->layers)
		return -ENOMEM;
	for (unsigned i = 0; i < vd->depth; i++)
		vd->layers[i].fd = vd->layers[i].direct_fd = -1;
	for (unsigned i = 0; i < vd->depth; i++) {
		int rc = vd_open_layer(vd, &chain[i], i == 0 && !vd->readonly, &vd->layers[i]);

		if (rc)
			return rc;
	}
	return 0;
}

struct vd_depth {
	uint64_t id;
	unsigned depth;
};

static int
vd_depth_cmp(const void *a, const void *b)
{
	const struct vd_depth *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* Load RESOLVED(vd->below) into below_map, holders as chain depths + 1. */
static int
vd_load_below(struct ic_vdisk *vd, struct ic_meta_txn *txn)
{
	struct vd_depth *ix = calloc(vd->depth, sizeof(*ix));
	struct extmap map = { 0 };
	int rc = ix ? 0 : -ENOMEM;

	for (unsigned i = 0; rc == 0 && i < vd->depth; i++)
		ix[i] = (struct vd_depth){ vd->layers[i].disk_id, i };
	if (rc == 0 && vd->below) {
		qsort(ix, vd->depth, sizeof(*ix), vd_depth_cmp);
		rc = extmap_load(txn, IC_MAP_RESOLVED, vd->below, &map);
	}
	for (size_t i = 0; rc == 0 && i < map.n; i++) {
		struct vd_depth key = { map.ext[i].holder, 0 }, *hit;

		if (!map.ext[i].holder)
			continue;
		hit = bsearch(&key, ix, vd->depth, sizeof(*ix), vd_depth_cmp);
		if (!hit) {
			ic_log(IC_LOG_ERR, "%s: disk %llu maps to disk %llu, outside its chain (damaged metadata)",
			       vd->image, (unsigned long long)vd->below,
			       (unsigned long long)map.ext[i].holder);
			rc = -EUCLEAN;
			break;
		}
		map.ext[i].holder = hit->depth + 1;
	}
	free(ix);
	if (rc) {
		extmap_free(&map);
		return rc;
	}
	extmap_free(&vd->below_map);
	vd->below_map = map;
	return 0;
}

/* Continue on a new leaf after a live snapshot froze the current one:
 * leaf is the old leaf's record (now frozen), next the new leaf's. Called
 * quiesced. The old leaf goes read-only and frozen (a cache may now share
 * it), the new leaf goes on top with an empty map; the parents stay as
 * they are. */
static int
vd_switch_leaf(struct ic_vdisk *vd, const struct ic_disk_rec *leaf, const struct ic_disk_rec *next)
{
	struct ic_layer *layers = calloc(vd->depth + 1, sizeof(*layers));
	struct ic_meta_txn *txn;
	int rc;

	if (!layers)
		return -ENOMEM;
	layers[0].fd = layers[0].direct_fd = layers[1].fd = layers[1].direct_fd = -1;
	rc = vd_open_layer(vd, next, true, &layers[0]);
	if (rc == 0) {
		rc = vd_open_layer(vd, leaf, false, &layers[1]);
		if (rc)
			vd_close_layer(vd, &layers[0]);
	}
	if (rc) {
		free(layers);
		return rc;
	}
	vd_close_layer(vd, &vd->layers[0]);
	memcpy(&layers[2], &vd->layers[1], (vd->depth - 1) * sizeof(*layers));
	/* The stack keeps the parents' addresses (to close them, and to open
	 * filters added live on them): without this it held freed memory. */
	for (unsigned i = 1; vd->stack && i < vd->depth; i++)
		ic_stack_layer_moved(vd->stack, &vd->layers[i], &layers[i + 1]);
	free(vd->layers);
	vd->layers = layers;
	vd->depth++;
	vd->below = leaf->id;
	pthread_rwlock_wrlock(&vd->map_lock);
	extmap_free(&vd->leaf);
	extmap_free(&vd->dirty);
	pthread_rwlock_unlock(&vd->map_lock);
	rc = ic_meta_begin(vd->store->meta, false, &txn);
	if (rc == 0) {
		rc = vd_load_below(vd, txn);
		ic_meta_abort(txn);
	}
	return rc;
}

/* ---- struct ic_owner_ops: what the control socket does to vd ---- */

static int
vd_owner_quiesce(void *arg, long long deadline_ms)
{
	return vd_quiesce(arg, deadline_ms);
}

static void
vd_owner_resume(void *arg)
{
	vd_resume(arg);
}

static int
vd_owner_flush(void *arg)
{
	return vd_flush(arg);
}

/* A live snapshot: once the metadata moved on to the new leaf, a handle
 * that cannot follow is fenced rather than left writing the frozen one. */
static int
vd_owner_switch_leaf(void *arg, const char *image)
{
	struct ic_vdisk *vd = arg;
	struct ic_disk_rec leaf, next;
	int rc = image_snapshot_commit(vd->store, &vd->claim, image, &leaf, &next);

	if (rc)
		return rc;
	rc = vd_switch_leaf(vd, &leaf, &next);
	if (rc) {
		vd_fence(vd, "it could not go on writing after a live snapshot");
		ic_log(IC_LOG_ERR, "%s: cannot continue on the new leaf: %s", vd->image,
		       strerror(-rc));
		return rc;
	}
	ic_log(IC_LOG_INFO, "%s: live snapshot %s taken; writing to disk %llu now", vd->image,
	       image, (unsigned long long)next.id);
	return 0;
}

static void
vd_owner_usage(void *arg, unsigned *clients, long long *last_write_ms)
{
	struct ic_vdisk *vd = arg;

	*clients = __atomic_load_n(&vd->users, __ATOMIC_RELAXED);
	*last_write_ms = (long long)__atomic_load_n(&vd->last_write_ms, __ATOMIC_RELAXED);
}

static const struct ic_owner_ops vd_owner_ops = {
	.quiesce = vd_owner_quiesce,
	.resume = vd_owner_resume,
	.flush = vd_owner_flush,
	.switch_leaf = vd_owner_switch_leaf,
	.usage = vd_owner_usage,
};

/* Claimed from an owner that never released it (claim->taken_over): a
 * write of that owner's that passed its lease check before the lease ran
 * out (its process paused, its filesystem client holding the data) may
 * still reach the leaf, and would overwrite what we write there. So the
 * leaf is frozen as IMAGE@takeover-TOKEN (immutable where the filesystem
 * keeps the flag: such a late write then fails) and we write to a new one;
 * a late write can reach only the frozen layer. */
static int
vd_leave_leaf(struct ic_store *store, struct owner_claim *claim)
{
	char snap[2 * IC_NAME_MAX + 2];
	struct ic_disk_rec leaf, next;
	int rc;

	snprintf(snap, sizeof(snap), "%s@takeover-%llu", claim->name,
		 (unsigned long long)claim->generation);
	rc = image_snapshot_commit(store, claim, snap, &leaf, &next);
	if (rc)
		ic_log(IC_LOG_ERR, "%s: taken from an owner that never released it, and its leaf "
		       "could not be frozen (%s): not writing to it", claim->name, strerror(-rc));
	else
		ic_log(IC_LOG_WARN, "%s: taken from an owner that never released it: its leaf is "
		       "frozen as %s, and writes go to a new one", claim->name, snap);
	claim->taken_over = rc != 0; /* left: our release may say so (lease.c) */
	return rc;
}

int
ic_vdisk_open(struct ic_store *store, const char *image, unsigned flags, struct ic_stack *stack,
	      struct ic_vdisk **out)
{
	struct ic_meta_txn *txn = NULL;
	struct ic_disk_rec top, *chain = NULL;
	struct ic_vdisk *vd = vd_alloc();
	int rc;

	if (!vd)
		return -ENOMEM;
	vd->store = store;
	vd->stack = stack;
	snprintf(vd->image, sizeof(vd->image), "%s", image);
	vd->snapshot = strchr(image, '@') != NULL;
	vd->readonly = vd->snapshot || (flags & IC_OPEN_RDONLY);
	vd->open_flags = flags;

	if (!vd->readonly) {
		char who[64];

		snprintf(who, sizeof(who), "%s open %s", program_invocation_short_name, image);
		rc = ic_name_check(image);
		if (rc == 0)
			rc = owner_claim(&store->owners, image, who, &vd->claim);
		if (rc == 0 && vd->claim.taken_over)
			rc = vd_leave_leaf(store, &vd->claim);
		if (rc)
			goto fail;
	}
	rc = ic_meta_begin(store->meta, false, &txn);
	if (rc == 0)
		rc = store_image_get(store, txn, image, &top);
	if (rc == 0 && !vd->snapshot && (top.flags & IC_DISK_FROZEN)) {
		ic_log(IC_LOG_ERR, "%s: the leaf of a vdisk is frozen (damaged metadata)", image);
		rc = -EUCLEAN;
	}
	if (rc == 0)
		rc = vd_chain(txn, &top, &chain, &vd->depth);
	if (rc == 0 && !vd->snapshot)
		rc = extmap_load(txn, IC_MAP_ALLOC, top.id, &vd->leaf);
	ic_meta_abort(txn);
	if (rc)
		goto fail;
	vd->size = top.size;
	vd->below = vd->snapshot ? top.id : top.parent;
	rc = vd_open_layers(vd, chain);
	free(chain);
	chain = NULL;
	if (rc == 0)
		rc = ic_meta_begin(store->meta, false, &txn);
	if (rc == 0) {
		rc = vd_load_below(vd, txn);
		ic_meta_abort(txn);
	}
	if (rc)
		goto fail;
	if (!vd->readonly) {
		rc = vd_commit_start(vd);
		if (rc)
			goto fail;
	}
	/* Served on the control socket, and across hosts for release requests
	 * through etcd (owner_serve takes a NULL control). */
	if (owner_held(&vd->claim) && (store->owners.control || vd->claim.lease)) {
		vd->served = (struct owner_served){ .name = vd->image, .claim = &vd->claim,
						    .ops = &vd_owner_ops, .arg = vd };
		owner_serve(store->owners.control, &vd->served);
	}
	*out = vd;
	return 0;
fail:
	free(chain);
	vd_free(vd);
	return rc;
}

int
ic_vdisk_close(struct ic_vdisk *vd)
{
	int rc = 0;

	if (!vd)
		return 0;
	/* Waits for a release or snapshot of vd in progress to finish. */
	owner_unserve(&vd->served);
	vd_commit_stop(vd);
	if (!vd->readonly && !vd_fenced(vd))
		rc = ic_vdisk_flush(vd);
	int freed = vd_free(vd);

	return rc ? rc : freed;
}

uint64_t
ic_vdisk_size(const struct ic_vdisk *vd)
{
	return vd->size;
}

bool
ic_vdisk_readonly(const struct ic_vdisk *vd)
{
	return vd->readonly;
}

void
ic_vdisk_use(struct ic_vdisk *vd, int delta)
{
	__atomic_add_fetch(&vd->users, (unsigned)delta, __ATOMIC_RELAXED);
}

bool
ic_vdisk_fenced(const struct ic_vdisk *vd)
{
	return vd_fenced(vd);
}

const char *
ic_vdisk_fenced_why(const struct ic_vdisk *vd)
{
	return owner_fenced_why(&vd->claim);
}

uint64_t
ic_vdisk_layer_id(struct ic_vdisk *vd, unsigned depth)
{
	uint64_t id;

	pthread_rwlock_rdlock(&vd->io_lock);
	id = depth < vd->depth ? vd->layers[depth].disk_id : 0;
	pthread_rwlock_unlock(&vd->io_lock);
	return id;
}

const struct ic_layer *
ic_vdisk_layer(const struct ic_vdisk *vd, unsigned depth)
{
	return depth < vd->depth ? &vd->layers[depth] : NULL;
}
