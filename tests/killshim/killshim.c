/* The commit-fault shim: an LD_PRELOAD library that makes the Nth LMDB
 * write-transaction commit of a process fail, to test what an operation
 * leaves behind when it stops between its steps (tests/e2e/store-*.sh).
 *
 *   IC_COMMIT_FAULT=kill:N   SIGKILL the process as it enters the Nth
 *                            commit: a crash before the commit is durable
 *   IC_COMMIT_FAULT=fail:N   abort the Nth commit and return EIO: a failed
 *                            commit (full disk, I/O error)
 *
 * Without the variable the shim only passes calls through. Read-only
 * transactions are not counted (isocache ends them with mdb_txn_abort). */
#include <dlfcn.h>
#include <errno.h>
#include <lmdb.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KS_EXPORT __attribute__((visibility("default")))

static atomic_long ks_commits;

KS_EXPORT int
mdb_txn_commit(MDB_txn *txn)
{
	static int (*real)(MDB_txn *);
	const char *spec = getenv("IC_COMMIT_FAULT");
	long at = spec && strchr(spec, ':') ? atol(strchr(spec, ':') + 1) : 0;

	if (!real)
		real = (int (*)(MDB_txn *))dlsym(RTLD_NEXT, "mdb_txn_commit");
	if (at > 0 && atomic_fetch_add(&ks_commits, 1) + 1 == at) {
		fprintf(stderr, "killshim: commit %ld: %s\n", at, spec);
		if (strncmp(spec, "kill:", 5) == 0)
			raise(SIGKILL);
		mdb_txn_abort(txn);
		return EIO;
	}
	return real(txn);
}
