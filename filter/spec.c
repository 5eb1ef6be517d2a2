/* Spec strings: "stats,delay:read=200us,cache" names filters top first,
 * separated by ','; each may carry ":key=value" parameters for its create().
 * A name with a '/' is the path of a filter built out of tree
 * ("/usr/lib/isocache/ro.so:errno=EPERM"). */
#include "filter/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"

/* More filters than this in one spec is a mistake, not a stack. */
#define SPEC_MAX 32

void
ic_filter_spec_free(struct stack_filter *f)
{
	if (!f)
		return;
	if (f->ops.destroy)
		f->ops.destroy(f->inst);
	free(f->spec);
	free(f);
}

/* Make one filter from "name" or "name:params". */
static int
spec_item(const char *item, struct stack_filter **out)
{
	IC_AUTOFREE struct stack_filter *f = calloc(1, sizeof(*f));
	IC_AUTOFREE char *name = strdup(item);
	const struct ic_filter_ops *ops;
	const char *params = "";
	char *colon;
	int rc;

	if (!f || !name)
		return -ENOMEM;
	colon = strchr(name, ':');
	if (colon) {
		*colon = '\0';
		params = colon + 1;
	}
	rc = ic_filter_resolve(name, &ops);
	if (rc < 0)
		return rc;
	rc = ic_filter_ops_load(ops, name, &f->ops);
	if (rc < 0)
		return rc;
	if (!f->ops.create && *params) {
		ic_log(IC_LOG_ERR, "filter %s: takes no parameters (got \"%s\")", name, params);
		return -EINVAL;
	}
	f->spec = strdup(item);
	if (!f->spec)
		return -ENOMEM;
	if (f->ops.create) {
		rc = f->ops.create(params, &f->inst);
		if (rc < 0) {
			ic_log(IC_LOG_ERR, "filter %s: cannot create from \"%s\": %s", name, params,
			       strerror(-rc));
			free(f->spec);
			return rc;
		}
	}
	*out = ic_steal(&f);
	return 0;
}

int
ic_filter_spec_parse(const char *spec, struct stack_filter ***out, unsigned *n)
{
	IC_AUTOFREE struct stack_filter **fs = calloc(SPEC_MAX, sizeof(*fs));
	IC_AUTOFREE char *copy = spec ? strdup(spec) : NULL;
	unsigned k = 0;
	char *item = copy;
	int rc = 0;

	if (!spec || !*spec) {
		ic_log(IC_LOG_ERR, "filter spec: empty");
		return -EINVAL;
	}
	if (!fs || !copy)
		return -ENOMEM;
	while (item && rc == 0) {
		char *comma = strchr(item, ',');

		if (comma)
			*comma = '\0';
		if (!*item) {
			ic_log(IC_LOG_ERR, "filter spec \"%s\": empty filter name", spec);
			rc = -EINVAL;
		} else if (k == SPEC_MAX) {
			ic_log(IC_LOG_ERR, "filter spec \"%s\": more than %d filters", spec,
			       SPEC_MAX);
			rc = -EINVAL;
		} else {
			rc = spec_item(item, &fs[k]);
			k += rc == 0;
		}
		item = comma ? comma + 1 : NULL;
	}
	if (rc < 0) {
		while (k)
			ic_filter_spec_free(fs[--k]);
		return rc;
	}
	*out = ic_steal(&fs);
	*n = k;
	return 0;
}
