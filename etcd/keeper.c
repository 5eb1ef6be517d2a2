/* The thread that keeps an owner's lease alive, and says when it may no
 * longer count on it.
 *
 * Why the validity runs from when a renewal was SENT: etcd's TTL starts
 * counting on the leader when it handles the renewal, which is after we
 * sent it; measuring from our send time (monotonic clock) can only make us
 * give up early, never late. A renewal that went to a member that hung and
 * then to another counts from when it was sent to the one that answered; a
 * late answer from the first could only make the lease outlive our count.
 * The margin covers the rate drift of two clocks over one TTL and a write
 * already in flight when validity ends.
 * So a holder that stops writing when ic_etcd_keeper_valid turns false has
 * stopped before etcd can expire the lease and let a claimant in. */
#include "etcd/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"

#define KEEPER_RETRY_MS 200

struct ic_etcd_keeper {
	struct ic_etcd *etcd; /* the thread's own client */
	int64_t lease;
	int64_t ttl_ms;
	unsigned margin_ms;
	ic_etcd_lease_lost_fn lost;
	void *arg;
	_Atomic int64_t valid_until_ms; /* monotonic; 0 once lost */
	_Atomic int64_t renewed_ms;     /* when the last good renewal was sent */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* stop */
	bool stop;
};

/* Renew once, bounded by the validity left (or the client's timeout). */
static int
keeper_renew(struct ic_etcd_keeper *k)
{
	int64_t left = atomic_load(&k->valid_until_ms) - ic_now_ms(), sent, ttl_s;
	int rc;

	if (left <= 0)
		return -ETIMEDOUT;
	rc = ic_etcd_lease_renew(k->etcd, k->lease, (unsigned)left, &ttl_s);
	if (rc < 0)
		return rc;
	sent = ic_etcd_attempt_ms(k->etcd);
	k->ttl_ms = ttl_s * 1000;
	atomic_store(&k->renewed_ms, sent);
	atomic_store(&k->valid_until_ms, sent + k->ttl_ms - k->margin_ms);
	return 0;
}

/* Sleep until at_ms (monotonic) or stop; true if stopped. */
static bool
keeper_wait(struct ic_etcd_keeper *k, int64_t at_ms)
{
	struct timespec ts = { .tv_sec = at_ms / 1000, .tv_nsec = (at_ms % 1000) * 1000000 };
	bool stop;

	pthread_mutex_lock(&k->mu);
	while (!k->stop && ic_now_ms() < at_ms)
		pthread_cond_timedwait(&k->cv, &k->mu, &ts);
	stop = k->stop;
	pthread_mutex_unlock(&k->mu);
	return stop;
}

static void *
keeper_main(void *arg)
{
	struct ic_etcd_keeper *k = arg;
	int64_t next = atomic_load(&k->renewed_ms) + k->ttl_ms / 3;
	int rc = 0;

	for (;;) {
		int64_t until = atomic_load(&k->valid_until_ms);

		/* Wake at the next renewal, or when validity ends, whichever first. */
		if (keeper_wait(k, next < until ? next : until))
			return NULL;
		if (ic_now_ms() >= atomic_load(&k->valid_until_ms)) {
			rc = rc ? rc : -ETIMEDOUT;
			break;
		}
		rc = keeper_renew(k);
		if (rc == -ENOENT)
			break;
		/* A third of the TTL after the renewal was sent, which may
		 * have been a while before it was answered. */
		next = rc == 0 ? atomic_load(&k->renewed_ms) + k->ttl_ms / 3
			       : ic_now_ms() + KEEPER_RETRY_MS;
		if (rc < 0)
			ic_log(IC_LOG_WARN, "etcd lease %lld: renewal failed (%s: %s), %lld ms of "
			       "validity left", (long long)k->lease, strerror(-rc),
			       ic_etcd_last_error(k->etcd), (long long)ic_etcd_keeper_left_ms(k));
	}
	atomic_store(&k->valid_until_ms, 0);
	ic_log(IC_LOG_ERR, "etcd lease %lld lost: %s", (long long)k->lease, strerror(-rc));
	k->lost(k->arg, k->lease, rc);
	return NULL;
}

int
ic_etcd_keeper_start(const struct ic_etcd_url *url, unsigned timeout_ms, int64_t lease,
		     int64_t ttl_s, unsigned margin_ms, ic_etcd_lease_lost_fn lost, void *arg,
		     struct ic_etcd_keeper **out)
{
	struct ic_etcd_keeper *k;
	pthread_condattr_t ca;
	int rc;

	if (ttl_s <= 0 || (int64_t)margin_ms >= ttl_s * 1000) {
		ic_log(IC_LOG_ERR, "etcd lease %lld: margin %u ms not below the TTL of %lld s",
		       (long long)lease, margin_ms, (long long)ttl_s);
		return -EINVAL;
	}
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->lease = lease;
	k->ttl_ms = ttl_s * 1000;
	k->margin_ms = margin_ms;
	k->lost = lost;
	k->arg = arg;
	rc = ic_etcd_open(url, timeout_ms, &k->etcd);
	if (rc < 0)
		goto err_free;
	/* The first renewal is bounded by the client's timeout: nothing is
	 * valid yet to bound it by. */
	atomic_store(&k->valid_until_ms, ic_now_ms() + (timeout_ms ? timeout_ms : 5000));
	rc = keeper_renew(k);
	if (rc < 0)
		goto err_close;
	pthread_mutex_init(&k->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->cv, &ca);
	pthread_condattr_destroy(&ca);
	rc = -pthread_create(&k->thread, NULL, keeper_main, k);
	if (rc < 0) {
		ic_log(IC_LOG_ERR, "etcd lease %lld: cannot start the keepalive thread: %s",
		       (long long)lease, strerror(-rc));
		goto err_sync;
	}
	*out = k;
	return 0;
err_sync:
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->mu);
err_close:
	ic_etcd_close(k->etcd);
err_free:
	free(k);
	return rc;
}

int64_t
ic_etcd_keeper_left_ms(const struct ic_etcd_keeper *keeper)
{
	int64_t left = atomic_load(&keeper->valid_until_ms) - ic_now_ms();

	return left > 0 ? left : 0;
}

int64_t
ic_etcd_keeper_since_renewal_ms(const struct ic_etcd_keeper *keeper)
{
	return ic_now_ms() - atomic_load(&keeper->renewed_ms);
}

bool
ic_etcd_keeper_valid(const struct ic_etcd_keeper *keeper)
{
	return ic_etcd_keeper_left_ms(keeper) > 0;
}

void
ic_etcd_keeper_stop(struct ic_etcd_keeper *keeper)
{
	if (!keeper)
		return;
	pthread_mutex_lock(&keeper->mu);
	keeper->stop = true;
	pthread_cond_signal(&keeper->cv);
	pthread_mutex_unlock(&keeper->mu);
	pthread_join(keeper->thread, NULL);
	pthread_cond_destroy(&keeper->cv);
	pthread_mutex_destroy(&keeper->mu);
	ic_etcd_close(keeper->etcd);
	free(keeper);
}
