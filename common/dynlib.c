/* ic_dynlib_load (common/dynlib.h). */
#include "common/dynlib.h"

#include <dlfcn.h>
#include <errno.h>

#include "common/log.h"

int
ic_dynlib_load(const char *what, const char *soname, const struct ic_dynsym *syms, size_t n)
{
	void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);

	if (!lib) {
		ic_log(IC_LOG_ERR, "%s: cannot load %s: %s", what, soname, dlerror());
		return -ELIBACC;
	}
	for (size_t i = 0; i < n; i++) {
		*syms[i].fn = dlsym(lib, syms[i].name);
		if (!*syms[i].fn) {
			ic_log(IC_LOG_ERR, "%s: %s has no %s", what, soname, syms[i].name);
			return -ELIBACC;
		}
	}
	return 0;
}
