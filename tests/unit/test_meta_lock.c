/* meta/lock.c: the store's own reader-writer lock (LMDB runs with
 * MDB_NOLOCK), on real LMDB files, with real processes: a writer waits for
 * the readers of other processes and threads and they for it, two
 * processes that are both pid 1 of their PID namespaces use one store, a
 * thread's nested transactions neither deadlock nor slip past the lock,
 * and a process that uses LMDB's own locking is kept out and named. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "isocache/meta.h"

#define PEER_TO 100   /* the child's end of the pipe from the test */
#define PEER_FROM 101 /* the child's end of the pipe to the test */

struct fx {
	char dir[64], path[96], lock[112];
	struct ic_meta *meta;
	atomic_int *ended; /* shared with children: set just before a peer ends its txn */
};

static int
setup(void **state)
{
	static const uint8_t uuid[16] = { 1, 2, 3 };
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/ic-lock-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/meta.mdb", f->dir);
	snprintf(f->lock, sizeof(f->lock), "%s-lock", f->path);
	f->ended = mmap(NULL, sizeof(*f->ended), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			-1, 0);
	if (f->ended == MAP_FAILED || ic_meta_create(f->path, uuid, 65536) ||
	    ic_meta_open(f->path, &f->meta))
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	ic_meta_close(f->meta);
	unlink(f->path);
	unlink(f->lock);
	rmdir(f->dir);
	munmap(f->ended, sizeof(*f->ended));
	free(f);
	return 0;
}

/* ---- peers: child processes driven over two pipes ---- */

struct peer {
	pid_t pid;
	int to, from;
};

static void
say(int fd, char c)
{
	assert_int_equal(write(fd, &c, 1), 1);
}

/* The next byte from fd, or 0 at EOF or after 10 s. */
static char
hear(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c = 0;

	if (poll(&p, 1, 10000) != 1 || read(fd, &c, 1) != 1)
		return 0;
	return c;
}

/* Run role(f) in a child that keeps only its pipe ends (an inherited
 * descriptor of the lock file would share this process's OFD locks). With
 * pidns, the role runs as pid 1 of a new PID namespace; *skipped when that
 * is not allowed here. */
static struct peer
peer_start(struct fx *f, int (*role)(struct fx *f), bool pidns)
{
	int to[2], from[2];
	struct peer p;

	assert_int_equal(pipe(to), 0);
	assert_int_equal(pipe(from), 0);
	p.pid = fork();
	assert_true(p.pid >= 0);
	if (p.pid == 0) {
		pid_t inner;
		int st;

		if (dup2(to[0], PEER_TO) < 0 || dup2(from[1], PEER_FROM) < 0)
			_exit(2);
		close_range(3, PEER_TO - 1, 0);
		close_range(PEER_FROM + 1, ~0u, 0);
		if (!pidns)
			_exit(role(f));
		if (unshare(CLONE_NEWPID) != 0)
			_exit(77);
		inner = fork();
		if (inner == 0)
			_exit(getpid() == 1 ? role(f) : 3);
		if (inner < 0 || waitpid(inner, &st, 0) != inner || !WIFEXITED(st))
			_exit(4);
		_exit(WEXITSTATUS(st));
	}
	close(to[0]);
	close(from[1]);
	p.to = to[1];
	p.from = from[0];
	return p;
}

