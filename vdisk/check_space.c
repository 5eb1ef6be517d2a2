/* isocache-admin check: data in a layer file that no map references, and
 * check --repair, which punches it out.
 *
 * A write that fails half-way (ENOSPC after some blocks landed), or one a
 * crash cut off before the map commit that would name it, leaves blocks
 * allocated in the layer file that the allocation map does not point to:
 * space nothing can read and nothing frees. This walks each layer file's
 * data (SEEK_DATA / SEEK_HOLE) against its allocation map: only clusters
 * the map says this layer holds may have data.
 *
 * A leaf served by a live process is skipped: its writes since the last
 * flush are in the file and not yet in the map. --repair claims each leaf
 * (the ownership claim, as any writer does) before it reads the map, so
 * nothing writes the leaf while its holes are punched; frozen layers are
 * reported, never changed (they are read-only and, for root, immutable). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/size.h"
#include "vdisk/internal.h"

struct space {
	struct ic_store *store;
	const struct ic_disk_rec *rec;
	struct extmap map;
	int fd;
	bool repair;
	uint64_t bytes, ranges;
};

/* One range of the file holding data no map references. */
static int
space_found(struct space *s, off_t start, off_t end)
{
	s->bytes += (uint64_t)(end - start);
	s->ranges++;
	if (s->repair &&
	    fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, start, end - start) != 0) {
		int rc = -errno;

		ic_log(IC_LOG_ERR, "disk %llu: cannot punch out bytes %lld..%lld: %s",
		       (unsigned long long)s->rec->id, (long long)start, (long long)end,
		       strerror(-rc));
		return rc;
	}
	return 0;
}

/* Data range [pos, end) of the file: the parts outside clusters this
 * layer holds by its map. Extent bounds are compared in clusters, with
 * `last` the first cluster wholly past end: a damaged map's extent may end
 * far beyond any file (its end in bytes would overflow, and the walk go
 * back instead of on). */
static int
space_range(struct space *s, off_t pos, off_t end)
{
	unsigned shift = s->store->cluster_shift;
	uint64_t last = ((uint64_t)end + (1ull << shift) - 1) >> shift;

	while (pos < end) {
		uint64_t next, stop;
		const struct ic_meta_extent *e;
		int rc;

		e = extmap_find(&s->map, (uint64_t)pos >> shift, &next);
		stop = e ? e->start + e->count : next;
		if (!e || e->holder != s->rec->id) {
			/* Not held here: a zero extent, or a gap up to the next extent. */
			rc = space_found(s, pos, stop >= last ? end : (off_t)(stop << shift));
			if (rc)
				return rc;
		}
		pos = stop >= last ? end : (off_t)(stop << shift);
	}
	return 0;
}

static int
space_walk(struct space *s)
{
	off_t pos = 0, data, hole;
	int rc;

	for (;;) {
		data = lseek(s->fd, pos, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : -errno;
		hole = lseek(s->fd, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		rc = space_range(s, data, hole);
		if (rc)
			return rc;
		pos = hole;
	}
}

/* The map of s->rec, read after any claim was taken. */
static int
space_scan(struct space *s, ic_check_report_fn report, void *arg)
{
	const struct ic_disk_rec *rec = s->rec;
	char path[PATH_MAX], msg[2 * PATH_MAX], size[32];
	struct ic_meta_txn *txn;
	int rc = ic_meta_begin(s->store->meta, false, &txn);

	if (rc)
		return rc;
	rc = extmap_load(txn, IC_MAP_ALLOC, rec->id, &s->map);
	ic_meta_abort(txn);
	if (rc)
		return rc;
	store_layer_path(s->store, rec->id, path);
	s->fd = open(path, (s->repair ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
	if (s->fd < 0)
		return 0; /* check_file reported it */
	rc = space_walk(s);
	if (rc == 0 && s->repair && s->ranges && fsync(s->fd) != 0)
		rc = -errno;
	close(s->fd);
	if (rc)
		ic_log(IC_LOG_ERR, "%s: scanning for unreferenced data: %s", path, strerror(-rc));
	if (rc || !s->bytes)
		return rc;
	ic_size_format(s->bytes, size, sizeof(size));
	snprintf(msg, sizeof(msg), "disk %llu (%s): %s in %llu range%s of %s %s",
		 (unsigned long long)rec->id, rec->name[0] ? rec->name : "unnamed", size,
		 (unsigned long long)s->ranges, s->ranges == 1 ? "" : "s", path,
		 s->repair ? "no map referenced: reclaimed"
			   : "not referenced by its map (check --repair reclaims it)");
	report(arg, s->repair ? IC_CHECK_REPAIRED : IC_CHECK_UNREFERENCED, msg);
	return 0;
}

int
store_check_space(struct ic_store *store, const struct ic_disk_rec *rec, bool repair,
		  ic_check_report_fn report, void *arg)
{
	struct space s = { .store = store, .rec = rec, .fd = -1 };
	bool leaf = !(rec->flags & IC_DISK_FROZEN);
	struct owner_claim claim;
	int rc;

	if (leaf && rec->name[0]) {
		struct ic_owner_info info;

		if (ic_owner_show(store, rec->name, &info) == 0 && info.alive) {
			ic_log(IC_LOG_INFO, "%s: in use: unreferenced data not checked", rec->name);
			return 0;
		}
	}
	s.repair = repair && leaf && rec->name[0];
	if (s.repair &&
	    owner_claim(&store->owners, rec->name, "isocache-admin check --repair", &claim))
		return 0; /* someone took it meanwhile: logged */
	rc = space_scan(&s, report, arg);
	if (s.repair)
		rc = owner_release_after(&store->owners, &claim, rc);
	extmap_free(&s.map);
	return rc;
}
