/* Ownership records and the handoff (docs/OWNERSHIP.md): claims take the
 * kernel lock and then CAS the record's generation; an owner is dead
 * exactly when its lock is free (exited, zombie), whatever its recorded
 * pid shows; a live owner with a control socket releases by its policy, a
 * fenced handle refuses I/O, a live snapshot keeps the handle writing, and
 * garbage on the control socket closes only that connection. A second
 * process is a fork that drops every inherited descriptor (a fork shares
 * the parent's lock descriptions) and opens its own store handle (LMDB
 * allows one per process). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "common/log.h"
#include "isocache/control.h"
#include "tests/unit/store_fixture.h"
#include "owner/ctlmsg.h"
#include "owner/internal.h"
#include "vdisk/internal.h"
#include "vdisk/vdisk.h"

#define OWNER_SIZE (1u << 20)
#define OWNER_IDLE_MS 300 /* the when-idle window of serve_fx */

struct owner_fx {
	struct store_fixture fx;
	char run[80];
};

static int
owner_setup(void **state)
{
	struct owner_fx *f = calloc(1, sizeof(*f));

	if (!f || store_fixture_init(&f->fx, 0) || ic_image_create(f->fx.store, "vm1", OWNER_SIZE))
		return -1;
	snprintf(f->run, sizeof(f->run), "%s/run", f->fx.dir);
	setenv("ISOCACHE_RUN_DIR", f->run, 1);
	*state = f;
	return 0;
}

static int
owner_teardown(void **state)
{
	struct owner_fx *f = *state;

	store_fixture_fini(&f->fx);
	free(f);
	return 0;
}

/* A forked child: drop what it inherited above stderr, so that it is a
 * process of its own to the kernel's locks. */
static pid_t
owner_fork(void)
{
	pid_t pid = fork();

	if (pid == 0)
		syscall(SYS_close_range, 3u, ~0u, 0u);
	return pid;
}

/* This test program's path (argv[0]): children run it anew. */
static const char *owner_self_path;

/* Run this program anew as a child doing kind ("claim" or "snapshot") in
 * dir, with keep and how for a claim, and return its verdict (0 to 2), or
 * 3 if the child died without giving one. A fork of this threaded process
 * (the control thread serves the vdisk) may only call async-signal-safe
 * functions before exec: one that ran the store code in the forked copy
 * hung for good in an ASan run, on a lock some thread held at the fork.
 * The verdict comes through a pipe (the child's fd 3), not the exit
 * status: under valgrind, a child exits with valgrind's error code for
 * leaks that are not its own. */
static int
owner_child_exec(const char *kind, const char *dir, bool keep, enum ic_takeover how)
{
	char how_s[16];
	int fds[2];
	uint8_t verdict;
	pid_t pid;

	snprintf(how_s, sizeof(how_s), "%d", (int)how);
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (dup2(fds[1], 3) == 3) { /* dup2 leaves fd 3 open across exec */
			syscall(SYS_close_range, 4u, ~0u, 0u);
			execl(owner_self_path, owner_self_path, "--child", kind, dir,
			      keep ? "keep" : "release", how_s, (char *)NULL);
		}
		_exit(127);
	}
	close(fds[1]);
	if (read(fds[0], &verdict, 1) != 1)
		verdict = 3;
	close(fds[0]);
	waitpid(pid, NULL, 0);
	return verdict;
}

/* A child that dies holding its claim keeps its store open; this keeps it
 * reachable (volatile: a pointer never read would be optimised away). */
static struct ic_store *volatile owner_kept_store;

struct child_claim {
	const char *dir;
	bool keep;
	enum ic_takeover how;
};

/* In a child process with its own store handle: claim vm1 (treating a
 * live owner as how says): 0 (got it), 1 (refused) or 2 (error). With
 * keep, the child exits without releasing. */