/* The peer's exit status. */
static int
peer_wait(struct peer *p)
{
	int st;

	close(p->to);
	close(p->from);
	assert_int_equal(waitpid(p->pid, &st, 0), p->pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* ---- roles ---- */

static int
role_hold_read(struct fx *f)
{
	struct ic_meta *meta;
	struct ic_meta_txn *txn;

	if (ic_meta_open(f->path, &meta) || ic_meta_begin(meta, false, &txn))
		return 1;
	say(PEER_FROM, 'r');
	if (hear(PEER_TO) != 'e')
		return 1;
	atomic_store(f->ended, 1);
	ic_meta_abort(txn);
	ic_meta_close(meta);
	return 0;
}

static int
role_hold_write(struct fx *f)
{
	struct ic_meta *meta;
	struct ic_meta_txn *txn;

	if (ic_meta_open(f->path, &meta) || ic_meta_begin(meta, true, &txn) ||
	    ic_meta_name_put(txn, "child", 7))
		return 1;
	say(PEER_FROM, 'w');
	if (hear(PEER_TO) != 'e')
		return 1;
	atomic_store(f->ended, 1);
	if (ic_meta_commit(txn))
		return 1;
	ic_meta_close(meta);
	return 0;
}

/* Open the store and keep it open until told; then read what was written
 * meanwhile by the other namespace's pid 1. */
static int
role_ns_keep_open(struct fx *f)
{
	struct ic_meta *meta;
	struct ic_meta_txn *txn;
	uint64_t id = 0;

	if (ic_meta_open(f->path, &meta))
		return 1;
	say(PEER_FROM, 'o');
	if (hear(PEER_TO) != 'e' || ic_meta_begin(meta, false, &txn))
		return 1;
	if (ic_meta_name_get(txn, "ns-b", &id))
		return 1;
	ic_meta_abort(txn);
	ic_meta_close(meta);
	return id == 2 ? 0 : 1;
}

static int
role_ns_write(struct fx *f)
{
	struct ic_meta *meta;
	struct ic_meta_txn *txn;
	uint64_t id = 0;

	if (ic_meta_open(f->path, &meta))
		return 10;
	if (ic_meta_begin(meta, true, &txn) || ic_meta_name_put(txn, "ns-b", 2) ||
	    ic_meta_commit(txn))
		return 11;
	if (ic_meta_begin(meta, false, &txn) || ic_meta_name_get(txn, "ns-b", &id))
		return 12;
	ic_meta_abort(txn);
	ic_meta_close(meta);
	return id == 2 ? 0 : 13;
}

/* What LMDB's own locking does for a reader: a POSIX lock on the byte at
 * its pid of the lock file. 'l' once held, 'x' when refused. */
static int
role_legacy_reader(struct fx *f)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = getpid(), .l_len = 1 };
	int fd = open(f->lock, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return 1;
	if (fcntl(fd, F_SETLK, &fl) != 0) {
		say(PEER_FROM, 'x');
		return 0;
	}
	say(PEER_FROM, 'l');
	return hear(PEER_TO) == 'e' ? 0 : 1;
}

/* ---- a transaction begun on a thread of the test ---- */

struct waiter {
	struct fx *f;
	bool write;
	atomic_int tid, done;
	int saw_ended, rc;
	uint64_t got;
};

static void *
waiter_run(void *arg)
{
	struct waiter *w = arg;
	struct ic_meta_txn *txn;

	atomic_store(&w->tid, (int)syscall(SYS_gettid));
	w->rc = ic_meta_begin(w->f->meta, w->write, &txn);
	w->saw_ended = atomic_load(w->f->ended);
	if (w->rc == 0 && w->write) {
		w->rc = ic_meta_name_put(txn, "parent", 9);
		w->rc = w->rc ? (ic_meta_abort(txn), w->rc) : ic_meta_commit(txn);
	} else if (w->rc == 0) {
		w->rc = ic_meta_name_get(txn, "child", &w->got);
		ic_meta_abort(txn);
	}
	atomic_store(&w->done, 1);
	return NULL;
}

/* Poll (deadline 10 s) until the waiter is done or sleeps in syscall nr:
 * true when it sleeps there. */
static bool
waiter_blocked(struct waiter *w, long nr)
{
	char path[64], buf[64];

	for (int i = 0; i < 10000; i++) {
		int tid = atomic_load(&w->tid);
		FILE *fp;

		if (atomic_load(&w->done))
			return false;
		snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
		fp = tid ? fopen(path, "r") : NULL;
		if (fp) {
			bool in = fgets(buf, sizeof(buf), fp) && strtol(buf, NULL, 10) == nr;

			fclose(fp);
			if (in)
				return true;
		}
		usleep(1000);
	}
	return false;
}

/* ---- tests ---- */

/* Start role in another process; once it holds its transaction (and says
 * ready), begin w's on a thread here: that must sleep in fcntl until the
 * peer is told to end, and see that it did. */
static void
expect_wait_for_peer(struct fx *f, int (*role)(struct fx *f), char ready, struct waiter *w)
{
	struct peer p = peer_start(f, role, false);
	pthread_t th;

	assert_int_equal(hear(p.from), ready);
	assert_int_equal(pthread_create(&th, NULL, waiter_run, w), 0);
	assert_true(waiter_blocked(w, SYS_fcntl));
	say(p.to, 'e');
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w->rc, 0);
	assert_int_equal(w->saw_ended, 1);
	assert_int_equal(peer_wait(&p), 0);
}

/* A write waits until another process's read transaction ends: with
 * MDB_NOLOCK nothing else stops it reusing pages that reader sees. */
static void
test_writer_waits_for_reader_of_another_process(void **state)
{
	struct waiter w = { .f = *state, .write = true };

	expect_wait_for_peer(*state, role_hold_read, 'r', &w);
}

