/* Stores, images and vdisk I/O: the library every front end calls.
 *
 * A store is a directory with a metadata file (meta.mdb) and layer files
 * (layers/<disk_id>.raw). An image is named either NAME (a vdisk: a writable
 * leaf layer and its chain) or NAME@SNAP (a frozen snapshot layer).
 *
 * All functions return 0 (or a count) on success and a negative errno on
 * failure, after logging what was wrong through ic_log:
 *   -ENOENT no such image or store   -EEXIST name taken
 *   -EINVAL bad name, size or range  -EUCLEAN corrupt or foreign metadata
 *   -EBUSY  owned by another process -EROFS  write to a snapshot
 *   -ENOSPC store full               -EPROTONOSUPPORT newer schema
 *   -ESTALE ownership was taken away (fenced)
 * Handles may be used from many threads at once unless said otherwise.
 */
#ifndef ISOCACHE_VDISK_H
#define ISOCACHE_VDISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "isocache/filter.h"

#define IC_NAME_MAX 128          /* longest NAME or SNAP, bytes */
#define IC_DEFAULT_CLUSTER (64u << 10)
#define IC_DEFAULT_STORE "/var/lib/isocache"

struct ic_store;
struct ic_vdisk;

/* ---- Stores ---- */

/* The store directory: dir if not NULL, else $ISOCACHE_STORE, else the default. */
const char *ic_store_path(const char *dir);

/* ic_store_init's group for a store no group shares. */
#define IC_STORE_PRIVATE ((gid_t)-1)

/* Create a store in dir (made if missing, must not hold one already).
 * cluster_size: 0 for the default, else a power of two 4 KiB - 2 MiB.
 * The store is private whatever the umask (directories 0700, files 0600,
 * frozen layers 0444) unless group is not IC_STORE_PRIVATE: then the
 * directories are 2750 and the files 0640, of that group. */
int ic_store_init(const char *dir, uint32_t cluster_size, gid_t group);
/* The same for a store shared by hosts (docs/MULTI-HOST.md): its metadata
 * goes under meta_url, etcd://HOST:PORT[,HOST:PORT...]/PREFIX (-EEXIST if a
 * store is there already), and dir gets the layer files and the file
 * meta.etcd naming the URL. ic_store_open then opens either kind. */
int ic_store_init_etcd(const char *dir, uint32_t cluster_size, gid_t group, const char *meta_url);

/* Open the store in dir (checked: ours, not damaged, a schema we know):
 * its meta.mdb, or the etcd store its meta.etcd names (a store holding both
 * is refused, -EUCLEAN).
 * -ENOENT no store there, -EUCLEAN damaged or foreign metadata,
 * -EPROTONOSUPPORT a newer schema. */
int ic_store_open(const char *dir, struct ic_store **out);
/* Open for reading only (ic_meta_open_readonly): for callers that may read
 * the store but not write it. Anything that would change the metadata
 * fails with -EACCES. */
int ic_store_open_readonly(const char *dir, struct ic_store **out);
/* Close a store opened by ic_store_open, after every vdisk of it is
 * closed. NULL is fine. */
void ic_store_close(struct ic_store *store);
/* Remove the whole store at dir: every layer file (lifting the frozen
 * marks: mode 0444, the immutable attribute), the metadata file and its
 * lock, and dir when nothing else is left in it. Refused with -EBUSY,
 * naming each vdisk and its owner, while a live process owns a vdisk,
 * unless force. No image can be made or claimed while it runs. */
int ic_store_destroy(const char *dir, bool force);
/* The store's cluster size in bytes: the unit of copy-on-write. */
uint32_t ic_store_cluster_size(const struct ic_store *store);
/* The mode of the store's writable layer files: 0600, or 0640 in a store
 * shared with a group (init --group). Front ends that show images as files
 * give them this mode (read bits only for snapshots), so that a mount never
 * shows a disk to more users than its store does. */
unsigned ic_store_file_mode(const struct ic_store *store);
/* The store's random 128-bit uuid, into uuid. */
void ic_store_uuid(const struct ic_store *store, uint8_t uuid[16]);
/* The directory the store was opened from. */
const char *ic_store_dir(const struct ic_store *store);

/* Progress of long operations (import, merge, flatten): done of total bytes. */
typedef void (*ic_progress_fn)(void *arg, uint64_t done, uint64_t total);

/* ---- Images ---- */

/* Check a NAME or NAME@SNAP: characters [A-Za-z0-9._-], not starting with
 * '.' or '-', at most IC_NAME_MAX. Returns 0 or -EINVAL. */
int ic_name_check(const char *image);

/* A new empty vdisk name of size bytes (a multiple of 512, not 0): a base
 * layer with no parent. -EEXIST when the name is taken. */