static int
owner_child_claim_fn(const void *arg)
{
	const struct child_claim *c = arg;
	struct ic_store *store;
	struct owner_claim claim;
	int rc;

	if (ic_store_open(c->dir, &store))
		return 2;
	/* Long: a release under valgrind on a loaded machine takes seconds;
	 * the refusals the tests expect come at once, by policy. */
	ic_owner_set_timeout(store, 30000);
	ic_owner_set_takeover(store, c->how);
	rc = owner_claim(&store->owners, "vm1", "test child", &claim);
	if (rc == 0 && c->keep) { /* dies holding it, its store open */
		owner_kept_store = store;
		return 0;
	}
	if (rc == 0)
		owner_release(&store->owners, &claim);
	ic_store_close(store);
	return rc == 0 ? 0 : rc == -EBUSY ? 1 : 2;
}

static int
owner_child_claim_how(const char *dir, bool keep, enum ic_takeover how)
{
	return owner_child_exec("claim", dir, keep, how);
}

static int
owner_child_claim(const char *dir, bool keep)
{
	return owner_child_claim_how(dir, keep, IC_TAKEOVER_ASK);
}

static void
owner_claim_and_cas(void **state)
{
	struct owner_fx *f = *state;
	struct owner_claim a, stale;
	struct ic_owner_info info;
	struct ic_owner_rec other = { 0 };
	uint64_t gen;

	assert_int_equal(owner_claim(&f->fx.store->owners, "vm1", "test a", &a), 0);
	assert_int_equal(ic_owner_show(f->fx.store, "vm1", &info), 0);
	assert_true(info.alive);
	assert_int_equal(info.rec.pid, getpid());
	assert_int_equal(info.rec.generation, a.generation);
	/* We have no control socket, so nobody can ask us: a second claim fails. */
	assert_int_equal(owner_child_claim(f->fx.dir, false), 1);
	/* CAS: a transfer from a claim that no longer holds is refused. */
	stale = a;
	assert_int_equal(owner_self(getpid(), "test b", NULL, "", &other), 0);
	assert_int_equal(owner_transfer(&f->fx.store->owners, &a, &other, &gen), 0);
	assert_int_equal(gen, a.generation + 1);
	assert_int_equal(owner_transfer(&f->fx.store->owners, &stale, &other, &gen), -ESTALE);
	owner_release(&f->fx.store->owners, &stale); /* no effect: stale */
	assert_int_equal(ic_owner_show(f->fx.store, "vm1", &info), 0);
	assert_memory_equal(info.rec.owner_id, other.owner_id, 16);
	a.generation = gen;
	memcpy(a.owner_id, other.owner_id, 16);
	owner_release(&f->fx.store->owners, &a);
	assert_int_equal(ic_owner_show(f->fx.store, "vm1", &info), 0);
	assert_false(info.alive);
	assert_int_equal(info.rec.generation, gen + 1);
}

static void
owner_dead_reclaimed(void **state)
{
	struct owner_fx *f = *state;
	struct owner_claim c;
	struct ic_owner_info info;
	struct ic_meta_txn *txn;
	pid_t zombie;

	/* An owner that exited without releasing. */
	assert_int_equal(owner_child_claim(f->fx.dir, true), 0);
	assert_int_equal(ic_owner_show(f->fx.store, "vm1", &info), 0);
	assert_false(info.alive);
	assert_int_equal(owner_claim(&f->fx.store->owners, "vm1", "test", &c), 0);
	assert_int_equal(c.generation, info.rec.generation + 1);
	owner_release(&f->fx.store->owners, &c);

	/* A zombie (exited, not reaped yet) is dead too. */
	zombie = owner_fork();
	if (zombie == 0) {
		struct ic_store *store;
		struct owner_claim claim;

		if (ic_store_open(f->fx.dir, &store) ||
		    owner_claim(&store->owners, "vm1", "zombie", &claim))
			_exit(2);
		_exit(0);
	}
	/* Until it has exited; WNOWAIT leaves it unreaped, a zombie. */
	assert_int_equal(waitid(P_PID, (id_t)zombie, &(siginfo_t){ 0 }, WEXITED | WNOWAIT), 0);
	assert_int_equal(ic_owner_show(f->fx.store, "vm1", &info), 0);
	assert_int_equal(info.rec.pid, zombie);
	assert_false(info.alive);
	assert_int_equal(owner_claim(&f->fx.store->owners, "vm1", "test", &c), 0);
	waitpid(zombie, NULL, 0);
	owner_release(&f->fx.store->owners, &c);

	/* A record naming a live process of this boot (init, with its real
	 * start time: all that /proc could check) but whose lock is free is a
	 * dead owner's: pid, start time and boot id are information only.
	 * This is what an owner in another PID namespace looked like. */
	assert_int_equal(owner_self(1, "init", NULL, "", &info.rec), 0);
	info.rec.generation = 41;
	assert_int_equal(ic_meta_begin(f->fx.store->meta, true, &txn), 0);
	assert_int_equal(ic_meta_owner_put(txn, "vm1", &info.rec), 0);
	assert_int_equal(ic_meta_commit(txn), 0);
	assert_int_equal(ic_owner_show(f->fx.store, "vm1", &info), 0);
	assert_false(info.alive);
	assert_int_equal(owner_claim(&f->fx.store->owners, "vm1", "test", &c), 0);
	assert_int_equal(c.generation, 42);
	owner_release(&f->fx.store->owners, &c);
}

