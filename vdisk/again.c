/* A write transaction that lost a race runs again (docs/MULTI-HOST.md §2).
 *
 * On an etcd store, transactions are optimistic: a commit whose reads
 * changed before it landed writes nothing and fails with -EAGAIN. On a
 * fleet's shared store, clones and removals of unrelated vdisks land at
 * once all the time (a removal rewrites its table's marker, which every
 * creation there compares), so an image operation redoes its transaction
 * itself, as its user would otherwise have to: the records are read again
 * and the checks made again, so a retry that now finds the name taken
 * fails as a first attempt would. On LMDB, -EAGAIN says one of LMDB's own
 * tables (readers, dirty pages) was full: rare, and passing too. */
#include <errno.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "vdisk/internal.h"

#define AGAIN_TRIES 8    /* runs in all */
#define AGAIN_PAUSE_MS 10 /* the first pause's bound, doubled at each run after */

bool
store_again(int rc, unsigned *tries, const char *what)
{
	unsigned bound = AGAIN_PAUSE_MS << *tries; /* 10 ms to 640 ms */
	struct timespec now;

	if (rc != -EAGAIN || ++*tries >= AGAIN_TRIES)
		return false;
	/* A pause at random within a bound that grows, so that the writers
	 * that raced do not race again in step. */
	clock_gettime(CLOCK_MONOTONIC, &now);
	ic_log(IC_LOG_INFO, "%s: the metadata changed under this operation; running it again "
			    "(attempt %u of %u)", what, *tries + 1, AGAIN_TRIES);
	ic_sleep_ms(1 + (long long)((unsigned long)now.tv_nsec / 1000 % bound));
	return true;
}
