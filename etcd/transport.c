/* Every call to etcd goes through here: one POST to a member's gateway with
 * libcurl, a deadline, and failover to the next member.
 *
 * Any request may go to the next member when it cannot have been applied:
 * no byte of it was sent (the member refused, did not connect within its
 * share of the deadline, or failed the TLS handshake), or it answered that
 * it was not proposed (no leader, "raft proposal dropped", too many
 * requests: -EAGAIN). A request that changes records and reached a member
 * but got no answer (a timeout, a connection cut), or an answer that its
 * outcome is unknown (etcd timed it out, or stopped with it), fails with
 * -ETIMEDOUT or -ECONNRESET: a put may yet be applied, so it is the
 * caller's to retry, not ours, and the next call begins at the next
 * member.
 *
 * Reads and lease calls (transport_repeatable) are safe to send twice, so
 * for them a member that hangs (stopped, overloaded) or cuts the connection
 * is one more reason to ask the next one, and each attempt, not only its
 * connection, gets the time left divided by the members left in the round:
 * one frozen member cannot eat the deadline of a lease renewal (a read
 * gets up to TRANSPORT_READ_MIN_MS more, for large ranges). Rounds go
 * on until the deadline while some member hung or answered "unavailable"
 * (it may answer once it is less busy, or an election is over); a round
 * in which every member refused or cut the connection ends the call at
 * once. A request that changes records gets one round, unless its caller
 * made it apply at most once and said so (ic_etcd_set_resend): then it is
 * sent round the members as a read is.
 *
 * A watch is a long answer that may stay quiet for its whole time, but
 * its first message (the watch created) comes at once from a member that
 * works: a watch whose member sent no byte of an answer within its share
 * (at most TRANSPORT_READ_MIN_MS) moves on to the next member, and the
 * member whose watch did answer is the one asked first next time. A
 * member that hangs after the watch began is noticed when the watch's
 * time runs out.
 *
 * libcurl is loaded with dlopen when the first client opens, not linked:
 * linked, it and the libraries it brings (OpenSSL, Kerberos, LDAP, SSH,
 * RTMP, HTTP/2, brotli: 21 of isocache-nbd's 43) were mapped and relocated
 * in every process that links the store code, which is every front end,
 * whether its store is in etcd or not. Their relocated data alone was
 * 0.7 MiB private per process, about 1 MiB of each isocache-nbd's 3.3 MiB
 * PSS (bench/boot-storm: one front end per clone). */
#include "etcd/internal.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "common/clock.h"
#include "common/dynlib.h"
#include "common/json.h"
#include "common/log.h"

#define TRANSPORT_DEFAULT_TIMEOUT_MS 5000
#define TRANSPORT_ANSWER_MAX (64u << 20) /* a range of a whole store stays below */
#define TRANSPORT_ROUND_PAUSE_MS 50 /* between rounds over every member */
/* How often an attempt whose caller may stop waiting (ic_etcd_set_go_on)
 * asks it while it waits: a commit in flight when its owner's lease's
 * validity runs out is given up this long after at most. (libcurl's
 * progress calls come about once a second when nothing arrives: a fenced
 * owner's flush failed up to a second after its fence.) */
#define TRANSPORT_GO_ON_MS 20
#define TRANSPORT_ATTEMPT_MIN_MS 10  /* less left than this: the deadline has come */
/* A read's attempt, and a resent write's, gets at least this much, or
 * half of what is left: a range of a large store, or a commit of many
 * keys, may take a while on a busy cluster, and a hang of the member asked
 * first costs a call this much once. */
#define TRANSPORT_READ_MIN_MS 2000
/* A member's refusal, the same as the last one this client logged for it,
 * is not logged again within this long; nor is "none reachable". Cut off
 * from etcd, a commit sent again every 100 ms logged five lines a time. */
#define TRANSPORT_QUIET_MS 10000

/* How an attempt ended without an answer (besides 0 and -errno). */
enum {
	TRANSPORT_UNREACHED = 1, /* never reached the member */
	TRANSPORT_HUNG = 2,	 /* a repeatable request or a watch: no answer in its time */
	TRANSPORT_CUT = 3,	 /* a repeatable request: the connection broke */
};

/* What is checked while an attempt waits (transport_perform): the bound
 * on its answer's first byte (a watch's), and the client's go_on. */
struct transport_progress {
	int64_t until_ms; /* ic_now_ms; 0: no bound, or a byte came */
	bool silent;      /* the bound passed with no byte: the attempt stopped */
	bool stopped;     /* go_on said no: the attempt stopped */
};