/* The lock, not the record, decides: a live holder whose record says
 * nobody owns the vdisk (cleared behind its back) still keeps every other
 * claimer out, and two claims of one process conflict too. */
static void
owner_lock_decides(void **state)
{
	struct owner_fx *f = *state;
	struct owner_claim a, b;
	struct ic_meta_txn *txn;
	struct ic_owner_info info;

	assert_int_equal(owner_claim(&f->fx.store->owners, "vm1", "test a", &a), 0);
	assert_true(a.lock_fd >= 0);
	assert_int_equal(ic_meta_begin(f->fx.store->meta, true, &txn), 0);
	assert_int_equal(ic_meta_owner_del(txn, "vm1"), 0);
	assert_int_equal(ic_meta_commit(txn), 0);
	assert_int_equal(ic_owner_show(f->fx.store, "vm1", &info), 0);
	assert_true(info.alive);
	assert_int_equal(owner_child_claim(f->fx.dir, false), 1);
	assert_int_equal(owner_claim(&f->fx.store->owners, "vm1", "test b", &b), -EBUSY);
	/* Another vdisk's byte is free. */
	assert_int_equal(ic_image_create(f->fx.store, "vm2", OWNER_SIZE), 0);
	assert_int_equal(owner_claim(&f->fx.store->owners, "vm2", "test c", &b), 0);
	owner_release(&f->fx.store->owners, &b);
	owner_release(&f->fx.store->owners, &a);
	assert_int_equal(a.lock_fd, -1);
	assert_int_equal(owner_child_claim(f->fx.dir, false), 0);
}

/* Open vm1 for writing behind a control socket with policy, write once. */
static struct ic_control *
serve_fx(struct owner_fx *f, enum ic_release_policy policy, struct ic_vdisk **vd)
{
	struct ic_control_config cfg = { .policy = policy, .idle_ms = OWNER_IDLE_MS };
	struct ic_control *ctl;
	char data[4096];

	memset(data, 0x5a, sizeof(data));
	assert_int_equal(ic_control_start(f->fx.store, &cfg, &ctl), 0);
	assert_int_equal(ic_vdisk_open(f->fx.store, "vm1", 0, NULL, vd), 0);
	assert_int_equal(ic_vdisk_pwrite(*vd, data, sizeof(data), 0, 0), 0);
	return ctl;
}

/* The default policy keeps a vdisk while a client uses it, however quiet,
 * and lets it go once none does. */
static void
owner_release_when_unused(void **state)
{
	struct owner_fx *f = *state;
	struct ic_vdisk *vd;
	struct ic_control *ctl = serve_fx(f, IC_RELEASE_WHEN_UNUSED, &vd);
	char data[512] = { 0 };

	ic_vdisk_use(vd, 1);
	assert_int_equal(owner_child_claim(f->fx.dir, false), 1);
	assert_int_equal(ic_vdisk_pwrite(vd, data, sizeof(data), 0, 0), 0);
	ic_vdisk_use(vd, -1);
	assert_int_equal(owner_child_claim(f->fx.dir, false), 0);
	assert_true(ic_vdisk_fenced(vd));
	/* Every write path, the overwrite of an allocated cluster included. */
	assert_int_equal(ic_vdisk_pwrite(vd, data, sizeof(data), 0, 0), -ESTALE);
	assert_int_equal(ic_vdisk_zero(vd, sizeof(data), 0, 0), -ESTALE);
	assert_int_equal(ic_vdisk_trim(vd, sizeof(data), 0, 0), -ESTALE);
	assert_int_equal(ic_vdisk_flush(vd), -ESTALE);
	ic_vdisk_close(vd);
	ic_control_stop(ctl);
}

