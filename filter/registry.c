/* The registry of filters by name, and the loading of an ops table.
 *
 * An ops table carries the size and ABI version it was built with. A table
 * from an older header is shorter: it is copied into a full-size table with
 * the missing ops zeroed, which the stack treats as NULL (pass-through). A
 * table from a newer ABI is refused, since its ops may mean other things.
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
ic_filter_ops_load(const struct ic_filter_ops *ops, struct ic_filter_ops *out)
{
	if (!ops) {
		ic_log(IC_LOG_ERR, "filter: NULL ops table");
		return -EINVAL;
	}
	if (ops->abi_version != IC_FILTER_ABI_VERSION) {
		ic_log(IC_LOG_ERR, "filter: ops table has ABI version %u, this stack speaks %u",
		       ops->abi_version, IC_FILTER_ABI_VERSION);
		return -EINVAL;
	}
	if (ops->size < REGISTRY_MIN_SIZE || ops->size > sizeof(*ops)) {
		ic_log(IC_LOG_ERR, "filter: ops table size %u is outside [%zu, %zu]", ops->size,
		       REGISTRY_MIN_SIZE, sizeof(*ops));
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

/* Callers hold registry_mu. */
static int
registry_add(const struct ic_filter_ops *ops)
{
	struct ic_filter_ops loaded;
	int rc = ic_filter_ops_load(ops, &loaded);

	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < registry_n; i++) {
		if (strcmp(registry[i]->name, ops->name) == 0) {
			ic_log(IC_LOG_ERR, "filter %s: already registered", ops->name);
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
		registry_add(ic_filter_builtins[i]);
}

int
ic_filter_register(const struct ic_filter_ops *ops)
{
	pthread_once(&registry_once, registry_add_builtins);
	IC_LOCK_SCOPE(&registry_mu);
	return registry_add(ops);
}

const struct ic_filter_ops *
ic_filter_find(const char *name)
{
	pthread_once(&registry_once, registry_add_builtins);
	IC_LOCK_SCOPE(&registry_mu);
	for (unsigned i = 0; i < registry_n; i++)
		if (strcmp(registry[i]->name, name) == 0)
			return registry[i];
	return NULL;
}
