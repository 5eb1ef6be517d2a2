/* Shared arenas: the slot seqlock, one mapping of an arena per process,
 * the hit ring's validation, and the torture: a writer evicts and refills blocks of a small store as fast as
 * it can while 8 readers copy random blocks through a read-only mapping of
 * the arena (the client library's own code; runs of 4 and 16 blocks with
 * one pread of the memfd, as a client reads them, single blocks copied) and check each against its
 * known checksum. A quarter of the readers splice instead (as a front end
 * sends a large hit): a run goes from the memfd into a pipe, is checked,
 * and is read out of the pipe only after the writer has gone on evicting
 * and refilling (SPLICE_WAIT fills), which must not change what the pipe
 * holds. Zero wrong
 * blocks, and enough hits that the check means something. IC_SHM_TORTURE_SEC sets its length (default 20; 60 by hand);
 * on a loaded machine, or under valgrind, which runs one thread at a time,
 * it goes on past that until both sides have done enough to mean
 * something (TORTURE_ENOUGH), for at most TORTURE_CAP_SEC.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include <cmocka.h>

#include "cached/client_shm.h"
#include "cached/internal.h"

#define CAP 256		 /* store entries: 1 MiB */
#define LAYER_BLOCKS 1024 /* 4 MiB, four times the store */
#define READERS 8

#define TORTURE_ENOUGH 1000  /* hits and refills before the torture may end */
#define RUN 16 /* the writer's fills; read with one pread, as runs of 4 are */
#define TORTURE_CAP_SEC 300  /* however few there are */
#define SPLICE_WAIT 16 /* fills a spliced run waits for in its pipe */
#define SPLICE_ENOUGH 20 /* spliced runs before the torture may end */

struct torture {
	struct cached_store st;
	struct cached_layer *l;
	struct client_arena a; /* half the readers': a read-only mapping */
	/* The other half read the daemon's own mapping: the same addresses as
	 * the writer's, so that ThreadSanitizer sees the race it must be told
	 * about (through two mappings it sees nothing). */
	struct client_arena daemon_view;
	uint8_t *bytes;	       /* the layer's content */
	uint64_t sums[LAYER_BLOCKS];
	time_t deadline; /* time(): the torture's length, at least */
	atomic_bool stop; /* set by the writer once the deadline and enough work are past */
	_Atomic uint64_t hits, misses, wrong, refills, drops;
	_Atomic uint64_t run_hits; /* of 16-block runs: one pread each */
	_Atomic uint64_t spliced;  /* runs read back out of a pipe */
};

static uint64_t
xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void
layer_open(struct cached_store *st, uint64_t nblocks, struct cached_layer **l)
{
	struct stat sb = { .st_dev = 7, .st_ino = 9, .st_size = (off_t)(nblocks * IC_CACHED_BLOCK) };
	uint8_t uuid[16] = { 4, 2 };

	assert_int_equal(cached_store_layer(st, uuid, &sb, open("/dev/null", O_RDONLY), l), 0);
}

/* The states a slot goes through, as a reader sees them. */
static void
test_slot_states(void **state)
{
	struct cached_store st;
	struct cached_layer *l;
	struct client_arena a = { 0 };
	static uint8_t buf[IC_CACHED_BLOCK];
	uint32_t i;

	(void)state;
	assert_int_equal(cached_store_init(&st, CAP * IC_CACHED_BLOCK), 0);
	layer_open(&st, 16, &l);
	assert_int_equal(client_arena_map(&a, l->arena.ro_fd, l->arena.size), 0);
	assert_false(client_arena_read(&a, 3, 1, buf)); /* never filled */
	i = cached_store_alloc(&st, l->id, 3, 0);
	memset(cached_store_data(&st, i), 0x33, IC_CACHED_BLOCK);
	assert_false(client_arena_read(&a, 3, 1, buf)); /* filling */
	cached_store_publish(&st, i);
	assert_true(client_arena_read(&a, 3, 1, buf));
	assert_int_equal(buf[4095], 0x33);
	assert_false(client_arena_read(&a, 3, 2, buf)); /* block 4 is not cached */
	assert_false(client_arena_read(&a, 15, 2, buf)); /* past the end */
	/* A slot whose tag names another block is no hit for this one. */
	ic_cached_slot_publish(&l->arena.slots[5], 6);
	assert_false(client_arena_read(&a, 5, 1, buf));
	ic_cached_slot_begin(&l->arena.slots[3]);
	assert_false(client_arena_read(&a, 3, 1, buf)); /* being evicted */
	ic_cached_slot_clear(&l->arena.slots[3]);
	assert_false(client_arena_read(&a, 3, 1, buf));
	/* Dropped: evicted, and its page given back. */
	ic_cached_slot_publish(&l->arena.slots[3], 3);
	assert_true(client_arena_read(&a, 3, 1, buf));
	assert_int_equal(cached_store_drop(&st, l->id), 1);
	assert_false(client_arena_read(&a, 3, 1, buf));
	assert_int_equal(a.data[3 * IC_CACHED_BLOCK], 0);
	client_arena_unmap(&a);
	cached_store_fini(&st);
}

