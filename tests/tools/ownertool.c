/* isocache-ownertool: owner/'s claim across hosts driven from the shell, for
 * the multi-host end-to-end tests (tests/e2e/hosts-*.sh; a test tool,
 * built with the tests, never installed). It claims through owner_claim as
 * a front end does, with ownership in etcd (ISOCACHE_OWNER_ETCD,
 * ISOCACHE_LEASE_TTL), and prints what it held when, on the monotonic
 * clock, which every namespace of this machine shares: a test compares the
 * intervals of claimers on different "hosts". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "owner/owner.h"

static const char ownertool_usage[] =
	"Usage: isocache-ownertool STORE COMMAND [ARG]...\n"
	"\n"
	"Commands (ownership in etcd: set ISOCACHE_OWNER_ETCD):\n"
	"  rounds NAME ROUNDS HOLD_MS   ROUNDS times: claim NAME (waiting up to 120 s for\n"
	"                               it), print 'won TOKEN T0', hold it HOLD_MS ms,\n"
	"                               print 'end TOKEN T1', release it; T0 and T1 are\n"
	"                               monotonic ms. A claim fenced while held prints\n"
	"                               'fenced TOKEN T' (exit 3)\n"
	"  hold NAME SECONDS            claim NAME, print 'held TOKEN T0', keep it\n"
	"                               SECONDS s; print 'fenced TOKEN T' (exit 3) as soon\n"
	"                               as the claim is fenced, else release it\n"
	"Exit status: 0 done, 1 not claimed, 2 usage, 3 fenced.\n";

/* Hold claim until until_ms (ic_now_ms); 3 if fenced on the way. */
static int
ownertool_hold(struct owner_claim *claim, long long until_ms)
{
	while (ic_now_ms() < until_ms) {
		if (owner_fenced(claim)) {
			printf("fenced %llu %lld\n", (unsigned long long)claim->generation,
			       ic_now_ms());
			fflush(stdout);
			return 3;
		}
		usleep(5000);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct owner_store os = { .handoff_ms = 120000, .takeover = IC_TAKEOVER_ASK };
	bool each = argc == 6 && strcmp(argv[2], "rounds") == 0;
	long rounds = each ? atol(argv[4]) : 1;
	long long hold_ms;
	char who[64];
	int rc = 0;

	ic_log_set_program("isocache-ownertool");
	if (!each && !(argc == 5 && strcmp(argv[2], "hold") == 0)) {
		fputs(ownertool_usage, stderr);
		return 2;
	}
	os.dir = argv[1];
	hold_ms = each ? atoll(argv[5]) : atoll(argv[4]) * 1000;
	snprintf(who, sizeof(who), "isocache-ownertool %s", argv[2]);
	for (long i = 0; i < rounds && rc == 0; i++) {
		struct owner_claim claim;

		if (owner_claim(&os, argv[3], who, &claim))
			return 1;
		printf("%s %llu %lld\n", each ? "won" : "held", (unsigned long long)claim.generation,
		       ic_now_ms());
		fflush(stdout);
		rc = ownertool_hold(&claim, ic_now_ms() + hold_ms);
		if (rc == 0) {
			printf("end %llu %lld\n", (unsigned long long)claim.generation, ic_now_ms());
			fflush(stdout);
			owner_release(&os, &claim);
		}
		owner_drop(&claim);
	}
	return rc;
}
