/* Serving an owned vdisk (owner/owner.h): on the control socket
 * (control.c) and, across hosts, to release and snapshot requests through
 * etcd (remote.c). */
#include "common/clock.h"
#include "common/log.h"
#include "owner/internal.h"

int
owner_served_snapshot(struct owner_served *s, const char *image)
{
	int rc = s->ops->quiesce(s->arg, ic_now_ms() + IC_RELEASE_TIMEOUT_MS);

	if (rc)
		return rc;
	rc = s->ops->flush(s->arg);
	if (rc == 0)
		rc = s->ops->switch_leaf(s->arg, image);
	s->ops->resume(s->arg);
	return rc;
}

void
owner_serve(struct ic_control *ctl, struct owner_served *s)
{
	/* The watcher's copy of the lease is made before the control sees s:
	 * from then on the control thread may release the claim and stop its
	 * lease. It starts once s is on the control's list: it reads s->ctl
	 * (the release policy) from its own thread. */
	bool remote = s->claim->lease != NULL;
	struct owner_watch *w = remote ? owner_remote_prepare(s) : NULL;

	if (ctl)
		owner_control_add(ctl, s);
	if (remote && owner_remote_serve(s, w))
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
