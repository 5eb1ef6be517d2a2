/* Handing a vdisk over between hosts (docs/MULTI-HOST.md §4, step 5):
 * the claimant's side and the owner's side of a release through etcd.
 *
 * A claimant that finds a record puts a request at release/NAME/ID, a key
 * of its own (ID is random), attached to the owner's lease while the record
 * is still the one it found, and watches that key until it goes: its owner
 * released (the lease is revoked), the owner's lease expired (a dead or
 * cut-off host), the owner denied (it deletes that one request), or a new
 * owner's claim swept it. Then it
 * claims as anyone would (lease.c); another claimer may win that race, and
 * it asks again. Finding the very record it asked about (its token) still
 * there means the owner denied: nobody else writes or deletes the
 * claimant's key. (With
 * one key for every claimant, a claimant that read an older record could
 * put the key attached to that record's lease, revoked a moment later, and
 * the others took its deletion for a denial.)
 * It never kills nor revokes anything of another host's: a forced takeover
 * only skips the owner's release policy, and else waits for the lease.
 *
 * The owner runs one watcher thread per vdisk it serves, watching every
 * key under release/NAME/. A request runs the same steps as a RELEASE on the control
 * socket: the policy's verdict, quiesce, flush, fence, then the lease is
 * revoked, which takes the record with it, so the claimant's
 * watch sees the record go only after every flushed byte is in place and
 * nothing of ours can write any more. A denied or failed request is
 * deleted alone, which its claimant sees as no release. A request is
 * acted on only while it is still there as it was read: one withdrawn
 * before the watch delivered it is ignored.
 *
 * The watcher's state outlives its served vdisk when unserving cannot wait
 * for a watch that blocks (etcd unreachable): it is shared by the thread
 * and the served vdisk, freed by whichever lets go last, and the vdisk is
 * touched only under mu while not stopped. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "owner/internal.h"

#define WATCH_RETRY_MS 500   /* after a failed watch (the member went away) */

/* ---- the claimant ---- */

static int
remote_on_delete(void *arg, const struct ic_etcd_event *ev)
{
	(void)arg;
	return ev->type == IC_ETCD_EVENT_DELETE;
}

/* An etcd call that failed for want of a member (the client's errors:
 * etcd/etcd.h), not for what it asked. */
static bool
remote_transient(int rc)
{
	return rc == -ETIMEDOUT || rc == -ECONNREFUSED || rc == -EAGAIN || rc == -EIO ||
	       rc == -EPIPE || rc == -ECONNRESET;
}

static void
remote_refusal(const char *name, const struct ic_owner_rec *seen, int rc, bool denied,
	       unsigned timeout_ms, const struct owner_etcd *cfg, enum ic_takeover how)
{
	char desc[256];

	owner_describe(seen, desc, sizeof(desc));
	if (how == IC_TAKEOVER_NEVER)
		ic_log(IC_LOG_ERR, "%s is owned by %s (through etcd); not taking it over", name,
		       desc);
	else if (denied)
		ic_log(IC_LOG_ERR, "%s is owned by %s (through etcd); it denied the release (its "
		       "log says why)", name, desc);
	else if (rc == -ETIMEDOUT)
		ic_log(IC_LOG_ERR, "%s is owned by %s (through etcd); it did not release within "
		       "%u s, nor did its lease expire within its TTL (%u s): its host is alive; "
		       "a takeover across hosts never kills, stop it there", name, desc,
		       (timeout_ms + 999) / 1000, cfg->ttl_s);
}

/* Ask the owner of the record found at key (owners/NAME) to release it:
 * put our request at release (our own key), attached to the record's
 * lease, in a txn that holds only while the record is still the one found
 * (its token), so that a request never outlives the record it asks about
 * by hanging on to its dying lease; then watch it until fn ends the watch
 * or until_ms. A release request goes with the lease (the owner released
 * and revoked it, or it expired), with a new owner's claim, or alone when
 * the owner denies (remote_on_delete); a snapshot request is answered in
 * place (remote_on_answer). 0 once fn ended it, -ENOENT when the record was
 * already another (or none), -ETIMEDOUT, or the etcd call's -errno; *put
 * (may be NULL) set once the request is in etcd. */