int ic_image_create(struct ic_store *store, const char *name, uint64_t size);
/* Freeze NAME's leaf as NAME@SNAP and start NAME on a new empty leaf. When
 * a live process owns NAME, it is asked to take the snapshot itself, so
 * its clients go on writing to the new leaf. */
int ic_image_snapshot(struct ic_store *store, const char *name_at_snap);
/* New vdisk newname on a new leaf above the frozen NAME@SNAP. */
int ic_image_clone(struct ic_store *store, const char *name_at_snap, const char *newname);
/* Remove NAME (nothing may sit on its leaf) or NAME@SNAP (merged into its
 * only child; refused with -EBUSY naming the clones when shared). */
int ic_image_remove(struct ic_store *store, const char *image, ic_progress_fn progress,
		    void *arg);
/* Grow vdisk name to size bytes (a multiple of 512). Only grows: a smaller
 * size is refused with -EINVAL, since the chain below may hold data there. */
int ic_image_resize(struct ic_store *store, const char *name, uint64_t size);
/* Discard NAME's leaf and restart it empty on NAME@SNAP. */
int ic_image_rollback(struct ic_store *store, const char *name_at_snap);
/* Copy all data into NAME's leaf and detach it from its parent. */
int ic_image_flatten(struct ic_store *store, const char *name, ic_progress_fn progress,
		     void *arg);

/* One layer of an image's chain, leaf first. */
struct ic_layer_info {
	uint64_t disk_id;
	uint8_t uuid[16];
	uint64_t parent;          /* 0 for a base */
	uint64_t size;
	uint64_t allocated;       /* bytes this layer holds (data clusters) */
	uint64_t created;         /* seconds since the epoch */
	bool frozen;
	char name[2 * IC_NAME_MAX + 2]; /* "vm1" or "vm1@snap", "" if unnamed */
};

struct ic_image_info {
	char name[2 * IC_NAME_MAX + 2];
	uint64_t size;
	uint32_t cluster_size;
	bool snapshot;
	unsigned depth;            /* layers in chain */
	struct ic_layer_info *chain; /* depth entries, leaf first; free() it */
};

/* The chain of image, leaf first, into out (free out->chain). */
int ic_image_info(struct ic_store *store, const char *image, struct ic_image_info *out);

/* Every layer of the store, in disk-ID order; free() the array. */
int ic_store_layers(struct ic_store *store, struct ic_layer_info **out, size_t *count);

/* Reclaim data in layer files that no map references (punch holes). */
#define IC_CHECK_REPAIR 0x1u
/* What ic_store_check reports. */
enum ic_check_kind {
	IC_CHECK_PROBLEM,      /* the metadata and the layer files disagree */
	IC_CHECK_UNREFERENCED, /* a layer file holds data no map references: leaked
				* space (a write that failed half-way, a crash before
				* a flush), not a disagreement */
	IC_CHECK_REPAIRED,     /* that data, punched out (IC_CHECK_REPAIR) */
};
/* Verify the metadata file and layer files agree, and that each layer file
 * holds data only where its map says it does (leaves a live process serves
 * are skipped: their unflushed writes are not in the map yet). Calls report
 * once per finding; returns the number of problems (0 = they agree; data
 * no map references is reported but not counted) or -errno. */
typedef void (*ic_check_report_fn)(void *arg, enum ic_check_kind kind, const char *msg);
int ic_store_check(struct ic_store *store, unsigned flags, ic_check_report_fn report, void *arg);

/* ---- Vdisk I/O ---- */

#define IC_OPEN_RDONLY 0x1u /* never write; a snapshot is always opened so */
#define IC_OPEN_DIRECT 0x2u /* cache=none: layer files opened O_DIRECT */

/* Open an image for I/O through stack (may be NULL: no filters, the plain
 * layer backend). A writable open claims ownership of the vdisk (-EBUSY
 * naming the owner when another live process holds it). */
int ic_vdisk_open(struct ic_store *store, const char *image, unsigned flags,
		  struct ic_stack *stack, struct ic_vdisk **out);
/* Flush (if writable), release ownership and free. Returns the flush's
 * -errno, else that of an ownership record that could not be cleared, else 0. */
int ic_vdisk_close(struct ic_vdisk *vd);

/* The virtual size in bytes, as of the open. */
uint64_t ic_vdisk_size(const struct ic_vdisk *vd);
/* Was it opened read-only (IC_OPEN_RDONLY, or a snapshot)? */
bool ic_vdisk_readonly(const struct ic_vdisk *vd);
/* A front end counts the clients using vd: +1 when one starts, -1 when it
 * ends. The default release policy (when-unused) lets a vdisk go only
 * while none does. Thread-safe. */
void ic_vdisk_use(struct ic_vdisk *vd, int delta);
/* Released to another process, taken over, or across hosts its etcd lease
 * lost: every call on vd fails with -ESTALE from now on. Close it; a new
 * ic_vdisk_open claims again. */
