/* Private to vdisk/. */
#ifndef IC_VDISK_INTERNAL_H
#define IC_VDISK_INTERNAL_H

#include <limits.h>
#include <pthread.h>

#include "isocache/meta.h"
#include "isocache/vdisk.h"
#include "vdisk/extmap.h"

struct ic_store {
	char *dir;
	struct ic_meta *meta;
	uint32_t cluster_size;
	unsigned cluster_shift;
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

/* ---- owner.c ---- */
struct owner_claim {
	char name[IC_NAME_MAX + 1];
	uint8_t owner_id[16];
	uint64_t generation;
};
/* Claim vdisk name for this process (who: "isocache-admin snap"), in its
 * own write transaction. -EBUSY naming the owner when a live one holds it. */
int owner_claim(struct ic_store *store, const char *name, const char *who,
		struct owner_claim *out);
/* Check inside a write transaction that the claim still holds (-ESTALE). */
int owner_check(struct ic_meta_txn *txn, const struct owner_claim *claim);
/* Give the vdisk up (only if the claim still holds). */
void owner_release(struct ic_store *store, const struct owner_claim *claim);

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
