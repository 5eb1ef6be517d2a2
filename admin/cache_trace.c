/* cache trace: the boot trace isocached keeps for a frozen layer
 * (docs/CACHED.md, "Boot traces"): show what it holds, or clear it so the
 * daemon records a new one at the layer's next first registration.
 *
 * Traces are files of the daemon's trace directory ($ISOCACHE_TRACE_DIR,
 * else the default), named for the layer's uuid; this reads them directly,
 * without the daemon, and decodes them with the daemon's own decoder, so a
 * damaged or huge file is refused here the same way. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin/json.h"
#include "common/size.h"
#include "common/uuid.h"
#include "isocache/cached_trace.h"

/* Why a trace file could not be used, in words. */
static void
trace_fail(const char *image, const char *dir, int rc)
{
	if (rc == -ENOENT)
		admin_fail(image, "no trace recorded (in %s)", dir);
	else if (rc == -EFBIG || rc == -EUCLEAN || rc == -EPROTONOSUPPORT)
		admin_fail(image, "trace file refused: %s (in %s)", ic_cached_trace_strerror(rc), dir);
	else
		admin_fail(image, "cannot read its trace in %s: %s", dir, strerror(-rc));
}

static int
trace_show(const char *image, const struct ic_cached_trace *t, bool current, bool json)
{
	char when[32], size[32], uuid[IC_UUID_STRLEN];
	time_t rec = (time_t)t->recorded;
	struct tm tm;

	ic_uuid_format(t->uuid, uuid);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&rec, &tm));
	if (json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "image", json_object_new_string(image));
		json_object_object_add(o, "layer", json_object_new_string(uuid));
		json_object_object_add(o, "blocks", json_object_new_uint64(t->blocks));
		json_object_object_add(o, "ranges", json_object_new_uint64(t->nruns));
		json_object_object_add(o, "bytes", json_object_new_uint64(t->blocks * 4096));
		json_object_object_add(o, "recorded", json_object_new_string(when));
		json_object_object_add(o, "current", json_object_new_boolean(current));
		return admin_json_print(o) ? 1 : 0;
	}
	printf("%s: layer %s\n", image, uuid);
	printf("  blocks    %" PRIu64 " (%s) in %u ranges\n", t->blocks,
	       ic_size_format(t->blocks * 4096, size, sizeof(size)), t->nruns);
	printf("  recorded  %s\n", when);
	printf("  state     %s\n", current ? "current: replayed at the layer's next cold start"
				       : "stale: recorded for another version of the layer file; "
					 "ignored");
	return 0;
}

/* The frozen layer NAME@SNAP names, open; 1 after saying why not. */
static int
trace_layer(struct ic_store *store, const char *image, struct ic_vdisk **vd,
	    const struct ic_layer **l)
{
	if (!strchr(image, '@'))
		return admin_fail(image, "a trace belongs to a snapshot (NAME@SNAP): only frozen "
				  "layers are cached");
	if (ic_vdisk_open(store, image, IC_OPEN_RDONLY, NULL, vd))
		return 1;
	*l = ic_vdisk_layer(*vd, 0);
	if (!*l || !(*l)->frozen) {
		ic_vdisk_close(*vd);
		return admin_fail(image, "not a frozen layer");
	}
	return 0;
}

int
admin_cache_trace(struct ic_store *store, const char *action, const char *image, bool json)
{
	const char *dir = ic_cached_trace_dir(NULL);
	const struct ic_layer *l = NULL;
	struct ic_cached_trace t;
	struct ic_vdisk *vd = NULL;
	char path[4096];
	struct stat sb;
	int rc;

	if (trace_layer(store, image, &vd, &l))
		return 1;
	if (strcmp(action, "show") == 0) {
		rc = fstat(l->fd, &sb) < 0 ? -errno : ic_cached_trace_load(dir, l->uuid, &t);
		if (rc == 0) {
			rc = trace_show(image, &t, ic_cached_trace_matches(&t, l->uuid, &sb), json);
			ic_cached_trace_free(&t);
		} else {
			trace_fail(image, dir, rc);
		}
	} else {
		rc = ic_cached_trace_path(dir, l->uuid, path, sizeof(path));
		if (rc == 0 && unlink(path) < 0)
			rc = -errno;
		if (rc == 0)
			printf("%s: trace cleared; isocached records a new one the next time it "
			       "first sees the layer\n", image);
		else
			rc = admin_fail(image, "cannot clear its trace: %s",
					rc == -ENOENT ? "no trace recorded" : strerror(-rc));
	}
	ic_vdisk_close(vd);
	return rc ? 1 : 0;
}