static int
remote_ask(struct ic_etcd *etcd, const char *key, const char *release, const char *ask,
	   const struct owner_found *their, long long until_ms, ic_etcd_watch_fn fn, void *arg,
	   bool *put_done)
{
	const struct ic_etcd_cmp same = { .key = key, .target = IC_ETCD_MOD,
					  .result = IC_ETCD_EQUAL, .number = their->token };
	const struct ic_etcd_op put = { .type = IC_ETCD_OP_PUT, .key = release, .value = ask,
					.value_len = strlen(ask), .lease = their->lease };
	struct ic_etcd_txn_result res = { 0 };
	long long left;
	int rc = ic_etcd_txn(etcd, &same, 1, &put, 1, NULL, 0, 0, &res);

	ic_etcd_kvs_free(&res.got);
	if (rc)
		return rc;
	if (!res.succeeded)
		return -ENOENT;
	if (put_done)
		*put_done = true;
	left = until_ms - ic_now_ms();
	if (left <= 0)
		return -ETIMEDOUT;
	/* The txn's one put: the store's revision after it is the request's. */
	return ic_etcd_watch(etcd, release, false, res.revision + 1, (unsigned)left, fn, arg);
}

/* Our request's key: release/NAME/ID, ID 16 random hex digits, so that
 * no other claimant's request ever lands on it. */
static int
remote_request_key(const struct owner_etcd *cfg, const char *name, char *buf, size_t cap)
{
	uint64_t id;
	size_t len;
	int rc = owner_etcd_requests(cfg, name, buf, cap);

	if (rc)
		return rc;
	if (getrandom(&id, sizeof(id), 0) != sizeof(id)) {
		rc = -errno;
		ic_log(IC_LOG_ERR, "%s: no random id for a release request: %s", name,
		       strerror(-rc));
		return rc;
	}
	len = strlen(buf);
	if (snprintf(buf + len, cap - len, "%016llx", (unsigned long long)id) >= (int)(cap - len))
		return -ENAMETOOLONG;
	return 0;
}

int
owner_remote_acquire(const struct owner_etcd *cfg, const char *name, const char *who,
		     const char *socket, unsigned timeout_ms, enum ic_takeover how,
		     struct owner_claim *out)
{
	char key[OWNER_ETCD_KEY_MAX], release[OWNER_ETCD_KEY_MAX], ask[128];
	struct ic_owner_rec self, seen = { 0 };
	struct ic_etcd *etcd = NULL;
	long long t0 = ic_now_ms(), until;
	struct owner_found their = { 0 }; /* the record found */
	int64_t asked = 0;                /* the token of the record we asked */
	bool denied = false;
	int rc;