struct ic_etcd {
	struct ic_etcd_url url;
	/* etcds://: the CA file (NULL: the system's), the client certificate
	 * and key (NULL: none), from the environment at open */
	char *ca, *cert, *key;
	unsigned timeout_ms;
	unsigned current; /* the member that answered last */
	int64_t attempt_ms; /* monotonic: when the attempt under way, or the last, began */
	const char *at;   /* the member of the attempt under way, for messages */
	CURL *curl;
	CURLM *multi; /* curl runs in it, so that go_on is asked often */
	char error[512];
	/* A cluster with authentication on: the user (ISOCACHE_ETCD_USER, ""
	 * for none) and the token its last authentication got ("" before the
	 * first, and after etcd said it is no longer valid). */
	char user[IC_ETCD_USER_MAX];
	char token[IC_ETCD_TOKEN_MAX];
	/* ic_etcd_set_go_on: NULL, or calls stop once it returns false */
	bool (*go_on)(void *arg);
	void *go_on_arg;
	bool resend; /* ic_etcd_set_resend: writes are repeatable too */
	unsigned unanswered; /* ic_etcd_unanswered */
	/* What was last logged of each member being unreachable, and of none
	 * being so (the last slot), and when (TRANSPORT_QUIET_MS). */
	struct {
		char msg[128];
		int64_t ms;
	} said[IC_ETCD_ENDPOINTS_MAX + 1];
};

/* What an attempt does with the answer's bytes. */
struct transport_sink {
	size_t (*write)(char *data, size_t size, size_t n, void *ctx);
	void (*reset)(void *ctx);
	/* The transfer ended (aborted by write: stopped); 0, -EAGAIN (fail
	 * over) or -errno, recorded with ic_etcd_fail. */
	int (*finish)(struct ic_etcd *etcd, void *ctx, long http, bool stopped);
	void *ctx;
};

/* curl's soname since 7.16 (2006). */
#define TRANSPORT_LIBCURL "libcurl.so.4"

/* The libcurl calls this file makes, from the library loaded once. */
static struct {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *c);
	void (*easy_reset)(CURL *c);
	CURLcode (*easy_setopt)(CURL *c, CURLoption opt, ...);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_cleanup)(CURLM *m);
	CURLMcode (*multi_add_handle)(CURLM *m, CURL *c);
	CURLMcode (*multi_remove_handle)(CURLM *m, CURL *c);
	CURLMcode (*multi_perform)(CURLM *m, int *running);
	CURLMcode (*multi_poll)(CURLM *m, struct curl_waitfd *extra, unsigned n, int timeout_ms,
				int *numfds);
	CURLMsg *(*multi_info_read)(CURLM *m, int *left);
	const char *(*multi_strerror)(CURLMcode mc);
	CURLcode (*easy_getinfo)(CURL *c, CURLINFO info, ...);
	const char *(*easy_strerror)(CURLcode res);
	struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
	void (*slist_free_all)(struct curl_slist *l);
} lc;

static pthread_once_t transport_once = PTHREAD_ONCE_INIT;
static int transport_loaded; /* 0 once libcurl is loaded and initialized */

static void
transport_global_init(void)
{
	static const struct ic_dynsym syms[] = {
		{ "curl_global_init", (void **)&lc.global_init },
		{ "curl_easy_init", (void **)&lc.easy_init },
		{ "curl_easy_cleanup", (void **)&lc.easy_cleanup },
		{ "curl_easy_reset", (void **)&lc.easy_reset },
		{ "curl_easy_setopt", (void **)&lc.easy_setopt },
		{ "curl_multi_init", (void **)&lc.multi_init },
		{ "curl_multi_cleanup", (void **)&lc.multi_cleanup },
		{ "curl_multi_add_handle", (void **)&lc.multi_add_handle },
		{ "curl_multi_remove_handle", (void **)&lc.multi_remove_handle },
		{ "curl_multi_perform", (void **)&lc.multi_perform },
		{ "curl_multi_poll", (void **)&lc.multi_poll },
		{ "curl_multi_info_read", (void **)&lc.multi_info_read },
		{ "curl_multi_strerror", (void **)&lc.multi_strerror },
		{ "curl_easy_getinfo", (void **)&lc.easy_getinfo },
		{ "curl_easy_strerror", (void **)&lc.easy_strerror },
		{ "curl_slist_append", (void **)&lc.slist_append },
		{ "curl_slist_free_all", (void **)&lc.slist_free_all },
	};
	CURLcode res;

	transport_loaded = ic_dynlib_load("etcd", TRANSPORT_LIBCURL, syms,
					  sizeof(syms) / sizeof(syms[0]));
	if (transport_loaded < 0)
		return;
	res = lc.global_init(CURL_GLOBAL_DEFAULT);
	if (res != CURLE_OK) {
		ic_log(IC_LOG_ERR, "etcd: libcurl: %s", lc.easy_strerror(res));
		transport_loaded = -ENOMEM;
	}
}