/* A read waits until another process's write transaction commits, and
 * then sees what it wrote. */
static void
test_reader_waits_for_writer_of_another_process(void **state)
{
	struct waiter w = { .f = *state, .write = false };

	expect_wait_for_peer(*state, role_hold_write, 'w', &w);
	assert_int_equal(w.got, 7);
}

/* Threads of one process share the lock's description, so the process
 * orders them itself: a writer thread waits for a reader thread. */
static void
test_writer_waits_for_reader_thread(void **state)
{
	struct fx *f = *state;
	struct waiter w = { .f = f, .write = true };
	struct ic_meta_txn *txn;
	pthread_t th;

	assert_int_equal(ic_meta_begin(f->meta, false, &txn), 0);
	assert_int_equal(pthread_create(&th, NULL, waiter_run, &w), 0);
	assert_true(waiter_blocked(&w, SYS_futex));
	atomic_store(f->ended, 1);
	ic_meta_abort(txn);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w.rc, 0);
	assert_int_equal(w.saw_ended, 1);
}

/* Two processes that are both pid 1 of their own PID namespace: one keeps
 * the store open while the other opens it, writes and reads; then the
 * first reads what the second wrote. (With LMDB's locking the second
 * open failed with EAGAIN: both wanted the lock on the byte at pid 1.) */
static void
test_same_pid_in_two_namespaces(void **state)
{
	struct fx *f = *state;
	struct peer a = peer_start(f, role_ns_keep_open, true);
	struct peer b;
	char c = hear(a.from);

	if (c == 0 && peer_wait(&a) == 77)
		skip(); /* no CLONE_NEWPID here: not root */
	assert_int_equal(c, 'o');
	b = peer_start(f, role_ns_write, true);
	assert_int_equal(peer_wait(&b), 0);
	say(a.to, 'e');
	assert_int_equal(peer_wait(&a), 0);
}

/* A thread may nest reads in a read or in its write; a write inside its
 * own read would wait for itself, and fails instead. Nothing stays locked
 * afterwards: another process can write. */
static void
test_nested_transactions(void **state)
{
	struct fx *f = *state;
	struct ic_meta_txn *r1, *r2, *w;
	uint64_t id;

	assert_int_equal(ic_meta_begin(f->meta, false, &r1), 0);
	assert_int_equal(ic_meta_begin(f->meta, false, &r2), 0);
	assert_int_equal(ic_meta_begin(f->meta, true, &w), -EDEADLK);
	ic_meta_abort(r2);
	ic_meta_abort(r1);

	assert_int_equal(ic_meta_begin(f->meta, true, &w), 0);
	assert_int_equal(ic_meta_name_put(w, "inner", 5), 0);
	assert_int_equal(ic_meta_begin(f->meta, false, &r1), 0);
	assert_int_equal(ic_meta_name_get(r1, "inner", &id), -ENOENT); /* not committed yet */
	assert_int_equal(ic_meta_commit(w), 0);
	ic_meta_abort(r1);

	struct peer p = peer_start(f, role_ns_write, false);

	assert_int_equal(peer_wait(&p), 0);
	assert_int_equal(ic_meta_begin(f->meta, false, &r1), 0);
	assert_int_equal(ic_meta_name_get(r1, "inner", &id), 0);
	assert_int_equal(id, 5);
	ic_meta_abort(r1);
}

/* LMDB's own locking (an older isocache, mdb_stat) cannot take part: it
 * is kept out while the store is open, and one that holds it first makes
 * the open fail with -EBUSY (the log names the process). */
static void
test_lmdb_locking_fenced(void **state)
{
	struct fx *f = *state;
	struct ic_meta *meta = NULL;
	struct peer p = peer_start(f, role_legacy_reader, false);

	assert_int_equal(hear(p.from), 'x');
	assert_int_equal(peer_wait(&p), 0);

	ic_meta_close(f->meta);
	f->meta = NULL;
	p = peer_start(f, role_legacy_reader, false);
	assert_int_equal(hear(p.from), 'l');
	assert_int_equal(ic_meta_open(f->path, &meta), -EBUSY);
	say(p.to, 'e');
	assert_int_equal(peer_wait(&p), 0);
	assert_int_equal(ic_meta_open(f->path, &f->meta), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_writer_waits_for_reader_of_another_process,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_waits_for_writer_of_another_process,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_waits_for_reader_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_pid_in_two_namespaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nested_transactions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lmdb_locking_fenced, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
