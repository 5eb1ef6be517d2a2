/* Exports backed by vdisks: the catalog the handshake chooses from, the
 * claim of a vdisk when a client selects it, and the backend ops that turn
 * NBD requests into ic_vdisk calls. */
#include "nbd/server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"
#include "isocache/control.h"

/* The data ops, each counted in the export's metrics (--metrics). A read
 * that tried only what needs no waiting, or to fill a pipe, and could not
 * (-EAGAIN) is read again the usual way, and counted then. */
static int
exp_read_done(struct srv_export *e, uint32_t len, uint64_t t0, int rc, bool tried)
{
	return tried && rc == -EAGAIN ? rc : ic_iostats_done(&e->io, IC_IO_READ, len, t0, rc);
}

static int
exp_pread(void *h, void *buf, uint32_t len, uint64_t off)
{
	struct srv_export *e = h;
	uint64_t t0 = ic_iostats_now();

	return exp_read_done(e, len, t0, ic_vdisk_pread(e->vd, buf, len, off), false);
}

static int
exp_pread_nowait(void *h, void *buf, uint32_t len, uint64_t off)
{
	struct srv_export *e = h;
	uint64_t t0 = ic_iostats_now();

	return exp_read_done(e, len, t0, ic_vdisk_pread_nowait(e->vd, buf, len, off), true);
}

static int
exp_pread_pipe(void *h, int pipe, uint32_t len, uint64_t off, bool wait)
{
	struct srv_export *e = h;
	uint64_t t0 = ic_iostats_now();

	return exp_read_done(e, len, t0, ic_vdisk_pread_pipe(e->vd, pipe, len, off, wait), true);
}

static int
exp_pwrite(void *h, const void *buf, uint32_t len, uint64_t off, bool fua)
{
	struct srv_export *e = h;
	uint64_t t0 = ic_iostats_now();

	return ic_iostats_done(&e->io, IC_IO_WRITE, len, t0,
			       ic_vdisk_pwrite(e->vd, buf, len, off, fua ? IC_REQ_FUA : 0));
}

static int
exp_trim(void *h, uint32_t len, uint64_t off, bool fua)
{
	struct srv_export *e = h;
	uint64_t t0 = ic_iostats_now();

	return ic_iostats_done(&e->io, IC_IO_TRIM, len, t0,
			       ic_vdisk_trim(e->vd, len, off, fua ? IC_REQ_FUA : 0));
}

static int
exp_zero(void *h, uint32_t len, uint64_t off, bool fua)
{
	struct srv_export *e = h;
	uint64_t t0 = ic_iostats_now();

	return ic_iostats_done(&e->io, IC_IO_ZERO, len, t0,
			       ic_vdisk_zero(e->vd, len, off, fua ? IC_REQ_FUA : 0));
}

static int
exp_cache(void *h, uint32_t len, uint64_t off)
{
	struct srv_export *e = h;
	uint64_t t0 = ic_iostats_now();

	return ic_iostats_done(&e->io, IC_IO_CACHE, len, t0, ic_vdisk_cache(e->vd, len, off));
}

static int
exp_flush(void *h)
{
	struct srv_export *e = h;
	uint64_t t0 = ic_iostats_now();

	return ic_iostats_done(&e->io, IC_IO_FLUSH, 0, t0, ic_vdisk_flush(e->vd));
}

/* ic_extent and ic_nbd_extent describe the same thing; the engine keeps
 * its own type so that it does not depend on the vdisk library. */
struct exp_extents_ctx {
	int (*fn)(void *arg, const struct ic_nbd_extent *ext);
	void *arg;
};

static int
exp_extent(void *arg, const struct ic_extent *e)
{
	struct exp_extents_ctx *ctx = arg;
	struct ic_nbd_extent ne = { e->off, e->len, e->depth, e->zero };

	return ctx->fn(ctx->arg, &ne);
}

static int
exp_extents(void *h, uint64_t off, uint64_t len,
	    int (*fn)(void *arg, const struct ic_nbd_extent *ext), void *arg)
{
	struct exp_extents_ctx ctx = { fn, arg };
	int rc = ic_vdisk_extents(((struct srv_export *)h)->vd, off, len, exp_extent, &ctx);

	return rc > 0 ? 0 : rc;
}

static int
exp_pread_extents(void *h, void *buf, uint32_t len, uint64_t off,
		  int (*fn)(void *arg, const struct ic_nbd_extent *ext), void *arg)
{
	struct srv_export *e = h;
	struct exp_extents_ctx ctx = { fn, arg };
	uint64_t t0 = ic_iostats_now();
	int rc = ic_vdisk_pread_extents(e->vd, buf, len, off, exp_extent, &ctx);

	return ic_iostats_done(&e->io, IC_IO_READ, len, t0, rc > 0 ? 0 : rc);
}

