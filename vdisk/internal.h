/* Private to vdisk/. */
#ifndef IC_VDISK_INTERNAL_H
#define IC_VDISK_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <sys/types.h>

#include "isocache/meta.h"
#include "isocache/vdisk.h"
#include "owner/owner.h"
#include "vdisk/extmap.h"

struct ic_store {
	char *dir;
	int dirfd;         /* the store directory (O_PATH): every path inside is opened beneath it */
	mode_t file_mode;  /* of new layer files: 0600, or 0640 in a store shared with a group */
	struct ic_meta *meta;
	uint32_t cluster_size;
	unsigned cluster_shift;
	struct owner_store owners; /* ownership of its vdisks (owner/) */
};

/* ---- beneath.c ---- */
/* Open rel (relative to the store directory, as "layers/3.raw") with
 * openat2 beneath the store's directory fd, following no symbolic link
 * and never leaving the directory; O_CLOEXEC is added. Returns the fd, or
 * -ELOOP after logging "store X: layers/3.raw is a symbolic link;
 * refusing", or another -errno (logged, except -ENOENT). */
int store_openat(const struct ic_store *store, const char *rel, int flags, mode_t mode);
/* Remove name from the store's directory dir (opened as above); a missing
 * name is not an error. */
int store_unlinkat(const struct ic_store *store, const char *dir, const char *name);

/* ---- store.c ---- */
/* layers/<id>.raw of the store, into buf (PATH_MAX), for messages. */
void store_layer_path(const struct ic_store *store, uint64_t id, char *buf);
/* Open the layer file of id with flags (store_openat); fd or -errno, logged. */
int store_layer_fd(const struct ic_store *store, uint64_t id, int flags);
/* 0 when the layer file of id is a file beneath the store, or missing;
 * else -errno (logged): -ELOOP when a symbolic link is in the way. Run
 * before a transaction that drops the file's records, so a link planted
 * there refuses the removal instead of leaving the records gone. */
int store_layer_check(const struct ic_store *store, uint64_t id);
/* Set the layer file's size (resize). */
int store_layer_resize(struct ic_store *store, uint64_t id, uint64_t size);
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

/* ---- again.c ---- */
/* Should an operation whose write transaction ended with rc run again? Yes
 * when it lost a race (-EAGAIN: nothing was written) and has run fewer than
 * a few times (counted in *tries, 0 at first): after a short random pause,
 * logged naming what. */
bool store_again(int rc, unsigned *tries, const char *what);

/* ---- check_space.c ---- */
/* Data in rec's layer file that its allocation map does not reference:
 * reported, or with repair punched out and reported so (a live process's
 * leaf is skipped). 0, or -errno when the scan failed. */
int store_check_space(struct ic_store *store, const struct ic_disk_rec *rec, bool repair,
		      ic_check_report_fn report, void *arg);

/* ---- chain.c ---- */
/* The records of top's chain, top first, into *out (free() it) and *depth.
 * -EUCLEAN, logged, when a parent is missing or not frozen or the chain is
 * deeper than any real one (a cycle in damaged metadata). */
int vd_chain(struct ic_meta_txn *txn, const struct ic_disk_rec *top, struct ic_disk_rec **out,
	     unsigned *depth);

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
/* Replace disk's whole extent map of that kind with map, in txn. */
int extmap_save(struct ic_meta_txn *txn, enum ic_map kind, uint64_t disk, const struct extmap *map);

#endif
