/* A small etcd v3 client (docs/MULTI-HOST.md): the JSON gateway that etcd
 * 3.4 serves at /v3/..., spoken with libcurl and json-c. Keys are text
 * (C strings), values are bytes; both travel base64-encoded, as the gateway
 * requires.
 *
 * A client (struct ic_etcd) knows every member of a cluster. A call goes
 * to the member that answered last; when that member cannot be reached
 * (connection refused or not made in time) or says it is unavailable
 * (gRPC code 14: no leader), the call moves on to the next member. A call
 * that changes records and reached a member but got no answer is not
 * repeated elsewhere: its outcome is unknown, and the caller decides.
 * Reads and lease calls, which are safe to repeat, also move on from a
 * member that hangs or cuts the connection, and go round the members until
 * the deadline (see etcd/transport.c).
 *
 * Every call has a deadline (the client's timeout). Functions return 0 or
 * -errno, and after a failure ic_etcd_last_error() names the member and
 * what went wrong in etcd's words ("etcd 127.0.0.1:2379: etcdserver:
 * requested lease not found"), which the client has also logged. Errors:
 * -ETIMEDOUT no answer within the timeout (quorum lost, for a write),
 * -ECONNRESET the connection broke after a request that changes records
 * was sent (as with -ETIMEDOUT, whether it was applied is unknown),
 * -ECONNREFUSED no member reachable, -ENOENT not found (a lease),
 * -EINVAL refused as invalid (a wrong password too), -EACCES permission
 * denied (etcd's users), -ERANGE revision compacted, -EAGAIN
 * unavailable everywhere, -EPROTO an answer that is not etcd's, -EIO other.
 *
 * Threads: one client is used by one thread at a time (it owns one curl
 * handle). The keepalive helper (ic_etcd_keeper_*) opens a client of its own.
 * Only etcd/ includes <curl/curl.h>.
 */
#ifndef IC_ETCD_ETCD_H
#define IC_ETCD_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- etcd://HOST:PORT[,HOST:PORT...]/PREFIX ---- */
#define IC_ETCD_ENDPOINTS_MAX 8
#define IC_ETCD_ENDPOINT_MAX 256 /* "HOST:PORT" and its NUL */
#define IC_ETCD_PREFIX_MAX 256

struct ic_etcd_url {
	unsigned n;                                           /* endpoints, >= 1 */
	char endpoint[IC_ETCD_ENDPOINTS_MAX][IC_ETCD_ENDPOINT_MAX]; /* "HOST:PORT" */
	char prefix[IC_ETCD_PREFIX_MAX]; /* PREFIX without slashes at either end */
	bool tls; /* etcds://: the members speak TLS (see ic_etcd_open) */
};

/* Parse "etcd://HOST:PORT[,HOST:PORT...]/PREFIX", or "etcds://..." for
 * members that speak TLS. HOST is a name, an IPv4 address or a bracketed
 * IPv6 address; PORT is 1..65535; PREFIX is non-empty, printable, without
 * spaces, and loses trailing slashes. Returns 0 or -EINVAL (logged, naming
 * what was wrong), -E2BIG for more than IC_ETCD_ENDPOINTS_MAX endpoints or
 * a part too long. */
int ic_etcd_url_parse(const char *url, struct ic_etcd_url *out);
/* Does text start as an etcd URL does (etcd:// or etcds://)? */
bool ic_etcd_url_like(const char *text);
/* Parse the endpoint list alone ("HOST:PORT[,HOST:PORT...]") into
 * out->n and out->endpoint; out->prefix becomes "". Same errors. */
int ic_etcd_endpoints_parse(const char *list, struct ic_etcd_url *out);

/* ---- the client ---- */
struct ic_etcd;

/* A client for url's endpoints (its prefix is the caller's business);
 * timeout_ms bounds every call (0: 5000). No connection is made here.
 * With url->tls the members are reached over https, their certificates
 * checked against the CA file in ISOCACHE_ETCD_CA (else the system's
 * CAs); ISOCACHE_ETCD_CERT and ISOCACHE_ETCD_KEY, both or neither, name
 * the client certificate and key that members started with
 * --client-cert-auth ask for. On a cluster with etcd's users on,
 * ISOCACHE_ETCD_USER and ISOCACHE_ETCD_PASSWORD_FILE (both or neither) give
 * the user and its password: the client authenticates at its first call,
 * and again when etcd says its token is no longer valid (etcd/auth.c).
 * Returns 0, -EINVAL (no endpoints; a certificate without its key; a user
 * without a password file: logged) or -ENOMEM. */
int ic_etcd_open(const struct ic_etcd_url *url, unsigned timeout_ms, struct ic_etcd **out);
/* NULL is fine. */
void ic_etcd_close(struct ic_etcd *etcd);
/* The message of the last failed call ("" if none yet). */
const char *ic_etcd_last_error(const struct ic_etcd *etcd);
/* Until called again with fn NULL, this client's calls stop once fn(arg)
 * returns false: before each attempt, and while one waits for its answer
 * (every 20 ms). Such a call fails
 * with -EOWNERDEAD; a change it sent may yet be applied. For a commit that
 * must not be waited for once its owner's lease may have run out. */
