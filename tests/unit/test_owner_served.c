/* One release or snapshot of a served vdisk at a time (owner/snapshot.c):
 * a live snapshot asked while another is quiescing the vdisk is refused
 * with -EBUSY, not run beside it. The control socket and the etcd watcher
 * ask from two threads; a second quiesce over the first would let the
 * first's resume admit I/O while the second freezes the leaf. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "owner/internal.h"

struct fake_disk {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int quiesced;    /* quiesce calls not yet resumed */
	int overlaps;    /* quiesce calls made while another was not resumed */
	bool entered;    /* the first quiesce has begun */
	bool go;         /* the first quiesce may return */
	int switches;
	char image[64];
};

/* The first quiesce waits until the test lets it go, so that a second
 * request arrives while the vdisk is quiesced. */
static int
fake_quiesce(void *arg, long long deadline_ms)
{
	struct fake_disk *d = arg;

	(void)deadline_ms;
	pthread_mutex_lock(&d->mu);
	if (d->quiesced++) {
		d->overlaps++; /* returns at once: the test fails, never hangs */
	} else {
		d->entered = true;
		pthread_cond_broadcast(&d->cv);
		while (!d->go)
			pthread_cond_wait(&d->cv, &d->mu);
	}
	pthread_mutex_unlock(&d->mu);
	return 0;
}

static void
fake_resume(void *arg)
{
	struct fake_disk *d = arg;

	pthread_mutex_lock(&d->mu);
	d->quiesced--;
	pthread_mutex_unlock(&d->mu);
}

static int
fake_flush(void *arg)
{
	(void)arg;
	return 0;
}

static int
fake_switch_leaf(void *arg, const char *image)
{
	struct fake_disk *d = arg;

	pthread_mutex_lock(&d->mu);
	d->switches++;
	snprintf(d->image, sizeof(d->image), "%s", image);
	pthread_mutex_unlock(&d->mu);
	return 0;
}

static void
fake_usage(void *arg, unsigned *clients, long long *last_write_ms)
{
	(void)arg;
	*clients = 0;
	*last_write_ms = 0;
}

static const struct ic_owner_ops fake_ops = {
	.quiesce = fake_quiesce,
	.resume = fake_resume,
	.flush = fake_flush,
	.switch_leaf = fake_switch_leaf,
	.usage = fake_usage,
};

static void *
first_snapshot(void *arg)
{
	struct owner_served *s = arg;

	return (void *)(intptr_t)owner_served_snapshot(s, "vm@first");
}

static void
test_second_snapshot_is_refused(void **state)
{
	struct fake_disk d = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
	struct owner_served s = { .name = "vm", .ops = &fake_ops, .arg = &d };
	struct timespec until;
	pthread_t t;
	void *first;
	int rc = 0;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, first_snapshot, &s), 0);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	pthread_mutex_lock(&d.mu);
	while (!d.entered && rc == 0)
		rc = pthread_cond_timedwait(&d.cv, &d.mu, &until);
	pthread_mutex_unlock(&d.mu);
	assert_int_equal(rc, 0); /* the first snapshot is quiescing */

	/* Refused at once, while the first still holds the vdisk quiesced. */
	rc = owner_served_snapshot(&s, "vm@second");
	pthread_mutex_lock(&d.mu);
	d.go = true;
	pthread_cond_broadcast(&d.cv);
	pthread_mutex_unlock(&d.mu);
	assert_int_equal(pthread_join(t, &first), 0);
	assert_int_equal(rc, -EBUSY);
	assert_int_equal((intptr_t)first, 0);
	assert_int_equal(d.overlaps, 0);
	assert_int_equal(d.switches, 1);
	assert_string_equal(d.image, "vm@first");

	/* Once the first is done, the next one runs. */
	assert_int_equal(owner_served_snapshot(&s, "vm@third"), 0);
	assert_int_equal(d.switches, 2);
	assert_int_equal(d.quiesced, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_second_snapshot_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
