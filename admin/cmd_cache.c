/* cache: the host's cache daemon (isocached) as seen from a store: its
 * counters per frozen layer, warming a chain before a boot storm, and
 * dropping what it holds. Layers are registered with the daemon by their
 * open files, so only layers the caller can open are shown or touched. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin/json.h"
#include "common/size.h"
#include "isocache/cached.h"
#include "isocache/cached_trace.h"

#define CACHE_CHUNK (IC_CACHED_MAX_BLOCKS * IC_CACHED_BLOCK)

static struct ic_cached_client *
cache_connect(void)
{
	struct ic_cached_client *c;
	const char *path = ic_cached_socket_path(NULL);
	int rc = ic_cached_connect(path, 0, &c);

	if (rc) {
		admin_fail(path, "cannot reach isocached: %s (is it running? set ISOCACHE_SOCKET)",
			   strerror(-rc));
		return NULL;
	}
	return c;
}

/* Register layer `depth` of vd (a frozen layer) and return its handle. */
static int
cache_register(struct ic_cached_client *c, struct ic_vdisk *vd, unsigned depth, uint32_t *handle)
{
	const struct ic_layer *l = ic_vdisk_layer(vd, depth);
	int rc = l ? ic_cached_register(c, l->fd, handle, NULL, NULL) : -ENOENT;

	if (rc)
		admin_fail("cache", "layer %" PRIu64 " refused: %s", l ? l->disk_id : 0,
			   strerror(-rc));
	return rc;
}

/* One layer's counters as a JSON object. */
static struct json_object *
cache_stats_json(const char *name, const uint64_t *s, double ratio, uint64_t saved)
{
	static const struct {
		const char *key;
		enum ic_cached_stat stat;
	} counters[] = {
		{ "lookups", IC_CACHED_STAT_LOOKUPS },
		{ "hits", IC_CACHED_STAT_HITS },
		{ "misses", IC_CACHED_STAT_MISSES },
		{ "fills", IC_CACHED_STAT_FILLS },
		{ "joins", IC_CACHED_STAT_JOINS },
		{ "evictions", IC_CACHED_STAT_EVICTIONS },
		{ "bytes_served", IC_CACHED_STAT_BYTES_SERVED },
		{ "backing_bytes", IC_CACHED_STAT_BACKING_BYTES },
		{ "blocks", IC_CACHED_STAT_BLOCKS },
		{ "l2_hits", IC_CACHED_STAT_L2_HITS },
		{ "l2_misses", IC_CACHED_STAT_L2_MISSES },
		{ "l2_bytes_read", IC_CACHED_STAT_L2_BYTES_READ },
		{ "l2_bytes_written", IC_CACHED_STAT_L2_BYTES_WRITTEN },
		{ "l2_csum_fails", IC_CACHED_STAT_L2_CSUM_FAILS },
		{ "l2_evictions", IC_CACHED_STAT_L2_EVICTIONS },
		{ "l2_blocks", IC_CACHED_STAT_L2_BLOCKS },
		{ "l2_limit", IC_CACHED_STAT_L2_LIMIT },
		{ "dedup_bytes", IC_CACHED_STAT_DEDUP_BYTES },
		{ "trace_fills", IC_CACHED_STAT_TRACE_FILLS },
		{ "trace_blocks", IC_CACHED_STAT_TRACE_BLOCKS },
		{ "readahead_fills", IC_CACHED_STAT_AHEAD_FILLS },
		{ "readahead_blocks", IC_CACHED_STAT_AHEAD_BLOCKS },
	};
	struct json_object *o = json_object_new_object();
	char text[16];

	json_object_object_add(o, "layer", json_object_new_string(name));
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
		json_object_object_add(o, counters[i].key,
				       json_object_new_uint64(s[counters[i].stat]));
	snprintf(text, sizeof(text), "%.4f", ratio / 100);
	json_object_object_add(o, "hit_ratio", json_object_new_double_s(ratio / 100, text));
	json_object_object_add(o, "backing_saved", json_object_new_uint64(saved));
	return o;
}

