/* The power-cut journal: what the shim (shim.c) records of the writes and
 * syncs a process makes to the files under one directory, and what the
 * replay tool (replay.c) reads back to rebuild those files as a power cut
 * would leave them. One record per operation, appended with one write():
 * a header, then len bytes of data (a write's bytes, an open's path).
 *
 * Names are modelled too: a file's creation, removal or renaming, and a
 * directory's creation, survive a cut only once an fsync of the directory
 * holding the name (a PC_SYNC of that directory's file id) began after
 * them, or a sync of everything did. */
#ifndef IC_PC_JOURNAL_H
#define IC_PC_JOURNAL_H

#include <stdint.h>

#define PC_MAGIC 0x31435049u /* "IPC1" */

enum pc_type {
	PC_OPEN = 1, /* file is the path (relative to the root) in the data */
	PC_WRITE,    /* len bytes at off; PC_DURABLE when O_DSYNC or RWF_DSYNC */
	PC_TRUNC,    /* the file's size becomes off */
	PC_FALLOC,   /* fallocate(mode = arg) of off, len */
	PC_SYNC,     /* fsync/fdatasync of file done: records before arg are durable */
	PC_SYNCALL,  /* sync/syncfs done: the same for every file */
	PC_CREATE,   /* a new file: its path in the data */
	PC_MKDIR,    /* a new directory: its path in the data */
	PC_UNLINK,   /* a name removed: its path in the data */
	PC_RENAME,   /* the data holds "old\0new" */
};

#define PC_DURABLE 1u

struct pc_rec {
	uint32_t magic;
	uint16_t type;
	uint16_t flags;
	uint32_t file;
	uint32_t pad;
	uint64_t off;
	uint64_t len; /* bytes of data after the header (PC_WRITE, PC_OPEN) or range */
	uint64_t arg; /* PC_SYNC, PC_SYNCALL: journal offset; PC_FALLOC: mode */
};

_Static_assert(sizeof(struct pc_rec) == 40, "journal record header is 40 bytes");

/* Bytes of data that follow a record's header. */
static inline uint64_t
pc_rec_data(const struct pc_rec *r)
{
	return r->type == PC_WRITE || r->type == PC_OPEN || r->type >= PC_CREATE ? r->len : 0;
}

#endif