/* The sessions of one process share one mapping of an arena, so a page
 * one of them faulted in is mapped for all; the last to let go unmaps it. */
/* Is addr inside a mapping of this process (/proc/self/maps)? Asked of
 * the kernel's list, not by a syscall on the address, which valgrind
 * reports when it is unmapped. */
static bool
mapped(const void *addr)
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long lo, hi, a = (unsigned long)(uintptr_t)addr;
	char line[512];
	bool in = false;

	assert_non_null(f);
	while (!in && fgets(line, sizeof(line), f))
		in = sscanf(line, "%lx-%lx", &lo, &hi) == 2 && a >= lo && a < hi;
	fclose(f);
	return in;
}

static void
test_one_mapping(void **state)
{
	struct cached_store st;
	struct cached_layer *l, *other;
	struct client_arena a = { 0 }, b = { 0 }, c = { 0 };
	static uint8_t buf[IC_CACHED_BLOCK];
	uint8_t uuid[16] = { 7 };
	struct stat sb = { .st_dev = 7, .st_ino = 10, .st_size = 16 * IC_CACHED_BLOCK };
	void *base;
	uint32_t i;

	(void)state;
	assert_int_equal(cached_store_init(&st, CAP * IC_CACHED_BLOCK), 0);
	layer_open(&st, 16, &l);
	assert_int_equal(cached_store_layer(&st, uuid, &sb, open("/dev/null", O_RDONLY), &other),
			 0);
	assert_int_equal(client_arena_map(&a, l->arena.ro_fd, l->arena.size), 0);
	assert_int_equal(client_arena_map(&b, l->arena.ro_fd, l->arena.size), 0);
	assert_ptr_equal(a.base, b.base);
	/* Another layer's arena is another mapping. */
	assert_int_equal(client_arena_map(&c, other->arena.ro_fd, other->arena.size), 0);
	assert_ptr_not_equal(c.base, a.base);
	i = cached_store_alloc(&st, l->id, 2, 0);
	memset(cached_store_data(&st, i), 0x22, IC_CACHED_BLOCK);
	cached_store_publish(&st, i);
	base = (void *)a.base;
	client_arena_unmap(&a);
	assert_true(client_arena_read(&b, 2, 1, buf)); /* still mapped for b */
	assert_int_equal(buf[0], 0x22);
	assert_true(mapped(base));
	client_arena_unmap(&b);
	assert_false(mapped(base));
	client_arena_unmap(&c);
	cached_store_fini(&st);
}

/* Whether this process's page tables map the page at addr
 * (/proc/self/pagemap: bit 63 of the page's entry, readable by anyone). */
static bool
present(const void *addr)
{
	long page = sysconf(_SC_PAGESIZE);
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	uint64_t e = 0;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &e, sizeof(e), (off_t)((uintptr_t)addr / (uintptr_t)page * 8)),
			 (ssize_t)sizeof(e));
	close(fd);
	return e >> 63;
}

/* A run of blocks is read with a pread of the memfd, which maps nothing
 * into this process: in a boot storm every front end reads each block
 * once, and a copy would take a page fault for each page it touches
 * first. A single block is copied through the mapping. The blocks are far
 * from the slots, whose reads fault the index in with up to 16 pages
 * around it (fault-around). */
