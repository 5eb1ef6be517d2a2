/* Serving an owned vdisk (owner/owner.h): on the control socket
 * (control.c) and, across hosts, to release requests through etcd
 * (remote.c). */
#include "common/log.h"
#include "owner/internal.h"

void
owner_serve(struct ic_control *ctl, struct owner_served *s)
{
	/* On the control's list first: the etcd watcher reads s->ctl (the
	 * release policy) from its own thread. */
	if (ctl)
		owner_control_add(ctl, s);
	if (s->claim->lease && owner_remote_serve(s))
		ic_log(IC_LOG_WARN, "%s: release requests from other hosts will go unanswered; "
		       "they wait for its lease", s->name);
}

void
owner_unserve(struct owner_served *s)
{
	/* Waits for a release through etcd in progress. */
	owner_remote_unserve(s);
	owner_control_remove(s);
}