	*out = (struct owner_claim){ .lock_fd = -1 };
	if (timeout_ms == 0)
		timeout_ms = IC_RELEASE_TIMEOUT_MS;
	/* A live owner answers within timeout_ms; a dead one's record goes
	 * when its lease expires, at most its TTL after its last renewal. */
	until = t0 + timeout_ms + cfg->ttl_s * 1000ll;
	rc = owner_etcd_key(cfg, "owners", name, key, sizeof(key));
	if (rc == 0)
		rc = remote_request_key(cfg, name, release, sizeof(release));
	if (rc)
		return rc;
	snprintf(ask, sizeof(ask), "%s %s (pid %d)", how == IC_TAKEOVER_FORCE ? "force" : "ask",
		 who, (int)getpid());
	rc = owner_self(getpid(), who, NULL, socket, &self);
	if (rc == 0)
		rc = ic_etcd_open(&cfg->url, OWNER_ETCD_TIMEOUT_MS, &etcd);
	while (rc == 0) {
		rc = owner_lease_try(cfg, &etcd, name, &self, out, &seen, &their);
		if (rc == 0) {
			owner_claimed(out, name, &self);
			out->generation = (uint64_t)owner_lease_token(out->lease);
			break;
		}
		if (rc == -EBUSY && owner_asks(how) && asked && their.token == asked) {
			denied = true; /* our request went, the owner stayed */
			break;
		}
		if (rc == -EBUSY && owner_asks(how)) {
			if (!asked)
				ic_log(IC_LOG_INFO, "%s: owned by %s (pid %u) through etcd; asking it "
				       "to release", name, seen.who, seen.pid);
			rc = remote_ask(etcd, key, release, ask, &their, until, remote_on_delete,
					NULL, NULL);
			if (rc == 0)
				asked = their.token;
			if (rc == 0 || rc == -ENOENT) { /* gone: claim */
				rc = 0;
				continue;
			}
		}
		if (remote_transient(rc) && ic_now_ms() < until) {
			/* A member died under the call: a lease it granted and a
			 * record it put were revoked (or expire); again, elsewhere. */
			ic_log(IC_LOG_WARN, "%s: claiming through etcd: %s; trying again", name,
			       strerror(-rc));
			usleep(WATCH_RETRY_MS * 1000);
			rc = 0;
		}
	}
	if (rc == 0 && asked)
		ic_log(IC_LOG_INFO, "%s: released to us through etcd in %lld ms", name,
		       ic_now_ms() - t0);
	if (rc && owner_asks(how) && etcd)
		ic_etcd_delete(etcd, release, false, NULL); /* withdrawn: the key is ours alone */
	ic_etcd_close(etcd);
	if ((rc == -EBUSY || rc == -ETIMEDOUT) && how != OWNER_TAKEOVER_IF_FREE)
		remote_refusal(name, &seen, rc, denied, timeout_ms, cfg, how);
	return rc == -ETIMEDOUT ? -EBUSY : rc;
}

/* ---- a live snapshot asked through etcd ---- */

/* The owner answers a snapshot request in place: "done", or "failed ERRNO
 * WHY". A request starts with "ask ", "force " or "snap ". */
#define REMOTE_DONE "done"
#define REMOTE_FAILED "failed "

static bool
remote_is_answer(const char *value)
{
	return strcmp(value, REMOTE_DONE) == 0 || strncmp(value, REMOTE_FAILED, 7) == 0;
}

struct remote_answer {
	bool gone;      /* the request went (with the owner's lease) */
	char text[256]; /* else the owner's answer */
};

static int
remote_on_answer(void *arg, const struct ic_etcd_event *ev)
{
	struct remote_answer *a = arg;

	if (ev->type == IC_ETCD_EVENT_DELETE) {
		a->gone = true;
		return 1;
	}
	if (!remote_is_answer(ev->kv.value))
		return 0;
	snprintf(a->text, sizeof(a->text), "%s", (const char *)ev->kv.value);
	return 1;
}

/* The owner's answer as 0 or -errno, logged. */
static int
remote_snapshot_result(const char *name, const char *image, const char *answer)
{
	int err = 0, at = 0;

	if (strcmp(answer, REMOTE_DONE) == 0) {
		ic_log(IC_LOG_INFO, "%s: taken live by its owner, through etcd", image);
		return 0;
	}
	if (sscanf(answer, REMOTE_FAILED "%d %n", &err, &at) != 1 || err <= 0 || !at)
		err = EPROTO;
	ic_log(IC_LOG_ERR, "%s: its owner (through etcd) could not take the snapshot %s: %s",
	       name, image, at ? answer + at : answer);
	return -err;
}