/* ISOCACHE_ETCD_CA, _CERT and _KEY into etcd (etcds:// only). */
static int
transport_tls_config(struct ic_etcd *etcd)
{
	const char *ca = getenv("ISOCACHE_ETCD_CA"), *cert = getenv("ISOCACHE_ETCD_CERT");
	const char *key = getenv("ISOCACHE_ETCD_KEY");

	if (!etcd->url.tls) {
		static atomic_flag warned = ATOMIC_FLAG_INIT; /* once a process */

		if (((ca && *ca) || (cert && *cert) || (key && *key)) &&
		    !atomic_flag_test_and_set(&warned))
			ic_log(IC_LOG_WARN, "etcd: ISOCACHE_ETCD_CA, _CERT or _KEY is set but the URL "
			       "is etcd://, plain http: they are not used (etcds:// for TLS)");
		return 0;
	}
	if (!(cert && *cert) != !(key && *key)) {
		ic_log(IC_LOG_ERR, "etcd: ISOCACHE_ETCD_CERT and ISOCACHE_ETCD_KEY go together: "
				   "give both (the client certificate and its key) or neither");
		return -EINVAL;
	}
	if ((ca && *ca && !(etcd->ca = strdup(ca))) ||
	    (cert && *cert && (!(etcd->cert = strdup(cert)) || !(etcd->key = strdup(key)))))
		return -ENOMEM;
	return 0;
}

int
ic_etcd_open(const struct ic_etcd_url *url, unsigned timeout_ms, struct ic_etcd **out)
{
	struct ic_etcd *etcd;
	int rc;

	if (url->n == 0) {
		ic_log(IC_LOG_ERR, "etcd: no endpoints to talk to");
		return -EINVAL;
	}
	pthread_once(&transport_once, transport_global_init);
	if (transport_loaded < 0)
		return transport_loaded;
	etcd = calloc(1, sizeof(*etcd));
	if (!etcd)
		return -ENOMEM;
	etcd->url = *url;
	etcd->timeout_ms = timeout_ms ? timeout_ms : TRANSPORT_DEFAULT_TIMEOUT_MS;
	etcd->at = etcd->url.endpoint[0];
	etcd->curl = lc.easy_init();
	etcd->multi = lc.multi_init();
	rc = etcd->curl && etcd->multi ? transport_tls_config(etcd) : -ENOMEM;
	if (rc == 0)
		rc = ic_etcd_auth_user(etcd->user);
	if (rc == 0 && etcd->user[0] && !etcd->url.tls) {
		static atomic_flag warned = ATOMIC_FLAG_INIT; /* once a process */

		if (!atomic_flag_test_and_set(&warned))
			ic_log(IC_LOG_WARN, "etcd: the password of ISOCACHE_ETCD_USER goes in the "
			       "clear over etcd:// (plain http); use etcds:// (TLS)");
	}
	if (rc) {
		ic_etcd_close(etcd);
		return rc;
	}
	*out = etcd;
	return 0;
}

void
ic_etcd_close(struct ic_etcd *etcd)
{
	if (!etcd)
		return;
	if (etcd->multi)
		lc.multi_cleanup(etcd->multi);
	if (etcd->curl)
		lc.easy_cleanup(etcd->curl);
	free(etcd->ca);
	free(etcd->cert);
	free(etcd->key);
	free(etcd);
}

const char *
ic_etcd_last_error(const struct ic_etcd *etcd)
{
	return etcd->error;
}

void
ic_etcd_set_go_on(struct ic_etcd *etcd, bool (*fn)(void *arg), void *arg)
{
	etcd->go_on = fn;
	etcd->go_on_arg = arg;
}

void
ic_etcd_set_resend(struct ic_etcd *etcd, bool on)
{
	etcd->resend = on;
}

unsigned
ic_etcd_unanswered(const struct ic_etcd *etcd)
{
	return etcd->unanswered;
}

/* Does the client's caller still wait for its call? */
static bool
transport_go_on(const struct ic_etcd *etcd)
{
	return !etcd->go_on || etcd->go_on(etcd->go_on_arg);
}

const char *
ic_etcd_endpoint(const struct ic_etcd *etcd)
{
	return etcd->url.endpoint[etcd->current];
}

int64_t
ic_etcd_attempt_ms(const struct ic_etcd *etcd)
{
	return etcd->attempt_ms;
}

/* What to add to etcd's words about authentication: what to set, or which
 * permission the user lacks. */
static void
transport_auth_hint(const struct ic_etcd *etcd, const char *what, char *hint, size_t cap)
{
	hint[0] = '\0';
	if (strstr(what, "user name is empty"))
		snprintf(hint, cap, " (the cluster has authentication on: set ISOCACHE_ETCD_USER "
				    "and ISOCACHE_ETCD_PASSWORD_FILE)");
	else if (strstr(what, "CommonName of client"))
		snprintf(hint, cap, " (with etcd's users on, the client certificate, "
				    "ISOCACHE_ETCD_CERT, must have no common name)");
	else if (strstr(what, "invalid user ID or password"))
		snprintf(hint, cap, " (check ISOCACHE_ETCD_USER, %s, and the password in "
				    "ISOCACHE_ETCD_PASSWORD_FILE)", etcd->user);
	else if (strstr(what, "permission denied") && etcd->user[0])
		snprintf(hint, cap, " (etcd user %s: grant its role readwrite on the prefix "
				    "/isocache/%s/)", etcd->user, etcd->url.prefix);
}