void ic_etcd_set_go_on(struct ic_etcd *etcd, bool (*fn)(void *arg), void *arg);
/* Until called again with false, this client's writes are, like reads,
 * sent to the next member when one hangs past its share of the deadline
 * or cuts the connection after they were sent, round after round until the
 * deadline. For a caller whose writes apply at most once however often
 * they are sent (a transaction whose compares fail once it applied, and
 * that reads back what it wrote): then a member that forwards the write to
 * a leader that died, and answers only at its own request timeout (5 s
 * and two election timeouts), does not eat the write's deadline. A write
 * that still had no answer fails with -ETIMEDOUT, or -ECONNRESET when the
 * last member cut it: it may be applied. */
void ic_etcd_set_resend(struct ic_etcd *etcd, bool on);
/* How many attempts of the last call reached a member and left their
 * outcome unknown (no answer in time, a cut connection, etcd timed it
 * out): with ic_etcd_set_resend, an answer may be to a later sending. */
unsigned ic_etcd_unanswered(const struct ic_etcd *etcd);
/* The endpoint calls go to first (the one that answered last). */
const char *ic_etcd_endpoint(const struct ic_etcd *etcd);

/* ---- keys and values ---- */
struct ic_etcd_kv {
	char *key;   /* NUL-terminated */
	void *value; /* value_len bytes, and a NUL after them */
	size_t value_len;
	int64_t create_revision, mod_revision, version;
	int64_t lease; /* 0 = none */
};

struct ic_etcd_kvs {
	struct ic_etcd_kv *kv;
	size_t n;
	int64_t revision; /* the store's revision the answer was read at */
};

void ic_etcd_kv_free(struct ic_etcd_kv *kv);
void ic_etcd_kvs_free(struct ic_etcd_kvs *kvs);

/* The one key (out filled; free it with ic_etcd_kv_free). -ENOENT if absent. */
int ic_etcd_get(struct ic_etcd *etcd, const char *key, struct ic_etcd_kv *out);
/* Every key starting with prefix, in key order (out filled even when empty;
 * free it with ic_etcd_kvs_free). */
int ic_etcd_get_prefix(struct ic_etcd *etcd, const char *prefix, struct ic_etcd_kvs *out);
/* The key (or every key under it if prefix) as the store was at revision
 * (0: now), so that several reads see one snapshot; out->revision is the
 * revision read. -ERANGE if revision was compacted. */
int ic_etcd_range(struct ic_etcd *etcd, const char *key, bool prefix, int64_t revision,
		  struct ic_etcd_kvs *out);
/* key = value (len bytes), attached to lease unless it is 0. *revision (if
 * not NULL) is the key's new mod_revision. */
int ic_etcd_put(struct ic_etcd *etcd, const char *key, const void *value, size_t len,
		int64_t lease, int64_t *revision);
/* Delete key, or every key starting with it if prefix. *deleted (if not
 * NULL) counts them. */
int ic_etcd_delete(struct ic_etcd *etcd, const char *key, bool prefix, int64_t *deleted);

/* ---- transactions ---- */
enum ic_etcd_target {
	IC_ETCD_MOD,     /* the key's mod_revision (0: absent) */
	IC_ETCD_CREATE,  /* its create_revision (0: absent) */
	IC_ETCD_VERSION, /* its version, writes since creation (0: absent) */
	IC_ETCD_VALUE,   /* its value */
};
enum ic_etcd_result { IC_ETCD_EQUAL, IC_ETCD_NOT_EQUAL, IC_ETCD_GREATER, IC_ETCD_LESS };

struct ic_etcd_cmp {
	const char *key;
	bool prefix; /* compare every key starting with key (all must hold; none: holds) */
	enum ic_etcd_target target;
	enum ic_etcd_result result;
	int64_t number;    /* MOD, CREATE, VERSION */
	const void *value; /* VALUE: value_len bytes */
	size_t value_len;
};

enum ic_etcd_op_type { IC_ETCD_OP_PUT, IC_ETCD_OP_DELETE, IC_ETCD_OP_GET };

struct ic_etcd_op {
	enum ic_etcd_op_type type;
	const char *key; /* one key; GET and DELETE with prefix: every key under it */
	bool prefix;
	const char *end; /* GET and DELETE: every key in [key, end) (not with prefix) */
	const void *value; /* PUT */
	size_t value_len;
	int64_t lease; /* PUT: 0 = none */
};

struct ic_etcd_txn_result {
	bool succeeded;       /* every compare held: the success ops ran */
	int64_t revision;     /* the store's revision after the transaction */
	struct ic_etcd_kvs got; /* what the GET ops that ran read, in order */
};