static void
test_runs_not_faulted(void **state)
{
	const uint64_t first = LAYER_BLOCKS / 2;
	struct cached_store st;
	struct cached_layer *l;
	struct client_arena a = { 0 };
	static uint8_t buf[4 * IC_CACHED_BLOCK];

	(void)state;
	assert_int_equal(cached_store_init(&st, CAP * IC_CACHED_BLOCK), 0);
	layer_open(&st, LAYER_BLOCKS, &l);
	assert_int_equal(client_arena_map(&a, l->arena.ro_fd, l->arena.size), 0);
	for (uint64_t b = first; b < first + 16; b++) {
		uint32_t i = cached_store_alloc(&st, l->id, b, 0);

		memset(cached_store_data(&st, i), (int)(b - first), IC_CACHED_BLOCK);
		cached_store_publish(&st, i);
	}
	/* a boot's 16 KiB read, and a 2-block one */
	assert_true(client_arena_read(&a, first + 4, 4, buf));
	assert_int_equal(buf[0], 4);
	assert_int_equal(buf[sizeof(buf) - 1], 7);
	assert_true(client_arena_read(&a, first + 10, 2, buf));
	assert_int_equal(buf[IC_CACHED_BLOCK], 11);
	for (uint64_t b = first; b < first + 16; b++)
		assert_false(present(a.data + b * IC_CACHED_BLOCK));
	/* a single block: copied, so mapped (with its neighbours) */
	assert_true(client_arena_read(&a, first + 9, 1, buf));
	assert_int_equal(buf[0], 9);
	assert_true(present(a.data + (first + 9) * IC_CACHED_BLOCK));
	client_arena_unmap(&a);
	cached_store_fini(&st);
}

/* The ring is the client's: only entries that fit its handles count. */
static void
test_hitring_garbage(void **state)
{
	static struct ic_cached_ring ring;
	struct cached_store st;
	struct cached_layer *l, *handles[1];
	uint64_t tail = 0;
	uint32_t i;
	const uint64_t bad[][2] = {
		{ 5, 0ull << 32 | 2 },		 /* good: blocks 5 and 6 */
		{ 5, 1ull << 32 | 1 },		 /* a handle it does not have */
		{ 5, 0 },			 /* no blocks */
		{ 0, 65 },			 /* too many */
		{ 16, 1 },			 /* past the end */
		{ UINT64_MAX - 1, 4 },		 /* wraps */
		{ 14, 0xffffffffull << 32 | 2 }, /* the all-handle */
	};

	(void)state;
	assert_int_equal(cached_store_init(&st, CAP * IC_CACHED_BLOCK), 0);
	layer_open(&st, 16, &l);
	handles[0] = l;
	i = cached_store_alloc(&st, l->id, 5, 0);
	cached_store_publish(&st, i);
	for (unsigned k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		atomic_store(&ring.e[k].block, bad[k][0]);
		atomic_store(&ring.e[k].span, bad[k][1]);
	}
	atomic_store(&ring.head, sizeof(bad) / sizeof(bad[0]));
	assert_int_equal(cached_hitring_drain(&st, &ring, &tail, handles, 1), 2);
	assert_int_equal(tail, sizeof(bad) / sizeof(bad[0]));
	assert_int_equal(atomic_load(&ring.tail), tail);
	assert_int_equal(st.e[i].visited, 1);
	assert_int_equal(l->stats[IC_CACHED_STAT_SHARED_HITS], 2);
	/* A head far ahead, or behind the tail: one ring's worth is looked at. */
	atomic_store(&ring.head, tail + (1ull << 40));
	assert_true(cached_hitring_drain(&st, &ring, &tail, handles, 1) <= 2 * IC_CACHED_RING_ENTRIES);
	atomic_store(&ring.head, 3);
	cached_hitring_drain(&st, &ring, &tail, handles, 1);
	assert_int_equal(tail, 3);
	cached_store_fini(&st);
}

struct reader {
	struct torture *t;
	const struct client_arena *a;
	bool splice;
};

/* A splicing reader: a run, or part of one at an odd offset, into a pipe;
 * once the check passed, let the writer evict and refill for a while,
 * then read the pipe and compare with the layer's bytes. Returns the
 * wrong bytes' count, or -1 for a miss (the pipe drained). */
