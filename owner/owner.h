/* Ownership of vdisks, as vdisk/ uses it (docs/OWNERSHIP.md,
 * docs/ARCHITECTURE.md §3 and §6). The only header of owner/ that vdisk/
 * includes; owner/ includes nothing of vdisk/ and reaches an open vdisk
 * only through the struct ic_owner_ops it registers (owner_serve).
 *
 * An owner holds an OFD lock on its vdisk's byte of STORE/owners.lock for
 * as long as it owns it; the record in the metadata file (generation,
 * owner id, pid, who, control socket) is changed by compare-and-swap on
 * the generation. A store whose ownership is kept in etcd (docs/MULTI-HOST.md
 * §4) proves it by a lease instead: the claim then holds a struct
 * owner_lease (lease.c) and no kernel lock. Functions return 0 or a
 * negative errno after logging what was wrong.
 */
#ifndef IC_OWNER_OWNER_H
#define IC_OWNER_OWNER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "isocache/control.h"
#include "isocache/meta.h"

/* The ownership side of a store handle (vdisk/'s struct ic_store holds
 * one): where the lock file and the records are, and how this handle
 * treats a live owner. */
struct owner_store {
	const char *dir;            /* the store directory (owners.lock is in it) */
	struct ic_meta *meta;
	struct ic_control *control; /* this process's control socket, or NULL */
	unsigned handoff_ms;        /* RELEASE deadline; 0 = the default */
	enum ic_takeover takeover;  /* what a writer does about a live owner */
};

struct owner_lease; /* lease.c: a claim across hosts */

/* A vdisk this process owns (or owned). */
struct owner_claim {
	char name[IC_NAME_MAX + 1];
	uint8_t owner_id[16];
	uint64_t generation;
	char who[64]; /* as in the record */
	int lock_fd;  /* holds the vdisk's byte of owners.lock; -1 when not */
	/* Released, taken over or its lease lost: nothing may be written
	 * under it; read on every request (owner_fenced). Why, for messages
	 * ("released to another process"); NULL while not fenced. */
	const char *fenced;
	struct owner_lease *lease; /* ownership in etcd: the lease and its
				    * fencing token; NULL for a local claim */
	/* Claimed through etcd from an owner that never released it (its
	 * lease ran out): writes it had under way may still reach the leaf,
	 * so the vdisk goes on in a new one (vdisk/open.c). */
	bool taken_over;
};

/* Is the claim's lease still valid (renewed recently enough that etcd
 * cannot have expired it)? Any thread; cheap. */
bool owner_lease_valid(struct owner_lease *lease);

/* Why the claim is fenced (released, taken over, or across hosts its lease
 * no longer valid), in words that follow its name ("vm: ..."), or NULL
 * while it is not. Any thread; cheap. */
static inline const char *
owner_fenced_why(const struct owner_claim *claim)
{
	const char *why = __atomic_load_n(&claim->fenced, __ATOMIC_ACQUIRE);
	struct owner_lease *lease = claim->lease; /* set before serving, freed after
						   * (owner_drop) */

	if (why)
		return why;
	if (lease && !owner_lease_valid(lease))
		return "its etcd lease ran out before it could be renewed";
	return NULL;
}

/* Nothing may be written under the claim. Read immediately before every
 * write is submitted. */
static inline bool
owner_fenced(const struct owner_claim *claim)
{
	return owner_fenced_why(claim) != NULL;
}

/* Is the claim held: its kernel lock (the vdisk is ours, or was until a
 * fence that has not dropped it yet), or across hosts its lease, not yet
 * fenced? */
static inline bool
owner_held(const struct owner_claim *claim)
{
	return claim->lock_fd >= 0 || (claim->lease && !owner_fenced(claim));
}

/* From now on every write under claim fails with -ESTALE. Set before the
 * lock is dropped, so nothing of ours writes once another can claim. why
 * (a static string) is kept for messages; the first fence's stays. */
static inline void
owner_fence(struct owner_claim *claim, const char *why)
{
	const char *none = NULL;

	__atomic_compare_exchange_n(&claim->fenced, &none, why, false, __ATOMIC_RELEASE,
				    __ATOMIC_RELAXED);
}

/* Acquire vdisk name for this process (who: "isocache-admin resize"): claim
 * it when nobody owns it or its owner is dead (its kernel lock is free);
 * else, as os->takeover says, ask the live owner to release it within
 * os->handoff_ms, refuse, or take it by force. -EBUSY, after logging a
 * message naming the owner, when it is not ours. On success out->lock_fd
 * holds the lock: owner_release gives both up. */
int owner_claim(struct owner_store *os, const char *name, const char *who,
		struct owner_claim *out);
/* owner_claim of a vdisk nobody owns: -EBUSY, logging nothing, when a
 * live process owns it (snap asks that owner instead). */
int owner_claim_free(struct owner_store *os, const char *name, const char *who,
		     struct owner_claim *out);