/* One layer's counters: an element of list (JSON), or else a row of table. */
static void
cache_stats_row(struct admin_table *table, struct json_object *list, const char *name,
		const uint64_t *s)
{
	uint64_t served = s[IC_CACHED_STAT_BYTES_SERVED], backing = s[IC_CACHED_STAT_BACKING_BYTES];
	uint64_t saved = served > backing ? served - backing : 0;
	double ratio = s[IC_CACHED_STAT_LOOKUPS] ? 100.0 * (double)s[IC_CACHED_STAT_HITS] /
							 (double)s[IC_CACHED_STAT_LOOKUPS]
						 : 0;
	char b1[32], b2[32], b3[32], b4[32], lookups[24], pct[16], fills[24], joins[24], l2hits[24],
		l2bad[24];

	if (list) {
		json_object_array_add(list, cache_stats_json(name, s, ratio, saved));
		return;
	}
	snprintf(lookups, sizeof(lookups), "%" PRIu64, s[IC_CACHED_STAT_LOOKUPS]);
	snprintf(pct, sizeof(pct), "%.1f%%", ratio);
	snprintf(fills, sizeof(fills), "%" PRIu64, s[IC_CACHED_STAT_FILLS]);
	snprintf(joins, sizeof(joins), "%" PRIu64, s[IC_CACHED_STAT_JOINS]);
	snprintf(l2hits, sizeof(l2hits), "%" PRIu64, s[IC_CACHED_STAT_L2_HITS]);
	snprintf(l2bad, sizeof(l2bad), "%" PRIu64, s[IC_CACHED_STAT_L2_CSUM_FAILS]);
	admin_table_row(table, name, lookups, pct, fills, joins, ic_size_format(served, b1, sizeof(b1)),
			ic_size_format(backing, b2, sizeof(b2)), ic_size_format(saved, b3, sizeof(b3)),
			l2hits, l2bad, ic_size_format(s[IC_CACHED_STAT_DEDUP_BYTES], b4, sizeof(b4)));
}

static int
cache_stats_once(struct ic_store *store, bool json)
{
	struct ic_cached_client *c = cache_connect();
	uint64_t s[IC_CACHED_STAT_COUNT];
	struct ic_layer_info *v;
	size_t n;
	struct admin_table *table = NULL;
	struct json_object *list = NULL;
	int rc = 0;

	if (!c)
		return 1;
	if (ic_store_layers(store, &v, &n)) {
		ic_cached_disconnect(c);
		return 1;
	}
	if (json)
		list = json_object_new_array();
	else
		table = admin_table_new(11, "lrrrrrrrrrr", "LAYER", "LOOKUPS", "HITS", "FILLS", "JOINS",
					"SERVED", "BACKING", "SAVED", "L2HITS", "L2BAD", "DEDUP");
	if (!list && !table)
		rc = admin_fail("cache stats", "out of memory");
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct ic_vdisk *vd;
		uint32_t h;

		if (!v[i].frozen || ic_vdisk_open(store, v[i].name, IC_OPEN_RDONLY, NULL, &vd))
			continue;
		if (cache_register(c, vd, 0, &h) == 0 && ic_cached_stats(c, h, s) == 0)
			cache_stats_row(table, list, v[i].name, s);
		ic_vdisk_close(vd);
	}
	if (rc == 0 && (rc = ic_cached_stats(c, IC_CACHED_HANDLE_ALL, s)) == 0)
		cache_stats_row(table, list, "(daemon total)", s);
	else if (rc < 0)
		admin_fail("cache stats", "%s", strerror(-rc));
	if (list && admin_json_print(list))
		rc = 1;
	else if (table && admin_table_print(table, stdout, "") < 0)
		rc = admin_fail("cache stats", "out of memory");
	admin_table_free(table);
	free(v);
	ic_cached_disconnect(c);
	return rc ? 1 : 0;
}

int
admin_cache_stats(struct ic_store *store, bool json, bool watch)
{
	int rc;

	while ((rc = cache_stats_once(store, json)) == 0 && watch) {
		fflush(stdout);
		sleep(1);
		if (isatty(STDOUT_FILENO))
			printf("\033[H\033[J");
	}
	return rc;
}

struct cache_warm {
	struct ic_cached_client *c;
	struct ic_vdisk *vd;
	uint32_t handle[64]; /* per depth, once registered */
	bool registered[64];
	uint64_t size, done;
};