void
ic_etcd_fail(struct ic_etcd *etcd, const char *fmt, ...)
{
	char what[400], hint[IC_ETCD_USER_MAX + IC_ETCD_PREFIX_MAX + 96];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	transport_auth_hint(etcd, what, hint, sizeof(hint));
	snprintf(etcd->error, sizeof(etcd->error), "etcd %s: %s%s", etcd->at, what, hint);
	ic_log(IC_LOG_ERR, "%s", etcd->error);
}

/* What to add to a failed transfer's message: which setting to check when
 * TLS went wrong, or that a member speaking TLS was asked in plain http. */
static const char *
transport_hint(const struct ic_etcd *etcd, CURLcode res, const char *cerr)
{
	if (!etcd->url.tls && res == CURLE_GOT_NOTHING)
		return " (if the member speaks TLS, use etcds://)";
	/* A member that refuses our certificate may close the connection
	 * before curl reads its alert: a failed receive or send counts too. */
	if (etcd->url.tls && (res == CURLE_SSL_CONNECT_ERROR ||
			      res == CURLE_PEER_FAILED_VERIFICATION ||
			      res == CURLE_SSL_CERTPROBLEM || res == CURLE_SSL_CACERT_BADFILE ||
			      res == CURLE_RECV_ERROR || res == CURLE_SEND_ERROR ||
			      res == CURLE_GOT_NOTHING || strstr(cerr, "SSL")))
		return " (TLS: check ISOCACHE_ETCD_CA, ISOCACHE_ETCD_CERT and ISOCACHE_ETCD_KEY)";
	return "";
}

/* Requests that change nothing (kv/range) or that may be repeated with
 * the same effect (a lease renewed or revoked twice; a lease granted twice
 * leaves one unused, which expires after its TTL). */
static bool
transport_repeatable(const char *path)
{
	static const char *const paths[] = { "kv/range", "lease/grant", "lease/keepalive",
					     "lease/revoke", "auth/authenticate" };

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (strcmp(path, paths[i]) == 0)
			return true;
	return false;
}

/* Curl's results for a connection that broke after it was made. */
static bool
transport_cut(CURLcode res)
{
	return res == CURLE_RECV_ERROR || res == CURLE_SEND_ERROR || res == CURLE_GOT_NOTHING ||
	       res == CURLE_PARTIAL_FILE;
}

/* Has the attempt on etcd->curl had no byte of its answer by its bound? */
static bool
transport_silent(struct ic_etcd *etcd, struct transport_progress *prog)
{
	curl_off_t got = 0;

	if (!prog->until_ms)
		return false;
	if (lc.easy_getinfo(etcd->curl, CURLINFO_SIZE_DOWNLOAD_T, &got) == CURLE_OK && got > 0) {
		prog->until_ms = 0;
		return false;
	}
	return ic_now_ms() >= prog->until_ms;
}

/* The attempt set up on etcd->curl, run to its end as curl_easy_perform
 * would, but in etcd->multi, so as to look every TRANSPORT_GO_ON_MS while
 * it waits: an attempt its caller no longer waits for (go_on) stops with
 * CURLE_ABORTED_BY_CALLBACK and prog->stopped, one that had no byte of
 * its answer by its bound with prog->silent. */
static CURLcode
transport_perform(struct ic_etcd *etcd, struct transport_progress *prog, char *cerr)
{
	CURLMcode mc = lc.multi_add_handle(etcd->multi, etcd->curl);
	CURLcode res = CURLE_FAILED_INIT;
	int running = 1, left;
	CURLMsg *msg;

	while (mc == CURLM_OK) {
		mc = lc.multi_perform(etcd->multi, &running);
		if (mc != CURLM_OK || !running)
			break;
		prog->stopped = !transport_go_on(etcd);
		prog->silent = !prog->stopped && transport_silent(etcd, prog);
		if (prog->stopped || prog->silent) {
			res = CURLE_ABORTED_BY_CALLBACK;
			break;
		}
		/* At most this long, or less when a timer of libcurl's is due. */
		mc = lc.multi_poll(etcd->multi, NULL, 0,
				   etcd->go_on || prog->until_ms ? TRANSPORT_GO_ON_MS : 1000, NULL);
	}
	while ((msg = lc.multi_info_read(etcd->multi, &left)))
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == etcd->curl)
			res = msg->data.result;
	if (mc != CURLM_OK)
		snprintf(cerr, CURL_ERROR_SIZE, "libcurl: %s", lc.multi_strerror(mc));
	lc.multi_remove_handle(etcd->multi, etcd->curl);
	return res;
}

/* One attempt at member ep, within left_ms (its connection within
 * connect_ms; with first_ms, the first byte of its answer within that).
 * Returns 0 or -errno (an answer, or a failure to report),
 * TRANSPORT_UNREACHED, for a repeatable request TRANSPORT_HUNG or
 * TRANSPORT_CUT, and TRANSPORT_HUNG when first_ms passed silent. */
