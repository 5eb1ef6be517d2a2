/* The registry of filters by name, and the loading of an ops table.
 *
 * An ops table carries the size and ABI version it was built with. A table
 * from an older header is shorter: it is copied into a full-size table with
 * the missing ops zeroed, which the stack treats as NULL (pass-through). A
 * table from a newer ABI is refused, since its ops may mean other things.
 * A spec item naming a path (it holds a '/') is a filter built out of tree:
 * plugin.c loads it and it is registered here under its own name.
 */
#include "filter/internal.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"

#define REGISTRY_MAX 64

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;
static const struct ic_filter_ops *registry[REGISTRY_MAX];
static unsigned registry_n;

/* The smallest table that still names its filter. */
#define REGISTRY_MIN_SIZE (offsetof(struct ic_filter_ops, name) + sizeof(const char *))

static bool
registry_name_ok(const char *name)
{
	if (!name || !*name || strlen(name) > 32)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		      *p == '-'))
			return false;
	return true;
}

int
ic_filter_ops_load(const struct ic_filter_ops *ops, const char *origin, struct ic_filter_ops *out)
{
	if (!ops) {
		ic_log(IC_LOG_ERR, "filter %s: NULL ops table", origin);
		return -EINVAL;
	}
	if (ops->abi_version != IC_FILTER_ABI_VERSION) {
		ic_log(IC_LOG_ERR,
		       "filter %s: refused: built for filter ABI version %u, this isocache speaks "
		       "version %u (rebuild it against this isocache's headers)",
		       origin, ops->abi_version, IC_FILTER_ABI_VERSION);
		return -EINVAL;
	}
	if (ops->size < REGISTRY_MIN_SIZE || ops->size > sizeof(*ops)) {
		ic_log(IC_LOG_ERR, "filter %s: refused: ops table size %u is outside [%zu, %zu]",
		       origin, ops->size, REGISTRY_MIN_SIZE, sizeof(*ops));
		return -EINVAL;
	}
	if (!registry_name_ok(ops->name)) {
		ic_log(IC_LOG_ERR, "filter: bad name \"%s\" (1-32 of a-z 0-9 _ -)",
		       ops->name ? ops->name : "(null)");
		return -EINVAL;
	}
	memset(out, 0, sizeof(*out));
	memcpy(out, ops, ops->size);
	return 0;
}

/* Callers hold registry_mu. origin names where ops came from, for logs. */
static int
registry_add(const struct ic_filter_ops *ops, const char *origin)
{
	struct ic_filter_ops loaded;
	int rc = ic_filter_ops_load(ops, origin, &loaded);

	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < registry_n; i++) {
		if (strcmp(registry[i]->name, ops->name) == 0) {
			ic_log(IC_LOG_ERR, "filter %s: the name \"%s\" is registered already",
			       origin, ops->name);
			return -EEXIST;
		}
	}
	if (registry_n == REGISTRY_MAX) {
		ic_log(IC_LOG_ERR, "filter %s: registry full (%d filters)", ops->name,
		       REGISTRY_MAX);
		return -ENOSPC;
	}
	registry[registry_n++] = ops;
	return 0;
}

static void
registry_add_builtins(void)
{
	IC_LOCK_SCOPE(&registry_mu);
	for (unsigned i = 0; ic_filter_builtins[i]; i++)
		registry_add(ic_filter_builtins[i], ic_filter_builtins[i]->name);
}

int
ic_filter_register(const struct ic_filter_ops *ops)
{
	pthread_once(&registry_once, registry_add_builtins);
	IC_LOCK_SCOPE(&registry_mu);
	return registry_add(ops, ops && ops->size >= REGISTRY_MIN_SIZE && registry_name_ok(ops->name)
					 ? ops->name
					 : "(unnamed)");
}

/* Callers hold registry_mu. */
static const struct ic_filter_ops *
registry_lookup(const char *name)
{
	for (unsigned i = 0; i < registry_n; i++)
		if (strcmp(registry[i]->name, name) == 0)
			return registry[i];
	return NULL;
}

const struct ic_filter_ops *
ic_filter_find(const char *name)
{
	pthread_once(&registry_once, registry_add_builtins);
	IC_LOCK_SCOPE(&registry_mu);
	return registry_lookup(name);
}

/* A plugin loaded twice (two specs, or add after rm) is the same object,
 * so the same table: that is found, not registered again. */
int
ic_filter_resolve(const char *name_or_path, const struct ic_filter_ops **out)
{
	const struct ic_filter_ops *ops;
	int rc;

	if (!strchr(name_or_path, '/')) {
		*out = ic_filter_find(name_or_path);
		if (*out)
			return 0;
		ic_log(IC_LOG_ERR, "filter spec: no filter called \"%s\"", name_or_path);
		return -ENOENT;
	}
	/* Loaded outside the lock: the object's constructors may register. */
	rc = ic_filter_plugin_open(name_or_path, &ops);
	if (rc < 0)
		return rc;
	pthread_once(&registry_once, registry_add_builtins);
	IC_LOCK_SCOPE(&registry_mu);
	for (unsigned i = 0; i < registry_n; i++) {
		if (registry[i] == ops) {
			*out = ops;
			return 0;
		}
	}
	rc = registry_add(ops, name_or_path);
	if (rc < 0)
		return rc;
	*out = ops;
	return 0;
}
