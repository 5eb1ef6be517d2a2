/* isocache-etcdtool: the etcd client library (etcd/) driven from the shell,
 * for the end-to-end tests against a real cluster (tests/e2e/etcd-*.sh; a
 * test tool: built with the tests, never installed). Every command is one
 * library call or one small scenario (claim, hold), so a test reads as what
 * happens to the cluster and what the client saw. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "etcd/etcd.h"
#include "common/clock.h"

static const char etcdtool_usage[] =
	"Usage: isocache-etcdtool [-t MS] etcd://HOST:PORT[,HOST:PORT...]/PREFIX COMMAND [ARG]...\n"
	"\n"
	"KEY and PREFIX arguments are used as given (the URL's PREFIX only checks\n"
	"that the URL parses).\n"
	"\n"
	"Options:\n"
	"  -t, --timeout MS   bound every call by MS milliseconds (default 5000)\n"
	"  -h, --help         this help (exit status 0)\n"
	"\n"
	"Commands:\n"
	"  get KEY                      print the value; exit 1 if absent\n"
	"  list PREFIX                  print KEY=VALUE lines, then 'revision N'\n"
	"  put KEY VALUE [LEASE]        print the new revision\n"
	"  del KEY                      print how many keys went\n"
	"  cas KEY MOD VALUE            put only if KEY's mod_revision is MOD (0:\n"
	"                               absent): print 'won REV', or 'lost' (exit 1)\n"
	"  claim KEY VALUE GATE         wait (up to 30 s) for file GATE to exist, then\n"
	"                               cas KEY 0 VALUE: many claimers start at once\n"
	"  lease-put KEY VALUE TTL      grant a lease of TTL s, put KEY with it, never\n"
	"                               renew it; print the lease\n"
	"  hold KEY VALUE TTL MARGIN_MS SECONDS\n"
	"                               grant, put KEY with the lease, keep it alive\n"
	"                               (ic_etcd_keeper) for SECONDS; print 'held LEASE',\n"
	"                               then 'kept' with KEY still there, or 'lost after\n"
	"                               N ms, M ms after the last renewal was sent: ERROR'\n"
	"                               (exit 1) when the keeper gives up\n"
	"  revoke LEASE                 end a lease\n"
	"  watch PREFIX REV COUNT       print the first COUNT events under PREFIX from\n"
	"                               revision REV ('PUT KEY VALUE MODREV' or\n"
	"                               'DELETE KEY MODREV')\n"
	"Exit status: 0 success, 1 absent, lost or lease lost, 2 error or usage.\n";

static int64_t
etcdtool_int(const char *s, const char *what)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (!*s || *end || errno) {
		fprintf(stderr, "isocache-etcdtool: %s '%s' is not a number\n", what, s);
		exit(2);
	}
	return v;
}

struct etcdtool {
	struct ic_etcd_url url;
	unsigned timeout_ms;
	struct ic_etcd *etcd;
	int64_t started_ms; /* when the command began */
};

/* The call failed: print the client's message (the library logged it too)
 * and how long the command took, so a test can check the client's deadline
 * without counting the process's start. */
static int
etcdtool_fail(struct etcdtool *t, const char *what, int rc)
{
	fprintf(stderr, "isocache-etcdtool: %s: %s (%s; after %" PRId64 " ms)\n", what,
		ic_etcd_last_error(t->etcd), strerror(-rc), (int64_t)(ic_now_ms() - t->started_ms));
	return 2;
}

/* A call that answers a number: print it, or the error. */
static int
etcdtool_number(struct etcdtool *t, const char *what, int rc, int64_t v)
{
	if (rc < 0)
		return etcdtool_fail(t, what, rc);
	printf("%" PRId64 "\n", v);
	return 0;
}

static int
cmd_get(struct etcdtool *t, char **argv)
{
	struct ic_etcd_kv kv;
	int rc = ic_etcd_get(t->etcd, argv[0], &kv);

	if (rc == -ENOENT)
		return 1;
	if (rc < 0)
		return etcdtool_fail(t, "get", rc);
	printf("%s\n", (char *)kv.value);
	ic_etcd_kv_free(&kv);
	return 0;
}

static int
cmd_list(struct etcdtool *t, char **argv)
{
	struct ic_etcd_kvs kvs;
	int rc = ic_etcd_get_prefix(t->etcd, argv[0], &kvs);

	if (rc < 0)
		return etcdtool_fail(t, "list", rc);
	for (size_t i = 0; i < kvs.n; i++)
		printf("%s=%s\n", kvs.kv[i].key, (char *)kvs.kv[i].value);
	printf("revision %" PRId64 "\n", kvs.revision);
	ic_etcd_kvs_free(&kvs);
	return 0;
}