/* If every compare holds, run the success ops, else the failure ops, as one
 * atomic step, within timeout_ms (0: the client's timeout). Fills *res
 * (free res->got with ic_etcd_kvs_free). A compare that does not hold is
 * not an error. */
int ic_etcd_txn(struct ic_etcd *etcd, const struct ic_etcd_cmp *cmp, unsigned ncmp,
		const struct ic_etcd_op *success, unsigned nsuccess,
		const struct ic_etcd_op *failure, unsigned nfailure, unsigned timeout_ms,
		struct ic_etcd_txn_result *res);
/* Compare-and-swap: key = value (attached to lease unless 0) only if the
 * key's mod_revision is still expected_mod (0: the key does not exist).
 * Returns 0 with *revision the new mod_revision (the fencing token), or
 * -ECANCELED when the key had moved on (not logged: a lost race is no
 * error). */
int ic_etcd_cas(struct ic_etcd *etcd, const char *key, int64_t expected_mod, const void *value,
		size_t len, int64_t lease, int64_t *revision);

/* ---- leases ---- */
/* A lease of ttl_s seconds: *id, and *granted the TTL etcd granted (may
 * be NULL). */
int ic_etcd_lease_grant(struct ic_etcd *etcd, int64_t ttl_s, int64_t *id, int64_t *granted);
/* Renew lease id once: *ttl (may be NULL) is its TTL from now. -ENOENT when
 * the lease is gone (expired or revoked). */
int ic_etcd_lease_keepalive(struct ic_etcd *etcd, int64_t id, int64_t *ttl);
/* End lease id now; keys attached to it are deleted. -ENOENT if gone. */
int ic_etcd_lease_revoke(struct ic_etcd *etcd, int64_t id);

/* A thread that keeps a lease alive, for an owner that must stop writing
 * before its lease can expire (docs/MULTI-HOST.md, fencing).
 *
 * The lease is valid until (the moment the last successful keepalive was
 * SENT, monotonic clock) + (the TTL it returned) - margin_ms. The thread
 * renews every TTL/3; a failed renewal is retried every 200 ms, each call
 * bounded by the time left. When the validity runs out, or etcd says the
 * lease is gone, lost(arg, lease, err) is called once from the thread
 * (err: -ETIMEDOUT, or the renewal's error) and the thread ends. The
 * callback must not call ic_etcd_keeper_stop. */
struct ic_etcd_keeper;
typedef void (*ic_etcd_lease_lost_fn)(void *arg, int64_t lease, int err);

/* Renew lease (ttl_s as granted) once now, in the caller's thread (its
 * error is returned: nothing is started), then start the thread. url and
 * timeout_ms as ic_etcd_open; margin_ms < ttl_s * 1000. */
int ic_etcd_keeper_start(const struct ic_etcd_url *url, unsigned timeout_ms, int64_t lease,
			 int64_t ttl_s, unsigned margin_ms, ic_etcd_lease_lost_fn lost, void *arg,
			 struct ic_etcd_keeper **out);
/* May the holder still write: is the lease valid now? Any thread; cheap. */
bool ic_etcd_keeper_valid(const struct ic_etcd_keeper *keeper);
/* Milliseconds of validity left (0 once lost). */
int64_t ic_etcd_keeper_left_ms(const struct ic_etcd_keeper *keeper);
/* Milliseconds since the last successful renewal was sent (also after the
 * lease was lost: the lost callback may report it). */
int64_t ic_etcd_keeper_since_renewal_ms(const struct ic_etcd_keeper *keeper);
/* Stop the thread and free keeper (the lease is left to its TTL; revoke it
 * first to end it now). Waits for a renewal in flight, at most the client's
 * timeout. NULL is fine. */
void ic_etcd_keeper_stop(struct ic_etcd_keeper *keeper);

/* ---- watch ---- */
enum ic_etcd_event_type { IC_ETCD_EVENT_PUT, IC_ETCD_EVENT_DELETE };

struct ic_etcd_event {
	enum ic_etcd_event_type type;
	struct ic_etcd_kv kv; /* DELETE: key and mod_revision only; owned by the watcher */
};

/* Return non-zero to end the watch. */
typedef int (*ic_etcd_watch_fn)(void *arg, const struct ic_etcd_event *ev);

/* Watch key (or every key under it if prefix) from revision start_rev (0:
 * from now) through the gateway's streaming /v3/watch, calling fn for each
 * event in order, until fn returns non-zero (then 0) or timeout_ms passes
 * (-ETIMEDOUT; 0 = the client's timeout). -ERANGE if start_rev was
 * compacted. Blocks the calling thread. */
int ic_etcd_watch(struct ic_etcd *etcd, const char *key, bool prefix, int64_t start_rev,
		  unsigned timeout_ms, ic_etcd_watch_fn fn, void *arg);

#endif
