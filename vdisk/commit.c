/* The background commit of a writable vdisk (docs/ARCHITECTURE.md §4): its allocation
 * map reaches the metadata file within VD_COMMIT_MS of a write even when
 * no client ever flushes, so other processes' read-only views and the state
 * after a crash lag by a bounded time. It is the same flush as FLUSH: data
 * synced first, then the map committed. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "vdisk/vdisk.h"

#define VD_COMMIT_MS 250

static bool
commit_dirty(struct ic_vdisk *vd)
{
	bool dirty;

	pthread_rwlock_rdlock(&vd->map_lock);
	dirty = vd->dirty.n > 0;
	pthread_rwlock_unlock(&vd->map_lock);
	return dirty;
}

static void *
commit_loop(void *arg)
{
	struct ic_vdisk *vd = arg;
	struct timespec at;

	pthread_mutex_lock(&vd->commit_mu);
	while (!vd->commit_stop) {
		clock_gettime(CLOCK_MONOTONIC, &at);
		at.tv_nsec += VD_COMMIT_MS * 1000000L;
		at.tv_sec += at.tv_nsec / 1000000000L;
		at.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&vd->commit_cv, &vd->commit_mu, &at);
		if (vd->commit_stop)
			break;
		pthread_mutex_unlock(&vd->commit_mu);
		/* A failure is logged by the flush and retried next time; a
		 * fenced vdisk stops trying. */
		if (commit_dirty(vd) && ic_vdisk_flush(vd) == -ESTALE) {
			pthread_mutex_lock(&vd->commit_mu);
			break;
		}
		pthread_mutex_lock(&vd->commit_mu);
	}
	pthread_mutex_unlock(&vd->commit_mu);
	return NULL;
}

int
vd_commit_start(struct ic_vdisk *vd)
{
	pthread_condattr_t attr;
	sigset_t all, old;
	int rc;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&vd->commit_cv, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&vd->commit_mu, NULL);
	/* A library thread takes no signals: they belong to the front end's
	 * own handling (SIGTERM must reach isocache-nbd's, not end it here). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&vd->commit_thread, NULL, commit_loop, vd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		ic_log(IC_LOG_ERR, "%s: cannot start the background commit: %s", vd->image,
		       strerror(-rc));
		pthread_cond_destroy(&vd->commit_cv);
		pthread_mutex_destroy(&vd->commit_mu);
		return rc;
	}
	vd->commit_running = true;
	return 0;
}

void
vd_commit_stop(struct ic_vdisk *vd)
{
	if (!vd->commit_running)
		return;
	pthread_mutex_lock(&vd->commit_mu);
	vd->commit_stop = true;
	pthread_cond_signal(&vd->commit_cv);
	pthread_mutex_unlock(&vd->commit_mu);
	pthread_join(vd->commit_thread, NULL);
	pthread_cond_destroy(&vd->commit_cv);
	pthread_mutex_destroy(&vd->commit_mu);
	vd->commit_running = false;
}