static long
torture_splice(struct torture *t, const struct client_arena *a, int p[2], uint64_t b,
	       uint32_t skip, uint8_t *buf)
{
	uint64_t off = b * IC_CACHED_BLOCK + skip, seen;
	uint32_t len = RUN * IC_CACHED_BLOCK - 2 * skip;
	long wrong = 0;

	if (!client_arena_splice(a, off, len, p[1])) {
		while (read(p[0], buf, RUN * IC_CACHED_BLOCK) > 0)
			;
		return -1;
	}
	seen = atomic_load(&t->refills);
	for (int spin = 0; spin < 10000 && atomic_load(&t->refills) < seen + SPLICE_WAIT &&
			   !atomic_load_explicit(&t->stop, memory_order_relaxed);
	     spin++)
		sched_yield();
	assert_int_equal(read(p[0], buf, len), (ssize_t)len);
	for (uint32_t k = 0; k < len; k++)
		wrong += buf[k] != t->bytes[off + k];
	return wrong;
}

static void *
torture_reader(void *arg)
{
	struct reader *rd = arg;
	struct torture *t = rd->t;
	static _Thread_local uint8_t buf[RUN * IC_CACHED_BLOCK];
	static const uint32_t sizes[4] = { 1, 1, 4, RUN };
	uint64_t x = (uint64_t)(uintptr_t)&buf | 1, hits = 0, misses = 0, wrong = 0;
	int p[2] = { -1, -1 };

	if (rd->splice) {
		assert_int_equal(pipe2(p, O_NONBLOCK), 0);
		assert_true(fcntl(p[1], F_SETPIPE_SZ, RUN * IC_CACHED_BLOCK) >=
			    (int)(RUN * IC_CACHED_BLOCK));
	}
	while (rd->splice && !atomic_load_explicit(&t->stop, memory_order_relaxed)) {
		uint64_t b = xorshift(&x) % LAYER_BLOCKS & ~(uint64_t)(RUN - 1);
		long w = torture_splice(t, rd->a, p, b, xorshift(&x) % 2 ? 0 : 100, buf);

		if (w < 0) {
			misses++;
			continue;
		}
		hits++;
		wrong += (uint64_t)w;
		atomic_fetch_add_explicit(&t->spliced, 1, memory_order_relaxed);
	}
	while (!rd->splice && !atomic_load_explicit(&t->stop, memory_order_relaxed)) {
		uint64_t b = xorshift(&x) % LAYER_BLOCKS;
		uint32_t n = sizes[xorshift(&x) % 4];

		if (n == RUN)
			b &= ~(uint64_t)(RUN - 1); /* the writer fills aligned runs */
		else if (b + n > LAYER_BLOCKS)
			n = 1;

		for (int spin = 0; spin < 64; spin++) {
			if (!client_arena_read(rd->a, b, n, buf)) {
				misses++;
				continue;
			}
			if (++hits % 256 == 0) /* for the writer's "enough" */
				atomic_fetch_add_explicit(&t->hits, 256, memory_order_relaxed);
			if (n == RUN)
				atomic_fetch_add_explicit(&t->run_hits, 1, memory_order_relaxed);
			for (uint32_t k = 0; k < n; k++)
				wrong += XXH3_64bits(buf + k * IC_CACHED_BLOCK, IC_CACHED_BLOCK) !=
					 t->sums[b + k];
			break;
		}
	}
	atomic_fetch_add(&t->hits, hits % 256);
	atomic_fetch_add(&t->misses, misses);
	atomic_fetch_add(&t->wrong, wrong);
	if (rd->splice) {
		close(p[0]);
		close(p[1]);
	}
	return NULL;
}

/* Fill block b unless cached: a wrong pattern first, as a fill in
 * progress would write, then the block, or with fail a release after the
 * scribble. */
static void
torture_refill(struct torture *t, uint64_t b, bool fail)
{
	uint32_t i;
	uint8_t *d;

	if (cached_store_lookup(&t->st, t->l->id, b) != CACHED_NIL)
		return;
	i = cached_store_alloc(&t->st, t->l->id, b, 0);
	assert_int_not_equal(i, CACHED_NIL);
	d = cached_store_data(&t->st, i);
	memset(d, 0x55, IC_CACHED_BLOCK);
	if (fail) {
		cached_store_release(&t->st, i);
		return;
	}
	memcpy(d, t->bytes + b * IC_CACHED_BLOCK, IC_CACHED_BLOCK);
	cached_store_publish(&t->st, i);
	if (++t->refills % 2048 == 0) { /* now and then, the whole layer */
		cached_store_drop(&t->st, t->l->id);
		t->drops++;
	}
}