static int
cache_warm_extent(void *arg, const struct ic_extent *ext)
{
	struct cache_warm *w = arg;
	uint64_t first, last;
	int rc = 0;

	if (ext->depth < 0) {
		admin_progress_advance(ext->len);
		return 0;
	}
	if (ext->depth >= 64)
		return admin_fail("cache warm", "chains deeper than 64 layers are not warmed");
	if (!w->registered[ext->depth]) {
		if (cache_register(w->c, w->vd, (unsigned)ext->depth, &w->handle[ext->depth]))
			return 1;
		w->registered[ext->depth] = true;
	}
	first = ext->off / IC_CACHED_BLOCK;
	last = (ext->off + ext->len + IC_CACHED_BLOCK - 1) / IC_CACHED_BLOCK;
	for (uint64_t b = first; b < last && rc == 0; b += IC_CACHED_MAX_BLOCKS) {
		uint32_t nb = last - b < IC_CACHED_MAX_BLOCKS ? (uint32_t)(last - b)
							      : IC_CACHED_MAX_BLOCKS;
		uint64_t from = b * IC_CACHED_BLOCK, to = (b + nb) * IC_CACHED_BLOCK;

		rc = ic_cached_prefetch(w->c, w->handle[ext->depth], b, nb, NULL);
		w->done += (uint64_t)nb * IC_CACHED_BLOCK;
		/* Of the image: blocks overlapping the extent's ends count once. */
		admin_progress_advance((to < ext->off + ext->len ? to : ext->off + ext->len) -
				       (from > ext->off ? from : ext->off));
	}
	if (rc)
		return admin_fail("cache warm", "prefetch: %s", strerror(-rc));
	return 0;
}

static int
cache_warm(struct ic_store *store, const char *image, const struct admin_opts *opts)
{
	struct cache_warm w = { 0 };
	int rc;

	if (!strchr(image, '@'))
		return admin_fail(image, "warm a snapshot (NAME@SNAP): only frozen layers are cached");
	w.c = cache_connect();
	if (!w.c)
		return 1;
	if (ic_vdisk_open(store, image, IC_OPEN_RDONLY, NULL, &w.vd)) {
		ic_cached_disconnect(w.c);
		return 1;
	}
	w.size = ic_vdisk_size(w.vd);
	admin_progress_begin(opts, w.size);
	rc = admin_progress_end(ic_vdisk_extents(w.vd, 0, w.size, cache_warm_extent, &w) ? 1 : 0);
	if (rc == 0 && !opts->json)
		printf("%s: asked isocached to load %" PRIu64 " bytes\n", image, w.done);
	ic_vdisk_close(w.vd);
	ic_cached_disconnect(w.c);
	return rc;
}

/* Drop every layer of image's chain, or every frozen layer of the store. */
static int
cache_drop(struct ic_store *store, const char *image)
{
	struct ic_cached_client *c = cache_connect();
	struct ic_layer_info *v = NULL;
	uint64_t total = 0, dropped;
	size_t n = 0;
	int rc = 0;

	if (!c)
		return 1;
	if (!image && ic_store_layers(store, &v, &n)) {
		ic_cached_disconnect(c);
		return 1;
	}
	for (size_t i = 0; i < (image ? 1 : n) && rc == 0; i++) {
		const char *name = image ? image : v[i].name;
		struct ic_vdisk *vd;
		uint32_t h;

		if (!image && !v[i].frozen)
			continue;
		if (ic_vdisk_open(store, name, IC_OPEN_RDONLY, NULL, &vd)) {
			rc = 1;
			break;
		}
		for (unsigned d = 0; ic_vdisk_layer(vd, d) && rc == 0; d++) {
			if (!ic_vdisk_layer(vd, d)->frozen)
				continue;
			rc = cache_register(c, vd, d, &h);
			if (rc == 0)
				rc = ic_cached_drop(c, h, &dropped);
			if (rc == -EPERM)
				admin_fail(name, "layer %" PRIu64 " is not yours to drop: only root "
					   "and the owner of its file may", ic_vdisk_layer(vd, d)->disk_id);
			else if (rc < 0)
				admin_fail(name, "drop: %s", strerror(-rc));
			if (rc == 0)
				total += dropped;
		}
		ic_vdisk_close(vd);
	}
	if (rc == 0)
		printf("dropped %" PRIu64 " cached blocks\n", total);
	free(v);
	ic_cached_disconnect(c);
	return rc ? 1 : 0;
}

