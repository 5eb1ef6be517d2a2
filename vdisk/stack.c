/* A filter stack over the layer backend, as the front ends build it:
 * their --filter specs, and the shared cache filter below them by default
 * (docs/ARCHITECTURE.md §8). */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "vdisk/internal.h"

/* Does spec ("stats,cache:wait=0,delay") name the cache filter itself? */
static bool
stack_names_cache(const char *spec)
{
	for (const char *p = spec; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
		size_t len = strcspn(p, ":,");

		if (len == 5 && strncmp(p, "cache", 5) == 0)
			return true;
	}
	return false;
}

int
ic_vdisk_stack_new(const char *spec, bool cache, const char *cache_socket, struct ic_stack **out)
{
	struct ic_stack *stack;
	char cache_spec[160] = "cache";
	int rc = ic_stack_new(&ic_layer_backend_ops, NULL, &stack);

	if (rc)
		return rc;
	if (spec && *spec)
		rc = ic_stack_add(stack, spec, -1);
	if (rc == 0 && cache && !stack_names_cache(spec)) {
		if (cache_socket && *cache_socket)
			snprintf(cache_spec, sizeof(cache_spec), "cache:socket=%s", cache_socket);
		rc = ic_stack_add(stack, cache_spec, -1);
	}
	if (rc) {
		ic_stack_free(stack);
		return rc;
	}
	*out = stack;
	return 0;
}
