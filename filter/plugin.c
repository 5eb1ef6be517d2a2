/* Filters built out of tree: a shared object whose IC_REGISTER_FILTER
 * entry point returns its ops table (include/isocache/filter.h).
 *
 * The object is opened RTLD_LOCAL, so its own symbols cannot capture those
 * of another plugin, and RTLD_NOW, so a missing symbol is a refusal here
 * rather than a crash on the first I/O. Its calls into the stack
 * (ic_next_*) bind to the front end's copy, which the executables export
 * (cmake/isocache.sym). It is never closed: a filter removed from a stack
 * may be added again, and the table stays registered under its name.
 */
#include "filter/internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

typedef const struct ic_filter_ops *(*plugin_entry_fn)(void);

int
ic_filter_plugin_open(const char *path, const struct ic_filter_ops **out)
{
	plugin_entry_fn entry;
	void *so;

	if (access(path, R_OK) < 0) {
		int rc = -errno;

		ic_log(IC_LOG_ERR, "filter %s: cannot read it: %s", path, strerror(-rc));
		return rc;
	}
	so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!so) {
		ic_log(IC_LOG_ERR, "filter %s: cannot load it: %s", path, dlerror());
		return -EINVAL;
	}
	*(void **)&entry = dlsym(so, IC_FILTER_PLUGIN_ENTRY);
	if (!entry) {
		ic_log(IC_LOG_ERR, "filter %s: refused: no %s() entry point (IC_REGISTER_FILTER)",
		       path, IC_FILTER_PLUGIN_ENTRY);
		dlclose(so);
		return -EINVAL;
	}
	*out = entry();
	return 0;
}
