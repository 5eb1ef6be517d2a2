/* isocache-admin check: do the metadata file and the layer files agree?
 * Every problem found is reported; nothing is changed, except by --repair
 * (IC_CHECK_REPAIR), which reclaims the data no map references
 * (vdisk/check_space.c). */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "common/uuid.h"
#include "vdisk/internal.h"

struct check_ctx {
	struct ic_store *store;
	struct ic_meta_txn *txn;
	ic_check_report_fn report;
	void *arg;
	int problems;
	const struct ic_disk_rec *rec; /* the disk being checked */
	uint64_t *ids;                 /* every disk id, in order */
	size_t nids;
};

static void __attribute__((format(printf, 2, 3)))
check_problem(struct check_ctx *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->problems++;
	c->report(c->arg, IC_CHECK_PROBLEM, msg);
}

static bool
check_known(const struct check_ctx *c, uint64_t id)
{
	for (size_t i = 0; i < c->nids; i++)
		if (c->ids[i] == id)
			return true;
	return false;
}

static int
check_collect(void *arg, const struct ic_disk_rec *rec)
{
	struct check_ctx *c = arg;
	uint64_t *grown = realloc(c->ids, (c->nids + 1) * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	c->ids = grown;
	c->ids[c->nids++] = rec->id;
	return 0;
}

static int
check_alloc_extent(void *arg, const struct ic_meta_extent *e)
{
	struct check_ctx *c = arg;
	uint64_t clusters = (c->rec->size + c->store->cluster_size - 1) >> c->store->cluster_shift;

	if (e->holder != 0 && e->holder != c->rec->id)
		check_problem(c, "disk %llu: allocation map names disk %llu as holder",
			      (unsigned long long)c->rec->id, (unsigned long long)e->holder);
	if (e->start + e->count > clusters)
		check_problem(c, "disk %llu: allocation at cluster %llu is past the end",
			      (unsigned long long)c->rec->id, (unsigned long long)e->start);
	return 0;
}

static int
check_resolved_extent(void *arg, const struct ic_meta_extent *e)
{
	struct check_ctx *c = arg;

	if (e->holder != 0 && !check_known(c, e->holder))
		check_problem(c, "disk %llu: resolved map names missing disk %llu",
			      (unsigned long long)c->rec->id, (unsigned long long)e->holder);
	return 0;
}

static void
check_file(struct check_ctx *c, const struct ic_disk_rec *rec)
{
	char path[PATH_MAX], value[160], expect[160], su[IC_UUID_STRLEN], lu[IC_UUID_STRLEN];
	struct stat st;
	ssize_t n;

	store_layer_path(c->store, rec->id, path);
	if (lstat(path, &st) != 0) {
		check_problem(c, "disk %llu (%s): layer file %s: %s", (unsigned long long)rec->id,
			      rec->name, path, strerror(errno));
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		check_problem(c, "%s: not a regular file%s", path,
			      S_ISLNK(st.st_mode) ? " (a symbolic link, never followed)" : "");
		return;
	}
	if ((uint64_t)st.st_size < rec->size)
		check_problem(c, "%s: truncated (%lld of %llu bytes)", path, (long long)st.st_size,
			      (unsigned long long)rec->size);
	if (!(rec->flags & IC_DISK_FROZEN))
		return;
	if (st.st_mode & 0222)
		check_problem(c, "%s: frozen layer is writable (mode %o)", path, st.st_mode & 07777);
	ic_uuid_format(ic_meta_store_uuid(c->store->meta), su);
	ic_uuid_format(rec->uuid, lu);
	snprintf(expect, sizeof(expect), IC_LAYER_XATTR_FMT, su, lu);
	n = lgetxattr(path, IC_LAYER_XATTR, value, sizeof(value) - 1);
	if (n < 0 && errno == ENOTSUP)
		return; /* no xattrs here: frozen unmarked (store_layer_freeze) */
	if (n < 0 || (size_t)n != strlen(expect) || memcmp(value, expect, (size_t)n) != 0)
		check_problem(c, "%s: frozen layer lacks its %s mark", path, IC_LAYER_XATTR);
}

static int
check_disk(void *arg, const struct ic_disk_rec *rec)
{
	struct check_ctx *c = arg;
	uint64_t id;

	c->rec = rec;
	if (rec->parent && !check_known(c, rec->parent))
		check_problem(c, "disk %llu (%s): parent %llu does not exist",
			      (unsigned long long)rec->id, rec->name, (unsigned long long)rec->parent);
	if (rec->name[0] && (ic_meta_name_get(c->txn, rec->name, &id) != 0 || id != rec->id))
		check_problem(c, "disk %llu: name %s does not point back to it",
			      (unsigned long long)rec->id, rec->name);
	check_file(c, rec);
	ic_meta_extent_foreach(c->txn, IC_MAP_ALLOC, rec->id, check_alloc_extent, c);
	ic_meta_extent_foreach(c->txn, IC_MAP_RESOLVED, rec->id, check_resolved_extent, c);
	return 0;
}

static int
check_name(void *arg, const char *name, uint64_t id)
{
	struct check_ctx *c = arg;

	if (!check_known(c, id))
		check_problem(c, "name %s points to missing disk %llu", name, (unsigned long long)id);
	return 0;
}

/* Files in layers/ that no disk record owns. */
static void
check_orphans(struct check_ctx *c)
{
	char dir[PATH_MAX];
	struct dirent *d;
	DIR *dp;

	snprintf(dir, sizeof(dir), "%s/layers", c->store->dir);
	dp = opendir(dir);
	if (!dp) {
		check_problem(c, "%s: %s", dir, strerror(errno));
		return;
	}
	while ((d = readdir(dp))) {
		unsigned long long id;
		char tail[8];

		if (d->d_name[0] == '.')
			continue;
		if (sscanf(d->d_name, "%llu.%7s", &id, tail) != 2 || strcmp(tail, "raw") != 0 ||
		    !check_known(c, id))
			check_problem(c, "%s/%s: a file no layer owns", dir, d->d_name);
	}
	closedir(dp);
}

/* Every layer file's data against its allocation map. */
static int
check_space(struct check_ctx *c, bool repair)
{
	for (size_t i = 0; i < c->nids; i++) {
		struct ic_disk_rec rec;
		struct ic_meta_txn *txn;
		int rc = ic_meta_begin(c->store->meta, false, &txn);

		if (rc == 0) {
			rc = ic_meta_disk_get(txn, c->ids[i], &rec);
			ic_meta_abort(txn);
		}
		if (rc == -ENOENT)
			continue; /* removed meanwhile */
		if (rc == 0)
			rc = store_check_space(c->store, &rec, repair, c->report, c->arg);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int
ic_store_check(struct ic_store *store, unsigned flags, ic_check_report_fn report, void *arg)
{
	struct check_ctx c = { .store = store, .report = report, .arg = arg };
	int rc = ic_meta_begin(store->meta, false, &c.txn);

	if (rc)
		return rc;
	rc = ic_meta_disk_foreach(c.txn, check_collect, &c);
	if (rc == 0)
		rc = ic_meta_disk_foreach(c.txn, check_disk, &c);
	if (rc == 0)
		rc = ic_meta_name_foreach(c.txn, check_name, &c);
	ic_meta_abort(c.txn);
	if (rc == 0)
		check_orphans(&c);
	if (rc == 0)
		rc = check_space(&c, flags & IC_CHECK_REPAIR);
	free(c.ids);
	return rc ? rc : c.problems;
}