static int
transport_attempt(struct ic_etcd *etcd, const char *ep, const char *path, const char *body,
		  int64_t left_ms, int64_t connect_ms, int64_t first_ms, bool repeatable,
		  const struct transport_sink *sink)
{
	struct transport_progress prog = { .until_ms = first_ms ? ic_now_ms() + first_ms : 0 };
	char url[IC_ETCD_ENDPOINT_MAX + 64], cerr[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers;
	long sent = 0;
	curl_off_t got = 0;
	const char *what, *hint;
	long http = 0;
	CURLcode res;
	CURL *c = etcd->curl;

	etcd->at = ep;
	etcd->attempt_ms = ic_now_ms();
	snprintf(url, sizeof(url), "%s://%s/v3/%s", etcd->url.tls ? "https" : "http", ep, path);
	headers = lc.slist_append(NULL, "Content-Type: application/json");
	if (headers && etcd->token[0]) {
		char auth[IC_ETCD_TOKEN_MAX + 32];
		struct curl_slist *more;

		snprintf(auth, sizeof(auth), "Authorization: %s", etcd->token);
		more = lc.slist_append(headers, auth);
		headers = more ? more : headers;
	}
	lc.easy_reset(c);
	lc.easy_setopt(c, CURLOPT_URL, url);
	lc.easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	lc.easy_setopt(c, CURLOPT_POSTFIELDS, body);
	lc.easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)left_ms);
	lc.easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms);
	lc.easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM */
	lc.easy_setopt(c, CURLOPT_NOPROXY, "*"); /* cluster members, never a proxy */
	lc.easy_setopt(c, CURLOPT_WRITEFUNCTION, sink->write);
	lc.easy_setopt(c, CURLOPT_WRITEDATA, sink->ctx);
	lc.easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	if (etcd->url.tls) {
		lc.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
		if (etcd->ca)
			lc.easy_setopt(c, CURLOPT_CAINFO, etcd->ca);
		if (etcd->cert) {
			lc.easy_setopt(c, CURLOPT_SSLCERT, etcd->cert);
			lc.easy_setopt(c, CURLOPT_SSLKEY, etcd->key);
		}
	} else {
		lc.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
	}
	sink->reset(sink->ctx);
	res = transport_perform(etcd, &prog, cerr);
	lc.slist_free_all(headers);
	lc.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
	/* Bytes of the request sent: none means the member cannot have it.
	 * (Not the connect time, which is 0 on a connection kept from an
	 * earlier call, however long the member then kept silent.) */
	lc.easy_getinfo(c, CURLINFO_REQUEST_SIZE, &sent);
	lc.easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);

	if (res == CURLE_OK || res == CURLE_WRITE_ERROR)
		return sink->finish(etcd, sink->ctx, http, res == CURLE_WRITE_ERROR);
	if (res == CURLE_ABORTED_BY_CALLBACK && prog.stopped) {
		ic_etcd_fail(etcd, "abandoned: its caller no longer waits for it%s",
			     sent ? " (it was sent, and may yet be applied)" : "");
		return -EOWNERDEAD;
	}
	what = cerr[0] ? cerr : lc.easy_strerror(res);
	hint = transport_hint(etcd, res, cerr);
	if (sent == 0) {
		/* Refused, not connected in time, its TLS handshake failed: the
		 * member cannot have the request. Logged by the caller. */
		snprintf(etcd->error, sizeof(etcd->error), "etcd %s: %s%s", ep, what, hint);
		return TRANSPORT_UNREACHED;
	}
	if ((res == CURLE_ABORTED_BY_CALLBACK && prog.silent) ||
	    (res == CURLE_OPERATION_TIMEDOUT && repeatable)) {
		snprintf(etcd->error, sizeof(etcd->error), "etcd %s: no answer to %s within %lld ms",
			 ep, path, (long long)(prog.silent ? first_ms : left_ms));
		ic_log(IC_LOG_WARN, "%s; asking the next member", etcd->error);
		return TRANSPORT_HUNG;
	}
	/* A watch (first_ms) whose answer began and that ran its time out is
	 * done: its caller chose the time, and begins it again. Not an error
	 * to log: every watch slice of every served vdisk ended so, and each
	 * logged "quorum lost?". */
	if (res == CURLE_OPERATION_TIMEDOUT && first_ms &&
	    lc.easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &got) == CURLE_OK && got > 0) {
		snprintf(etcd->error, sizeof(etcd->error), "etcd %s: the watch ran its %lld ms",
			 ep, (long long)left_ms);
		return -ETIMEDOUT;
	}
	if (res == CURLE_OPERATION_TIMEDOUT) {
		ic_etcd_fail(etcd, "no answer within %lld ms (quorum lost?)", (long long)left_ms);
		return -ETIMEDOUT;
	}
	/* Sent, then the connection broke; or libcurl, finding a kept
	 * connection dead with no answer, sent the request again on a new one,
	 * which failed. Either way the member may have it. */
	if (transport_cut(res) || res == CURLE_COULDNT_CONNECT) {
		if (repeatable) {
			snprintf(etcd->error, sizeof(etcd->error), "etcd %s: %s%s", ep, what, hint);
			ic_log(IC_LOG_WARN, "%s; asking the next member", etcd->error);
			return TRANSPORT_CUT;
		}
		ic_etcd_fail(etcd, "%s after the request was sent%s", what, hint);
		return -ECONNRESET;
	}
	ic_etcd_fail(etcd, "%s%s", what, hint);
	return -EIO;
}

