/* The public layer handle (docs/ARCHITECTURE.md §1): what a filter knows of the layer
 * a segment belongs to. The vdisk core owns it; filters only read it. */
#ifndef ISOCACHE_LAYER_H
#define ISOCACHE_LAYER_H

#include <stdbool.h>
#include <stdint.h>

/* A frozen layer file carries this extended attribute; the cache daemon
 * believes only it (with mode 0444 and a read-only fd). Its value is text:
 *   "isocache-layer v1 store=<uuid> layer=<uuid> frozen"
 * with uuids in the 36-character form (docs/FORMAT.md). */
#define IC_LAYER_XATTR "user.isocache.layer"
#define IC_LAYER_XATTR_FMT "isocache-layer v1 store=%s layer=%s frozen"

struct ic_layer {
	uint64_t disk_id;  /* unique within the store, never reused */
	uint8_t uuid[16];  /* random per layer; the shared cache's key */
	bool frozen;       /* immutable forever once true */
	int fd;            /* layer file, buffered I/O (read-only when frozen) */
	int direct_fd;     /* the same file opened O_DIRECT, or -1 (cache=writeback) */
	uint64_t size;     /* virtual size in bytes */
};

#endif