/* IC_TAKEOVER_NEVER (destructive admin commands without --force) refuses
 * a live owner without asking it, whatever its policy. */
static void
owner_takeover_never(void **state)
{
	struct owner_fx *f = *state;
	struct ic_vdisk *vd;
	struct ic_control *ctl = serve_fx(f, IC_RELEASE_ALWAYS, &vd);

	assert_int_equal(owner_child_claim_how(f->fx.dir, false, IC_TAKEOVER_NEVER), 1);
	assert_false(ic_vdisk_fenced(vd));
	ic_vdisk_close(vd);
	ic_control_stop(ctl);
}

/* Pretend vd was last written at ms (CLOCK_MONOTONIC milliseconds). */
static void
owner_set_last_write(struct ic_vdisk *vd, long long ms)
{
	__atomic_store_n(&vd->last_write_ms, (uint64_t)ms, __ATOMIC_RELAXED);
}

static void
owner_release_by_policy(void **state)
{
	struct owner_fx *f = *state;
	struct ic_vdisk *vd;
	struct ic_control *ctl = serve_fx(f, IC_RELEASE_WHEN_IDLE, &vd);
	char data[4096];

	/* The verdict depends on the time of the last write, and a claim
	 * from another process may take longer than any window on a loaded
	 * machine (under valgrind, a second or more): so the test sets that
	 * time rather than racing the clock. Written "in the future", as far
	 * as any claim is concerned: when-idle denies. */
	owner_set_last_write(vd, ic_now_ms() + 3600 * 1000);
	assert_int_equal(owner_child_claim(f->fx.dir, false), 1);
	assert_int_equal(ic_vdisk_pread(vd, data, sizeof(data), 0), 0);
	/* Last written a window and more ago: idle, released (the write
	 * flushed first); our handle is fenced. */
	owner_set_last_write(vd, ic_now_ms() - OWNER_IDLE_MS - 1);
	assert_int_equal(owner_child_claim(f->fx.dir, false), 0);
	assert_int_equal(ic_vdisk_pwrite(vd, data, sizeof(data), 0, 0), -ESTALE);
	assert_int_equal(ic_vdisk_pread(vd, data, sizeof(data), 0), -ESTALE);
	assert_int_equal(ic_vdisk_close(vd), 0);
	/* The flushed write is in the store. */
	assert_int_equal(ic_vdisk_open(f->fx.store, "vm1", IC_OPEN_RDONLY, NULL, &vd), 0);
	assert_int_equal(ic_vdisk_pread(vd, data, sizeof(data), 0), 0);
	assert_int_equal(data[4095], 0x5a);
	ic_vdisk_close(vd);
	ic_control_stop(ctl);
}

static void
owner_policy_never(void **state)
{
	struct owner_fx *f = *state;
	struct ic_vdisk *vd;
	struct ic_control *ctl = serve_fx(f, IC_RELEASE_NEVER, &vd);
	char data[512] = { 0 };

	assert_int_equal(owner_child_claim(f->fx.dir, false), 1);
	assert_int_equal(ic_vdisk_pwrite(vd, data, sizeof(data), 0, IC_REQ_FUA), 0);
	ic_vdisk_close(vd);
	ic_control_stop(ctl);
}

/* Send bytes on a fresh connection to the control socket; returns what
 * recv then gives (0: the owner closed the connection). */
