/* Acquiring a vdisk (docs/OWNERSHIP.md): claim it when nobody or a dead
 * process owns it, else ask the live owner to release it over its control
 * socket, refuse, or with force kill it first. A claim takes the kernel
 * lock first (lock.c), then changes the record by compare-and-swap on its
 * generation (record.c); a release goes in reverse. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/log.h"
#include "owner/ctlmsg.h"
#include "owner/internal.h"

#define OWNER_ATTEMPTS 5         /* owner gone mid-request: look again */
#define OWNER_UNLOCK_WAIT_MS 2000 /* its lock is free once it exited; margin */
/* A claimer writes its record right after taking its lock, and a releaser
 * clears it right before dropping it: "lock held, no record" is that
 * moment, a metadata commit long (two fdatasyncs, seconds on a loaded
 * machine). Only a process stopped inside it shows it for longer. */
#define OWNER_RECORD_WAIT_MS 10000

/* With name's lock held on fd: any owner in the record is dead, so write
 * self (generation + 1); on success out holds the claim and fd. */
static int
owner_take(struct owner_store *os, const char *name, int fd, struct ic_owner_rec *self,
	   struct ic_owner_rec *seen, struct owner_claim *out)
{
	struct ic_meta_txn *txn;
	int rc = ic_meta_begin(os->meta, true, &txn);

	if (rc)
		return rc;
	*seen = (struct ic_owner_rec){ 0 };
	rc = ic_meta_owner_get(txn, name, seen);
	if (rc && rc != -ENOENT)
		goto fail;
	if (!owner_none(seen))
		ic_log(IC_LOG_WARN, "%s: previous owner %s (pid %u) is gone (its lock was free); "
		       "reclaiming", name, seen->who, seen->pid);
	self->generation = seen->generation + 1;
	self->acquired = (uint64_t)time(NULL);
	rc = ic_meta_owner_put(txn, name, self);
	if (rc)
		goto fail;
	rc = ic_meta_commit(txn);
	if (rc == 0) {
		owner_claimed(out, name, self);
		out->lock_fd = fd;
	}
	return rc;
fail:
	ic_meta_abort(txn);
	return rc;
}

/* Claim name as self unless a live process owns it: lock first, then the
 * record. -EBUSY and *seen when the lock is held. A holder with no record
 * (between its lock and its CAS, or its CAS and its unlock) is looked at
 * again for up to OWNER_RECORD_WAIT_MS: it is about to be an owner we can
 * name and ask, or gone; refusing then would refuse a free vdisk. */
static int
owner_try_claim(struct owner_store *os, const char *name, struct ic_owner_rec *self,
		struct ic_owner_rec *seen, struct owner_claim *out)
{
	long long until = ic_now_ms() + OWNER_RECORD_WAIT_MS;

	for (;;) {
		int fd = owner_lock_open(os);
		int rc = fd < 0 ? fd : owner_lock_take(fd, name);

		if (rc == 0)
			rc = owner_take(os, name, fd, self, seen, out);
		if (rc == 0)
			return 0;
		if (fd >= 0)
			close(fd);
		if (rc != -EAGAIN)
			return rc;
		rc = owner_read(os, name, seen);
		if (rc)
			return rc;
		if (!owner_none(seen) || ic_now_ms() >= until)
			return -EBUSY;
		usleep(1000);
	}
}

/* After a RELEASED reply: the old owner has fenced itself and drops its
 * lock right away. Take the lock (lock before record, as every claim),
 * check the record still names self at generation, and write our own pid
 * and start time into it when the old owner, from another PID namespace or
 * behind hidepid, could not describe us right. -EAGAIN: someone else got there first; look again. */
static int
owner_settle(struct owner_store *os, const char *name, struct ic_owner_rec *self,
	     uint64_t generation, long long deadline_ms, struct owner_claim *out)
{
	struct owner_claim got = { .lock_fd = owner_lock_open(os) };
	struct ic_owner_rec rec;
	int rc = got.lock_fd < 0 ? got.lock_fd : owner_lock_wait(got.lock_fd, name, deadline_ms);

	if (rc == 0)
		rc = owner_read(os, name, &rec);
	if (rc == 0 && (memcmp(rec.owner_id, self->owner_id, 16) || rec.generation != generation))
		rc = -EAGAIN;
	if (rc == 0)
		owner_claimed(&got, name, &rec);
	/* Same namespace and a readable /proc: the record is right already. */
	if (rc == 0 && (rec.pid != self->pid || rec.start_time != self->start_time))
		rc = owner_transfer(os, &got, self, &got.generation);
	if (rc) {
		owner_drop(&got);
		return rc == -ESTALE || rc == -ETIMEDOUT ? -EAGAIN : rc;
	}
	self->generation = got.generation;
	*out = got;
	return 0;
}

