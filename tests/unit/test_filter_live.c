/* Live changes: filters added and removed while several threads do I/O.
 * Every read is verified, every call must succeed, and a removal waits for
 * the I/O in flight through the filter it removes. */
#include "test_filter_fixture.h"

#include <pthread.h>
#include <semaphore.h>

#define LIVE_READERS 3
#define LIVE_WRITE_BASE (3u << 20) /* the writer owns [3 MiB, 4 MiB) of layer 2 */

struct live {
	struct fx *fx;
	atomic_bool stop;
	_Atomic unsigned failures;
	unsigned seed;
	pthread_mutex_t mu;
	pthread_cond_t moved; /* ops grew */
	unsigned ops;	      /* under mu */
};

static _Atomic unsigned count_calls;

static int
count_pread(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n, uint32_t flags)
{
	(void)inst;
	count_calls++;
	return ic_next_pread(next, segs, n, flags);
}

static const struct ic_filter_ops count_ops = {
	IC_FILTER_OPS_INIT,
	.name = "count",
	.pread = count_pread,
};

/* gate: posts gate_entered as a read enters it, holding the stack's swap
 * lock for reading: every filter of the chain below it is in that read's
 * path until it returns. */
static sem_t gate_entered;

static int
gate_pread(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n, uint32_t flags)
{
	(void)inst;
	sem_post(&gate_entered);
	return ic_next_pread(next, segs, n, flags);
}

static const struct ic_filter_ops gate_ops = {
	IC_FILTER_OPS_INIT,
	.name = "gate",
	.pread = gate_pread,
};

/* One more I/O call done. */
static void
live_did(struct live *l)
{
	pthread_mutex_lock(&l->mu);
	l->ops++;
	pthread_cond_broadcast(&l->moved);
	pthread_mutex_unlock(&l->mu);
}

/* Until more than seen I/O calls are done (30 s at most); their number. */
static unsigned
live_wait_ops(struct live *l, unsigned seen)
{
	struct timespec end;
	unsigned ops;

	clock_gettime(CLOCK_REALTIME, &end);
	end.tv_sec += 30;
	pthread_mutex_lock(&l->mu);
	while (l->ops == seen && pthread_cond_timedwait(&l->moved, &l->mu, &end) == 0)
		;
	ops = l->ops;
	pthread_mutex_unlock(&l->mu);
	assert_true(ops > seen);
	return ops;
}

static void
live_fail(struct live *l, const char *what, int rc)
{
	if (l->failures++ == 0)
		print_error("%s: %d\n", what, rc);
}

/* Random reads of 1 to 4 segments anywhere below the writer's region. */
static void *
live_reader(void *arg)
{
	struct live *l = arg;
	unsigned seed = __atomic_add_fetch(&l->seed, 7919, __ATOMIC_RELAXED);
	static _Thread_local uint8_t bufs[4][16384];

	while (!atomic_load(&l->stop)) {
		struct ic_seg segs[4];
		unsigned n = 1 + rand_r(&seed) % 4;
		int rc;

		for (unsigned i = 0; i < n; i++) {
			uint32_t len = 512u << (rand_r(&seed) % 6);

			segs[i] =
			    (struct ic_seg){ &l->fx->layer[rand_r(&seed) % FX_LAYERS],
					     (uint64_t)(rand_r(&seed) % (LIVE_WRITE_BASE - len)),
					     len, bufs[i] };
		}
		rc = ic_stack_pread(l->fx->stack, segs, n, 0);
		if (rc != 0)
			live_fail(l, "pread", rc);
		for (unsigned i = 0; rc == 0 && i < n; i++)
			if (!fx_intact(bufs[i], segs[i].off, segs[i].len))
				live_fail(l, "pread returned wrong data", 0);
		live_did(l);
	}
	return NULL;
}

/* Writes a new pattern over its region, reads it back, again and again. */
static void *
live_writer(void *arg)
{
	struct live *l = arg;
	static uint8_t out[65536], in[65536];

	for (unsigned gen = 1; !atomic_load(&l->stop); gen++) {
		uint64_t off = LIVE_WRITE_BASE + (gen % 16) * sizeof(out);
		struct ic_seg w = { &l->fx->layer[1], off, sizeof(out), out };
		struct ic_seg r = { &l->fx->layer[1], off, sizeof(in), in };
		int rc;

		memset(out, (int)gen, sizeof(out));
		rc = ic_stack_pwrite(l->fx->stack, &w, 1, gen % 8 ? 0 : IC_REQ_FUA);
		if (rc == 0)
			rc = ic_stack_pread(l->fx->stack, &r, 1, 0);
		if (rc != 0)
			live_fail(l, "write/read back", rc);
		else if (memcmp(out, in, sizeof(in)) != 0)
			live_fail(l, "read back differs", 0);
		live_did(l);
	}
	return NULL;
}

