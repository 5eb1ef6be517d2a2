/* The public layer handle (DESIGN.md §1): what a filter knows of the layer
 * a segment belongs to. The vdisk core owns it; filters only read it. */
#ifndef ISOCACHE_LAYER_H
#define ISOCACHE_LAYER_H

#include <stdbool.h>
#include <stdint.h>

struct ic_layer {
	uint64_t disk_id;  /* unique within the store, never reused */
	uint8_t uuid[16];  /* random per layer; the shared cache's key */
	bool frozen;       /* immutable forever once true */
	int fd;            /* layer file, buffered I/O (read-only when frozen) */
	int direct_fd;     /* the same file opened O_DIRECT, or -1 (cache=writeback) */
	uint64_t size;     /* virtual size in bytes */
};

#endif