/* We gave up on a RELEASE (no answer in time, connection lost), but the
 * owner may have written us as owner just before: then it either fenced
 * itself (its answer went out) or tries to take the vdisk back (it did
 * not). Clearing the record by CAS settles both: whichever CAS comes
 * second fails, and nobody is left believing it writes. */
static void
owner_disown(struct owner_store *os, const char *name, const struct ic_owner_rec *self)
{
	struct owner_claim claim = { .lock_fd = -1 };
	struct ic_owner_rec rec;
	struct ic_meta_txn *txn;
	int rc = ic_meta_begin(os->meta, false, &txn);

	if (rc)
		return;
	rc = ic_meta_owner_get(txn, name, &rec);
	ic_meta_abort(txn);
	if (rc || memcmp(rec.owner_id, self->owner_id, 16) != 0)
		return;
	owner_claimed(&claim, name, &rec);
	ic_log(IC_LOG_WARN, "%s: the owner released it after we stopped waiting; freeing it",
	       name);
	owner_release(os, &claim);
}

/* Send RELEASE to the live owner seen. Returns 0 (released to self, out
 * filled), -EBUSY (denied; said holds why), -ETIMEDOUT (no answer), or
 * -EAGAIN (the owner is gone or not serving name: look again). */
static int
owner_ask(struct owner_store *os, const char *name, struct ic_owner_rec *self,
	  const struct ic_owner_rec *seen, unsigned timeout_ms, bool force, char *said,
	  size_t cap, struct owner_claim *out)
{
	IC_AUTOFREE uint8_t *buf = malloc(CTL_REPLY_BUF);
	struct ctl_msg req = { .type = CTL_RELEASE, .seq = (uint32_t)getpid() }, reply;
	int rc;

	if (!buf)
		return -ENOMEM;
	snprintf(req.release.name, sizeof(req.release.name), "%s", name);
	memcpy(req.release.owner_id, self->owner_id, 16);
	req.release.deadline_ms = timeout_ms;
	req.release.flags = force ? CTL_RELEASE_FORCE : 0;
	snprintf(req.release.who, sizeof(req.release.who), "%s", self->who);
	snprintf(req.release.reason, sizeof(req.release.reason), "%s",
		 force ? "forced takeover" : "open for writing");
	snprintf(req.release.socket, sizeof(req.release.socket), "%s", self->socket);
	rc = ctl_call(seen->socket, &req, timeout_ms, buf, &reply);
	if (rc) {
		owner_disown(os, name, self);
		if (rc == -ECONNREFUSED || rc == -ENOENT || rc == -ECONNRESET)
			return -EAGAIN;
		return rc == -ETIMEDOUT ? rc : -EAGAIN;
	}
	snprintf(said, cap, "%s", reply.reply.text);
	switch (reply.reply.result) {
	case CTL_RELEASED:
		return owner_settle(os, name, self, reply.reply.generation,
				    ic_now_ms() + timeout_ms, out);
	case CTL_DENIED:
		return -EBUSY;
	default:
		return reply.reply.status == -ETIMEDOUT ? -ETIMEDOUT : -EAGAIN;
	}
}

/* An owner with no control socket is an admin command: it takes no
 * release requests and holds the vdisk only while it runs. Wait up to
 * timeout_ms for it to finish, claiming as soon as it has. 0 (claimed),
 * -ETIMEDOUT, -EAGAIN (now owned by a process that can be asked: look
 * again), or -errno. */
static int
owner_outwait(struct owner_store *os, const char *name, struct ic_owner_rec *self,
	      struct ic_owner_rec *seen, unsigned timeout_ms, struct owner_claim *out)
{
	long long until = ic_now_ms() + timeout_ms;
	char desc[256];
	int rc;

	owner_describe(seen, desc, sizeof(desc));
	ic_log(IC_LOG_INFO, "%s: owned by %s, which takes no release requests; waiting up to "
	       "%u s for it to finish", name, desc, (timeout_ms + 999) / 1000);
	do {
		usleep(10000);
		rc = owner_try_claim(os, name, self, seen, out);
	} while (rc == -EBUSY && !seen->socket[0] && ic_now_ms() < until);
	if (rc == -EBUSY)
		return seen->socket[0] ? -EAGAIN : -ETIMEDOUT;
	return rc;
}

static void
owner_refusal(const char *name, const struct ic_owner_rec *seen, int rc, unsigned timeout_ms,
	      const char *said, enum ic_takeover how)
{
	char desc[256];

	owner_describe(seen, desc, sizeof(desc));
	if (!seen->socket[0]) /* an admin command, waited for (owner_outwait) */
		ic_log(IC_LOG_ERR, "%s is owned by %s, which takes no release requests and did "
		       "not finish within %u s; use --force to take it over", name, desc,
		       (timeout_ms + 999) / 1000);
	else if (how == IC_TAKEOVER_NEVER)
		ic_log(IC_LOG_ERR, "%s is in use: owned by %s; use --force to take it from that "
		       "process (its clients then get errors)", name, desc);
	else if (rc == -ETIMEDOUT)
		ic_log(IC_LOG_ERR, "%s is owned by %s; it did not answer a release request within "
		       "%u s; use --force to take it over", name, desc, (timeout_ms + 999) / 1000);
	else if (!said[0])
		ic_log(IC_LOG_ERR, "%s is owned by %s; its control socket %s hung up without an "
		       "answer (only its own uid or root may ask it)", name, desc, seen->socket);
	else
		ic_log(IC_LOG_ERR, "%s is owned by %s; it denied the release: %s", name, desc,
		       said);
}