int
owner_remote_snapshot_ask(const struct owner_etcd *cfg, const char *name, const char *image)
{
	char key[OWNER_ETCD_KEY_MAX], request[OWNER_ETCD_KEY_MAX], ask[IC_NAME_MAX * 2 + 128];
	struct ic_etcd *etcd = NULL;
	struct remote_answer answer = { 0 };
	long long until = ic_now_ms() + IC_RELEASE_TIMEOUT_MS * 6ll;
	bool asked = false;
	int rc = owner_etcd_key(cfg, "owners", name, key, sizeof(key));

	if (rc == 0)
		rc = remote_request_key(cfg, name, request, sizeof(request));
	if (rc == 0)
		rc = ic_etcd_open(&cfg->url, OWNER_ETCD_TIMEOUT_MS, &etcd);
	snprintf(ask, sizeof(ask), "snap %s isocache-admin snap (pid %d)", image, (int)getpid());
	/* Ask the owner on record until it answers. Our request may go
	 * unanswered: the owner's lease went with it, a new owner claimed
	 * meanwhile (the txn finds another record), or someone deleted it.
	 * Then ask whoever owns it now, and snapshot here only once nobody
	 * does. A member that fails under a call: again, elsewhere. */
	while (rc == 0) {
		struct ic_etcd_kv kv = { 0 };
		struct owner_found their;

		rc = ic_etcd_get(etcd, key, &kv);
		if (rc == 0) {
			their = (struct owner_found){ .lease = kv.lease,
						      .token = kv.mod_revision };
			answer = (struct remote_answer){ 0 };
			rc = remote_ask(etcd, key, request, ask, &their, until, remote_on_answer,
					&answer, &asked);
			ic_etcd_kv_free(&kv);
			if (rc == 0 && !answer.gone)
				break; /* answered */
			if (rc == 0 || rc == -ENOENT) /* our request went, the record changed */
				rc = ic_now_ms() < until ? 0 : -ETIMEDOUT;
		}
		if (remote_transient(rc) && ic_now_ms() < until) {
			usleep(WATCH_RETRY_MS * 1000);
			rc = 0;
		}
	}
	if (rc == -ENOENT) {
		rc = 1; /* nobody owns it */
	} else if (rc == 0) {
		rc = remote_snapshot_result(name, image, answer.text);
	} else if (asked) {
		ic_log(IC_LOG_ERR, "%s: its owner (through etcd) did not take the snapshot %s: %s",
		       name, image, rc == -ETIMEDOUT ? "no answer in time" : strerror(-rc));
	} else {
		ic_log(IC_LOG_ERR, "%s: cannot ask its owner through etcd for the snapshot %s: %s",
		       name, image, strerror(-rc));
	}
	if (etcd)
		ic_etcd_delete(etcd, request, false, NULL); /* ours alone */
	ic_etcd_close(etcd);
	return rc;
}

/* ---- the owner ---- */

struct owner_watch {
	pthread_mutex_t mu;          /* held over a release or snapshot; stop set under it */
	pthread_mutex_t stop_mu;     /* stop set under it too, never held long: the
				      * guard fences under it alone, not behind a
				      * release or snapshot in progress */
	bool stop;                   /* s is gone: touch nothing of it */
	atomic_int refs;             /* the thread and the served vdisk */
	struct owner_served *s;
	struct owner_etcd cfg;
	char name[IC_NAME_MAX + 1];  /* s->name, for what is done without mu */
	char key[OWNER_ETCD_KEY_MAX]; /* release/NAME/: every request under it */
	int64_t from;                /* next revision to watch from */
	char req[OWNER_ETCD_KEY_MAX]; /* the request's key, release/NAME/ID */
	int64_t req_rev, req_lease;  /* its mod_revision and lease */
	char ask[IC_NAME_MAX * 2 + 128]; /* the request: "ask|force WHO", "snap IMAGE WHO" */
	bool requested;
	pthread_t thread;
	/* The guard's (its own thread): our ownership record, and its token. */
	char record[OWNER_ETCD_KEY_MAX];
	int64_t token, record_from;
	pthread_t guard;
};

static void
watch_put(struct owner_watch *w)
{
	if (atomic_fetch_sub(&w->refs, 1) == 1) {
		pthread_mutex_destroy(&w->stop_mu);
		pthread_mutex_destroy(&w->mu);
		free(w);
	}
}

static int
watch_on_request(void *arg, const struct ic_etcd_event *ev)
{
	struct owner_watch *w = arg;

	w->from = ev->kv.mod_revision + 1;
	if (ev->type != IC_ETCD_EVENT_PUT || remote_is_answer(ev->kv.value))
		return 0; /* a request withdrawn, or our own answer */
	snprintf(w->ask, sizeof(w->ask), "%.*s", (int)ev->kv.value_len, (char *)ev->kv.value);
	snprintf(w->req, sizeof(w->req), "%s", ev->kv.key);
	w->req_rev = ev->kv.mod_revision;
	w->req_lease = ev->kv.lease;
	w->requested = true;
	return 1;
}