static int
cmd_put(struct etcdtool *t, char **argv)
{
	int64_t lease = argv[2] ? etcdtool_int(argv[2], "LEASE") : 0, rev = 0;
	int rc = ic_etcd_put(t->etcd, argv[0], argv[1], strlen(argv[1]), lease, &rev);

	return etcdtool_number(t, "put", rc, rev);
}

static int
cmd_del(struct etcdtool *t, char **argv)
{
	int64_t n = 0;
	int rc = ic_etcd_delete(t->etcd, argv[0], false, &n);

	return etcdtool_number(t, "delete", rc, n);
}

static int
etcdtool_cas(struct etcdtool *t, const char *key, int64_t mod, const char *value)
{
	int64_t rev;
	int rc = ic_etcd_cas(t->etcd, key, mod, value, strlen(value), 0, &rev);

	if (rc == -ECANCELED) {
		printf("lost\n");
		return 1;
	}
	if (rc < 0)
		return etcdtool_fail(t, "cas", rc);
	printf("won %" PRId64 "\n", rev);
	return 0;
}

static int
cmd_cas(struct etcdtool *t, char **argv)
{
	return etcdtool_cas(t, argv[0], etcdtool_int(argv[1], "MOD"), argv[2]);
}

static int
cmd_claim(struct etcdtool *t, char **argv)
{
	int64_t deadline = ic_now_ms() + 30000;

	while (access(argv[2], F_OK) != 0) {
		if (ic_now_ms() > deadline) {
			fprintf(stderr, "isocache-etcdtool: gate %s did not open in 30 s\n", argv[2]);
			return 2;
		}
		usleep(1000);
	}
	return etcdtool_cas(t, argv[0], 0, argv[1]);
}

static int
cmd_lease_put(struct etcdtool *t, char **argv)
{
	int64_t lease;
	int rc = ic_etcd_lease_grant(t->etcd, etcdtool_int(argv[2], "TTL"), &lease, NULL);

	if (rc < 0)
		return etcdtool_fail(t, "lease grant", rc);
	rc = ic_etcd_put(t->etcd, argv[0], argv[1], strlen(argv[1]), lease, NULL);
	if (rc < 0)
		return etcdtool_fail(t, "put", rc);
	printf("%" PRId64 "\n", lease);
	return 0;
}

/* hold: the keeper's lost callback wakes the main thread. */
struct hold {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ic_etcd_keeper *keeper;
	bool lost;
	int err;
	int64_t at_ms;
	int64_t since_renewal_ms; /* when lost */
};