const struct ic_nbd_backend_ops srv_vdisk_ops = {
	.pread = exp_pread,
	.pwrite = exp_pwrite,
	.trim = exp_trim,
	.zero = exp_zero,
	.cache = exp_cache,
	.flush = exp_flush,
	.extents = exp_extents,
	.pread_extents = exp_pread_extents,
	.pread_nowait = exp_pread_nowait,
	.pread_pipe = exp_pread_pipe,
};

/* Open e's vdisk if it is not open yet (claiming ownership when writable);
 * e->mu held. */
static int
exp_open_locked(struct srv_exports *ex, struct srv_export *e)
{
	unsigned flags = ex->open_flags | (e->readonly ? IC_OPEN_RDONLY : 0);
	int rc = 0;

	if (!e->vd) {
		rc = ic_vdisk_open(ex->store, e->image, flags, ex->stack, &e->vd);
		if (rc < 0)
			e->vd = NULL;
	}
	return rc;
}

static int
exp_open(struct srv_exports *ex, struct srv_export *e)
{
	int rc;

	pthread_mutex_lock(&e->mu);
	rc = exp_open_locked(ex, e);
	pthread_mutex_unlock(&e->mu);
	return rc;
}

/* e's vdisk was fenced (released to another process, taken over, its
 * etcd lease lost): with no client of ours left on it, put the fenced
 * handle aside so that the select claims it anew (the current owner's
 * policy decides). Earlier clients still connected would see a new handle
 * under them: refuse until they are gone. */
