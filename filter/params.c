/* Parameters of a filter in a spec: "key=value" items separated by ':'. */
#include "filter/internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"

const char *const ic_filter_op_names[IC_OP_COUNT] = {
	[IC_OP_CAPS] = "caps",   [IC_OP_PREAD] = "pread", [IC_OP_PWRITE] = "pwrite",
	[IC_OP_TRIM] = "trim",   [IC_OP_ZERO] = "zero",   [IC_OP_CACHE] = "cache",
	[IC_OP_FLUSH] = "flush",
};

int
ic_filter_params_each(const char *filter, const char *params,
		      int (*fn)(void *ctx, const char *key, const char *value), void *ctx)
{
	IC_AUTOFREE char *copy = strdup(params ? params : "");
	char *save = NULL;
	int rc;

	if (!copy)
		return -ENOMEM;
	for (char *item = strtok_r(copy, ":", &save); item; item = strtok_r(NULL, ":", &save)) {
		char *eq = strchr(item, '=');

		if (!eq || eq == item) {
			ic_log(IC_LOG_ERR, "filter %s: parameter \"%s\" is not key=value", filter,
			       item);
			return -EINVAL;
		}
		*eq = '\0';
		rc = fn(ctx, item, eq + 1);
		if (rc)
			return rc;
	}
	return 0;
}

int
ic_filter_op_key(const char *key)
{
	static const struct {
		const char *key;
		enum ic_filter_op op;
	} keys[] = {
		{ "read", IC_OP_PREAD }, { "write", IC_OP_PWRITE }, { "trim", IC_OP_TRIM },
		{ "zero", IC_OP_ZERO },  { "cache", IC_OP_CACHE },  { "flush", IC_OP_FLUSH },
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(key, keys[i].key) == 0)
			return (int)keys[i].op;
	return -ENOENT;
}

int
ic_filter_parse_duration(const char *text, uint64_t *ns)
{
	static const struct {
		const char *unit;
		double ns;
	} units[] = { { "ns", 1 }, { "us", 1e3 }, { "ms", 1e6 }, { "s", 1e9 } };
	char *end;
	double v;

	if (strcmp(text, "0") == 0) {
		*ns = 0;
		return 0;
	}
	if (!(*text >= '0' && *text <= '9'))
		return -EINVAL;
	v = strtod(text, &end);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit) != 0)
			continue;
		v *= units[i].ns;
		if (!isfinite(v) || v > 3600e9) /* an hour is surely a typo */
			return -EINVAL;
		*ns = (uint64_t)v;
		return 0;
	}
	return -EINVAL;
}

int
ic_filter_parse_u64(const char *text, uint64_t *out)
{
	char *end;

	if (!(*text >= '0' && *text <= '9'))
		return -EINVAL;
	errno = 0;
	*out = strtoull(text, &end, 10);
	return errno || *end ? -EINVAL : 0;
}