/* Should etcd->error be logged, as what slot (a member's index, or
 * url.n for "none reachable") says? Not when this client logged the same
 * within TRANSPORT_QUIET_MS. */
static bool
transport_say(struct ic_etcd *etcd, unsigned slot)
{
	char now_said[sizeof(etcd->said[0].msg)];
	const char *a = etcd->said[slot].msg, *b = now_said;
	size_t len = strnlen(etcd->error, sizeof(now_said) - 1);
	int64_t now = ic_now_ms();

	memcpy(now_said, etcd->error, len);
	now_said[len] = '\0';
	/* The same but for numbers ("after 0 ms", "after 1 ms")? */
	while (*a && *b) {
		if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
			while (isdigit((unsigned char)*a))
				a++;
			while (isdigit((unsigned char)*b))
				b++;
		} else if (*a != *b) {
			break;
		} else {
			a++, b++;
		}
	}
	if (!*a && !*b && etcd->said[slot].ms && now - etcd->said[slot].ms < TRANSPORT_QUIET_MS)
		return false;
	memcpy(etcd->said[slot].msg, now_said, sizeof(now_said));
	etcd->said[slot].ms = now;
	return true;
}

static int
transport_run(struct ic_etcd *etcd, const char *path, struct json_object *req,
	      unsigned timeout_ms, const struct transport_sink *sink)
{
	const unsigned n = etcd->url.n, budget = timeout_ms ? timeout_ms : etcd->timeout_ms;
	const bool resent = etcd->resend && !transport_repeatable(path);
	const bool repeatable = resent || transport_repeatable(path);
	const bool read = strcmp(path, "kv/range") == 0;
	const bool watch = strcmp(path, "watch") == 0;
	bool again = false; /* some member of this round may answer later */
	bool hung = false;  /* some member hung: a timeout, not "unreachable" */
	unsigned idx = etcd->current; /* the member of the last attempt */
	const char *body;
	int64_t deadline;
	int rc = -ENOMEM;

	if (!req) {
		ic_etcd_fail(etcd, "out of memory building a request for /v3/%s", path);
		return -ENOMEM;
	}
	body = json_object_to_json_string_ext(req, IC_JSON_FLAGS);
	deadline = ic_now_ms() + budget;
	etcd->unanswered = 0;
	for (unsigned i = 0; body; i++) {
		idx = (etcd->current + i) % n;
		unsigned pos = i % n;
		int64_t left = deadline - ic_now_ms(), share, first;

		if (i > 0 && pos == 0) { /* a whole round without an answer */
			if (!repeatable || !again)
				break;
			again = false;
			ic_sleep_ms(left < TRANSPORT_ROUND_PAUSE_MS ? left
								 : TRANSPORT_ROUND_PAUSE_MS);
			left = deadline - ic_now_ms();
		}
		if (!transport_go_on(etcd)) {
			etcd->at = etcd->url.endpoint[idx];
			ic_etcd_fail(etcd, "abandoned: its caller no longer waits for it");
			rc = -EOWNERDEAD;
			break;
		}
		if (left < TRANSPORT_ATTEMPT_MIN_MS) {
			/* An "unavailable" answer or a hung attempt says more. */
			if (rc != -EAGAIN && rc != TRANSPORT_HUNG) {
				ic_etcd_fail(etcd, "no answer from any member within %u ms",
					     budget);
				rc = -ETIMEDOUT;
			}
			break;
		}
		share = left / (n - pos);
		if ((read || watch || resent) && share < TRANSPORT_READ_MIN_MS && share < left / 2)
			share = left / 2 < TRANSPORT_READ_MIN_MS ? left / 2 : TRANSPORT_READ_MIN_MS;
		if (share < TRANSPORT_ATTEMPT_MIN_MS)
			share = TRANSPORT_ATTEMPT_MIN_MS;
		first = !watch ? 0 : share < TRANSPORT_READ_MIN_MS ? share : TRANSPORT_READ_MIN_MS;
		rc = transport_attempt(etcd, etcd->url.endpoint[idx], path, body,
				       repeatable ? share : left, share, first, repeatable, sink);
		if (rc == TRANSPORT_UNREACHED && transport_say(etcd, idx))
			ic_log(IC_LOG_WARN, "%s", etcd->error);
		/* Answered, but with an unknown outcome (etcd timed it out, or
		 * stopped with it; ic_etcd_decode_error): a request safe to
		 * send again moves on, as from a member that hung or cut it. */
		if (repeatable && !watch && (rc == -ETIMEDOUT || rc == -ECONNRESET)) {
			ic_log(IC_LOG_WARN, "%s; asking the next member", etcd->error);
			rc = rc == -ETIMEDOUT ? TRANSPORT_HUNG : TRANSPORT_CUT;
		}
		/* A watch that ran out its time had its answer begun. */
		if (rc == 0 || (watch && rc == -ETIMEDOUT))
			etcd->current = idx;
		if (rc != TRANSPORT_UNREACHED && rc != TRANSPORT_HUNG && rc != TRANSPORT_CUT &&
		    rc != -EAGAIN)
			break;
		/* Busy or electing: worth another round. (A member that cuts
		 * the connection is restarting, or refuses our TLS; no later
		 * round would help.) */
		again |= rc == TRANSPORT_HUNG || rc == -EAGAIN;
		hung |= rc == TRANSPORT_HUNG;
		etcd->unanswered += rc == TRANSPORT_HUNG || rc == TRANSPORT_CUT;
	}
	if (rc == TRANSPORT_UNREACHED && hung)
		rc = TRANSPORT_HUNG; /* the last were unreachable; an earlier one hung */
	if (rc == TRANSPORT_UNREACHED) {
		/* Every member unreachable; the message is the last one's. */
		if (transport_say(etcd, n))
			ic_log(IC_LOG_ERR, "%s (none of %u members reachable)", etcd->error, n);
		rc = -ECONNREFUSED;
	} else if (rc == TRANSPORT_HUNG || rc == TRANSPORT_CUT) {
		ic_log(IC_LOG_ERR, "%s (no member answered)", etcd->error);
		rc = rc == TRANSPORT_HUNG ? -ETIMEDOUT : resent ? -ECONNRESET : -EIO;
	} else if (!repeatable && !watch && (rc == -ETIMEDOUT || rc == -ECONNRESET)) {
		/* That member has the request, or hangs: a caller that asks
		 * again asks another. */
		etcd->current = (idx + 1) % n;
	}
	json_object_put(req);
	return rc;
}