/* The owner was killed: its lock must now be free (the kernel drops it as
 * the process exits). Still held means the process behind the socket was
 * not the only holder (a child kept the descriptor, or the socket was
 * another process's): refuse rather than claim beside a writer. */
static int
owner_after_kill(struct owner_store *os, const char *name, const struct ic_owner_rec *seen)
{
	long long until = ic_now_ms() + OWNER_UNLOCK_WAIT_MS;
	char desc[256];
	int rc;

	while ((rc = owner_lock_held(os, name)) == 1 && ic_now_ms() < until)
		usleep(1000);
	if (rc <= 0)
		return rc;
	owner_describe(seen, desc, sizeof(desc));
	ic_log(IC_LOG_ERR, "%s: its lock is still held after %s was killed: that process was not "
	       "the lock holder; not taking it over", name, desc);
	return -EBUSY;
}

int
owner_acquire(struct owner_store *os, const char *name, const char *who, unsigned timeout_ms,
	      enum ic_takeover how, char *said, size_t cap, struct owner_claim *out)
{
	struct ic_owner_rec self, seen;
	struct owner_etcd etcd;
	char answer[256] = "";
	bool force = how == IC_TAKEOVER_FORCE;
	int rc = owner_etcd_config(os, &etcd);

	if (rc)
		return rc < 0 ? rc : owner_remote_acquire(&etcd, name, who, owner_socket(os),
							  timeout_ms, how, out);
	rc = owner_self(getpid(), who, NULL, owner_socket(os), &self);
	out->lock_fd = -1;
	out->lease = NULL;
	out->fenced = NULL;
	if (timeout_ms == 0)
		timeout_ms = IC_RELEASE_TIMEOUT_MS;
	for (int attempt = 0; rc == 0 && attempt < OWNER_ATTEMPTS; attempt++) {
		long long t0 = ic_now_ms();

		rc = owner_try_claim(os, name, &self, &seen, out);
		if (rc != -EBUSY)
			break;
		struct ic_owner_rec held = seen; /* for the log: a claim overwrites seen */
		bool ask = seen.socket[0];

		/* An owner that cannot be asked is an admin command, waited for
		 * even by those that never ask: it has no clients to fail, and
		 * soon lets go. */
		if (!owner_asks(how) && (ask || how != IC_TAKEOVER_NEVER))
			break;
		if (ask)
			rc = owner_ask(os, name, &self, &seen, timeout_ms, force, answer,
				       sizeof(answer), out);
		else
			rc = force ? -ETIMEDOUT : owner_outwait(os, name, &self, &seen, timeout_ms, out);
		if (said && answer[0])
			snprintf(said, cap, "%s", answer);
		if (rc == 0) {
			ic_log(IC_LOG_INFO, "%s: %s by %s (pid %u) in %lld ms", name,
			       ask ? "released to us" : "left", held.who, held.pid, ic_now_ms() - t0);
			return 0;
		}
		/* With force, a denial means the owner could not quiesce in time:
		 * as good as no answer. */
		if ((rc == -ETIMEDOUT || rc == -EBUSY) && force) {
			rc = owner_kill(name, &seen, "it did not release on a forced request");
			if (rc == 0)
				rc = owner_after_kill(os, name, &seen);
			if (rc)
				return rc; /* owner_kill and owner_after_kill said why */
		} else if (rc == -EAGAIN) { /* the owner changed under us: look again */
			usleep(50000);
			rc = 0;
		}
	}
	if (rc == 0 && out->lock_fd >= 0)
		return 0;
	if (rc == 0) /* attempts exhausted: the owner kept changing */
		rc = -EBUSY;
	if ((rc == -EBUSY || rc == -ETIMEDOUT) && how != OWNER_TAKEOVER_IF_FREE)
		owner_refusal(name, &seen, rc, timeout_ms, answer, how);
	return rc == -ETIMEDOUT ? -EBUSY : rc;
}

int
owner_claim(struct owner_store *os, const char *name, const char *who, struct owner_claim *out)
{
	return owner_acquire(os, name, who, os->handoff_ms, os->takeover, NULL, 0, out);
}

int
owner_claim_free(struct owner_store *os, const char *name, const char *who,
		 struct owner_claim *out)
{
	return owner_acquire(os, name, who, 0, OWNER_TAKEOVER_IF_FREE, NULL, 0, out);
}