/* Is the request read still there, as read? A watch may deliver a request
 * long after it was put (the watch lagged, this process was stopped), and
 * its claimant may have withdrawn it meanwhile: a release acted on then
 * would let the vdisk go to nobody, a snapshot be taken twice. 1 yes, 0
 * no, or the etcd call's -errno. */
static int
watch_request_live(struct owner_watch *w, struct ic_etcd *etcd)
{
	struct ic_etcd_kv kv = { 0 };
	int rc = ic_etcd_get(etcd, w->req, &kv);

	if (rc == 0)
		rc = kv.mod_revision == w->req_rev;
	else if (rc == -ENOENT)
		rc = 0;
	ic_etcd_kv_free(&kv);
	return rc;
}

/* A snapshot request ("snap IMAGE WHO"): take it live, as the control
 * socket's SNAPSHOT does, and say how in answer. w->mu held. */
static void
watch_snapshot(struct owner_watch *w, char *answer, size_t cap)
{
	char image[IC_NAME_MAX * 2 + 2];
	size_t len = strlen(w->name);
	const char *who;
	int at = 0, rc = -EINVAL;

	/* 257: sizeof(image) - 1. The request names a snapshot of this vdisk. */
	if (sscanf(w->ask, "snap %257s %n", image, &at) == 1 && at &&
	    strncmp(image, w->name, len) == 0 && image[len] == '@')
		rc = owner_served_snapshot(w->s, image);
	who = at ? w->ask + at : "?";
	if (rc == 0) {
		snprintf(answer, cap, REMOTE_DONE);
		ic_log(IC_LOG_INFO, "%s: snapshot %s taken live for %s (through etcd)", w->name,
		       image, who);
	} else {
		snprintf(answer, cap, REMOTE_FAILED "%d %s", -rc, strerror(-rc));
		ic_log(IC_LOG_WARN, "%s: a snapshot asked through etcd by %s failed: %s", w->name,
		       who, strerror(-rc));
	}
}

/* Answer a snapshot request in place, while it is still the one read (its
 * claimant may have withdrawn it). */
static void
watch_answer(struct owner_watch *w, struct ic_etcd *etcd, const char *answer)
{
	const struct ic_etcd_cmp same = { .key = w->req, .target = IC_ETCD_MOD,
					  .result = IC_ETCD_EQUAL, .number = w->req_rev };
	const struct ic_etcd_op put = { .type = IC_ETCD_OP_PUT, .key = w->req, .value = answer,
					.value_len = strlen(answer), .lease = w->req_lease };
	struct ic_etcd_txn_result res = { 0 };

	if (ic_etcd_txn(etcd, &same, 1, &put, 1, NULL, 0, 0, &res) || !res.succeeded)
		ic_log(IC_LOG_WARN, "%s: the answer to '%s' did not reach its asker", w->name,
		       w->ask);
	ic_etcd_kvs_free(&res.got);
}

/* A release request ("ask|force WHO"), answered as the control socket
 * answers a RELEASE. True once the vdisk is no longer ours; *refused when
 * it stays ours (denied, or the release failed) and the request is still
 * there. w->mu held. */
