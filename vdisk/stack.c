/* A filter stack over the layer backend, as the front ends build it. */
#include "common/log.h"
#include "vdisk/internal.h"

int
ic_vdisk_stack_new(const char *spec, struct ic_stack **out)
{
	struct ic_stack *stack;
	int rc = ic_stack_new(&ic_layer_backend_ops, NULL, &stack);

	if (rc)
		return rc;
	if (spec && *spec) {
		rc = ic_stack_add(stack, spec, -1);
		if (rc) {
			ic_stack_free(stack);
			return rc;
		}
	}
	*out = stack;
	return 0;
}
