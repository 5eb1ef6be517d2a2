/* What a vdisk front end (isocache-nbd, isocache-fuse) holds while it
 * serves, made and let go of in one place: the store, the filter stack
 * every vdisk it opens shares, and the control socket through which other
 * processes ask it for stats, filter changes and releases. Process
 * start-up itself (pid file, background) is common/daemon.h. */
#ifndef IC_FRONTEND_FRONTEND_H
#define IC_FRONTEND_FRONTEND_H

#include <stdbool.h>

#include "isocache/control.h"
#include "isocache/vdisk.h"

struct ic_frontend_config {
	const char *store;            /* the store's directory */
	const char *filters;          /* specs, top first; NULL or "" for none */
	bool cache;                   /* the shared cache filter below them */
	const char *cache_socket;     /* isocached's socket; NULL: the default */
	enum ic_release_policy policy; /* answered to RELEASE requests */
	const char *what;             /* "server", "mount": for messages */
};

struct ic_frontend {
	struct ic_store *store;
	struct ic_stack *stack;  /* NULL when there are no filters */
	struct ic_control *ctl;  /* NULL when it could not be made (warned) */
};

/* Open the store, make the stack and start the control socket, in the
 * process that serves (after ic_daemon_fork: an LMDB environment and
 * threads do not cross a fork). A control socket that cannot be made is
 * only a warning: serving matters more than being asked to let go.
 * Returns 0, or -errno after logging what failed, with nothing held. */
int ic_frontend_open(const struct ic_frontend_config *cfg, struct ic_frontend *fe);

/* Stop the control socket, free the stack and close the store, in that
 * order; call after every vdisk of the store is closed. A zeroed fe is
 * fine. */
void ic_frontend_close(struct ic_frontend *fe);

#endif
