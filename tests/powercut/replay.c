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
 * back pages in any order).
 *
 * Names (a file created, a directory made, a name removed or renamed)
 * survive when an fsync of the directory holding them began after they
 * were journaled, or a sync of everything did; else they are dropped, or
 * with -k kept at random. A file whose creation was dropped does not
 * exist after the cut, whatever was written and synced to it: the writes
 * to it are dropped too. */
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
	/* Files by path; several processes may share a journal, each with
	 * its own file ids: local maps a record's id to a path's index, as
	 * the last PC_OPEN of that id said. */
	char *path[PC_MAX_FILES];
	uint32_t npaths;
	uint32_t local[PC_MAX_FILES];
	int fd[PC_MAX_FILES];
	char *lost[PC_MAX_FILES]; /* names whose creation the cut dropped */
	unsigned nlost;
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

/* Whether path, or a directory above it, was made but not made durable. */
static bool
replay_lost(const struct replay *rp, const char *path)
{
	for (unsigned i = 0; i < rp->nlost; i++) {
		size_t n = strlen(rp->lost[i]);

		if (strncmp(path, rp->lost[i], n) == 0 && (path[n] == '\0' || path[n] == '/'))
			return true;
	}
	return false;
}

/* The file descriptor to replay file's changes into; -1 when the file
 * does not exist after the cut. */
/* The next record, with its file id turned into the index of its path. */
static const char *
replay_read(struct replay *rp, const char *map, uint64_t size, uint64_t *pos, struct pc_rec *r)
{
	const char *data = replay_next(map, size, pos, r);
	uint32_t i;

	if (!data || r->type >= PC_CREATE || r->type == PC_SYNCALL)
		return data;
	if (r->type == PC_OPEN) {
		for (i = 0; i < rp->npaths; i++)
			if (strlen(rp->path[i]) == r->len && memcmp(rp->path[i], data, r->len) == 0)
				break;
		if (i == rp->npaths) {
			if (i == PC_MAX_FILES || !(rp->path[i] = strndup(data, r->len)))
				replay_die("too many files");
			rp->npaths++;
		}
		rp->local[r->file] = i + 1;
	}
	if (!rp->local[r->file]) {
		errno = EBADMSG;
		replay_die("record of a file never opened");
	}
	r->file = rp->local[r->file] - 1;
	return data;
}

static int
replay_fd(struct replay *rp, uint32_t file)
{
	char path[4096];

	if (rp->fd[file] >= 0)
		return rp->fd[file];
	if (replay_lost(rp, rp->path[file]))
		return -1;
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

	if (fd < 0)
		return;
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

/* Whether a change of the name path, journaled at pos, survives: an fsync
 * of its directory began after it (or a sync of everything did). */
static bool
replay_name_durable(struct replay *rp, const char *path, uint64_t pos)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 1;
	const char *dir = slash ? path : ".";

	if (pos < rp->synced_all)
		return true;
	for (uint32_t i = 0; i < PC_MAX_FILES; i++)
		if (rp->path[i] && strlen(rp->path[i]) == n && strncmp(rp->path[i], dir, n) == 0)
			return pos < rp->synced[i];
	return false;
}

static void
replay_path(const struct replay *rp, const char *rel, char *out)
{
	snprintf(out, 4096, "%s/%s", rp->dir, rel);
}

/* A change of names (PC_CREATE, PC_MKDIR, PC_UNLINK, PC_RENAME). */
static void
replay_name(struct replay *rp, const struct pc_rec *r, const char *data, uint64_t pos)
{
	char *a = strndup(data, r->len), path[4096], to[4096];
	const char *b = r->type == PC_RENAME ? a + strlen(a) + 1 : NULL;
	bool keep;
	int fd;

	if (!a)
		replay_die("strndup");
	keep = replay_name_durable(rp, a, pos) && (!b || replay_name_durable(rp, b, pos));
	keep = keep || (rp->keep_random && replay_coin(rp));
	replay_path(rp, a, path);
	if (!keep) {
		if (r->type == PC_CREATE || r->type == PC_MKDIR) {
			if (rp->nlost == PC_MAX_FILES)
				replay_die("too many names lost");
			rp->lost[rp->nlost++] = a;
			return;
		}
	} else if (r->type == PC_CREATE) {
		fd = open(path, O_WRONLY | O_CREAT, 0644);
		if (fd < 0 || close(fd) != 0)
			replay_die(path);
	} else if (r->type == PC_MKDIR) {
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			replay_die(path);
	} else if (r->type == PC_UNLINK) {
		if (unlink(path) != 0 && rmdir(path) != 0 && errno != ENOENT)
			replay_die(path);
	} else {
		replay_path(rp, b, to);
		if (rename(path, to) != 0 && errno != ENOENT)
			replay_die(path);
		for (uint32_t i = 0; i < PC_MAX_FILES; i++) {
			if (!rp->path[i] || strcmp(rp->path[i], a) != 0)
				continue;
			free(rp->path[i]);
			if (!(rp->path[i] = strdup(b)))
				replay_die("strdup");
		}
	}
	free(a);
}

static void
replay_apply(struct replay *rp, const struct pc_rec *r, const char *data, uint64_t pos)
{
	bool durable = r->flags & PC_DURABLE || pos < rp->synced[r->file] || pos < rp->synced_all;
	int fd;

	switch (r->type) {
	case PC_OPEN:
		return; /* replay_read bound it */
	case PC_CREATE:
	case PC_MKDIR:
	case PC_UNLINK:
	case PC_RENAME:
		replay_name(rp, r, data, pos);
		return;
	case PC_WRITE:
		replay_write(rp, r, data, durable);
		return;
	case PC_TRUNC:
	case PC_FALLOC:
		if (!durable && !(rp->keep_random && replay_coin(rp)))
			return;
		fd = replay_fd(rp, r->file);
		if (fd < 0)
			return;
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

/* The paths and lost names the replay collected. */
static void
replay_free(struct replay *rp)
{
	for (uint32_t i = 0; i < rp->npaths; i++)
		free(rp->path[i]);
	for (unsigned i = 0; i < rp->nlost; i++)
		free(rp->lost[i]);
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
	/* First the syncs that completed before the cut and the paths of the
	 * files, then the changes. */
	while (n < cut && replay_read(&rp, map, (uint64_t)st.st_size, &pos, &r)) {
		replay_sync(&rp, &r);
		n++;
	}
	if (argc == 2) {
		printf("%" PRIu64 "\n", n);
		replay_free(&rp);
		return 0;
	}
	end = pos;
	memset(rp.fd, -1, sizeof(rp.fd));
	memset(rp.local, 0, sizeof(rp.local));
	for (pos = 0; pos < end;) {
		uint64_t at = pos;

		data = replay_read(&rp, map, end, &pos, &r);
		replay_apply(&rp, &r, data, at);
	}
	for (uint32_t i = 0; i < PC_MAX_FILES; i++)
		if (rp.fd[i] >= 0 && close(rp.fd[i]) != 0)
			replay_die(rp.path[i]);
	replay_free(&rp);
	printf("%" PRIu64 "\n", end);
	return 0;
}