static int
exp_renew_locked(struct srv_export *e, char *msg, size_t cap)
{
	struct ic_vdisk **grown;
	const char *why = e->vd ? ic_vdisk_fenced_why(e->vd) : NULL;

	if (!why)
		return 0;
	if (e->clients) {
		snprintf(msg, cap, "%s is no longer served here: %s; %u earlier client%s of "
			 "this server %s still connected", e->image, why, e->clients,
			 e->clients == 1 ? "" : "s", e->clients == 1 ? "is" : "are");
		ic_log(IC_LOG_INFO, "nbd: client refused: %s", msg);
		return -EPERM;
	}
	grown = realloc(e->retired, (e->nretired + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	e->retired = grown;
	e->retired[e->nretired++] = e->vd;
	e->vd = NULL;
	atomic_fetch_add_explicit(&e->handoffs, 1, memory_order_relaxed);
	ic_log(IC_LOG_INFO, "nbd: %s was fenced (%s); claiming it again for a new client",
	       e->image, why);
	return 0;
}

/* Refused because another process owns e's vdisk: name it for the client. */
static void
exp_busy(struct srv_exports *ex, struct srv_export *e, char *msg, size_t cap)
{
	struct ic_owner_info info;
	int rc = ic_owner_show(ex->store, e->image, &info);

	if (rc == 0 && info.rec.pid)
		snprintf(msg, cap, "%s is owned by %s (pid %u)", e->image, info.rec.who,
			 info.rec.pid);
	else if (rc < 0) /* etcd out of reach, for one: say so, not "owned" */
		snprintf(msg, cap, "%s could not be claimed, and its owner cannot be read: %s",
			 e->image, strerror(-rc));
	else /* no record names an owner: the claim failed for another reason */
		snprintf(msg, cap, "%s could not be claimed, and no owner is on record (is etcd "
			 "out of reach?)", e->image);
	ic_log(IC_LOG_INFO, "nbd: client refused: %s", msg);
}

static int
exp_select(void *arg, const struct ic_nbd_export *pub, char *msg, size_t cap)
{
	struct srv_exports *ex = arg;
	struct srv_export *e = pub->priv;
	int rc;

	pthread_mutex_lock(&e->mu);
	rc = exp_renew_locked(e, msg, cap);
	if (rc == 0)
		rc = exp_open_locked(ex, e);
	pthread_mutex_unlock(&e->mu);
	if (rc == -EBUSY)
		exp_busy(ex, e, msg, cap);
	else if (rc < 0 && !msg[0])
		snprintf(msg, cap, "%s cannot be opened: %s", e->image, strerror(-rc));
	return rc;
}

void
srv_export_enter(struct srv_export *e)
{
	pthread_mutex_lock(&e->mu);
	e->clients++;
	if (e->vd)
		ic_vdisk_use(e->vd, 1);
	pthread_mutex_unlock(&e->mu);
}

void
srv_export_leave(struct srv_export *e)
{
	pthread_mutex_lock(&e->mu);
	e->clients--;
	if (e->vd)
		ic_vdisk_use(e->vd, -1);
	pthread_mutex_unlock(&e->mu);
}

static uint16_t
exp_tflags(const struct srv_exports *ex, const struct srv_export *e)
{
	uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
		     NBD_FLAG_SEND_DF | NBD_FLAG_SEND_CACHE;
	uint32_t caps = ex->stack ? ic_stack_caps(ex->stack) : IC_CAP_MULTI_CONN | IC_CAP_ZERO;

	if (e->readonly)
		return f | NBD_FLAG_READ_ONLY | NBD_FLAG_CAN_MULTI_CONN;
	f |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES;
	/* Every connection to an export shares one vdisk handle, whose flush
	 * covers all writes, unless a filter keeps writes of its own. */
	if (caps & IC_CAP_MULTI_CONN)
		f |= NBD_FLAG_CAN_MULTI_CONN;
	if (caps & IC_CAP_ZERO)
		f |= NBD_FLAG_SEND_FAST_ZERO;
	return f;
}

/* Names of every image of the store: vdisks and named snapshots. */
static int
exp_list_store(struct ic_store *store, char ***out, int *count)
{
	struct ic_layer_info *layers;
	size_t n, i;
	char **names;
	int k = 0;
	int rc = ic_store_layers(store, &layers, &n);

	if (rc < 0)
		return rc;
	names = calloc(n + 1, sizeof(*names));
	for (i = 0; names && i < n; i++) {
		if (layers[i].name[0])
			names[k++] = strdup(layers[i].name);
	}
	free(layers);
	if (!names)
		return -ENOMEM;
	*out = names;
	*count = k;
	return 0;
}

static int
exp_add(struct srv_exports *ex, struct srv_export *e, struct ic_nbd_export *pub,
	const char *image, bool readonly)
{
	struct ic_image_info info;
	int rc = ic_image_info(ex->store, image, &info);

	if (rc < 0)
		return rc;
	snprintf(e->image, sizeof(e->image), "%s", image);
	e->readonly = readonly || info.snapshot;
	snprintf(e->description, sizeof(e->description), "isocache %s %s, %u layer%s",
		 info.snapshot ? "snapshot" : "vdisk", image, info.depth,
		 info.depth == 1 ? "" : "s");
	free(info.chain);
	pthread_mutex_init(&e->mu, NULL);
	pub->name = e->image;
	pub->description = e->description;
	pub->size = info.size;
	pub->tflags = exp_tflags(ex, e);
	pub->priv = e;
	return 0;
}

int
srv_exports_load(struct srv_exports *ex, char **images, int count, const char *export_name,
		 bool readonly)
{
	char **all = NULL;
	bool named = images != NULL;
	int i, rc = 0;

	if (!named) {
		rc = exp_list_store(ex->store, &all, &count);
		if (rc < 0)
			return rc;
		images = all;
	}
	if (count == 0) {
		ic_log(IC_LOG_ERR, "store %s has no images to serve", ic_store_dir(ex->store));
		rc = -ENOENT;
	}
	if (export_name && count > 1) {
		ic_log(IC_LOG_ERR, "--export-name needs exactly one image, not %d", count);
		rc = -EINVAL;
	}
	ex->items = calloc((size_t)count + 1, sizeof(*ex->items));
	ex->pub = calloc((size_t)count + 1, sizeof(*ex->pub));
	if (rc == 0 && (!ex->items || !ex->pub))
		rc = -ENOMEM;
	for (i = 0; rc == 0 && i < count; i++) {
		rc = exp_add(ex, &ex->items[i], &ex->pub[i], images[i], readonly);
		if (rc == 0)
			ex->count++;
		if (rc == 0 && named)
			rc = exp_open(ex, &ex->items[i]);
	}
	if (rc == 0 && export_name)
		ex->pub[0].name = export_name;
	for (i = 0; all && all[i]; i++)
		free(all[i]);
	free(all);
	ex->catalog = (struct ic_nbd_catalog){ .exports = ex->pub, .count = ex->count,
					       .select = exp_select, .arg = ex };
	return rc;
}

int
srv_exports_close(struct srv_exports *ex)
{
	size_t i;
	int rc = 0;

	ic_metrics_stop(ex->metrics); /* it reads the exports */
	ex->metrics = NULL;
	for (i = 0; i < ex->count; i++) {
		struct srv_export *e = &ex->items[i];
		int r = e->vd ? ic_vdisk_close(e->vd) : 0;

		if (r < 0 && rc == 0)
			rc = r;
		e->vd = NULL;
		for (size_t j = 0; j < e->nretired; j++)
			ic_vdisk_close(e->retired[j]);
		free(e->retired);
		pthread_mutex_destroy(&e->mu);
	}
	free(ex->items);
	free(ex->pub);
	ex->items = NULL;
	ex->pub = NULL;
	ex->count = 0;
	return rc;
}