static int
run_cache(struct ic_store *store, const char *dir, int argc, char **argv)
{
	struct admin_opts opts = { 0 };
	int code, first = admin_parse(&admin_cmd_cache, argc, argv, &opts, 1, 3, &code);
	const char *action, *image, *extra;

	(void)dir;
	if (first < 0)
		return code;
	action = argv[first];
	image = first + 1 < argc ? argv[first + 1] : NULL;
	extra = first + 2 < argc ? argv[first + 2] : NULL;
	if (strcmp(action, "trace") == 0 && image && extra &&
	    (strcmp(image, "show") == 0 || strcmp(image, "clear") == 0))
		return admin_only(&opts, strcmp(image, "show") == 0 ? ADMIN_OPT_JSON : 0,
				  "cache trace")
			       ? 1
			       : admin_cache_trace(store, image, extra, opts.json);
	if (extra)
		return admin_fail("cache", "expected %s (see --help)", admin_cmd_cache.args);
	if (strcmp(action, "stats") == 0 && !image)
		return admin_only(&opts, ADMIN_OPT_JSON | ADMIN_OPT_WATCH, "cache stats")
			       ? 1
			       : admin_cache_stats(store, opts.json, opts.watch);
	if (strcmp(action, "warm") == 0 && image)
		return admin_only(&opts, ADMIN_OPT_JSON | ADMIN_OPT_PROGRESS, "cache warm")
			       ? 1
			       : cache_warm(store, image, &opts);
	if (strcmp(action, "drop") == 0)
		return admin_only(&opts, 0, "cache drop") ? 1 : cache_drop(store, image);
	return admin_fail("cache", "expected %s (see --help)", admin_cmd_cache.args);
}

const struct admin_cmd admin_cmd_cache = {
	"cache",
	"stats [--json] [--watch] | warm NAME@SNAP [-p|--progress] [--json] | drop [IMAGE] | "
	"trace show [--json] NAME@SNAP | trace clear NAME@SNAP",
	"Show, warm or empty the host's shared cache (isocached), or its boot traces",
	"stats    the daemon's counters for each frozen layer of this store, and its\n"
	"         totals: lookups, hit ratio, fills, singleflight joins, bytes served,\n"
	"         bytes read from layer files, and the backing reads saved\n"
	"         (served - backing); with an L2 tier (isocached --l2), blocks read\n"
	"         from it (L2HITS) and its checksum failures (L2BAD); the bytes of\n"
	"         cached blocks held once for several layers, or twice in one (DEDUP:\n"
	"         memory the cache did not need). --json has every counter.\n"
	"         --watch repeats every second.\n"
	"warm     load every layer of NAME@SNAP's chain before a boot storm: asks\n"
	"         isocached to read it, and returns once every read is asked for.\n"
	"         -p (--progress) shows a bar on a terminal; --json prints the\n"
	"         progress and the end as JSON lines on stdout, not the summary.\n"
	"drop     evict the layers of IMAGE's chain, or every frozen layer of the store\n"
	"         (from RAM and L2); only root and the owner of a layer's file may.\n"
	"trace show   the boot trace isocached recorded for NAME@SNAP's layer: the\n"
	"         blocks its readers asked for first, as ranges, and when; whether\n"
	"         it is current (replayed at the layer's next cold start) or stale.\n"
	"trace clear  delete it: the daemon records a new one when it next first\n"
	"         sees the layer. Traces are files of $ISOCACHE_TRACE_DIR, else\n"
	"         " IC_CACHED_TRACE_DEFAULT_DIR " (isocached --trace-dir).\n"
	"\n"
	"The daemon is found at $ISOCACHE_SOCKET, else " IC_CACHED_DEFAULT_SOCKET ". Only\n"
	"layers whose files the caller can open are shown or touched.\n",
	true, run_cache, ADMIN_OPT_JSON | ADMIN_OPT_WATCH | ADMIN_OPT_PROGRESS,
};