/* ---- a whole answer ---- */
struct transport_buf {
	char *data;
	size_t len, cap;
	struct json_object *answer;
};

static size_t
buf_write(char *data, size_t size, size_t n, void *ctx)
{
	struct transport_buf *b = ctx;
	size_t add = size * n;

	if (b->len + add + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *grown;

		while (cap < b->len + add + 1)
			cap *= 2;
		if (cap > TRANSPORT_ANSWER_MAX)
			return 0;
		grown = realloc(b->data, cap);
		if (!grown)
			return 0;
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, add);
	b->len += add;
	b->data[b->len] = '\0';
	return add;
}

static void
buf_reset(void *ctx)
{
	struct transport_buf *b = ctx;

	b->len = 0;
}

static int
buf_finish(struct ic_etcd *etcd, void *ctx, long http, bool stopped)
{
	struct transport_buf *b = ctx;
	char msg[300];
	int rc;

	if (stopped) {
		ic_etcd_fail(etcd, "answer larger than %u bytes or out of memory",
			     TRANSPORT_ANSWER_MAX);
		return -ENOMEM;
	}
	b->answer = b->len ? json_tokener_parse(b->data) : NULL;
	if (!b->answer) {
		size_t shown = b->len < 160 ? b->len : 160;

		while (shown > 0 && (b->data[shown - 1] == '\n' || b->data[shown - 1] == '\r'))
			shown--; /* a text answer's line break */
		ic_etcd_fail(etcd, "HTTP %ld, not etcd's JSON: %.*s", http,
			     shown ? (int)shown : 7, shown ? b->data : "(empty)");
		return -EPROTO;
	}
	rc = ic_etcd_decode_error(b->answer, msg, sizeof(msg));
	if (rc == 0 && http != 200)
		rc = -EIO, snprintf(msg, sizeof(msg), "HTTP %ld", http);
	if (rc == 0)
		return 0;
	json_object_put(b->answer);
	b->answer = NULL;
	ic_etcd_fail(etcd, "%s", msg);
	return rc;
}

static int
transport_call_plain(struct ic_etcd *etcd, const char *path, struct json_object *req,
		     unsigned timeout_ms, struct json_object **answer)
{
	struct transport_buf b = { 0 };
	const struct transport_sink sink = {
		.write = buf_write, .reset = buf_reset, .finish = buf_finish, .ctx = &b
	};
	int rc;

	rc = transport_run(etcd, path, req, timeout_ms, &sink);
	free(b.data);
	if (rc == 0)
		*answer = b.answer;
	return rc;
}

/* Wipe the password out of an authenticate request, and of its text as
 * sent, then put it. */
static void
transport_wipe_password(struct json_object *req)
{
	struct json_object *pw;
	const char *s;

	if (json_object_object_get_ex(req, "password", &pw) && (s = json_object_get_string(pw)))
		explicit_bzero((char *)s, strlen(s));
	s = json_object_to_json_string_ext(req, IC_JSON_FLAGS); /* the same buffer, as sent */
	if (s)
		explicit_bzero((char *)s, strlen(s));
	json_object_put(req);
}

/* Authenticate as etcd->user with the password its file holds now, and
 * keep the token. */
