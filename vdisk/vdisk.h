/* Private to vdisk/: an open vdisk. */
#ifndef IC_VDISK_VDISK_H
#define IC_VDISK_VDISK_H

#include "vdisk/internal.h"

#define VD_COW_LOCKS 64 /* stripes of per-cluster copy-on-write locks */

struct ic_vdisk {
	struct ic_store *store;
	struct ic_stack *stack;    /* NULL: the plain layer backend */
	char image[2 * IC_NAME_MAX + 2];
	uint64_t size;
	bool readonly;
	bool snapshot;             /* top is a frozen layer: no leaf map */
	unsigned depth;
	struct ic_layer *layers;   /* [0] = top (leaf or snapshot), then parents */
	uint64_t below;            /* layer whose RESOLVED map serves what the
				    * leaf map lacks (the snapshot itself when
				    * snapshot), 0 if none */

	/* The leaf's allocation map, authoritative in memory; dirty holds the
	 * cluster ranges changed since the last commit (holder 1). */
	pthread_rwlock_t map_lock;
	struct extmap leaf;
	struct extmap dirty;
	pthread_mutex_t cow_lock[VD_COW_LOCKS];
	pthread_mutex_t flush_lock;
	struct owner_claim claim;
	bool owned;
	bool fenced;
};

/* A run of clusters [.., end) that reads from one place. */
struct vd_run {
	uint64_t end;          /* first cluster after the run */
	const struct ic_layer *layer; /* where the data is, or NULL */
	int depth;             /* index of layer in the chain, -1 when NULL */
	bool zero;             /* a zero extent (NULL layer) rather than never written */
};

/* Resolve the run starting at cluster (at most up to limit). *txn is a
 * read transaction begun on first need; the caller ends it. */
int vd_resolve(struct ic_vdisk *vd, struct ic_meta_txn **txn, uint64_t cluster, uint64_t limit,
	       struct vd_run *run);

#endif