static void
test_add_remove_under_io(void **state)
{
	static const char *const specs[] = {
		"count",
		"nop",
		"stats",
		"readahead:window=64K",
		"delay:read=0-20us",
		"error:rate=0",
		"stats,count",
		"nop,nop,nop",
	};
	static const char *const names[] = {
		"count", "nop", "stats", "readahead", "delay", "error"
	};
	struct live l = { .fx = *state, .seed = 1, .mu = PTHREAD_MUTEX_INITIALIZER,
			  .moved = PTHREAD_COND_INITIALIZER };
	pthread_t th[LIVE_READERS + 1];
	unsigned seed = 42, changes = 0, seen = 0;

	for (unsigned i = 0; i < LIVE_READERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, live_reader, &l), 0);
	assert_int_equal(pthread_create(&th[LIVE_READERS], NULL, live_writer, &l), 0);
	for (unsigned i = 0; i < 300; i++) {
		const char *spec = specs[rand_r(&seed) % (sizeof(specs) / sizeof(specs[0]))];
		int pos = (int)(rand_r(&seed) % 3) - 1;

		changes += ic_stack_add(l.fx->stack, spec, pos == 1 ? 0 : pos) == 0;
		changes +=
		    ic_stack_remove(l.fx->stack,
				    names[rand_r(&seed) % (sizeof(names) / sizeof(names[0]))]) == 0;
		seen = live_wait_ops(&l, seen); /* I/O between every two changes */
	}
	atomic_store(&l.stop, true);
	for (unsigned i = 0; i <= LIVE_READERS; i++)
		pthread_join(th[i], NULL);
	print_message("%u changes, %u I/O calls, %u through count\n", changes, l.ops, count_calls);
	assert_int_equal(l.failures, 0);
	assert_true(changes >= 300);
	assert_true(l.ops > 300);
}

struct slow_read {
	struct fx *fx;
	uint8_t buf[4096];
	int rc;
};

static void *
slow_read(void *arg)
{
	struct slow_read *s = arg;

	s->rc = fx_read(s->fx, 0, 8192, sizeof(s->buf), s->buf);
	return NULL;
}

static void
test_remove_drains_in_flight(void **state)
{
	struct slow_read s = { .fx = *state, .rc = 1 };
	pthread_t th;
	uint64_t t0;

	struct timespec end;

	assert_int_equal(ic_stack_add(s.fx->stack, "gate,delay:read=200ms", 0), 0);
	assert_int_equal(sem_init(&gate_entered, 0, 0), 0);
	t0 = fx_now_ns();
	assert_int_equal(pthread_create(&th, NULL, slow_read, &s), 0);
	/* Until the read is in the stack, on its way into the delay. */
	clock_gettime(CLOCK_REALTIME, &end);
	end.tv_sec += 30;
	assert_int_equal(sem_timedwait(&gate_entered, &end), 0);
	assert_int_equal(ic_stack_remove(s.fx->stack, "delay"), 0);
	/* the removal waited for the read, which went on down and succeeded */
	assert_true(fx_now_ns() - t0 >= 190 * 1000 * 1000ull);
	pthread_join(th, NULL);
	assert_int_equal(s.rc, 0);
	assert_true(fx_intact(s.buf, 8192, sizeof(s.buf)));
	assert_int_equal(s.fx->bottom.pread, 1);
	/* and new reads no longer meet the filter: nothing reports delays */
	assert_int_equal(fx_read(s.fx, 0, 0, sizeof(s.buf), s.buf), 0);
	assert_null(strstr(fx_report(s.fx), "\"delayed\""));
	sem_destroy(&gate_entered);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add_remove_under_io, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_remove_drains_in_flight, fx_setup,
						fx_teardown),
	};
	static const struct ic_filter_ops nop_ops = { IC_FILTER_OPS_INIT, .name = "nop" };

	if (ic_filter_register(&count_ops) != 0 || ic_filter_register(&nop_ops) != 0 ||
	    ic_filter_register(&gate_ops) != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
