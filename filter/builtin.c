/* The built-in filters. To add one: define its `const struct ic_filter_ops`
 * in filter/<name>.c, declare it here and list it in the table. */
#include "filter/internal.h"

extern const struct ic_filter_ops ic_filter_stats_ops;
extern const struct ic_filter_ops ic_filter_error_ops;
extern const struct ic_filter_ops ic_filter_delay_ops;
extern const struct ic_filter_ops ic_filter_readahead_ops;
extern const struct ic_filter_ops ic_filter_cache_ops;

const struct ic_filter_ops *const ic_filter_builtins[] = {
	&ic_filter_stats_ops,
	&ic_filter_error_ops,
	&ic_filter_delay_ops,
	&ic_filter_readahead_ops,
	&ic_filter_cache_ops,
	NULL,
};
