/* Private to vdisk/. */
#ifndef IC_VDISK_INTERNAL_H
#define IC_VDISK_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <sys/types.h>

#include "isocache/control.h"
#include "isocache/meta.h"
#include "isocache/vdisk.h"
#include "vdisk/extmap.h"

struct ic_store {
	char *dir;
	struct ic_meta *meta;
	uint32_t cluster_size;
	unsigned cluster_shift;
	struct ic_control *control; /* this process's control socket, or NULL */
	unsigned handoff_ms;        /* RELEASE deadline; 0 = the default */
	enum ic_takeover takeover;  /* what a writer does about a live owner */
};

/* ---- store.c ---- */
/* layers/<id>.raw of the store, into buf (PATH_MAX). */
void store_layer_path(const struct ic_store *store, uint64_t id, char *buf);
/* Create an empty sparse layer file of size bytes. */
int store_layer_create(struct ic_store *store, uint64_t id, uint64_t size);
/* Remove a layer file (lifting the frozen marks first). */
int store_layer_unlink(struct ic_store *store, uint64_t id);
/* Mark a layer file frozen: fsync, mode 0444, the xattr, immutable when root. */
int store_layer_freeze(struct ic_store *store, uint64_t id, const uint8_t uuid[16]);
/* Lift the frozen marks (rm of a snapshot merges into a frozen child). */
int store_layer_thaw(struct ic_store *store, uint64_t id);
/* Open the layer file for I/O: fd, and the O_DIRECT one when direct. */
int store_layer_open(struct ic_store *store, const struct ic_disk_rec *rec, bool writable,
		     bool direct, struct ic_layer *out);
void store_layer_close(struct ic_layer *layer);

/* Split "NAME@SNAP": copies NAME into name (IC_NAME_MAX+1). Returns 0, or
 * -EINVAL when image has no '@' (want_snap) or has one (!want_snap). */
int store_split_name(const char *image, bool want_snap, char *name);
/* Look up an image by name → its disk record, logging a clear error. */
int store_image_get(struct ic_store *store, struct ic_meta_txn *txn, const char *image,
		    struct ic_disk_rec *rec);

/* ---- open.c ---- */
/* The records of top's chain, top first, into *out (free() it) and *depth.
 * -EUCLEAN, logged, when a parent is missing or not frozen or the chain is
 * deeper than any real one (a cycle in damaged metadata). */
int vd_chain(struct ic_meta_txn *txn, const struct ic_disk_rec *top, struct ic_disk_rec **out,
	     unsigned *depth);

/* ---- owner.c ---- */
struct owner_claim {
	char name[IC_NAME_MAX + 1];
	uint8_t owner_id[16];
	uint64_t generation;
	char who[64]; /* as in the record */
	int lock_fd;  /* holds the vdisk's byte of owners.lock; -1 when not */
};
/* Acquire vdisk name for this process (who: "isocache-admin resize"): claim
 * it when nobody owns it or its owner is dead (its kernel lock is free);
 * else, as store->takeover says, ask the live owner to release it within
 * store->handoff_ms, refuse, or take it by force. -EBUSY, after logging a
 * message naming the owner, when it is not ours. On success out->lock_fd
 * holds the lock: owner_release gives both up. */
int owner_claim(struct ic_store *store, const char *name, const char *who,
		struct owner_claim *out);
/* The same with an explicit way: force ignores the owner's policy and,
 * when it does not answer, kills it (owner_kill). said (may be NULL) gets
 * the owner's last answer. */
int owner_acquire(struct ic_store *store, const char *name, const char *who,
		  unsigned timeout_ms, enum ic_takeover how, char *said, size_t cap,
		  struct owner_claim *out);
/* Check inside a write transaction that the claim still holds (-ESTALE). */
int owner_check(struct ic_meta_txn *txn, const struct owner_claim *claim);
/* Give the vdisk up: clear the record (only if the claim still holds),
 * then drop the lock. Call with no write of the claim in flight. */
void owner_release(struct ic_store *store, struct owner_claim *claim);
/* Drop the claim's kernel lock, if held. Only once nothing can write under
 * the claim any more (fenced, or closed): the lock is what keeps another
 * process from claiming. */
void owner_drop(struct owner_claim *claim);
/* The record a process writes for itself: a new owner id (or the given
 * one), pid, start time, boot id, this store's control socket, who. */
int owner_self(struct ic_store *store, pid_t pid, const char *who, const uint8_t *id,
	       struct ic_owner_rec *out);
/* Compare-and-swap: if claim still holds, make `to` the owner (its
 * generation becomes the claim's + 1, stored in *generation). -ESTALE when
 * the claim no longer holds. */
int owner_transfer(struct ic_store *store, const struct owner_claim *claim,
		   const struct ic_owner_rec *to, uint64_t *generation);
/* Kill the process behind rec's control socket (takeover.c) and wait for
 * it to exit, logging why (why: the reason for people). -EBUSY, logged and
 * naming the owner, when it cannot be reached, may not be signalled or
 * does not exit. */
int owner_kill(const char *name, const struct ic_owner_rec *rec, const char *why);
/* "isocache-nbd pid 4242 (open vm1) since 2026-11-21 10:00:00" into buf. */
void owner_describe(const struct ic_owner_rec *rec, char *buf, size_t cap);
/* Ask the live owner of name, if it has a control socket, to snapshot it
 * as image (NAME@SNAP). Returns 1 when there is no such owner (snapshot
 * locally), else 0 or the owner's -errno. */
int owner_remote_snapshot(struct ic_store *store, const char *name, const char *image);

/* ---- io.c ---- */
/* CLOCK_MONOTONIC in milliseconds. */
long long vd_now_ms(void);

/* ---- control.c: the registry of writable vdisks a control serves ---- */
void control_add(struct ic_control *ctl, struct ic_vdisk *vd);
void control_del(struct ic_control *ctl, struct ic_vdisk *vd);
const char *control_socket(const struct ic_store *store);

/* ---- image.c ---- */
/* In one write transaction checking claim: freeze NAME's leaf as image
 * (NAME@SNAP) and put a new empty leaf on top. leaf and next get the old
 * leaf (now frozen) and the new leaf's records. */
int image_snapshot_commit(struct ic_store *store, const struct owner_claim *claim,
			  const char *image, struct ic_disk_rec *leaf, struct ic_disk_rec *next);

/* ---- backend.c: the bottom of every filter stack ---- */
extern const struct ic_filter_ops ic_layer_backend_ops;

/* ---- resolve.c: building a frozen layer's flattened map ---- */
/* Write RESOLVED(id) = ALLOC(id) over RESOLVED(parent). */
int resolve_build(struct ic_meta_txn *txn, uint64_t id, uint64_t parent);
/* In every RESOLVED map, holder from → to (merge of a snapshot). */
int resolve_rename(struct ic_meta_txn *txn, uint64_t from, uint64_t to);

/* Load a whole extent map of disk into an extmap. */
int extmap_load(struct ic_meta_txn *txn, enum ic_map map, uint64_t disk, struct extmap *out);

#endif
