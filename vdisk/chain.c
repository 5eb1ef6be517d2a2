/* The chain of layer records under a vdisk's top layer, top first, as an
 * open and a snapshot's listing read it from the metadata. */
#include <errno.h>
#include <stdlib.h>

#include "common/log.h"
#include "vdisk/internal.h"

#define VD_MAX_DEPTH 4096 /* a longer chain is a cycle in damaged metadata */

int
vd_chain(struct ic_meta_txn *txn, const struct ic_disk_rec *top, struct ic_disk_rec **out,
	 unsigned *depth)
{
	struct ic_disk_rec *chain = NULL;
	unsigned n = 0;
	uint64_t next = top->id;
	int rc = 0;

	while (next) {
		struct ic_disk_rec *grown;

		if (n == VD_MAX_DEPTH) {
			ic_log(IC_LOG_ERR, "disk %llu: chain deeper than %d layers (damaged metadata)",
			       (unsigned long long)top->id, VD_MAX_DEPTH);
			rc = -EUCLEAN;
			break;
		}
		grown = realloc(chain, (n + 1) * sizeof(*chain));
		if (!grown) {
			rc = -ENOMEM;
			break;
		}
		chain = grown;
		rc = ic_meta_disk_get(txn, next, &chain[n]);
		if (rc == -ENOENT) {
			ic_log(IC_LOG_ERR, "disk %llu: parent %llu is missing (damaged metadata)",
			       (unsigned long long)(n ? chain[n - 1].id : top->id),
			       (unsigned long long)next);
			rc = -EUCLEAN;
		}
		if (rc)
			break;
		if (n > 0 && !(chain[n].flags & IC_DISK_FROZEN)) {
			ic_log(IC_LOG_ERR, "disk %llu: parent %llu is not frozen (damaged metadata)",
			       (unsigned long long)chain[n - 1].id, (unsigned long long)next);
			rc = -EUCLEAN;
			break;
		}
		next = chain[n++].parent;
	}
	if (rc) {
		free(chain);
		return rc;
	}
	*out = chain;
	*depth = n;
	return 0;
}
