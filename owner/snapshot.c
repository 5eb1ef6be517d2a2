/* A live snapshot of a served vdisk, asked on the control socket
 * (control.c) or through etcd (remote.c): both take it the same way, and
 * one at a time with any release of it. */
#include <errno.h>

#include "common/clock.h"
#include "owner/internal.h"

bool
owner_served_begin(struct owner_served *s)
{
	return !atomic_exchange(&s->busy, true);
}

void
owner_served_end(struct owner_served *s)
{
	atomic_store(&s->busy, false);
}

int
owner_served_snapshot(struct owner_served *s, const char *image)
{
	int rc;

	if (!owner_served_begin(s))
		return -EBUSY;
	rc = s->ops->quiesce(s->arg, ic_now_ms() + IC_RELEASE_TIMEOUT_MS);
	if (rc == 0) {
		rc = s->ops->flush(s->arg);
		if (rc == 0)
			rc = s->ops->switch_leaf(s->arg, image);
		s->ops->resume(s->arg);
	}
	owner_served_end(s);
	return rc;
}
