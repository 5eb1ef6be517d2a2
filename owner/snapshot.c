/* A live snapshot of a served vdisk, asked on the control socket
 * (control.c) or through etcd (remote.c): both take it the same way. */
#include "common/clock.h"
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
