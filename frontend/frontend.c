/* The store, filter stack and control socket of a front end (frontend.h). */
#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "frontend/frontend.h"

int
ic_frontend_open(const struct ic_frontend_config *cfg, struct ic_frontend *fe)
{
	struct ic_control_config cc = { .policy = cfg->policy };
	bool filters = cfg->filters && cfg->filters[0];
	int rc;

	*fe = (struct ic_frontend){ 0 };
	rc = ic_store_open(cfg->store, &fe->store);
	if (rc < 0) {
		ic_log(IC_LOG_ERR, "store %s: %s", cfg->store, strerror(-rc));
		return rc;
	}
	if (filters || cfg->cache) {
		rc = ic_vdisk_stack_new(cfg->filters, cfg->cache, cfg->cache_socket, &fe->stack);
		if (rc < 0) {
			ic_frontend_close(fe);
			return rc;
		}
	}
	cc.stack = fe->stack;
	if (ic_control_start(fe->store, &cc, &fe->ctl))
		ic_log(IC_LOG_WARN, "no control socket: other processes cannot ask this %s to "
		       "release a vdisk", cfg->what);
	return 0;
}

void
ic_frontend_close(struct ic_frontend *fe)
{
	ic_control_stop(fe->ctl);
	fe->ctl = NULL;
	if (fe->stack)
		ic_stack_free(fe->stack);
	fe->stack = NULL;
	if (fe->store)
		ic_store_close(fe->store);
	fe->store = NULL;
}