/* destroy's seal on a store whose ownership is in etcd, where no
 * transaction locks other processes out: from owner_seal on, every claim
 * fails (-ESHUTDOWN, naming who), until owner_unseal or the store's records
 * are erased. owner_seal: 1 sealed, 0 ownership is not in etcd (a local
 * store's write transaction does this), or -errno (logged). */
int owner_seal(struct owner_store *os, const char *who);
int owner_unseal(struct owner_store *os);
/* Check inside a write transaction that the claim still holds (-ESTALE). */
int owner_check(struct ic_meta_txn *txn, const struct owner_claim *claim);
/* Give the vdisk up: clear the record (only if the claim still holds),
 * then drop the lock. Call with no write of the claim in flight. The lock
 * is dropped either way; 0, or the -errno of a record that could not be
 * cleared (logged: it names this process, and the next claim finds it
 * gone and takes over), so that the operation does not report success
 * over a failed metadata commit. A claim taken over (-ESTALE) is 0. */
int owner_release(struct owner_store *os, struct owner_claim *claim);
/* rc, or when it is 0 the result of owner_release(os, claim): for callers
 * whose work is done and whose release must not fail silently. */
int owner_release_after(struct owner_store *os, struct owner_claim *claim, int rc);
/* Drop the claim's kernel lock, if held, and free its lease (ended by
 * owner_release or a release across hosts, else left to expire). Only
 * once nothing can write under the claim any more (fenced, or closed), and
 * no other thread looks at it: the lock is what keeps another process from
 * claiming. While other threads may still look (a handle released on the
 * control thread), owner_let_go instead, and owner_drop at close. */
void owner_drop(struct owner_claim *claim);
/* Drop the claim's kernel lock, if held, and stop renewing its lease,
 * which stays allocated (request threads may still ask owner_fenced, true
 * from now on) until owner_drop. Fence the claim first. */
void owner_let_go(struct owner_claim *claim);
/* Ask the live owner of name, if it has a control socket, to snapshot it
 * as image (NAME@SNAP). Returns 1 when there is no such owner (snapshot
 * locally), else 0 or the owner's -errno. */
int owner_remote_snapshot(struct owner_store *os, const char *name, const char *image);

/* ---- Serving an owned vdisk on the control socket ---- */

/* What the control socket needs of a vdisk it serves; all Required. Each
 * gets the arg given to owner_serve. Called on the control thread or,
 * across hosts, on the thread that watches etcd for requests (remote.c):
 * quiesce, flush, switch_leaf and resume never by both at once
 * (owner_served.busy); usage by either at any time. */
struct ic_owner_ops {
	/* Stop admitting I/O and wait for the requests in flight, at most until
	 * deadline_ms (ic_now_ms). 0, or -ETIMEDOUT with nothing changed. */
	int (*quiesce)(void *arg, long long deadline_ms);
	/* Admit I/O again after quiesce. */
	void (*resume)(void *arg);
	/* Quiesced: data synced, then the map committed under the claim. */
	int (*flush)(void *arg);
	/* Quiesced and flushed: freeze the leaf as image (NAME@SNAP) under the
	 * claim and continue writing on a new leaf (a live snapshot). */
	int (*switch_leaf)(void *arg, const char *image);
	/* For the release policy and STATS: clients using the vdisk, and the
	 * ic_now_ms of its last write (0: never written). */
	void (*usage)(void *arg, unsigned *clients, long long *last_write_ms);
};

struct owner_watch;

/* An owned vdisk on a control's list; embedded in what it serves. */
struct owner_served {
	const char *name;
	struct owner_claim *claim; /* released or fenced by the control thread,
				    * or by the etcd watcher's */
	const struct ic_owner_ops *ops;
	void *arg;
	struct ic_control *ctl;    /* serving it, or NULL */
	struct owner_watch *watch; /* remote.c: release requests through etcd */
	atomic_bool busy;          /* a release or snapshot is under way (snapshot.c) */
	struct owner_served *next;
};

/* Answer RELEASE and SNAPSHOT for s->name on ctl (may be NULL) from now
 * on; across hosts (s->claim->lease), also release requests that come
 * through etcd (remote.c). */
void owner_serve(struct ic_control *ctl, struct owner_served *s);
/* Stop; waits for a release or snapshot of it in progress. No effect when
 * s is not served. */
void owner_unserve(struct owner_served *s);

/* ---- The public ownership API (isocache/control.h) on os ---- */
int owner_control_start(struct owner_store *os, const struct ic_control_config *cfg,
			struct ic_control **out);
int owner_show(struct owner_store *os, const char *name, struct ic_owner_info *out);
int owner_list(struct owner_store *os,
	       int (*fn)(void *arg, const char *name, const struct ic_owner_info *info),
	       void *arg);
int owner_release_request(struct owner_store *os, const char *name, unsigned timeout_ms,
			  char *said, size_t cap);
int owner_takeover(struct owner_store *os, const char *name, unsigned timeout_ms);

#endif