static int
transport_authenticate(struct ic_etcd *etcd, unsigned timeout_ms)
{
	char password[IC_ETCD_PASSWORD_MAX], why[300];
	struct json_object *req, *answer;
	int rc = ic_etcd_auth_password(password, why, sizeof(why));

	etcd->token[0] = '\0';
	if (rc) {
		explicit_bzero(password, sizeof(password));
		ic_etcd_fail(etcd, "cannot authenticate as %s: %s", etcd->user, why);
		return rc;
	}
	req = ic_etcd_req_authenticate(etcd->user, password);
	explicit_bzero(password, sizeof(password));
	rc = req ? 0 : -ENOMEM;
	if (rc == 0) {
		json_object_get(req); /* wiped after the call */
		rc = transport_call_plain(etcd, "auth/authenticate", req, timeout_ms, &answer);
		transport_wipe_password(req);
	}
	if (rc) {
		ic_log(IC_LOG_ERR, "etcd: authentication as %s failed", etcd->user);
		return rc == -EKEYEXPIRED ? -EACCES : rc;
	}
	rc = ic_etcd_decode_token(answer, etcd->token, sizeof(etcd->token));
	json_object_put(answer);
	if (rc)
		ic_etcd_fail(etcd, "authenticate: an answer without a usable token");
	return rc;
}

/* Run a request as run does, authenticated when the client has a user:
 * the first request authenticates first, and a request etcd refused for a
 * token no longer valid (expired, or its user's password changed: nothing
 * was done) authenticates anew and is sent once more. */
static int
transport_authed(struct ic_etcd *etcd, const char *path, struct json_object *req,
		 unsigned timeout_ms,
		 int (*run)(struct ic_etcd *etcd, const char *path, struct json_object *req,
			    unsigned timeout_ms, void *ctx),
		 void *ctx)
{
	int rc = 0;

	if (!etcd->user[0])
		return run(etcd, path, req, timeout_ms, ctx);
	if (!etcd->token[0])
		rc = transport_authenticate(etcd, timeout_ms);
	if (rc) {
		json_object_put(req);
		return rc;
	}
	json_object_get(req); /* kept for a second sending */
	rc = run(etcd, path, req, timeout_ms, ctx);
	if (rc == -EKEYEXPIRED) {
		ic_log(IC_LOG_INFO, "etcd: the token of %s is no longer valid; authenticating "
		       "again", etcd->user);
		rc = transport_authenticate(etcd, timeout_ms);
		if (rc == 0)
			return run(etcd, path, req, timeout_ms, ctx);
	}
	json_object_put(req);
	return rc == -EKEYEXPIRED ? -EACCES : rc;
}

static int
call_run(struct ic_etcd *etcd, const char *path, struct json_object *req, unsigned timeout_ms,
	 void *ctx)
{
	return transport_call_plain(etcd, path, req, timeout_ms, ctx);
}

int
ic_etcd_call(struct ic_etcd *etcd, const char *path, struct json_object *req,
	     unsigned timeout_ms, struct json_object **answer)
{
	return transport_authed(etcd, path, req, timeout_ms, call_run, answer);
}

/* ---- a stream of answers ---- */
struct transport_stream {
	struct json_tokener *tok;
	ic_etcd_stream_fn fn;
	void *arg;
	int result; /* fn's first non-zero */
	bool garbage;
};

static size_t
stream_write(char *data, size_t size, size_t n, void *ctx)
{
	struct transport_stream *s = ctx;
	int rc = ic_etcd_stream_feed(s->tok, data, size * n, s->fn, s->arg);

	if (rc == 0)
		return size * n;
	if (rc == -EPROTO)
		s->garbage = true;
	else
		s->result = rc;
	return 0; /* ends the transfer */
}

static void
stream_reset(void *ctx)
{
	struct transport_stream *s = ctx;

	json_tokener_reset(s->tok);
}

static int
stream_finish(struct ic_etcd *etcd, void *ctx, long http, bool stopped)
{
	struct transport_stream *s = ctx;

	if (stopped && s->garbage) {
		ic_etcd_fail(etcd, "HTTP %ld, a stream that is not etcd's JSON", http);
		return -EPROTO;
	}
	if (stopped)
		return s->result > 0 ? 0 : s->result;
	ic_etcd_fail(etcd, "HTTP %ld, the stream ended", http);
	return -EPIPE;
}

static int
stream_run(struct ic_etcd *etcd, const char *path, struct json_object *req, unsigned timeout_ms,
	   void *ctx)
{
	struct transport_stream *s = ctx;
	const struct transport_sink sink = {
		.write = stream_write, .reset = stream_reset, .finish = stream_finish, .ctx = s
	};

	s->result = 0;
	s->garbage = false;
	return transport_run(etcd, path, req, timeout_ms, &sink);
}

int
ic_etcd_stream(struct ic_etcd *etcd, const char *path, struct json_object *req,
	       unsigned timeout_ms, ic_etcd_stream_fn fn, void *arg)
{
	struct transport_stream s = { .tok = json_tokener_new(), .fn = fn, .arg = arg };
	int rc;

	if (!s.tok) {
		json_object_put(req);
		return -ENOMEM;
	}
	rc = transport_authed(etcd, path, req, timeout_ms, stream_run, &s);
	json_tokener_free(s.tok);
	return rc;
}