bool ic_vdisk_fenced(const struct ic_vdisk *vd);
/* Why vd is fenced, in words that follow its name ("released to another
 * process", "its etcd lease was lost"), or NULL while it is not. The
 * string lives as long as vd. */
const char *ic_vdisk_fenced_why(const struct ic_vdisk *vd);

/* Byte-granular I/O at any offset and length; the range must lie within
 * the disk (-EINVAL otherwise). Returns 0 or -errno; a handle that lost
 * ownership of its vdisk returns -ESTALE for everything. */
int ic_vdisk_pread(struct ic_vdisk *vd, void *buf, size_t len, uint64_t off);
/* The same read, only if it completes without waiting (for storage, the
 * cache daemon, a filter's delay, or a release or snapshot holding the
 * disk): blocks cached in a mapped arena or the page cache. -EAGAIN
 * otherwise, and the caller reads again with ic_vdisk_pread; buf may have
 * been written meanwhile. */
int ic_vdisk_pread_nowait(struct ic_vdisk *vd, void *buf, size_t len, uint64_t off);
/* ic_vdisk_pread into a pipe (its write end) without copying the bytes
 * (IC_REQ_PIPE): only when every byte is a block the cache daemon holds
 * for a frozen layer, which the pipe may then keep; with wait, after the
 * daemon's fill of the blocks it lacked, else (like ic_vdisk_pread_nowait)
 * never waiting. -EAGAIN otherwise (the pipe may hold part of the range:
 * the caller drains it), and the caller reads the usual way. */
int ic_vdisk_pread_pipe(struct ic_vdisk *vd, int pipe, size_t len, uint64_t off, bool wait);
/* Write buf; flags: 0 or IC_REQ_FUA (filter.h: durable, data and map, on
 * return). -EROFS on a read-only handle. */
int ic_vdisk_pwrite(struct ic_vdisk *vd, const void *buf, size_t len, uint64_t off,
		    uint32_t flags);
/* Trim and write-zeroes: the range reads as zeroes afterwards (a trim may
 * free the space, a write-zeroes too). flags: 0 or IC_REQ_FUA. */
int ic_vdisk_trim(struct ic_vdisk *vd, size_t len, uint64_t off, uint32_t flags);
int ic_vdisk_zero(struct ic_vdisk *vd, size_t len, uint64_t off, uint32_t flags);
/* Prefetch hint for the filter stack (a cache below may fill the range);
 * changes nothing the disk reads. */
int ic_vdisk_cache(struct ic_vdisk *vd, size_t len, uint64_t off);
/* Make every acknowledged write durable: layer data first, then the map. */
int ic_vdisk_flush(struct ic_vdisk *vd);

/* Where the bytes of a range come from, extent by extent. */
struct ic_extent {
	uint64_t off, len;
	int depth;   /* 0 = leaf, 1 = its parent, ...; -1 = reads as zeroes */
	bool zero;   /* a zero extent recorded in some layer (depth is the layer that hides below) */
};

/* Describe [off, off+len) as extents in order, calling fn for each; fn
 * returns 0 to go on or non-zero to stop (that value is returned). */
int ic_vdisk_extents(struct ic_vdisk *vd, uint64_t off, uint64_t len,
		     int (*fn)(void *arg, const struct ic_extent *ext), void *arg);
/* ic_vdisk_pread and ic_vdisk_extents in one: the range is resolved once
 * (a structured NBD read needs both). A non-zero return of fn stops the
 * extents, not the read, and is returned once the read is done. */
int ic_vdisk_pread_extents(struct ic_vdisk *vd, void *buf, size_t len, uint64_t off,
			   int (*fn)(void *arg, const struct ic_extent *ext), void *arg);

/* A filter stack over the layer backend holding the filters of spec, top
 * first ("stats,delay:read=200us"; NULL or "" for none). With cache, the
 * shared cache filter goes below them, just above the layer files, unless
 * spec places "cache" itself; it talks to isocached at cache_socket (NULL:
 * $ISOCACHE_SOCKET, else the host's) and passes reads through while no
 * daemon answers. Free with ic_stack_free after every vdisk using it is
 * closed. */
int ic_vdisk_stack_new(const char *spec, bool cache, const char *cache_socket,
		       struct ic_stack **out);

/* Disk ID of the layer at depth (0 = leaf) of vd's chain, or 0; safe
 * while a live snapshot moves vd to a new leaf. */
uint64_t ic_vdisk_layer_id(struct ic_vdisk *vd, unsigned depth);
/* The layer handle at depth (0 = top) of vd's chain, or NULL past the end.
 * Valid until the vdisk is closed or its leaf changes (a live snapshot). */
const struct ic_layer *ic_vdisk_layer(const struct ic_vdisk *vd, unsigned depth);

#endif