static bool
watch_release(struct owner_watch *w, struct ic_etcd *etcd, bool *refused)
{
	bool force = strncmp(w->ask, "force ", 6) == 0;
	const char *who = strchr(w->ask, ' ') ? strchr(w->ask, ' ') + 1 : w->ask;
	struct owner_served *s = w->s;
	long long t0 = ic_now_ms();
	char why[256];
	int rc, live;

	if (!force && owner_verdict(s, why, sizeof(why))) {
		ic_log(IC_LOG_INFO, "%s: denied a release through etcd to %s: %s", w->name, who,
		       why);
		*refused = true;
		return false;
	}
	if (!owner_served_begin(s)) {
		ic_log(IC_LOG_INFO, "%s: denied a release through etcd to %s: a release or "
		       "snapshot of it is under way", w->name, who);
		*refused = true;
		return false;
	}
	rc = s->ops->quiesce(s->arg, t0 + IC_RELEASE_TIMEOUT_MS);
	if (rc == 0) {
		rc = s->ops->flush(s->arg);
		/* Its claimant may have given up while we quiesced: fence only
		 * for a request still there. */
		if (rc == 0 && (live = watch_request_live(w, etcd)) != 1)
			rc = live < 0 ? live : -ECANCELED;
		if (rc == 0) {
			/* Fenced under the quiesce before the record goes: nothing of
			 * ours writes once the claimant can claim. */
			owner_fence(s->claim, "released through etcd to another process");
			owner_lease_release(s->claim->lease);
		}
		s->ops->resume(s->arg);
	}
	owner_served_end(s);
	if (rc == -ECANCELED) {
		ic_log(IC_LOG_INFO, "%s: %s withdrew its release request while we quiesced; "
		       "keeping it", w->name, who);
		return false;
	}
	if (rc) {
		ic_log(IC_LOG_WARN, "%s: a release through etcd to %s failed (%s); keeping it",
		       w->name, who, strerror(-rc));
		*refused = true;
		return false;
	}
	ic_log(IC_LOG_INFO, "%s: released through etcd to %s in %lld ms; no longer serving it",
	       w->name, who, ic_now_ms() - t0);
	return true;
}

/* A request came: a snapshot is taken and answered in place; a release
 * is answered as the control socket answers a RELEASE, a refusal by
 * deleting the request alone. What etcd is told goes after w->mu is let
 * go: unserving waits for w->mu, never for etcd. 1 once the vdisk is no
 * longer ours (or no longer served), 0, or the etcd call's -errno when the
 * request could not be checked (it is read again). */
static int
watch_request(struct owner_watch *w, struct ic_etcd *etcd)
{
	char answer[256] = "";
	bool refused = false, gone;
	int live = watch_request_live(w, etcd);

	if (live < 0) {
		w->from = w->req_rev;
		return live;
	}
	if (!live) {
		ic_log(IC_LOG_INFO, "%s: the request '%s' through etcd was withdrawn before it "
		       "was read; ignoring it", w->name, w->ask);
		return 0;
	}
	pthread_mutex_lock(&w->mu);
	gone = w->stop || owner_fenced(w->s->claim);
	if (!gone && strncmp(w->ask, "snap ", 5) == 0)
		watch_snapshot(w, answer, sizeof(answer));
	else if (!gone)
		gone = watch_release(w, etcd, &refused);
	pthread_mutex_unlock(&w->mu);
	if (answer[0])
		watch_answer(w, etcd, answer);
	if (refused)
		ic_etcd_delete(etcd, w->req, false, NULL);
	return gone;
}

static bool
watch_stopped(struct owner_watch *w)
{
	bool stop;

	pthread_mutex_lock(&w->stop_mu);
	stop = w->stop;
	pthread_mutex_unlock(&w->stop_mu);
	return stop;
}

/* Fenced for good (not a lease that only looks run out for a moment): the
 * claim is over, and so is what the watches are for. Cut off from etcd,
 * both went on trying every member twice a second, and logging each
 * failure, for as long as the server ran. */
static bool
watch_fenced(struct owner_watch *w, const char *what)
{
	const char *why = __atomic_load_n(&w->s->claim->fenced, __ATOMIC_ACQUIRE);

	if (!why)
		return false;
	ic_log(IC_LOG_INFO, "%s: %s: no longer watching %s in etcd", w->name, why, what);
	return true;
}

/* A watch is begun again this often when nothing happens: a member that
 * freezes under a watch already answering sends nothing more, and is
 * noticed only then. A third of what a claimant waits for a live owner
 * (IC_RELEASE_TIMEOUT_MS and a TTL), so that its request reaches us through
 * another member in time; at most a minute. */
static unsigned
watch_slice_ms(const struct owner_etcd *cfg)
{
	unsigned ms = (IC_RELEASE_TIMEOUT_MS + cfg->ttl_s * 1000u) / 3;

	return ms < 60000 ? ms : 60000;
}

/* After a watch that began at t0 (ms) for slice ms and ended with rc: a
 * failure, or a timeout well before its slice (an etcd error that maps to
 * it), waits a moment before the next. */
