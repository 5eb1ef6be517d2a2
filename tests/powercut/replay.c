/* pc-replay: rebuild a store as a power cut would have left it, from a
 * copy of the store taken before the journal began and the journal the
 * shim (shim.c) wrote.
 *
 *   pc-replay JOURNAL                 print the number of records
 *   pc-replay [-k SEED] JOURNAL N DIR  apply records 1..N to DIR, print
 *                                      the journal offset of the cut
 *
 * The cut falls right after record N. A write, truncate or fallocate
 * survives it when it was journaled before a completed sync of its file
 * (fsync, fdatasync, sync, syncfs) began, or was itself synchronous
 * (O_DSYNC, RWF_DSYNC). Everything else is dropped, or with -k kept at
 * random, each 4 KiB page of a write on its own (the page cache writes
 * back pages in any order). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"

#define PC_MAX_FILES 256
#define PC_PAGE 4096u

struct replay {
	const char *dir;
	bool keep_random;
	uint64_t rng;
	uint64_t synced[PC_MAX_FILES]; /* records before this offset are durable */
	uint64_t synced_all;
	char *path[PC_MAX_FILES];
	int fd[PC_MAX_FILES];
};

static void __attribute__((noreturn))
replay_die(const char *what)
{
	fprintf(stderr, "pc-replay: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* splitmix64 */
static bool
replay_coin(struct replay *rp)
{
	uint64_t z = (rp->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (z ^ (z >> 31)) & 1;
}

/* Copy the record at *pos into *r (records are not aligned) and return its
 * data, advancing *pos past it; NULL at the end. */
static const char *
replay_next(const char *map, uint64_t size, uint64_t *pos, struct pc_rec *r)
{
	const char *data = map + *pos + sizeof(*r);

	if (*pos + sizeof(*r) > size)
		return NULL;
	memcpy(r, map + *pos, sizeof(*r));
	if (r->magic != PC_MAGIC || r->file >= PC_MAX_FILES ||
	    pc_rec_data(r) > size - *pos - sizeof(*r)) {
		errno = EBADMSG;
		replay_die("corrupt journal");
	}
	*pos += sizeof(*r) + pc_rec_data(r);
	return data;
}

static int
replay_fd(struct replay *rp, uint32_t file)
{
	char path[4096];

	if (rp->fd[file] >= 0)
		return rp->fd[file];
	if (!rp->path[file]) {
		errno = EBADMSG;
		replay_die("record of a file never opened");
	}
	snprintf(path, sizeof(path), "%s/%s", rp->dir, rp->path[file]);
	rp->fd[file] = open(path, O_WRONLY | O_CREAT, 0644);
	if (rp->fd[file] < 0)
		replay_die(path);
	return rp->fd[file];
}

static void
replay_write(struct replay *rp, const struct pc_rec *r, const char *data, bool durable)
{
	int fd = replay_fd(rp, r->file);
	uint64_t done = 0;

	while (done < r->len) {
		uint64_t off = r->off + done;
		uint64_t n = PC_PAGE - off % PC_PAGE;

		if (n > r->len - done)
			n = r->len - done;
		if ((durable || (rp->keep_random && replay_coin(rp))) &&
		    pwrite(fd, data + done, n, (off_t)off) != (ssize_t)n)
			replay_die(rp->path[r->file]);
		done += n;
	}
}

static void
replay_apply(struct replay *rp, const struct pc_rec *r, const char *data, uint64_t pos)
{
	bool durable = r->flags & PC_DURABLE || pos < rp->synced[r->file] || pos < rp->synced_all;
	int fd;

	switch (r->type) {
	case PC_OPEN:
		if (!rp->path[r->file] && !(rp->path[r->file] = strndup(data, r->len)))
			replay_die("strndup");
		return;
	case PC_WRITE:
		replay_write(rp, r, data, durable);
		return;
	case PC_TRUNC:
	case PC_FALLOC:
		if (!durable && !(rp->keep_random && replay_coin(rp)))
			return;
		fd = replay_fd(rp, r->file);
		if (r->type == PC_TRUNC ? ftruncate(fd, (off_t)r->off)
					: fallocate(fd, (int)r->arg, (off_t)r->off, (off_t)r->len))
			replay_die(rp->path[r->file]);
		return;
	}
}

static void
replay_sync(struct replay *rp, const struct pc_rec *r)
{
	if (r->type == PC_SYNC && r->arg > rp->synced[r->file])
		rp->synced[r->file] = r->arg;
	if (r->type == PC_SYNCALL && r->arg > rp->synced_all)
		rp->synced_all = r->arg;
}

int
main(int argc, char **argv)
{
	struct replay rp = { .keep_random = false };
	struct pc_rec r;
	const char *data;
	uint64_t n = 0, cut = UINT64_MAX, pos = 0, end;
	struct stat st;
	char *map;
	int fd;

	if (argc > 2 && strcmp(argv[1], "-k") == 0) {
		rp.keep_random = true;
		rp.rng = strtoull(argv[2], NULL, 0);
		argc -= 2, argv += 2;
	}
	if (argc != 2 && argc != 4) {
		fprintf(stderr, "usage: pc-replay JOURNAL | pc-replay [-k SEED] JOURNAL N DIR\n");
		return 2;
	}
	fd = open(argv[1], O_RDONLY);
	if (fd < 0 || fstat(fd, &st) != 0)
		replay_die(argv[1]);
	map = st.st_size ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
	if (map == MAP_FAILED)
		replay_die(argv[1]);
	if (argc == 4) {
		cut = strtoull(argv[2], NULL, 0);
		rp.dir = argv[3];
	}
	/* First the syncs that completed before the cut, then the changes. */
	while (n < cut && replay_next(map, (uint64_t)st.st_size, &pos, &r)) {
		replay_sync(&rp, &r);
		n++;
	}
	if (argc == 2) {
		printf("%" PRIu64 "\n", n);
		return 0;
	}
	end = pos;
	memset(rp.fd, -1, sizeof(rp.fd));
	for (pos = 0; pos < end;) {
		uint64_t at = pos;

		data = replay_next(map, end, &pos, &r);
		replay_apply(&rp, &r, data, at);
	}
	for (uint32_t i = 0; i < PC_MAX_FILES; i++) {
		if (rp.fd[i] >= 0 && close(rp.fd[i]) != 0)
			replay_die(rp.path[i]);
		free(rp.path[i]);
	}
	printf("%" PRIu64 "\n", end);
	return 0;
}