/* The daemon's side, as fast as it goes: every fill evicts (the layer is
 * four times the store), writes a wrong pattern first as a fill in
 * progress would, then the block; some fills fail after scribbling, and
 * now and then the whole layer is dropped. */
static void
torture_write(struct torture *t)
{
	uint64_t x = 0x2545f4914f6cdd1dull;
	time_t cap = time(NULL) + TORTURE_CAP_SEC;

	while (time(NULL) < cap &&
	       (time(NULL) < t->deadline || t->refills < TORTURE_ENOUGH ||
		atomic_load_explicit(&t->hits, memory_order_relaxed) < TORTURE_ENOUGH ||
		atomic_load_explicit(&t->run_hits, memory_order_relaxed) < TORTURE_ENOUGH / 10 ||
		atomic_load_explicit(&t->spliced, memory_order_relaxed) < SPLICE_ENOUGH)) {
		for (int k = 0; k < 64; k++) {
			uint64_t b = xorshift(&x) % LAYER_BLOCKS, end = b + 1;

			if (xorshift(&x) % 2) /* a whole aligned run, as a fill reads it */
				b &= ~(uint64_t)(RUN - 1), end = b + RUN;
			for (; b < end; b++)
				torture_refill(t, b, xorshift(&x) % 16 == 0);
		}
	}
	atomic_store(&t->stop, true);
}

static void
test_torture(void **state)
{
	static struct torture t;
	const char *env = getenv("IC_SHM_TORTURE_SEC");
	unsigned sec = env ? (unsigned)strtoul(env, NULL, 10) : 20;
	pthread_t th[READERS];
	struct reader rd[READERS];
	uint64_t x = 42;

	(void)state;
	t.bytes = malloc((size_t)LAYER_BLOCKS * IC_CACHED_BLOCK);
	assert_non_null(t.bytes);
	for (size_t k = 0; k < (size_t)LAYER_BLOCKS * IC_CACHED_BLOCK / 8; k++) {
		uint64_t v = xorshift(&x);

		memcpy(t.bytes + k * 8, &v, 8);
	}
	for (unsigned b = 0; b < LAYER_BLOCKS; b++)
		t.sums[b] = XXH3_64bits(t.bytes + (size_t)b * IC_CACHED_BLOCK, IC_CACHED_BLOCK);
	assert_int_equal(cached_store_init(&t.st, CAP * IC_CACHED_BLOCK), 0);
	layer_open(&t.st, LAYER_BLOCKS, &t.l);
	assert_int_equal(client_arena_map(&t.a, t.l->arena.ro_fd, t.l->arena.size), 0);
	t.daemon_view = t.a;
	t.daemon_view.slots = t.l->arena.slots;
	t.daemon_view.data = t.l->arena.data;
	time_t start = time(NULL);

	t.deadline = start + (sec ? sec : 1);
	for (int k = 0; k < READERS; k++) {
		rd[k] = (struct reader){ &t, k % 2 ? &t.daemon_view : &t.a, k % 4 == 2 };
		assert_int_equal(pthread_create(&th[k], NULL, torture_reader, &rd[k]), 0);
	}
	torture_write(&t);
	for (int k = 0; k < READERS; k++)
		pthread_join(th[k], NULL);
	printf("torture %llds (asked for %us): %llu refills, %llu drops; readers: %llu hits (%llu of "
	       "%u-block runs, %llu spliced), %llu misses, %llu wrong blocks (bytes when spliced)\n",
	       (long long)(time(NULL) - start), sec, (unsigned long long)t.refills, (unsigned long long)t.drops,
	       (unsigned long long)t.hits, (unsigned long long)t.run_hits, RUN,
	       (unsigned long long)t.spliced, (unsigned long long)t.misses,
	       (unsigned long long)t.wrong);
	assert_int_equal(t.wrong, 0);
	assert_true(t.hits >= TORTURE_ENOUGH);
	assert_true(t.run_hits >= TORTURE_ENOUGH / 10);
	assert_true(t.spliced >= SPLICE_ENOUGH);
	assert_true(t.refills >= TORTURE_ENOUGH);
	client_arena_unmap(&t.a);
	cached_store_fini(&t.st);
	free(t.bytes);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slot_states),
		cmocka_unit_test(test_one_mapping),
		cmocka_unit_test(test_runs_not_faulted),
		cmocka_unit_test(test_hitring_garbage),
		cmocka_unit_test(test_torture),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
