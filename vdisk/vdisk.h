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
	struct extmap below_map;   /* that map, frozen so never changing, kept
				    * in memory with holders turned into chain
				    * depths + 1 (0 = zero): a read needs no
				    * metadata transaction and no layer search */

	/* The leaf's allocation map, authoritative in memory; dirty holds the
	 * cluster ranges changed since the last commit (holder 1). */
	pthread_rwlock_t map_lock;
	struct extmap leaf;
	struct extmap dirty;
	pthread_mutex_t cow_lock[VD_COW_LOCKS];
	pthread_mutex_t flush_lock;
	uint64_t writes;	   /* write requests done (atomic), failed ones too */
	uint64_t synced;	   /* under flush_lock: writes a flush made durable */
	struct owner_claim claim;  /* held (owner_held) when writable and still
				    * ours; fenced: released or taken over, all
				    * I/O -ESTALE (the commit thread fences it
				    * under io_lock shared) */

	/* Every public I/O call holds io_lock shared; a release or a live
	 * snapshot takes it exclusively, which stops admitting requests and
	 * waits for the ones in flight (writer-preferring, so a stream of
	 * requests cannot starve it). Calls made with it held use vd_flush. */
	pthread_rwlock_t io_lock;
	unsigned open_flags;       /* IC_OPEN_* */
	uint64_t last_write_ms;    /* CLOCK_MONOTONIC of the last write request */
	unsigned users;            /* clients using it (ic_vdisk_use), atomic */
	struct owner_served served; /* on the control socket (open.c) */

	/* The background commit (commit.c) of a writable vdisk. */
	pthread_t commit_thread;
	pthread_mutex_t commit_mu;
	pthread_cond_t commit_cv;
	bool commit_running, commit_stop;
};

static inline bool
vd_fenced(const struct ic_vdisk *vd)
{
	return owner_fenced(&vd->claim);
}

static inline void
vd_fence(struct ic_vdisk *vd, const char *why)
{
	owner_fence(&vd->claim, why);
}

/* A commit found the claim no longer ours: its lease's validity ran out
 * (the keeper may not have said so yet), or its record changed. */
static inline void
vd_fence_deposed(struct ic_vdisk *vd)
{
	const char *why = owner_fenced_why(&vd->claim);

	vd_fence(vd, why ? why : "taken over by another process (its ownership record changed)");
}

/* Start and stop the thread that commits a writable vdisk's map every few
 * hundred milliseconds (commit.c). */
int vd_commit_start(struct ic_vdisk *vd);
void vd_commit_stop(struct ic_vdisk *vd);

/* Flush with io_lock held (either way). */
int vd_flush(struct ic_vdisk *vd);
/* Take io_lock exclusively, waiting at most until deadline_ms (a
 * ic_now_ms time). -ETIMEDOUT when in-flight I/O did not drain in time. */
int vd_quiesce(struct ic_vdisk *vd, long long deadline_ms);
void vd_resume(struct ic_vdisk *vd);
/* A run of clusters [.., end) that reads from one place. */
struct vd_run {
	uint64_t end;          /* first cluster after the run */
	const struct ic_layer *layer; /* where the data is, or NULL */
	int depth;             /* index of layer in the chain, -1 when NULL */
	bool zero;             /* a zero extent (NULL layer) rather than never written */
};

/* Resolve the run starting at cluster (at most up to limit). */
void vd_resolve(struct ic_vdisk *vd, uint64_t cluster, uint64_t limit, struct vd_run *run);

#endif