static void
hold_lost(void *arg, int64_t lease, int err)
{
	struct hold *h = arg;

	(void)lease;
	pthread_mutex_lock(&h->mu);
	h->lost = true;
	h->err = err;
	h->at_ms = ic_now_ms();
	h->since_renewal_ms = ic_etcd_keeper_since_renewal_ms(h->keeper);
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

static int
cmd_hold(struct etcdtool *t, char **argv)
{
	int64_t ttl = etcdtool_int(argv[2], "TTL"), margin = etcdtool_int(argv[3], "MARGIN_MS");
	int64_t seconds = etcdtool_int(argv[4], "SECONDS"), lease, start;
	struct hold h = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct ic_etcd_kv kv;
	pthread_condattr_t ca;
	struct timespec until;
	int rc;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h.cv, &ca);
	rc = ic_etcd_lease_grant(t->etcd, ttl, &lease, &ttl);
	if (rc < 0)
		return etcdtool_fail(t, "lease grant", rc);
	rc = ic_etcd_put(t->etcd, argv[0], argv[1], strlen(argv[1]), lease, NULL);
	if (rc < 0)
		return etcdtool_fail(t, "put", rc);
	/* The callback reads h.keeper: set it before the thread can call. */
	pthread_mutex_lock(&h.mu);
	rc = ic_etcd_keeper_start(&t->url, t->timeout_ms, lease, ttl, (unsigned)margin, hold_lost,
				  &h, &h.keeper);
	pthread_mutex_unlock(&h.mu);
	if (rc < 0)
		return etcdtool_fail(t, "keeper", rc);
	start = ic_now_ms();
	printf("held %" PRId64 "\n", lease);
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += seconds;
	pthread_mutex_lock(&h.mu);
	while (!h.lost && pthread_cond_timedwait(&h.cv, &h.mu, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&h.mu);
	ic_etcd_keeper_stop(h.keeper);
	if (h.lost) {
		printf("lost after %" PRId64 " ms, %" PRId64 " ms after the last renewal was sent: %s\n",
		       h.at_ms - start, h.since_renewal_ms, strerror(-h.err));
		fflush(stdout); /* seen at once, not at exit (etcd-quorum times it) */
		return 1;
	}
	/* Kept: the key is still there, on our lease, after several TTLs. */
	rc = ic_etcd_get(t->etcd, argv[0], &kv);
	if (rc < 0)
		return etcdtool_fail(t, "get after hold", rc);
	printf("kept %s lease %s\n", (char *)kv.value, kv.lease == lease ? "ours" : "another");
	ic_etcd_kv_free(&kv);
	rc = ic_etcd_lease_revoke(t->etcd, lease);
	return rc < 0 ? etcdtool_fail(t, "revoke", rc) : 0;
}

static int
cmd_revoke(struct etcdtool *t, char **argv)
{
	int rc = ic_etcd_lease_revoke(t->etcd, etcdtool_int(argv[0], "LEASE"));

	return rc < 0 ? etcdtool_fail(t, "revoke", rc) : 0;
}

struct watch_count {
	int64_t left;
};

static int
watch_print(void *arg, const struct ic_etcd_event *ev)
{
	struct watch_count *w = arg;

	if (ev->type == IC_ETCD_EVENT_PUT)
		printf("PUT %s %s %" PRId64 "\n", ev->kv.key, (char *)ev->kv.value,
		       ev->kv.mod_revision);
	else
		printf("DELETE %s %" PRId64 "\n", ev->kv.key, ev->kv.mod_revision);
	fflush(stdout);
	return --w->left == 0;
}

static int
cmd_watch(struct etcdtool *t, char **argv)
{
	struct watch_count w = { .left = etcdtool_int(argv[2], "COUNT") };
	int rc = ic_etcd_watch(t->etcd, argv[0], true, etcdtool_int(argv[1], "REV"), 0,
			       watch_print, &w);

	return rc < 0 ? etcdtool_fail(t, "watch", rc) : 0;
}

static const struct {
	const char *name;
	int min_args, max_args;
	int (*fn)(struct etcdtool *t, char **argv);
} etcdtool_cmds[] = {
	{ "get", 1, 1, cmd_get },
	{ "list", 1, 1, cmd_list },
	{ "put", 2, 3, cmd_put },
	{ "del", 1, 1, cmd_del },
	{ "cas", 3, 3, cmd_cas },
	{ "claim", 3, 3, cmd_claim },
	{ "lease-put", 3, 3, cmd_lease_put },
	{ "hold", 5, 5, cmd_hold },
	{ "revoke", 1, 1, cmd_revoke },
	{ "watch", 3, 3, cmd_watch },
};

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct etcdtool t = { 0 };
	int c, nargs, rc;

	ic_log_set_program("isocache-etcdtool");
	while ((c = getopt_long(argc, argv, "+t:h", opts, NULL)) != -1) {
		if (c == 't') {
			t.timeout_ms = (unsigned)etcdtool_int(optarg, "timeout");
		} else if (c == 'h') {
			fputs(etcdtool_usage, stdout);
			return 0;
		} else {
			fputs(etcdtool_usage, stderr);
			return 2;
		}
	}
	if (argc - optind < 2) {
		fputs(etcdtool_usage, stderr);
		return 2;
	}
	if (ic_etcd_url_parse(argv[optind], &t.url) < 0)
		return 2;
	nargs = argc - optind - 2;
	for (size_t i = 0; i < sizeof(etcdtool_cmds) / sizeof(etcdtool_cmds[0]); i++) {
		if (strcmp(argv[optind + 1], etcdtool_cmds[i].name) != 0)
			continue;
		if (nargs < etcdtool_cmds[i].min_args || nargs > etcdtool_cmds[i].max_args) {
			fputs(etcdtool_usage, stderr);
			return 2;
		}
		rc = ic_etcd_open(&t.url, t.timeout_ms, &t.etcd);
		if (rc < 0)
			return 2;
		t.started_ms = ic_now_ms();
		rc = etcdtool_cmds[i].fn(&t, argv + optind + 2);
		ic_etcd_close(t.etcd);
		return rc;
	}
	fprintf(stderr, "isocache-etcdtool: unknown command '%s'\n", argv[optind + 1]);
	return 2;
}