static void
watch_pause(struct owner_watch *w, int rc, int64_t t0, unsigned slice)
{
	if (rc < 0 && (rc != -ETIMEDOUT || ic_now_ms() - t0 < slice / 2) && !watch_stopped(w))
		usleep(WATCH_RETRY_MS * 1000);
}

/* The history the watch needed was compacted away (etcd keeps a window
 * of revisions): read what is under the key now, act on each request
 * there as if the watch had delivered it, and watch on from that read. 1
 * once the vdisk is no longer ours, 0, or the etcd call's -errno. */
static int
watch_resync(struct owner_watch *w, struct ic_etcd *etcd)
{
	struct ic_etcd_kvs kvs;
	int rc = ic_etcd_get_prefix(etcd, w->key, &kvs);

	if (rc)
		return rc;
	ic_log(IC_LOG_INFO, "%s: etcd compacted the history of its release requests; reading "
	       "them anew at revision %lld", w->name, (long long)kvs.revision);
	w->from = kvs.revision + 1;
	for (size_t i = 0; rc == 0 && i < kvs.n; i++) {
		const struct ic_etcd_event ev = { .type = IC_ETCD_EVENT_PUT, .kv = kvs.kv[i] };
		int64_t from = w->from;

		w->requested = false;
		watch_on_request(w, &ev);
		w->from = from;
		if (w->requested)
			rc = watch_request(w, etcd);
	}
	ic_etcd_kvs_free(&kvs);
	return rc;
}

static void *
watch_main(void *arg)
{
	struct owner_watch *w = arg;
	struct ic_etcd *etcd = NULL;
	int rc = ic_etcd_open(&w->cfg.url, OWNER_ETCD_TIMEOUT_MS, &etcd);

	while (rc == 0 && !watch_stopped(w) && !watch_fenced(w, "for release requests")) {
		int64_t t0 = ic_now_ms();
		unsigned slice = watch_slice_ms(&w->cfg);

		w->requested = false;
		rc = ic_etcd_watch(etcd, w->key, true, w->from, slice, watch_on_request, w);
		if (w->requested) {
			int done = watch_request(w, etcd);

			if (done > 0)
				break;
			if (done < 0)
				rc = done;
		}
		if (rc == -ERANGE && !watch_stopped(w)) {
			int done = watch_resync(w, etcd);

			if (done > 0)
				break;
			rc = done;
		}
		watch_pause(w, rc, t0, slice);
		rc = 0;
	}
	ic_etcd_close(etcd);
	watch_put(w);
	return NULL;
}

/* ---- the guard: the owner's own record ---- */

/* The record put at the claim, at revision token, is ownership on etcd's
 * side. It goes when we release (the lease revoked), when the lease
 * expires, and behind our back: an etcd 3.4 leader paused past the TTL
 * revokes the lease on resuming, though we renewed it through the new
 * leader (docs/MULTI-HOST.md §4); an operator deletes it. A claimant may
 * claim at once then, so the guard fences the claim on the event, rather
 * than at the next renewal (up to TTL/3 later) or the next commit. */
static int
guard_on_event(void *arg, const struct ic_etcd_event *ev)
{
	struct owner_watch *w = arg;

	w->record_from = ev->kv.mod_revision + 1;
	return ev->type == IC_ETCD_EVENT_DELETE || ev->kv.mod_revision != w->token;
}

/* After a compaction: is the record still ours? 1 gone (or another's), 0
 * ours (watched on from this read), or the etcd call's -errno. */
static int
guard_read(struct owner_watch *w, struct ic_etcd *etcd)
{
	struct ic_etcd_kvs kvs;
	int rc = ic_etcd_range(etcd, w->record, false, 0, &kvs);

	if (rc)
		return rc;
	rc = kvs.n != 1 || kvs.kv[0].mod_revision != w->token;
	w->record_from = kvs.revision + 1;
	ic_etcd_kvs_free(&kvs);
	return rc;
}