static ssize_t
owner_send_raw(const char *path, const void *bytes, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char reply[CTL_REPLY_BUF];
	int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	ssize_t n;

	strcpy(sa.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(send(fd, bytes, len, 0), (ssize_t)len);
	n = recv(fd, reply, sizeof(reply), 0);
	if (n > 0) /* the error reply; then the close */
		n = recv(fd, reply, sizeof(reply), 0);
	close(fd);
	return n;
}

static void
owner_garbage_on_socket(void **state)
{
	struct owner_fx *f = *state;
	struct ic_vdisk *vd;
	struct ic_control *ctl = serve_fx(f, IC_RELEASE_ALWAYS, &vd);
	uint8_t junk[300];
	char stats[4096];

	memset(junk, 0xee, sizeof(junk));
	assert_int_equal(owner_send_raw(ic_control_path(ctl), junk, sizeof(junk)), 0);
	assert_int_equal(owner_send_raw(ic_control_path(ctl), junk, 3), 0);
	/* Still answering, still owning. */
	assert_int_equal(ic_control_stats(ic_control_path(ctl), stats, sizeof(stats)), 0);
	assert_non_null(strstr(stats, "\"policy\":\"always\""));
	assert_non_null(strstr(stats, "\"owned\":true"));
	assert_int_equal(ic_vdisk_pwrite(vd, junk, sizeof(junk), 0, 0), 0);
	ic_vdisk_close(vd);
	ic_control_stop(ctl);
}

/* In a child process with its own store handle: snapshot vm1 as vm1@s1. */
static int
owner_child_snapshot_fn(const void *dir)
{
	struct ic_store *store;
	int rc;

	if (ic_store_open(dir, &store))
		return 2;
	rc = ic_image_snapshot(store, "vm1@s1");
	ic_store_close(store);
	return rc ? 2 : 0;
}

static void
owner_live_snapshot(void **state)
{
	struct owner_fx *f = *state;
	struct ic_vdisk *vd, *snap;
	struct ic_control *ctl = serve_fx(f, IC_RELEASE_NEVER, &vd);
	char data[4096], back[4096];

	assert_int_equal(owner_child_exec("snapshot", f->fx.dir, false, IC_TAKEOVER_ASK), 0);
	/* The handle goes on, on a new leaf above the snapshot. */
	assert_int_equal(ic_vdisk_layer_id(vd, 1) != 0, true);
	memset(data, 0x77, sizeof(data));
	assert_int_equal(ic_vdisk_pwrite(vd, data, sizeof(data), 0, IC_REQ_FUA), 0);
	assert_int_equal(ic_vdisk_pread(vd, back, sizeof(back), 0), 0);
	assert_memory_equal(back, data, sizeof(data));
	/* The snapshot holds what was written before it. */
	assert_int_equal(ic_vdisk_open(f->fx.store, "vm1@s1", 0, NULL, &snap), 0);
	assert_int_equal(ic_vdisk_pread(snap, back, sizeof(back), 0), 0);
	assert_int_equal(back[0], 0x5a);
	ic_vdisk_close(snap);
	ic_vdisk_close(vd);
	ic_control_stop(ctl);
}

/* A child run by owner_child_exec: its verdict goes to fd 3. */
static int
owner_child_main(char **argv)
{
	const struct child_claim c = { .dir = argv[3], .keep = strcmp(argv[4], "keep") == 0,
				       .how = (enum ic_takeover)atoi(argv[5]) };
	uint8_t verdict;

	ic_log_level = IC_LOG_WARN;
	verdict = (uint8_t)(strcmp(argv[2], "snapshot") == 0 ? owner_child_snapshot_fn(c.dir)
							      : owner_child_claim_fn(&c));
	return write(3, &verdict, 1) == 1 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(owner_claim_and_cas, owner_setup, owner_teardown),
		cmocka_unit_test_setup_teardown(owner_dead_reclaimed, owner_setup, owner_teardown),
		cmocka_unit_test_setup_teardown(owner_lock_decides, owner_setup, owner_teardown),
		cmocka_unit_test_setup_teardown(owner_release_when_unused, owner_setup,
						owner_teardown),
		cmocka_unit_test_setup_teardown(owner_takeover_never, owner_setup, owner_teardown),
		cmocka_unit_test_setup_teardown(owner_release_by_policy, owner_setup, owner_teardown),
		cmocka_unit_test_setup_teardown(owner_policy_never, owner_setup, owner_teardown),
		cmocka_unit_test_setup_teardown(owner_garbage_on_socket, owner_setup,
						owner_teardown),
		cmocka_unit_test_setup_teardown(owner_live_snapshot, owner_setup, owner_teardown),
	};

	if (argc == 6 && strcmp(argv[1], "--child") == 0)
		return owner_child_main(argv);
	owner_self_path = argv[0];
	ic_log_level = IC_LOG_WARN;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