static void *
guard_main(void *arg)
{
	struct owner_watch *w = arg;
	struct ic_etcd *etcd = NULL;
	int rc = ic_etcd_open(&w->cfg.url, OWNER_ETCD_TIMEOUT_MS, &etcd);
	bool gone = false;

	if (rc)
		ic_log(IC_LOG_WARN, "%s: cannot watch its ownership record in etcd (%s); its "
		       "deletion is noticed at the next commit", w->name, strerror(-rc));
	while (rc == 0 && !gone && !watch_stopped(w) && !watch_fenced(w, "its ownership record")) {
		int64_t from = w->record_from, t0 = ic_now_ms();
		unsigned slice = watch_slice_ms(&w->cfg);

		rc = ic_etcd_watch(etcd, w->record, false, from, slice, guard_on_event, w);
		/* 0 with the revision moved: an event ended the watch. */
		gone = rc == 0 && w->record_from != from;
		if (rc == -ERANGE) {
			rc = guard_read(w, etcd);
			gone = rc > 0;
		}
		watch_pause(w, rc, t0, slice);
		rc = 0;
	}
	if (gone) {
		pthread_mutex_lock(&w->stop_mu);
		/* The fence itself, not owner_fenced: a lease that looks run out
		 * for a moment may be renewed again, and must not cancel this. */
		if (!w->stop && !__atomic_load_n(&w->s->claim->fenced, __ATOMIC_ACQUIRE)) {
			owner_fence(w->s->claim, "its ownership record in etcd was deleted");
			ic_log(IC_LOG_ERR, "%s: fenced: its ownership record in etcd (%s) was "
			       "deleted, though its lease was valid here (revoked by a paused "
			       "etcd leader, or by hand?); every write now fails (ESTALE)",
			       w->name, w->record);
		}
		pthread_mutex_unlock(&w->stop_mu);
	}
	ic_etcd_close(etcd);
	watch_put(w);
	return NULL;
}

struct owner_watch *
owner_remote_prepare(struct owner_served *s)
{
	struct owner_lease *l = s->claim->lease;
	struct owner_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	pthread_mutex_init(&w->mu, NULL);
	pthread_mutex_init(&w->stop_mu, NULL);
	atomic_init(&w->refs, 3); /* the watcher, the guard, the served vdisk */
	w->s = s;
	w->cfg = *owner_lease_etcd(l);
	snprintf(w->name, sizeof(w->name), "%s", s->name);
	snprintf(w->key, sizeof(w->key), "%s", owner_lease_release_key(l));
	snprintf(w->record, sizeof(w->record), "%s", owner_lease_key(l));
	w->token = owner_lease_token(l);
	w->from = w->token + 1;
	w->record_from = w->token + 1;
	return w;
}

int
owner_remote_serve(struct owner_served *s, struct owner_watch *w)
{
	pthread_attr_t attr;
	int rc;

	if (!w)
		return -ENOMEM;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = -pthread_create(&w->thread, &attr, watch_main, w);
	if (rc) {
		pthread_attr_destroy(&attr);
		ic_log(IC_LOG_ERR, "%s: cannot watch for release requests through etcd: %s",
		       s->name, strerror(-rc));
		pthread_mutex_destroy(&w->stop_mu);
		pthread_mutex_destroy(&w->mu);
		free(w);
		return rc;
	}
	rc = -pthread_create(&w->guard, &attr, guard_main, w);
	pthread_attr_destroy(&attr);
	if (rc) {
		/* Served without the guard: a deleted record is noticed at the
		 * next commit, as before it. */
		ic_log(IC_LOG_WARN, "%s: cannot watch its ownership record in etcd: %s", s->name,
		       strerror(-rc));
		watch_put(w);
	}
	s->watch = w;
	return 0;
}

void
owner_remote_unserve(struct owner_served *s)
{
	struct owner_watch *w = s->watch;

	if (!w)
		return;
	/* Waits for a release in progress; the thread, maybe still blocked in
	 * its watch, ends on its own and never touches s again. */
	pthread_mutex_lock(&w->mu);
	pthread_mutex_lock(&w->stop_mu);
	w->stop = true;
	pthread_mutex_unlock(&w->stop_mu);
	pthread_mutex_unlock(&w->mu);
	s->watch = NULL;
	watch_put(w);
}
